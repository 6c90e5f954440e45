//! The ledger export: a JSON Lines file that anyone can check with nothing
//! but the file and the ledger's public key ([`OfflineVerifier`]).
//!
//! Line 1 is a header; then every entry in index order, each followed by
//! the checkpoints whose tree size it completes (checkpoints of the empty
//! tree come first). An entry line holds every field of the canonical
//! encoding as stored (agency codes, purpose and outcome codes, time in
//! microseconds) and the leaf hash the ledger's tree recorded for it, so a
//! verifier can recompute the leaf and say exactly which entry differs.
//! The format is documented in `docs/ledger.md`.

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, SignedCheckpoint, open_checkpoint};
use super::{Entry, EntryDraft, Grounds, Hash, Outcome, Rebuild, TreeHead, VerifyError};
use crate::domain::Purpose;

/// The format tag of the header line.
pub const FORMAT: &str = "accord.ledger.export.v1";

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The first line.
    Header {
        format: String,
        /// The verifier key the exporting service signs with now: for
        /// reference only; verify with keys obtained out of band.
        verifier_key: String,
        /// Every verifier key the exporting service publishes (the current
        /// one first, then keys of a changeover and retired keys), so that
        /// checkpoints signed before a key rotation can be checked; for
        /// reference only, as `verifier_key`. Absent from exports written
        /// before key rotation.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verifier_keys: Vec<String>,
    },
    /// An entry.
    Entry(Box<EntryLine>),
    /// A signed checkpoint.
    Checkpoint {
        size: u64,
        /// Microseconds since the Unix epoch.
        time: i64,
        note: String,
    },
}

/// An entry as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    pub index: i64,
    pub id: String,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    pub request_id: String,
    pub agency: String,
    pub principal: String,
    pub roles: Vec<String>,
    pub action: String,
    pub purpose: String,
    pub subject: String,
    pub records: Vec<String>,
    pub fields: Vec<String>,
    pub outcome: String,
    pub reason_code: String,
    pub reason: String,
    pub controller: String,
    pub agreements: Vec<String>,
    pub lawful_bases: Vec<String>,
    pub consent: String,
    pub break_glass: String,
    pub client_certificate: String,
    /// The W3C trace id; absent from exports written before trace ids.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    /// The leaf hash recorded in the ledger's tree, hex.
    pub leaf_hash: String,
}

impl EntryLine {
    /// The export line of `entry`, whose recorded leaf hash is `leaf`.
    pub fn new(entry: &Entry, leaf: &Hash) -> Self {
        let d = &entry.draft;
        Self {
            index: entry.index,
            id: d.id.clone(),
            time: d.time.timestamp_micros(),
            request_id: d.request_id.clone(),
            agency: d.agency.clone(),
            principal: d.principal.clone(),
            roles: d.roles.clone(),
            client_certificate: d.client_certificate.clone(),
            trace_id: d.trace_id.clone(),
            action: d.action.clone(),
            purpose: d.purpose.map_or("", Purpose::code).to_owned(),
            subject: d.subject.clone(),
            records: d.records.clone(),
            fields: d.fields.clone(),
            outcome: d.outcome.code().to_owned(),
            reason_code: d.reason_code.clone(),
            reason: d.reason.clone(),
            controller: d.controller.clone(),
            agreements: d.grounds.agreements.clone(),
            lawful_bases: d.grounds.lawful_bases.clone(),
            consent: d.grounds.consent.clone(),
            break_glass: d.grounds.break_glass.clone(),
            leaf_hash: hex::encode(leaf),
        }
    }

    /// The entry this line describes, or why it cannot be one.
    pub fn entry(&self) -> Result<Entry, LineError> {
        let purpose = if self.purpose.is_empty() {
            None
        } else {
            Some(
                Purpose::from_code(&self.purpose)
                    .ok_or_else(|| LineError::Purpose(self.purpose.clone()))?,
            )
        };
        Ok(Entry {
            index: self.index,
            draft: EntryDraft {
                id: self.id.clone(),
                time: DateTime::from_timestamp_micros(self.time)
                    .ok_or(LineError::Time(self.time))?,
                request_id: self.request_id.clone(),
                agency: self.agency.clone(),
                principal: self.principal.clone(),
                roles: self.roles.clone(),
                client_certificate: self.client_certificate.clone(),
                trace_id: self.trace_id.clone(),
                action: self.action.clone(),
                purpose,
                subject: self.subject.clone(),
                records: self.records.clone(),
                fields: self.fields.clone(),
                outcome: Outcome::from_code(&self.outcome)
                    .ok_or_else(|| LineError::Outcome(self.outcome.clone()))?,
                reason_code: self.reason_code.clone(),
                reason: self.reason.clone(),
                controller: self.controller.clone(),
                grounds: Grounds {
                    agreements: self.agreements.clone(),
                    lawful_bases: self.lawful_bases.clone(),
                    consent: self.consent.clone(),
                    break_glass: self.break_glass.clone(),
                },
            },
        })
    }
}

