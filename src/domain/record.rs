//! Versioned case and citizen records and the checking of their fields.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::subject::{DateError, parse_date};
use super::{AgencyCode, FieldSpec, FieldType, RecordClass, RecordClassId, SubjectId, Violations};

super::uuid_resource_id!(
    /// An opaque record identifier assigned by Accord (a UUID).
    RecordId,
    "records"
);

/// A checked field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    Code(String),
}

impl FieldValue {
    fn field_type(&self) -> FieldType {
        match self {
            Self::String(_) => FieldType::String,
            Self::Integer(_) => FieldType::Integer,
            Self::Boolean(_) => FieldType::Boolean,
            Self::Date(_) => FieldType::Date,
            Self::Timestamp(_) => FieldType::Timestamp,
            Self::Code(_) => FieldType::Code,
        }
    }
}

/// A field value as received, before it is checked against its class.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Date(String),
    /// `None` when the wire value is not a representable instant.
    Timestamp(Option<DateTime<Utc>>),
    Code(String),
    /// No value was set.
    Missing,
}

impl RawValue {
    fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Integer(_) => "integer",
            Self::Boolean(_) => "boolean",
            Self::Date(_) => "date",
            Self::Timestamp(_) => "timestamp",
            Self::Code(_) => "code",
            Self::Missing => "nothing",
        }
    }
}

/// The most fields one record may carry.
pub const MAX_FIELDS: usize = 200;

/// Checks `fields` against `class`: every field declared, of its declared
/// type, within its limits, every required field present. Every problem is
/// reported, each under `{prefix}[{name}]`.
pub fn check_fields(
    class: &RecordClass,
    fields: Vec<(String, RawValue)>,
    prefix: &str,
) -> Result<BTreeMap<String, FieldValue>, Violations> {
    let mut v = Violations::new();
    let mut out = BTreeMap::new();
    if fields.len() > MAX_FIELDS {
        v.add(prefix, format!("at most {MAX_FIELDS} fields are accepted"));
        return Err(v);
    }
    for (name, raw) in fields {
        let path = format!("{prefix}[{name}]");
        let Some(spec) = class.field(&name) else {
            v.add(path, format!("is not a field of record class {}", class.id));
            continue;
        };
        let value = check_value(spec, raw);
        match value {
            Ok(value) => {
                debug_assert_eq!(value.field_type(), spec.field_type);
                out.insert(name, value);
            }
            Err(description) => v.add(path, description),
        }
    }
    for spec in class.fields.iter().filter(|f| f.required) {
        if !out.contains_key(&spec.name)
            && !v
                .iter()
                .any(|x| x.field == format!("{prefix}[{}]", spec.name))
        {
            v.add(format!("{prefix}[{}]", spec.name), "is required");
        }
    }
    if v.is_empty() { Ok(out) } else { Err(v) }
}

/// Why a field's value is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldValueError {
    #[error("must have at most {max} characters (has {has})")]
    TooLong { max: u32, has: usize },
    #[error("is required and must not be blank")]
    Blank,
    #[error("is not a valid timestamp")]
    NotATimestamp,
    #[error(transparent)]
    Date(#[from] DateError),
    /// `allowed` is the code list, comma-separated.
    #[error("{code:?} is not in the code list ({allowed})")]
    NotInCodeList { code: String, allowed: String },
    #[error("must be a {expected} value, not {given}")]
    WrongType {
        expected: &'static str,
        given: &'static str,
    },
}

/// Checks one value against its field's spec.
fn check_value(spec: &FieldSpec, raw: RawValue) -> Result<FieldValue, FieldValueError> {
    match (spec.field_type, raw) {
        (FieldType::String, RawValue::String(s)) => {
            let has = s.chars().count();
            let max = spec.max_chars();
            if u32::try_from(has).map_or(true, |n| n > max) {
                Err(FieldValueError::TooLong { max, has })
            } else if spec.required && s.trim().is_empty() {
                Err(FieldValueError::Blank)
            } else {
                Ok(FieldValue::String(s))
            }
        }
        (FieldType::Integer, RawValue::Integer(i)) => Ok(FieldValue::Integer(i)),
        (FieldType::Boolean, RawValue::Boolean(b)) => Ok(FieldValue::Boolean(b)),
        (FieldType::Date, RawValue::Date(d)) => Ok(FieldValue::Date(parse_date(&d)?)),
        (FieldType::Timestamp, RawValue::Timestamp(t)) => t
            .map(FieldValue::Timestamp)
            .ok_or(FieldValueError::NotATimestamp),
        (FieldType::Code, RawValue::Code(c)) => {
            if spec.codes.iter().any(|code| code.code == c) {
                Ok(FieldValue::Code(c))
            } else {
                let allowed: Vec<&str> = spec.codes.iter().map(|c| c.code.as_str()).collect();
                Err(FieldValueError::NotInCodeList {
                    code: c,
                    allowed: allowed.join(", "),
                })
            }
        }
        (expected, raw) => Err(FieldValueError::WrongType {
            expected: expected.code(),
            given: raw.type_name(),
        }),
    }
}

