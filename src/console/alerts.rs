//! The alerts inbox: `AuditService.ListAlerts` (oldest first, with their
//! age) and `AcknowledgeAlert` with what the staff member found, each a
//! call Accord decides and records.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Shared, page, refused_form, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::audit_service_client::AuditServiceClient;

/// The inbox's options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// `yes`: acknowledged alerts too.
    all: String,
    /// `yes`: an alert was just acknowledged.
    done: String,
}

/// An alert as the inbox shows it.
#[derive(Debug)]
pub struct AlertView {
    /// `alerts/{id}`.
    pub name: String,
    /// The id alone, for element ids.
    pub id: String,
    pub kind: &'static str,
    /// How long ago it was raised, in words.
    pub age: String,
    pub acknowledged: bool,
    pub facts: Vec<(&'static str, String)>,
}

#[derive(askama::Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    staff: super::Staff,
    staff_label: String,
    problem: Option<String>,
    alerts: Vec<AlertView>,
    show_all: bool,
    acknowledged: bool,
}

/// How long ago `seconds` (since the epoch) was, in words.
pub fn age(seconds: i64, now: i64) -> String {
    let minutes = (now - seconds).max(0) / 60;
    match minutes {
        0 => "just now".to_owned(),
        1 => "1 minute ago".to_owned(),
        m if m < 60 => format!("{m} minutes ago"),
        m if m < 120 => "1 hour ago".to_owned(),
        m if m < 2880 => format!("{} hours ago", m / 60),
        m => format!("{} days ago", m / 1440),
    }
}

fn kind_words(kind: i32) -> &'static str {
    match pb::AlertKind::try_from(kind).unwrap_or(pb::AlertKind::Unspecified) {
        pb::AlertKind::RepeatedRefusals => "Repeated refusals",
        pb::AlertKind::BreakGlass => "Emergency (break-glass) access",
        pb::AlertKind::UnattributedRefusals => "Refusals before identification",
        pb::AlertKind::ReviewOverdue => "Review overdue",
        pb::AlertKind::Unspecified => "Alert",
    }
}

impl AlertView {
    fn of(a: pb::Alert, now: i64) -> Self {
        let raised = a.raise_time.map_or(now, |t| t.seconds);
        let when = |t: Option<prost_types::Timestamp>| {
            super::formatted(t.as_ref(), "%Y-%m-%d %H:%M:%S UTC")
        };
        let facts = [
            ("What happened", a.summary.clone()),
            ("Raised", when(a.raise_time)),
            ("Staff member", a.principal.clone()),
            ("Their agency", a.agency.clone()),
            ("About", a.subject.clone()),
            ("Ledger entry", a.entry_index.to_string()),
            ("Acknowledged by", a.acknowledged_by.clone()),
            ("Acknowledged", when(a.acknowledge_time)),
            ("What they found", a.acknowledge_note.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        Self {
            id: a.name.strip_prefix("alerts/").unwrap_or(&a.name).to_owned(),
            name: a.name,
            kind: kind_words(a.kind),
            age: age(raised, now),
            acknowledged: a.acknowledged,
            facts,
        }
    }
}

/// The inbox.
pub async fn inbox(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(options): Query<Options>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let show_all = options.all == "yes";
    let request = pb::ListAlertsRequest {
        purpose: pb::Purpose::Administration as i32,
        unacknowledged_only: !show_all,
        page_size: 200,
        page_token: String::new(),
    };
    let Some(call) = staff.call(request) else {
        return to_sign_in();
    };
    let now = chrono::Utc::now().timestamp();
    let (alerts, problem) = match AuditServiceClient::new(shared.accord.clone())
        .list_alerts(call)
        .await
    {
        Ok(r) => (
            r.into_inner()
                .alerts
                .into_iter()
                .map(|a| AlertView::of(a, now))
                .collect(),
            None,
        ),
        Err(status) => {
            tracing::info!(code = ?status.code(), "a console alerts page was refused");
            (Vec::new(), Some(super::ledger::problem_words(&status)))
        }
    };
    page(&AlertsPage {
        staff_label: staff.label(),
        staff,
        problem,
        alerts,
        show_all,
        acknowledged: options.done == "yes",
    })
}

/// The acknowledgement form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Acknowledgement {
    csrf: String,
    alert: String,
    note: String,
}

/// Acknowledges an alert with what was found.
pub async fn acknowledge(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Acknowledgement>,
) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    if !super::session::same_secret(&form.csrf, &staff.csrf) {
        return refused_form();
    }
    let problem = |problem: String| {
        page(&AlertsPage {
            staff_label: staff.label(),
            staff: staff.clone(),
            problem: Some(problem),
            alerts: Vec::new(),
            show_all: false,
            acknowledged: false,
        })
    };
    if form.note.trim().is_empty() {
        return problem("Say what you found before acknowledging the alert.".to_owned());
    }
    let request = pb::AcknowledgeAlertRequest {
        purpose: pb::Purpose::Administration as i32,
        name: form.alert,
        note: form.note.trim().to_owned(),
    };
    let Some(call) = staff.call(request) else {
        return to_sign_in();
    };
    match AuditServiceClient::new(shared.accord.clone())
        .acknowledge_alert(call)
        .await
    {
        Ok(_) => Redirect::to("/alerts?done=yes").into_response(),
        Err(status) => {
            tracing::info!(code = ?status.code(), "a console acknowledgement was refused");
            problem(super::ledger::problem_words(&status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_are_in_words() {
        assert_eq!(age(1000, 1030), "just now");
        assert_eq!(age(0, 90), "1 minute ago");
        assert_eq!(age(0, 3 * 3600), "3 hours ago");
        assert_eq!(age(0, 3 * 86_400), "3 days ago");
        assert_eq!(age(100, 0), "just now");
    }
}
