//! People: finding a person (by NHS number, or by name and date of birth,
//! with `SubjectService.FindSubjects`), their consent history
//! (`ConsentService.ListConsents`) and the access report an IG officer
//! hands to them (`AuditService.GetSubjectAccessReport`), in plain words and
//! printable. Every lookup is a call Accord decides and records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::ledger::{day, problem_words};
use super::{Shared, Staff, formatted, page, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::agency_service_client::AgencyServiceClient;
use crate::api::pb::agreement_service_client::AgreementServiceClient;
use crate::api::pb::audit_service_client::AuditServiceClient;
use crate::api::pb::consent_service_client::ConsentServiceClient;
use crate::api::pb::subject_service_client::SubjectServiceClient;
use crate::domain::agreement::LawfulBasisCode;

/// How a person is looked up: by NHS number, or by family name and date of
/// birth (a given name sharpens the match).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Lookup {
    pub nhs_number: String,
    pub family_name: String,
    pub given_name: String,
    pub birth_date: String,
}

impl Lookup {
    fn is_empty(&self) -> bool {
        self.nhs_number.trim().is_empty()
            && self.family_name.trim().is_empty()
            && self.birth_date.trim().is_empty()
    }
}

/// A person found, as a list of matches shows them.
#[derive(Debug, Clone)]
pub struct Person {
    /// `subjects/{id}`.
    pub name: String,
    /// The id alone, for links.
    pub id: String,
    /// Their name, e.g. "Alex Smith".
    pub full_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// NHS number, if they have one.
    pub nhs_number: String,
    /// How well they match, in words ("exact", "likely").
    pub match_words: String,
}

impl Person {
    fn of(subject: pb::Subject, score: f64) -> Self {
        let d = subject.demographics.unwrap_or_default();
        let full_name = [d.given_name.trim(), d.family_name.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let nhs_number = subject
            .identifiers
            .iter()
            .find(|i| i.system == pb::IdentifierSystem::NhsNumber as i32)
            .map(|i| i.value.clone())
            .unwrap_or_default();
        Self {
            id: subject
                .name
                .strip_prefix("subjects/")
                .unwrap_or(&subject.name)
                .to_owned(),
            name: subject.name,
            full_name,
            birth_date: d.birth_date,
            nhs_number,
            match_words: if score >= 1.0 {
                "Exact".to_owned()
            } else {
                format!("Likely ({:.0}%)", score * 100.0)
            },
        }
    }
}

/// The people `lookup` finds that the staff member's agency may see, best
/// first, or the problem in words.
pub async fn find(shared: &Shared, staff: &Staff, lookup: &Lookup) -> Result<Vec<Person>, String> {
    let query = if !lookup.nhs_number.trim().is_empty() {
        pb::find_subjects_request::Query::Identifier(pb::Identifier {
            system: pb::IdentifierSystem::NhsNumber as i32,
            value: lookup.nhs_number.trim().to_owned(),
            assigner: String::new(),
        })
    } else if lookup.family_name.trim().is_empty() || lookup.birth_date.trim().is_empty() {
        return Err(
            "Enter an NHS number, or a family name and a date of birth (year-month-day)."
                .to_owned(),
        );
    } else {
        pb::find_subjects_request::Query::Demographics(pb::Demographics {
            family_name: lookup.family_name.trim().to_owned(),
            given_name: lookup.given_name.trim().to_owned(),
            birth_date: lookup.birth_date.trim().to_owned(),
            ..Default::default()
        })
    };
    let request = pb::FindSubjectsRequest {
        query: Some(query),
        purpose: pb::Purpose::Administration as i32,
        max_results: 20,
    };
    let call = staff
        .call(request)
        .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
    let found = SubjectServiceClient::new(shared.accord.clone())
        .find_subjects(call)
        .await
        .map_err(|status| problem_words(&status))?;
    let people: Vec<Person> = found
        .into_inner()
        .matches
        .into_iter()
        .filter_map(|m| m.subject.map(|s| Person::of(s, m.score)))
        .collect();
    if people.is_empty() {
        Err("Nobody your organisation may see matches. Check the details and try again.".to_owned())
    } else {
        Ok(people)
    }
}

#[derive(askama::Template)]
#[template(path = "people.html")]
struct PeoplePage {
    staff: Staff,
    staff_label: String,
    lookup: Lookup,
    people: Vec<Person>,
    problem: Option<String>,
}

/// The look-up page, and its matches once a search is made.
pub async fn search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(lookup): Query<Lookup>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let (people, problem) = if lookup.is_empty() {
        (Vec::new(), None)
    } else {
        match find(&shared, &staff, &lookup).await {
            Ok(people) => (people, None),
            Err(problem) => (Vec::new(), Some(problem)),
        }
    };
    page(&PeoplePage {
        staff_label: staff.label(),
        staff,
        lookup,
        people,
        problem,
    })
}

