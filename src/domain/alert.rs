//! Alerts for an agency's information-governance lead: things in the
//! ledger that a person should look at.

use chrono::{DateTime, Utc};

use super::AgencyCode;
use super::agency::storage_codes;

super::uuid_resource_id!(
    /// An opaque alert identifier assigned by Accord (a UUID).
    AlertId,
    "alerts"
);

/// Why an alert was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A staff member was refused repeatedly within a short time: a
    /// misconfigured system, or someone probing for data.
    RepeatedRefusals,
    /// Another agency's staff member used emergency ("break the glass")
    /// access to the recipient's data.
    BreakGlass,
    /// Calls were refused repeatedly before any agency could be
    /// established (raised to the operator, for its security auditors).
    UnattributedRefusals,
    /// A review asked of an agency went unanswered for longer than the
    /// configured period (raised to both sides' IG leads).
    ReviewOverdue,
}

storage_codes!(AlertKind {
    RepeatedRefusals => "repeated_refusals",
    BreakGlass => "break_glass",
    UnattributedRefusals => "unattributed_refusals",
    ReviewOverdue => "review_overdue",
});

/// Who looked at an alert, when, and what they concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub principal: String,
    pub time: DateTime<Utc>,
    pub note: String,
}

/// An alert raised to one agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: AlertId,
    pub kind: AlertKind,
    /// The agency whose IG lead should look at it.
    pub recipient: AgencyCode,
    /// The agency code of the staff member concerned.
    pub agency: String,
    /// The staff member concerned.
    pub principal: String,
    /// The subject concerned (`subjects/{id}`), if any.
    pub subject: String,
    /// What happened, in a sentence.
    pub summary: String,
    /// The ledger entry of the call that raised it.
    pub entry_index: i64,
    pub raise_time: DateTime<Utc>,
    pub acknowledgement: Option<Acknowledgement>,
}
