//! Storage: one trait, one SQL implementation with a dialect per backend
//! (embedded SQLite by default, PostgreSQL for production), one conformance
//! suite (`tests/storage.rs`) run against both.
//!
//! Every change goes through [`Store::commit`], which applies the writes and
//! appends their ledger entry in one transaction: there is no way to write
//! data without its audit entry.
//!
//! Layout: one module per aggregate (`agencies`, `catalog`, `subjects`,
//! `records`, `agreements`, `consents`, `credentials`, `alerts`, `meta`,
//! `events` for the outbox of change notifications, `subscriptions`,
//! `reviews`, and
//! `ledger` for the
//! entries, tree nodes, head and checkpoints) holds that
//! aggregate's SQL, both its reads and the writes the write path applies.
//! `write` is the write path itself (the sequencer batching commits into one
//! transaction, dispatching each write to its aggregate); `sql` is the
//! connection and the [`Store`] implementation over them; `codec` and `query`
//! are the shared column conversions and the query builder; `simple` writes
//! the sequencer's statements as one simple query on PostgreSQL; `proofs` answers
//! inclusion, consistency and verification over any [`Store`].

mod agencies;
mod agreements;
mod alerts;
mod catalog;
mod codec;
mod consents;
mod credentials;
mod duplicates;
mod events;
mod expect;
mod ledger;
mod lite;
mod merges;
mod meta;
mod notify;
mod proofs;
mod query;
mod records;
mod reviews;
mod simple;
mod sql;
mod subjects;
mod subscriptions;
mod write;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::agreement::{Agreement, AgreementId};
use crate::domain::consent::{Consent, ConsentId, Withdrawal};
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, TokenIssuer, TokenIssuerId,
};
use crate::domain::duplicate::{
    DuplicateResolution, DuplicateState, PossibleDuplicate, PossibleDuplicateId,
};
use crate::domain::event::{Event, EventPosition, Subscription, SubscriptionId};
use crate::domain::merge::{Holdings, StoredSeal, SubjectMerge, SubjectMergeId};
use crate::domain::review::{Review, ReviewAcknowledgement, ReviewId};
use crate::domain::{
    Acknowledgement, Agency, AgencyCode, Alert, AlertId, Identifier, Record, RecordClass,
    RecordClassId, RecordId, Subject, SubjectId,
};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::merkle::NodeId;
use crate::ledger::{DisclosureCount, Entry, EntryDraft, Hash, TreeHead};

