//! Delivering events: each one is decided when it is delivered, for the
//! subscription's role and purpose, as a read of its resource would be;
//! each delivery is a ledger entry of its own, committed before the event
//! is answered. An event that is not delivered leaves no trace its
//! subscriber can observe: no entry of theirs, no gap in what they are
//! given (cursors are sealed), no count.

use std::collections::HashMap;

use futures_util::future::join_all;
use tokio::sync::watch;

use super::consents::concerns;
use super::paging::page_size;
use super::{Audited, Call, ServiceError, Services};
use crate::domain::agreement::AgreementId;
use crate::domain::consent::ConsentId;
use crate::domain::event::{Cohort, Event, EventKind, EventPosition, Subscription, SubscriptionId};
use crate::domain::review::ReviewId;
use crate::domain::{Caller, RecordId, SubjectId};
use crate::ledger::Outcome;
use crate::policy::Decision;
use crate::store::Committed;

/// The most events one call looks at, delivered or not, so that it is
/// answered in bounded time whatever lies between its cursor and the
/// newest event.
pub const MAX_EVENTS_SCANNED: u32 = 5000;

/// How long a stream goes without sending anything before it sends a
/// heartbeat, unless configured.
pub const DEFAULT_EVENT_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

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
        EventKind::ReviewRequired => "review required",
        EventKind::AgreementExpired => "agreement expired",
        EventKind::SubjectMerged => "subject merged",
        EventKind::SubjectUnmerged => "subject unmerged",
    }
}

/// Why an event is not delivered: a refusal, as a read of its resource
/// would be refused (never told to the subscriber).
fn withheld(event: &Event) -> ServiceError {
    ServiceError::NotFound(event.resource.clone())
}

/// Whether `subject` is, through standing merges, the person one of
/// `listed` names: the survivor of a listed subject, merged into one, or
/// merged into the same survivor.
async fn listed_person(
    services: &Services,
    listed: &[SubjectId],
    subject: &SubjectId,
) -> Result<bool, ServiceError> {
    let Some(root) = services.survivor_of(subject).await? else {
        return Ok(false);
    };
    if listed.contains(&root.id) {
        return Ok(true);
    }
    Ok(services
        .store
        .merged_subjects(&root.id)
        .await?
        .iter()
        .any(|m| listed.contains(&m.id)))
}

/// Whether `event` is of a kind, and about a subject, `subscription`
/// wants, before any decision on its resource. Record classes are
/// checked once the record is read. `people` remembers, for one scan,
/// which subjects are a listed person through a merge.
async fn wanted(
    services: &Services,
    subscription: &Subscription,
    event: &Event,
    people: &mut HashMap<SubjectId, bool>,
) -> Result<bool, ServiceError> {
    if !subscription.kinds.is_empty() && !subscription.kinds.contains(&event.kind) {
        return Ok(false);
    }
    // An event addressed to one agency (a review) is for it alone, about
    // whichever subject and class.
    if let Some(recipient) = &event.recipient {
        return Ok(*recipient == subscription.agency);
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
        Cohort::Listed(subjects) if subjects.contains(subject) => true,
        Cohort::Listed(subjects) => match people.get(subject) {
            Some(same) => *same,
            None => {
                let same = listed_person(services, subjects, subject).await?;
                people.insert(subject.clone(), same);
                same
            }
        },
        Cohort::Held => services
            .store
            .subject_ties(subject)
            .await?
            .connected
            .contains(&subscription.agency),
    })
}

/// Who follows a subscription, in which call: what each delivery's entry
/// records besides the event.
#[derive(Debug, Clone)]
struct Follower {
    caller: Caller,
    request_id: String,
    trace_id: String,
    action: &'static str,
    registry: Option<i64>,
}

impl Follower {
    fn of(call: &Call) -> Self {
        Self {
            caller: call.caller.clone(),
            request_id: call.request_id.clone(),
            trace_id: call.trace_id.clone(),
            action: call.action,
            registry: call.registry(),
        }
    }
}

/// What one pass over the events after a position found.
struct Scan {
    delivered: Vec<Delivered>,
    /// The position of the last event looked at.
    after: EventPosition,
    /// Whether every event committed so far was looked at.
    caught_up: bool,
}

/// A subscription being followed as a stream (`WatchEvents`): events as
/// they commit, from storage, woken by [`crate::store::Store::changes`].
pub struct EventWatch {
    services: Services,
    follower: Follower,
    subscription: SubscriptionId,
    after: EventPosition,
    changes: watch::Receiver<u64>,
}

impl std::fmt::Debug for EventWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWatch")
            .field("subscription", &self.subscription)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// What a stream sends next.
#[derive(Debug)]
pub enum WatchItem {
    /// Events delivered, in commit order.
    Events(Vec<Delivered>),
    /// Nothing was delivered for a while: where to resume, and when.
    Heartbeat {
        cursor: String,
        time: chrono::DateTime<chrono::Utc>,
    },
}

/// How many events a stream delivers at a time.
const WATCH_PAGE: u32 = 100;

