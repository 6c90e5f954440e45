//! Subjects and their identifiers: the joined-up view of a citizen.

use super::matches::MatchProbe;
use super::merges::merged_refusal;
use super::{Audited, Call, ServiceError, Services};
use crate::domain::{Demographics, Identifier, Subject, SubjectId};
use crate::matching::Profile;
use crate::policy::Decision;
use crate::store::{After, Expect, StoreError, Write};

/// How many merges a subject's name is followed through at most (a
/// subject merged into one merged later into a third, and so on).
const MAX_MERGE_HOPS: usize = 16;

/// A subject to register.
#[derive(Debug, Clone)]
pub struct NewSubject {
    pub identifiers: Vec<Identifier>,
    pub demographics: Demographics,
    /// Register the subject even if an existing one is certainly the same
    /// person (recorded, and raised as a possible duplicate).
    pub create_despite_match: bool,
}

/// How to find subjects.
#[derive(Debug, Clone)]
pub enum SubjectQuery {
    ByIdentifier(Identifier),
    ByDemographics(MatchProbe),
}

/// A candidate and how well it matches.
#[derive(Debug, Clone)]
pub struct SubjectMatch {
    pub subject: Subject,
    pub score: f64,
    pub matched_fields: Vec<&'static str>,
}

/// How a subject was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// By an identifier or resource name the caller already holds.
    Exact,
    /// By demographics: a search.
    Search,
}

/// How many of a subject's records are considered when looking for one
/// an agreement lets the caller read.
const MAX_RECORDS_CONSIDERED: u32 = 100;

/// The demographic fields a subject view discloses.
const SUBJECT_FIELDS: [&str; 7] = [
    "identifiers",
    "given_name",
    "family_name",
    "birth_date",
    "gender",
    "postcode",
    "uprn",
];

pub(super) fn disclosed() -> Vec<String> {
    SUBJECT_FIELDS.iter().map(|s| (*s).to_owned()).collect()
}

/// Notes in the call's entry the subjects a search disclosed: the subject
/// and its registering agency when there is one, every subject's name
/// when there are several, and their fields.
pub(super) fn note_found(call: &Call, found: &[&Subject]) {
    if let [only] = found {
        call.note_subject(only.id.resource_name());
        call.note_controller(only.registered_by.as_str().to_owned());
    }
    call.note_fields(if found.is_empty() {
        vec![]
    } else {
        disclosed()
    });
    if found.len() > 1 {
        // Several subjects disclosed: the entry lists them all.
        call.note_records(found.iter().map(|s| s.id.resource_name()).collect());
    }
}

impl Services {
    /// Registers a subject.
    pub async fn create_subject(
        &self,
        call: &Call,
        new: NewSubject,
    ) -> Result<Audited<Subject>, ServiceError> {
        let subject = Subject {
            id: SubjectId::generate(),
            identifiers: new.identifiers,
            demographics: new.demographics,
            registered_by: call.caller.agency.clone(),
            merged_into: None,
            create_time: call.time,
        };
        call.note_subject(subject.id.resource_name());
        call.note_controller(call.caller.agency.as_str().to_owned());
        call.note_fields(disclosed());
        // Counted before the screening: a registration of someone like
        // the person committed after this count (by this process or any
        // other) makes this one stale, to be screened again, so that two
        // registrations of one person decided side by side cannot both
        // pass the screening unseen by each other.
        let keys = Profile::of(&subject).blocking_keys();
        let population = self.store.block_population(&keys).await?;
        let raised = self
            .screen_registration(call, &subject, new.create_despite_match)
            .await?;
        // The caller is not told of possible duplicates, nor is its entry
        // (which its auditors read): that someone like the person is known
        // to Accord is for the data-quality staff alone.
        let mut writes = vec![
            Write::CheckBlockPopulation { keys, population },
            Write::InsertSubject(subject.clone()),
        ];
        writes.extend(raised.into_iter().map(Write::InsertPossibleDuplicate));
        self.commit(call, writes, subject).await
    }

