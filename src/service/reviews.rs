//! Reviews: when a change ends the ground on which agencies received a
//! subject's data, every one of them is found from the ledger and asked to
//! review what it holds.
//!
//! The fan-out follows the events, not the calls: each process looks at
//! the events committed since the last review raised, and raises the
//! reviews each one causes in one audited transaction. Every disclosure
//! under the ground was committed before the change that ended it (a
//! disclosure decided on the ground and committed after it is refused as
//! stale), so the ledger before that change holds them all. A review is
//! raised once: the same one raised by another process first is refused,
//! and this one goes on.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::paging::time_key;
use super::{Audited, Call, OwnWork, Page, PageRequest, ServiceError, Services};
use crate::domain::agreement::AgreementStatus;
use crate::domain::consent::ConsentId;
use crate::domain::event::{Event, EventKind, EventPosition};
use crate::domain::review::{
    Received, Review, ReviewAcknowledgement, ReviewCause, ReviewId, ReviewOutcome,
};
use crate::domain::{
    AgencyCode, Alert, AlertId, AlertKind, RecordId, Role, Violations, check_text,
};
use crate::ledger::{Entry, EntryDraft, EntryFilter};
use crate::store::{After, StoreError, Write};

/// Where the fan-out goes on from: the position of the last event whose
/// reviews were raised (`entry/ord`).
const FANOUT_AFTER: &str = "reviews.fanout_after";

/// How many events one pass looks at.
const EVENTS_PER_PASS: u32 = 500;

/// How many ledger entries are read at a time when looking for the
/// disclosures under a ground.
const ENTRIES_PER_READ: u32 = 1000;

/// The action recorded for the fan-out's entries.
pub const FANOUT_ACTION: &str = "accord:raise-reviews";

/// The action recorded for the entries of overdue reviews' alerts.
pub const OVERDUE_ACTION: &str = "accord:alert-overdue-review";

fn position_text(p: EventPosition) -> String {
    format!("{}/{}", p.entry, p.ord)
}

fn position_of(text: &str) -> Option<EventPosition> {
    let (entry, ord) = text.split_once('/')?;
    Some(EventPosition {
        entry: entry.parse().ok()?,
        ord: ord.parse().ok()?,
    })
}

/// What a change ended, and how the disclosures under it are found.
struct Ended {
    cause: ReviewCause,
    ground: String,
    filter: EntryFilter,
}

/// What the change of `event` ended, if anything.
fn ended(event: &Event) -> Option<Ended> {
    let resource = event.resource.clone();
    let disclosed = |key: String| EntryFilter {
        disclosed: Some(key),
        ..EntryFilter::default()
    };
    let about_subject = || EntryFilter {
        subject: event.subject.as_ref().map(|s| s.resource_name()),
        ..EntryFilter::default()
    };
    let (cause, ground, filter) = match event.kind {
        EventKind::ConsentWithdrawn => (
            ReviewCause::ConsentWithdrawn,
            resource.clone(),
            disclosed(resource),
        ),
        EventKind::AgreementSuspended | EventKind::AgreementExpired => {
            let ground = format!("{resource}@{}", event.version);
            let cause = match event.kind {
                EventKind::AgreementSuspended => ReviewCause::AgreementSuspended,
                _ => ReviewCause::AgreementExpired,
            };
            (cause, ground.clone(), disclosed(ground))
        }
        EventKind::RecordSealed if resource.starts_with("records/") => (
            ReviewCause::RecordSealed,
            resource.clone(),
            disclosed(resource),
        ),
        EventKind::RecordSealed => (ReviewCause::RecordSealed, resource, about_subject()),
        EventKind::RecordUpdated => (
            ReviewCause::RecordCorrected,
            resource.clone(),
            disclosed(resource),
        ),
        EventKind::ObjectionRecorded => (ReviewCause::ObjectionRecorded, resource, about_subject()),
        _ => return None,
    };
    if filter.subject.is_none() && filter.disclosed.is_none() {
        return None;
    }
    Some(Ended {
        cause,
        ground,
        filter,
    })
}

/// The records of `entry` a review of `ground` is about: those of the
/// record itself when the ground is a record, else every record disclosed.
fn records_under(entry: &Entry, ground: &str) -> Vec<String> {
    let of_ground = |r: &&String| match ground.strip_prefix("records/") {
        Some(_) => r.split_once('@').is_some_and(|(name, _)| name == ground),
        None => r.starts_with("records/"),
    };
    entry
        .draft
        .records
        .iter()
        .filter(of_ground)
        .cloned()
        .collect()
}

