//! The only boundary between generated proto types and domain types. Input
//! is checked here field by field; every problem is reported with its path
//! in the request.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

mod agreement;
mod consent;
mod enums;

pub use agreement::*;
pub use consent::*;

use super::pb;
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, JwksSource, TokenIssuer,
    TokenIssuerId,
};
use crate::domain::record::RawValue;
use crate::domain::subject::{DemographicsInput, parse_birth_date, parse_postcode};
use crate::domain::{
    Agency, AgencyCode, AgencyKind, AgencyStatus, CodeValue, Demographics, FieldSpec, FieldType,
    FieldValue, Gender, Identifier, IdentifierSystem, Purpose, Record, RecordClass, RecordClassId,
    RecordId, Subject, SubjectId, Violations, check_text,
};
use crate::domain::{Alert, AlertId, AlertKind};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::{Entry, Outcome};
use crate::service::{ConsistencyProof, EntryRef, InclusionProof};
use crate::service::{DemographicQuery, SubjectMatch, SubjectQuery};

// ---- shared pieces --------------------------------------------------------

/// The proto timestamp of an instant.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The instant of a proto timestamp, if it is a valid one.
pub fn instant(t: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(t.nanos).ok()?;
    DateTime::from_timestamp(t.seconds, nanos)
}

/// The purpose of a request: required, never unspecified.
pub fn purpose(value: i32, v: &mut Violations) -> Option<Purpose> {
    purpose_at(value, "purpose", v)
}

/// A purpose at `field`: required, never unspecified.
fn purpose_at(value: i32, field: &str, v: &mut Violations) -> Option<Purpose> {
    Some(match v.check(field, enums::required(value))? {
        pb::Purpose::DirectCare => Purpose::DirectCare,
        pb::Purpose::Safeguarding => Purpose::Safeguarding,
        pb::Purpose::CrimePrevention => Purpose::CrimePrevention,
        pb::Purpose::Emergency => Purpose::Emergency,
        pb::Purpose::Administration => Purpose::Administration,
        pb::Purpose::Research => Purpose::Research,
        pb::Purpose::Unspecified => return None,
    })
}

fn purpose_out(p: Option<Purpose>) -> pb::Purpose {
    match p {
        None => pb::Purpose::Unspecified,
        Some(Purpose::DirectCare) => pb::Purpose::DirectCare,
        Some(Purpose::Safeguarding) => pb::Purpose::Safeguarding,
        Some(Purpose::CrimePrevention) => pb::Purpose::CrimePrevention,
        Some(Purpose::Emergency) => pb::Purpose::Emergency,
        Some(Purpose::Administration) => pb::Purpose::Administration,
        Some(Purpose::Research) => pb::Purpose::Research,
    }
}

/// The emergency reason of a read: `Some(None)` when none is given,
/// `Some(Some(reason))` for a valid one, `None` (with a violation) for an
/// invalid one. A reason needs PURPOSE_EMERGENCY, and PURPOSE_EMERGENCY
/// needs a reason.
fn break_glass(
    reason: &str,
    purpose: Option<Purpose>,
    v: &mut Violations,
) -> Option<Option<String>> {
    if reason.is_empty() {
        if purpose == Some(Purpose::Emergency) {
            v.add(
                "break_glass_reason",
                "is required with PURPOSE_EMERGENCY: say why emergency access is needed",
            );
            return None;
        }
        return Some(None);
    }
    if let Err(e) = check_text(reason, 1, 500) {
        v.add("break_glass_reason", e);
        return None;
    }
    if purpose.is_some_and(|p| p != Purpose::Emergency) {
        v.add(
            "break_glass_reason",
            "is only for emergency access: declare PURPOSE_EMERGENCY",
        );
        return None;
    }
    Some(Some(reason.trim().to_owned()))
}

/// The page request of a `List*` call.
pub fn page_request(
    page_size: i32,
    page_token: String,
    v: &mut Violations,
) -> crate::service::PageRequest {
    let size = u32::try_from(page_size).unwrap_or_else(|_| {
        v.add("page_size", "must not be negative");
        0
    });
    crate::service::PageRequest {
        size,
        token: page_token,
    }
}

/// The page request of a `List*` call that takes nothing else.
pub fn list_page(
    page_size: i32,
    page_token: String,
) -> Result<crate::service::PageRequest, Violations> {
    let mut v = Violations::new();
    let page = page_request(page_size, page_token, &mut v);
    v.into_result(|| Some(page))
}

