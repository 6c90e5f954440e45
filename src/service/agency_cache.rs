//! The status of each registered agency, held in memory for admitting
//! callers. A call admitted on it relies on its agency being active
//! ([`Expect::AgencyActive`](crate::store::Expect)), which the write path
//! checks when the call's entry commits; a suspension committed by any
//! process therefore applies to every call that commits after it.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::{AgencyCode, AgencyStatus};

/// Agencies' statuses as last read.
#[derive(Debug, Default)]
pub struct AgencyCache {
    statuses: RwLock<HashMap<AgencyCode, AgencyStatus>>,
}

impl AgencyCache {
    /// The status of `code` as last read, if it was registered then.
    pub fn get(&self, code: &AgencyCode) -> Option<AgencyStatus> {
        self.statuses
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(code)
            .copied()
    }

    /// Remembers what was just read of `code` (`None`: not registered).
    pub fn put(&self, code: &AgencyCode, status: Option<AgencyStatus>) {
        let mut statuses = self
            .statuses
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match status {
            Some(s) => statuses.insert(code.clone(), s),
            None => statuses.remove(code),
        };
    }
}