    /// The subject `id` names, if the caller may see it: for a subject
    /// merged into another, the survivor (the entry then concerns the
    /// survivor and names the subject asked for).
    pub(super) async fn load_subject(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Subject, ServiceError> {
        let subject = self.resolve_subject(call, id).await?;
        if subject.id != *id {
            call.note_records(vec![id.resource_name()]);
        }
        call.note_controller(subject.registered_by.as_str().to_owned());
        if self.may_see(call, &subject, Lookup::Exact).await? {
            Ok(subject)
        } else {
            Err(ServiceError::NotFound(id.resource_name()))
        }
    }

    /// The subject `id` names, following merges to the survivor (the
    /// entry then concerns the survivor); NOT_FOUND if it is not
    /// registered. Whether the caller may see it is not decided here.
    pub(super) async fn resolve_subject(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Subject, ServiceError> {
        call.note_subject(id.resource_name());
        let subject = self
            .survivor_of(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        if subject.id != *id {
            call.note_subject(subject.id.resource_name());
        }
        Ok(subject)
    }

    /// The subject `id` names, followed through standing merges to the one
    /// it now is; `None` if it (or a survivor) is not registered.
    pub(super) async fn survivor_of(
        &self,
        id: &SubjectId,
    ) -> Result<Option<Subject>, ServiceError> {
        let Some(mut subject) = self.store.subject(id).await? else {
            return Ok(None);
        };
        let mut hops = 0;
        while let Some(survivor) = subject.merged_into.take() {
            hops += 1;
            if hops > MAX_MERGE_HOPS {
                return Err(ServiceError::Unavailable(StoreError::Corrupt(format!(
                    "{} is merged through more than {MAX_MERGE_HOPS} subjects",
                    id.resource_name()
                ))));
            }
            let Some(next) = self.store.subject(&survivor).await? else {
                return Ok(None);
            };
            subject = next;
        }
        Ok(Some(subject))
    }

    /// Whether the caller's agency may see `subject`: always if it is tied
    /// to them (registered them, linked an identifier, controls a record);
    /// if it named them exactly, unless an agency sealed its records about
    /// them; otherwise only if an agreement lets it read one of their
    /// records for the declared purpose (whose grounds are then noted).
    pub(super) async fn may_see(
        &self,
        call: &Call,
        subject: &Subject,
        lookup: Lookup,
    ) -> Result<bool, ServiceError> {
        let ties = self.store.subject_ties(&subject.id).await?;
        if ties.connected.contains(&call.caller.agency) {
            return Ok(true);
        }
        if lookup == Lookup::Exact && ties.sealed_by.is_empty() {
            return Ok(true);
        }
        let records = self
            .store
            .records_of_subject(&subject.id, After::Start, MAX_RECORDS_CONSIDERED)
            .await?;
        let agreements = self.policies_for(call, &records).await?;
        for record in &records {
            if let Decision::Permit(permit) = self.decide(call, &agreements, record)? {
                call.note_permit(&permit);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The subject a change names, which the caller may see: refused if
    /// it was merged into another (the change is for the survivor), and
    /// relied on not to be merged before the change commits.
    pub(super) async fn subject_to_change(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Subject, ServiceError> {
        let subject = self.load_subject(call, id).await?;
        if subject.id != *id {
            return Err(merged_refusal(id));
        }
        call.rely_on(Expect::Subject(id.clone()), false);
        Ok(subject)
    }

    /// Reads one subject; for a subject merged into another, the survivor,
    /// with `merged_into` naming it.
    pub async fn get_subject(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Audited<Subject>, ServiceError> {
        let mut subject = self.load_subject(call, id).await?;
        if subject.id != *id {
            subject.merged_into = Some(subject.id.clone());
        }
        call.note_fields(disclosed());
        self.commit(call, vec![], subject).await
    }

    /// Finds subjects by identifier or demographics, best first.
    pub async fn find_subjects(
        &self,
        call: &Call,
        query: SubjectQuery,
        max_results: usize,
    ) -> Result<Audited<Vec<SubjectMatch>>, ServiceError> {
        let matches = match query {
            SubjectQuery::ByIdentifier(identifier) => {
                let found = match self.store.identifier_link(&identifier).await? {
                    None => None,
                    Some(link) => self.store.subject(&link.subject).await?,
                };
                let mut matches = vec![];
                if let Some(subject) = found
                    && self.may_see(call, &subject, Lookup::Exact).await?
                {
                    matches.push(SubjectMatch {
                        subject,
                        score: 1.0,
                        matched_fields: vec!["identifier"],
                    });
                }
                matches
            }
            SubjectQuery::ByDemographics(probe) => self
                .visible_candidates(call, &probe, max_results)
                .await?
                .into_iter()
                .map(|c| SubjectMatch {
                    score: self.matcher.probability(c.explanation.score),
                    matched_fields: c.explanation.agreeing_fields(),
                    subject: c.subject,
                })
                .collect(),
        };
        let found: Vec<&Subject> = matches.iter().map(|m| &m.subject).collect();
        note_found(call, &found);
        self.commit(call, vec![], matches).await
    }

    /// Adds an identifier to a subject.
    pub async fn link_identifier(
        &self,
        call: &Call,
        id: &SubjectId,
        identifier: Identifier,
    ) -> Result<Audited<Subject>, ServiceError> {
        let mut subject = self.subject_to_change(call, id).await?;
        call.note_fields(vec!["identifiers".to_owned()]);
        let write = Write::LinkIdentifier {
            subject: id.clone(),
            identifier: identifier.clone(),
            linked_by: call.caller.agency.clone(),
            time: call.time,
        };
        subject.identifiers.push(identifier);
        self.commit(call, vec![write], subject).await
    }

    /// Removes an identifier the caller's agency linked.
    pub async fn unlink_identifier(
        &self,
        call: &Call,
        id: &SubjectId,
        identifier: Identifier,
    ) -> Result<Audited<Subject>, ServiceError> {
        let mut subject = self.subject_to_change(call, id).await?;
        call.note_fields(vec!["identifiers".to_owned()]);
        match self.store.identifier_link(&identifier).await? {
            Some(link) if link.subject == *id => {
                if link.linked_by != call.caller.agency {
                    return Err(ServiceError::denied(
                        "NOT_LINKING_AGENCY",
                        format!(
                            "identifier {identifier} was linked by agency {}; only that agency may unlink it",
                            link.linked_by
                        ),
                    ));
                }
            }
            _ => {
                return Err(ServiceError::NotFound(format!(
                    "identifier {identifier} on {}",
                    id.resource_name()
                )));
            }
        }
        subject.identifiers.retain(|i| *i != identifier);
        let write = Write::UnlinkIdentifier {
            subject: id.clone(),
            identifier,
            unlinked_by: call.caller.agency.clone(),
        };
        self.commit(call, vec![write], subject).await
    }
}
