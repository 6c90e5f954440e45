//! The agreement register: the agreements the console's agency is party to
//! (`AgreementService.ListAgreements`), what waits for its IG leads, the
//! reviews due or overdue, each agreement's terms in words and its usage by
//! purpose and role over a period (`GetAgreementUsage`), and the IG lead's
//! approve, suspend and reinstate — each a call Accord decides and records.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::ledger::{day, problem_words};
use super::session::same_secret;
use super::{Shared, Staff, formatted, page, refused_form, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::agreement_service_client::AgreementServiceClient;
use crate::domain::agreement::LawfulBasisCode;

/// A review is "due" this many days ahead.
const REVIEW_DUE_DAYS: i64 = 30;

/// Where an agreement's review stands on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Overdue,
    Due,
    Later,
}

/// The review state of `review_date` (`YYYY-MM-DD`) on `today`.
fn review(review_date: &str, today: chrono::NaiveDate) -> Review {
    match chrono::NaiveDate::parse_from_str(review_date, "%Y-%m-%d") {
        Ok(date) if date < today => Review::Overdue,
        Ok(date) if (date - today).num_days() <= REVIEW_DUE_DAYS => Review::Due,
        _ => Review::Later,
    }
}

/// A state's words.
fn state_words(state: i32) -> &'static str {
    match pb::AgreementState::try_from(state).unwrap_or_default() {
        pb::AgreementState::Draft => "Waiting for approval",
        pb::AgreementState::Active => "In force",
        pb::AgreementState::Suspended => "Suspended",
        pb::AgreementState::Superseded => "Replaced",
        pb::AgreementState::Expired => "Ended",
        pb::AgreementState::Unspecified => "",
    }
}

/// The code of `agencies/{code}`.
fn code(agency: &str) -> &str {
    agency.strip_prefix("agencies/").unwrap_or(agency)
}

/// An agreement as the register lists it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The id alone, for links.
    pub id: String,
    pub title: String,
    pub version: i64,
    /// "Provider" or "Receiver".
    pub part: &'static str,
    pub partners: String,
    pub state: &'static str,
    pub review_date: String,
    pub review_overdue: bool,
    pub review_due: bool,
    /// Waiting for this agency's approval.
    pub awaiting_us: bool,
}

impl Row {
    fn of(a: &pb::Agreement, agency: &str, today: chrono::NaiveDate) -> Self {
        let us = format!("agencies/{agency}");
        let part = if a.provider == us {
            "Provider"
        } else {
            "Receiver"
        };
        let partners = std::iter::once(a.provider.as_str())
            .chain(a.consumers.iter().map(|c| c.agency.as_str()))
            .filter(|p| *p != us)
            .map(code)
            .collect::<Vec<_>>()
            .join(", ");
        let live = matches!(
            pb::AgreementState::try_from(a.state).unwrap_or_default(),
            pb::AgreementState::Active | pb::AgreementState::Suspended
        );
        let review = review(&a.review_date, today);
        Self {
            id: code_of(&a.name).to_owned(),
            title: a.title.clone(),
            version: a.version,
            part,
            partners,
            state: state_words(a.state),
            review_date: a.review_date.clone(),
            review_overdue: live && review == Review::Overdue,
            review_due: live && review == Review::Due,
            awaiting_us: a.awaiting_approval.contains(&us),
        }
    }
}

/// The id of `agreements/{id}`.
fn code_of(name: &str) -> &str {
    name.strip_prefix("agreements/").unwrap_or(name)
}

#[derive(askama::Template)]
#[template(path = "agreements.html")]
struct RegisterPage {
    staff: Staff,
    staff_label: String,
    awaiting: Vec<Row>,
    reviews: Vec<Row>,
    all: Vec<Row>,
    problem: Option<String>,
}

/// The most agreements the register reads.
const MAX_AGREEMENTS: usize = 1000;

/// Every agreement the agency is party to (latest versions), or the
/// problem in words.
async fn agreements(shared: &Shared, staff: &Staff) -> Result<Vec<pb::Agreement>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let call = staff
            .call(pb::ListAgreementsRequest {
                page_size: 200,
                page_token: token,
            })
            .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
        let answer = AgreementServiceClient::new(shared.accord.clone())
            .list_agreements(call)
            .await
            .map_err(|status| problem_words(&status))?
            .into_inner();
        out.extend(answer.agreements);
        token = answer.next_page_token;
        if token.is_empty() || out.len() >= MAX_AGREEMENTS {
            return Ok(out);
        }
    }
}

