//! Subjects and their identifiers across the proto boundary.

use super::enums::EnumError;
use super::{enums, pb, purpose, require, timestamp};
use crate::domain::subject::{DemographicsInput, parse_birth_date, parse_postcode};
use crate::domain::{
    AgencyCode, Demographics, Gender, Identifier, IdentifierSystem, Purpose, Subject, SubjectId,
    Violations, check_text,
};
use crate::service::{DemographicQuery, SubjectMatch, SubjectQuery};

fn identifier_system(value: i32) -> Result<IdentifierSystem, EnumError> {
    match enums::required(value)? {
        pb::IdentifierSystem::NhsNumber => Ok(IdentifierSystem::NhsNumber),
        pb::IdentifierSystem::LocalReference => Ok(IdentifierSystem::LocalReference),
        pb::IdentifierSystem::PncId => Ok(IdentifierSystem::PncId),
        pb::IdentifierSystem::Unspecified => Err(EnumError::required::<pb::IdentifierSystem>()),
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

fn gender(value: pb::AdministrativeGender) -> Result<Gender, EnumError> {
    match value {
        pb::AdministrativeGender::Male => Ok(Gender::Male),
        pb::AdministrativeGender::Female => Ok(Gender::Female),
        pb::AdministrativeGender::Other => Ok(Gender::Other),
        pb::AdministrativeGender::Unknown => Ok(Gender::Unknown),
        pb::AdministrativeGender::Unspecified => {
            Err(EnumError::required::<pb::AdministrativeGender>())
        }
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
        gender: enums::required(d.gender)
            .and_then(gender)
            .map_err(|e| e.to_string()),
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