/// The domain value named like a proto enum value: `{PREFIX}SOME_NAME` is
/// the value whose storage code is `some_name`.
fn by_name<T>(name: Option<&str>, prefix: &str, from_code: fn(&str) -> Option<T>) -> Option<T> {
    from_code(&name?.strip_prefix(prefix)?.to_ascii_lowercase())
}

fn require<T>(value: Option<T>, field: &str, v: &mut Violations) -> Option<T> {
    if value.is_none() {
        v.add(field, "is required");
    }
    value
}

// ---- agencies -------------------------------------------------------------

fn agency_kind(value: i32) -> Result<AgencyKind, String> {
    match enums::required(value)? {
        pb::AgencyKind::Council => Ok(AgencyKind::Council),
        pb::AgencyKind::Health => Ok(AgencyKind::Health),
        pb::AgencyKind::Police => Ok(AgencyKind::Police),
        pb::AgencyKind::Education => Ok(AgencyKind::Education),
        pb::AgencyKind::Other => Ok(AgencyKind::Other),
        pb::AgencyKind::Unspecified => Err("is required".to_owned()),
    }
}

fn agency_status(value: i32) -> Result<AgencyStatus, String> {
    match enums::required(value)? {
        pb::AgencyStatus::Active => Ok(AgencyStatus::Active),
        pb::AgencyStatus::Suspended => Ok(AgencyStatus::Suspended),
        pb::AgencyStatus::Unspecified => Err("is required".to_owned()),
    }
}

/// CreateAgency input: code, display name, kind.
pub fn create_agency(
    req: pb::CreateAgencyRequest,
) -> Result<(AgencyCode, String, AgencyKind), Violations> {
    let mut v = Violations::new();
    let a = require(req.agency, "agency", &mut v).unwrap_or_default();
    let code = v.check("agency.code", AgencyCode::parse(&a.code));
    v.check("agency.display_name", check_text(&a.display_name, 1, 200));
    let kind = v.check("agency.kind", agency_kind(a.kind));
    v.into_result(|| Some((code?, a.display_name.trim().to_owned(), kind?)))
}

/// UpdateAgency input.
pub fn update_agency(
    req: pb::UpdateAgencyRequest,
) -> Result<(AgencyCode, crate::service::AgencyChange), Violations> {
    let mut v = Violations::new();
    let a = require(req.agency, "agency", &mut v).unwrap_or_default();
    let code = v.check("agency.name", AgencyCode::parse_name(&a.name));
    let mut change = crate::service::AgencyChange {
        etag: Some(a.etag.clone()).filter(|e| !e.is_empty()),
        ..Default::default()
    };
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        v.add(
            "update_mask",
            "must name the fields to change: display_name and/or status",
        );
    }
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "display_name" => {
                if v.check("agency.display_name", check_text(&a.display_name, 1, 200))
                    .is_some()
                {
                    change.display_name = Some(a.display_name.trim().to_owned());
                }
            }
            "status" => change.status = v.check("agency.status", agency_status(a.status)),
            other => v.add(
                format!("update_mask.paths[{i}]"),
                format!("{other:?} cannot be changed (only display_name and status)"),
            ),
        }
    }
    v.into_result(|| Some((code?, change)))
}

/// The agency resource name of a request.
pub fn agency_name(name: &str) -> Result<AgencyCode, Violations> {
    AgencyCode::parse_name(name).map_err(|e| Violations::one("name", e))
}

/// The proto form of an agency.
pub fn agency_out(a: Agency) -> pb::Agency {
    pb::Agency {
        name: a.code.resource_name(),
        code: a.code.as_str().to_owned(),
        display_name: a.display_name,
        kind: match a.kind {
            AgencyKind::Council => pb::AgencyKind::Council,
            AgencyKind::Health => pb::AgencyKind::Health,
            AgencyKind::Police => pb::AgencyKind::Police,
            AgencyKind::Education => pb::AgencyKind::Education,
            AgencyKind::Other => pb::AgencyKind::Other,
        } as i32,
        status: match a.status {
            AgencyStatus::Active => pb::AgencyStatus::Active,
            AgencyStatus::Suspended => pb::AgencyStatus::Suspended,
        } as i32,
        create_time: Some(timestamp(a.create_time)),
        update_time: Some(timestamp(a.update_time)),
        etag: a.etag,
    }
}

