//! Delivering events: each one is decided when it is delivered, for the
//! subscription's role and purpose, as a read of its resource would be;
//! each delivery is a ledger entry of its own, committed before the event
//! is answered. An event that is not delivered leaves no trace its
//! subscriber can observe: no entry of theirs, no gap in what they are
//! given (cursors are sealed), no count.

use futures_util::future::join_all;

use super::consents::concerns;
use super::paging::page_size;
use super::{Audited, Call, ServiceError, Services};
use crate::domain::agreement::AgreementId;
use crate::domain::consent::ConsentId;
use crate::domain::event::{Cohort, Event, EventKind, Subscription, SubscriptionId};
use crate::domain::{Caller, RecordId, SubjectId};
use crate::ledger::Outcome;
use crate::policy::Decision;
use crate::store::Committed;

/// The most events one call looks at, delivered or not, so that it is
/// answered in bounded time whatever lies between its cursor and the
/// newest event.
pub const MAX_EVENTS_SCANNED: u32 = 5000;

/// How many events are read from storage at a time.
const EVENTS_PER_READ: u32 = 500;

/// What a ListEvents call asks for.
#[derive(Debug, Clone)]
pub struct EventRequest {
    pub subscription: SubscriptionId,
    /// Empty: from the subscription's start.
    pub cursor: String,
    /// 0: the default.
    pub size: u32,
}

/// An event delivered, with the receipt of its delivery's ledger entry.
#[derive(Debug)]
pub struct Delivered {
    pub event: Event,
    /// Where the subscriber goes on from after it.
    pub cursor: String,
    /// The agreements (`agreements/{id}@{version}`) on which the subscriber
    /// may read the resource.
    pub agreements: Vec<String>,
    receipt: Committed,
}

impl Delivered {
    /// The delivery's ledger entry.
    pub fn entry(&self) -> &crate::ledger::Entry {
        self.receipt.entry()
    }
}

/// A page of delivered events.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<Delivered>,
    /// Where the next call goes on from.
    pub next_cursor: String,
}

/// An event's kind in words, for its delivery's entry.
fn describe(kind: EventKind) -> &'static str {
    match kind {
        EventKind::RecordCreated => "record created",
        EventKind::RecordUpdated => "record updated",
        EventKind::RecordSealed => "record sealed",
        EventKind::RecordUnsealed => "record unsealed",
        EventKind::IdentifierLinked => "identifier linked",
        EventKind::IdentifierUnlinked => "identifier unlinked",
        EventKind::ConsentRecorded => "consent recorded",
        EventKind::ConsentWithdrawn => "consent withdrawn",
        EventKind::ObjectionRecorded => "objection recorded",
        EventKind::ObjectionWithdrawn => "objection withdrawn",
        EventKind::AgreementActivated => "agreement activated",
        EventKind::AgreementSuspended => "agreement suspended",
        EventKind::AgreementReinstated => "agreement reinstated",
    }
}

/// Why an event is not delivered: a refusal, as a read of its resource
/// would be refused (never told to the subscriber).
fn withheld(event: &Event) -> ServiceError {
    ServiceError::NotFound(event.resource.clone())
}

/// Whether `event` is of a kind, and about a subject, `subscription`
/// wants, before any decision on its resource. Record classes are
/// checked once the record is read.
async fn wanted(
    services: &Services,
    subscription: &Subscription,
    event: &Event,
) -> Result<bool, ServiceError> {
    if !subscription.kinds.is_empty() && !subscription.kinds.contains(&event.kind) {
        return Ok(false);
    }
    if let Some(class) = &event.record_class
        && !subscription.record_classes.is_empty()
        && !subscription.record_classes.contains(class)
    {
        return Ok(false);
    }
    let Some(subject) = &event.subject else {
        return Ok(true);
    };
    Ok(match &subscription.cohort {
        Cohort::All => true,
        Cohort::Listed(subjects) => subjects.contains(subject),
        Cohort::Held => services
            .store
            .subject_ties(subject)
            .await?
            .connected
            .contains(&subscription.agency),
    })
}

impl Services {
    /// The events of one of the caller's agency's subscriptions after the
    /// request's cursor, for a holder of its role: those it may read now,
    /// each delivered with a ledger entry of its own.
    pub async fn list_events(
        &self,
        call: &Call,
        req: &EventRequest,
    ) -> Result<Audited<EventPage>, ServiceError> {
        let size = page_size(req.size)?;
        let subscription = self.subscription_to_follow(call, &req.subscription).await?;
        let mut after = if req.cursor.is_empty() {
            subscription.start()
        } else {
            self.tokens
                .open_event_cursor(&subscription.id, &req.cursor)?
        };
        let mut events = Vec::new();
        let mut scanned = 0;
        while events.len() < size as usize && scanned < MAX_EVENTS_SCANNED {
            let want = EVENTS_PER_READ.min(MAX_EVENTS_SCANNED - scanned);
            let read = self.store.events(after, want).await?;
            let mut exhausted = read.len() < want as usize;
            let mut candidates = Vec::new();
            for event in read {
                if events.len() + candidates.len() == size as usize {
                    exhausted = false;
                    break;
                }
                scanned += 1;
                after = event.position;
                if wanted(self, &subscription, &event).await? {
                    candidates.push(event);
                }
            }
            let delivered = join_all(
                candidates
                    .into_iter()
                    .map(|event| self.deliver(call, &subscription, event)),
            )
            .await;
            for d in delivered {
                events.extend(d?);
            }
            if exhausted {
                break;
            }
        }
        let page = EventPage {
            events,
            next_cursor: self.tokens.event_cursor(&subscription.id, after),
        };
        self.commit(call, vec![], page).await
    }

