//! Accord's Merkle tree against public RFC 6962 test vectors it did not
//! write (`tests/data/rfc6962`, from transparency-dev/merkle): the roots of
//! the standard 8-leaf tree, every inclusion and consistency case (including
//! those a correct verifier must reject), and, where a case proves a real
//! tree, the proof Accord itself generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use accord::ledger::Hash;
use accord::ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc6962")
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap()
}

#[derive(Deserialize)]
struct Roots {
    leaf_inputs_hex: Vec<String>,
    roots_hex: Vec<String>,
}

fn standard_leaves() -> (Vec<Hash>, Vec<Vec<u8>>) {
    let roots: Roots =
        serde_json::from_slice(&std::fs::read(data().join("ROOTS.json")).unwrap()).unwrap();
    let leaves = roots
        .leaf_inputs_hex
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap()))
        .collect();
    let roots = roots
        .roots_hex
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
    (leaves, roots)
}

/// Every JSON case file under `dir`, recursively.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(cases(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn roots_of_the_standard_tree_match() {
    let (leaves, roots) = standard_leaves();
    assert_eq!(roots.len(), 9);
    for (size, expected) in roots.iter().enumerate() {
        assert_eq!(
            root(&leaves[..size]).as_slice(),
            expected.as_slice(),
            "size {size}"
        );
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[test]
fn inclusion_vectors() {
    let (leaves, roots) = standard_leaves();
    let files = cases(&data().join("inclusion"));
    assert!(files.len() >= 80, "{} inclusion cases", files.len());
    let mut generated = 0;
    for file in files {
        let c: InclusionCase = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Vec<Vec<u8>> = c.proof.unwrap_or_default().iter().map(|p| b64(p)).collect();
        let (root_bytes, leaf) = (b64(&c.root), b64(&c.leaf_hash));
        // A leaf hash that is not a SHA-256 digest is refused before any
        // proof is looked at.
        let result = Hash::try_from(leaf.as_slice())
            .map_err(|_| "the leaf hash is not 32 bytes".to_owned())
            .and_then(|leaf| {
                verify_inclusion(c.leaf_idx, c.tree_size, &leaf, &proof, &root_bytes)
                    .map_err(|e| e.to_string())
            });
        assert_eq!(
            result.is_err(),
            c.want_err,
            "{}: {} -> {result:?}",
            file.display(),
            c.desc
        );
        // For a valid case on the standard tree, Accord's own proof is the same.
        let size = usize::try_from(c.tree_size).unwrap();
        if !c.want_err && size <= leaves.len() && root_bytes == roots[size] {
            let ours =
                inclusion_proof(&leaves[..size], usize::try_from(c.leaf_idx).unwrap()).unwrap();
            let ours: Vec<Vec<u8>> = ours.iter().map(|h| h.to_vec()).collect();
            assert_eq!(ours, proof, "{}", file.display());
            generated += 1;
        }
    }
    assert!(generated >= 5, "only {generated} generated proofs compared");
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[test]
fn consistency_vectors() {
    let (leaves, roots) = standard_leaves();
    let files = cases(&data().join("consistency"));
    assert!(files.len() >= 90, "{} consistency cases", files.len());
    let mut generated = 0;
    for file in files {
        let c: ConsistencyCase = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Vec<Vec<u8>> = c.proof.unwrap_or_default().iter().map(|p| b64(p)).collect();
        let (r1, r2) = (b64(&c.root1), b64(&c.root2));
        let result = verify_consistency(c.size1, c.size2, &proof, &r1, &r2);
        assert_eq!(
            result.is_err(),
            c.want_err,
            "{}: {} -> {result:?}",
            file.display(),
            c.desc
        );
        let (s1, s2) = (
            usize::try_from(c.size1).unwrap(),
            usize::try_from(c.size2).unwrap(),
        );
        if !c.want_err && s2 <= leaves.len() && r2 == roots[s2] {
            let ours = consistency_proof(&leaves[..s2], s1).unwrap();
            let ours: Vec<Vec<u8>> = ours.iter().map(|h| h.to_vec()).collect();
            assert_eq!(ours, proof, "{}", file.display());
            generated += 1;
        }
    }
    assert!(generated >= 4, "only {generated} generated proofs compared");
}

/// A small deterministic generator (xorshift64), so that failures repeat.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Accord's roots and proofs equal those of an independent implementation
/// (the `ct-merkle` crate) on randomly sized trees of up to 10,000 leaves.
#[test]
fn agrees_with_an_independent_implementation() {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    let mut rng = Rng(0x5eed_acc0_2d00_0001);
    let mut sizes: Vec<u64> = (0..12).map(|_| 1 + rng.below(10_000)).collect();
    sizes.extend([1, 2, 3, 8, 10_000]);
    for size in sizes {
        let data: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("entry {i} of {size}").into_bytes())
            .collect();
        let ours: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut theirs = MemoryBackedTree::<sha2_independent::Sha256, Vec<u8>>::new();
        for d in &data {
            theirs.push(d.clone());
        }
        assert_eq!(
            root(&ours).as_slice(),
            theirs.root().as_bytes().as_slice(),
            "root of {size}"
        );
        for _ in 0..4 {
            let index = rng.below(size);
            let proof = inclusion_proof(&ours, usize::try_from(index).unwrap()).unwrap();
            let flat: Vec<u8> = proof.concat();
            let theirs_proof = theirs.prove_inclusion(usize::try_from(index).unwrap());
            assert_eq!(
                flat,
                theirs_proof.as_bytes(),
                "inclusion of {index} in {size}"
            );
            if size > 1 {
                let old = 1 + rng.below(size - 1);
                let proof = consistency_proof(&ours, usize::try_from(old).unwrap()).unwrap();
                let theirs_proof = theirs.prove_consistency(usize::try_from(size - old).unwrap());
                assert_eq!(
                    proof.concat(),
                    theirs_proof.as_bytes(),
                    "consistency {old} -> {size}"
                );
            }
        }
    }
}
