//! A small bounded cache of verification results, each valid until its own
//! deadline: what spares a busy connection from re-verifying the same
//! certificate chain and the same staff token on every call.
//!
//! Only successes are cached, under a key that is a SHA-256 digest of
//! everything the result depends on (the exact certificate chain; the exact
//! token and the issuer's keys), so a cached result can never stand for
//! different input. When full, it is emptied: a bound, not a policy.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// How many results a cache holds at most.
const CAPACITY: usize = 10_000;

/// A result and the instant it stops being valid.
type Until<V> = (V, DateTime<Utc>);

/// Verified results by digest, each with the instant it stops being valid.
#[derive(Debug)]
pub struct Verified<V> {
    entries: Mutex<HashMap<[u8; 32], Until<V>>>,
}

impl<V> Default for Verified<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Verified<V> {
    /// The result under `key`, if it is still valid at `now`.
    pub fn get(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((value, until)) if now < *until => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` under `key` until `until`.
    pub fn insert(&self, key: [u8; 32], value: V, until: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (value, until));
    }
}

/// The SHA-256 digest of `parts`, each preceded by its length.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in parts {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_last_until_their_deadline() {
        let cache = Verified::default();
        let now = Utc::now();
        let key = digest([b"chain".as_slice()]);
        cache.insert(key, 7, now + chrono::TimeDelta::seconds(10));
        assert_eq!(cache.get(&key, now), Some(7));
        assert_eq!(cache.get(&key, now + chrono::TimeDelta::seconds(10)), None);
        // Gone once expired, even if time were to go back.
        assert_eq!(cache.get(&key, now), None);
        assert_ne!(
            digest([b"ab".as_slice(), b"c"]),
            digest([b"a".as_slice(), b"bc"])
        );
    }
}