    /// The subscription `id` of the caller's agency, which the caller
    /// follows with its role.
    pub(super) async fn subscription_to_follow(
        &self,
        call: &Call,
        id: &SubscriptionId,
    ) -> Result<Subscription, ServiceError> {
        let subscription = self.own_subscription(call, id).await?;
        call.set_purpose(subscription.purpose);
        super::events::require_subscription_role(call, &subscription.role)?;
        Ok(subscription)
    }

    /// Delivers `event` to the follower of `subscription` in `call` if the
    /// subscription's role may read its resource for its purpose now: its
    /// ledger entry is committed first. `None`: not delivered, and no trace
    /// left.
    async fn deliver(
        &self,
        call: &Call,
        subscription: &Subscription,
        event: Event,
    ) -> Result<Option<Delivered>, ServiceError> {
        let delivery = Call::new(
            Caller {
                roles: vec![subscription.role.clone()],
                ..call.caller.clone()
            },
            call.request_id.clone(),
            call.action,
            call.time,
        );
        delivery.set_registry(call.registry());
        delivery.set_purpose(subscription.purpose);
        loop {
            let failed = match self.decide_delivery(&delivery, subscription, &event).await {
                Ok(()) => {
                    let draft = delivery.draft(
                        Outcome::Permitted,
                        "",
                        &format!("notified: {}", describe(event.kind)),
                    );
                    let committed = self
                        .store
                        .commit_expecting(vec![], delivery.expectations(), draft)
                        .await;
                    match committed {
                        Ok(receipt) => {
                            return Ok(Some(Delivered {
                                cursor: self.tokens.event_cursor(&subscription.id, event.position),
                                agreements: delivery.facts().grounds.agreements.clone(),
                                event,
                                receipt,
                            }));
                        }
                        Err(e) => ServiceError::from(e),
                    }
                }
                Err(e) => e,
            };
            if delivery.decide_again(&failed) {
                continue;
            }
            return match failed {
                ServiceError::Denied(_) | ServiceError::NotFound(_) => Ok(None),
                other => Err(other),
            };
        }
    }

    /// Whether the delivery's caller (the subscription's agency and role,
    /// for its purpose) may read `event`'s resource now, as a read of it
    /// would be decided; notes the delivery's entry. A refusal is an error.
    async fn decide_delivery(
        &self,
        delivery: &Call,
        subscription: &Subscription,
        event: &Event,
    ) -> Result<(), ServiceError> {
        let resource = event.resource.as_str();
        if let Ok(id) = RecordId::parse_name(resource) {
            let (record, agreements) = self.known_record(delivery, &id, None).await?;
            if !subscription.record_classes.is_empty()
                && !subscription.record_classes.contains(&record.record_class)
            {
                return Err(withheld(event));
            }
            match self.decide(delivery, &agreements, &record)? {
                Decision::Permit(permit) => delivery.note_permit(&permit.dry_run()),
                Decision::Deny(_) => return Err(withheld(event)),
            }
        } else if let Ok(id) = SubjectId::parse_name(resource) {
            self.load_subject(delivery, &id).await?;
        } else if let Ok(id) = ConsentId::parse_name(resource) {
            let consent = self
                .store
                .consent(&id)
                .await?
                .filter(|c| concerns(delivery, c))
                .ok_or_else(|| withheld(event))?;
            self.load_subject(delivery, &consent.subject).await?;
        } else if let Ok(id) = AgreementId::parse_name(resource) {
            let agreement = self
                .store
                .agreement(&id, Some(event.version))
                .await?
                .filter(|a| a.terms.is_party(&delivery.caller.agency))
                .ok_or_else(|| withheld(event))?;
            delivery.note_records(vec![agreement.version_name()]);
        } else {
            return Err(withheld(event));
        }
        delivery.note_records(vec![match event.version {
            0 => event.resource.clone(),
            v => format!("{}@{v}", event.resource),
        }]);
        delivery.note_subject(
            event
                .subject
                .as_ref()
                .map(SubjectId::resource_name)
                .unwrap_or_default(),
        );
        delivery.note_controller(event.controller.as_str().to_owned());
        Ok(())
    }
}
