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
pub mod duplicate;
pub mod event;
pub mod identifier;
pub mod merge;
pub mod record;
pub mod review;
pub mod subject;
pub mod violation;

pub use agency::{Agency, AgencyCode, AgencyCodeError, AgencyKind, AgencyStatus};
pub use alert::{Acknowledgement, Alert, AlertId, AlertKind};
pub use caller::{Caller, PrincipalId, Purpose, Role};
pub use catalog::{
    CodeValue, FieldSpec, FieldType, RecordClass, RecordClassId, RecordClassIdError,
};
pub use identifier::{Identifier, IdentifierSystem};
pub use record::{FieldValue, Record, RecordId};
pub use subject::{Demographics, Gender, Subject, SubjectId};
pub use violation::{FieldViolation, Violations};

/// Defines an opaque, UUID-backed resource id whose resource name is
/// `{collection}/{id}`.
macro_rules! uuid_resource_id {
    ($(#[$doc:meta])* $name:ident, $collection:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A fresh id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Parses a resource name, `{collection}/{id}`.
            pub fn parse_name(name: &str) -> Result<Self, $crate::domain::NameError> {
                let id = name
                    .strip_prefix(concat!($collection, "/"))
                    .ok_or($crate::domain::NameError::Form(concat!($collection, "/{id}")))?;
                let uuid = uuid::Uuid::parse_str(id)
                    .map_err(|_| $crate::domain::NameError::NotAUuid($collection))?;
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

/// Why a resource name does not name a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// It does not have the shape of this kind of name.
    #[error("must be a resource name of the form {0}")]
    Form(&'static str),
    /// It does not have the shape of a name nested under an agency.
    #[error("must be of the form {0}")]
    Nested(&'static str),
    /// Its id is not a UUID.
    #[error("names no {0} id (a UUID)")]
    NotAUuid(&'static str),
    /// Its agency code is not one.
    #[error(transparent)]
    Agency(#[from] AgencyCodeError),
    /// Its record class id is not one.
    #[error(transparent)]
    RecordClass(#[from] RecordClassIdError),
}

/// Why free text is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// It is empty (or blank) where a value is required.
    #[error("is required")]
    Required,
    /// It is shorter than the least allowed.
    #[error("must have at least {min} characters")]
    TooShort { min: usize },
    /// It is longer than the most allowed.
    #[error("must have at most {max} characters (has {has})")]
    TooLong { max: usize, has: usize },
    /// It holds control characters other than newline and tab.
    #[error("must not contain control characters")]
    ControlCharacters,
}

/// Checks that `value` has between `min` and `max` characters (not bytes).
pub(crate) fn check_length(value: &str, min: usize, max: usize) -> Result<(), TextError> {
    let n = value.chars().count();
    if n < min {
        if min == 1 {
            Err(TextError::Required)
        } else {
            Err(TextError::TooShort { min })
        }
    } else if n > max {
        Err(TextError::TooLong { max, has: n })
    } else {
        Ok(())
    }
}

/// Checks free text: length bounds and no control characters.
pub(crate) fn check_text(value: &str, min: usize, max: usize) -> Result<(), TextError> {
    check_length(value.trim(), min, max)?;
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextError::ControlCharacters);
    }
    Ok(())
}