pub use crate::ledger::EntryFilter;
pub use expect::Expect;
pub use proofs::{
    ExportCursor, LedgerCheckError, ProveError, all_entries, consistency_proof, inclusion_proof,
    inclusion_proofs, root_at, verify_ledger,
};
pub use sql::{
    Backend, DEFAULT_MAX_CONNECTIONS, DEFAULT_WAIT, PoolSettings, PoolState, SQLITE_FILE, SqlStore,
    connect, connect_waiting, connect_with, install_drivers, sqlite_url,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value (code, id, identifier) is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller's etag is not the current one.
    #[error("the etag {given:?} is not the current one ({current:?})")]
    StaleEtag { given: String, current: String },
    /// A concurrent change got there first.
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached or refused the operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite database refused the operation (through the ledger
    /// writer's own connection: see `lite`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be read back as a domain value.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The batch this commit belonged to could not be committed.
    #[error("the commit failed: {0}")]
    Batch(String),
    /// The database could not be reached at all (no connection within the
    /// wait, or the connection broke).
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// The database URL is not one Accord can use.
    #[error("{0}")]
    BadUrl(String),
    /// What the call's decision relied on changed before its entry could
    /// commit; nothing was written. The call may be decided again.
    #[error("decided on state that has changed since: {0}")]
    Stale(String),
}

impl StoreError {
    /// Whether the database could not be reached at all, as during an
    /// outage (rather than refusing one operation).
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Database(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }

    /// What each job of a batch that failed with this error is told.
    pub(crate) fn for_job(&self) -> Self {
        if self.is_outage() {
            Self::Unreachable(self.to_string())
        } else {
            Self::Batch(self.to_string())
        }
    }
}

/// One change, applied by [`Store::commit`] together with its ledger entry.
#[derive(Debug, Clone)]
pub enum Write {
    /// Registers a new agency.
    InsertAgency(Agency),
    /// Replaces an agency's mutable fields if its etag is still `expected_etag`.
    UpdateAgency {
        agency: Agency,
        expected_etag: String,
    },
    /// Adds a record class.
    InsertRecordClass(RecordClass),
    /// Before a subject filed under `keys` is registered: stale unless
    /// `population` subjects (as [`Store::block_population`] counted them
    /// before the registration was screened for duplicates) are filed
    /// under them still, so that two registrations of one person decided
    /// side by side cannot both miss each other.
    CheckBlockPopulation { keys: Vec<String>, population: u64 },
    /// Registers a subject with its identifiers.
    InsertSubject(Subject),
    /// Adds an identifier to a subject.
    LinkIdentifier {
        subject: SubjectId,
        identifier: Identifier,
        linked_by: AgencyCode,
        time: DateTime<Utc>,
    },
    /// Removes an identifier from a subject.
    UnlinkIdentifier {
        subject: SubjectId,
        identifier: Identifier,
        unlinked_by: AgencyCode,
    },
    /// Creates a record at version 1.
    InsertRecord { record: Record, written_by: String },
    /// Adds a new version if the current etag is still `expected_etag`.
    UpdateRecord {
        record: Record,
        expected_etag: String,
        written_by: String,
    },
    /// Proposes an agreement version (a new agreement, or new terms).
    InsertAgreement(Agreement),
    /// Records a lifecycle step of an agreement version that is still at
    /// `expected_revision`.
    UpdateAgreement {
        agreement: Agreement,
        expected_revision: i64,
    },
    /// Seals `record` (or, if `None`, all of `agency`'s records about
    /// `subject`) to its controller `agency`.
    Seal {
        agency: AgencyCode,
        subject: SubjectId,
        record: Option<RecordId>,
        reason: String,
        sealed_by: String,
        time: DateTime<Utc>,
    },
    /// Removes a seal.
    Unseal {
        agency: AgencyCode,
        subject: SubjectId,
        record: Option<RecordId>,
    },
    /// Registers a certificate identity of an agency.
    InsertCertificateIdentity(CertificateIdentity),
    /// Revokes a certificate identity.
    RevokeCertificateIdentity {
        id: CertificateIdentityId,
        time: DateTime<Utc>,
    },
    /// Registers a token issuer of an agency.
    InsertTokenIssuer(TokenIssuer),
    /// Removes a token issuer.
    RemoveTokenIssuer(TokenIssuerId),
    /// Records a consent or objection.
    InsertConsent(Consent),
    /// Withdraws `consent` (as it stands, not withdrawn) if it is not
    /// withdrawn yet.
    WithdrawConsent {
        consent: Consent,
        withdrawal: Withdrawal,
    },
    /// Sets a service metadata value.
    SetMeta { key: String, value: String },
    /// Raises an alert; its `entry_index` is set to the index of the entry
    /// committed with it.
    RaiseAlert(Alert),
    /// Records that an alert was looked at (once: a second acknowledgement
    /// leaves the first in place).
    AcknowledgeAlert {
        id: AlertId,
        acknowledgement: Acknowledgement,
    },
    /// Subscribes an agency to events; its `entry_index` is set to the
    /// index of the entry committed with it.
    InsertSubscription(Subscription),
    /// Deletes a subscription that is not deleted yet.
    DeleteSubscription {
        id: SubscriptionId,
        deleted_by: String,
        time: DateTime<Utc>,
    },
    /// Asks an agency to review what it received (once per change and
    /// agency: a second is refused as already existing).
    InsertReview(Review),
    /// Records the answer to a review, once.
    AcknowledgeReview {
        id: ReviewId,
        acknowledgement: ReviewAcknowledgement,
    },
    /// Records that a review's lateness was alerted, once.
    MarkReviewOverdue(ReviewId),
    /// Notes, once, that an agreement version's period has ended.
    NoteAgreementExpired(Agreement),
    /// Raises a possible duplicate, unless its pair was raised before.
    InsertPossibleDuplicate(PossibleDuplicate),
    /// Resolves an open possible duplicate, once.
    ResolvePossibleDuplicate {
        id: PossibleDuplicateId,
        resolution: DuplicateResolution,
    },
    /// Merges one subject into another, moving exactly what the merge
    /// lists (see [`merges::merge`]); stale if that is not what would move.
    MergeSubjects(SubjectMerge),
    /// Undoes a standing merge (as read, with its unmerge), moving back
    /// exactly what the unmerge lists; stale if that is not what would.
    UnmergeSubjects(SubjectMerge),
}

/// The agencies tied to a subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectTies {
    /// The agency that registered it, those that linked identifiers to it
    /// and those that control records about it.
    pub connected: Vec<AgencyCode>,
    /// The agencies that sealed all their records about it.
    pub sealed_by: Vec<AgencyCode>,
}

