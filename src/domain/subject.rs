//! Citizens and their coded demographics.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;

use super::agency::storage_codes;
use super::{AgencyCode, Identifier, Violations, check_text};

super::uuid_resource_id!(
    /// An opaque subject identifier assigned by Accord (a UUID).
    SubjectId,
    "subjects"
);

/// Administrative gender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

storage_codes!(Gender {
    Male => "male",
    Female => "female",
    Other => "other",
    Unknown => "unknown",
});

/// Validated demographics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demographics {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
    pub gender: Gender,
    pub postcode: Option<String>,
    pub uprn: Option<String>,
}

/// Demographics as received, before validation.
#[derive(Debug, Clone)]
pub struct DemographicsInput<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub birth_date: &'a str,
    /// The gender, or why the value received is not one.
    pub gender: Result<Gender, String>,
    pub postcode: &'a str,
    pub uprn: &'a str,
}

impl Demographics {
    /// Validates every field, reporting all problems at once.
    pub fn parse(input: &DemographicsInput<'_>, today: NaiveDate) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let given = v.check("given_name", check_text(input.given_name, 1, 100));
        let family = v.check("family_name", check_text(input.family_name, 1, 100));
        let birth = v.check("birth_date", parse_birth_date(input.birth_date, today));
        let gender = v.check("gender", input.gender.clone());
        let postcode = v.check("postcode", optional(input.postcode, parse_postcode));
        let uprn = v.check("uprn", optional(input.uprn, parse_uprn));
        v.into_result(|| {
            Some(Self {
                given_name: input.given_name.trim().to_owned(),
                family_name: input.family_name.trim().to_owned(),
                birth_date: birth?,
                gender: gender?,
                postcode: postcode?,
                uprn: uprn?,
            })
            .filter(|_| given.is_some() && family.is_some())
        })
    }
}

/// `None` for a blank value, else `value` parsed.
pub fn optional(
    value: &str,
    parse: fn(&str) -> Result<String, AddressError>,
) -> Result<Option<String>, AddressError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        parse(value).map(Some)
    }
}

/// Why a value is not an accepted date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("is required")]
    Required,
    #[error("must be a date in the form YYYY-MM-DD")]
    Form,
    /// Of the right form, but no day of the calendar.
    #[error("{0:?} is not a real date in the form YYYY-MM-DD")]
    NotADate(String),
    #[error("must not be in the future")]
    InTheFuture,
    #[error("must not be before 1880-01-01")]
    TooLongAgo,
}

/// Why a value is not a postcode or UPRN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not a UK postcode (e.g. LS1 4AP)")]
    NotAPostcode(String),
    #[error("a UPRN must be 1 to 12 digits")]
    UprnForm,
    #[error("a UPRN must not be zero")]
    UprnZero,
}

/// Parses an ISO 8601 calendar date, `YYYY-MM-DD`.
pub fn parse_date(value: &str) -> Result<NaiveDate, DateError> {
    if value.len() != 10 {
        return Err(DateError::Form);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| DateError::NotADate(value.to_owned()))
}

/// Parses a birth date: a real date, not after `today`, not before 1880.
pub fn parse_birth_date(value: &str, today: NaiveDate) -> Result<NaiveDate, DateError> {
    if value.is_empty() {
        return Err(DateError::Required);
    }
    let date = parse_date(value)?;
    if date > today {
        return Err(DateError::InTheFuture);
    }
    if date < NaiveDate::from_ymd_opt(1880, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(DateError::TooLongAgo);
    }
    Ok(date)
}

static POSTCODE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?([0-9][A-Z]{2})$").ok());

/// Parses a UK postcode, e.g. `ls1 4ap` -> `LS1 4AP`: upper case, one space
/// before the inward code.
pub fn parse_postcode(value: &str) -> Result<String, AddressError> {
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let not_a_postcode = || AddressError::NotAPostcode(value.to_owned());
    let caps = POSTCODE
        .as_ref()
        .and_then(|re| re.captures(&compact))
        .ok_or_else(not_a_postcode)?;
    let (outward, inward) = (&caps[1], &caps[2]);
    if outward == "GIR" && inward != "0AA" {
        return Err(not_a_postcode());
    }
    Ok(format!("{outward} {inward}"))
}

/// Parses a UPRN: 1 to 12 digits, without leading zeros.
pub fn parse_uprn(value: &str) -> Result<String, AddressError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::UprnForm);
    }
    let trimmed = v.trim_start_matches('0');
    if trimmed.is_empty() {
        return Err(AddressError::UprnZero);
    }
    Ok(trimmed.to_owned())
}

/// A registered citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: SubjectId,
    pub identifiers: Vec<Identifier>,
    pub demographics: Demographics,
    pub registered_by: AgencyCode,
    pub create_time: DateTime<Utc>,
    /// The subject this one was merged into, while that merge stands (see
    /// [`super::merge`]).
    pub merged_into: Option<SubjectId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn postcodes_are_normalised() {
        assert_eq!(parse_postcode("ls1 4ap").unwrap(), "LS1 4AP");
        assert_eq!(parse_postcode("SW1A1AA").unwrap(), "SW1A 1AA");
        assert_eq!(parse_postcode(" m1  1ae ").unwrap(), "M1 1AE");
        assert_eq!(parse_postcode("GIR 0AA").unwrap(), "GIR 0AA");
        for bad in ["", "LS1", "12345", "LS1 4A", "LSS1 4AP", "GIR 1AA"] {
            assert!(parse_postcode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn birth_dates_are_real_and_not_future() {
        assert!(parse_birth_date("2016-02-29", today()).is_ok());
        assert_eq!(
            parse_birth_date("2017-02-29", today()),
            Err(DateError::NotADate("2017-02-29".to_owned()))
        );
        assert_eq!(
            parse_birth_date("2026-11-26", today()),
            Err(DateError::InTheFuture)
        );
        assert_eq!(
            parse_birth_date("1879-12-31", today()),
            Err(DateError::TooLongAgo)
        );
        assert_eq!(parse_birth_date("1990-1-1", today()), Err(DateError::Form));
        assert_eq!(parse_birth_date("", today()), Err(DateError::Required));
    }

    #[test]
    fn uprns_are_digits() {
        assert_eq!(parse_uprn("010033544614").unwrap(), "10033544614");
        assert_eq!(parse_uprn("1234567890123"), Err(AddressError::UprnForm));
        assert_eq!(parse_uprn("12a"), Err(AddressError::UprnForm));
        assert_eq!(parse_uprn("000"), Err(AddressError::UprnZero));
    }

    #[test]
    fn demographics_report_every_bad_field() {
        let input = DemographicsInput {
            given_name: "",
            family_name: "Smith",
            birth_date: "2030-01-01",
            gender: Err("is required".to_owned()),
            postcode: "nowhere",
            uprn: "",
        };
        let err = Demographics::parse(&input, today()).unwrap_err();
        let fields: Vec<&str> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["given_name", "birth_date", "gender", "postcode"]);
    }
}
