//! The RFC 6962 / RFC 9162 Merkle tree: leaf and node hashing, tree heads,
//! inclusion and consistency proofs, and their verification.
//!
//! Hashing (RFC 9162 section 2.1.1): a leaf is `SHA-256(0x00 || data)`, an
//! interior node `SHA-256(0x01 || left || right)`, the empty tree
//! `SHA-256("")`, and a tree of `n > 1` leaves splits at the largest power
//! of two smaller than `n`.
//!
//! A proof is a list of [`Span`]s, runs of leaves whose subtree hashes it
//! holds; a span's hash is made of the perfect subtrees ([`NodeId`]) that
//! cover it. Storage keeps every perfect subtree's hash once it completes
//! ([`Frontier::push`] names them), so a proof needs O(log n) stored nodes
//! however large the tree. The same spans serve proofs over an in-memory
//! list of leaves, which the public test vectors check. The verifiers need
//! only the proof, as an offline auditor would.

use sha2::{Digest, Sha256};

use super::Hash;

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size1} is larger than tree size {size2}")]
    SizesReversed { size1: u64, size2: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmptyTree,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
}

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node over two child hashes (of any length, as
/// an untrusted proof may hold).
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A size or index as `u64` (lossless on every supported target).
fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The largest power of two smaller than `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root hash (MTH) of a tree with these leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// A perfect subtree: the `2^level` leaves from `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    /// The leaf at `index`.
    pub fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }

    /// The node's place in the order nodes are completed as leaves are
    /// appended (post-order: each leaf, then the subtrees it completes,
    /// lowest first), so that the nodes a batch of appends completes are
    /// neighbours wherever they sit in the tree. The node completes with
    /// leaf `n - 1`, where `n = (index + 1) << level`, after the
    /// `2(n - 1) - popcount(n - 1)` nodes of the first `n - 1` leaves and
    /// the `level` nodes below it; `popcount(n - 1)` is
    /// `popcount(index) + level`. `None` past `u64`.
    pub fn position(self) -> Option<u64> {
        let n = self
            .index
            .checked_add(1)?
            .checked_mul(1u64.checked_shl(self.level)?)?;
        (n - 1)
            .checked_mul(2)?
            .checked_sub(u64::from(self.index.count_ones()))
    }
}

/// The leaves `start..end` of a tree, as they appear in the RFC 6962
/// recursion: `start` is a multiple of the largest power of two not above
/// the span's length, so the span's hash is well defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    /// The perfect subtrees that make up the span, left to right (largest
    /// first).
    pub fn cover(self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut at = self.start;
        while at < self.end {
            let room = self.end - at;
            let mut level = at.trailing_zeros().min(63);
            while (1u64 << level) > room {
                level -= 1;
            }
            out.push(NodeId {
                level,
                index: at >> level,
            });
            at += 1 << level;
        }
        out
    }

    /// The span's hash, from the hashes of its cover (`None` when one is
    /// not known). Equal to [`root`] of the span's leaves.
    pub fn hash(self, mut node: impl FnMut(NodeId) -> Option<Hash>) -> Option<Hash> {
        let mut cover = self.cover().into_iter().rev();
        let Some(last) = cover.next() else {
            return Some(empty_root());
        };
        let mut acc = node(last)?;
        for id in cover {
            acc = node_hash(&node(id)?, &acc);
        }
        Some(acc)
    }

    fn range(self) -> std::ops::Range<usize> {
        narrow(self.start)..narrow(self.end)
    }
}

