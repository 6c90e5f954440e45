//! Change notifications. An event says that a resource changed, how, and
//! who controls it; it carries none of the resource's content (reading that
//! is a call decided and audited like any other). Events are written in the
//! transaction of the change that causes them and ordered as the ledger is:
//! by the index of the entry committed with the change.

use chrono::{DateTime, Utc};

use super::agency::storage_codes;
use super::agreement::AgreementId;
use super::{AgencyCode, Purpose, RecordClassId, Role, SubjectId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    RecordCreated,
    RecordUpdated,
    /// A record, or all of an agency's records about a subject, sealed.
    RecordSealed,
    RecordUnsealed,
    IdentifierLinked,
    IdentifierUnlinked,
    ConsentRecorded,
    ConsentWithdrawn,
    ObjectionRecorded,
    ObjectionWithdrawn,
    AgreementActivated,
    AgreementSuspended,
    AgreementReinstated,
    /// The ground on which the recipient received data has ended: it is
    /// asked to review what it holds (resource `reviews/{id}`).
    ReviewRequired,
    /// An agreement version's period ended (noticed after the fact).
    AgreementExpired,
    /// A subject was merged into another (one event about each).
    SubjectMerged,
    /// A merge was undone (one event about each subject).
    SubjectUnmerged,
}

storage_codes!(EventKind {
    RecordCreated => "record_created",
    RecordUpdated => "record_updated",
    RecordSealed => "record_sealed",
    RecordUnsealed => "record_unsealed",
    IdentifierLinked => "identifier_linked",
    IdentifierUnlinked => "identifier_unlinked",
    ConsentRecorded => "consent_recorded",
    ConsentWithdrawn => "consent_withdrawn",
    ObjectionRecorded => "objection_recorded",
    ObjectionWithdrawn => "objection_withdrawn",
    AgreementActivated => "agreement_activated",
    AgreementSuspended => "agreement_suspended",
    AgreementReinstated => "agreement_reinstated",
    ReviewRequired => "review_required",
    AgreementExpired => "agreement_expired",
    SubjectMerged => "subject_merged",
    SubjectUnmerged => "subject_unmerged",
});

/// Where an event stands in the order of all events: the ledger index of
/// the entry committed with its change, then its place among that entry's
/// events. Positions only grow: entries are indexed in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub entry: i64,
    pub ord: i64,
}

impl EventPosition {
    /// Before every event.
    pub const START: Self = Self { entry: -1, ord: -1 };
}

/// A change to a resource, as a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub position: EventPosition,
    pub kind: EventKind,
    /// The resource that changed (`records/{id}`, `subjects/{id}`,
    /// `consents/{id}`, `agreements/{id}`).
    pub resource: String,
    /// The resource's version after the change; 0 for resources that have
    /// no versions.
    pub version: i64,
    pub time: DateTime<Utc>,
    /// The agency that controls the resource (for a seal or a link, the
    /// agency that made it; for a consent, the agency that recorded it).
    pub controller: AgencyCode,
    /// The subject the resource concerns, if any.
    pub subject: Option<SubjectId>,
    /// The record's class, for record events that name one record.
    pub record_class: Option<RecordClassId>,
    /// The agreement, for agreement events.
    pub agreement: Option<AgreementId>,
    /// The one agency the event is for, if it is addressed (a review).
    pub recipient: Option<AgencyCode>,
}

super::uuid_resource_id!(
    /// An opaque subscription identifier assigned by Accord (a UUID).
    SubscriptionId,
    "subscriptions"
);

/// Which subjects a subscription is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cohort {
    /// Every subject.
    All,
    /// The subjects the agency is tied to when an event is delivered (it
    /// registered them, linked an identifier to them, or controls a record
    /// about them).
    Held,
    /// These subjects.
    Listed(Vec<SubjectId>),
}

/// The most subjects a listed cohort may name.
pub const MAX_LISTED_SUBJECTS: usize = 1000;

/// An agency's subscription to events: the kinds and record classes it
/// wants (empty: all), for which subjects, and the purpose and role its
/// deliveries are decided for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub agency: AgencyCode,
    pub kinds: Vec<EventKind>,
    pub record_classes: Vec<RecordClassId>,
    pub purpose: Purpose,
    pub role: Role,
    pub cohort: Cohort,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    /// The ledger index of the entry that created it: its events are those
    /// of later entries (set when that entry commits).
    pub entry_index: i64,
}

impl SubscriptionId {
    /// The id of `agency`'s default subscription: fixed for the agency.
    pub fn default_for(agency: &AgencyCode) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("accord default subscription\n{agency}"));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string(),
        )
    }
}

impl Subscription {
    /// The subscription every agency has without asking for it, registered
    /// at `since`: the reviews addressed to it (and only those), for its
    /// IG lead, from the start. It cannot be deleted.
    pub fn default_for(agency: &AgencyCode, since: DateTime<Utc>) -> Self {
        Self {
            id: SubscriptionId::default_for(agency),
            agency: agency.clone(),
            kinds: vec![EventKind::ReviewRequired],
            record_classes: vec![],
            purpose: Purpose::Administration,
            role: Role::ig_lead(),
            cohort: Cohort::All,
            created_by: "accord".to_owned(),
            create_time: since,
            entry_index: -1,
        }
    }

    /// Whether this is its agency's default subscription.
    pub fn is_default(&self) -> bool {
        self.id == SubscriptionId::default_for(&self.agency)
    }

    /// The position its events start after.
    pub fn start(&self) -> EventPosition {
        EventPosition {
            entry: self.entry_index,
            ord: i64::MAX,
        }
    }
}
