//! Events and subscriptions across the proto boundary.

use super::enums::{self, EnumError};
use super::{by_name, page_request, purpose_at, purpose_out, subject_name, timestamp};
use crate::api::pb;
use crate::domain::event::{Cohort, EventKind, MAX_LISTED_SUBJECTS, Subscription, SubscriptionId};
use crate::domain::review::{Review, ReviewCause, ReviewId, ReviewOutcome};
use crate::domain::{RecordClassId, Role, Violations};
use crate::service::{Delivered, EventRequest, NewSubscription, PageRequest};

fn kind(value: i32) -> Result<EventKind, EnumError> {
    let name = enums::required::<pb::EventKind>(value)?.as_str_name();
    by_name(Some(name), "EVENT_KIND_", EventKind::from_code).ok_or(EnumError::Unsupported(name))
}

/// The proto value of an event kind.
pub fn event_kind_out(k: EventKind) -> pb::EventKind {
    match k {
        EventKind::RecordCreated => pb::EventKind::RecordCreated,
        EventKind::RecordUpdated => pb::EventKind::RecordUpdated,
        EventKind::RecordSealed => pb::EventKind::RecordSealed,
        EventKind::RecordUnsealed => pb::EventKind::RecordUnsealed,
        EventKind::IdentifierLinked => pb::EventKind::IdentifierLinked,
        EventKind::IdentifierUnlinked => pb::EventKind::IdentifierUnlinked,
        EventKind::ConsentRecorded => pb::EventKind::ConsentRecorded,
        EventKind::ConsentWithdrawn => pb::EventKind::ConsentWithdrawn,
        EventKind::ObjectionRecorded => pb::EventKind::ObjectionRecorded,
        EventKind::ObjectionWithdrawn => pb::EventKind::ObjectionWithdrawn,
        EventKind::AgreementActivated => pb::EventKind::AgreementActivated,
        EventKind::AgreementSuspended => pb::EventKind::AgreementSuspended,
        EventKind::AgreementReinstated => pb::EventKind::AgreementReinstated,
        EventKind::ReviewRequired => pb::EventKind::ReviewRequired,
        EventKind::AgreementExpired => pb::EventKind::AgreementExpired,
        EventKind::SubjectMerged => pb::EventKind::SubjectMerged,
        EventKind::SubjectUnmerged => pb::EventKind::SubjectUnmerged,
    }
}

/// The subscription of a CreateSubscription request.
pub fn create_subscription(
    req: pb::CreateSubscriptionRequest,
) -> Result<NewSubscription, Violations> {
    let Some(s) = req.subscription else {
        return Err(Violations::one("subscription", "is required"));
    };
    let mut v = Violations::new();
    let mut kinds = Vec::with_capacity(s.kinds.len());
    for (i, k) in s.kinds.iter().enumerate() {
        let field = format!("subscription.kinds[{i}]");
        match v.check(&field, kind(*k)) {
            Some(k) if kinds.contains(&k) => v.add(field, "is listed twice"),
            Some(k) => kinds.push(k),
            None => {}
        }
    }
    let record_classes = s
        .record_classes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            v.check(
                &format!("subscription.record_classes[{i}]"),
                RecordClassId::parse_name(c),
            )
        })
        .collect();
    let purpose = purpose_at(s.purpose, "subscription.purpose", &mut v);
    let role = if s.role.is_empty() {
        v.add("subscription.role", "is required");
        None
    } else {
        v.check("subscription.role", Role::parse(&s.role))
    };
    let cohort = match v.check(
        "subscription.cohort",
        enums::required::<pb::SubscriptionCohort>(s.cohort),
    ) {
        Some(pb::SubscriptionCohort::All) => Some(Cohort::All),
        Some(pb::SubscriptionCohort::Held) => Some(Cohort::Held),
        Some(pb::SubscriptionCohort::Listed) => {
            if s.subjects.is_empty() || s.subjects.len() > MAX_LISTED_SUBJECTS {
                v.add(
                    "subscription.subjects",
                    format!("must list 1 to {MAX_LISTED_SUBJECTS} subjects for SUBSCRIPTION_COHORT_LISTED"),
                );
            }
            let mut subjects = Vec::with_capacity(s.subjects.len());
            for (i, name) in s.subjects.iter().enumerate() {
                let field = format!("subscription.subjects[{i}]");
                match subject_name(name, &field, &mut v) {
                    Some(id) if subjects.contains(&id) => v.add(field, "is listed twice"),
                    Some(id) => subjects.push(id),
                    None => {}
                }
            }
            Some(Cohort::Listed(subjects))
        }
        Some(pb::SubscriptionCohort::Unspecified) | None => None,
    };
    if !matches!(cohort, Some(Cohort::Listed(_)) | None) && !s.subjects.is_empty() {
        v.add(
            "subscription.subjects",
            "must be empty unless the cohort is SUBSCRIPTION_COHORT_LISTED",
        );
    }
    v.into_result(|| {
        Some(NewSubscription {
            kinds,
            record_classes,
            purpose: purpose?,
            role: role?,
            cohort: cohort?,
        })
    })
}

/// A subscription's name at `field` of a request.
pub fn subscription_name(field: &str, name: &str) -> Result<SubscriptionId, Violations> {
    SubscriptionId::parse_name(name).map_err(|e| Violations::one(field, e))
}

/// The page request of a ListSubscriptions request.
pub fn list_subscriptions(req: pb::ListSubscriptionsRequest) -> Result<PageRequest, Violations> {
    let mut v = Violations::new();
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some(page))
}

