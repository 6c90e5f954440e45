//! The audit ledger: one entry per audited call, each a leaf of an
//! RFC 6962 Merkle tree ([`merkle`]).
//!
//! A leaf is the hash of the entry's canonical encoding (documented in
//! `docs/ledger.md`), which includes the entry's index, so that changing,
//! removing or moving any entry changes the tree's root. Storage appends
//! leaves through a [`merkle::Frontier`] and keeps every completed subtree;
//! [`Rebuild`] recomputes the tree from the entries and checks what is
//! stored.

pub mod checkpoint;
pub mod export;
pub mod merkle;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::Purpose;
use crate::domain::agency::storage_codes;
use merkle::{Frontier, NodeId};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

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

/// On what grounds another agency's data was disclosed, or what stood in
/// the way: empty for calls that involve no sharing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounds {
    /// The agreement versions that permitted (`agreements/{id}@{v}`), or
    /// the one named by a refusal.
    pub agreements: Vec<String>,
    /// Their lawful bases, as codes (`uk_gdpr_art_6_1_e`, …).
    pub lawful_bases: Vec<String>,
    /// The consent relied on, or named by a refusal (`consents/{id}`).
    pub consent: String,
    /// The reason given for emergency ("break the glass") access.
    pub break_glass: String,
}

/// A new entry's id: a UUID ordered by time (version 7), so that entries
/// written together sit together in the ledger's index of ids (a random
/// one would change a page of that index for nearly every entry). It
/// reveals nothing the entry does not hold: its time.
pub fn new_entry_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What is known of an audited call: everything an entry holds except its
/// position in the ledger and its hashes. Absent values are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub id: String,
    pub time: DateTime<Utc>,
    pub request_id: String,
    /// The W3C trace id of the call (32 lowercase hex digits) from its
    /// `traceparent`; empty when it sent none.
    pub trace_id: String,
    pub agency: String,
    pub principal: String,
    pub roles: Vec<String>,
    /// The SHA-256 fingerprint (hex) of the client certificate the call
    /// came over; empty in development mode or when none was presented.
    pub client_certificate: String,
    pub action: String,
    pub purpose: Option<Purpose>,
    pub subject: String,
    pub records: Vec<String>,
    pub fields: Vec<String>,
    pub outcome: Outcome,
    pub reason_code: String,
    pub reason: String,
    pub controller: String,
    pub grounds: Grounds,
}

/// A ledger entry as stored: the leaf at `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: i64,
    pub draft: EntryDraft,
}

impl Entry {
    /// The entry's canonical encoding: the bytes of its leaf.
    pub fn encoding(&self) -> Vec<u8> {
        canonical_encoding(self.index, &self.draft)
    }