/// AddCertificateIdentity input: the agency, the match and the note.
pub fn add_certificate_identity(
    req: pb::AddCertificateIdentityRequest,
) -> Result<(AgencyCode, CertificateMatch, String), Violations> {
    use pb::certificate_identity::Match;
    let mut v = Violations::new();
    let agency = v.check("parent", AgencyCode::parse_name(&req.parent));
    let identity = req.certificate_identity.unwrap_or_default();
    let field = |name: &str| format!("certificate_identity.{name}");
    let matcher = match &identity.r#match {
        None => {
            v.add(
                "certificate_identity.match",
                "one of certificate_sha256, spki_sha256 or subject_alt_name is required",
            );
            None
        }
        Some(Match::CertificateSha256(s)) => v.check(
            &field("certificate_sha256"),
            CertificateMatch::certificate(s),
        ),
        Some(Match::SpkiSha256(s)) => v.check(&field("spki_sha256"), CertificateMatch::spki(s)),
        Some(Match::SubjectAltName(s)) => v.check(
            &field("subject_alt_name"),
            CertificateMatch::subject_alt_name(s),
        ),
    };
    v.into_result(|| Some((agency?, matcher?, identity.note)))
}

/// A certificate identity's resource name.
pub fn certificate_identity_name(
    name: &str,
) -> Result<(AgencyCode, CertificateIdentityId), Violations> {
    crate::domain::credential::parse_identity_name(name).map_err(|e| Violations::one("name", e))
}

/// AddTokenIssuer input: the agency and the issuer.
pub fn add_token_issuer(
    req: pb::AddTokenIssuerRequest,
) -> Result<(AgencyCode, crate::service::NewTokenIssuer), Violations> {
    use crate::domain::credential::{check_claim, check_issuer};
    use pb::token_issuer::Jwks;
    let mut v = Violations::new();
    let agency = v.check("parent", AgencyCode::parse_name(&req.parent));
    let t = req.token_issuer.unwrap_or_default();
    let issuer = v.check("token_issuer.issuer", check_issuer(&t.issuer));
    let jwks = match t.jwks {
        Some(Jwks::JwksJson(d)) => Some(JwksSource::Document(d)),
        Some(Jwks::JwksPath(p)) if std::path::Path::new(&p).is_absolute() => {
            Some(JwksSource::Path(p))
        }
        Some(Jwks::JwksPath(_)) => {
            v.add("token_issuer.jwks_path", "must be an absolute path");
            None
        }
        None => {
            v.add("token_issuer.jwks", "jwks_json or jwks_path is required");
            None
        }
    };
    let claim = |value: String, default: &str, field: &str, v: &mut Violations| {
        let value = if value.is_empty() {
            default.to_owned()
        } else {
            value
        };
        v.check(field, check_claim(&value)).map(|()| value)
    };
    let subject_claim = claim(t.subject_claim, "sub", "token_issuer.subject_claim", &mut v);
    let roles_claim = claim(t.roles_claim, "roles", "token_issuer.roles_claim", &mut v);
    v.into_result(|| {
        issuer?;
        Some((
            agency?,
            crate::service::NewTokenIssuer {
                issuer: t.issuer,
                jwks: jwks?,
                subject_claim: subject_claim?,
                roles_claim: roles_claim?,
            },
        ))
    })
}

/// A token issuer's resource name.
pub fn token_issuer_name(name: &str) -> Result<(AgencyCode, TokenIssuerId), Violations> {
    crate::domain::credential::parse_issuer_name(name).map_err(|e| Violations::one("name", e))
}

/// The proto form of a token issuer.
pub fn token_issuer_out(t: TokenIssuer) -> pb::TokenIssuer {
    use pb::token_issuer::Jwks;
    pb::TokenIssuer {
        name: t.resource_name(),
        issuer: t.issuer,
        jwks: Some(match t.jwks {
            JwksSource::Document(d) => Jwks::JwksJson(d),
            JwksSource::Path(p) => Jwks::JwksPath(p),
        }),
        subject_claim: t.subject_claim,
        roles_claim: t.roles_claim,
        create_time: Some(timestamp(t.create_time)),
    }
}

/// The agency a list request names as `parent`.
pub fn parent_agency(parent: &str) -> Result<AgencyCode, Violations> {
    AgencyCode::parse_name(parent).map_err(|e| Violations::one("parent", e))
}

