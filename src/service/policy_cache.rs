//! What decisions are made from, kept in memory: the agreements, compiled,
//! and every subject's consents.
//!
//! Every change to an agreement or a consent advances a counter in the same
//! transaction (`policy_state`). A decision is made on what is held, and
//! relies on the counters it is as new as
//! ([`Expect::Policy`](crate::store::Expect)); the write path checks them
//! when the call's entry commits. If they moved — through this process or
//! any other on the same database — the call is decided again after a
//! refresh: the counters are read, the agreements loaded and compiled again
//! if theirs moved, and the consents changed since loaded if theirs did. A
//! suspension or a withdrawal therefore applies to every call whose entry
//! commits after it, in every process (see `docs/decisions.md`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::ServiceError;
use crate::domain::SubjectId;
use crate::domain::consent::{Consent, ConsentId};
use crate::policy::{Agreements, PolicyError};
use crate::store::{PolicyVersions, Store};

#[derive(Debug)]
struct Compiled {
    /// The counter value the agreements are at least as new as.
    version: i64,
    agreements: Arc<Agreements>,
}

#[derive(Debug, Default)]
struct ConsentIndex {
    /// The counter value the index is at least as new as.
    version: i64,
    by_subject: HashMap<SubjectId, Arc<[Consent]>>,
    /// The subject each consent is held under.
    held_under: HashMap<ConsentId, SubjectId>,
}

impl ConsentIndex {
    fn merge(&mut self, changed: Vec<Consent>) {
        let mut grouped: HashMap<SubjectId, Vec<Consent>> = HashMap::new();
        for c in changed {
            // A consent whose subject changed (a merge, or its undoing)
            // leaves the list it was held in.
            if let Some(before) = self.held_under.insert(c.id.clone(), c.subject.clone())
                && before != c.subject
                && let Some(list) = self.by_subject.get(&before)
            {
                let kept: Vec<Consent> = list.iter().filter(|k| k.id != c.id).cloned().collect();
                self.by_subject.insert(before, kept.into());
            }
            grouped.entry(c.subject.clone()).or_default().push(c);
        }
        for (subject, changes) in grouped {
            let mut consents: Vec<Consent> = self
                .by_subject
                .get(&subject)
                .map(|c| c.to_vec())
                .unwrap_or_default();
            for change in changes {
                match consents.iter_mut().find(|c| c.id == change.id) {
                    Some(slot) => *slot = change,
                    None => consents.push(change),
                }
            }
            self.by_subject.insert(subject, consents.into());
        }
    }
}

/// The decision inputs of one process.
#[derive(Debug)]
pub struct PolicyCache {
    agreements: RwLock<Arc<Compiled>>,
    consents: RwLock<ConsentIndex>,
    /// Held while reloading, so that concurrent decisions reload once.
    reload: tokio::sync::Mutex<()>,
}

