//! Signed checkpoints: the ledger's tree size and root hash in the C2SP
//! `tlog-checkpoint` text format, signed with Ed25519 as a C2SP
//! `signed-note` (the format of Go's checksum database, Sigstore and the
//! static-ct logs), so that off-the-shelf transparency tooling can read
//! them.
//!
//! ```text
//! accord.example.gov.uk/ledger
//! 1234
//! 8bH3…base64 root hash…=
//!
//! — accord.example.gov.uk/ledger Az3f…base64 key id and signature…
//! ```
//!
//! The key name is the checkpoint's origin. Keys are written in the note
//! formats: `PRIVATE+KEY+{name}+{id}+{base64}` to sign and
//! `{name}+{id}+{base64}` to verify.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};

use super::{Hash, TreeHead};

/// Why a key, note or checkpoint is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the signing key is not a note signing key (PRIVATE+KEY+name+id+key): {0}")]
    BadSigningKey(String),
    #[error("the verifier key is not a note verifier key (name+id+key): {0}")]
    BadVerifierKey(String),
    #[error("the origin {0:?} cannot name a key (it must be non-empty, without spaces or '+')")]
    BadOrigin(String),
    #[error("the note is malformed or its signature does not verify: {0}")]
    BadNote(String),
    #[error("the note is not a checkpoint: {0}")]
    NotACheckpoint(&'static str),
    #[error("the checkpoint's origin {found:?} is not the key's name {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// A tree head as of a checkpoint, for the log named `origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub head: TreeHead,
}

impl Checkpoint {
    /// The checkpoint's text: origin, size and base64 root hash, one per
    /// line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.head.size,
            BASE64.encode(self.head.root)
        )
    }

    /// Reads a checkpoint's text (extension lines after the root hash are
    /// allowed and ignored).
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let body = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::NotACheckpoint(
                "it does not end in a newline",
            ))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::NotACheckpoint("its origin line is empty"))?;
        let size = lines
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (*s == "0" || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::NotACheckpoint(
                "its second line is not a tree size",
            ))?;
        let root: Hash = lines
            .next()
            .and_then(|r| BASE64.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or(CheckpointError::NotACheckpoint(
                "its third line is not a base64 SHA-256 hash",
            ))?;
        if lines.any(str::is_empty) {
            return Err(CheckpointError::NotACheckpoint("it has an empty line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            head: TreeHead { size, root },
        })
    }
}

/// A published checkpoint: the tree head, when it was signed, and the
/// signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub head: TreeHead,
    pub time: chrono::DateTime<chrono::Utc>,
    pub note: String,
    /// The published verifier keys whose signatures on the note verify,
    /// in the note's order: found by the service when it hands a
    /// checkpoint out; empty as stored.
    pub signed_by: Vec<String>,
}

impl SignedCheckpoint {
    /// The origin line of the note.
    pub fn origin(&self) -> &str {
        self.note.split('\n').next().unwrap_or_default()
    }
}