/// The proto form of a certificate identity.
pub fn certificate_identity_out(c: CertificateIdentity) -> pb::CertificateIdentity {
    use pb::certificate_identity::Match;
    let name = c.resource_name();
    let value = c.matcher.value();
    pb::CertificateIdentity {
        name,
        r#match: Some(match c.matcher {
            CertificateMatch::CertificateSha256(_) => Match::CertificateSha256(value),
            CertificateMatch::SpkiSha256(_) => Match::SpkiSha256(value),
            CertificateMatch::SubjectAltName(_) => Match::SubjectAltName(value),
        }),
        note: c.note,
        create_time: Some(timestamp(c.create_time)),
        revoke_time: c.revoke_time.map(timestamp),
    }
}

// ---- catalogue ------------------------------------------------------------

fn field_type(value: i32) -> Result<FieldType, String> {
    match enums::required(value)? {
        pb::FieldType::String => Ok(FieldType::String),
        pb::FieldType::Integer => Ok(FieldType::Integer),
        pb::FieldType::Boolean => Ok(FieldType::Boolean),
        pb::FieldType::Date => Ok(FieldType::Date),
        pb::FieldType::Timestamp => Ok(FieldType::Timestamp),
        pb::FieldType::Code => Ok(FieldType::Code),
        pb::FieldType::Unspecified => Err("is required".to_owned()),
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

// ---- subjects -------------------------------------------------------------

fn identifier_system(value: i32) -> Result<IdentifierSystem, String> {
    match enums::required(value)? {
        pb::IdentifierSystem::NhsNumber => Ok(IdentifierSystem::NhsNumber),
        pb::IdentifierSystem::LocalReference => Ok(IdentifierSystem::LocalReference),
        pb::IdentifierSystem::PncId => Ok(IdentifierSystem::PncId),
        pb::IdentifierSystem::Unspecified => Err("is required".to_owned()),
    }
}

/// An identifier of a request, at `path`. Local references are assigned by
/// `agency`, unless the request names another assigner and `any_assigner`
/// is allowed (searching).
fn identifier(
    id: &pb::Identifier,
    path: &str,
    agency: &AgencyCode,
    any_assigner: bool,
    v: &mut Violations,
) -> Option<Identifier> {
    let system = v.check(&format!("{path}.system"), identifier_system(id.system))?;
    let assigner = if id.assigner.is_empty() {
        agency.clone()
    } else {
        let named = v.check(
            &format!("{path}.assigner"),
            AgencyCode::parse_name(&id.assigner),
        )?;
        if !any_assigner && named != *agency && system == IdentifierSystem::LocalReference {
            v.add(
                format!("{path}.assigner"),
                "a local reference can only be linked by its assigning agency",
            );
            return None;
        }
        named
    };
    v.check(
        &format!("{path}.value"),
        Identifier::parse(system, &id.value, Some(&assigner)),
    )
}

fn gender(value: pb::AdministrativeGender) -> Result<Gender, String> {
    match value {
        pb::AdministrativeGender::Male => Ok(Gender::Male),
        pb::AdministrativeGender::Female => Ok(Gender::Female),
        pb::AdministrativeGender::Other => Ok(Gender::Other),
        pb::AdministrativeGender::Unknown => Ok(Gender::Unknown),
        pb::AdministrativeGender::Unspecified => Err("is required".to_owned()),
    }
}

/// The most identifiers one subject may carry.
const MAX_IDENTIFIERS: usize = 50;

/// CreateSubject input.
pub fn create_subject(
    req: pb::CreateSubjectRequest,
    agency: &AgencyCode,
    today: chrono::NaiveDate,
) -> Result<(Purpose, crate::service::NewSubject), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let s = require(req.subject, "subject", &mut v).unwrap_or_default();
    if s.identifiers.is_empty() || s.identifiers.len() > MAX_IDENTIFIERS {
        v.add(
            "subject.identifiers",
            format!("a subject needs 1 to {MAX_IDENTIFIERS} identifiers"),
        );
    }
    let mut identifiers: Vec<Identifier> = vec![];
    for (i, id) in s.identifiers.iter().enumerate() {
        let path = format!("subject.identifiers[{i}]");
        if let Some(id) = identifier(id, &path, agency, false, &mut v) {
            if identifiers.contains(&id) {
                v.add(path, "is listed twice");
            } else {
                identifiers.push(id);
            }
        }
    }
    let d = require(s.demographics, "subject.demographics", &mut v).unwrap_or_default();
    let demographics = match Demographics::parse(&demographics_input(&d), today) {
        Ok(d) => Some(d),
        Err(more) => {
            v.extend_prefixed("subject.demographics", more);
            None
        }
    };
    v.into_result(|| {
        Some((
            purpose?,
            crate::service::NewSubject {
                identifiers,
                demographics: demographics?,
            },
        ))
    })
}

fn demographics_input(d: &pb::Demographics) -> DemographicsInput<'_> {
    DemographicsInput {
        given_name: &d.given_name,
        family_name: &d.family_name,
        birth_date: &d.birth_date,
        gender: enums::required(d.gender).and_then(gender),
        postcode: &d.postcode,
        uprn: &d.uprn,
    }
}