/// The person `id` names, read with GetSubject.
async fn person(shared: &Shared, staff: &Staff, id: &str) -> Result<Person, String> {
    let request = pb::GetSubjectRequest {
        name: format!("subjects/{id}"),
        purpose: pb::Purpose::Administration as i32,
    };
    let call = staff
        .call(request)
        .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
    let answer = SubjectServiceClient::new(shared.accord.clone())
        .get_subject(call)
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                "There is no such person, or your organisation may not see them.".to_owned()
            }
            _ => problem_words(&status),
        })?;
    answer
        .into_inner()
        .subject
        .map(|s| Person::of(s, 1.0))
        .ok_or_else(|| "Accord's answer had no person. Try again later.".to_owned())
}

/// The words of calls that state no purpose (some, such as recording a
/// consent, have none).
const NO_PURPOSE: &str = "no stated purpose";

/// A purpose's words, in lower case for sentences.
fn purpose_phrase(purpose: i32) -> &'static str {
    match pb::Purpose::try_from(purpose).unwrap_or(pb::Purpose::Unspecified) {
        pb::Purpose::Unspecified => NO_PURPOSE,
        pb::Purpose::DirectCare => "your care",
        pb::Purpose::Safeguarding => "keeping you or others safe (safeguarding)",
        pb::Purpose::CrimePrevention => "preventing or detecting crime",
        pb::Purpose::Emergency => "an emergency",
        pb::Purpose::Administration => "running their services (administration)",
        pb::Purpose::Research => "approved research",
    }
}

