//! Subjects' consents and objections.

use chrono::{DateTime, Utc};

use super::merges::merged_refusal;
use super::paging::time_key;
use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::consent::{Channel, Consent, ConsentId, ConsentKind, ConsentScope, Withdrawal};
use crate::domain::{SubjectId, Violations, check_text};
use crate::store::{Expect, Write};

/// A consent or objection to record, as received (each value valid on its
/// own).
#[derive(Debug, Clone)]
pub struct NewConsent {
    pub subject: SubjectId,
    pub kind: ConsentKind,
    pub scope: ConsentScope,
    pub channel: Channel,
    /// `None`: from when it is recorded.
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub note: String,
}

/// Whether `consent` concerns `call`'s agency: it recorded it, or it names
/// that agency or every agency as recipient.
pub(super) fn concerns(call: &Call, consent: &Consent) -> bool {
    let agency = &call.caller.agency;
    &consent.recorded_by == agency
        || consent.scope.recipients.is_empty()
        || consent.scope.recipients.contains(agency)
}

impl Services {
    /// Records a consent or objection.
    pub async fn record_consent(
        &self,
        call: &Call,
        new: NewConsent,
    ) -> Result<Audited<Consent>, ServiceError> {
        call.note_subject(new.subject.resource_name());
        call.note_controller(call.caller.agency.as_str().to_owned());
        let mut v = Violations::new();
        if let Err(e) = check_text(&new.note, 0, 1000) {
            v.add("consent.note", e);
        }
        let valid_from = new.valid_from.unwrap_or(call.time);
        if new.valid_until.is_some_and(|end| end <= valid_from) {
            v.add("consent.valid_until", "must be after valid_from");
        }
        match self.store.subject(&new.subject).await? {
            None => v.add(
                "consent.subject",
                format!("{} does not exist", new.subject.resource_name()),
            ),
            Some(s) if s.merged_into.is_some() => return Err(merged_refusal(&s.id)),
            Some(_) => call.rely_on(Expect::Subject(new.subject.clone()), false),
        }
        for (i, class) in new.scope.record_classes.iter().enumerate() {
            if self.store.record_class(class).await?.is_none() {
                v.add(
                    format!("consent.record_classes[{i}]"),
                    format!("{} is not in the catalogue", class.resource_name()),
                );
            }
        }
        for (i, agency) in new.scope.recipients.iter().enumerate() {
            if self.store.agency(agency).await?.is_none() {
                v.add(
                    format!("consent.recipients[{i}]"),
                    format!("{} is not registered", agency.resource_name()),
                );
            }
        }
        if !v.is_empty() {
            return Err(v.into());
        }
        let consent = Consent {
            id: ConsentId::generate(),
            subject: new.subject,
            kind: new.kind,
            scope: new.scope,
            channel: new.channel,
            valid_from,
            valid_until: new.valid_until,
            note: new.note.trim().to_owned(),
            recorded_by: call.caller.agency.clone(),
            recorded_principal: call.caller.principal.as_str().to_owned(),
            record_time: call.time,
            withdrawal: None,
        };
        call.note_records(vec![consent.id.resource_name()]);
        self.commit(call, vec![Write::InsertConsent(consent.clone())], consent)
            .await
    }

    /// Withdraws a consent or objection that concerns the caller's agency,
    /// with effect from now.
    pub async fn withdraw_consent(
        &self,
        call: &Call,
        id: &ConsentId,
        reason: &str,
    ) -> Result<Audited<Consent>, ServiceError> {
        call.note_records(vec![id.resource_name()]);
        if let Err(e) = check_text(reason, 0, 500) {
            return Err(Violations::one("reason", e).into());
        }
        let consent = self
            .store
            .consent(id)
            .await?
            .filter(|c| concerns(call, c))
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        call.note_subject(consent.subject.resource_name());
        call.note_controller(consent.recorded_by.as_str().to_owned());
        if let Some(w) = &consent.withdrawal {
            return Err(ServiceError::Precondition {
                code: "CONSENT_ALREADY_WITHDRAWN",
                message: format!(
                    "{} was already withdrawn on {}",
                    id.resource_name(),
                    w.time.format("%Y-%m-%d")
                ),
            });
        }
        let withdrawal = Withdrawal {
            agency: call.caller.agency.clone(),
            principal: call.caller.principal.as_str().to_owned(),
            time: call.time,
            reason: reason.trim().to_owned(),
        };
        self.commit(
            call,
            vec![Write::WithdrawConsent {
                consent: consent.clone(),
                withdrawal: withdrawal.clone(),
            }],
            Consent {
                withdrawal: Some(withdrawal),
                ..consent
            },
        )
        .await
    }

    /// Lists a subject's consents that concern the caller's agency, newest
    /// first.
    pub async fn list_consents(
        &self,
        call: &Call,
        subject: &SubjectId,
        req: &PageRequest,
    ) -> Result<Audited<Page<Consent>>, ServiceError> {
        call.note_subject(subject.resource_name());
        let listing = format!("ListConsents\n{}", subject.resource_name());
        let paging = self.tokens.paging(call, &listing, req)?;
        let after = paging.after_time()?;
        // A merged subject's consents are the survivor's.
        let subject = &self.resolve_subject(call, subject).await?.id;
        let items = self
            .store
            .consents_of(subject, &call.caller.agency, after, paging.size() + 1)
            .await?;
        let page = paging.page(items, |c| time_key(c.record_time, c.id.as_str()));
        call.note_records(page.items.iter().map(|c| c.id.resource_name()).collect());
        call.note_controller(call.caller.agency.as_str().to_owned());
        self.commit(call, vec![], page).await
    }
}
