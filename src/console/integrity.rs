//! The integrity panel: the ledger's latest signed checkpoint
//! (`AuditService.GetCheckpoint`), checked by the console against the
//! verifier keys the operator publishes (never against keys the API hands
//! out), and checked to extend the last checkpoint the console verified
//! (`GetConsistencyProof`, RFC 9162 section 2.1.4.2) — so a ledger that was
//! rewritten or rolled back shows here as a failure — with the keys each
//! side knows. The browser checks the checkpoint's signature again itself.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::ledger::problem_words;
use super::{Shared, Staff, formatted, page, staff_of, to_sign_in};
use crate::api::pb;
use crate::api::pb::audit_service_client::AuditServiceClient;
use crate::ledger::checkpoint::open_checkpoint;
use crate::ledger::merkle::verify_consistency;

/// The last checkpoint the console verified: what the next must extend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Witnessed {
    pub size: u64,
    #[serde(with = "hex::serde")]
    pub root: [u8; 32],
    /// When it was first verified.
    pub first_verified: DateTime<Utc>,
    /// When a checkpoint was last verified against it (or it was first).
    pub last_verified: DateTime<Utc>,
}

/// The console's memory of the ledger, shared by every session; kept in
/// `console_state_file` when one is configured, so that a restarted
/// console goes on checking from where it was rather than trusting the
/// first checkpoint it sees again.
#[derive(Debug, Default)]
pub struct Witness {
    memory: tokio::sync::Mutex<Option<Witnessed>>,
    file: Option<PathBuf>,
}

impl Witness {
    /// The witness kept in `file` (read now if it exists), or in memory
    /// only.
    pub fn open(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let memory = match &file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read console_state_file {}", path.display())
                })?;
                Some(serde_json::from_str(&text).with_context(|| {
                    format!(
                        "console_state_file {} is not the console's state: remove it only if \
                         you know why it is damaged",
                        path.display()
                    )
                })?)
            }
            _ => None,
        };
        Ok(Self {
            memory: tokio::sync::Mutex::new(memory),
            file,
        })
    }

    /// Keeps `witnessed` in the file, if there is one: written beside it
    /// and renamed over it, so that a crash leaves the old or the new.
    fn keep(&self, witnessed: &Witnessed) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let text = serde_json::to_string(witnessed).map_err(std::io::Error::other)?;
        let partial = path.with_extension("partial");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&partial, path)
    }
}

/// A key and what is known of it.
#[derive(Debug)]
pub struct KeyView {
    pub key: String,
    /// Published by the operator (in the console's configuration).
    pub trusted: bool,
    /// Published by Accord's API.
    pub published: bool,
    /// Signed the latest checkpoint.
    pub signs_latest: bool,
}

/// What the panel shows.
#[derive(Debug, Default)]
pub struct Panel {
    pub size: String,
    pub signed_at: String,
    pub signed_by: String,
    /// The checkpoint note, for the browser to check.
    pub note: String,
    /// The console's verifier keys, space-separated, for the browser.
    pub keys: String,
    /// What the console verified, in words.
    pub verified: String,
    /// When the console last verified the ledger, in words.
    pub last_verification: String,
    /// What failed, if anything: shown as a warning to act on.
    pub failure: Option<String>,
    pub key_views: Vec<KeyView>,
}

#[derive(askama::Template)]
#[template(path = "integrity.html")]
struct IntegrityPage {
    staff: Staff,
    staff_label: String,
    panel: Panel,
    problem: Option<String>,
}

/// The checkpoint `note` opened with `keys`: its size, root and signers.
fn opened(note: &str, keys: &[String]) -> Result<(u64, [u8; 32], Vec<String>), String> {
    let opened = open_checkpoint(note, keys)
        .map_err(|e| format!("the latest checkpoint does not verify against your keys: {e}"))?;
    Ok((
        opened.content.head.size,
        opened.content.head.root,
        opened.signed_by,
    ))
}

