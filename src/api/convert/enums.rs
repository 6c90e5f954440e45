//! Proto enum values from requests. The unspecified value (0) of a required
//! field and a number the enum does not define are told apart, and both
//! answers list the valid values.

use crate::api::pb;

/// A generated proto enum.
pub(super) trait ProtoEnum: TryFrom<i32> + Copy {
    /// The value's name in the proto (`PURPOSE_DIRECT_CARE`).
    fn name(self) -> &'static str;
}

macro_rules! proto_enums {
    ($($t:ident),* $(,)?) => {
        $(impl ProtoEnum for pb::$t {
            fn name(self) -> &'static str {
                self.as_str_name()
            }
        })*
    };
}

proto_enums!(
    Purpose,
    AgencyKind,
    AgencyStatus,
    FieldType,
    IdentifierSystem,
    AdministrativeGender,
    LawfulBasisCode,
    ConsentRequirement,
    ConsentKind,
    ConsentChannel,
    Outcome,
    EventKind,
    SubscriptionCohort,
    ReviewOutcome,
);

/// The highest number looked at when listing an enum's values (Accord's
/// enums are numbered from 1 upwards with no large gaps).
const HIGHEST: i32 = 255;

/// The specified values of `E`, by name.
fn known<E: ProtoEnum>() -> String {
    (1..=HIGHEST)
        .filter_map(|i| E::try_from(i).ok())
        .map(E::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a request's enum value is not accepted. Both answers list the
/// values the enum defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EnumError {
    /// The unspecified value (0) of a required field.
    #[error("is required: one of {known}")]
    Required { known: String },
    /// A number the enum does not define.
    #[error("{value} is not a known value: use one of {known}")]
    Unknown { value: i32, known: String },
    /// A value the proto defines that Accord does not take (yet).
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

impl EnumError {
    /// The unspecified value of a required `E`.
    pub(super) fn required<E: ProtoEnum>() -> Self {
        Self::Required {
            known: known::<E>(),
        }
    }
}

/// `value` as an `E`, which is required: not the unspecified value, and one
/// the enum defines.
pub(super) fn required<E: ProtoEnum>(value: i32) -> Result<E, EnumError> {
    match E::try_from(value) {
        Ok(e) if value != 0 => Ok(e),
        Ok(_) => Err(EnumError::required::<E>()),
        Err(_) => Err(EnumError::Unknown {
            value,
            known: known::<E>(),
        }),
    }
}

/// `value` as an `E`, or `None` when unspecified (an optional filter).
pub(super) fn optional<E: ProtoEnum>(value: i32) -> Result<Option<E>, EnumError> {
    if value == 0 {
        Ok(None)
    } else {
        required(value).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_and_unknown_values_are_told_apart() {
        assert_eq!(
            required::<pb::AdministrativeGender>(1),
            Ok(pb::AdministrativeGender::Male)
        );
        let missing = required::<pb::AdministrativeGender>(0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            "is required: one of ADMINISTRATIVE_GENDER_MALE, ADMINISTRATIVE_GENDER_FEMALE, \
             ADMINISTRATIVE_GENDER_OTHER, ADMINISTRATIVE_GENDER_UNKNOWN"
        );
        for bad in [7, 99, -1] {
            let unknown = required::<pb::AdministrativeGender>(bad)
                .unwrap_err()
                .to_string();
            assert!(
                unknown.starts_with(&format!(
                    "{bad} is not a known value: use one of ADMINISTRATIVE_GENDER_MALE"
                )),
                "{unknown}"
            );
        }
        assert_eq!(optional::<pb::Outcome>(0), Ok(None));
        assert!(optional::<pb::Outcome>(42).is_err());
    }
}
