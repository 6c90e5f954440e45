//! Subjects and their identifiers: the joined-up view of a citizen.

use chrono::NaiveDate;

use super::{Audited, Call, ServiceError, Services};
use crate::domain::{Demographics, Gender, Identifier, Subject, SubjectId};
use crate::policy::Decision;
use crate::store::After;
use crate::store::Write;

/// A subject to register.
#[derive(Debug, Clone)]
pub struct NewSubject {
    pub identifiers: Vec<Identifier>,
    pub demographics: Demographics,
}

/// Demographics to match against, checked.
#[derive(Debug, Clone)]
pub struct DemographicQuery {
    pub family_name: String,
    pub birth_date: NaiveDate,
    pub given_name: Option<String>,
    pub gender: Option<Gender>,
    pub postcode: Option<String>,
}

/// How to find subjects.
#[derive(Debug, Clone)]
pub enum SubjectQuery {
    ByIdentifier(Identifier),
    ByDemographics(DemographicQuery),
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
enum Lookup {
    /// By an identifier or resource name the caller already holds.
    Exact,
    /// By demographics: a search.
    Search,
}

/// How many of a subject's records are considered when looking for one
/// an agreement lets the caller read.
const MAX_RECORDS_CONSIDERED: u32 = 100;

/// Demographic matches below this score are not returned.
const MIN_SCORE: f64 = 0.5;
/// How many candidates demographic matching considers at most.
const MAX_CANDIDATES: u32 = 500;

/// Scores `d` against `q`: family name 0.3, birth date 0.3, given name 0.2,
/// postcode 0.1, gender 0.1 (names compared case-insensitively).
pub fn score(q: &DemographicQuery, d: &Demographics) -> (f64, Vec<&'static str>) {
    let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
    let checks: [(&'static str, f64, bool); 5] = [
        ("family_name", 0.3, same(&q.family_name, &d.family_name)),
        ("birth_date", 0.3, q.birth_date == d.birth_date),
        (
            "given_name",
            0.2,
            q.given_name
                .as_deref()
                .is_some_and(|g| same(g, &d.given_name)),
        ),
        (
            "postcode",
            0.1,
            q.postcode.is_some() && q.postcode == d.postcode,
        ),
        (
            "gender",
            0.1,
            q.gender.is_some() && q.gender == Some(d.gender),
        ),
    ];
    let mut total = 0.0;
    let mut matched = vec![];
    for (name, weight, hit) in checks {
        if hit {
            total += weight;
            matched.push(name);
        }
    }
    ((total * 100.0_f64).round() / 100.0, matched)
}

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

fn disclosed() -> Vec<String> {
    SUBJECT_FIELDS.iter().map(|s| (*s).to_owned()).collect()
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
            create_time: call.time,
        };
        call.note_subject(subject.id.resource_name());
        call.note_controller(call.caller.agency.as_str().to_owned());
        call.note_fields(disclosed());
        self.commit(call, vec![Write::InsertSubject(subject.clone())], subject)
            .await
    }

    pub(super) async fn load_subject(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Subject, ServiceError> {
        call.note_subject(id.resource_name());
        let subject = self
            .store
            .subject(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        call.note_controller(subject.registered_by.as_str().to_owned());
        if self.may_see(call, &subject, Lookup::Exact).await? {
            Ok(subject)
        } else {
            Err(ServiceError::NotFound(id.resource_name()))
        }
    }

    /// Whether the caller's agency may see `subject`: always if it is tied
    /// to them (registered them, linked an identifier, controls a record);
    /// if it named them exactly, unless an agency sealed its records about
    /// them; otherwise only if an agreement lets it read one of their
    /// records for the declared purpose (whose grounds are then noted).
    async fn may_see(
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

    /// Reads one subject.
    pub async fn get_subject(
        &self,
        call: &Call,
        id: &SubjectId,
    ) -> Result<Audited<Subject>, ServiceError> {
        let subject = self.load_subject(call, id).await?;
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
        let lookup = match query {
            SubjectQuery::ByIdentifier(_) => Lookup::Exact,
            SubjectQuery::ByDemographics(_) => Lookup::Search,
        };
        let mut matches = match query {
            SubjectQuery::ByIdentifier(identifier) => {
                match self.store.identifier_link(&identifier).await? {
                    None => vec![],
                    Some(link) => self
                        .store
                        .subject(&link.subject)
                        .await?
                        .map(|subject| SubjectMatch {
                            subject,
                            score: 1.0,
                            matched_fields: vec!["identifier"],
                        })
                        .into_iter()
                        .collect(),
                }
            }
            SubjectQuery::ByDemographics(q) => {
                let candidates = self
                    .store
                    .subject_candidates(&q.family_name, q.birth_date, MAX_CANDIDATES)
                    .await?;
                candidates
                    .into_iter()
                    .filter_map(|subject| {
                        let (score, matched_fields) = score(&q, &subject.demographics);
                        (score >= MIN_SCORE).then_some(SubjectMatch {
                            subject,
                            score,
                            matched_fields,
                        })
                    })
                    .collect()
            }
        };
        matches.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut visible = Vec::with_capacity(max_results.min(matches.len()));
        for m in matches {
            if visible.len() == max_results {
                break;
            }
            if self.may_see(call, &m.subject, lookup).await? {
                visible.push(m);
            }
        }
        let matches = visible;
        if let [only] = matches.as_slice() {
            call.note_subject(only.subject.id.resource_name());
            call.note_controller(only.subject.registered_by.as_str().to_owned());
        }
        let found: Vec<String> = matches
            .iter()
            .map(|m| m.subject.id.resource_name())
            .collect();
        call.note_fields(if found.is_empty() {
            vec![]
        } else {
            disclosed()
        });
        if found.len() > 1 {
            // Several subjects disclosed: the entry lists them all.
            call.note_records(found);
        }
        self.commit(call, vec![], matches).await
    }

    /// Adds an identifier to a subject.
    pub async fn link_identifier(
        &self,
        call: &Call,
        id: &SubjectId,
        identifier: Identifier,
    ) -> Result<Audited<Subject>, ServiceError> {
        let mut subject = self.load_subject(call, id).await?;
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
        let mut subject = self.load_subject(call, id).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn demographics() -> Demographics {
        Demographics {
            given_name: "Amira".into(),
            family_name: "Khan".into(),
            birth_date: NaiveDate::from_ymd_opt(2012, 5, 4).unwrap(),
            gender: Gender::Female,
            postcode: Some("LS1 4AP".into()),
            uprn: None,
        }
    }

    #[test]
    fn scores_add_up_per_matching_field() {
        let mut q = DemographicQuery {
            family_name: "KHAN".into(),
            birth_date: NaiveDate::from_ymd_opt(2012, 5, 4).unwrap(),
            given_name: None,
            gender: None,
            postcode: None,
        };
        assert_eq!(
            score(&q, &demographics()),
            (0.6, vec!["family_name", "birth_date"])
        );
        q.given_name = Some("amira".into());
        q.postcode = Some("LS1 4AP".into());
        q.gender = Some(Gender::Female);
        assert_eq!(score(&q, &demographics()).0, 1.0);
        q.birth_date = NaiveDate::from_ymd_opt(2012, 5, 5).unwrap();
        q.family_name = "Smith".into();
        assert_eq!(score(&q, &demographics()).0, 0.4);
    }
}