/// The subject resource name of a request, at `field`.
pub fn subject_name(name: &str, field: &str, v: &mut Violations) -> Option<SubjectId> {
    v.check(field, SubjectId::parse_name(name))
}

/// GetSubject input.
pub fn get_subject(req: pb::GetSubjectRequest) -> Result<(Purpose, SubjectId), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let id = subject_name(&req.name, "name", &mut v);
    v.into_result(|| Some((purpose?, id?)))
}

/// FindSubjects input.
pub fn find_subjects(
    req: pb::FindSubjectsRequest,
    agency: &AgencyCode,
    today: chrono::NaiveDate,
) -> Result<(Purpose, SubjectQuery, usize), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let max = match req.max_results {
        0 => Some(10),
        n @ 1..=50 => usize::try_from(n).ok(),
        _ => {
            v.add("max_results", "must be 1 to 50");
            None
        }
    };
    let query = match req.query {
        None => {
            v.add("query", "give an identifier or demographics to search by");
            None
        }
        Some(pb::find_subjects_request::Query::Identifier(id)) => {
            identifier(&id, "identifier", agency, true, &mut v).map(SubjectQuery::ByIdentifier)
        }
        Some(pb::find_subjects_request::Query::Demographics(d)) => {
            let family = v.check(
                "demographics.family_name",
                check_text(&d.family_name, 1, 100),
            );
            let birth = v.check(
                "demographics.birth_date",
                parse_birth_date(&d.birth_date, today),
            );
            let postcode = if d.postcode.trim().is_empty() {
                None
            } else {
                v.check("demographics.postcode", parse_postcode(&d.postcode))
            };
            let given = Some(d.given_name.trim().to_owned()).filter(|g| !g.is_empty());
            let gender = v
                .check("demographics.gender", enums::optional(d.gender))
                .flatten()
                .and_then(|g| gender(g).ok());
            match (family, birth) {
                (Some(()), Some(birth_date)) => {
                    Some(SubjectQuery::ByDemographics(DemographicQuery {
                        family_name: d.family_name.trim().to_owned(),
                        birth_date,
                        given_name: given,
                        gender,
                        postcode,
                    }))
                }
                _ => None,
            }
        }
    };
    v.into_result(|| Some((purpose?, query?, max?)))
}

/// LinkIdentifier and UnlinkIdentifier input. Only unlinking may name
/// another agency's local reference (the service then refuses it).
pub fn identifier_change(
    subject: &str,
    id: Option<pb::Identifier>,
    purpose_value: i32,
    agency: &AgencyCode,
    unlinking: bool,
) -> Result<(Purpose, SubjectId, Identifier), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(purpose_value, &mut v);
    let subject = subject_name(subject, "subject", &mut v);
    let id = require(id, "identifier", &mut v)
        .and_then(|id| identifier(&id, "identifier", agency, unlinking, &mut v));
    v.into_result(|| Some((purpose?, subject?, id?)))
}

fn identifier_out(id: &Identifier) -> pb::Identifier {
    pb::Identifier {
        system: match id.system() {
            IdentifierSystem::NhsNumber => pb::IdentifierSystem::NhsNumber,
            IdentifierSystem::LocalReference => pb::IdentifierSystem::LocalReference,
            IdentifierSystem::PncId => pb::IdentifierSystem::PncId,
        } as i32,
        value: id.value().to_owned(),
        assigner: id
            .assigner()
            .map(AgencyCode::resource_name)
            .unwrap_or_default(),
    }
}

