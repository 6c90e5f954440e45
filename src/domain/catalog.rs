//! Record classes and their typed field schemas.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::agency::storage_codes;
use super::{NameError, Violations, check_text};

/// A record class id: dotted lowercase segments, e.g. `health.summary`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordClassId(String);

impl RecordClassId {
    /// Parses an id: two or more segments of lowercase letters, digits and
    /// underscores, each starting with a letter; at most 64 characters.
    pub fn parse(value: &str) -> Result<Self, RecordClassIdError> {
        let segments: Vec<&str> = value.split('.').collect();
        let ok = value.len() <= 64
            && segments.len() >= 2
            && segments.iter().all(|s| is_snake_identifier(s));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(RecordClassIdError)
        }
    }

    /// Parses a resource name, `recordClasses/{id}`.
    pub fn parse_name(name: &str) -> Result<Self, NameError> {
        let id = name
            .strip_prefix("recordClasses/")
            .ok_or(NameError::Form("recordClasses/{id}"))?;
        Ok(Self::parse(id)?)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name, `recordClasses/{id}`.
    pub fn resource_name(&self) -> String {
        format!("recordClasses/{}", self.0)
    }
}

/// Why a value is not a record class id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be dotted lowercase segments such as health.summary (at most 64 characters)")]
pub struct RecordClassIdError;

impl fmt::Display for RecordClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase letters, digits and underscores, starting with a letter.
fn is_snake_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The type of a record field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    Date,
    Timestamp,
    Code,
}

storage_codes!(FieldType {
    String => "string",
    Integer => "integer",
    Boolean => "boolean",
    Date => "date",
    Timestamp => "timestamp",
    Code => "code",
});

/// One entry of a code list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeValue {
    pub code: String,
    pub display: String,
}

/// One typed field of a record class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    /// For strings: the longest value accepted, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// For codes: the accepted codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<CodeValue>,
    #[serde(default)]
    pub description: String,
}

/// The default longest string, when a string field declares none.
pub const DEFAULT_MAX_LENGTH: u32 = 4096;
/// The longest string any field may declare.
pub const MAX_MAX_LENGTH: u32 = 65_536;

impl FieldSpec {
    /// The longest string accepted by this field.
    pub fn max_chars(&self) -> u32 {
        self.max_length.unwrap_or(DEFAULT_MAX_LENGTH)
    }

    /// Checks one field declaration.
    fn check(&self) -> Violations {
        let mut v = Violations::new();
        if self.name.len() > 64 || !is_snake_identifier(&self.name) {
            v.add(
                "name",
                "must be lowercase letters, digits and underscores, starting with a letter (at most 64)",
            );
        }
        v.check("description", check_text(&self.description, 0, 2000));
        match (self.field_type, self.max_length) {
            (FieldType::String, Some(n)) if n == 0 || n > MAX_MAX_LENGTH => {
                v.add("max_length", format!("must be 1 to {MAX_MAX_LENGTH}"))
            }
            (FieldType::String, _) | (_, None) => {}
            (_, Some(_)) => v.add("max_length", "is only for string fields"),
        }
        if self.field_type == FieldType::Code {
            if self.codes.is_empty() || self.codes.len() > 500 {
                v.add("codes", "a code field needs 1 to 500 codes");
            }
            let mut seen = HashSet::new();
            for (i, code) in self.codes.iter().enumerate() {
                let ok = !code.code.is_empty()
                    && code.code.len() <= 64
                    && code
                        .code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !ok {
                    v.add(
                        format!("codes[{i}].code"),
                        "must be 1 to 64 letters, digits, '.', '_' or '-'",
                    );
                } else if !seen.insert(code.code.as_str()) {
                    v.add(
                        format!("codes[{i}].code"),
                        format!("{:?} is listed twice", code.code),
                    );
                }
                v.check(
                    &format!("codes[{i}].display"),
                    check_text(&code.display, 1, 200),
                );
            }
        } else if !self.codes.is_empty() {
            v.add("codes", "are only for code fields");
        }
        v
    }
}

/// A record class with its field schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordClass {
    pub id: RecordClassId,
    pub display_name: String,
    pub description: String,
    pub fields: Vec<FieldSpec>,
    pub create_time: DateTime<Utc>,
}

impl RecordClass {
    /// Validates a class declaration, reporting every problem at once.
    /// Paths are relative to the record class message.
    pub fn parse(
        id: &str,
        display_name: &str,
        description: &str,
        fields: Vec<FieldSpec>,
        create_time: DateTime<Utc>,
    ) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let id = v.check("id", RecordClassId::parse(id));
        v.check("display_name", check_text(display_name, 1, 200));
        v.check("description", check_text(description, 0, 2000));
        if fields.is_empty() || fields.len() > 100 {
            v.add("fields", "a record class needs 1 to 100 fields");
        }
        let mut names = HashSet::new();
        for (i, field) in fields.iter().enumerate() {
            v.extend_prefixed(&format!("fields[{i}]"), field.check());
            if !names.insert(field.name.as_str()) {
                v.add(
                    format!("fields[{i}].name"),
                    format!("{:?} is declared twice", field.name),
                );
            }
        }
        v.into_result(|| {
            Some(Self {
                id: id?,
                display_name: display_name.trim().to_owned(),
                description: description.trim().to_owned(),
                fields,
                create_time,
            })
        })
    }

    /// The declaration of the field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_field(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.to_owned(),
            field_type: FieldType::String,
            required: false,
            max_length: None,
            codes: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn ids_are_dotted_segments() {
        assert!(RecordClassId::parse("health.summary").is_ok());
        assert!(RecordClassId::parse("social_care.child_protection").is_ok());
        for bad in [
            "health",
            "Health.summary",
            "health..summary",
            "health.1x",
            "",
        ] {
            assert!(RecordClassId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn class_declarations_report_every_problem() {
        let mut code = string_field("outcome");
        code.field_type = FieldType::Code;
        let mut bad_len = string_field("notes");
        bad_len.max_length = Some(0);
        let err = RecordClass::parse(
            "health",
            "",
            "",
            vec![string_field("a"), string_field("a"), code, bad_len],
            Utc::now(),
        )
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "display_name",
                "fields[1].name",
                "fields[2].codes",
                "fields[3].max_length"
            ]
        );
    }
}
