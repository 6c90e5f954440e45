//! Ledger search: `AuditService.ListEntries` with the staff member's token,
//! a page at a time, in plain words.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Shared, page, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::audit_service_client::AuditServiceClient;

/// The search form's fields, as the query string carries them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub agency: String,
    #[serde(default)]
    pub principal: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub page_token: String,
}

/// The outcomes the form offers: value, label.
const OUTCOMES: &[(&str, &str)] = &[
    ("", "Any"),
    ("permitted", "Permitted"),
    ("denied", "Refused"),
    ("invalid", "Invalid request"),
    ("failed", "Failed"),
];

/// One entry as the table shows it.
#[derive(Debug)]
pub struct Row {
    pub index: i64,
    pub time: String,
    pub who: String,
    pub action: String,
    pub purpose: String,
    pub outcome: String,
}

#[derive(askama::Template)]
#[template(path = "ledger.html")]
struct LedgerPage {
    staff: super::Staff,
    staff_label: String,
    filters: Filters,
    outcomes: &'static [(&'static str, &'static str)],
    entries: Vec<Row>,
    next_page: Option<String>,
    problem: Option<String>,
}

/// A purpose's words.
fn purpose_words(purpose: i32) -> &'static str {
    match pb::Purpose::try_from(purpose).unwrap_or(pb::Purpose::Unspecified) {
        pb::Purpose::Unspecified => "",
        pb::Purpose::DirectCare => "Direct care",
        pb::Purpose::Safeguarding => "Safeguarding",
        pb::Purpose::CrimePrevention => "Crime prevention",
        pb::Purpose::Emergency => "Emergency",
        pb::Purpose::Administration => "Administration",
        pb::Purpose::Research => "Research",
    }
}

/// An outcome's words.
fn outcome_words(outcome: i32) -> &'static str {
    match pb::Outcome::try_from(outcome).unwrap_or(pb::Outcome::Unspecified) {
        pb::Outcome::Unspecified => "",
        pb::Outcome::Permitted => "Permitted",
        pb::Outcome::Denied => "Refused",
        pb::Outcome::Invalid => "Invalid request",
        pb::Outcome::Failed => "Failed",
    }
}

/// The method of an action path, e.g. `GetRecord`.
fn action_words(action: &str) -> String {
    action.rsplit('/').next().unwrap_or(action).to_owned()
}

impl Row {
    fn of(e: pb::LedgerEntry) -> Self {
        let time = e
            .time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let agency = e.agency.strip_prefix("agencies/").unwrap_or(&e.agency);
        Self {
            index: e.index,
            time,
            who: if e.principal.is_empty() {
                agency.to_owned()
            } else {
                format!("{} ({agency})", e.principal)
            },
            action: action_words(&e.action),
            purpose: purpose_words(e.purpose).to_owned(),
            outcome: outcome_words(e.outcome).to_owned(),
        }
    }
}

/// The ListEntries request the form's fields make.
fn request(filters: &Filters) -> pb::ListEntriesRequest {
    let outcome = match filters.outcome.as_str() {
        "permitted" => pb::Outcome::Permitted,
        "denied" => pb::Outcome::Denied,
        "invalid" => pb::Outcome::Invalid,
        "failed" => pb::Outcome::Failed,
        _ => pb::Outcome::Unspecified,
    };
    let agency = filters.agency.trim();
    pb::ListEntriesRequest {
        agency: if agency.is_empty() {
            String::new()
        } else {
            format!("agencies/{agency}")
        },
        principal: filters.principal.trim().to_owned(),
        outcome: outcome as i32,
        page_size: 50,
        page_token: filters.page_token.clone(),
        purpose: pb::Purpose::Administration as i32,
        ..Default::default()
    }
}

/// The link to the next page: the same filters and the page token.
fn next_link(filters: &Filters, token: &str) -> String {
    let query = [
        ("agency", filters.agency.as_str()),
        ("principal", filters.principal.as_str()),
        ("outcome", filters.outcome.as_str()),
        ("page_token", token),
    ];
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("/ledger?{}", encoded.join("&"))
}

/// What Accord's refusal means for the staff member.
fn problem_words(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::InvalidArgument => format!("Check the search: {}", status.message()),
        tonic::Code::PermissionDenied => {
            "You are not allowed to search the ledger. Ask your organisation to give you the auditor role."
                .to_owned()
        }
        tonic::Code::Unauthenticated => {
            "Accord did not accept your sign-in. Sign out and sign in again.".to_owned()
        }
        _ => "Accord cannot answer just now. Try again later.".to_owned(),
    }
}

/// The ledger search page.
pub async fn search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let mut call = tonic::Request::new(request(&filters));
    match format!("Bearer {}", staff.access_token).parse() {
        Ok(value) => {
            call.metadata_mut().insert("authorization", value);
        }
        Err(_) => return to_sign_in(),
    }
    let answer = AuditServiceClient::new(shared.accord.clone())
        .list_entries(call)
        .await;
    let (entries, next_page, problem) = match answer {
        Ok(r) => {
            let r = r.into_inner();
            let next =
                (!r.next_page_token.is_empty()).then(|| next_link(&filters, &r.next_page_token));
            (r.entries.into_iter().map(Row::of).collect(), next, None)
        }
        Err(status) => {
            tracing::info!(code = ?status.code(), "a console ledger search was refused");
            (Vec::new(), None, Some(problem_words(&status)))
        }
    };
    let staff_label = if staff.name.is_empty() {
        staff.principal.clone()
    } else {
        format!("{} ({})", staff.name, staff.principal)
    };
    page(&LedgerPage {
        staff,
        staff_label,
        filters,
        outcomes: OUTCOMES,
        entries,
        next_page,
        problem,
    })
}
