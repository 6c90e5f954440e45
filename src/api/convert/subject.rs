//! Subjects and their identifiers across the proto boundary.

use super::enums::EnumError;
use super::{enums, page_request, pb, purpose, require, timestamp};
use crate::domain::consent::ConsentId;
use crate::domain::duplicate::{DuplicateCause, DuplicateState, PossibleDuplicateId};
use crate::domain::merge::{Holdings, SealKey, StoredSeal, SubjectMerge, SubjectMergeId};
use crate::domain::subject::{
    DemographicsInput, optional, parse_birth_date, parse_postcode, parse_uprn,
};
use crate::domain::{
    AgencyCode, Demographics, Gender, Identifier, IdentifierSystem, Purpose, RecordId, Subject,
    SubjectId, Violations, check_text,
};
use crate::matching::{Contribution, Level, Verdict};
use crate::service::{
    DuplicateView, MatchCandidate, MatchProbe, PageRequest, SubjectMatch, SubjectQuery, SubjectView,
};

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
    let identifiers = identifiers(&s.identifiers, "subject.identifiers", agency, &mut v);
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
                create_despite_match: req.create_despite_match,
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

/// The person described by `d` (at `path`) with `identifiers`:
/// `family_name` and `birth_date` required, the rest compared when given.
fn probe(
    d: &pb::Demographics,
    identifiers: Vec<Identifier>,
    path: &str,
    today: chrono::NaiveDate,
    v: &mut Violations,
) -> Option<MatchProbe> {
    let family = v.check(
        &format!("{path}.family_name"),
        check_text(&d.family_name, 1, 100),
    );
    let given = v.check(
        &format!("{path}.given_name"),
        check_text(&d.given_name, 0, 100),
    );
    let birth = v.check(
        &format!("{path}.birth_date"),
        parse_birth_date(&d.birth_date, today),
    );
    let postcode = v.check(
        &format!("{path}.postcode"),
        optional(&d.postcode, parse_postcode),
    );
    let uprn = v.check(&format!("{path}.uprn"), optional(&d.uprn, parse_uprn));
    let gender = v
        .check(&format!("{path}.gender"), enums::optional(d.gender))?
        .map(gender)
        .transpose()
        .ok()?;
    family?;
    given?;
    Some(MatchProbe {
        family_name: d.family_name.trim().to_owned(),
        given_name: Some(d.given_name.trim().to_owned()).filter(|g| !g.is_empty()),
        birth_date: birth?,
        gender,
        postcode: postcode?,
        uprn: uprn?,
        identifiers,
    })
}

/// The most identifiers a match may give.
const MAX_MATCH_IDENTIFIERS: usize = 10;

/// Identifiers of a request at `path`, each at most once; local references
/// are `agency`'s.
fn identifiers(
    ids: &[pb::Identifier],
    path: &str,
    agency: &AgencyCode,
    v: &mut Violations,
) -> Vec<Identifier> {
    let mut out: Vec<Identifier> = vec![];
    for (i, id) in ids.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if let Some(id) = identifier(id, &path, agency, false, v) {
            if out.contains(&id) {
                v.add(path, "is listed twice");
            } else {
                out.push(id);
            }
        }
    }
    out
}

/// MatchSubjects input.
pub fn match_subjects(
    req: pb::MatchSubjectsRequest,
    agency: &AgencyCode,
    today: chrono::NaiveDate,
) -> Result<(Purpose, MatchProbe, usize), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let max = max_results(req.max_results, &mut v);
    if req.identifiers.len() > MAX_MATCH_IDENTIFIERS {
        v.add(
            "identifiers",
            format!("at most {MAX_MATCH_IDENTIFIERS} identifiers"),
        );
    }
    let ids = identifiers(&req.identifiers, "identifiers", agency, &mut v);
    let d = require(req.demographics, "demographics", &mut v).unwrap_or_default();
    let probe = probe(&d, ids, "demographics", today, &mut v);
    v.into_result(|| Some((purpose?, probe?, max?)))
}

