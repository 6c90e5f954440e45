//! The agreements, compiled for decisions and kept in memory.
//!
//! Every change to an agreement advances a counter in the same transaction
//! (`policy_state`). Before each decision the counter is read (one small
//! query, no rule evaluated in the database); if it moved, by a change made
//! through this process or any other on the same database, the agreements
//! are loaded and compiled again before the decision is made. A suspension
//! therefore takes effect on the very next request, in every process.

use std::sync::{Arc, RwLock};

use super::ServiceError;
use crate::policy::{Agreements, PolicyError};
use crate::store::Store;

#[derive(Debug)]
struct Compiled {
    /// The counter value the agreements are at least as new as.
    version: i64,
    agreements: Arc<Agreements>,
}

/// The compiled agreements of one process.
#[derive(Debug)]
pub struct PolicyCache {
    current: RwLock<Arc<Compiled>>,
    /// Held while reloading, so that concurrent decisions reload once.
    reload: tokio::sync::Mutex<()>,
}

impl Default for PolicyCache {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(Compiled {
                version: -1,
                agreements: Arc::new(Agreements::none()),
            })),
            reload: tokio::sync::Mutex::new(()),
        }
    }
}

impl PolicyCache {
    fn at_least(&self, version: i64) -> Option<Arc<Agreements>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (current.version >= version).then(|| Arc::clone(&current.agreements))
    }

    /// The agreements as they stand in `store` now.
    pub async fn agreements(&self, store: &dyn Store) -> Result<Arc<Agreements>, ServiceError> {
        let version = store.policy_versions().await?.agreements;
        if let Some(fresh) = self.at_least(version) {
            return Ok(fresh);
        }
        let _reloading = self.reload.lock().await;
        if let Some(fresh) = self.at_least(version) {
            return Ok(fresh);
        }
        // Loaded after the counter was read, so at least as new as it.
        let loaded = store.live_agreements().await?;
        let agreements = Arc::new(
            Agreements::new(loaded).map_err(|e| ServiceError::Policy(PolicyError::from(e)))?,
        );
        tracing::debug!(version, agreements = agreements.len(), "policies compiled");
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Compiled {
            version,
            agreements: Arc::clone(&agreements),
        });
        Ok(agreements)
    }
}
