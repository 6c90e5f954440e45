//! Record classes across the proto boundary.

use super::enums::EnumError;
use super::{enums, pb, require, timestamp};
use crate::domain::{CodeValue, FieldSpec, FieldType, RecordClass, RecordClassId, Violations};
use chrono::{DateTime, Utc};

fn field_type(value: i32) -> Result<FieldType, EnumError> {
    match enums::required(value)? {
        pb::FieldType::String => Ok(FieldType::String),
        pb::FieldType::Integer => Ok(FieldType::Integer),
        pb::FieldType::Boolean => Ok(FieldType::Boolean),
        pb::FieldType::Date => Ok(FieldType::Date),
        pb::FieldType::Timestamp => Ok(FieldType::Timestamp),
        pb::FieldType::Code => Ok(FieldType::Code),
        pb::FieldType::Unspecified => Err(EnumError::required::<pb::FieldType>()),
    }
}

/// CreateRecordClass input.
pub fn create_record_class(
    req: pb::CreateRecordClassRequest,
    now: DateTime<Utc>,
) -> Result<RecordClass, Violations> {
    let mut v = Violations::new();
    let c = require(req.record_class, "record_class", &mut v).unwrap_or_default();
    let mut fields = Vec::with_capacity(c.fields.len());
    for (i, f) in c.fields.into_iter().enumerate() {
        let Some(t) = v.check(
            &format!("record_class.fields[{i}].type"),
            field_type(f.r#type),
        ) else {
            continue;
        };
        fields.push(FieldSpec {
            name: f.name,
            field_type: t,
            required: f.required,
            max_length: Some(f.max_length).filter(|n| *n != 0),
            codes: f
                .codes
                .into_iter()
                .map(|c| CodeValue {
                    code: c.code,
                    display: c.display,
                })
                .collect(),
            description: f.description,
        });
    }
    match RecordClass::parse(&c.id, &c.display_name, &c.description, fields, now) {
        Ok(class) if v.is_empty() => Ok(class),
        Ok(_) => Err(v),
        Err(more) => {
            v.extend_prefixed("record_class", more);
            Err(v)
        }
    }
}

/// The record class resource name of a request.
pub fn record_class_name(name: &str, field: &str) -> Result<RecordClassId, Violations> {
    RecordClassId::parse_name(name).map_err(|e| Violations::one(field, e))
}

/// The proto form of a record class.
pub fn record_class_out(c: RecordClass) -> pb::RecordClass {
    pb::RecordClass {
        name: c.id.resource_name(),
        id: c.id.as_str().to_owned(),
        display_name: c.display_name,
        description: c.description,
        fields: c
            .fields
            .into_iter()
            .map(|f| pb::FieldSpec {
                name: f.name,
                r#type: match f.field_type {
                    FieldType::String => pb::FieldType::String,
                    FieldType::Integer => pb::FieldType::Integer,
                    FieldType::Boolean => pb::FieldType::Boolean,
                    FieldType::Date => pb::FieldType::Date,
                    FieldType::Timestamp => pb::FieldType::Timestamp,
                    FieldType::Code => pb::FieldType::Code,
                } as i32,
                required: f.required,
                max_length: f.max_length.unwrap_or(0),
                codes: f
                    .codes
                    .into_iter()
                    .map(|c| pb::CodeValue {
                        code: c.code,
                        display: c.display,
                    })
                    .collect(),
                description: f.description,
            })
            .collect(),
        create_time: Some(timestamp(c.create_time)),
    }
}