/// Checks the latest checkpoint and its consistency with the last one
/// verified; fills the panel.
async fn check(shared: &Shared, staff: &Staff, witness: &Witness) -> Result<Panel, String> {
    let call = staff
        .call(pb::GetCheckpointRequest {
            purpose: pb::Purpose::Administration as i32,
            refresh: true,
        })
        .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
    let answer = AuditServiceClient::new(shared.accord.clone())
        .get_checkpoint(call)
        .await
        .map_err(|status| problem_words(&status))?
        .into_inner();
    let checkpoint = answer
        .checkpoint
        .ok_or_else(|| "Accord's answer had no checkpoint. Try again later.".to_owned())?;
    let trusted = &shared.verifier_keys;
    let mut panel = Panel {
        size: checkpoint.size.to_string(),
        signed_at: formatted(checkpoint.sign_time.as_ref(), "%-d %B %Y at %H:%M:%S UTC"),
        note: checkpoint.note.clone(),
        keys: trusted.join(" "),
        ..Panel::default()
    };
    let mut signers = Vec::new();
    let mut memory = witness.memory.lock().await;
    match opened(&checkpoint.note, trusted) {
        Err(failure) => panel.failure = Some(failure),
        Ok((size, root, signed_by)) => {
            panel.signed_by = signed_by.join(" and ");
            signers = signed_by;
            let now = Utc::now();
            match memory.clone() {
                None => {
                    panel.verified = format!(
                        "The console verified the signature on checkpoint {size}. It is the first \
                         checkpoint this console has seen since it started: later ones will be \
                         checked to extend it."
                    );
                    *memory = Some(Witnessed {
                        size,
                        root,
                        first_verified: now,
                        last_verified: now,
                    });
                }
                Some(before) => match consistent(shared, staff, &before, size, &root).await {
                    Ok(()) if size == before.size => {
                        panel.verified = format!(
                            "The console verified the signature on checkpoint {size}: the ledger \
                             is the one it verified on {}, unchanged.",
                            before.first_verified.format("%-d %B %Y at %H:%M:%S UTC")
                        );
                        if let Some(m) = memory.as_mut() {
                            m.last_verified = now;
                        }
                    }
                    Ok(()) => {
                        panel.verified = format!(
                            "The console verified the signature on checkpoint {size}, and that \
                             the ledger of {size} entries extends the ledger of {} entries it \
                             verified on {} without changing any of them.",
                            before.size,
                            before.first_verified.format("%-d %B %Y at %H:%M:%S UTC")
                        );
                        *memory = Some(Witnessed {
                            size,
                            root,
                            first_verified: now,
                            last_verified: now,
                        });
                    }
                    Err(failure) => panel.failure = Some(failure),
                },
            }
        }
    }
    if let Some(now) = memory.as_ref()
        && let Err(e) = witness.keep(now)
    {
        tracing::error!(error = %e, "the console cannot keep the checkpoint it verified");
        panel.verified.push_str(&format!(
            " The console could not save this ({e}): after a restart it would start again."
        ));
    }
    panel.last_verification = memory
        .as_ref()
        .map(|m| {
            m.last_verified
                .format("%-d %B %Y at %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|| "never".to_owned());
    drop(memory);
    let published = answer.verifier_keys;
    panel.key_views = trusted
        .iter()
        .chain(published.iter().filter(|k| !trusted.contains(k)))
        .map(|key| KeyView {
            key: key.clone(),
            trusted: trusted.contains(key),
            published: published.contains(key),
            signs_latest: signers.contains(key),
        })
        .collect();
    Ok(panel)
}

/// Whether the tree of `size` entries with `root` extends `before`, by a
/// consistency proof from Accord.
async fn consistent(
    shared: &Shared,
    staff: &Staff,
    before: &Witnessed,
    size: u64,
    root: &[u8; 32],
) -> Result<(), String> {
    if size <= before.size {
        return extends(before, size, root, &[]);
    }
    let signed = |n: u64| i64::try_from(n).map_err(|_| "the tree is too large".to_owned());
    let call = staff
        .call(pb::GetConsistencyProofRequest {
            purpose: pb::Purpose::Administration as i32,
            first_size: signed(before.size)?,
            second_size: signed(size)?,
        })
        .ok_or_else(|| "Sign out and sign in again.".to_owned())?;
    let proof = AuditServiceClient::new(shared.accord.clone())
        .get_consistency_proof(call)
        .await
        .map_err(|status| problem_words(&status))?
        .into_inner();
    extends(before, size, root, &proof.hashes)
}

/// Whether the tree of `size` entries with `root` extends `before`: the
/// same tree, or a larger one whose consistency `proof` (RFC 9162 section
/// 2.1.4.2) holds; in words, what was found when it does not.
fn extends(
    before: &Witnessed,
    size: u64,
    root: &[u8; 32],
    proof: &[Vec<u8>],
) -> Result<(), String> {
    if size < before.size {
        return Err(format!(
            "the ledger holds {size} entries, fewer than the {} this console verified before: \
             entries have been removed",
            before.size
        ));
    }
    if size == before.size {
        return if *root == before.root {
            Ok(())
        } else {
            Err(format!(
                "the ledger's {size} entries are not the ones this console verified before: \
                 entries have been changed"
            ))
        };
    }
    verify_consistency(before.size, size, proof, &before.root, root).map_err(|e| {
        format!(
            "the ledger of {size} entries does not extend the ledger of {} entries this console \
             verified before ({e}): entries have been changed",
            before.size
        )
    })
}

/// The integrity panel.
pub async fn panel(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(staff) = staff_of(&shared, &headers) else {
        return to_sign_in();
    };
    let (panel, problem) = match check(&shared, &staff, &shared.witness).await {
        Ok(panel) => {
            if let Some(failure) = &panel.failure {
                tracing::error!(failure, "the console's integrity check failed");
            }
            (panel, None)
        }
        Err(problem) => (Panel::default(), Some(problem)),
    };
    page(&IntegrityPage {
        staff_label: staff.label(),
        staff,
        panel,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::merkle::{consistency_proof, leaf_hash, root};

    fn witnessed(leaves: &[[u8; 32]]) -> Witnessed {
        Witnessed {
            size: leaves.len() as u64,
            root: root(leaves),
            first_verified: Utc::now(),
            last_verified: Utc::now(),
        }
    }

    #[test]
    fn a_ledger_that_grew_extends_one_that_was_changed_or_cut_does_not() {
        let leaves: Vec<[u8; 32]> = (0..13u8).map(|i| leaf_hash(&[i])).collect();
        let before = witnessed(&leaves[..7]);
        let proof: Vec<Vec<u8>> = consistency_proof(&leaves, 7)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        assert_eq!(extends(&before, 13, &root(&leaves), &proof), Ok(()));
        assert_eq!(extends(&before, 7, &before.root, &[]), Ok(()));

        // One of the first seven entries changed: the grown tree no longer
        // extends the one verified, and the same size has another root.
        let mut changed = leaves.clone();
        changed[3] = leaf_hash(b"rewritten");
        let forged: Vec<Vec<u8>> = consistency_proof(&changed, 7)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        let failure = extends(&before, 13, &root(&changed), &forged).unwrap_err();
        assert!(failure.contains("entries have been changed"), "{failure}");
        let failure = extends(&before, 7, &root(&changed[..7]), &[]).unwrap_err();
        assert!(failure.contains("entries have been changed"), "{failure}");
        // Cut back: entries removed.
        let failure = extends(&before, 5, &root(&leaves[..5]), &[]).unwrap_err();
        assert!(failure.contains("entries have been removed"), "{failure}");
    }

    #[test]
    fn what_was_verified_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let witness = Witness::open(Some(path.clone())).unwrap();
        let seen = witnessed(&[leaf_hash(b"a"), leaf_hash(b"b")]);
        witness.keep(&seen).unwrap();
        let reopened = Witness::open(Some(path.clone())).unwrap();
        assert_eq!(reopened.memory.into_inner(), Some(seen));
        std::fs::write(&path, "not json").unwrap();
        let damaged = Witness::open(Some(path)).unwrap_err();
        assert!(
            format!("{damaged:#}").contains("is not the console's state"),
            "{damaged:#}"
        );
        assert_eq!(Witness::open(None).unwrap().memory.into_inner(), None);
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_does_not_open() {
        use crate::ledger::TreeHead;
        use crate::ledger::checkpoint::SigningKey;
        let (ours, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let (theirs, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let head = TreeHead {
            size: 3,
            root: [7; 32],
        };
        let note = ours.sign(head).unwrap();
        let (size, root, signed_by) = opened(&note, &[ours.verifier_key().to_owned()]).unwrap();
        assert_eq!((size, root), (3, [7; 32]));
        assert_eq!(signed_by, [ours.verifier_key()]);
        let failure = opened(&note, &[theirs.verifier_key().to_owned()]).unwrap_err();
        assert!(
            failure.contains("does not verify against your keys"),
            "{failure}"
        );
    }
}