    /// The subjects the entry concerns: its subject and any subject named
    /// among its records (a search that disclosed several people).
    pub fn subjects(&self) -> Vec<&str> {
        let d = &self.draft;
        let mut out: Vec<&str> = std::iter::once(d.subject.as_str())
            .chain(
                d.records
                    .iter()
                    .map(String::as_str)
                    .filter(|r| r.starts_with("subjects/")),
            )
            .filter(|s| !s.is_empty())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// If the entry records fields disclosed to an agency other than their
    /// controller, what the disclosure rested on and what it was of: each
    /// record disclosed (`records/{id}`, whatever the version), the consent
    /// relied on (`consents/{id}`) and each agreement
    /// (`agreements/{id}@{version}`). How the agencies that received data
    /// under a ground are found when that ground ends.
    pub fn disclosure_keys(&self) -> Vec<&str> {
        let d = &self.draft;
        if d.outcome != Outcome::Permitted
            || d.fields.is_empty()
            || d.controller.is_empty()
            || d.agency == d.controller
        {
            return Vec::new();
        }
        let mut out: Vec<&str> = d
            .records
            .iter()
            .filter(|r| r.starts_with("records/"))
            .map(|r| r.split_once('@').map_or(r.as_str(), |(name, _)| name))
            .chain(d.grounds.agreements.iter().map(String::as_str))
            .chain(std::iter::once(d.grounds.consent.as_str()))
            .filter(|k| !k.is_empty())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The entry's leaf hash, `SHA-256(0x00 || encoding)`.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encoding())
    }
}

/// Which ledger entries to read: the filters of an auditor's search, and
/// whose entries they may see.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// Only the entry with this id.
    pub id: Option<String>,
    /// Only entries about this subject (`subjects/{id}`): its own, or a
    /// search that disclosed it among others; and those about every
    /// subject merged into it, while the merge stands.
    pub subject: Option<String>,
    /// Only entries of calls by this agency code.
    pub agency: Option<String>,
    /// Only entries with this outcome.
    pub outcome: Option<Outcome>,
    /// Only entries of calls by this principal.
    pub principal: Option<String>,
    /// Only entries of calls that declared this purpose.
    pub purpose: Option<Purpose>,
    /// Only entries at or after this time.
    pub start: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub end: Option<DateTime<Utc>>,
    /// Only entries whose caller or data controller is this agency code.
    pub visible_to: Option<String>,
    /// Only entries of emergency ("break the glass") access.
    pub break_glass_only: bool,
    /// Only entries of calls over the client certificate with this
    /// fingerprint (lowercase hex).
    pub client_certificate: Option<String>,
    /// Only entries that disclosed fields to an agency other than their
    /// controller with this among their [`Entry::disclosure_keys`].
    pub disclosed: Option<String>,
    /// Only entries of calls in this W3C trace.
    pub trace_id: Option<String>,
}

/// How many disclosures one calling agency's staff with one set of roles
/// made for one purpose (see [`Entry::disclosure_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureCount {
    /// The caller's agency code.
    pub agency: String,
    pub purpose: Option<Purpose>,
    /// The roles the caller held.
    pub roles: Vec<String>,
    pub disclosures: u64,
}

/// Version tag that starts every canonical encoding.
const ENCODING_TAG: &[u8] = b"accord.ledger.entry.v3\n";

/// The tag of an entry that carries a trace id (version 4).
const TRACED_ENCODING_TAG: &[u8] = b"accord.ledger.entry.v4\n";

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

/// The canonical encoding of an entry at `index`.
///
/// Version 3: the tag `accord.ledger.entry.v3\n`, then in this order: index
/// (8 bytes, big-endian, two's complement), time in microseconds since the
/// Unix epoch (8 bytes, big-endian), then request id, entry id, agency,
/// principal, roles (list), action, purpose code, subject, records (list),
/// fields (list), outcome code, reason code, reason, controller, agreements
/// (list), lawful bases (list), consent, break-glass reason and client
/// certificate fingerprint. Strings
/// are UTF-8 preceded by their byte length (8 bytes, big-endian); lists by
/// their item count (8 bytes, big-endian).
///
/// Version 4, for an entry with a trace id: the tag
/// `accord.ledger.entry.v4\n`, then the same, then the trace id. An entry
/// without one is encoded as version 3, so entries written before trace
/// ids existed keep their leaves.
pub fn canonical_encoding(index: i64, draft: &EntryDraft) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let traced = !draft.trace_id.is_empty();
    out.extend_from_slice(if traced {
        TRACED_ENCODING_TAG
    } else {
        ENCODING_TAG
    });
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
    let g = &draft.grounds;
    put_list(&mut out, &g.agreements);
    put_list(&mut out, &g.lawful_bases);
    put_bytes(&mut out, g.consent.as_bytes());
    put_bytes(&mut out, g.break_glass.as_bytes());
    put_bytes(&mut out, draft.client_certificate.as_bytes());
    if traced {
        put_bytes(&mut out, draft.trace_id.as_bytes());
    }
    out
}

/// A tree size and its root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

impl TreeHead {
    /// The empty tree.
    pub fn empty() -> Self {
        Self {
            size: 0,
            root: merkle::empty_root(),
        }
    }
}

