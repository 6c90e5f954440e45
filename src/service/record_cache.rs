//! Records read recently, at their current version, held in memory so that
//! a read can be decided without a round trip. A call that decides on one
//! relies on it still being the current version, sealed or not as held
//! ([`Expect::Record`](crate::store::Expect)); the write path checks that
//! when the call's entry commits, so a record changed or sealed by any
//! process is never disclosed as it was.
//!
//! At most [`RecordCache::CAPACITY`] records are held; when it is full,
//! the whole cache is emptied and fills again from the reads that follow
//! (simple, and bounded in memory).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::{Record, RecordId};

/// Recently read current versions of records.
#[derive(Debug, Default)]
pub struct RecordCache {
    records: RwLock<HashMap<RecordId, Record>>,
}

impl RecordCache {
    /// The most records held.
    pub const CAPACITY: usize = 10_000;

    /// The current version of `id` as last read or written here.
    pub fn get(&self, id: &RecordId) -> Option<Record> {
        self.records
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Remembers `record` as its record's current version.
    pub fn put(&self, record: &Record) {
        let mut records = self
            .records
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() >= Self::CAPACITY && !records.contains_key(&record.id) {
            records.clear();
        }
        records.insert(record.id.clone(), record.clone());
    }

    /// Forgets `id` (it changed in a way the cache cannot follow).
    pub fn forget(&self, id: &RecordId) {
        self.records
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}
