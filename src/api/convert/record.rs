//! Records, seals and access checks across the proto boundary.

use super::{break_glass, instant, page_request, pb, purpose, require, subject_name, timestamp};
use crate::domain::record::RawValue;
use crate::domain::{
    FieldValue, Purpose, RecordClassId, RecordId, SubjectId, Violations, check_text,
};
use crate::policy::Disclosed;

fn raw_fields(
    fields: std::collections::HashMap<String, pb::FieldValue>,
) -> Vec<(String, RawValue)> {
    use pb::field_value::Kind;
    let mut out: Vec<(String, RawValue)> = fields
        .into_iter()
        .map(|(name, value)| {
            let raw = match value.kind {
                None => RawValue::Missing,
                Some(Kind::StringValue(s)) => RawValue::String(s),
                Some(Kind::IntegerValue(i)) => RawValue::Integer(i),
                Some(Kind::BooleanValue(b)) => RawValue::Boolean(b),
                Some(Kind::DateValue(d)) => RawValue::Date(d),
                Some(Kind::TimestampValue(t)) => RawValue::Timestamp(instant(&t)),
                Some(Kind::CodeValue(c)) => RawValue::Code(c),
            };
            (name, raw)
        })
        .collect();
    // Map order on the wire is arbitrary: report problems in name order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// CreateRecord input.
pub fn create_record(
    req: pb::CreateRecordRequest,
) -> Result<(Purpose, crate::service::NewRecord), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let r = require(req.record, "record", &mut v).unwrap_or_default();
    let subject = subject_name(&r.subject, "record.subject", &mut v);
    let class = v.check(
        "record.record_class",
        RecordClassId::parse_name(&r.record_class),
    );
    v.into_result(|| {
        Some((
            purpose?,
            crate::service::NewRecord {
                subject: subject?,
                record_class: class?,
                fields: raw_fields(r.fields),
            },
        ))
    })
}

/// UpdateRecord input.
pub fn update_record(
    req: pb::UpdateRecordRequest,
) -> Result<(Purpose, crate::service::RecordChange), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let r = require(req.record, "record", &mut v).unwrap_or_default();
    let id = v.check("record.name", RecordId::parse_name(&r.name));
    if r.etag.is_empty() {
        v.add(
            "record.etag",
            "is required: the etag of the version being changed",
        );
    }
    v.into_result(|| {
        Some((
            purpose?,
            crate::service::RecordChange {
                id: id?,
                etag: r.etag,
                fields: raw_fields(r.fields),
            },
        ))
    })
}

/// GetRecord input.
pub fn get_record(
    req: pb::GetRecordRequest,
) -> Result<(Purpose, Option<String>, RecordId, Option<i64>), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let break_glass = break_glass(&req.break_glass_reason, purpose, &mut v);
    let id = v.check("name", RecordId::parse_name(&req.name));
    let version = match req.version {
        0 => Some(None),
        n if n > 0 => Some(Some(n)),
        _ => {
            v.add("version", "must be 0 (latest) or a version number from 1");
            None
        }
    };
    v.into_result(|| Some((purpose?, break_glass?, id?, version?)))
}

/// ListRecords input.
pub fn list_records(
    req: pb::ListRecordsRequest,
) -> Result<(Purpose, SubjectId, crate::service::PageRequest), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let subject = subject_name(&req.subject, "subject", &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((purpose?, subject?, page)))
}

fn field_value_out(value: FieldValue) -> pb::FieldValue {
    use pb::field_value::Kind;
    let kind = match value {
        FieldValue::String(s) => Kind::StringValue(s),
        FieldValue::Integer(i) => Kind::IntegerValue(i),
        FieldValue::Boolean(b) => Kind::BooleanValue(b),
        FieldValue::Date(d) => Kind::DateValue(d.to_string()),
        FieldValue::Timestamp(t) => Kind::TimestampValue(timestamp(t)),
        FieldValue::Code(c) => Kind::CodeValue(c),
    };
    pb::FieldValue { kind: Some(kind) }
}

/// The proto form of a record version as disclosed to its reader: the
/// only way a record becomes a message. A record straight from storage
/// does not:
///
/// ```compile_fail
/// fn leak(record: accord::domain::Record) -> accord::api::pb::Record {
///     accord::api::convert::record_out(record)
/// }
/// ```
pub fn record_out(disclosed: Disclosed) -> pb::Record {
    let (r, shared_under) = disclosed.into_parts();
    pb::Record {
        name: r.id.resource_name(),
        id: r.id.as_str().to_owned(),
        subject: r.subject.resource_name(),
        record_class: r.record_class.resource_name(),
        controller: r.controller.resource_name(),
        version: r.version,
        fields: r
            .fields
            .into_iter()
            .map(|(k, v)| (k, field_value_out(v)))
            .collect(),
        etag: r.etag,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
        sealed: r.sealed,
        shared_under,
    }
}

/// CheckAccess input: the purpose, emergency reason and record.
pub fn check_access(
    req: pb::CheckAccessRequest,
) -> Result<(Purpose, Option<String>, RecordId), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let break_glass = break_glass(&req.break_glass_reason, purpose, &mut v);
    let id = v.check("name", RecordId::parse_name(&req.name));
    v.into_result(|| Some((purpose?, break_glass?, id?)))
}

/// The proto form of an access check.
pub fn access_check_out(c: crate::service::AccessCheck) -> pb::CheckAccessResponse {
    match c.permit {
        Ok(p) => pb::CheckAccessResponse {
            permitted: true,
            fields: c.fields,
            agreements: p.agreements().to_vec(),
            lawful_bases: p
                .lawful_bases()
                .iter()
                .map(|b| b.code.code().to_owned())
                .collect(),
            consent: p.consent().map(|c| c.resource_name()).unwrap_or_default(),
            break_glass: p.break_glass().is_some(),
            reason_code: String::new(),
            reason: String::new(),
        },
        Err(d) => pb::CheckAccessResponse {
            permitted: false,
            fields: Vec::new(),
            agreements: if d.agreement.is_empty() {
                Vec::new()
            } else {
                vec![d.agreement]
            },
            lawful_bases: Vec::new(),
            consent: d.consent,
            break_glass: false,
            reason_code: d.code.to_owned(),
            reason: d.message,
        },
    }
}

/// The target and reason of a seal request.
pub fn seal_reason(reason: &str, v: &mut Violations) -> Option<String> {
    v.check("reason", check_text(reason, 1, 500))
        .map(|()| reason.trim().to_owned())
}

/// SealRecord input.
pub fn seal_record(req: pb::SealRecordRequest) -> Result<(RecordId, String), Violations> {
    let mut v = Violations::new();
    let id = v.check("name", RecordId::parse_name(&req.name));
    let reason = seal_reason(&req.reason, &mut v);
    v.into_result(|| Some((id?, reason?)))
}

/// SealSubjectRecords input.
pub fn seal_subject_records(
    req: pb::SealSubjectRecordsRequest,
) -> Result<(SubjectId, String), Violations> {
    let mut v = Violations::new();
    let subject = subject_name(&req.subject, "subject", &mut v);
    let reason = seal_reason(&req.reason, &mut v);
    v.into_result(|| Some((subject?, reason?)))
}