/// Why the ledger does not verify. Names the first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "entry {found} stands where entry {expected} should be (an entry is missing or out of order)"
    )]
    Gap { expected: u64, found: i64 },
    #[error(
        "entry {index} does not match its leaf in the tree (the entry was altered, replaced or moved)"
    )]
    Altered { index: u64 },
    #[error("the tree node at level {} index {} does not match the entries below it", .node.level, .node.index)]
    NodeAltered { node: NodeId },
    #[error("the tree node at level {} index {} is missing", .node.level, .node.index)]
    NodeMissing { node: NodeId },
    #[error("the ledger holds {entries} entries but its head records {head_size}")]
    HeadMismatch { entries: u64, head_size: u64 },
    #[error("the root hash recorded for tree size {size} is not the root of the entries")]
    RootMismatch { size: u64 },
}

/// Rebuilds the tree from the entries in order, collecting the nodes each
/// entry completes so that the stored ones can be checked against them.
#[derive(Debug, Clone)]
pub struct Rebuild {
    frontier: Frontier,
    completed: Vec<(NodeId, Hash)>,
}

impl Default for Rebuild {
    fn default() -> Self {
        Self {
            frontier: Frontier::EMPTY,
            completed: Vec::new(),
        }
    }
}

impl Rebuild {
    /// Adds the next entry, which must be at the next index.
    pub fn push(&mut self, entry: &Entry) -> Result<(), VerifyError> {
        let expected = self.frontier.size();
        if u64::try_from(entry.index).ok() != Some(expected) {
            return Err(VerifyError::Gap {
                expected,
                found: entry.index,
            });
        }
        let completed = &mut self.completed;
        self.frontier
            .push(entry.leaf_hash(), |id, hash| completed.push((id, hash)));
        Ok(())
    }

    /// The nodes completed since the last check, to look up in storage.
    pub fn pending(&self) -> Vec<NodeId> {
        self.completed.iter().map(|(id, _)| *id).collect()
    }

    /// Checks the nodes completed since the last check against the stored
    /// ones, in the order they were completed.
    pub fn check_stored(&mut self, stored: &HashMap<NodeId, Hash>) -> Result<(), VerifyError> {
        for (node, hash) in self.completed.drain(..) {
            match stored.get(&node) {
                Some(h) if *h == hash => {}
                Some(_) if node.level == 0 => {
                    return Err(VerifyError::Altered { index: node.index });
                }
                Some(_) => return Err(VerifyError::NodeAltered { node }),
                None => return Err(VerifyError::NodeMissing { node }),
            }
        }
        Ok(())
    }

    /// Drops the nodes completed since the last check, unchecked (when
    /// there are no stored nodes to check them against).
    pub fn forget_completed(&mut self) {
        self.completed.clear();
    }

    /// The head of the rebuilt tree.
    pub fn head(&self) -> TreeHead {
        TreeHead {
            size: self.frontier.size(),
            root: self.frontier.root(),
        }
    }

    /// Checks that `recorded` is the head of the rebuilt tree.
    pub fn check_head(&self, recorded: TreeHead) -> Result<TreeHead, VerifyError> {
        let head = self.head();
        if recorded.size != head.size {
            return Err(VerifyError::HeadMismatch {
                entries: head.size,
                head_size: recorded.size,
            });
        }
        if recorded.root != head.root {
            return Err(VerifyError::RootMismatch { size: head.size });
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_time_ordered_uuids() {
        let ids: Vec<String> = (0..2000).map(|_| new_entry_id()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{id}");
        }
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "each id sorts after the one before"
        );
    }

    fn draft(n: u32) -> EntryDraft {
        EntryDraft {
            id: format!("id-{n}"),
            time: DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).unwrap(),
            request_id: format!("req-{n}"),
            trace_id: String::new(),
            agency: "leeds-cc".into(),
            principal: "u1".into(),
            roles: vec!["social_worker".into()],
            client_certificate: String::new(),
            action: "/accord.v1.RecordService/GetRecord".into(),
            purpose: Some(Purpose::DirectCare),
            subject: String::new(),
            records: vec![],
            fields: vec!["a".into(), "b".into()],
            outcome: Outcome::Permitted,
            reason_code: String::new(),
            reason: String::new(),
            controller: "leeds-cc".into(),
            grounds: Grounds::default(),
        }
    }

