//! Ledger search: `AuditService.ListEntries` with the staff member's token,
//! a page at a time, in plain words.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, page, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::audit_service_client::AuditServiceClient;

/// The search form's fields, as the query string carries them: every
/// filter of ListEntries.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Filters {
    /// The person, by NHS number (resolved with FindSubjects).
    pub nhs_number: String,
    /// The person, by family name and date of birth (`YYYY-MM-DD`), when
    /// no NHS number is given: it must match one person only.
    pub family_name: String,
    pub birth_date: String,
    /// The person, by id (as a person's page links to their entries):
    /// used instead of the NHS number when given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    pub agency: String,
    pub principal: String,
    /// The purpose the calls declared (a `Purpose` name in lower case).
    pub purpose: String,
    pub outcome: String,
    /// `yes`: emergency ("break the glass") access only.
    pub emergency: String,
    /// A client certificate's SHA-256 fingerprint.
    pub certificate: String,
    /// From this day (UTC), `YYYY-MM-DD`.
    pub from: String,
    /// Up to and including this day (UTC), `YYYY-MM-DD`.
    pub to: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub page_token: String,
}

/// The purposes the form offers: value, label.
const PURPOSES: &[(&str, &str)] = &[
    ("", "Any"),
    ("direct_care", "Direct care"),
    ("safeguarding", "Safeguarding"),
    ("crime_prevention", "Crime prevention"),
    ("emergency", "Emergency"),
    ("administration", "Administration"),
    ("research", "Research"),
];

/// A purpose chosen in the form.
fn chosen_purpose(value: &str) -> pb::Purpose {
    match value {
        "direct_care" => pb::Purpose::DirectCare,
        "safeguarding" => pb::Purpose::Safeguarding,
        "crime_prevention" => pb::Purpose::CrimePrevention,
        "emergency" => pb::Purpose::Emergency,
        "administration" => pb::Purpose::Administration,
        "research" => pb::Purpose::Research,
        _ => pb::Purpose::Unspecified,
    }
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
    purposes: &'static [(&'static str, &'static str)],
    /// The CSV download of this search.
    csv_link: String,
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
        let time = super::formatted(e.time.as_ref(), "%Y-%m-%d %H:%M:%S");
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

/// A day of the form (`YYYY-MM-DD`) as the instant it starts (UTC), plus
/// `days`; `field` names it in the problem.
pub fn day(value: &str, days: i64, field: &str) -> Result<Option<prost_types::Timestamp>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("Enter the {field} date as year-month-day, for example 2026-12-01"))?;
    let start = (date + chrono::TimeDelta::days(days))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("The {field} date is out of range"))?;
    Ok(Some(prost_types::Timestamp {
        seconds: start,
        nanos: 0,
    }))
}

/// The ListEntries request the form's fields make (the person already
/// resolved to `subject`), or what is wrong with them.
fn request(filters: &Filters, subject: String) -> Result<pb::ListEntriesRequest, String> {
    let outcome = match filters.outcome.as_str() {
        "permitted" => pb::Outcome::Permitted,
        "denied" => pb::Outcome::Denied,
        "invalid" => pb::Outcome::Invalid,
        "failed" => pb::Outcome::Failed,
        _ => pb::Outcome::Unspecified,
    };
    let agency = filters.agency.trim();
    Ok(pb::ListEntriesRequest {
        subject,
        agency: if agency.is_empty() {
            String::new()
        } else {
            format!("agencies/{agency}")
        },
        principal: filters.principal.trim().to_owned(),
        outcome: outcome as i32,
        entry_purpose: chosen_purpose(&filters.purpose) as i32,
        break_glass_only: filters.emergency == "yes",
        client_certificate: filters.certificate.trim().to_owned(),
        start_time: day(&filters.from, 0, "from")?,
        end_time: day(&filters.to, 1, "to")?,
        page_size: 50,
        page_token: filters.page_token.clone(),
        purpose: pb::Purpose::Administration as i32,
        ..Default::default()
    })
}

/// The query string of `filters`.
fn query(filters: &Filters) -> String {
    serde_urlencoded::to_string(filters).unwrap_or_default()
}

/// The link to the next page: the same filters and the page token.
fn next_link(filters: &Filters, token: &str) -> String {
    let next = Filters {
        page_token: token.to_owned(),
        ..filters.clone()
    };
    format!("/ledger?{}", query(&next))
}

