//! A subject's consent to, or objection against, sharing: scoped to
//! purposes, record classes and recipient agencies, valid for a period,
//! withdrawable (and kept, as history, once withdrawn).

use chrono::{DateTime, Utc};

use super::agency::storage_codes;
use super::{AgencyCode, Purpose, RecordClassId, SubjectId};

super::uuid_resource_id!(
    /// An opaque consent identifier assigned by Accord (a UUID).
    ConsentId,
    "consents"
);

/// Consent or its opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    /// The subject agrees to the sharing in scope.
    Consent,
    /// The subject objects to it (dissent); an objection beats any consent.
    Objection,
}

storage_codes!(ConsentKind {
    Consent => "consent",
    Objection => "objection",
});

/// How the subject's decision reached the agency that recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    FaceToFace,
    Telephone,
    Web,
    Post,
    Email,
}

storage_codes!(Channel {
    FaceToFace => "face_to_face",
    Telephone => "telephone",
    Web => "web",
    Post => "post",
    Email => "email",
});

/// What a consent covers. An empty list means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentScope {
    pub purposes: Vec<Purpose>,
    pub record_classes: Vec<RecordClassId>,
    pub recipients: Vec<AgencyCode>,
}

impl ConsentScope {
    /// Whether the scope covers reading `class` records for `purpose` by
    /// `recipient`.
    pub fn covers(&self, purpose: Purpose, class: &RecordClassId, recipient: &AgencyCode) -> bool {
        fn any_or<T: PartialEq>(list: &[T], item: &T) -> bool {
            list.is_empty() || list.contains(item)
        }
        any_or(&self.purposes, &purpose)
            && any_or(&self.record_classes, class)
            && any_or(&self.recipients, recipient)
    }
}

/// Who withdrew a consent, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    pub agency: AgencyCode,
    pub principal: String,
    pub time: DateTime<Utc>,
    pub reason: String,
}

/// A recorded consent or objection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: ConsentId,
    pub subject: SubjectId,
    pub kind: ConsentKind,
    pub scope: ConsentScope,
    pub channel: Channel,
    pub valid_from: DateTime<Utc>,
    /// `None`: until withdrawn.
    pub valid_until: Option<DateTime<Utc>>,
    pub note: String,
    pub recorded_by: AgencyCode,
    pub recorded_principal: String,
    pub record_time: DateTime<Utc>,
    pub withdrawal: Option<Withdrawal>,
}

/// Where a consent stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// Not yet valid.
    Pending,
    /// In effect.
    Effective,
    /// Its validity ended.
    Lapsed,
    /// Withdrawn.
    Withdrawn,
}

impl Consent {
    /// Its state at `now`. A withdrawal takes effect at once and for every
    /// decision made once it is recorded, whatever that call's own time: a
    /// call that began just before the withdrawal (or in a process whose
    /// clock is behind) but is decided or committed after it is not
    /// permitted on it.
    pub fn state_at(&self, now: DateTime<Utc>) -> ConsentState {
        if self.withdrawal.is_some() {
            ConsentState::Withdrawn
        } else if now < self.valid_from {
            ConsentState::Pending
        } else if self.valid_until.is_some_and(|end| now >= end) {
            ConsentState::Lapsed
        } else {
            ConsentState::Effective
        }
    }
}