/// An index as `usize`, saturating (only for spans over in-memory leaves,
/// which fit).
fn narrow(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The largest power of two smaller than `n` (for `n >= 2`), as `u64`.
fn split64(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The spans whose hashes form the inclusion proof of leaf `index` in the
/// tree of `size` leaves, leaf side first (RFC 6962 section 2.1.1).
pub fn inclusion_spans(index: u64, size: u64) -> Result<Vec<Span>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    let (mut start, mut end, mut m) = (0, size, index);
    while end - start > 1 {
        let k = split64(end - start);
        if m < k {
            out.push(Span {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            out.push(Span {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The spans whose hashes form the consistency proof between the trees of
/// `old_size` and `size` leaves (RFC 6962 section 2.1.2).
pub fn consistency_spans(old_size: u64, size: u64) -> Result<Vec<Span>, ProofError> {
    if old_size > size {
        return Err(ProofError::SizesReversed {
            size1: old_size,
            size2: size,
        });
    }
    if old_size == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    let mut out = Vec::new();
    if old_size == size {
        return Ok(out);
    }
    let (mut start, mut end, mut m, mut complete) = (0, size, old_size, true);
    while m != end - start {
        let k = split64(end - start);
        if m <= k {
            out.push(Span {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            out.push(Span {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
            complete = false;
        }
    }
    if !complete {
        out.push(Span { start, end });
    }
    out.reverse();
    Ok(out)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of
/// `leaves`, leaf side first (RFC 6962 section 2.1.1).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, ProofError> {
    let spans = inclusion_spans(wide(index), wide(leaves.len()))?;
    Ok(spans
        .into_iter()
        .map(|s| root(&leaves[s.range()]))
        .collect())
}

/// The consistency proof between the tree of the first `old_size` leaves
/// and the tree of all `leaves` (RFC 6962 section 2.1.2).
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Result<Vec<Hash>, ProofError> {
    let spans = consistency_spans(wide(old_size), wide(leaves.len()))?;
    Ok(spans
        .into_iter()
        .map(|s| root(&leaves[s.range()]))
        .collect())
}

/// The right edge of a growing tree: the hashes of the perfect subtrees
/// that cover its leaves (one per set bit of its size, largest first).
/// Enough to append leaves and compute the root without the rest of the
/// tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

/// The stored frontier nodes do not fit the tree size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tree of size {size} has {expected} frontier nodes, not {found}")]
pub struct FrontierError {
    pub size: u64,
    pub expected: usize,
    pub found: usize,
}

impl Frontier {
    /// The empty tree.
    pub const EMPTY: Frontier = Frontier {
        size: 0,
        nodes: Vec::new(),
    };

    /// The nodes a frontier of a tree of `size` leaves holds, in order.
    pub fn ids(size: u64) -> Vec<NodeId> {
        Span {
            start: 0,
            end: size,
        }
        .cover()
    }

    /// The frontier of a tree of `size` leaves, from the hashes of
    /// [`Frontier::ids`] in order.
    pub fn new(size: u64, nodes: Vec<Hash>) -> Result<Self, FrontierError> {
        let expected = narrow(u64::from(size.count_ones()));
        if nodes.len() != expected {
            return Err(FrontierError {
                size,
                expected,
                found: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Appends a leaf; `completed` is told every perfect subtree this
    /// completes, the leaf itself first, then upwards.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0;
        completed(NodeId::leaf(index), hash);
        while (index >> level) & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(
                NodeId {
                    level,
                    index: index >> level,
                },
                hash,
            );
        }
        self.nodes.push(hash);
        self.size += 1;
    }
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root`, by the algorithm of RFC 9162 section 2.1.3.2.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf.to_vec();
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p.as_ref(), &r).to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p.as_ref()).to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the
/// tree of `size1` leaves with root `root1`, by the algorithm of RFC 9162
/// section 2.1.4.2. A proof from the empty tree is refused: it proves
/// nothing.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::WrongLength);
    };
    // When size1 is a power of two, the old root itself starts the path.
    let (start, rest): (&[u8], &[P]) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        (first.as_ref(), rest)
    };
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = start.to_vec();
    let mut sr = start.to_vec();
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c.as_ref(), &fr).to_vec();
            sr = node_hash(c.as_ref(), &sr).to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c.as_ref()).to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != root1 || sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn nodes_are_positioned_in_the_order_appends_complete_them() {
        let mut frontier = Frontier::new(0, vec![]).unwrap();
        let mut completed = Vec::new();
        for leaf in leaves(1000) {
            frontier.push(leaf, |id, _| completed.push(id));
        }
        for (k, id) in completed.iter().enumerate() {
            assert_eq!(id.position(), Some(k as u64), "{id:?}");
        }
        assert_eq!(completed.len(), 2 * 1000 - 1000usize.count_ones() as usize);
        let top = NodeId {
            level: 62,
            index: 1,
        };
        assert_eq!(top.position(), Some(u64::MAX - 2));
        assert_eq!(
            NodeId {
                level: 64,
                index: 0
            }
            .position(),
            None
        );
        assert_eq!(
            NodeId {
                level: 0,
                index: u64::MAX
            }
            .position(),
            None
        );
    }

    #[test]
    fn every_proof_of_small_trees_verifies_and_tampering_fails() {
        for n in 1..=40 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(&l, i).unwrap();
                assert_eq!(
                    verify_inclusion(i as u64, n as u64, &l[i], &p, &r),
                    Ok(()),
                    "n={n} i={i}"
                );
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_inclusion(i as u64, n as u64, &l[i], &bad, &r).is_err());
                }
            }
            for m in 1..=n {
                let p = consistency_proof(&l, m).unwrap();
                let old = root(&l[..m]);
                assert_eq!(
                    verify_consistency(m as u64, n as u64, &p, &old, &r),
                    Ok(()),
                    "m={m} n={n}"
                );
                if m < n {
                    assert!(verify_consistency(m as u64, n as u64, &p, &r, &old).is_err());
                }
            }
        }
    }

    #[test]
    fn stored_nodes_rebuild_roots_and_proofs() {
        use std::collections::HashMap;
        let l = leaves(70);
        let mut stored = HashMap::new();
        let mut frontier = Frontier::EMPTY;
        for (n, leaf) in l.iter().enumerate() {
            frontier.push(*leaf, |id, h| {
                assert!(stored.insert(id, h).is_none(), "{id:?} completed twice");
            });
            let size = n as u64 + 1;
            assert_eq!(frontier.root(), root(&l[..=n]), "size {size}");
            let nodes: Vec<Hash> = Frontier::ids(size).iter().map(|id| stored[id]).collect();
            assert_eq!(Frontier::new(size, nodes).unwrap(), frontier);
        }
        // Every stored node is the root of the leaves it covers.
        for (id, h) in &stored {
            let start = (id.index << id.level) as usize;
            assert_eq!(*h, root(&l[start..start + (1 << id.level)]), "{id:?}");
        }
        for size in 1..=70u64 {
            for i in 0..size {
                let from_nodes: Vec<Hash> = inclusion_spans(i, size)
                    .unwrap()
                    .into_iter()
                    .map(|s| s.hash(|id| stored.get(&id).copied()).unwrap())
                    .collect();
                assert_eq!(
                    from_nodes,
                    inclusion_proof(&l[..size as usize], i as usize).unwrap()
                );
            }
        }
        assert_eq!(
            Frontier::new(3, vec![]),
            Err(FrontierError {
                size: 3,
                expected: 2,
                found: 0
            })
        );
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let l = leaves(3);
        assert!(inclusion_proof(&l, 3).is_err());
        assert_eq!(consistency_proof(&l, 0), Err(ProofError::FromEmptyTree));
        assert!(consistency_proof(&l, 4).is_err());
        assert_eq!(consistency_proof(&l, 3), Ok(vec![]));
    }
}
