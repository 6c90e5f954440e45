//! Signed checkpoints of the ledger and the proofs that tie entries and
//! earlier checkpoints to them.

use super::{Audited, Call, ServiceError, Services};
use crate::domain::{Role, Violations};
use crate::ledger::EntryFilter;
use crate::ledger::checkpoint::{SignedCheckpoint, open_checkpoint};
use crate::ledger::merkle::ProofError;
use crate::ledger::{Entry, Hash};
use crate::store::{self, After, ProveError};

/// Which entry an inclusion proof is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRef {
    Index(u64),
    Id(String),
}

/// An inclusion proof of one entry.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub entry: Entry,
    pub tree_size: u64,
    pub hashes: Vec<crate::ledger::Hash>,
    /// The signed checkpoint of `tree_size`, if one was published.
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub first_size: u64,
    pub second_size: u64,
    pub hashes: Vec<crate::ledger::Hash>,
    /// The signed checkpoints of the two sizes, where they were published.
    pub first_checkpoint: Option<SignedCheckpoint>,
    pub second_checkpoint: Option<SignedCheckpoint>,
}

/// The error of a proof that could not be made; `field` names the size
/// the caller asked for.
fn proof_failure(e: ProveError, field: &str) -> ServiceError {
    match e {
        ProveError::Range(range) => Violations::one(field, range.to_string()).into(),
        ProveError::BeyondHead { .. } => Violations::one(field, e.to_string()).into(),
        ProveError::Store(s) => s.into(),
        missing @ ProveError::MissingNode(_) => {
            ServiceError::Unavailable(crate::store::StoreError::Corrupt(missing.to_string()))
        }
    }
}

/// How many entries an export reads and proves at a time.
const EXPORT_PAGE: u32 = 500;

/// An export in progress: the entries an agency may see, each proved
/// against one checkpoint.
#[derive(Debug)]
pub struct EntryExport {
    services: Services,
    filter: EntryFilter,
    checkpoint: SignedCheckpoint,
    after: After<i64>,
}

impl EntryExport {
    /// The checkpoint every entry is proved against.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    /// The next entries with their inclusion proofs; empty at the end.
    pub async fn next_page(&mut self) -> Result<Vec<(Entry, Vec<Hash>)>, ServiceError> {
        let size = self.checkpoint.head.size;
        let store = self.services.store.as_ref();
        let page: Vec<Entry> = store
            .entries(&self.filter, self.after.clone(), EXPORT_PAGE)
            .await?
            .into_iter()
            .filter(|e| u64::try_from(e.index).is_ok_and(|i| i < size))
            .collect();
        let Some(last) = page.last() else {
            return Ok(Vec::new());
        };
        self.after = After::Key(last.index);
        let indexes: Vec<u64> = page
            .iter()
            .map(|e| u64::try_from(e.index).unwrap_or_default())
            .collect();
        let proofs = store::inclusion_proofs(store, &indexes, size)
            .await
            .map_err(|e| proof_failure(e, "start_index"))?;
        Ok(page.into_iter().zip(proofs).collect())
    }
}