/// Who linked an identifier to a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierLink {
    pub subject: SubjectId,
    pub linked_by: AgencyCode,
}

/// An identifier of a subject, with who linked it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentifier {
    pub identifier: Identifier,
    pub linked_by: AgencyCode,
    pub link_time: DateTime<Utc>,
}

/// Counters that grow with every change to agreements and to consents:
/// what a process compares to know whether its cached policies are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyVersions {
    pub agreements: i64,
    pub consents: i64,
}

/// A page position: the key of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After<K> {
    Start,
    Key(K),
}

/// The receipt that a call's ledger entry is durable. Only the ledger
/// writer makes one, and only once the transaction holding the entry (and
/// the call's writes) has committed: a response that discloses anything is
/// built from one of these, so nothing can be answered without its entry.
///
/// Nothing outside the store can make one:
///
/// ```compile_fail
/// fn forge(entry: accord::ledger::Entry) -> accord::store::Committed {
///     accord::store::Committed { entry }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Committed {
    entry: Entry,
}

impl Committed {
    /// The entry that was committed.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The entry that was committed, taken out of the receipt.
    pub fn into_entry(self) -> Entry {
        self.entry
    }
}

/// The storage operations Accord needs.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies `writes` and appends the ledger entry `draft` in one
    /// transaction; returns the receipt holding the sealed entry. Either all
    /// of it commits durably, or none of it.
    async fn commit(&self, writes: Vec<Write>, draft: EntryDraft) -> Result<Committed, StoreError> {
        self.commit_expecting(writes, Vec::new(), draft).await
    }

    /// As [`Store::commit`], if every one of `expects` still holds when the
    /// batch holding it commits; otherwise nothing is written and the
    /// answer is [`StoreError::Stale`].
    async fn commit_expecting(
        &self,
        writes: Vec<Write>,
        expects: Vec<Expect>,
        draft: EntryDraft,
    ) -> Result<Committed, StoreError>;

    /// One agency.
    async fn agency(&self, code: &AgencyCode) -> Result<Option<Agency>, StoreError>;
    /// Agencies in code order, after `after`.
    async fn agencies(&self, after: After<String>, limit: u32) -> Result<Vec<Agency>, StoreError>;

    /// One record class.
    async fn record_class(&self, id: &RecordClassId) -> Result<Option<RecordClass>, StoreError>;
    /// Record classes in id order, after `after`.
    async fn record_classes(
        &self,
        after: After<String>,
        limit: u32,
    ) -> Result<Vec<RecordClass>, StoreError>;

    /// One subject with its identifiers.
    async fn subject(&self, id: &SubjectId) -> Result<Option<Subject>, StoreError>;
    /// An agency's certificate identities, revoked ones included, oldest
    /// first.
    async fn certificate_identities(
        &self,
        agency: &AgencyCode,
    ) -> Result<Vec<CertificateIdentity>, StoreError>;
    /// The certificate identities, revoked ones included, registered with
    /// any of `matchers` (at most one each).
    async fn certificate_identities_matching(
        &self,
        matchers: &[CertificateMatch],
    ) -> Result<Vec<CertificateIdentity>, StoreError>;

    /// An agency's token issuers, oldest first.
    async fn token_issuers(&self, agency: &AgencyCode) -> Result<Vec<TokenIssuer>, StoreError>;
    /// The token issuer whose tokens carry `iss`, if any.
    async fn token_issuer(&self, iss: &str) -> Result<Option<TokenIssuer>, StoreError>;
    /// A counter that advances with every change to certificate identities
    /// and token issuers, in any process.
    async fn registry_version(&self) -> Result<i64, StoreError>;

    /// The agencies tied to a subject (and to the subjects merged into it).
    async fn subject_ties(&self, subject: &SubjectId) -> Result<SubjectTies, StoreError>;
    /// The subjects merged into `subject`, directly or through others,
    /// while their merges stand, in the order they were registered.
    async fn merged_subjects(&self, subject: &SubjectId) -> Result<Vec<Subject>, StoreError>;
    /// A subject's identifiers with who linked each and when, in the order
    /// they were linked.
    async fn linked_identifiers(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<LinkedIdentifier>, StoreError>;
    /// Who holds `identifier`, and which agency linked it.
    async fn identifier_link(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<IdentifierLink>, StoreError>;
    /// Subjects filed under any of the blocking `keys`
    /// ([`crate::matching::blocking`]), with their identifiers, at most
    /// `limit`: the candidates of a match.
    async fn match_candidates(
        &self,
        keys: &[String],
        limit: u32,
    ) -> Result<Vec<Subject>, StoreError>;
    /// How many subjects are filed under any of the blocking `keys`.
    async fn block_population(&self, keys: &[String]) -> Result<u64, StoreError>;

    /// A record at `version`, or its latest version.
    async fn record(
        &self,
        id: &RecordId,
        version: Option<i64>,
    ) -> Result<Option<Record>, StoreError>;
    /// The latest versions of a subject's records, whoever controls them,
    /// newest first (by record id within one instant).
    async fn records_of_subject(
        &self,
        subject: &SubjectId,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;

    /// Ledger entries in index order, after `after`, matching `filter`.
    async fn entries(
        &self,
        filter: &EntryFilter,
        after: After<i64>,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError>;
    /// How many ledger entries match `filter`.
    async fn count_entries(&self, filter: &EntryFilter) -> Result<u64, StoreError>;
    /// The disclosures recorded under any of `keys` (see
    /// [`Entry::disclosure_keys`]) among the entries `filter` matches,
    /// counted by calling agency, purpose and roles.
    async fn disclosure_counts(
        &self,
        keys: &[String],
        filter: &EntryFilter,
    ) -> Result<Vec<DisclosureCount>, StoreError>;
    /// The recorded head of the ledger's tree.
    async fn tree_head(&self) -> Result<TreeHead, StoreError>;
    /// The stored hashes of these tree nodes (those that exist).
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError>;

    /// Stores a checkpoint unless one of its size exists; says whether it
    /// was stored.
    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<bool, StoreError>;
    /// The checkpoint of the largest tree size.
    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError>;
    /// The checkpoint of tree size `size`.
    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError>;
    /// The checkpoints of sizes `min..=max`, smallest first.
    async fn checkpoints(&self, min: u64, max: u64) -> Result<Vec<SignedCheckpoint>, StoreError>;

    /// One alert.
    async fn alert(&self, id: &AlertId) -> Result<Option<Alert>, StoreError>;
    /// The alerts raised to `recipient`, oldest first (by id within one
    /// instant), after `after`; only those not yet acknowledged if
    /// `unacknowledged_only`.
    async fn alerts(
        &self,
        recipient: &AgencyCode,
        unacknowledged_only: bool,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError>;

    /// An agreement at `version`, or its latest version.
    async fn agreement(
        &self,
        id: &AgreementId,
        version: Option<i64>,
    ) -> Result<Option<Agreement>, StoreError>;
    /// Every version of an agreement, oldest first.
    async fn agreement_versions(&self, id: &AgreementId) -> Result<Vec<Agreement>, StoreError>;
    /// The latest version of each agreement `agency` is a party to, in id
    /// order, after `after`.
    async fn agreements_of(
        &self,
        agency: &AgencyCode,
        after: After<String>,
        limit: u32,
    ) -> Result<Vec<Agreement>, StoreError>;
    /// Every agreement version that is not superseded: what decisions are
    /// made from.
    async fn live_agreements(&self) -> Result<Vec<Agreement>, StoreError>;
    /// One consent.
    async fn consent(&self, id: &ConsentId) -> Result<Option<Consent>, StoreError>;
    /// A subject's consents that concern `agency` (recorded by it, or naming
    /// it or every agency as recipient), newest first, after `after`.
    async fn consents_of(
        &self,
        subject: &SubjectId,
        agency: &AgencyCode,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Consent>, StoreError>;
    /// Every consent changed (recorded or withdrawn) after counter value
    /// `since` (all of them for `since < 1`).
    async fn consents_changed(&self, since: i64) -> Result<Vec<Consent>, StoreError>;
    /// The current policy counters.
    async fn policy_versions(&self) -> Result<PolicyVersions, StoreError>;

    /// A service metadata value.
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Events in commit order after `after`, at most `limit`.
    async fn events(&self, after: EventPosition, limit: u32) -> Result<Vec<Event>, StoreError>;
    /// A counter that grows when events may have been committed, by this
    /// process or (PostgreSQL) any other on the database: a wake-up for
    /// those following events, who read them from storage.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// The agreement versions whose expiry has been noted.
    async fn noted_expiries(&self) -> Result<Vec<(AgreementId, i64)>, StoreError>;
    /// One possible duplicate.
    async fn possible_duplicate(
        &self,
        id: &PossibleDuplicateId,
    ) -> Result<Option<PossibleDuplicate>, StoreError>;
    /// Possible duplicates in `state`, oldest first (by id within one
    /// instant), after `after`.
    async fn possible_duplicates(
        &self,
        state: DuplicateState,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<PossibleDuplicate>, StoreError>;
    /// One merge.
    async fn subject_merge(&self, id: &SubjectMergeId) -> Result<Option<SubjectMerge>, StoreError>;
    /// The merges a subject took part in, on either side, oldest first.
    async fn merges_of(&self, subject: &SubjectId) -> Result<Vec<SubjectMerge>, StoreError>;
    /// What merging `merged` into `survivor` would move now; `None` unless
    /// both are registered, distinct and not merged.
    async fn merge_plan(
        &self,
        survivor: &SubjectId,
        merged: &SubjectId,
    ) -> Result<Option<Holdings>, StoreError>;
    /// What undoing `merge` would move back now, and the seals made while
    /// it stood that it would copy; `None` unless the merge stands and its
    /// survivor is not merged since.
    async fn unmerge_plan(
        &self,
        merge: &SubjectMerge,
    ) -> Result<Option<(Holdings, Vec<StoredSeal>)>, StoreError>;
    /// One review.
    async fn review(&self, id: &ReviewId) -> Result<Option<Review>, StoreError>;
    /// The reviews asked of `recipient`, oldest first (by id within one
    /// instant), after `after`; only unanswered ones if `unacknowledged_only`.
    async fn reviews_of(
        &self,
        recipient: &AgencyCode,
        unacknowledged_only: bool,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError>;
    /// Unanswered reviews raised before `before` whose lateness has not
    /// been alerted, oldest first.
    async fn overdue_reviews(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError>;
    /// A subscription, unless it was deleted.
    async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;
    /// An agency's subscriptions, deleted ones left out, oldest first (by
    /// id within one instant), after `after`.
    async fn subscriptions_of(
        &self,
        agency: &AgencyCode,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError>;
}