    fn entries(n: u32) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                index: i64::from(i),
                draft: draft(i),
            })
            .collect()
    }

    /// Rebuilds `entries`, checking each against the nodes of `stored`.
    fn rebuild(
        entries: &[Entry],
        stored: &HashMap<NodeId, Hash>,
        head: TreeHead,
    ) -> Result<TreeHead, VerifyError> {
        let mut r = Rebuild::default();
        for e in entries {
            r.push(e)?;
            r.check_stored(stored)?;
        }
        r.check_head(head)
    }

    fn stored_tree(entries: &[Entry]) -> (HashMap<NodeId, Hash>, TreeHead) {
        let mut nodes = HashMap::new();
        let mut f = Frontier::EMPTY;
        for e in entries {
            f.push(e.leaf_hash(), |id, h| {
                nodes.insert(id, h);
            });
        }
        (
            nodes,
            TreeHead {
                size: f.size(),
                root: f.root(),
            },
        )
    }

    #[test]
    fn an_untouched_ledger_verifies() {
        let e = entries(5);
        let (nodes, head) = stored_tree(&e);
        assert_eq!(rebuild(&e, &nodes, head), Ok(head));
        let leaves: Vec<Hash> = e.iter().map(Entry::leaf_hash).collect();
        assert_eq!(head.root, merkle::root(&leaves));
    }

    #[test]
    fn edits_deletions_and_reorders_are_named() {
        let e = entries(5);
        let (nodes, head) = stored_tree(&e);
        let mut edited = e.clone();
        edited[2].draft.outcome = Outcome::Denied;
        assert_eq!(
            rebuild(&edited, &nodes, head),
            Err(VerifyError::Altered { index: 2 })
        );

        let mut deleted = e.clone();
        deleted.remove(3);
        assert_eq!(
            rebuild(&deleted, &nodes, head),
            Err(VerifyError::Gap {
                expected: 3,
                found: 4
            })
        );

        let mut truncated = e.clone();
        truncated.pop();
        assert!(matches!(
            rebuild(&truncated, &nodes, head),
            Err(VerifyError::HeadMismatch { .. })
        ));

        let mut swapped = e.clone();
        swapped.swap(1, 2);
        swapped[1].index = 1;
        swapped[2].index = 2;
        assert_eq!(
            rebuild(&swapped, &nodes, head),
            Err(VerifyError::Altered { index: 1 })
        );

        let mut bad_node = nodes.clone();
        let node = NodeId { level: 1, index: 1 };
        bad_node.insert(node, [7; 32]);
        assert_eq!(
            rebuild(&e, &bad_node, head),
            Err(VerifyError::NodeAltered { node })
        );

        let bad_root = TreeHead {
            size: 5,
            root: [0; 32],
        };
        assert_eq!(
            rebuild(&e, &nodes, bad_root),
            Err(VerifyError::RootMismatch { size: 5 })
        );
    }

    #[test]
    fn the_encoding_separates_fields() {
        let mut a = draft(0);
        let mut b = draft(0);
        a.roles = vec!["ab".into()];
        b.roles = vec!["a".into(), "b".into()];
        assert_ne!(canonical_encoding(0, &a), canonical_encoding(0, &b));
        assert_ne!(canonical_encoding(0, &a), canonical_encoding(1, &a));
    }

    #[test]
    fn a_trace_id_makes_version_4_and_its_absence_keeps_version_3() {
        let plain = draft(0);
        let mut traced = draft(0);
        traced.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".into();
        let v3 = canonical_encoding(0, &plain);
        let v4 = canonical_encoding(0, &traced);
        assert!(v3.starts_with(b"accord.ledger.entry.v3\n"));
        assert!(v4.starts_with(b"accord.ledger.entry.v4\n"));
        // The same fields, then the trace id.
        assert_eq!(v4[ENCODING_TAG.len()..v3.len()], v3[ENCODING_TAG.len()..]);
        let mut tail = 32u64.to_be_bytes().to_vec();
        tail.extend_from_slice(traced.trace_id.as_bytes());
        assert_eq!(v4[v3.len()..], tail[..]);
    }
}