/// A consent as the history shows it.
#[derive(Debug)]
pub struct ConsentView {
    pub heading: String,
    pub facts: Vec<(&'static str, String)>,
}

/// A list, or `everything` when it is empty.
fn or_all(items: Vec<String>, everything: &str) -> String {
    if items.is_empty() {
        everything.to_owned()
    } else {
        items.join(", ")
    }
}

impl ConsentView {
    fn of(c: pb::Consent, agencies: &Agencies) -> Self {
        let decision = match pb::ConsentKind::try_from(c.kind).unwrap_or_default() {
            pb::ConsentKind::Objection => "Objection",
            _ => "Consent",
        };
        let state = match pb::ConsentState::try_from(c.state).unwrap_or_default() {
            pb::ConsentState::Pending => "Not yet in effect",
            pb::ConsentState::Effective => "In effect",
            pb::ConsentState::Lapsed => "Ended",
            pb::ConsentState::Withdrawn => "Withdrawn",
            pb::ConsentState::Unspecified => "",
        };
        let channel = match pb::ConsentChannel::try_from(c.channel).unwrap_or_default() {
            pb::ConsentChannel::FaceToFace => "In person",
            pb::ConsentChannel::Telephone => "By telephone",
            pb::ConsentChannel::Web => "Online",
            pb::ConsentChannel::Post => "By letter",
            pb::ConsentChannel::Email => "By email",
            pb::ConsentChannel::Unspecified => "",
        };
        let day = |t: Option<prost_types::Timestamp>| formatted(t.as_ref(), "%-d %B %Y");
        let withdrawal = c.withdrawal.unwrap_or_default();
        let facts = [
            ("Where it stands", state.to_owned()),
            (
                "For",
                or_all(
                    c.purposes
                        .iter()
                        .map(|p| purpose_phrase(*p).to_owned())
                        .collect(),
                    "every purpose",
                ),
            ),
            (
                "Which organisations",
                or_all(
                    c.recipients.iter().map(|a| agencies.name(a)).collect(),
                    "every organisation",
                ),
            ),
            (
                "Which records",
                or_all(c.record_classes.clone(), "every kind of record"),
            ),
            ("How it was given", channel.to_owned()),
            ("From", day(c.valid_from.or(c.record_time))),
            ("Until", day(c.valid_until)),
            (
                "Recorded by",
                format!(
                    "{} ({}), {}",
                    c.recorded_principal,
                    agencies.name(&c.recorded_by),
                    formatted(c.record_time.as_ref(), "%-d %B %Y %H:%M UTC")
                ),
            ),
            ("Note", c.note.clone()),
            ("Withdrawn", day(withdrawal.withdraw_time)),
            ("Withdrawn by", withdrawal.principal.clone()),
            ("Why it was withdrawn", withdrawal.reason.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        Self {
            heading: format!(
                "{decision} recorded {}",
                formatted(c.record_time.as_ref(), "%-d %B %Y")
            ),
            facts,
        }
    }
}

/// Agencies' display names by resource name, from ListAgencies.
#[derive(Debug, Default)]
struct Agencies(HashMap<String, String>);

impl Agencies {
    /// Reads the directory (the first 1000 agencies); an agency it cannot
    /// name is shown by its code.
    async fn read(shared: &Shared, staff: &Staff) -> Self {
        let Some(call) = staff.call(pb::ListAgenciesRequest {
            page_size: 1000,
            page_token: String::new(),
        }) else {
            return Self::default();
        };
        match AgencyServiceClient::new(shared.accord.clone())
            .list_agencies(call)
            .await
        {
            Ok(r) => Self(
                r.into_inner()
                    .agencies
                    .into_iter()
                    .map(|a| (a.name, a.display_name))
                    .collect(),
            ),
            Err(status) => {
                tracing::info!(code = ?status.code(), "the agency directory was refused");
                Self::default()
            }
        }
    }

    /// The display name of `agencies/{code}` (or of a bare code).
    fn name(&self, agency: &str) -> String {
        let full = if agency.starts_with("agencies/") {
            agency.to_owned()
        } else {
            format!("agencies/{agency}")
        };
        self.0
            .get(&full)
            .cloned()
            .unwrap_or_else(|| full.strip_prefix("agencies/").unwrap_or(agency).to_owned())
    }
}

#[derive(askama::Template)]
#[template(path = "person.html")]
struct PersonPage {
    staff: Staff,
    staff_label: String,
    person: Option<Person>,
    consents: Vec<ConsentView>,
    problem: Option<String>,
}

/// The most consents the history shows.
const MAX_CONSENTS: usize = 1000;

/// A person's page: who they are and their consent history.
pub async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let shown = async {
        let person = person(&shared, &staff, &id).await?;
        let agencies = Agencies::read(&shared, &staff).await;
        let mut consents = Vec::new();
        let mut token = String::new();
        loop {
            let call = staff
                .call(pb::ListConsentsRequest {
                    subject: person.name.clone(),
                    page_size: 200,
                    page_token: token,
                })
                .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
            let answer = ConsentServiceClient::new(shared.accord.clone())
                .list_consents(call)
                .await
                .map_err(|status| problem_words(&status))?
                .into_inner();
            consents.extend(
                answer
                    .consents
                    .into_iter()
                    .map(|c| ConsentView::of(c, &agencies)),
            );
            token = answer.next_page_token;
            if token.is_empty() || consents.len() >= MAX_CONSENTS {
                break;
            }
        }
        Ok::<_, String>((person, consents))
    };
    let (person, consents, problem) = match shown.await {
        Ok((person, consents)) => (Some(person), consents, None),
        Err(problem) => (None, Vec::new(), Some(problem)),
    };
    page(&PersonPage {
        staff_label: staff.label(),
        staff,
        person,
        consents,
        problem,
    })
}

/// The report's period, from its form.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Period {
    /// From this day (UTC), `YYYY-MM-DD`.
    pub from: String,
    /// Up to and including this day (UTC), `YYYY-MM-DD`.
    pub to: String,
}

/// One access, as the citizen reads it.
#[derive(Debug)]
pub struct AccessLine {
    pub when: String,
    /// Who, by role: "A social worker".
    pub who: String,
    /// What they did and what they saw.
    pub what: String,
    /// Why it was allowed, or why it was refused.
    pub why: String,
    /// The ledger entry recording it.
    pub entry: i64,
}

/// The accesses by one agency for one purpose.
#[derive(Debug)]
pub struct PurposeGroup {
    pub purpose: String,
    pub accesses: Vec<AccessLine>,
}

/// The accesses by one agency.
#[derive(Debug)]
pub struct AgencyGroup {
    pub agency: String,
    pub count: usize,
    pub purposes: Vec<PurposeGroup>,
}

/// A role code as words with an article: `social_worker` → "A social
/// worker".
fn role_words(roles: &[String]) -> String {
    let Some(role) = roles.first() else {
        return "A member of staff".to_owned();
    };
    let words = role.replace('_', " ");
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    format!("{article} {words}")
}

/// Why an access was allowed, in words.
fn grounds_words(a: &pb::SubjectAccess, titles: &HashMap<String, String>) -> String {
    if a.outcome != pb::Outcome::Permitted as i32 {
        return if a.reason.is_empty() {
            "It was refused.".to_owned()
        } else {
            format!("It was refused: {}.", a.reason.trim_end_matches('.'))
        };
    }
    let mut words = Vec::new();
    for agreement in &a.agreements {
        let name = agreement.split('@').next().unwrap_or(agreement);
        words.push(match titles.get(name) {
            Some(title) => format!("Under the sharing agreement “{title}”."),
            None => "Under a sharing agreement between the organisations.".to_owned(),
        });
    }
    let bases: Vec<&str> = a
        .lawful_bases
        .iter()
        .filter_map(|b| LawfulBasisCode::from_code(b).map(LawfulBasisCode::words))
        .collect();
    if !bases.is_empty() {
        words.push(format!("The law allows it for {}.", bases.join("; ")));
    }
    if !a.consent.is_empty() {
        words.push("You had given your consent.".to_owned());
    }
    if !a.break_glass_reason.is_empty() {
        words.push(format!(
            "It was emergency access; the reason given was: “{}”.",
            a.break_glass_reason
        ));
    }
    if words.is_empty() {
        words.push("The organisation holds your records.".to_owned());
    }
    words.join(" ")
}

/// What an access did, with the details it showed.
fn what_words(a: &pb::SubjectAccess) -> String {
    let mut what = a.activity.clone();
    if let Some(first) = what.get(..1) {
        what = first.to_uppercase() + what.get(1..).unwrap_or_default();
    }
    if a.fields.is_empty() {
        format!("{what}.")
    } else {
        let fields: Vec<String> = a.fields.iter().map(|f| f.replace('_', " ")).collect();
        format!("{what}: {}.", fields.join(", "))
    }
}

/// The accesses grouped by agency, then purpose, each oldest first.
fn grouped(
    accesses: Vec<pb::SubjectAccess>,
    agencies: &Agencies,
    titles: &HashMap<String, String>,
) -> Vec<AgencyGroup> {
    let mut by_agency: BTreeMap<String, BTreeMap<&'static str, Vec<AccessLine>>> = BTreeMap::new();
    for a in accesses {
        let agency = if a.agency.is_empty() {
            "An organisation that could not be identified".to_owned()
        } else {
            agencies.name(&a.agency)
        };
        let line = AccessLine {
            when: formatted(a.time.as_ref(), "%-d %B %Y, %H:%M UTC"),
            who: role_words(&a.roles),
            what: what_words(&a),
            why: grounds_words(&a, titles),
            entry: a.entry_index,
        };
        let purpose = purpose_phrase(a.purpose);
        by_agency
            .entry(agency)
            .or_default()
            .entry(purpose)
            .or_default()
            .push(line);
    }
    by_agency
        .into_iter()
        .map(|(agency, purposes)| AgencyGroup {
            agency,
            count: purposes.values().map(Vec::len).sum(),
            purposes: purposes
                .into_iter()
                .map(|(purpose, accesses)| PurposeGroup {
                    purpose: if purpose == NO_PURPOSE {
                        "Without a stated purpose".to_owned()
                    } else {
                        format!("For {purpose}")
                    },
                    accesses,
                })
                .collect(),
        })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "report.html")]
