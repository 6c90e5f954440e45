//! The audit ledger: one entry per audited call, chained by SHA-256.
//!
//! Each entry stores the hash of the previous entry and the hash of its own
//! canonical encoding (which includes the previous hash), so that changing,
//! removing or reordering any entry breaks the chain from that point on.
//! The encoding is documented in `docs/ledger.md`. Storage appends entries
//! through [`Chain::next`]; [`verify`] checks a run of entries.

pub mod merkle;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::Purpose;
use crate::domain::agency::storage_codes;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The previous-hash of the first entry.
pub const GENESIS: Hash = [0; 32];

/// The outcome of an audited call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed and completed.
    Permitted,
    /// Refused: unauthenticated, not permitted, or in conflict with state.
    Denied,
    /// Rejected for invalid input.
    Invalid,
    /// Failed inside Accord.
    Failed,
}

storage_codes!(Outcome {
    Permitted => "permitted",
    Denied => "denied",
    Invalid => "invalid",
    Failed => "failed",
});

/// What is known of an audited call: everything an entry holds except its
/// position in the ledger and its hashes. Absent values are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub id: String,
    pub time: DateTime<Utc>,
    pub request_id: String,
    pub agency: String,
    pub principal: String,
    pub roles: Vec<String>,
    pub action: String,
    pub purpose: Option<Purpose>,
    pub subject: String,
    pub records: Vec<String>,
    pub fields: Vec<String>,
    pub outcome: Outcome,
    pub reason_code: String,
    pub reason: String,
    pub controller: String,
}

/// A ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: i64,
    pub draft: EntryDraft,
    pub previous_hash: Hash,
    pub entry_hash: Hash,
}

/// Version tag that starts every canonical encoding.
const ENCODING_TAG: &[u8] = b"accord.ledger.entry.v1\n";

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    out.extend_from_slice(&u64::try_from(items.len()).unwrap_or(u64::MAX).to_be_bytes());
    for item in items {
        put_bytes(out, item.as_bytes());
    }
}

/// The canonical encoding of an entry at `index` after `previous_hash`.
///
/// Version 1: the tag `accord.ledger.entry.v1\n`, then in this order: index
/// (8 bytes, big-endian, two's complement), time in microseconds since the
/// Unix epoch (8 bytes, big-endian), then request id, entry id, agency,
/// principal, roles (list), action, purpose code, subject, records (list),
/// fields (list), outcome code, reason code, reason, controller, and the
/// 32-byte previous hash. Strings are UTF-8 preceded by their byte length
/// (8 bytes, big-endian); lists by their item count (8 bytes, big-endian).
pub fn canonical_encoding(index: i64, draft: &EntryDraft, previous_hash: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(ENCODING_TAG);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&draft.time.timestamp_micros().to_be_bytes());
    put_bytes(&mut out, draft.request_id.as_bytes());
    put_bytes(&mut out, draft.id.as_bytes());
    put_bytes(&mut out, draft.agency.as_bytes());
    put_bytes(&mut out, draft.principal.as_bytes());
    put_list(&mut out, &draft.roles);
    put_bytes(&mut out, draft.action.as_bytes());
    put_bytes(&mut out, draft.purpose.map_or("", Purpose::code).as_bytes());
    put_bytes(&mut out, draft.subject.as_bytes());
    put_list(&mut out, &draft.records);
    put_list(&mut out, &draft.fields);
    put_bytes(&mut out, draft.outcome.code().as_bytes());
    put_bytes(&mut out, draft.reason_code.as_bytes());
    put_bytes(&mut out, draft.reason.as_bytes());
    put_bytes(&mut out, draft.controller.as_bytes());
    out.extend_from_slice(previous_hash);
    out
}

/// The hash of an entry: SHA-256 of its canonical encoding.
pub fn entry_hash(index: i64, draft: &EntryDraft, previous_hash: &Hash) -> Hash {
    Sha256::digest(canonical_encoding(index, draft, previous_hash)).into()
}

/// The head of the chain: how many entries it holds and the last hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub size: i64,
    pub head: Hash,
}

impl Chain {
    /// Seals `draft` as the next entry and returns it with the new head.
    pub fn next(self, draft: EntryDraft) -> (Entry, Chain) {
        let index = self.size;
        let hash = entry_hash(index, &draft, &self.head);
        let entry = Entry {
            index,
            draft,
            previous_hash: self.head,
            entry_hash: hash,
        };
        (
            entry,
            Chain {
                size: index + 1,
                head: hash,
            },
        )
    }
}