impl Services {
    /// Starts an export of the entries the caller's agency may see, from
    /// `start`, proved against a checkpoint covering every entry so far.
    pub async fn export_entries(
        &self,
        call: &Call,
        start: u64,
    ) -> Result<Audited<EntryExport>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        let after = match start {
            0 => After::Start,
            n => After::Key(
                i64::try_from(n - 1).map_err(|_| Violations::one("start_index", "is too large"))?,
            ),
        };
        let checkpoint = self.attested(self.publish_checkpoint().await?);
        let export = EntryExport {
            services: self.clone(),
            filter: EntryFilter {
                visible_to: Some(call.caller.agency.as_str().to_owned()),
                ..EntryFilter::default()
            },
            checkpoint,
            after,
        };
        self.commit(call, vec![], export).await
    }

    /// The verifier key new checkpoints are signed with, in the note
    /// format.
    pub fn verifier_key(&self) -> &str {
        self.keys.current().verifier_key()
    }

    /// Every published verifier key: the current one first, then those of
    /// a changeover and retired ones (see `docs/ledger.md`).
    pub fn verifier_keys(&self) -> Vec<String> {
        self.keys.verifier_keys()
    }

    /// `checkpoint` with the published keys that signed it, as handed out.
    fn attested(&self, checkpoint: SignedCheckpoint) -> SignedCheckpoint {
        let signed_by = open_checkpoint(&checkpoint.note, &self.keys.verifier_keys())
            .map(|opened| opened.signed_by)
            .unwrap_or_else(|e| {
                tracing::error!(
                    size = checkpoint.head.size,
                    error = %e,
                    "a stored checkpoint is signed by no published key"
                );
                Vec::new()
            });
        SignedCheckpoint {
            signed_by,
            ..checkpoint
        }
    }

    /// Signs and stores a checkpoint of the tree as it is now, unless the
    /// latest checkpoint already covers it; returns the covering one.
    pub async fn publish_checkpoint(&self) -> Result<SignedCheckpoint, ServiceError> {
        let head = self.store.tree_head().await?;
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.head.size >= head.size
        {
            return Ok(latest);
        }
        let note = self.keys.sign(head).map_err(|e| {
            ServiceError::Unavailable(crate::store::StoreError::Corrupt(e.to_string()))
        })?;
        let checkpoint = SignedCheckpoint {
            head,
            time: self.now(),
            note,
            signed_by: Vec::new(),
        };
        if self.store.save_checkpoint(&checkpoint).await? {
            tracing::debug!(size = head.size, "published a checkpoint");
            return Ok(checkpoint);
        }
        // Another process published this size first.
        Ok(self
            .store
            .checkpoint(head.size)
            .await?
            .unwrap_or(checkpoint))
    }

    /// The latest checkpoint; with `refresh`, one that covers every entry
    /// committed before this call.
    pub async fn get_checkpoint(
        &self,
        call: &Call,
        refresh: bool,
    ) -> Result<Audited<SignedCheckpoint>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        let checkpoint = match self.store.latest_checkpoint().await? {
            Some(latest) if !refresh => latest,
            _ => self.publish_checkpoint().await?,
        };
        self.commit(call, vec![], self.attested(checkpoint)).await
    }

    /// Proves that an entry the caller's agency may see is in the tree of
    /// `tree_size` entries; without a size, in the tree of the latest
    /// checkpoint (published now if none covers the entry yet).
    pub async fn inclusion_proof(
        &self,
        call: &Call,
        target: EntryRef,
        tree_size: Option<u64>,
    ) -> Result<Audited<InclusionProof>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        let mut filter = EntryFilter {
            visible_to: Some(call.caller.agency.as_str().to_owned()),
            ..EntryFilter::default()
        };
        let (after, described) = match &target {
            EntryRef::Index(i) => {
                let index =
                    i64::try_from(*i).map_err(|_| Violations::one("leaf_index", "is too large"))?;
                (After::Key(index - 1), format!("ledger entry {i}"))
            }
            EntryRef::Id(id) => {
                filter.id = Some(id.clone());
                (After::Start, format!("ledger entry {id}"))
            }
        };
        let entry = self
            .store
            .entries(&filter, after, 1)
            .await?
            .into_iter()
            .next()
            .filter(|e| match &target {
                EntryRef::Index(i) => u64::try_from(e.index).ok() == Some(*i),
                EntryRef::Id(id) => e.draft.id == *id,
            })
            .ok_or(ServiceError::NotFound(described))?;
        let index = u64::try_from(entry.index).unwrap_or_default();
        if let Some(size) = tree_size
            && size <= index
        {
            return Err(Violations::one(
                "tree_size",
                format!("entry {index} is not in a tree of {size} entries"),
            )
            .into());
        }
        let (tree_size, checkpoint) = match tree_size {
            Some(size) => (size, self.store.checkpoint(size).await?),
            None => {
                let covering = match self.store.latest_checkpoint().await? {
                    Some(latest) if latest.head.size > index => latest,
                    _ => self.publish_checkpoint().await?,
                };
                (covering.head.size, Some(covering))
            }
        };
        let hashes = store::inclusion_proof(self.store.as_ref(), index, tree_size)
            .await
            .map_err(|e| proof_failure(e, "tree_size"))?;
        self.commit(
            call,
            vec![],
            InclusionProof {
                entry,
                tree_size,
                hashes,
                checkpoint: checkpoint.map(|c| self.attested(c)),
            },
        )
        .await
    }

    /// Proves that the tree of `first_size` entries is a prefix of the tree
    /// of `second_size` entries (without it, the latest checkpoint's).
    pub async fn consistency_proof(
        &self,
        call: &Call,
        first_size: u64,
        second_size: Option<u64>,
    ) -> Result<Audited<ConsistencyProof>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        if first_size == 0 {
            return Err(
                Violations::one("first_size", ProofError::FromEmptyTree.to_string()).into(),
            );
        }
        if let Some(second) = second_size
            && second < first_size
        {
            return Err(Violations::one(
                "second_size",
                format!("must not be smaller than first_size ({first_size})"),
            )
            .into());
        }
        let (second_size, second_checkpoint) = match second_size {
            Some(size) => (size, self.store.checkpoint(size).await?),
            None => {
                let latest = self.publish_checkpoint().await?;
                (latest.head.size, Some(latest))
            }
        };
        let field = if second_size < first_size {
            "first_size"
        } else {
            "second_size"
        };
        let hashes = store::consistency_proof(self.store.as_ref(), first_size, second_size)
            .await
            .map_err(|e| proof_failure(e, field))?;
        let first_checkpoint = self.store.checkpoint(first_size).await?;
        self.commit(
            call,
            vec![],
            ConsistencyProof {
                first_size,
                second_size,
                hashes,
                first_checkpoint: first_checkpoint.map(|c| self.attested(c)),
                second_checkpoint: second_checkpoint.map(|c| self.attested(c)),
            },
        )
        .await
    }
}