/// `max_results` of a search: 1 to 50, 10 when 0.
fn max_results(value: i32, v: &mut Violations) -> Option<usize> {
    match value {
        0 => Some(10),
        n @ 1..=50 => usize::try_from(n).ok(),
        _ => {
            v.add("max_results", "must be 1 to 50");
            None
        }
    }
}

/// FindSubjects input.
pub fn find_subjects(
    req: pb::FindSubjectsRequest,
    agency: &AgencyCode,
    today: chrono::NaiveDate,
) -> Result<(Purpose, SubjectQuery, usize), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let max = max_results(req.max_results, &mut v);
    let query = match req.query {
        None => {
            v.add("query", "give an identifier or demographics to search by");
            None
        }
        Some(pb::find_subjects_request::Query::Identifier(id)) => {
            identifier(&id, "identifier", agency, true, &mut v).map(SubjectQuery::ByIdentifier)
        }
        Some(pb::find_subjects_request::Query::Demographics(d)) => {
            probe(&d, vec![], "demographics", today, &mut v).map(SubjectQuery::ByDemographics)
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
        merged_into: s
            .merged_into
            .as_ref()
            .map(SubjectId::resource_name)
            .unwrap_or_default(),
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

/// The proto form of a match candidate.
pub fn match_candidate_out(c: MatchCandidate) -> pb::MatchCandidate {
    let e = c.explanation;
    pb::MatchCandidate {
        subject: Some(subject_out(c.subject)),
        score: e.score,
        verdict: verdict_out(e.verdict) as i32,
        explanation: e.summary(),
        contributions: e.contributions.iter().map(contribution_out).collect(),
    }
}

fn contribution_out(c: &Contribution) -> pb::FieldContribution {
    let (level, similarity) = match c.level {
        Level::Exact => (pb::MatchLevel::Exact, 0.0),
        Level::Similar(s) => (pb::MatchLevel::Similar, s),
        Level::SharedPart => (pb::MatchLevel::SharedPart, 0.0),
        Level::SoundsAlike => (pb::MatchLevel::SoundsAlike, 0.0),
        Level::Initial => (pb::MatchLevel::Initial, 0.0),
        Level::Transposed => (pb::MatchLevel::Transposed, 0.0),
        Level::OneDigit => (pb::MatchLevel::OneDigit, 0.0),
        Level::SameYear => (pb::MatchLevel::SameYear, 0.0),
        Level::Sector => (pb::MatchLevel::Sector, 0.0),
        Level::District => (pb::MatchLevel::District, 0.0),
        Level::Different => (pb::MatchLevel::Different, 0.0),
        Level::Absent => (pb::MatchLevel::Absent, 0.0),
    };
    pb::FieldContribution {
        field: c.field.name().to_owned(),
        level: level as i32,
        similarity,
        weight: c.weight,
        explanation: c.to_string(),
    }
}

fn duplicate_state_out(state: DuplicateState) -> pb::DuplicateState {
    match state {
        DuplicateState::Open => pb::DuplicateState::Open,
        DuplicateState::DifferentPeople => pb::DuplicateState::DifferentPeople,
        DuplicateState::SamePerson => pb::DuplicateState::SamePerson,
    }
}

/// A duplicate state of a request; UNSPECIFIED is `unspecified`.
fn duplicate_state(
    value: i32,
    unspecified: Option<DuplicateState>,
) -> Result<DuplicateState, String> {
    match pb::DuplicateState::try_from(value) {
        Ok(pb::DuplicateState::Open) => Ok(DuplicateState::Open),
        Ok(pb::DuplicateState::DifferentPeople) => Ok(DuplicateState::DifferentPeople),
        Ok(pb::DuplicateState::SamePerson) => Ok(DuplicateState::SamePerson),
        Ok(pb::DuplicateState::Unspecified) => unspecified.ok_or_else(|| "is required".to_owned()),
        Err(_) => Err(format!("{value} is not a DuplicateState")),
    }
}

/// ListPossibleDuplicates input.
pub fn list_possible_duplicates(
    req: pb::ListPossibleDuplicatesRequest,
) -> Result<(DuplicateState, PageRequest), Violations> {
    let mut v = Violations::new();
    let state = v.check(
        "state",
        duplicate_state(req.state, Some(DuplicateState::Open)),
    );
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((state?, page)))
}

/// ResolvePossibleDuplicate input.
pub fn resolve_possible_duplicate(
    req: pb::ResolvePossibleDuplicateRequest,
) -> Result<(PossibleDuplicateId, DuplicateState, String), Violations> {
    let mut v = Violations::new();
    let id = v.check("name", PossibleDuplicateId::parse_name(&req.name));
    let state = v
        .check("resolution", duplicate_state(req.resolution, None))
        .and_then(|s| {
            if s == DuplicateState::Open {
                v.add(
                    "resolution",
                    "must say how it was resolved: DIFFERENT_PEOPLE or SAME_PERSON",
                );
                None
            } else {
                Some(s)
            }
        });
    let note = v
        .check("note", check_text(&req.note, 1, 1000))
        .map(|()| req.note);
    v.into_result(|| Some((id?, state?, note?)))
}

/// The proto form of a possible duplicate with both sides.
pub fn possible_duplicate_out(view: DuplicateView) -> pb::PossibleDuplicate {
    let d = view.duplicate;
    let e = view.explanation;
    let resolution = d.resolution.as_ref();
    pb::PossibleDuplicate {
        name: d.id.resource_name(),
        subject: Some(subject_out(view.subject)),
        candidate: Some(subject_out(view.candidate)),
        score: e.score,
        verdict: verdict_out(e.verdict) as i32,
        explanation: e.summary(),
        contributions: e.contributions.iter().map(contribution_out).collect(),
        cause: match d.cause {
            DuplicateCause::PossibleMatch => pb::DuplicateCause::PossibleMatch,
            DuplicateCause::CreatedDespiteMatch => pb::DuplicateCause::CreatedDespiteMatch,
            DuplicateCause::CertainButHidden => pb::DuplicateCause::CertainButHidden,
        } as i32,
        raised_by: d.raised_by.resource_name(),
        create_time: Some(timestamp(d.create_time)),
        state: duplicate_state_out(d.state()) as i32,
        resolved_by: resolution.map(|r| r.principal.clone()).unwrap_or_default(),
        resolve_time: resolution.map(|r| timestamp(r.time)),
        resolution_note: resolution.map(|r| r.note.clone()).unwrap_or_default(),
        merge: view
            .merge
            .as_ref()
            .map(SubjectMergeId::resource_name)
            .unwrap_or_default(),
    }
}

/// MergeSubjects input: survivor, merged and note.
pub fn merge_subjects(
    req: pb::MergeSubjectsRequest,
) -> Result<(SubjectId, SubjectId, String), Violations> {
    let mut v = Violations::new();
    let survivor = v.check("survivor", SubjectId::parse_name(&req.survivor));
    let merged = v.check("merged", SubjectId::parse_name(&req.merged));
    let note = v
        .check("note", check_text(&req.note, 1, 1000))
        .map(|()| req.note);
    v.into_result(|| Some((survivor?, merged?, note?)))
}

/// UnmergeSubjects input: the merge and note.
pub fn unmerge_subjects(
    req: pb::UnmergeSubjectsRequest,
) -> Result<(SubjectMergeId, String), Violations> {
    let mut v = Violations::new();
    let id = v.check("name", SubjectMergeId::parse_name(&req.name));
    let note = v
        .check("note", check_text(&req.note, 1, 1000))
        .map(|()| req.note);
    v.into_result(|| Some((id?, note?)))
}

/// ListSubjectMerges input.
pub fn list_subject_merges(req: pb::ListSubjectMergesRequest) -> Result<SubjectId, Violations> {
    SubjectId::parse_name(&req.subject).map_err(|e| Violations::one("subject", e))
}

fn seal_out(s: &StoredSeal) -> pb::SubjectSeal {
    pb::SubjectSeal {
        reason: s.reason.clone(),
        sealed_by: s.sealed_by.clone(),
        seal_time: Some(timestamp(s.seal_time)),
        ..seal_key_out(&s.key)
    }
}

fn seal_key_out(k: &SealKey) -> pb::SubjectSeal {
    pb::SubjectSeal {
        agency: k.agency.resource_name(),
        record: k
            .record
            .as_ref()
            .map(RecordId::resource_name)
            .unwrap_or_default(),
        ..pb::SubjectSeal::default()
    }
}

fn holdings_out(h: &Holdings) -> pb::SubjectHoldings {
    pb::SubjectHoldings {
        identifiers: h.identifiers.iter().map(identifier_out).collect(),
        records: h.records.iter().map(RecordId::resource_name).collect(),
        consents: h.consents.iter().map(ConsentId::resource_name).collect(),
        seals: h.seals.iter().map(seal_key_out).collect(),
        set_aside_seals: h.set_aside.iter().map(seal_out).collect(),
    }
}

/// The proto form of a merge.
pub fn subject_merge_out(m: SubjectMerge) -> pb::SubjectMerge {
    let u = m.unmerge.as_ref();
    pb::SubjectMerge {
        name: m.id.resource_name(),
        survivor: m.survivor.resource_name(),
        merged: m.merged.resource_name(),
        merged_by: m.act.principal.clone(),
        merge_time: Some(timestamp(m.act.time)),
        note: m.act.note.clone(),
        moved: Some(holdings_out(&m.moved)),
        possible_duplicate: m
            .possible_duplicate
            .as_ref()
            .map(PossibleDuplicateId::resource_name)
            .unwrap_or_default(),
        standing: m.is_open(),
        unmerged_by: u.map(|u| u.act.principal.clone()).unwrap_or_default(),
        unmerge_time: u.map(|u| timestamp(u.act.time)),
        unmerge_note: u.map(|u| u.act.note.clone()).unwrap_or_default(),
        restored: u.map(|u| holdings_out(&u.restored)),
        copied_seals: u
            .map(|u| u.copied_seals.iter().map(seal_out).collect())
            .unwrap_or_default(),
    }
}

fn verdict_out(verdict: Verdict) -> pb::MatchVerdict {
    match verdict {
        Verdict::SamePerson => pb::MatchVerdict::SamePerson,
        Verdict::Possible => pb::MatchVerdict::Possible,
        Verdict::Different => pb::MatchVerdict::Unspecified,
    }
}

/// GetSubjectView input.
pub fn get_subject_view(
    req: pb::GetSubjectViewRequest,
) -> Result<(Purpose, SubjectId), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let id = subject_name(&req.subject, "subject", &mut v);
    v.into_result(|| Some((purpose?, id?)))
}

/// The proto form of a joined-up view.
pub fn subject_view_out(view: SubjectView) -> pb::SubjectView {
    pb::SubjectView {
        subject: view.subject.resource_name(),
        demographics: view
            .demographics
            .into_iter()
            .map(|d| pb::DemographicValue {
                field: d.field.to_owned(),
                value: d.value,
                source: d.source.resource_name(),
                time: Some(timestamp(d.time)),
                conflicting: d.conflicting,
            })
            .collect(),
        identifiers: view
            .identifiers
            .iter()
            .map(|l| pb::LinkedIdentifier {
                identifier: Some(identifier_out(&l.identifier)),
                linked_by: l.linked_by.resource_name(),
                link_time: Some(timestamp(l.link_time)),
            })
            .collect(),
        records: view.records.into_iter().map(super::record_out).collect(),
        contacts: view.contacts.into_iter().map(super::record_out).collect(),
        records_truncated: view.truncated,
    }
}
