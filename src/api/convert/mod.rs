//! The only boundary between generated proto types and domain types. Input
//! is checked here field by field; every problem is reported with its path
//! in the request. One file per service, as in `api/` and `proto/`; this
//! one holds what they share.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

mod agency;
mod agreement;
mod audit;
mod catalog;
mod consent;
mod enums;
mod event;
mod record;
mod subject;

pub use agency::*;
pub use agreement::*;
pub use audit::*;
pub use catalog::*;
pub use consent::*;
pub use event::*;
pub use record::*;
pub use subject::*;

use super::pb;
use crate::domain::{Purpose, Violations, check_text};

/// The proto timestamp of an instant.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The instant of a proto timestamp, if it is a valid one.
pub fn instant(t: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(t.nanos).ok()?;
    DateTime::from_timestamp(t.seconds, nanos)
}

/// The purpose of a request: required, never unspecified.
pub fn purpose(value: i32, v: &mut Violations) -> Option<Purpose> {
    purpose_at(value, "purpose", v)
}

/// A purpose at `field`: required, never unspecified.
fn purpose_at(value: i32, field: &str, v: &mut Violations) -> Option<Purpose> {
    Some(match v.check(field, enums::required(value))? {
        pb::Purpose::DirectCare => Purpose::DirectCare,
        pb::Purpose::Safeguarding => Purpose::Safeguarding,
        pb::Purpose::CrimePrevention => Purpose::CrimePrevention,
        pb::Purpose::Emergency => Purpose::Emergency,
        pb::Purpose::Administration => Purpose::Administration,
        pb::Purpose::Research => Purpose::Research,
        pb::Purpose::Unspecified => return None,
    })
}

fn purpose_out(p: Option<Purpose>) -> pb::Purpose {
    match p {
        None => pb::Purpose::Unspecified,
        Some(Purpose::DirectCare) => pb::Purpose::DirectCare,
        Some(Purpose::Safeguarding) => pb::Purpose::Safeguarding,
        Some(Purpose::CrimePrevention) => pb::Purpose::CrimePrevention,
        Some(Purpose::Emergency) => pb::Purpose::Emergency,
        Some(Purpose::Administration) => pb::Purpose::Administration,
        Some(Purpose::Research) => pb::Purpose::Research,
    }
}

/// The emergency reason of a read: `Some(None)` when none is given,
/// `Some(Some(reason))` for a valid one, `None` (with a violation) for an
/// invalid one. A reason needs PURPOSE_EMERGENCY, and PURPOSE_EMERGENCY
/// needs a reason.
fn break_glass(
    reason: &str,
    purpose: Option<Purpose>,
    v: &mut Violations,
) -> Option<Option<String>> {
    if reason.is_empty() {
        if purpose == Some(Purpose::Emergency) {
            v.add(
                "break_glass_reason",
                "is required with PURPOSE_EMERGENCY: say why emergency access is needed",
            );
            return None;
        }
        return Some(None);
    }
    if let Err(e) = check_text(reason, 1, 500) {
        v.add("break_glass_reason", e);
        return None;
    }
    if purpose.is_some_and(|p| p != Purpose::Emergency) {
        v.add(
            "break_glass_reason",
            "is only for emergency access: declare PURPOSE_EMERGENCY",
        );
        return None;
    }
    Some(Some(reason.trim().to_owned()))
}

/// The page request of a `List*` call.
pub fn page_request(
    page_size: i32,
    page_token: String,
    v: &mut Violations,
) -> crate::service::PageRequest {
    let size = u32::try_from(page_size).unwrap_or_else(|_| {
        v.add("page_size", "must not be negative");
        0
    });
    crate::service::PageRequest {
        size,
        token: page_token,
    }
}

/// The page request of a `List*` call that takes nothing else.
pub fn list_page(
    page_size: i32,
    page_token: String,
) -> Result<crate::service::PageRequest, Violations> {
    let mut v = Violations::new();
    let page = page_request(page_size, page_token, &mut v);
    v.into_result(|| Some(page))
}

/// The domain value named like a proto enum value: `{PREFIX}SOME_NAME` is
/// the value whose storage code is `some_name`.
fn by_name<T>(name: Option<&str>, prefix: &str, from_code: fn(&str) -> Option<T>) -> Option<T> {
    from_code(&name?.strip_prefix(prefix)?.to_ascii_lowercase())
}

fn require<T>(value: Option<T>, field: &str, v: &mut Violations) -> Option<T> {
    if value.is_none() {
        v.add(field, "is required");
    }
    value
}