/// One version of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: RecordId,
    pub subject: SubjectId,
    pub record_class: RecordClassId,
    pub controller: AgencyCode,
    pub version: i64,
    pub fields: BTreeMap<String, FieldValue>,
    pub etag: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Whether its controller has sealed it (or all its records about the
    /// subject): then only agreements that cover sealed records share it.
    /// Not part of the version: sealing is not a change of content.
    pub sealed: bool,
}

impl Record {
    /// The etag of a version: a digest of the record id, version and
    /// content, so that no two versions share one.
    pub fn compute_etag(
        id: &RecordId,
        version: i64,
        fields: &BTreeMap<String, FieldValue>,
    ) -> String {
        let mut h = Sha256::new();
        h.update(id.as_str().as_bytes());
        h.update(version.to_be_bytes());
        h.update(serde_json::to_vec(fields).unwrap_or_default());
        let digest = h.finalize();
        format!("{version}-{}", hex::encode(&digest[..8]))
    }

    /// The names of the record's fields, in order.
    pub fn field_names(&self) -> Vec<String> {
        self.fields.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CodeValue, FieldSpec};

    fn class() -> RecordClass {
        let spec = |name: &str, t: FieldType, required: bool| FieldSpec {
            name: name.to_owned(),
            field_type: t,
            required,
            max_length: (t == FieldType::String).then_some(5),
            codes: if t == FieldType::Code {
                vec![CodeValue {
                    code: "low".into(),
                    display: "Low".into(),
                }]
            } else {
                vec![]
            },
            description: String::new(),
        };
        RecordClass::parse(
            "test.class",
            "Test",
            "",
            vec![
                spec("note", FieldType::String, true),
                spec("count", FieldType::Integer, false),
                spec("flag", FieldType::Boolean, false),
                spec("seen_on", FieldType::Date, false),
                spec("at", FieldType::Timestamp, false),
                spec("risk", FieldType::Code, true),
            ],
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn good_fields_pass() {
        let fields = check_fields(
            &class(),
            vec![
                ("note".into(), RawValue::String("hi".into())),
                ("count".into(), RawValue::Integer(3)),
                ("seen_on".into(), RawValue::Date("2024-02-29".into())),
                ("risk".into(), RawValue::Code("low".into())),
            ],
            "fields",
        )
        .unwrap();
        assert_eq!(fields.len(), 4);
        assert_eq!(fields["count"], FieldValue::Integer(3));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = check_fields(
            &class(),
            vec![
                ("note".into(), RawValue::String("too long".into())),
                ("count".into(), RawValue::String("3".into())),
                ("flag".into(), RawValue::Missing),
                ("seen_on".into(), RawValue::Date("2023-02-29".into())),
                ("at".into(), RawValue::Timestamp(None)),
                ("colour".into(), RawValue::String("red".into())),
            ],
            "record.fields",
        )
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "record.fields[note]",
                "record.fields[count]",
                "record.fields[flag]",
                "record.fields[seen_on]",
                "record.fields[at]",
                "record.fields[colour]",
                "record.fields[risk]",
            ]
        );
        let risk = err.iter().last().unwrap();
        assert_eq!(risk.description, "is required");
    }

    #[test]
    fn codes_outside_the_list_are_refused() {
        let err = check_fields(
            &class(),
            vec![
                ("note".into(), RawValue::String("x".into())),
                ("risk".into(), RawValue::Code("extreme".into())),
            ],
            "fields",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not in the code list (low)"));
    }

    #[test]
    fn etags_differ_between_versions() {
        let id = RecordId::generate();
        let fields = BTreeMap::new();
        assert_ne!(
            Record::compute_etag(&id, 1, &fields),
            Record::compute_etag(&id, 2, &fields)
        );
    }
}