/// The proto form of a subject.
pub fn subject_out(s: Subject) -> pb::Subject {
    let d = s.demographics;
    pb::Subject {
        name: s.id.resource_name(),
        id: s.id.as_str().to_owned(),
        identifiers: s.identifiers.iter().map(identifier_out).collect(),
        demographics: Some(pb::Demographics {
            given_name: d.given_name,
            family_name: d.family_name,
            birth_date: d.birth_date.to_string(),
            gender: match d.gender {
                Gender::Male => pb::AdministrativeGender::Male,
                Gender::Female => pb::AdministrativeGender::Female,
                Gender::Other => pb::AdministrativeGender::Other,
                Gender::Unknown => pb::AdministrativeGender::Unknown,
            } as i32,
            postcode: d.postcode.unwrap_or_default(),
            uprn: d.uprn.unwrap_or_default(),
        }),
        create_time: Some(timestamp(s.create_time)),
        registered_by: s.registered_by.resource_name(),
    }
}

/// The proto form of a subject match.
pub fn subject_match_out(m: SubjectMatch) -> pb::SubjectMatch {
    pb::SubjectMatch {
        subject: Some(subject_out(m.subject)),
        score: m.score,
        matched_fields: m.matched_fields.into_iter().map(str::to_owned).collect(),
    }
}

// ---- records --------------------------------------------------------------

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

/// The proto form of a record version.
pub fn record_out(r: Record) -> pb::Record {
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
        shared_under: Vec::new(),
    }
}

/// The proto form of a record as disclosed to its reader.
pub fn shared_record_out(s: crate::service::SharedRecord) -> pb::Record {
    pb::Record {
        shared_under: s.agreements,
        ..record_out(s.record)
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
            agreements: p.agreements,
            lawful_bases: p
                .lawful_bases
                .iter()
                .map(|b| b.code.code().to_owned())
                .collect(),
            consent: p.consent.map(|c| c.resource_name()).unwrap_or_default(),
            break_glass: p.break_glass.is_some(),
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

// ---- audit ----------------------------------------------------------------

/// ListEntries input.
pub fn list_entries(
    req: pb::ListEntriesRequest,
) -> Result<
    (
        Purpose,
        crate::store::EntryFilter,
        crate::service::PageRequest,
    ),
    Violations,
> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let mut filter = crate::store::EntryFilter::default();
    if !req.subject.is_empty() {
        filter.subject = subject_name(&req.subject, "subject", &mut v).map(|s| s.resource_name());
    }
    if !req.agency.is_empty() {
        filter.agency = v
            .check("agency", AgencyCode::parse_name(&req.agency))
            .map(|a| a.as_str().to_owned());
    }
    if !req.principal.is_empty() {
        filter.principal = v
            .check(
                "principal",
                crate::domain::PrincipalId::parse(&req.principal),
            )
            .map(|p| p.as_str().to_owned());
    }
    if req.entry_purpose != 0 {
        filter.purpose = purpose_at(req.entry_purpose, "entry_purpose", &mut v);
    }
    filter.outcome = match v.check("outcome", enums::optional(req.outcome)).flatten() {
        None | Some(pb::Outcome::Unspecified) => None,
        Some(pb::Outcome::Permitted) => Some(Outcome::Permitted),
        Some(pb::Outcome::Denied) => Some(Outcome::Denied),
        Some(pb::Outcome::Invalid) => Some(Outcome::Invalid),
        Some(pb::Outcome::Failed) => Some(Outcome::Failed),
    };

    filter.break_glass_only = req.break_glass_only;
    if req.unattributed_only {
        if req.agency.is_empty() {
            // No agency code is empty: this asks for unattributed entries.
            filter.agency = Some(String::new());
        } else {
            v.add("agency", "cannot be combined with unattributed_only");
        }
    }
    if !req.client_certificate.is_empty() {
        filter.client_certificate = v
            .check(
                "client_certificate",
                crate::domain::credential::CertificateMatch::certificate(&req.client_certificate),
            )
            .map(|m| m.value());
    }
    (filter.start, filter.end) = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((purpose?, filter, page)))
}

