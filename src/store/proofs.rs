//! The ledger over storage: verifying the stored tree, serving proofs from
//! stored nodes, and reading the ledger out for export.

use crate::ledger::export::{EntryLine, Line};
use crate::ledger::merkle::{self, NodeId, ProofError, Span};
use crate::ledger::{Entry, Hash, Rebuild, TreeHead, VerifyError};

use super::{After, EntryFilter, Store, StoreError};

/// Why the stored ledger does not verify.
#[derive(Debug, thiserror::Error)]
pub enum LedgerCheckError {
    /// An entry or tree node was altered, removed or moved.
    #[error("{0}")]
    Tree(#[from] VerifyError),
    /// The ledger could not be read.
    #[error("the ledger could not be read: {0}")]
    Store(#[from] StoreError),
}

/// Every entry matching `filter`, in ledger order, read a page at a time.
pub async fn all_entries(
    store: &dyn Store,
    filter: &EntryFilter,
) -> Result<Vec<Entry>, StoreError> {
    let mut all = Vec::new();
    let mut after = After::Start;
    loop {
        let page = store.entries(filter, after, VERIFY_PAGE).await?;
        match page.last() {
            Some(last) => after = After::Key(last.index),
            None => return Ok(all),
        }
        all.extend(page);
    }
}

/// How many entries [`verify_ledger`] and [`all_entries`] read at a time.
const VERIFY_PAGE: u32 = 1000;

/// Reads the whole stored ledger in order, rebuilds its Merkle tree, and
/// checks every stored node and the recorded head against it. Names the
/// first bad entry or node.
pub async fn verify_ledger(store: &dyn Store) -> Result<TreeHead, LedgerCheckError> {
    // The head is read first: entries appended while verifying lie beyond it.
    let recorded = store.tree_head().await?;
    let mut rebuild = Rebuild::default();
    let mut after = After::Start;
    let within = |e: &&Entry| u64::try_from(e.index).is_ok_and(|i| i < recorded.size);
    loop {
        let page = store
            .entries(&EntryFilter::default(), after, VERIFY_PAGE)
            .await?;
        for entry in page.iter().take_while(within) {
            rebuild.push(entry)?;
        }
        let stored = store.nodes(&rebuild.pending()).await?;
        rebuild.check_stored(&stored)?;
        match page.last() {
            Some(last) if within(&last) && page.len() == VERIFY_PAGE as usize => {
                after = After::Key(last.index)
            }
            _ => break,
        }
    }
    Ok(rebuild.check_head(recorded)?)
}

/// Why a proof could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The sizes or index asked for do not fit the tree.
    #[error("{0}")]
    Range(#[from] ProofError),
    /// The tree is smaller than the size asked for.
    #[error("the ledger holds {size} entries, fewer than {asked}")]
    BeyondHead { asked: u64, size: u64 },
    /// A node the proof needs is not stored.
    #[error("the ledger's tree lacks node level {} index {}", .0.level, .0.index)]
    MissingNode(NodeId),
    /// The ledger could not be read.
    #[error("the ledger could not be read: {0}")]
    Store(#[from] StoreError),
}

/// The hashes of each list of spans, all within a tree of `size` leaves,
/// from the stored nodes that cover them (fetched in one lookup, with the
/// nodes of `leaves`, which must exist too).
///
/// Nodes are stored in the transaction that grows the tree past them, so
/// when every node is found the tree has at least `size` leaves; only when
/// one is missing is the head read, to tell a size beyond the tree from a
/// damaged tree.
async fn span_hashes(
    store: &dyn Store,
    proofs: &[Vec<Span>],
    leaves: &[u64],
    size: u64,
) -> Result<Vec<Vec<Hash>>, ProveError> {
    let mut ids: Vec<NodeId> = proofs.iter().flatten().flat_map(|s| s.cover()).collect();
    ids.extend(leaves.iter().map(|i| NodeId::leaf(*i)));
    ids.sort_unstable();
    ids.dedup();
    let stored = store.nodes(&ids).await?;
    if let Some(missing) = ids.iter().find(|id| !stored.contains_key(id)) {
        let head = store.tree_head().await?;
        return Err(if size > head.size {
            ProveError::BeyondHead {
                asked: size,
                size: head.size,
            }
        } else {
            ProveError::MissingNode(*missing)
        });
    }
    let hash = |span: &Span| {
        span.hash(|id| stored.get(&id).copied())
            .unwrap_or_else(merkle::empty_root)
    };
    Ok(proofs
        .iter()
        .map(|spans| spans.iter().map(hash).collect())
        .collect())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub async fn inclusion_proof(
    store: &dyn Store,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProveError> {
    let mut proofs = inclusion_proofs(store, &[index], size).await?;
    Ok(proofs.pop().unwrap_or_default())
}

/// The inclusion proofs of several leaves in the tree of `size` leaves,
/// from one lookup of the nodes they need.
pub async fn inclusion_proofs(
    store: &dyn Store,
    indexes: &[u64],
    size: u64,
) -> Result<Vec<Vec<Hash>>, ProveError> {
    let spans = indexes
        .iter()
        .map(|i| merkle::inclusion_spans(*i, size))
        .collect::<Result<Vec<_>, _>>()?;
    span_hashes(store, &spans, indexes, size).await
}

/// The consistency proof between the trees of `old_size` and `size` leaves.
pub async fn consistency_proof(
    store: &dyn Store,
    old_size: u64,
    size: u64,
) -> Result<Vec<Hash>, ProveError> {
    let spans = merkle::consistency_spans(old_size, size)?;
    let mut proofs = span_hashes(store, &[spans], &[], size).await?;
    Ok(proofs.pop().unwrap_or_default())
}

/// The root hash of the tree of the first `size` leaves.
pub async fn root_at(store: &dyn Store, size: u64) -> Result<Hash, ProveError> {
    let whole = Span {
        start: 0,
        end: size,
    };
    let mut hashes = span_hashes(store, &[vec![whole]], &[], size).await?;
    Ok(hashes
        .pop()
        .and_then(|mut h| h.pop())
        .unwrap_or_else(merkle::empty_root))
}

/// How many entries an export reads at a time.
const EXPORT_PAGE: u32 = 1000;

/// Reads the whole ledger, up to the tree size when it was opened, as
/// export lines: each entry with the leaf hash its tree recorded, followed
/// by the checkpoints its index completes.
#[derive(Debug)]
pub struct ExportCursor<'a> {
    store: &'a dyn Store,
    end: u64,
    next: u64,
}

impl<'a> ExportCursor<'a> {
    /// A cursor over the ledger as it is now.
    pub async fn open(store: &'a dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            end: store.tree_head().await?.size,
            store,
            next: 0,
        })
    }

    /// How many entries the export holds.
    pub fn size(&self) -> u64 {
        self.end
    }

    /// The next lines, or none at the end.
    pub async fn next_lines(&mut self) -> Result<Vec<Line>, StoreError> {
        let mut lines = Vec::new();
        if self.next == 0 {
            for c in self.store.checkpoints(0, 0).await? {
                lines.push(Line::checkpoint(&c));
            }
        }
        if self.next >= self.end {
            return Ok(lines);
        }
        let after = match self.next {
            0 => After::Start,
            n => After::Key(i64::try_from(n - 1).unwrap_or(i64::MAX)),
        };
        let page: Vec<Entry> = self
            .store
            .entries(&EntryFilter::default(), after, EXPORT_PAGE)
            .await?
            .into_iter()
            .filter(|e| u64::try_from(e.index).is_ok_and(|i| i < self.end))
            .collect();
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            // Entries the head counts are missing: say so rather than
            // export a short ledger that looks complete.
            return Err(StoreError::Corrupt(format!(
                "ledger entry {} is missing",
                self.next
            )));
        };
        let (first, last) = (
            u64::try_from(first.index).unwrap_or_default(),
            u64::try_from(last.index).unwrap_or_default(),
        );
        let ids: Vec<NodeId> = (first..=last).map(NodeId::leaf).collect();
        let leaves = self.store.nodes(&ids).await?;
        let mut checkpoints = self
            .store
            .checkpoints(first + 1, last + 1)
            .await?
            .into_iter()
            .peekable();
        for entry in &page {
            let index = u64::try_from(entry.index).unwrap_or_default();
            let leaf = leaves.get(&NodeId::leaf(index)).ok_or_else(|| {
                StoreError::Corrupt(format!("the leaf of entry {index} is missing"))
            })?;
            lines.push(Line::Entry(Box::new(EntryLine::new(entry, leaf))));
            while let Some(c) = checkpoints.next_if(|c| c.head.size == index + 1) {
                lines.push(Line::checkpoint(&c));
            }
        }
        self.next = last + 1;
        Ok(lines)
    }
}
