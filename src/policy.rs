//! Access decisions, as pure functions of the caller and what is asked for.
//!
//! The rule today: an agency reads and writes only the records it controls.
//! Sharing agreements and consent extend this later without changing its
//! callers: a decision is either a permit with the fields that may leave, or
//! a denial with a stable reason code and a sentence.

use crate::domain::{Caller, Record};

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable machine-readable reason, e.g. `NOT_CONTROLLER`.
    pub code: &'static str,
    /// A sentence a person can read.
    pub message: String,
}

/// What may be disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// The names of the fields that may leave the service.
    pub fields: Vec<String>,
}

/// Decides whether `caller` may read `record`.
pub fn decide_read(caller: &Caller, record: &Record) -> Result<Permit, Denial> {
    if caller.agency == record.controller {
        Ok(Permit {
            fields: record.field_names(),
        })
    } else {
        Err(Denial {
            code: "NOT_CONTROLLER",
            message: format!(
                "record {} is controlled by agency {}; agency {} has no access to it",
                record.id.resource_name(),
                record.controller,
                caller.agency
            ),
        })
    }
}

/// Decides whether `caller` may change `record`: only its controller may.
pub fn decide_write(caller: &Caller, record: &Record) -> Result<(), Denial> {
    if caller.agency == record.controller {
        Ok(())
    } else {
        Err(Denial {
            code: "NOT_CONTROLLER",
            message: format!(
                "only the controlling agency {} may change record {}",
                record.controller,
                record.id.resource_name()
            ),
        })
    }
}
