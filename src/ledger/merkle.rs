//! The RFC 6962 / RFC 9162 Merkle tree: leaf and node hashing, tree heads,
//! inclusion and consistency proofs, and their verification.
//!
//! Hashing (RFC 9162 section 2.1.1): a leaf is `SHA-256(0x00 || data)`, an
//! interior node `SHA-256(0x01 || left || right)`, the empty tree
//! `SHA-256("")`, and a tree of `n > 1` leaves splits at the largest power
//! of two smaller than `n`.
//!
//! Proof generation here works over the full list of leaf hashes; the
//! verifiers need only the proof, as an offline auditor would.

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

/// The inclusion proof (audit path) of leaf `index` in the tree of
/// `leaves`, leaf side first (RFC 6962 section 2.1.1).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, ProofError> {
    if index >= leaves.len() {
        return Err(ProofError::IndexOutOfRange {
            index: wide(index),
            size: wide(leaves.len()),
        });
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof between the tree of the first `old_size` leaves
/// and the tree of all `leaves` (RFC 6962 section 2.1.2).
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Result<Vec<Hash>, ProofError> {
    let n = leaves.len();
    if old_size > n {
        return Err(ProofError::SizesReversed {
            size1: wide(old_size),
            size2: wide(n),
        });
    }
    if old_size == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    let mut proof = Vec::new();
    if old_size < n {
        subproof(old_size, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
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
    fn out_of_range_requests_are_errors() {
        let l = leaves(3);
        assert!(inclusion_proof(&l, 3).is_err());
        assert_eq!(consistency_proof(&l, 0), Err(ProofError::FromEmptyTree));
        assert!(consistency_proof(&l, 4).is_err());
        assert_eq!(consistency_proof(&l, 3), Ok(vec![]));
    }
}