impl Default for PolicyCache {
    fn default() -> Self {
        Self {
            agreements: RwLock::new(Arc::new(Compiled {
                version: -1,
                agreements: Arc::new(Agreements::none()),
            })),
            consents: RwLock::new(ConsentIndex {
                version: -1,
                by_subject: HashMap::new(),
                held_under: HashMap::new(),
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PolicyCache {
    fn agreements_at_least(&self, version: i64) -> Option<Arc<Agreements>> {
        let current = read(&self.agreements);
        (current.version >= version).then(|| Arc::clone(&current.agreements))
    }

    fn consents_at_least(&self, version: i64) -> bool {
        read(&self.consents).version >= version
    }

    /// The agreements as held, and the counters they and the consents
    /// held are as new as; `None` before the first refresh.
    pub fn held(&self) -> Option<(Arc<Agreements>, PolicyVersions)> {
        let agreements = Arc::clone(&read(&self.agreements));
        let consents = read(&self.consents).version;
        (agreements.version >= 0 && consents >= 0).then(|| {
            (
                Arc::clone(&agreements.agreements),
                PolicyVersions {
                    agreements: agreements.version,
                    consents,
                },
            )
        })
    }

    /// Brings the cache up to date with `store` and returns the agreements
    /// as they stand now, with the counters read
    /// ([`PolicyCache::consents_of`] is then at least as new as them).
    pub async fn refresh(
        &self,
        store: &dyn Store,
    ) -> Result<(Arc<Agreements>, PolicyVersions), ServiceError> {
        let versions = store.policy_versions().await?;
        let agreements = self.bring_up_to(store, versions).await?;
        Ok((agreements, versions))
    }

    async fn bring_up_to(
        &self,
        store: &dyn Store,
        versions: PolicyVersions,
    ) -> Result<Arc<Agreements>, ServiceError> {
        if let Some(fresh) = self.agreements_at_least(versions.agreements)
            && self.consents_at_least(versions.consents)
        {
            return Ok(fresh);
        }
        let _reloading = self.reload.lock().await;
        if !self.consents_at_least(versions.consents) {
            let since = read(&self.consents).version;
            // Read after the counter, so at least as new as it.
            let changed = store.consents_changed(since).await?;
            let mut index = write(&self.consents);
            index.merge(changed);
            index.version = versions.consents;
        }
        if let Some(fresh) = self.agreements_at_least(versions.agreements) {
            return Ok(fresh);
        }
        let loaded = store.live_agreements().await?;
        let previous = Arc::clone(&read(&self.agreements).agreements);
        let agreements = Arc::new(
            Agreements::recompile(loaded, Some(&previous))
                .map_err(|e| ServiceError::Policy(PolicyError::from(e)))?,
        );
        let (pairs, reused) = agreements.policies().pairs_reused_from(previous.policies());
        tracing::debug!(
            version = versions.agreements,
            agreements = agreements.len(),
            pairs,
            reused,
            "policies compiled"
        );
        *write(&self.agreements) = Arc::new(Compiled {
            version: versions.agreements,
            agreements: Arc::clone(&agreements),
        });
        Ok(agreements)
    }

    /// The consents of `subject` as of the last refresh.
    pub fn consents_of(&self, subject: &SubjectId) -> Arc<[Consent]> {
        read(&self.consents)
            .by_subject
            .get(subject)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgencyCode;
    use crate::domain::consent::{Channel, ConsentKind, ConsentScope};

    fn consent(subject: &SubjectId, note: &str) -> Consent {
        Consent {
            id: ConsentId::generate(),
            subject: subject.clone(),
            kind: ConsentKind::Consent,
            scope: ConsentScope::default(),
            channel: Channel::Web,
            valid_from: chrono::Utc::now(),
            valid_until: None,
            note: note.to_owned(),
            recorded_by: AgencyCode::parse("leeds-gp").unwrap(),
            recorded_principal: "gp-1".to_owned(),
            record_time: chrono::Utc::now(),
            withdrawal: None,
        }
    }

    #[test]
    fn changes_replace_by_id_and_add_new_ones() {
        let (a, b) = (SubjectId::generate(), SubjectId::generate());
        let mut index = ConsentIndex::default();
        let first = consent(&a, "first");
        index.merge(vec![first.clone(), consent(&b, "other")]);
        let mut changed = first.clone();
        changed.note = "changed".to_owned();
        index.merge(vec![changed, consent(&a, "second")]);
        let notes: Vec<&str> = index.by_subject[&a]
            .iter()
            .map(|c| c.note.as_str())
            .collect();
        assert_eq!(notes, ["changed", "second"]);
        assert_eq!(index.by_subject[&b].len(), 1);
    }

    #[test]
    fn a_consent_moved_to_another_subject_leaves_the_first() {
        let (a, b) = (SubjectId::generate(), SubjectId::generate());
        let mut index = ConsentIndex::default();
        let first = consent(&a, "first");
        index.merge(vec![first.clone(), consent(&a, "stays")]);
        let mut moved = first.clone();
        moved.subject = b.clone();
        index.merge(vec![moved]);
        let notes = |s: &SubjectId| -> Vec<String> {
            index.by_subject[s].iter().map(|c| c.note.clone()).collect()
        };
        assert_eq!(notes(&a), ["stays"]);
        assert_eq!(notes(&b), ["first"]);
    }
}
