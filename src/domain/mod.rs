//! Validated domain types. Once a value has one of these types it is valid:
//! constructors (`parse`) are the only way in, and they say exactly what is
//! wrong. No tonic, no sqlx here.

pub mod agency;
pub mod agreement;
pub mod alert;
pub mod caller;
pub mod catalog;
pub mod consent;
pub mod credential;
pub mod identifier;
pub mod record;
pub mod subject;
pub mod violation;

pub use agency::{Agency, AgencyCode, AgencyKind, AgencyStatus};
pub use alert::{Acknowledgement, Alert, AlertId, AlertKind};
pub use caller::{Caller, PrincipalId, Purpose, Role};
pub use catalog::{CodeValue, FieldSpec, FieldType, RecordClass, RecordClassId};
pub use identifier::{Identifier, IdentifierSystem};
pub use record::{FieldValue, Record, RecordId};
pub use subject::{Demographics, Gender, Subject, SubjectId};
pub use violation::{FieldViolation, Violations};

/// Defines an opaque, UUID-backed resource id whose resource name is
/// `{collection}/{id}`.
macro_rules! uuid_resource_id {
    ($(#[$doc:meta])* $name:ident, $collection:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// A fresh id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Parses a resource name, `{collection}/{id}`.
            pub fn parse_name(name: &str) -> Result<Self, String> {
                let id = name
                    .strip_prefix(concat!($collection, "/"))
                    .ok_or_else(|| concat!("must be a resource name of the form ", $collection, "/{id}").to_owned())?;
                let uuid = uuid::Uuid::parse_str(id)
                    .map_err(|_| concat!("names no ", $collection, " id (a UUID)").to_owned())?;
                Ok(Self(uuid.to_string()))
            }

            /// Rebuilds an id read back from storage.
            pub fn from_stored(id: String) -> Self {
                Self(id)
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The resource name, `{collection}/{id}`.
            pub fn resource_name(&self) -> String {
                format!(concat!($collection, "/{}"), self.0)
            }
        }
    };
}
pub(crate) use uuid_resource_id;

/// Checks that `value` has between `min` and `max` characters (not bytes).
pub(crate) fn check_length(value: &str, min: usize, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n < min {
        if min == 1 {
            Err("is required".to_owned())
        } else {
            Err(format!("must have at least {min} characters"))
        }
    } else if n > max {
        Err(format!("must have at most {max} characters (has {n})"))
    } else {
        Ok(())
    }
}

/// Checks free text: length bounds and no control characters.
pub(crate) fn check_text(value: &str, min: usize, max: usize) -> Result<(), String> {
    check_length(value.trim(), min, max)?;
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}