/// Why a run of entries does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "entry {found} stands where entry {expected} should be (an entry is missing or out of order)"
    )]
    Gap { expected: i64, found: i64 },
    #[error("entry {index}: its previous hash does not match the hash of entry {}", index - 1)]
    BrokenLink { index: i64 },
    #[error("entry {index}: its content does not match its hash (the entry was altered)")]
    Altered { index: i64 },
    #[error("the chain holds {entries} entries but its head records {head_size}")]
    HeadMismatch { entries: i64, head_size: i64 },
}

impl Chain {
    /// The chain before its first entry.
    pub const EMPTY: Chain = Chain {
        size: 0,
        head: GENESIS,
    };

    /// Checks that `entry` is the next entry of this chain: in place, linked
    /// to the head, and unaltered. Returns the chain extended by it.
    pub fn check_next(self, entry: &Entry) -> Result<Chain, ChainError> {
        if entry.index != self.size {
            return Err(ChainError::Gap {
                expected: self.size,
                found: entry.index,
            });
        }
        if entry.previous_hash != self.head {
            return Err(ChainError::BrokenLink { index: entry.index });
        }
        if entry_hash(entry.index, &entry.draft, &entry.previous_hash) != entry.entry_hash {
            return Err(ChainError::Altered { index: entry.index });
        }
        Ok(Chain {
            size: entry.index + 1,
            head: entry.entry_hash,
        })
    }

    /// Checks that the recorded head matches this chain, which was rebuilt
    /// from every entry.
    pub fn check_head(self, recorded: Chain) -> Result<Chain, ChainError> {
        if recorded == self {
            Ok(self)
        } else {
            Err(ChainError::HeadMismatch {
                entries: self.size,
                head_size: recorded.size,
            })
        }
    }
}

/// Checks a run of entries that starts the ledger (index 0) and, if given,
/// that the recorded head matches its end. Reports the first bad entry.
pub fn verify(entries: &[Entry], head: Option<Chain>) -> Result<Chain, ChainError> {
    let chain = entries
        .iter()
        .try_fold(Chain::EMPTY, |chain, entry| chain.check_next(entry))?;
    match head {
        Some(recorded) => chain.check_head(recorded),
        None => Ok(chain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: u32) -> EntryDraft {
        EntryDraft {
            id: format!("id-{n}"),
            time: DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).unwrap(),
            request_id: format!("req-{n}"),
            agency: "leeds-cc".into(),
            principal: "u1".into(),
            roles: vec!["social_worker".into()],
            action: "/accord.v1.RecordService/GetRecord".into(),
            purpose: Some(Purpose::DirectCare),
            subject: String::new(),
            records: vec![],
            fields: vec!["a".into(), "b".into()],
            outcome: Outcome::Permitted,
            reason_code: String::new(),
            reason: String::new(),
            controller: "leeds-cc".into(),
        }
    }

    fn chain_of(n: u32) -> (Vec<Entry>, Chain) {
        let mut chain = Chain {
            size: 0,
            head: GENESIS,
        };
        let mut entries = vec![];
        for i in 0..n {
            let (e, c) = chain.next(draft(i));
            entries.push(e);
            chain = c;
        }
        (entries, chain)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (entries, head) = chain_of(5);
        assert_eq!(verify(&entries, Some(head)), Ok(head));
    }

    #[test]
    fn edits_deletions_and_reorders_are_named() {
        let (entries, head) = chain_of(5);
        let mut edited = entries.clone();
        edited[2].draft.outcome = Outcome::Denied;
        assert_eq!(verify(&edited, None), Err(ChainError::Altered { index: 2 }));

        let mut deleted = entries.clone();
        deleted.remove(3);
        assert_eq!(
            verify(&deleted, None),
            Err(ChainError::Gap {
                expected: 3,
                found: 4
            })
        );

        let mut truncated = entries.clone();
        truncated.pop();
        assert!(matches!(
            verify(&truncated, Some(head)),
            Err(ChainError::HeadMismatch { .. })
        ));

        let mut swapped = entries;
        swapped.swap(1, 2);
        swapped[1].index = 1;
        swapped[2].index = 2;
        assert_eq!(
            verify(&swapped, None),
            Err(ChainError::BrokenLink { index: 1 })
        );
    }

    #[test]
    fn the_encoding_separates_fields() {
        let mut a = draft(0);
        let mut b = draft(0);
        a.roles = vec!["ab".into()];
        b.roles = vec!["a".into(), "b".into()];
        assert_ne!(entry_hash(0, &a, &GENESIS), entry_hash(0, &b, &GENESIS));
    }
}