impl Services {
    /// A receiver of wake-ups when events may have been committed (see
    /// [`crate::store::Store::changes`]).
    pub fn event_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.changes()
    }

    /// Raises the reviews the events committed since the last pass cause;
    /// returns how many this process raised.
    pub async fn raise_reviews(&self) -> Result<usize, ServiceError> {
        let after = self
            .store
            .meta(FANOUT_AFTER)
            .await?
            .and_then(|p| position_of(&p))
            .unwrap_or(EventPosition::START);
        let mut raised = 0;
        for event in self.store.events(after, EVENTS_PER_PASS).await? {
            let Some(ended) = ended(&event) else {
                continue;
            };
            let reviews = self.reviews_of(&event, &ended).await?;
            if reviews.is_empty() {
                continue;
            }
            let count = reviews.len();
            let draft = self.fanout_entry(&event, &ended, &reviews);
            let mut writes: Vec<Write> = reviews.into_iter().map(Write::InsertReview).collect();
            writes.push(Write::SetMeta {
                key: FANOUT_AFTER.to_owned(),
                value: position_text(event.position),
            });
            match self.store.commit(writes, draft).await {
                Ok(_) => raised += count,
                // Another process raised them first.
                Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(raised)
    }

    /// The fan-out's entry for the reviews `event` caused.
    fn fanout_entry(&self, event: &Event, ended: &Ended, reviews: &[Review]) -> EntryDraft {
        let recipients: std::collections::BTreeSet<&str> =
            reviews.iter().map(|r| r.recipient.as_str()).collect();
        OwnWork {
            action: FANOUT_ACTION,
            subject: event
                .subject
                .as_ref()
                .map(|s| s.resource_name())
                .unwrap_or_default(),
            records: reviews.iter().map(|r| r.id.resource_name()).collect(),
            controller: event.controller.as_str().to_owned(),
            reason: format!(
                "{} ended ({}): asked {} to review what they received under it",
                ended.ground,
                ended.cause.code(),
                recipients.into_iter().collect::<Vec<_>>().join(", ")
            ),
        }
        .entry(self.now())
    }

    /// One review for each agency (and controller of the data) that
    /// received data under what `event` ended, listing what it received.
    async fn reviews_of(&self, event: &Event, ended: &Ended) -> Result<Vec<Review>, ServiceError> {
        let mut by_party: BTreeMap<(String, String), Vec<Received>> = BTreeMap::new();
        let mut after = After::Start;
        'read: loop {
            let entries = self
                .store
                .entries(&ended.filter, after.clone(), ENTRIES_PER_READ)
                .await?;
            let done = entries.len() < ENTRIES_PER_READ as usize;
            for entry in entries {
                after = After::Key(entry.index);
                if entry.index >= event.position.entry {
                    break 'read;
                }
                if !self.ended_for(event, ended, &entry).await? {
                    continue;
                }
                let d = &entry.draft;
                by_party
                    .entry((d.agency.clone(), d.controller.clone()))
                    .or_default()
                    .push(Received {
                        entry_index: entry.index,
                        time: d.time,
                        principal: d.principal.clone(),
                        purpose: d.purpose.map(|p| p.code().to_owned()).unwrap_or_default(),
                        records: records_under(&entry, &ended.ground),
                        fields: d.fields.clone(),
                    });
            }
            if done {
                break;
            }
        }
        let raise_time = self.now();
        Ok(by_party
            .into_iter()
            .filter_map(|((recipient, controller), received)| {
                Some(Review {
                    id: ReviewId::generate(),
                    recipient: AgencyCode::parse(&recipient).ok()?,
                    controller: AgencyCode::parse(&controller).ok()?,
                    subject: event.subject.clone(),
                    cause: ended.cause,
                    ground: ended.ground.clone(),
                    caused_by: event.position,
                    received,
                    raise_time,
                    acknowledgement: None,
                    overdue_alerted: false,
                })
            })
            .collect())
    }

    /// Whether `entry`, found for `ended`, disclosed data under the ground
    /// that ended.
    async fn ended_for(
        &self,
        event: &Event,
        ended: &Ended,
        entry: &Entry,
    ) -> Result<bool, ServiceError> {
        let d = &entry.draft;
        if entry.disclosure_keys().is_empty() {
            return Ok(false);
        }
        Ok(match ended.cause {
            ReviewCause::ConsentWithdrawn
            | ReviewCause::AgreementSuspended
            | ReviewCause::AgreementExpired
            | ReviewCause::RecordCorrected => true,
            ReviewCause::RecordSealed => {
                // All of an agency's records about the subject: those it
                // controls. Agreements that cover sealed records still
                // stand.
                d.controller == event.controller.as_str()
                    && !self.covers_sealed(&d.grounds.agreements).await?
            }
            ReviewCause::ObjectionRecorded => {
                // An objection ends what rested on consent, within its
                // scope.
                let Ok(id) = ConsentId::parse_name(&event.resource) else {
                    return Ok(false);
                };
                let Some(objection) = self.store.consent(&id).await? else {
                    return Ok(false);
                };
                let (Some(purpose), Ok(recipient)) = (d.purpose, AgencyCode::parse(&d.agency))
                else {
                    return Ok(false);
                };
                if d.grounds.consent.is_empty() {
                    return Ok(false);
                }
                let mut covered = false;
                for name in records_under(entry, "") {
                    let record = match name.split_once('@').map(|(n, _)| n) {
                        Some(n) => RecordId::parse_name(n).ok(),
                        None => None,
                    };
                    if let Some(id) = record
                        && let Some(r) = self.store.record(&id, None).await?
                        && objection.scope.covers(purpose, &r.record_class, &recipient)
                    {
                        covered = true;
                        break;
                    }
                }
                covered
            }
        })
    }

    /// Whether any of `agreements` (`agreements/{id}@{version}`) covers
    /// sealed records.
    async fn covers_sealed(&self, agreements: &[String]) -> Result<bool, ServiceError> {
        for name in agreements {
            let Some((id, version)) = name.split_once('@') else {
                continue;
            };
            let (Ok(id), Ok(version)) = (
                crate::domain::agreement::AgreementId::parse_name(id),
                version.parse::<i64>(),
            ) else {
                continue;
            };
            if let Some(a) = self.store.agreement(&id, Some(version)).await?
                && a.terms.covers_sealed
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The roles that read reviews.
const REVIEW_READERS: [&str; 2] = [Role::IG_LEAD, Role::AUDITOR];

impl Services {
    /// A review the caller's agency may see: asked of it, or about data it
    /// controls; any other is not found alike.
    async fn visible_review(&self, call: &Call, id: &ReviewId) -> Result<Review, ServiceError> {
        call.note_records(vec![id.resource_name()]);
        let review = self
            .store
            .review(id)
            .await?
            .filter(|r| r.recipient == call.caller.agency || r.controller == call.caller.agency)
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        call.note_subject(
            review
                .subject
                .as_ref()
                .map(|s| s.resource_name())
                .unwrap_or_default(),
        );
        call.note_controller(review.controller.as_str().to_owned());
        Ok(review)
    }

    /// Reads a review (IG lead or auditor).
    pub async fn get_review(
        &self,
        call: &Call,
        id: &ReviewId,
    ) -> Result<Audited<Review>, ServiceError> {
        call.require_any_role(&REVIEW_READERS)?;
        let review = self.visible_review(call, id).await?;
        self.commit(call, vec![], review).await
    }

    /// The reviews asked of the caller's agency, oldest first (IG lead or
    /// auditor).
    pub async fn list_reviews(
        &self,
        call: &Call,
        unacknowledged_only: bool,
        req: &PageRequest,
    ) -> Result<Audited<Page<Review>>, ServiceError> {
        call.require_any_role(&REVIEW_READERS)?;
        let listing = format!("ListReviews\nunacknowledged_only={unacknowledged_only}");
        let paging = self.tokens.paging(call, &listing, req)?;
        let items = self
            .store
            .reviews_of(
                &call.caller.agency,
                unacknowledged_only,
                paging.after_time()?,
                paging.size() + 1,
            )
            .await?;
        let page = paging.page(items, |r| time_key(r.raise_time, r.id.as_str()));
        call.note_records(page.items.iter().map(|r| r.id.resource_name()).collect());
        self.commit(call, vec![], page).await
    }

    /// Answers a review asked of the caller's agency, once (IG lead).
    pub async fn acknowledge_review(
        &self,
        call: &Call,
        id: &ReviewId,
        outcome: ReviewOutcome,
        note: String,
    ) -> Result<Audited<Review>, ServiceError> {
        call.require_role(Role::IG_LEAD)?;
        if let Err(e) = check_text(&note, 1, 1000) {
            return Err(Violations::one("note", e).into());
        }
        let review = self.visible_review(call, id).await?;
        if review.recipient != call.caller.agency {
            return Err(ServiceError::NotFound(id.resource_name()));
        }
        call.note_fields(vec!["acknowledgement".to_owned()]);
        if let Some(a) = &review.acknowledgement {
            return Err(ServiceError::Precondition {
                code: "REVIEW_ALREADY_ACKNOWLEDGED",
                message: format!(
                    "{} was already acknowledged by {} on {}",
                    id.resource_name(),
                    a.principal,
                    a.time.format("%Y-%m-%d")
                ),
            });
        }
        let acknowledgement = ReviewAcknowledgement {
            principal: call.caller.principal.as_str().to_owned(),
            time: call.time,
            outcome,
            note: note.trim().to_owned(),
        };
        let write = Write::AcknowledgeReview {
            id: id.clone(),
            acknowledgement: acknowledgement.clone(),
        };
        self.commit(
            call,
            vec![write],
            Review {
                acknowledgement: Some(acknowledgement),
                ..review
            },
        )
        .await
    }

    /// Raises an alert to the IG leads of both sides of every review left
    /// unacknowledged for longer than `after`, once each; returns how many
    /// reviews were alerted.
    pub async fn alert_overdue_reviews(&self, after: TimeDelta) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut alerted = 0;
        for review in self.store.overdue_reviews(now - after, 100).await? {
            let subject = review
                .subject
                .as_ref()
                .map(|s| s.resource_name())
                .unwrap_or_default();
            let summary = format!(
                "{} asked {} on {} to review what it received under {} ({}); it has not acknowledged it",
                review.id.resource_name(),
                review.recipient.resource_name(),
                review.raise_time.format("%Y-%m-%d"),
                review.ground,
                review.cause.code(),
            );
            let mut recipients = vec![review.recipient.clone()];
            if review.controller != review.recipient {
                recipients.push(review.controller.clone());
            }
            let mut writes: Vec<Write> = recipients
                .into_iter()
                .map(|recipient| {
                    Write::RaiseAlert(Alert {
                        id: AlertId::generate(),
                        kind: AlertKind::ReviewOverdue,
                        recipient,
                        agency: review.recipient.as_str().to_owned(),
                        principal: String::new(),
                        subject: subject.clone(),
                        summary: summary.clone(),
                        entry_index: 0,
                        raise_time: now,
                        acknowledgement: None,
                    })
                })
                .collect();
            writes.push(Write::MarkReviewOverdue(review.id.clone()));
            let draft = OwnWork {
                action: OVERDUE_ACTION,
                records: vec![review.id.resource_name()],
                controller: review.controller.as_str().to_owned(),
                subject,
                reason: summary,
            }
            .entry(now);
            match self.store.commit(writes, draft).await {
                Ok(_) => alerted += 1,
                // Another process alerted it first.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(alerted)
    }
}

/// The action recorded for the entries noting an agreement's expiry.
pub const EXPIRY_ACTION: &str = "accord:note-agreement-expired";

impl Services {
    /// Notes, once, every active or suspended agreement version whose
    /// period has ended (writing its `agreement_expired` event); returns
    /// how many this process noted.
    pub async fn note_expired_agreements(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let noted: std::collections::HashSet<(String, i64)> = self
            .store
            .noted_expiries()
            .await?
            .into_iter()
            .map(|(id, v)| (id.as_str().to_owned(), v))
            .collect();
        let mut count = 0;
        for agreement in self.store.live_agreements().await? {
            let ended = matches!(
                agreement.status,
                AgreementStatus::Active | AgreementStatus::Suspended
            ) && agreement.status_at(now) == AgreementStatus::Expired;
            if !ended || noted.contains(&(agreement.id.as_str().to_owned(), agreement.version)) {
                continue;
            }
            let draft = OwnWork {
                action: EXPIRY_ACTION,
                subject: String::new(),
                records: vec![agreement.version_name()],
                controller: agreement.terms.provider.as_str().to_owned(),
                reason: format!(
                    "its period ended on {}",
                    agreement.terms.valid_until.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            }
            .entry(now);
            match self
                .store
                .commit(vec![Write::NoteAgreementExpired(agreement)], draft)
                .await
            {
                Ok(_) => count += 1,
                // Another process noted it first.
                Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(count)
    }
}