struct ReportPage {
    staff: Staff,
    staff_label: String,
    person: Option<Person>,
    period: Period,
    period_words: String,
    produced: String,
    produced_by: String,
    groups: Vec<AgencyGroup>,
    total: usize,
    truncated: bool,
    problem: Option<String>,
}

/// The titles of the agreements the staff member's agency is party to.
async fn agreement_titles(shared: &Shared, staff: &Staff) -> HashMap<String, String> {
    let Some(call) = staff.call(pb::ListAgreementsRequest {
        page_size: 1000,
        page_token: String::new(),
    }) else {
        return HashMap::new();
    };
    match AgreementServiceClient::new(shared.accord.clone())
        .list_agreements(call)
        .await
    {
        Ok(r) => r
            .into_inner()
            .agreements
            .into_iter()
            .map(|a| (a.name, a.title))
            .collect(),
        Err(status) => {
            tracing::info!(code = ?status.code(), "the agreement list was refused");
            HashMap::new()
        }
    }
}

/// The citizen's access report: every access to them the staff member's
/// agency may see, within the period, in plain words and ready to print.
pub async fn report(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(period): Query<Period>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let made = async {
        let start_time = day(&period.from, 0, "from")?;
        let end_time = day(&period.to, 1, "to")?;
        let person = person(&shared, &staff, &id).await?;
        let call = staff
            .call(pb::GetSubjectAccessReportRequest {
                subject: person.name.clone(),
                purpose: pb::Purpose::Administration as i32,
                start_time,
                end_time,
            })
            .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
        let report = AuditServiceClient::new(shared.accord.clone())
            .get_subject_access_report(call)
            .await
            .map_err(|status| problem_words(&status))?
            .into_inner();
        Ok::<_, String>((person, report))
    };
    let (person, report, problem) = match made.await {
        Ok((person, report)) => (Some(person), Some(report), None),
        Err(problem) => (None, None, Some(problem)),
    };
    let agencies = Agencies::read(&shared, &staff).await;
    let titles = agreement_titles(&shared, &staff).await;
    let produced = report
        .as_ref()
        .map(|r| formatted(r.generate_time.as_ref(), "%-d %B %Y at %H:%M UTC"))
        .unwrap_or_default();
    let truncated = report.as_ref().is_some_and(|r| r.truncated);
    let accesses = report.map(|r| r.accesses).unwrap_or_default();
    let total = accesses.len();
    let period_words = match (period.from.trim(), period.to.trim()) {
        ("", "") => "since records began".to_owned(),
        (from, "") => format!("from {from}"),
        ("", to) => format!("up to and including {to}"),
        (from, to) => format!("from {from} to {to}"),
    };
    page(&ReportPage {
        staff_label: staff.label(),
        produced_by: staff.label(),
        staff,
        person,
        period,
        period_words,
        produced,
        groups: grouped(accesses, &agencies, &titles),
        total,
        truncated,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_words() {
        assert_eq!(role_words(&["social_worker".into()]), "A social worker");
        assert_eq!(role_words(&["auditor".into()]), "An auditor");
        assert_eq!(role_words(&[]), "A member of staff");
    }

    #[test]
    fn grounds_are_in_plain_words() {
        let titles = HashMap::from([("agreements/a1".to_owned(), "Child safety".to_owned())]);
        let permitted = pb::SubjectAccess {
            outcome: pb::Outcome::Permitted as i32,
            agreements: vec!["agreements/a1@2".into()],
            lawful_bases: vec!["children_act_1989_s47".into()],
            consent: "consents/c".into(),
            ..Default::default()
        };
        let words = grounds_words(&permitted, &titles);
        assert!(words.contains("“Child safety”"), "{words}");
        assert!(words.contains("Children Act 1989, section 47"), "{words}");
        assert!(words.contains("your consent"), "{words}");
        let refused = pb::SubjectAccess {
            outcome: pb::Outcome::Denied as i32,
            reason: "no agreement covers it.".into(),
            ..Default::default()
        };
        assert_eq!(
            grounds_words(&refused, &titles),
            "It was refused: no agreement covers it."
        );
    }

    #[test]
    fn accesses_are_grouped_by_agency_then_purpose() {
        let access = |agency: &str, purpose: pb::Purpose, index| pb::SubjectAccess {
            agency: format!("agencies/{agency}"),
            purpose: purpose as i32,
            activity: "viewed a record".into(),
            fields: vec!["date_of_birth".into()],
            entry_index: index,
            ..Default::default()
        };
        let agencies = Agencies(HashMap::from([(
            "agencies/leeds-cc".to_owned(),
            "Leeds City Council".to_owned(),
        )]));
        let groups = grouped(
            vec![
                access("leeds-cc", pb::Purpose::Safeguarding, 1),
                access("wy-police", pb::Purpose::CrimePrevention, 2),
                access("leeds-cc", pb::Purpose::DirectCare, 3),
                access("leeds-cc", pb::Purpose::Safeguarding, 4),
            ],
            &agencies,
            &HashMap::new(),
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].agency, "Leeds City Council");
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].purposes.len(), 2);
        let safeguarding = groups[0]
            .purposes
            .iter()
            .find(|p| p.purpose.contains("safeguarding"))
            .unwrap();
        assert_eq!(
            safeguarding
                .accesses
                .iter()
                .map(|a| a.entry)
                .collect::<Vec<_>>(),
            [1, 4]
        );
        assert_eq!(
            safeguarding.accesses[0].what,
            "Viewed a record: date of birth."
        );
        assert_eq!(groups[1].agency, "wy-police");
    }
}