/// The key that signs checkpoints.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    signer: StandardSigner,
    verifier_key: String,
    /// The private Ed25519 seed, from which other secrets are derived.
    seed: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key named `origin`, with its private form to store.
    pub fn generate(origin: &str) -> Result<(Self, String), CheckpointError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(CheckpointError::BadOrigin(origin.to_owned()));
        }
        let (skey, _) = signed_note::generate_key(&mut rand_core::OsRng, origin);
        Ok((Self::parse(&skey)?, skey))
    }

    /// Reads a key in the note private key format.
    pub fn parse(skey: &str) -> Result<Self, CheckpointError> {
        let skey = skey.trim();
        let bad = |why: &str| CheckpointError::BadSigningKey(why.to_owned());
        let signer = StandardSigner::new(skey).map_err(|e| bad(&e.to_string()))?;
        // The verifier key is derived from the private key: its last field
        // is the algorithm byte (1, Ed25519) and the 32-byte seed.
        let parts: Vec<&str> = skey.splitn(5, '+').collect();
        let [_, _, name, _, key] = parts.as_slice() else {
            return Err(bad("it does not have five '+'-separated fields"));
        };
        let key = BASE64.decode(key).map_err(|e| bad(&e.to_string()))?;
        let seed: [u8; 32] = match key.split_first() {
            Some((1, seed)) => seed
                .try_into()
                .map_err(|_| bad("an Ed25519 key has 32 bytes"))?,
            _ => return Err(bad("only Ed25519 keys are supported")),
        };
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        Ok(Self {
            name: (*name).to_owned(),
            signer,
            verifier_key: signed_note::new_ed25519_verifier_key(name, &public),
            seed,
        })
    }

    /// A 32-byte secret for `purpose` (e.g. sealing page tokens), derived
    /// from the private key: every process sharing the key derives the
    /// same one, and it reveals nothing of the key or its signatures.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"accord derived secret\0");
        hash.update(purpose.as_bytes());
        hash.update([0]);
        hash.update(self.seed);
        hash.finalize().into()
    }

    /// The key's name: the origin of the checkpoints it signs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, in the note verifier key format, to hand to
    /// auditors.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The signed note of `head`, signed by this key alone.
    pub fn sign(&self, head: TreeHead) -> Result<String, CheckpointError> {
        sign_note(&self.name, head, &[self])
    }
}