impl EventWatch {
    /// The request id of the call that started it.
    pub fn request_id(&self) -> &str {
        &self.follower.request_id
    }

    /// The next events once there are any to deliver, or a heartbeat when
    /// none came within the heartbeat interval. The subscription is read
    /// again each time: a stream ends (NOT_FOUND) once it is deleted, and
    /// every event is decided when it is delivered.
    pub async fn next(&mut self) -> Result<WatchItem, ServiceError> {
        let s = &self.services;
        let deadline = tokio::time::Instant::now() + s.event_heartbeat;
        loop {
            // Seen before storage is read: a commit after this wakes us.
            self.changes.borrow_and_update();
            let subscription = s
                .subscription_of(&self.follower.caller.agency, &self.subscription)
                .await?
                .ok_or_else(|| ServiceError::NotFound(self.subscription.resource_name()))?;
            let scan = s
                .scan(
                    &self.follower,
                    s.now(),
                    &subscription,
                    self.after,
                    WATCH_PAGE,
                )
                .await?;
            self.after = scan.after;
            if !scan.delivered.is_empty() {
                return Ok(WatchItem::Events(scan.delivered));
            }
            let beat = || WatchItem::Heartbeat {
                cursor: s.tokens.event_cursor(&self.subscription, self.after),
                time: s.now(),
            };
            if !scan.caught_up {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(beat());
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => {}
                // No more wake-ups (the store is closing): look again at
                // the heartbeat.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    return Ok(beat());
                }
                Err(_) => return Ok(beat()),
            }
        }
    }
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
        let after = self.cursor_position(&subscription, &req.cursor)?;
        let scan = self
            .scan(&Follower::of(call), call.time, &subscription, after, size)
            .await?;
        let page = EventPage {
            events: scan.delivered,
            next_cursor: self.tokens.event_cursor(&subscription.id, scan.after),
        };
        self.commit(call, vec![], page).await
    }

    /// Follows one of the caller's agency's subscriptions as a stream, for
    /// a holder of its role, from `cursor` (empty: its start).
    pub async fn watch_events(
        &self,
        call: &Call,
        id: &SubscriptionId,
        cursor: &str,
    ) -> Result<Audited<EventWatch>, ServiceError> {
        let subscription = self.subscription_to_follow(call, id).await?;
        let after = self.cursor_position(&subscription, cursor)?;
        let watch = EventWatch {
            services: self.clone(),
            follower: Follower::of(call),
            subscription: subscription.id,
            after,
            changes: self.store.changes(),
        };
        self.commit(call, vec![], watch).await
    }

    /// The position `cursor` holds among `subscription`'s events; empty:
    /// the subscription's start.
    fn cursor_position(
        &self,
        subscription: &Subscription,
        cursor: &str,
    ) -> Result<EventPosition, ServiceError> {
        if cursor.is_empty() {
            Ok(subscription.start())
        } else {
            self.tokens.open_event_cursor(&subscription.id, cursor)
        }
    }

    /// Looks at `subscription`'s events after `after`, delivering up to
    /// `size` of them to `follower` as decided at `now`, and at most
    /// [`MAX_EVENTS_SCANNED`] in all.
    async fn scan(
        &self,
        follower: &Follower,
        now: chrono::DateTime<chrono::Utc>,
        subscription: &Subscription,
        mut after: EventPosition,
        size: u32,
    ) -> Result<Scan, ServiceError> {
        let mut events = Vec::new();
        let mut scanned = 0;
        let mut caught_up = false;
        let mut people = HashMap::new();
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
                if wanted(self, subscription, &event, &mut people).await? {
                    candidates.push(event);
                }
            }
            let delivered = join_all(
                candidates
                    .into_iter()
                    .map(|event| self.deliver(follower, now, subscription, event)),
            )
            .await;
            for d in delivered {
                events.extend(d?);
            }
            if exhausted {
                caught_up = true;
                break;
            }
        }
        Ok(Scan {
            delivered: events,
            after,
            caught_up,
        })
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

    /// Delivers `event` to `follower` if the subscription's role may read
    /// its resource for its purpose at `now`: its ledger entry is committed
    /// first. `None`: not delivered, and no trace left.
    async fn deliver(
        &self,
        follower: &Follower,
        now: chrono::DateTime<chrono::Utc>,
        subscription: &Subscription,
        event: Event,
    ) -> Result<Option<Delivered>, ServiceError> {
        let delivery = Call::new(
            Caller {
                roles: vec![subscription.role.clone()],
                ..follower.caller.clone()
            },
            follower.request_id.clone(),
            follower.action,
            now,
        )
        .traced(follower.trace_id.clone());
        delivery.set_registry(follower.registry);
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
                            let lag = (now - event.time).to_std().unwrap_or_default();
                            crate::monitor::event_delivered(
                                subscription.agency.as_str(),
                                event.kind.code(),
                                lag,
                            );
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
        } else if let Ok(id) = ReviewId::parse_name(resource) {
            self.store
                .review(&id)
                .await?
                .filter(|r| r.recipient == delivery.caller.agency)
                .ok_or_else(|| withheld(event))?;
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