/// One page of the search `filters` describe, as the staff member: the
/// entries and the next page's token, or the problem in words.
async fn search_page(
    shared: &Shared,
    staff: &super::Staff,
    filters: &Filters,
) -> Result<(Vec<pb::LedgerEntry>, String), String> {
    let subject = if !filters.subject.trim().is_empty() {
        format!("subjects/{}", filters.subject.trim())
    } else if filters.nhs_number.trim().is_empty()
        && filters.family_name.trim().is_empty()
        && filters.birth_date.trim().is_empty()
    {
        String::new()
    } else {
        let lookup = super::people::Lookup {
            nhs_number: filters.nhs_number.clone(),
            family_name: filters.family_name.clone(),
            given_name: String::new(),
            birth_date: filters.birth_date.clone(),
        };
        match super::people::find(shared, staff, &lookup)
            .await?
            .as_slice()
        {
            [one] => one.name.clone(),
            several => {
                return Err(format!(
                    "{} people match that name and date of birth. Find the one you mean on the \
                     People page and search the ledger from their page.",
                    several.len()
                ));
            }
        }
    };
    let request = request(filters, subject)?;
    let call = staff
        .call(request)
        .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
    let answer = AuditServiceClient::new(shared.accord.clone())
        .list_entries(call)
        .await
        .map_err(|status| {
            tracing::info!(code = ?status.code(), "a console ledger search was refused");
            problem_words(&status)
        })?
        .into_inner();
    Ok((answer.entries, answer.next_page_token))
}

/// What Accord's refusal means for the staff member.
pub fn problem_words(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::InvalidArgument => format!("Check the search: {}", status.message()),
        tonic::Code::PermissionDenied => {
            "You are not allowed to do this. Ask your organisation for the auditor or IG lead role."
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
    let (entries, next_page, problem) = match search_page(&shared, &staff, &filters).await {
        Ok((entries, next)) => {
            let next = (!next.is_empty()).then(|| next_link(&filters, &next));
            (entries.into_iter().map(Row::of).collect(), next, None)
        }
        Err(problem) => (Vec::new(), None, Some(problem)),
    };
    let csv_link = format!(
        "/ledger/export.csv?{}",
        query(&Filters {
            page_token: String::new(),
            ..filters.clone()
        })
    );
    page(&LedgerPage {
        staff_label: staff.label(),
        staff,
        filters,
        outcomes: OUTCOMES,
        purposes: PURPOSES,
        csv_link,
        entries,
        next_page,
        problem,
    })
}

/// The most entries one CSV download holds.
const CSV_ROWS: usize = 10_000;

/// The search as a CSV file: every matching entry (up to 10,000), each
/// page of it a ListEntries call; cells made inert for spreadsheets.
pub async fn export(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "index",
        "time",
        "agency",
        "principal",
        "roles",
        "action",
        "purpose",
        "subject",
        "records",
        "fields",
        "outcome",
        "reason_code",
        "reason",
        "controller",
        "agreements",
        "lawful_bases",
        "consent",
        "emergency_reason",
        "client_certificate",
        "request_id",
        "trace_id",
        "entry_id",
    ];
    let mut failed = writer.write_record(header).err().map(|e| e.to_string());
    let mut filters = Filters {
        page_token: String::new(),
        ..filters
    };
    let mut rows = 0;
    while failed.is_none() && rows < CSV_ROWS {
        let (entries, next) = match search_page(&shared, &staff, &filters).await {
            Ok(page) => page,
            Err(problem) => {
                failed = Some(problem);
                break;
            }
        };
        for e in entries.into_iter().take(CSV_ROWS - rows) {
            rows += 1;
            let row = Row::of(e.clone());
            let cells = [
                e.index.to_string(),
                row.time,
                e.agency,
                e.principal,
                e.roles.join(" "),
                row.action,
                row.purpose,
                e.subject,
                e.records.join(" "),
                e.fields.join(" "),
                row.outcome,
                e.reason_code,
                e.reason,
                e.controller,
                e.agreements.join(" "),
                e.lawful_bases.join(" "),
                e.consent,
                e.break_glass_reason,
                e.client_certificate,
                e.request_id,
                e.trace_id,
                e.id,
            ];
            if let Err(err) =
                writer.write_record(cells.iter().map(|c| crate::report::inert_cell(c)))
            {
                failed = Some(err.to_string());
                break;
            }
        }
        if next.is_empty() {
            break;
        }
        filters.page_token = next;
    }
    let body = writer.into_inner().map_err(|e| e.to_string());
    match (failed, body) {
        (None, Ok(body)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"accord-ledger.csv\"",
                ),
            ],
            body,
        )
            .into_response(),
        (Some(problem), _) | (None, Err(problem)) => (
            StatusCode::BAD_GATEWAY,
            format!("The download failed: {problem}"),
        )
            .into_response(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_whole_utc_days() {
        let from = day("2026-12-01", 0, "from").unwrap().unwrap();
        let to = day("2026-12-01", 1, "to").unwrap().unwrap();
        assert_eq!(to.seconds - from.seconds, 86_400);
        assert!(
            day("01/12/2026", 0, "from")
                .unwrap_err()
                .contains("year-month-day")
        );
        assert_eq!(day(" ", 0, "from").unwrap(), None);
    }
}