/// A subscription as the API shows it.
pub fn subscription_out(s: Subscription) -> pb::Subscription {
    let (cohort, subjects) = match s.cohort {
        Cohort::All => (pb::SubscriptionCohort::All, vec![]),
        Cohort::Held => (pb::SubscriptionCohort::Held, vec![]),
        Cohort::Listed(list) => (
            pb::SubscriptionCohort::Listed,
            list.iter().map(|id| id.resource_name()).collect(),
        ),
    };
    pb::Subscription {
        name: s.id.resource_name(),
        agency: s.agency.resource_name(),
        kinds: s
            .kinds
            .into_iter()
            .map(|k| event_kind_out(k) as i32)
            .collect(),
        record_classes: s
            .record_classes
            .iter()
            .map(RecordClassId::resource_name)
            .collect(),
        purpose: purpose_out(Some(s.purpose)) as i32,
        role: s.role.as_str().to_owned(),
        cohort: cohort as i32,
        subjects,
        created_by: s.created_by,
        create_time: Some(timestamp(s.create_time)),
    }
}

/// The input of a ListEvents request.
pub fn list_events(req: pb::ListEventsRequest) -> Result<EventRequest, Violations> {
    let mut v = Violations::new();
    let subscription = v.check(
        "subscription",
        SubscriptionId::parse_name(&req.subscription),
    );
    let size = match u32::try_from(req.page_size) {
        Ok(n) => Some(n),
        Err(_) => {
            v.add("page_size", "must not be negative");
            None
        }
    };
    v.into_result(|| {
        Some(EventRequest {
            subscription: subscription?,
            cursor: req.cursor,
            size: size?,
        })
    })
}

/// A delivered event as the API shows it.
pub fn event_out(d: Delivered) -> pb::Event {
    let e = d.event;
    pb::Event {
        cursor: d.cursor,
        kind: event_kind_out(e.kind) as i32,
        resource: e.resource,
        version: e.version,
        time: Some(timestamp(e.time)),
        controller: e.controller.resource_name(),
        subject: e.subject.map(|s| s.resource_name()).unwrap_or_default(),
        record_class: e
            .record_class
            .map(|c| c.resource_name())
            .unwrap_or_default(),
        agreements: d.agreements,
    }
}

fn review_cause_out(c: ReviewCause) -> pb::ReviewCause {
    match c {
        ReviewCause::ConsentWithdrawn => pb::ReviewCause::ConsentWithdrawn,
        ReviewCause::ObjectionRecorded => pb::ReviewCause::ObjectionRecorded,
        ReviewCause::AgreementSuspended => pb::ReviewCause::AgreementSuspended,
        ReviewCause::AgreementExpired => pb::ReviewCause::AgreementExpired,
        ReviewCause::RecordSealed => pb::ReviewCause::RecordSealed,
        ReviewCause::RecordCorrected => pb::ReviewCause::RecordCorrected,
    }
}

fn review_outcome_out(o: ReviewOutcome) -> pb::ReviewOutcome {
    match o {
        ReviewOutcome::Deleted => pb::ReviewOutcome::Deleted,
        ReviewOutcome::RetainedWithLawfulBasis => pb::ReviewOutcome::RetainedWithLawfulBasis,
        ReviewOutcome::Updated => pb::ReviewOutcome::Updated,
        ReviewOutcome::NotHeld => pb::ReviewOutcome::NotHeld,
    }
}

/// A review as the API shows it.
pub fn review_out(r: Review) -> pb::Review {
    let acknowledgement = r.acknowledgement;
    pb::Review {
        name: r.id.resource_name(),
        recipient: r.recipient.resource_name(),
        controller: r.controller.resource_name(),
        subject: r.subject.map(|s| s.resource_name()).unwrap_or_default(),
        cause: review_cause_out(r.cause) as i32,
        ground: r.ground,
        received: r
            .received
            .into_iter()
            .map(|d| pb::ReceivedData {
                entry_index: d.entry_index,
                time: Some(timestamp(d.time)),
                purpose: purpose_out(d.purpose()) as i32,
                principal: d.principal,
                records: d.records,
                fields: d.fields,
            })
            .collect(),
        raise_time: Some(timestamp(r.raise_time)),
        acknowledged: acknowledgement.is_some(),
        outcome: acknowledgement
            .as_ref()
            .map_or(pb::ReviewOutcome::Unspecified, |a| {
                review_outcome_out(a.outcome)
            }) as i32,
        acknowledged_by: acknowledgement
            .as_ref()
            .map(|a| a.principal.clone())
            .unwrap_or_default(),
        acknowledge_time: acknowledgement.as_ref().map(|a| timestamp(a.time)),
        acknowledgement_note: acknowledgement.map(|a| a.note).unwrap_or_default(),
    }
}

/// A review's name at `field` of a request.
pub fn review_name(field: &str, name: &str) -> Result<ReviewId, Violations> {
    ReviewId::parse_name(name).map_err(|e| Violations::one(field, e))
}

/// The input of a ListReviews request.
pub fn list_reviews(req: pb::ListReviewsRequest) -> Result<(bool, PageRequest), Violations> {
    let mut v = Violations::new();
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((req.unacknowledged_only, page)))
}

/// The input of an AcknowledgeReview request.
pub fn acknowledge_review(
    req: pb::AcknowledgeReviewRequest,
) -> Result<(ReviewId, ReviewOutcome, String), Violations> {
    let mut v = Violations::new();
    let id = v.check("name", ReviewId::parse_name(&req.name));
    let outcome = v
        .check("outcome", enums::required::<pb::ReviewOutcome>(req.outcome))
        .and_then(|o| {
            by_name(
                Some(o.as_str_name()),
                "REVIEW_OUTCOME_",
                ReviewOutcome::from_code,
            )
        });
    v.into_result(|| Some((id?, outcome?, req.note)))
}
