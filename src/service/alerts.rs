//! Alerts for an agency's information-governance lead, and the rule that
//! raises them: a staff member refused again and again in a short time.

use chrono::{DateTime, TimeDelta, Utc};

use super::paging::time_key;
use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::{Acknowledgement, AgencyCode, Alert, AlertId, AlertKind, Role};
use crate::ledger::EntryFilter;
use crate::ledger::Outcome;
use crate::policy::Permit;
use crate::store::Write;

/// When repeated refusals raise an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    /// This many refusals of one staff member (or, for calls refused
    /// before any agency was established, of anyone)...
    pub refusals: u32,
    /// ...within this long raise an alert.
    pub window: TimeDelta,
    /// The agency name operator calls are recorded under: the recipient
    /// of alerts about unattributed refusals (none are raised without it).
    pub operator: Option<AgencyCode>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            refusals: 5,
            window: TimeDelta::minutes(10),
            operator: None,
        }
    }
}

impl Services {
    /// The alert to raise with a call refused before any agency was
    /// established, for `reason`: when it is the `refusals`-th such
    /// refusal within the window, one to the operator, whose security
    /// auditors review them.
    pub(super) async fn unattributed_alert(&self, reason: &str, time: DateTime<Utc>) -> Vec<Write> {
        let policy = &self.alert_policy;
        let Some(operator) = policy.operator.clone() else {
            return Vec::new();
        };
        let filter = EntryFilter {
            agency: Some(String::new()),
            outcome: Some(Outcome::Denied),
            start: Some(time - policy.window),
            ..EntryFilter::default()
        };
        match self.store.count_entries(&filter).await {
            Ok(earlier) if earlier + 1 == u64::from(policy.refusals) => {}
            Ok(_) => return Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "could not count unattributed refusals for alerting");
                return Vec::new();
            }
        }
        vec![Write::RaiseAlert(Alert {
            id: AlertId::generate(),
            kind: AlertKind::UnattributedRefusals,
            recipient: operator,
            agency: String::new(),
            principal: String::new(),
            subject: String::new(),
            summary: format!(
                "{} calls were refused within {} minutes before any agency could be established; \
                 the last: {reason}",
                policy.refusals,
                policy.window.num_minutes(),
            ),
            entry_index: 0,
            raise_time: time,
            acknowledgement: None,
        })]
    }

    /// The alerts to raise with the refusal of `call` for `error`: when it
    /// is the staff member's `refusals`-th refusal within the window, one
    /// to their agency and one to the controller of the data refused.
    pub(super) async fn refusal_alerts(&self, call: &Call, error: &ServiceError) -> Vec<Write> {
        if !matches!(error, ServiceError::Denied(_) | ServiceError::NotFound(_)) {
            return Vec::new();
        }
        let policy = &self.alert_policy;
        let filter = EntryFilter {
            agency: Some(call.caller.agency.as_str().to_owned()),
            principal: Some(call.caller.principal.as_str().to_owned()),
            outcome: Some(Outcome::Denied),
            start: Some(call.time - policy.window),
            ..EntryFilter::default()
        };
        let earlier = match self.store.count_entries(&filter).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not count refusals for alerting");
                return Vec::new();
            }
        };
        if earlier + 1 != u64::from(policy.refusals) {
            return Vec::new();
        }
        let facts = call.facts().clone();
        let mut recipients = vec![call.caller.agency.clone()];
        if let Ok(controller) = AgencyCode::parse(&facts.controller)
            && controller != call.caller.agency
        {
            recipients.push(controller);
        }
        // Only registered agencies have an IG lead to tell.
        let mut registered = Vec::with_capacity(recipients.len());
        for r in recipients {
            if matches!(self.store.agency(&r).await, Ok(Some(_))) {
                registered.push(r);
            }
        }
        let recipients = registered;
        let summary = format!(
            "{} of {} was refused {} times within {} minutes; the last refusal: {}",
            call.caller.principal.as_str(),
            call.caller.agency.resource_name(),
            policy.refusals,
            policy.window.num_minutes(),
            error
        );
        recipients
            .into_iter()
            .map(|recipient| {
                Write::RaiseAlert(Alert {
                    id: AlertId::generate(),
                    kind: AlertKind::RepeatedRefusals,
                    recipient,
                    agency: call.caller.agency.as_str().to_owned(),
                    principal: call.caller.principal.as_str().to_owned(),
                    subject: facts.subject.clone(),
                    summary: summary.clone(),
                    entry_index: 0,
                    raise_time: call.time,
                    acknowledgement: None,
                })
            })
            .collect()
    }

    /// The alert to raise to the controller of data read with emergency
    /// access, if `permit` says it was.
    pub(super) fn break_glass_alert(&self, call: &Call, permit: &Permit) -> Option<Write> {
        let b = permit.break_glass()?;
        let facts = call.facts().clone();
        let recipient = AgencyCode::parse(&facts.controller).ok()?;
        let overrode = match b.overrode {
            Some("OBJECTION_RECORDED") => " over the subject's objection",
            Some("CONSENT_WITHDRAWN") => " although the subject withdrew consent",
            Some(_) => " without the subject's consent",
            None => "",
        };
        Some(Write::RaiseAlert(Alert {
            id: AlertId::generate(),
            kind: AlertKind::BreakGlass,
            recipient,
            agency: call.caller.agency.as_str().to_owned(),
            principal: call.caller.principal.as_str().to_owned(),
            subject: facts.subject.clone(),
            summary: format!(
                "{} of {} used emergency access to {}{overrode}, giving the reason: {}",
                call.caller.principal.as_str(),
                call.caller.agency.resource_name(),
                facts.records.join(", "),
                b.reason
            ),
            entry_index: 0,
            raise_time: call.time,
            acknowledgement: None,
        }))
    }

    /// The alerts raised to the caller's agency (auditor or IG lead role),
    /// oldest first.
    pub async fn list_alerts(
        &self,
        call: &Call,
        unacknowledged_only: bool,
        req: &PageRequest,
    ) -> Result<Audited<Page<Alert>>, ServiceError> {
        call.require_any_role(&[Role::AUDITOR, Role::IG_LEAD, Role::SECURITY_AUDITOR])?;
        let listing = format!("ListAlerts\nunacknowledged_only={unacknowledged_only}");
        let paging = self.tokens.paging(call, &listing, req)?;
        let items = self
            .store
            .alerts(
                &call.caller.agency,
                unacknowledged_only,
                paging.after_time()?,
                paging.size() + 1,
            )
            .await?;
        let page = paging.page(items, |a| time_key(a.raise_time, a.id.as_str()));
        self.commit(call, vec![], page).await
    }

    /// Records that the caller (auditor role) looked at an alert raised to
    /// their agency. A second acknowledgement leaves the first in place.
    pub async fn acknowledge_alert(
        &self,
        call: &Call,
        id: AlertId,
        note: String,
    ) -> Result<Audited<Alert>, ServiceError> {
        call.require_any_role(&[Role::AUDITOR, Role::IG_LEAD, Role::SECURITY_AUDITOR])?;
        let not_found = || ServiceError::NotFound(id.resource_name());
        let alert = self.store.alert(&id).await?.ok_or_else(not_found)?;
        if alert.recipient != call.caller.agency {
            return Err(not_found());
        }
        call.note_subject(alert.subject.clone());
        call.note_fields(vec!["acknowledgement".into()]);
        let acknowledgement = Acknowledgement {
            principal: call.caller.principal.as_str().to_owned(),
            time: call.time,
            note,
        };
        let receipt = self
            .store
            .commit(
                vec![Write::AcknowledgeAlert {
                    id: id.clone(),
                    acknowledgement,
                }],
                call.permitted(),
            )
            .await?;
        let alert = self.store.alert(&id).await?.ok_or_else(not_found)?;
        Ok(Audited::new(receipt, alert))
    }
}
