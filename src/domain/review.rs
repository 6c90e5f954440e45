//! Reviews: when the ground on which an agency received a subject's data
//! ends — consent withdrawn, an objection recorded, an agreement suspended,
//! a record sealed or corrected — the agency is asked to review what it
//! holds, told exactly what it received (from the ledger), and says what
//! it did.

use chrono::{DateTime, Utc};

use super::agency::storage_codes;
use super::event::EventPosition;
use super::{AgencyCode, Purpose, SubjectId};

super::uuid_resource_id!(
    /// An opaque review identifier assigned by Accord (a UUID).
    ReviewId,
    "reviews"
);

/// What ended the ground of the disclosures under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewCause {
    /// The consent the disclosures relied on was withdrawn.
    ConsentWithdrawn,
    /// The subject objected to sharing the disclosures relied on consent
    /// for.
    ObjectionRecorded,
    /// The agreement the disclosures were made under was suspended.
    AgreementSuspended,
    /// The period of the agreement the disclosures were made under ended.
    AgreementExpired,
    /// The record disclosed was sealed by its controller.
    RecordSealed,
    /// The record disclosed has a newer version: what was received may be
    /// wrong.
    RecordCorrected,
}

storage_codes!(ReviewCause {
    ConsentWithdrawn => "consent_withdrawn",
    ObjectionRecorded => "objection_recorded",
    AgreementSuspended => "agreement_suspended",
    AgreementExpired => "agreement_expired",
    RecordSealed => "record_sealed",
    RecordCorrected => "record_corrected",
});

/// One disclosure under review, as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Received {
    /// The ledger index of the disclosure's entry.
    pub entry_index: i64,
    pub time: DateTime<Utc>,
    /// The staff member who received it.
    pub principal: String,
    /// The purpose they declared, as stored (`direct_care`, …).
    pub purpose: String,
    /// The records and versions disclosed (`records/{id}@{version}`).
    pub records: Vec<String>,
    /// The fields disclosed.
    pub fields: Vec<String>,
}

impl Received {
    /// The purpose declared, if it is one Accord knows.
    pub fn purpose(&self) -> Option<Purpose> {
        Purpose::from_code(&self.purpose)
    }
}

/// What the recipient did with what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Deleted what it received.
    Deleted,
    /// Kept it, with a lawful basis of its own (named in the note).
    RetainedWithLawfulBasis,
    /// Brought it up to date (for a correction).
    Updated,
    /// It no longer held any of it.
    NotHeld,
}

storage_codes!(ReviewOutcome {
    Deleted => "deleted",
    RetainedWithLawfulBasis => "retained_with_lawful_basis",
    Updated => "updated",
    NotHeld => "not_held",
});

/// The recipient's acknowledgement of a review: what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewAcknowledgement {
    pub principal: String,
    pub time: DateTime<Utc>,
    pub outcome: ReviewOutcome,
    pub note: String,
}

/// A request to one agency to review what it received under a ground that
/// has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: ReviewId,
    /// The agency asked to review.
    pub recipient: AgencyCode,
    /// The agency whose data it received.
    pub controller: AgencyCode,
    pub subject: Option<SubjectId>,
    pub cause: ReviewCause,
    /// The ground that ended: `consents/{id}`, `agreements/{id}@{version}`
    /// or `records/{id}`.
    pub ground: String,
    /// The event of the change that ended it.
    pub caused_by: EventPosition,
    /// What the recipient received under it, oldest first.
    pub received: Vec<Received>,
    pub raise_time: DateTime<Utc>,
    /// When the recipient acknowledged it, and what it did.
    pub acknowledgement: Option<ReviewAcknowledgement>,
    /// Whether its lateness has been alerted to both IG leads.
    pub overdue_alerted: bool,
}