/// The note of the checkpoint of `head` for `origin`, signed by each of
/// `keys` in turn.
fn sign_note(
    origin: &str,
    head: TreeHead,
    keys: &[&SigningKey],
) -> Result<String, CheckpointError> {
    let body = Checkpoint {
        origin: origin.to_owned(),
        head,
    }
    .body();
    let mut note =
        Note::new(body.as_bytes(), &[]).map_err(|e| CheckpointError::BadNote(e.to_string()))?;
    let signers: Vec<&dyn signed_note::Signer> = keys
        .iter()
        .map(|k| &k.signer as &dyn signed_note::Signer)
        .collect();
    note.add_sigs(&signers)
        .map_err(|e| CheckpointError::BadNote(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::BadNote(e.to_string()))
}

/// Every key of a ledger's checkpoints: the current key, which signs each
/// new checkpoint; outgoing keys, which sign beside it during a changeover
/// (a C2SP note may carry several signatures, so verifiers that know only
/// an outgoing key keep verifying until they have the new one); and the
/// verifier keys of retired keys, which signed earlier checkpoints and are
/// still published so that those verify. See `docs/ledger.md`.
#[derive(Debug, Clone)]
pub struct CheckpointKeys {
    current: SigningKey,
    outgoing: Vec<SigningKey>,
    retired: Vec<String>,
}

impl CheckpointKeys {
    /// The keys of a ledger that has only ever had `current`.
    pub fn single(current: SigningKey) -> Self {
        Self {
            current,
            outgoing: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The key set; every key must be named for the same origin and none
    /// may appear twice.
    pub fn new(
        current: SigningKey,
        outgoing: Vec<SigningKey>,
        retired: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        let keys = Self {
            current,
            outgoing,
            retired: retired.iter().map(|k| k.trim().to_owned()).collect(),
        };
        let origin = keys.current.name();
        let mut seen = std::collections::HashSet::new();
        for key in keys.verifier_keys() {
            StandardVerifier::new(&key)
                .map_err(|e| CheckpointError::BadVerifierKey(format!("{key:?}: {e}")))?;
            let name = key.split('+').next().unwrap_or_default();
            if name != origin {
                return Err(CheckpointError::WrongOrigin {
                    expected: origin.to_owned(),
                    found: name.to_owned(),
                });
            }
            if !seen.insert(key.clone()) {
                return Err(CheckpointError::BadVerifierKey(format!(
                    "{key:?} is given twice"
                )));
            }
        }
        Ok(keys)
    }

    /// The key that signs new checkpoints (and from which secrets are
    /// derived).
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// Every published verifier key: the current key's first, then the
    /// outgoing keys', then the retired ones.
    pub fn verifier_keys(&self) -> Vec<String> {
        std::iter::once(self.current.verifier_key().to_owned())
            .chain(self.outgoing.iter().map(|k| k.verifier_key().to_owned()))
            .chain(self.retired.iter().cloned())
            .collect()
    }

    /// The signed note of `head`: signed by the current key, then by each
    /// outgoing key.
    pub fn sign(&self, head: TreeHead) -> Result<String, CheckpointError> {
        let keys: Vec<&SigningKey> = std::iter::once(&self.current)
            .chain(&self.outgoing)
            .collect();
        sign_note(self.current.name(), head, &keys)
    }
}

/// A note's text and the verifier keys, of those given, that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<T> {
    pub content: T,
    /// Each given key with a valid signature on the note, in the note's
    /// order.
    pub signed_by: Vec<String>,
}

/// The text of `note` once it carries a valid signature by at least one
/// of `verifier_keys`; every signature by one of them must be valid, and
/// signatures by other keys are ignored.
pub fn open_note<K: AsRef<str>>(
    note: &str,
    verifier_keys: &[K],
) -> Result<Opened<String>, CheckpointError> {
    let mut verifiers: Vec<Box<dyn signed_note::Verifier>> = Vec::new();
    let mut named = Vec::new();
    for key in verifier_keys {
        let key = key.as_ref().trim();
        let verifier = StandardVerifier::new(key)
            .map_err(|e| CheckpointError::BadVerifierKey(e.to_string()))?;
        named.push((
            (verifier.name().to_owned(), verifier.key_id()),
            key.to_owned(),
        ));
        verifiers.push(Box::new(verifier));
    }
    let note =
        Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::BadNote(e.to_string()))?;
    let (verified, _) = note
        .verify(&VerifierList::new(verifiers))
        .map_err(|e| CheckpointError::BadNote(e.to_string()))?;
    let signed_by = verified
        .iter()
        .filter_map(|sig| {
            named
                .iter()
                .find(|((name, id), _)| name == sig.name() && *id == sig.id())
                .map(|(_, key)| key.clone())
        })
        .collect();
    let content = String::from_utf8(note.text().to_vec())
        .map_err(|e| CheckpointError::BadNote(e.to_string()))?;
    Ok(Opened { content, signed_by })
}

/// The checkpoint in `note` once it carries a valid signature by one of
/// `verifier_keys` (see [`open_note`]) and its origin is the signing key's
/// name.
pub fn open_checkpoint<K: AsRef<str>>(
    note: &str,
    verifier_keys: &[K],
) -> Result<Opened<Checkpoint>, CheckpointError> {
    let opened = open_note(note, verifier_keys)?;
    let checkpoint = Checkpoint::parse(&opened.content)?;
    for key in &opened.signed_by {
        let key_name = key.split('+').next().unwrap_or_default();
        if checkpoint.origin != key_name {
            return Err(CheckpointError::WrongOrigin {
                expected: key_name.to_owned(),
                found: checkpoint.origin,
            });
        }
    }
    Ok(Opened {
        content: checkpoint,
        signed_by: opened.signed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64) -> TreeHead {
        TreeHead {
            size,
            root: [size as u8; 32],
        }
    }

    #[test]
    fn signed_checkpoints_verify_and_tampering_fails() {
        let (key, skey) = SigningKey::generate("accord.test/ledger").unwrap();
        assert!(skey.starts_with("PRIVATE+KEY+accord.test/ledger+"));
        assert!(!format!("{key:?}").contains(&skey));
        let reloaded = SigningKey::parse(&skey).unwrap();
        assert_eq!(reloaded.verifier_key(), key.verifier_key());

        let note = key.sign(head(42)).unwrap();
        let opened = open_checkpoint(&note, &[key.verifier_key()]).unwrap();
        assert_eq!(opened.signed_by, vec![key.verifier_key().to_owned()]);
        let opened = opened.content;
        assert_eq!(opened.head, head(42));
        assert_eq!(opened.origin, "accord.test/ledger");
        assert!(note.contains("\n\n\u{2014} accord.test/ledger "), "{note}");

        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            open_checkpoint(&forged, &[key.verifier_key()]),
            Err(CheckpointError::BadNote(_))
        ));
        let (other, _) = SigningKey::generate("accord.test/ledger").unwrap();
        assert!(open_checkpoint(&note, &[other.verifier_key()]).is_err());
        assert!(matches!(
            SigningKey::generate("two words"),
            Err(CheckpointError::BadOrigin(_))
        ));
    }

    /// The example of the signed-note format published with its keys in
    /// the documentation of Go's `golang.org/x/mod/sumdb/note` package, the
    /// reference implementation of the C2SP signed-note specification.
    #[test]
    fn the_published_signed_note_example_verifies() {
        const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        const SKEY: &str =
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                            then you don't know what your problem is.\n";
        let note = format!(
            "{TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        assert_eq!(open_note(&note, &[VKEY]).unwrap().content, TEXT);
        // The private key yields the published verifier key.
        assert_eq!(SigningKey::parse(SKEY).unwrap().verifier_key(), VKEY);
        // One changed character of the text breaks the signature.
        let altered = note.replacen("answer", "Answer", 1);
        assert!(open_note(&altered, &[VKEY]).is_err());
    }

    #[test]
    fn a_changeover_note_carries_both_signatures_and_keys_must_agree() {
        let (old, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let (new, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let keys = CheckpointKeys::new(
            new.clone(),
            vec![old.clone()],
            vec![
                "accord.test/ledger+01234567+AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh"
                    .to_owned(),
            ],
        );
        // A malformed retired key is refused.
        assert!(matches!(keys, Err(CheckpointError::BadVerifierKey(_))));
        let (retired, _) = SigningKey::generate("accord.test/ledger").unwrap();
        let keys = CheckpointKeys::new(
            new.clone(),
            vec![old.clone()],
            vec![retired.verifier_key().to_owned()],
        )
        .unwrap();
        assert_eq!(
            keys.verifier_keys(),
            vec![
                new.verifier_key().to_owned(),
                old.verifier_key().to_owned(),
                retired.verifier_key().to_owned()
            ]
        );
        let note = keys.sign(head(7)).unwrap();
        assert_eq!(
            note.matches("\n\u{2014} accord.test/ledger ").count(),
            2,
            "{note}"
        );
        let all = open_checkpoint(&note, &keys.verifier_keys()).unwrap();
        assert_eq!(
            all.signed_by,
            vec![new.verifier_key().to_owned(), old.verifier_key().to_owned()]
        );
        for only in [&new, &old] {
            let opened = open_checkpoint(&note, &[only.verifier_key()]).unwrap();
            assert_eq!(opened.content.head, head(7));
        }
        assert!(open_checkpoint(&note, &[retired.verifier_key()]).is_err());
        // Every key must be named for the ledger, and none given twice.
        let (elsewhere, _) = SigningKey::generate("other.test/ledger").unwrap();
        assert!(matches!(
            CheckpointKeys::new(new.clone(), vec![elsewhere], vec![]),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        assert!(CheckpointKeys::new(new.clone(), vec![new.clone()], vec![]).is_err());
    }

    #[test]
    fn checkpoint_text_is_strict() {
        let good = "example.com/log\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        assert_eq!(Checkpoint::parse(good).unwrap().head.size, 10);
        let with_extension = format!("{good}extra line\n");
        assert!(Checkpoint::parse(&with_extension).is_ok());
        for bad in [
            "example.com/log\n010\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "example.com/log\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "example.com/log\n10\nAAAA\n",
            "example.com/log\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
