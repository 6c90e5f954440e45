//! Values at the storage boundary: times as microseconds, JSON columns,
//! stored codes read back, tree positions and hashes. Each failure to read a
//! stored value back is [`StoreError::Corrupt`].

use chrono::{DateTime, Utc};

use super::{After, StoreError};
use crate::domain::AgencyCode;
use crate::ledger::Hash;

/// The write path's connection, inside the transaction of the batch
/// being committed (begun and committed by the batch itself, see
/// [`super::write`]).
pub(super) type Tx = sqlx::AnyConnection;

/// A time as stored: microseconds since the Unix epoch.
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored time read back.
pub(super) fn time(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us}")))
}

/// A value stored as a JSON column.
pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A JSON column read back.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored code (status, outcome, kind) read back; `None` from its parser
/// means the row holds a value no version of Accord writes.
pub(super) fn code<T>(parsed: Option<T>, what: &str, value: &str) -> Result<T, StoreError> {
    parsed.ok_or_else(|| StoreError::Corrupt(format!("{what} {value:?}")))
}

/// A stored agency code read back.
pub(super) fn agency_code(value: &str) -> Result<AgencyCode, StoreError> {
    AgencyCode::parse(value).map_err(|e| StoreError::Corrupt(format!("agency code {value:?}: {e}")))
}

/// A stored SHA-256 hash read back.
pub(super) fn hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt("hash length".to_owned()))
}

/// A tree size or index as stored (SQL integers are signed).
pub(super) fn signed(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("tree position {n} is too large")))
}

/// A stored tree size or index read back.
pub(super) fn unsigned(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("tree position {n} is negative")))
}

/// A page size as a SQL `LIMIT`.
pub(super) fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// The text key after which a page in key order starts (empty: from the
/// start).
pub(super) fn text_after(after: After<String>) -> String {
    match after {
        After::Start => String::new(),
        After::Key(k) => k,
    }
}
