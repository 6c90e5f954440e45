//! Ledger search: `AuditService.ListEntries` with the staff member's token,
//! a page at a time, in plain words.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
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
    let Some(call) = staff.call(request(&filters)) else {
        return to_sign_in();
    };
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
    page(&LedgerPage {
        staff_label: staff.label(),
        staff,
        filters,
        outcomes: OUTCOMES,
        entries,
        next_page,
        problem,
    })
}

/// An entry as its page shows it: each fact in words, the empty ones left
/// out.
#[derive(Debug)]
pub struct EntryView {
    pub index: i64,
    pub facts: Vec<(&'static str, String)>,
}

/// What the browser checks: the entry's leaf hash, its audit path and the
/// signed checkpoint, against the verifier keys the operator publishes.
#[derive(Debug)]
pub struct ProofView {
    pub size: i64,
    pub leaf: String,
    /// The audit path, hex, space-separated, leaf side first.
    pub path: String,
    pub note: String,
    /// The published verifier keys, space-separated.
    pub keys: String,
}

#[derive(askama::Template)]
#[template(path = "entry.html")]
struct EntryPage {
    staff: super::Staff,
    staff_label: String,
    problem: Option<String>,
    e: EntryView,
    proof: ProofView,
}

#[derive(askama::Template)]
#[template(path = "message.html")]
struct MessagePage {
    staff: super::Staff,
    staff_label: String,
    heading: String,
    problem: Option<String>,
}

/// A list in words (empty when there is nothing in it).
fn listed(items: &[String]) -> String {
    items.join(", ")
}

impl EntryView {
    fn of(e: &pb::LedgerEntry) -> Self {
        let row = Row::of(e.clone());
        let roles = listed(&e.roles);
        let outcome = match (e.reason_code.is_empty(), e.reason.is_empty()) {
            (true, _) => row.outcome.clone(),
            (false, true) => format!("{} ({})", row.outcome, e.reason_code),
            (false, false) => format!("{} ({}: {})", row.outcome, e.reason_code, e.reason),
        };
        let facts = [
            ("When (UTC)", row.time),
            ("Who", row.who),
            ("Their roles", roles),
            ("What they did", row.action),
            ("Purpose they gave", row.purpose),
            ("About", e.subject.clone()),
            ("Records", listed(&e.records)),
            ("Fields disclosed", listed(&e.fields)),
            ("Outcome", outcome),
            ("Data controller", e.controller.clone()),
            ("Sharing agreements", listed(&e.agreements)),
            ("Lawful basis", listed(&e.lawful_bases)),
            ("Consent", e.consent.clone()),
            ("Emergency access reason", e.break_glass_reason.clone()),
            ("Client certificate (SHA-256)", e.client_certificate.clone()),
            ("Request id", e.request_id.clone()),
            ("Trace id", e.trace_id.clone()),
            ("Entry id", e.id.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        Self {
            index: e.index,
            facts,
        }
    }
}

/// An entry's page, with its proof checked in the browser.
pub async fn entry(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(index): Path<i64>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let request = pb::GetInclusionProofRequest {
        purpose: pb::Purpose::Administration as i32,
        entry: Some(pb::get_inclusion_proof_request::Entry::LeafIndex(index)),
        tree_size: 0,
    };
    let Some(call) = staff.call(request) else {
        return to_sign_in();
    };
    let answer = AuditServiceClient::new(shared.accord.clone())
        .get_inclusion_proof(call)
        .await;
    let proved = answer.map(tonic::Response::into_inner).map_err(|status| {
        tracing::info!(code = ?status.code(), "a console entry page was refused");
        match status.code() {
            tonic::Code::NotFound => {
                "There is no such entry, or your organisation may not see it.".to_owned()
            }
            _ => problem_words(&status),
        }
    });
    let proved = proved.and_then(|r| match r {
        pb::GetInclusionProofResponse {
            entry: Some(entry),
            checkpoint: Some(checkpoint),
            hashes,
            tree_size,
        } => Ok((entry, (checkpoint, hashes, tree_size))),
        _ => Err("Accord's answer had no entry or no checkpoint. Try again later.".to_owned()),
    });
    let (entry, checkpoint) = match proved {
        Ok(proved) => proved,
        Err(problem) => {
            return page(&MessagePage {
                staff_label: staff.label(),
                staff,
                heading: format!("Ledger entry {index}"),
                problem: Some(problem),
            });
        }
    };
    let (checkpoint, hashes, size) = checkpoint;
    let proof = ProofView {
        size,
        leaf: hex::encode(&entry.leaf_hash),
        path: hashes.iter().map(hex::encode).collect::<Vec<_>>().join(" "),
        note: checkpoint.note,
        keys: shared.verifier_keys.join(" "),
    };
    page(&EntryPage {
        staff_label: staff.label(),
        staff,
        problem: None,
        e: EntryView::of(&entry),
        proof,
    })
}