impl Line {
    /// The line of a published checkpoint.
    pub fn checkpoint(c: &SignedCheckpoint) -> Self {
        Line::Checkpoint {
            size: c.head.size,
            time: c.time.timestamp_micros(),
            note: c.note.clone(),
        }
    }
}

/// Why an export does not verify. Names the first thing found wrong.
/// Why an entry line cannot be an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unknown purpose {0:?}")]
    Purpose(String),
    #[error("time {0} is out of range")]
    Time(i64),
    #[error("unknown outcome {0:?}")]
    Outcome(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("line {line}: not an export line: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("line 1 is not an {FORMAT} header")]
    NoHeader,
    #[error(
        "entry {index}: its content hashes to leaf {computed} but the ledger's tree recorded {recorded} (the entry was altered, replaced or moved)"
    )]
    LeafMismatch {
        index: i64,
        computed: String,
        recorded: String,
    },
    #[error("{0}")]
    Tree(#[from] VerifyError),
    #[error("checkpoint of size {size}: {source}")]
    BadCheckpoint {
        size: u64,
        #[source]
        source: CheckpointError,
    },
    #[error(
        "checkpoint of size {size} stands after entry {after} (it must follow the entry that completes it)"
    )]
    MisplacedCheckpoint { size: u64, after: i64 },
    #[error(
        "checkpoint of size {size}: its signed root is not the root of entries 0 to {last} (an entry before it was altered, removed or added)",
        last = .size.saturating_sub(1)
    )]
    RootMismatch { size: u64 },
    #[error("the export holds no signed checkpoint")]
    NoCheckpoint,
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub entries: u64,
    pub checkpoints: u64,
    /// The largest signed checkpoint, which every entry up to its size is
    /// proved against.
    pub signed: TreeHead,
    /// Each trusted key that signed a checkpoint of the export, with how
    /// many it signed, in the order first seen.
    pub signed_by: Vec<(String, u64)>,
}

/// Checks an export line by line with only the ledger's verifier keys:
/// every leaf recomputed, the root of every checkpoint rebuilt from the
/// entries, every signature checked (so consecutive checkpoints are
/// consistent: each is a prefix of the one rebuilt after it).
#[derive(Debug)]
pub struct OfflineVerifier {
    verifier_keys: Vec<String>,
    signed_by: Vec<(String, u64)>,
    line: u64,
    rebuild: Rebuild,
    checkpoints: u64,
    signed: Option<TreeHead>,
}

impl OfflineVerifier {
    /// A verifier trusting checkpoints signed by any of `verifier_keys`.
    pub fn new<K: AsRef<str>>(verifier_keys: &[K]) -> Self {
        Self {
            verifier_keys: verifier_keys
                .iter()
                .map(|k| k.as_ref().trim().to_owned())
                .collect(),
            signed_by: Vec::new(),
            line: 0,
            rebuild: Rebuild::default(),
            checkpoints: 0,
            signed: None,
        }
    }

    /// Checks the next line of the export.
    pub fn feed(&mut self, text: &str) -> Result<(), ExportError> {
        let line: Line = serde_json::from_str(text).map_err(|e| ExportError::Malformed {
            line: self.line + 1,
            reason: e.to_string(),
        })?;
        self.check(line)
    }

    /// Checks the next line of the export, already read.
    pub fn check(&mut self, line: Line) -> Result<(), ExportError> {
        self.line += 1;
        match line {
            Line::Header { format, .. } if self.line == 1 && format == FORMAT => Ok(()),
            _ if self.line == 1 => Err(ExportError::NoHeader),
            Line::Header { .. } => Err(ExportError::Malformed {
                line: self.line,
                reason: "a second header".to_owned(),
            }),
            Line::Entry(e) => self.entry(&e),
            Line::Checkpoint { size, note, .. } => self.checkpoint(size, &note),
        }
    }