/// A `[start, end)` time range; either end may be open.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A `[start, end)` time range of a request; either end may be open.
fn time_range(start: Option<&Timestamp>, end: Option<&Timestamp>, v: &mut Violations) -> TimeRange {
    let mut at = |field: &str, t: Option<&Timestamp>| {
        t.and_then(|t| {
            v.check(
                field,
                instant(t).ok_or_else(|| "is not a valid timestamp".to_owned()),
            )
        })
    };
    let (start, end) = (at("start_time", start), at("end_time", end));
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.add("end_time", "must be after start_time");
    }
    (start, end)
}

/// GetSubjectAccessReport input.
pub fn subject_access_report(
    req: pb::GetSubjectAccessReportRequest,
) -> Result<(Purpose, SubjectId, TimeRange), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let subject = subject_name(&req.subject, "subject", &mut v);
    let range = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    v.into_result(|| Some((purpose?, subject?, range)))
}

fn outcome_out(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Permitted => pb::Outcome::Permitted,
        Outcome::Denied => pb::Outcome::Denied,
        Outcome::Invalid => pb::Outcome::Invalid,
        Outcome::Failed => pb::Outcome::Failed,
    }
}

/// The proto form of a subject access report.
pub fn access_report_out(r: crate::service::AccessReport) -> pb::GetSubjectAccessReportResponse {
    pb::GetSubjectAccessReportResponse {
        subject: r.subject.resource_name(),
        generate_time: Some(timestamp(r.generate_time)),
        accesses: r
            .accesses
            .into_iter()
            .map(|a| pb::SubjectAccess {
                time: Some(timestamp(a.time)),
                agency: agency_ref(&a.agency),
                principal: a.principal,
                roles: a.roles,
                activity: a.activity,
                purpose: purpose_out(a.purpose) as i32,
                records: a.records,
                fields: a.fields,
                outcome: outcome_out(a.outcome) as i32,
                reason: a.reason,
                entry_index: a.entry_index,
                agreements: a.grounds.agreements,
                lawful_bases: a.grounds.lawful_bases,
                consent: a.grounds.consent,
                break_glass_reason: a.grounds.break_glass,
            })
            .collect(),
        truncated: r.truncated,
    }
}

fn agency_ref(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!("agencies/{code}")
    }
}

/// The proto form of a ledger entry.
pub fn entry_out(e: Entry) -> pb::LedgerEntry {
    let leaf_hash = e.leaf_hash().to_vec();
    let d = e.draft;
    pb::LedgerEntry {
        index: e.index,
        id: d.id,
        time: Some(timestamp(d.time)),
        request_id: d.request_id,
        agency: agency_ref(&d.agency),
        principal: d.principal,
        roles: d.roles,
        action: d.action,
        purpose: purpose_out(d.purpose) as i32,
        subject: d.subject,
        records: d.records,
        fields: d.fields,
        outcome: outcome_out(d.outcome) as i32,
        reason_code: d.reason_code,
        reason: d.reason,
        controller: agency_ref(&d.controller),
        leaf_hash,
        agreements: d.grounds.agreements,
        lawful_bases: d.grounds.lawful_bases,
        consent: d.grounds.consent,
        break_glass_reason: d.grounds.break_glass,
        client_certificate: d.client_certificate,
    }
}

/// A non-negative size or index from the wire, `field` naming it.
fn position(value: i64, field: &str, v: &mut Violations) -> Option<u64> {
    let p = u64::try_from(value).ok();
    if p.is_none() {
        v.add(field, "must not be negative");
    }
    p
}

/// The inputs of GetCheckpoint.
pub fn checkpoint_request(req: pb::GetCheckpointRequest) -> Result<(Purpose, bool), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    v.into_result(|| Some((purpose?, req.refresh)))
}

/// The inputs of GetInclusionProof.
pub fn inclusion_request(
    req: pb::GetInclusionProofRequest,
) -> Result<(Purpose, EntryRef, Option<u64>), Violations> {
    use pb::get_inclusion_proof_request::Entry as Which;
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let target = match req.entry {
        Some(Which::LeafIndex(i)) => position(i, "leaf_index", &mut v).map(EntryRef::Index),
        Some(Which::EntryId(id)) if !id.is_empty() && id.len() <= 64 => Some(EntryRef::Id(id)),
        Some(Which::EntryId(_)) => {
            v.add("entry_id", "must be an entry id (1 to 64 characters)");
            None
        }
        None => {
            v.add("entry", "name the entry by leaf_index or entry_id");
            None
        }
    };
    let size = position(req.tree_size, "tree_size", &mut v);
    v.into_result(|| Some((purpose?, target?, size.filter(|s| *s > 0))))
}