/// The register.
pub async fn register(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let today = chrono::Utc::now().date_naive();
    let (rows, problem) = match agreements(&shared, &staff).await {
        Ok(list) => (
            list.iter()
                .map(|a| Row::of(a, &shared.agency, today))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let pick = |keep: fn(&Row) -> bool| rows.iter().filter(|r| keep(r)).cloned().collect();
    let awaiting = pick(|r| r.awaiting_us);
    let reviews = pick(|r| r.review_overdue || r.review_due);
    page(&RegisterPage {
        staff_label: staff.label(),
        staff,
        awaiting,
        reviews,
        all: rows,
        problem,
    })
}

/// One agreement's page options: the usage period and what was just done.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// From this day (UTC), `YYYY-MM-DD`.
    pub from: String,
    /// Up to and including this day (UTC), `YYYY-MM-DD`.
    pub to: String,
    /// `approved`, `suspended` or `reinstated`: the step just taken.
    pub done: String,
}

/// An agreement's terms in words.
#[derive(Debug)]
pub struct Terms {
    pub id: String,
    pub title: String,
    pub version: i64,
    pub etag: String,
    pub facts: Vec<(&'static str, String)>,
    /// What each receiving agency's roles may see.
    pub grants: Vec<(String, String, String)>,
    pub may_approve: bool,
    pub may_suspend: bool,
    pub may_reinstate: bool,
}

/// A lawful basis of the API in words.
fn basis_words(b: &pb::LawfulBasis) -> String {
    let code = pb::LawfulBasisCode::try_from(b.code)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("LAWFUL_BASIS_CODE_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let words = LawfulBasisCode::from_code(&code).map_or(code.clone(), |c| c.words().to_owned());
    if b.reference.is_empty() {
        words.to_owned()
    } else {
        format!("{words}, as “{}”", b.reference)
    }
}

/// A purpose's words.
fn purpose_words(p: i32) -> &'static str {
    match pb::Purpose::try_from(p).unwrap_or_default() {
        pb::Purpose::DirectCare => "Direct care",
        pb::Purpose::Safeguarding => "Safeguarding",
        pb::Purpose::CrimePrevention => "Crime prevention",
        pb::Purpose::Emergency => "Emergency",
        pb::Purpose::Administration => "Administration",
        pb::Purpose::Research => "Research",
        pb::Purpose::Unspecified => "No stated purpose",
    }
}

impl Terms {
    fn of(a: pb::Agreement, agency: &str) -> Self {
        let us = format!("agencies/{agency}");
        let day = |t: Option<&prost_types::Timestamp>| formatted(t, "%-d %B %Y");
        let state = pb::AgreementState::try_from(a.state).unwrap_or_default();
        let consent = match pb::ConsentRequirement::try_from(a.consent).unwrap_or_default() {
            pb::ConsentRequirement::Required => "Needed for each access",
            pb::ConsentRequirement::NotRequired => {
                "Not needed: the sharing rests on its lawful basis"
            }
            pb::ConsentRequirement::Unspecified => "",
        };
        let approvals = a
            .approvals
            .iter()
            .map(|ap| {
                format!(
                    "{} ({}), {}",
                    code(&ap.agency),
                    ap.principal,
                    day(ap.approve_time.as_ref())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let suspension = a
            .suspension
            .as_ref()
            .map(|s| {
                format!(
                    "by {} ({}), {}: {}",
                    code(&s.agency),
                    s.principal,
                    day(s.suspend_time.as_ref()),
                    s.reason
                )
            })
            .unwrap_or_default();
        let facts = [
            ("Where it stands", state_words(a.state).to_owned()),
            ("Provider (controller)", code(&a.provider).to_owned()),
            (
                "Receivers",
                a.consumers
                    .iter()
                    .map(|c| code(&c.agency))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("Record classes", a.record_classes.join(", ")),
            (
                "Purposes",
                a.purposes
                    .iter()
                    .map(|p| purpose_words(*p))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "Lawful basis",
                a.lawful_bases
                    .iter()
                    .map(basis_words)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ("Consent", consent.to_owned()),
            (
                "Sealed records",
                if a.covers_sealed {
                    "Shared too".to_owned()
                } else {
                    "Not shared".to_owned()
                },
            ),
            (
                "In force",
                format!(
                    "from {} until {}",
                    day(a.valid_from.as_ref()),
                    day(a.valid_until.as_ref())
                ),
            ),
            ("Review by", a.review_date.clone()),
            ("Approved by", approvals),
            (
                "Waiting for",
                a.awaiting_approval
                    .iter()
                    .map(|p| code(p))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("Suspended", suspension),
            ("Proposed by", code(&a.created_by).to_owned()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        let grants = a
            .consumers
            .iter()
            .flat_map(|c| {
                c.grants.iter().map(|g| {
                    (
                        code(&c.agency).to_owned(),
                        g.role.replace('_', " "),
                        format!("{}: {}", g.record_class, g.fields.join(", ")),
                    )
                })
            })
            .collect();
        Self {
            id: code_of(&a.name).to_owned(),
            may_approve: state == pb::AgreementState::Draft && a.awaiting_approval.contains(&us),
            may_suspend: state == pb::AgreementState::Active,
            may_reinstate: state == pb::AgreementState::Suspended,
            title: a.title,
            version: a.version,
            etag: a.etag,
            facts,
            grants,
        }
    }
}

/// One line of an agreement's usage.
#[derive(Debug)]
pub struct UsageLine {
    pub agency: String,
    pub purpose: &'static str,
    pub role: String,
    pub disclosures: i64,
}

#[derive(askama::Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    staff: Staff,
    staff_label: String,
    terms: Option<Terms>,
    options: Options,
    period_words: String,
    usage: Vec<UsageLine>,
    total: i64,
    done: String,
    problem: Option<String>,
}

/// The usage period in words.
fn period_words(from: &str, to: &str) -> String {
    match (from.trim(), to.trim()) {
        ("", "") => "since it was first agreed".to_owned(),
        (from, "") => format!("from {from}"),
        ("", to) => format!("up to and including {to}"),
        (from, to) => format!("from {from} to {to}"),
    }
}

/// One agreement: its terms, its usage over the period and the IG lead's
/// steps.
pub async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(options): Query<Options>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let name = format!("agreements/{id}");
    let shown = async {
        let call = staff
            .call(pb::GetAgreementRequest {
                name: name.clone(),
                version: 0,
            })
            .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
        let agreement = AgreementServiceClient::new(shared.accord.clone())
            .get_agreement(call)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                    "There is no such agreement, or your organisation is not a party to it."
                        .to_owned()
                }
                _ => problem_words(&status),
            })?
            .into_inner()
            .agreement
            .ok_or_else(|| "Accord's answer had no agreement. Try again later.".to_owned())?;
        let terms = Terms::of(agreement, &shared.agency);
        let call = staff
            .call(pb::GetAgreementUsageRequest {
                name: name.clone(),
                start_time: day(&options.from, 0, "from")?,
                end_time: day(&options.to, 1, "to")?,
            })
            .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
        let usage = AgreementServiceClient::new(shared.accord.clone())
            .get_agreement_usage(call)
            .await
            .map_err(|status| problem_words(&status))?
            .into_inner();
        Ok::<_, String>((terms, usage))
    };
    let (terms, usage, problem) = match shown.await {
        Ok((terms, usage)) => (Some(terms), Some(usage), None),
        Err(problem) => (None, None, Some(problem)),
    };
    let total = usage.as_ref().map_or(0, |u| u.total);
    let usage = usage
        .map(|u| {
            u.usage
                .into_iter()
                .map(|line| UsageLine {
                    agency: code(&line.agency).to_owned(),
                    purpose: purpose_words(line.purpose),
                    role: if line.role.is_empty() {
                        "(none of its roles)".to_owned()
                    } else {
                        line.role.replace('_', " ")
                    },
                    disclosures: line.disclosures,
                })
                .collect()
        })
        .unwrap_or_default();
    let done = match options.done.as_str() {
        "approved" => "You approved this agreement for your organisation.",
        "suspended" => "You suspended this agreement: it grants nothing until reinstated.",
        "reinstated" => "You reinstated this agreement.",
        _ => "",
    }
    .to_owned();
    page(&AgreementPage {
        staff_label: staff.label(),
        staff,
        terms,
        period_words: period_words(&options.from, &options.to),
        options,
        usage,
        total,
        done,
        problem,
    })
}

/// An IG lead's step on an agreement, as its form posts it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Step {
    csrf: String,
    /// The agreement's id.
    id: String,
    /// The version approved.
    version: i64,
    /// The version's etag as the page showed it: a step on a version that
    /// changed since is refused.
    etag: String,
    /// Why it is suspended.
    reason: String,
}

/// What a step does, once its form is checked.
enum Action {
    Approve,
    Suspend,
    Reinstate,
}

/// Takes `action` as the signed-in IG lead and returns to the agreement,
/// or shows why it could not be taken.
async fn take(shared: Arc<Shared>, headers: HeaderMap, step: Step, action: Action) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    if !same_secret(&step.csrf, &staff.csrf) {
        return refused_form();
    }
    let id = step.id.trim().to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return step_refused(
            &staff,
            "There is no such agreement, or your organisation is not a party to it.",
        );
    }
    let name = format!("agreements/{id}");
    let mut client = AgreementServiceClient::new(shared.accord.clone());
    let (result, done) = match action {
        Action::Approve => match staff.call(pb::ApproveAgreementRequest {
            name,
            version: step.version,
            etag: step.etag,
        }) {
            Some(call) => (client.approve_agreement(call).await.map(drop), "approved"),
            None => return to_sign_in(),
        },
        Action::Suspend => {
            if step.reason.trim().is_empty() {
                return step_refused(
                    &staff,
                    "Say why you are suspending the agreement: the reason is shown in every refusal it causes.",
                );
            }
            match staff.call(pb::SuspendAgreementRequest {
                name,
                reason: step.reason.trim().to_owned(),
                etag: step.etag,
            }) {
                Some(call) => (client.suspend_agreement(call).await.map(drop), "suspended"),
                None => return to_sign_in(),
            }
        }
        Action::Reinstate => match staff.call(pb::ReinstateAgreementRequest {
            name,
            etag: step.etag,
        }) {
            Some(call) => (
                client.reinstate_agreement(call).await.map(drop),
                "reinstated",
            ),
            None => return to_sign_in(),
        },
    };
    match result {
        Ok(()) => Redirect::to(&format!("/agreements/{id}?done={done}")).into_response(),
        Err(status) => {
            tracing::info!(code = ?status.code(), "a console agreement step was refused");
            let words = match status.code() {
                tonic::Code::Aborted => {
                    "The agreement changed since you opened it. Open it again to see where it stands."
                        .to_owned()
                }
                tonic::Code::FailedPrecondition => {
                    format!("This cannot be done now: {}", status.message())
                }
                _ => problem_words(&status),
            };
            step_refused(&staff, &words)
        }
    }
}

/// The page of a step that could not be taken.
fn step_refused(staff: &Staff, problem: &str) -> Response {
    page(&AgreementPage {
        staff_label: staff.label(),
        staff: staff.clone(),
        terms: None,
        options: Options::default(),
        period_words: String::new(),
        usage: Vec::new(),
        total: 0,
        done: String::new(),
        problem: Some(problem.to_owned()),
    })
}

/// Approves an agreement's version for the console's agency.
pub async fn approve(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(step): Form<Step>,
) -> Response {
    take(shared, headers, step, Action::Approve).await
}

/// Suspends an agreement in force.
pub async fn suspend(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(step): Form<Step>,
) -> Response {
    take(shared, headers, step, Action::Suspend).await
}

/// Reinstates a suspended agreement.
pub async fn reinstate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(step): Form<Step>,
) -> Response {
    take(shared, headers, step, Action::Reinstate).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_due_a_month_ahead_and_overdue_after_their_day() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(review("2026-12-06", today), Review::Overdue);
        assert_eq!(review("2026-12-07", today), Review::Due);
        assert_eq!(review("2027-01-06", today), Review::Due);
        assert_eq!(review("2027-01-07", today), Review::Later);
        assert_eq!(review("not a date", today), Review::Later);
    }

    #[test]
    fn lawful_bases_read_as_words() {
        let basis = pb::LawfulBasis {
            code: pb::LawfulBasisCode::ChildrenAct1989S47 as i32,
            reference: "s47".into(),
        };
        assert_eq!(
            basis_words(&basis),
            "a child protection enquiry (Children Act 1989, section 47), as “s47”"
        );
    }

    #[test]
    fn the_register_knows_which_side_the_agency_is_on() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let a = pb::Agreement {
            name: "agreements/a1".into(),
            provider: "agencies/leeds-health".into(),
            consumers: vec![pb::ConsumerTerms {
                agency: "agencies/leeds-cc".into(),
                grants: vec![],
            }],
            state: pb::AgreementState::Active as i32,
            review_date: "2026-12-01".into(),
            awaiting_approval: vec!["agencies/leeds-cc".into()],
            ..Default::default()
        };
        let row = Row::of(&a, "leeds-cc", today);
        assert_eq!(row.part, "Receiver");
        assert_eq!(row.partners, "leeds-health");
        assert!(row.review_overdue && !row.review_due);
        assert!(row.awaiting_us);
        assert_eq!(row.id, "a1");
        let theirs = Row::of(&a, "leeds-health", today);
        assert_eq!(theirs.part, "Provider");
        assert!(!theirs.awaiting_us);
    }
}