    fn entry(&mut self, line: &EntryLine) -> Result<(), ExportError> {
        let entry = line.entry().map_err(|e| ExportError::Malformed {
            line: self.line,
            reason: e.to_string(),
        })?;
        let computed = hex::encode(entry.leaf_hash());
        if computed != line.leaf_hash {
            return Err(ExportError::LeafMismatch {
                index: entry.index,
                computed,
                recorded: line.leaf_hash.clone(),
            });
        }
        self.rebuild.push(&entry)?;
        // The recorded leaves were checked one by one; the tree's interior
        // nodes are checked through the signed roots.
        self.rebuild.forget_completed();
        Ok(())
    }

    fn checkpoint(&mut self, size: u64, note: &str) -> Result<(), ExportError> {
        let opened = open_checkpoint(note, &self.verifier_keys)
            .map_err(|source| ExportError::BadCheckpoint { size, source })?;
        let checkpoint = opened.content;
        let head = self.rebuild.head();
        if checkpoint.head.size != size || size != head.size {
            return Err(ExportError::MisplacedCheckpoint {
                size: checkpoint.head.size,
                after: i64::try_from(head.size).unwrap_or(i64::MAX) - 1,
            });
        }
        if checkpoint.head.root != head.root {
            return Err(ExportError::RootMismatch { size });
        }
        self.checkpoints += 1;
        self.signed = Some(head);
        for key in opened.signed_by {
            match self.signed_by.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => self.signed_by.push((key, 1)),
            }
        }
        Ok(())
    }

    /// Ends the check: the export must have held a signed checkpoint.
    pub fn finish(self) -> Result<ExportSummary, ExportError> {
        if self.line == 0 {
            return Err(ExportError::NoHeader);
        }
        let signed = self.signed.ok_or(ExportError::NoCheckpoint)?;
        Ok(ExportSummary {
            entries: self.rebuild.head().size,
            checkpoints: self.checkpoints,
            signed,
            signed_by: self.signed_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint::{CheckpointKeys, SigningKey};
    use super::*;

    fn entry(n: i64) -> Entry {
        Entry {
            index: n,
            draft: EntryDraft {
                id: format!("e{n}"),
                time: DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap(),
                request_id: format!("r{n}"),
                // Every other entry carries a trace id (encoding v4).
                trace_id: if n % 2 == 1 {
                    format!("{n:032x}")
                } else {
                    String::new()
                },
                agency: "leeds-cc".into(),
                principal: "sw-1".into(),
                roles: vec!["social_worker".into()],
                client_certificate: String::new(),
                action: "/accord.v1.RecordService/GetRecord".into(),
                purpose: Some(Purpose::Safeguarding),
                subject: "subjects/s".into(),
                records: vec!["records/r@1".into()],
                fields: vec!["reason".into()],
                outcome: Outcome::Permitted,
                reason_code: String::new(),
                reason: String::new(),
                controller: "leeds-cc".into(),
                grounds: Grounds {
                    agreements: vec!["agreements/a@1".into()],
                    lawful_bases: vec!["uk_gdpr_art_6_1_e".into()],
                    consent: String::new(),
                    break_glass: String::new(),
                },
            },
        }
    }

    /// An export of `n` entries with checkpoints at sizes 2 and `n`.
    fn export(key: &SigningKey, n: i64) -> Vec<String> {
        export_signed(key.verifier_key(), |_, head| key.sign(head).unwrap(), n)
    }

    /// An export of `n` entries with checkpoints at sizes 2 and `n`, each
    /// signed by `sign(size, head)`.
    fn export_signed(
        verifier_key: &str,
        sign: impl Fn(u64, TreeHead) -> String,
        n: i64,
    ) -> Vec<String> {
        let mut lines = vec![
            serde_json::to_string(&Line::Header {
                format: FORMAT.into(),
                verifier_key: verifier_key.into(),
                verifier_keys: vec![],
            })
            .unwrap(),
        ];
        let mut rebuild = Rebuild::default();
        for i in 0..n {
            let e = entry(i);
            rebuild.push(&e).unwrap();
            lines.push(
                serde_json::to_string(&Line::Entry(Box::new(EntryLine::new(&e, &e.leaf_hash()))))
                    .unwrap(),
            );
            let size = (i + 1) as u64;
            if size == 2 || size == n as u64 {
                let c = SignedCheckpoint {
                    head: rebuild.head(),
                    time: DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
                    note: sign(size, rebuild.head()),
                    signed_by: vec![],
                };
                lines.push(serde_json::to_string(&Line::checkpoint(&c)).unwrap());
            }
        }
        lines
    }

    fn verify(key: &str, lines: &[String]) -> Result<ExportSummary, ExportError> {
        verify_with(&[key], lines)
    }

    fn verify_with(keys: &[&str], lines: &[String]) -> Result<ExportSummary, ExportError> {
        let mut v = OfflineVerifier::new(keys);
        for l in lines {
            v.feed(l)?;
        }
        v.finish()
    }

    #[test]
    fn an_export_verifies_with_the_public_key_alone() {
        let (key, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let lines = export(&key, 5);
        let summary = verify(key.verifier_key(), &lines).unwrap();
        assert_eq!(summary.entries, 5);
        assert_eq!(summary.checkpoints, 2);
        assert_eq!(summary.signed.size, 5);
        assert_eq!(summary.signed_by, vec![(key.verifier_key().to_owned(), 2)]);
        let (other, _) = SigningKey::generate("accord.test/ledger").unwrap();
        assert!(matches!(
            verify(other.verifier_key(), &lines),
            Err(ExportError::BadCheckpoint { size: 2, .. })
        ));
    }

    /// A key rotation within an export: the checkpoint of size 2 signed by
    /// the old key alone, the last by the new key with the old beside it
    /// (a changeover).
    #[test]
    fn an_export_across_a_key_rotation_verifies_with_every_key_that_signed() {
        let (old, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let (new, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let changeover = CheckpointKeys::new(new.clone(), vec![old.clone()], vec![]).unwrap();
        let sign = |size: u64, head: TreeHead| match size {
            2 => old.sign(head).unwrap(),
            _ => changeover.sign(head).unwrap(),
        };
        let lines = export_signed(new.verifier_key(), sign, 5);
        let both = [new.verifier_key(), old.verifier_key()];
        let summary = verify_with(&both, &lines).unwrap();
        assert_eq!(
            summary.signed_by,
            vec![
                (old.verifier_key().to_owned(), 2),
                (new.verifier_key().to_owned(), 1)
            ]
        );
        // A verifier that knows only the old key still verifies it all.
        assert!(verify(old.verifier_key(), &lines).is_ok());
        // One that knows only the new key cannot check what the old signed.
        assert!(matches!(
            verify(new.verifier_key(), &lines),
            Err(ExportError::BadCheckpoint { size: 2, .. })
        ));
    }

    #[test]
    fn changes_to_an_export_are_named() {
        let (key, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let lines = export(&key, 5);
        // Entry 3 (line 6: header, e0, e1, checkpoint 2, e2, e3) edited.
        let mut edited = lines.clone();
        edited[5] = edited[5].replace("\"permitted\"", "\"denied\"");
        assert!(matches!(
            verify(key.verifier_key(), &edited),
            Err(ExportError::LeafMismatch { index: 3, .. })
        ));
        // Edited and its leaf hash recomputed: the signed root catches it.
        let mut forged_line: EntryLine = match serde_json::from_str(&lines[5]).unwrap() {
            Line::Entry(e) => *e,
            other => panic!("{other:?}"),
        };
        forged_line.outcome = "denied".into();
        let forged_entry = forged_line.entry().unwrap();
        forged_line.leaf_hash = hex::encode(forged_entry.leaf_hash());
        let mut forged = lines.clone();
        forged[5] = serde_json::to_string(&Line::Entry(Box::new(forged_line))).unwrap();
        assert_eq!(
            verify(key.verifier_key(), &forged),
            Err(ExportError::RootMismatch { size: 5 })
        );
        // An entry removed.
        let mut removed = lines.clone();
        removed.remove(4);
        assert!(matches!(
            verify(key.verifier_key(), &removed),
            Err(ExportError::Tree(VerifyError::Gap {
                expected: 2,
                found: 3
            }))
        ));
        // A checkpoint's size changed: its signature fails.
        let mut resized = lines.clone();
        resized[3] = resized[3].replacen("\"size\":2", "\"size\":3", 1);
        resized[3] = resized[3].replacen("\\n2\\n", "\\n3\\n", 1);
        assert!(matches!(
            verify(key.verifier_key(), &resized),
            Err(ExportError::BadCheckpoint { size: 3, .. })
        ));
        // No header, or nothing signed.
        assert_eq!(
            verify(key.verifier_key(), &lines[1..]),
            Err(ExportError::NoHeader)
        );
        assert_eq!(
            verify(key.verifier_key(), &lines[..3]),
            Err(ExportError::NoCheckpoint)
        );
    }
}