/// The inputs of GetConsistencyProof.
pub fn consistency_request(
    req: pb::GetConsistencyProofRequest,
) -> Result<(Purpose, u64, Option<u64>), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let first = position(req.first_size, "first_size", &mut v);
    if first == Some(0) {
        v.add(
            "first_size",
            "must be at least 1: a proof from the empty tree proves nothing",
        );
    }
    let second = position(req.second_size, "second_size", &mut v);
    v.into_result(|| Some((purpose?, first?, second.filter(|s| *s > 0))))
}

/// The proto form of a size or index (sizes beyond `i64` cannot be stored).
fn wire_position(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The proto form of a signed checkpoint.
pub fn checkpoint_out(c: SignedCheckpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        origin: c.origin().to_owned(),
        size: wire_position(c.head.size),
        root_hash: c.head.root.to_vec(),
        sign_time: Some(timestamp(c.time)),
        note: c.note,
    }
}

/// The proto form of an inclusion proof.
pub fn inclusion_out(p: InclusionProof) -> pb::GetInclusionProofResponse {
    pb::GetInclusionProofResponse {
        entry: Some(entry_out(p.entry)),
        tree_size: wire_position(p.tree_size),
        hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
        checkpoint: p.checkpoint.map(checkpoint_out),
    }
}

/// The proto form of a consistency proof.
pub fn consistency_out(p: ConsistencyProof) -> pb::GetConsistencyProofResponse {
    pb::GetConsistencyProofResponse {
        first_size: wire_position(p.first_size),
        second_size: wire_position(p.second_size),
        hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
        first_checkpoint: p.first_checkpoint.map(checkpoint_out),
        second_checkpoint: p.second_checkpoint.map(checkpoint_out),
    }
}

/// The inputs of ExportEntries.
pub fn export_request(req: pb::ExportEntriesRequest) -> Result<(Purpose, u64), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let start = position(req.start_index, "start_index", &mut v);
    v.into_result(|| Some((purpose?, start?)))
}

/// The export item of an entry and its proof.
pub fn exported_entry_out(
    entry: Entry,
    proof: Vec<crate::ledger::Hash>,
) -> pb::ExportEntriesResponse {
    pb::ExportEntriesResponse {
        item: Some(pb::export_entries_response::Item::Entry(
            pb::ExportedEntry {
                entry: Some(entry_out(entry)),
                inclusion_proof: proof.iter().map(|h| h.to_vec()).collect(),
            },
        )),
    }
}

/// The inputs of ListAlerts.
pub fn list_alerts_request(
    req: pb::ListAlertsRequest,
) -> Result<(Purpose, bool, crate::service::PageRequest), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((purpose?, req.unacknowledged_only, page)))
}

/// The inputs of AcknowledgeAlert.
pub fn acknowledge_request(
    req: pb::AcknowledgeAlertRequest,
) -> Result<(Purpose, AlertId, String), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let id = v.check("name", AlertId::parse_name(&req.name));
    let note = v
        .check("note", crate::domain::check_text(&req.note, 0, 2000))
        .map(|()| req.note.trim().to_owned());
    v.into_result(|| Some((purpose?, id?, note?)))
}

/// The proto form of an alert.
pub fn alert_out(a: Alert) -> pb::Alert {
    let ack = a.acknowledgement;
    pb::Alert {
        name: a.id.resource_name(),
        kind: match a.kind {
            AlertKind::RepeatedRefusals => pb::AlertKind::RepeatedRefusals,
            AlertKind::BreakGlass => pb::AlertKind::BreakGlass,
            AlertKind::UnattributedRefusals => pb::AlertKind::UnattributedRefusals,
        } as i32,
        recipient: a.recipient.resource_name(),
        agency: agency_ref(&a.agency),
        principal: a.principal,
        subject: a.subject,
        summary: a.summary,
        entry_index: a.entry_index,
        raise_time: Some(timestamp(a.raise_time)),
        acknowledged: ack.is_some(),
        acknowledged_by: ack
            .as_ref()
            .map(|k| k.principal.clone())
            .unwrap_or_default(),
        acknowledge_time: ack.as_ref().map(|k| timestamp(k.time)),
        acknowledge_note: ack.map(|k| k.note).unwrap_or_default(),
    }
}
