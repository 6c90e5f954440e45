//! The SQL store, over sqlx's `Any` driver so that one implementation serves
//! both backends; [`Backend`] holds the few places where they differ.
//!
//! Commits go through the sequencer's own connection (see [`super::write`]),
//! opened by a [`Link`]: no pool stands between the writer and the
//! database, so a batch pays no pool round trips. Reads use a pool; so do
//! the few other writes (migrations, checkpoints, the health probe), which
//! on SQLite is a pool of one connection. Pooled connections are pinged
//! before use only after they have been idle (see [`PING_AFTER_IDLE`]).
//! SQLite allows one writer at a time and PostgreSQL's batches take a row
//! lock on the ledger head first, so writers of several processes on one
//! database follow one another.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use super::notify::Changes;
use super::write::Sequencer;
use super::{
    After, Committed, EntryFilter, Expect, IdentifierLink, LinkedIdentifier, PolicyVersions, Store,
    StoreError, SubjectTies, Write,
};
use super::{agencies, agreements, alerts, catalog, consents, credentials, events, ledger, meta};
use super::{duplicates, merges, records, reviews, subjects, subscriptions};
use crate::domain::agreement::{Agreement, AgreementId};
use crate::domain::consent::{Consent, ConsentId};
use crate::domain::credential::{CertificateIdentity, CertificateMatch, TokenIssuer};
use crate::domain::duplicate::{DuplicateState, PossibleDuplicate, PossibleDuplicateId};
use crate::domain::event::{Event, EventPosition, Subscription, SubscriptionId};
use crate::domain::merge::{Holdings, StoredSeal, SubjectMerge, SubjectMergeId};
use crate::domain::review::{Review, ReviewId};
use crate::domain::{
    Agency, AgencyCode, Alert, AlertId, Identifier, Record, RecordClass, RecordClassId, RecordId,
    Subject, SubjectId,
};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::merkle::NodeId;
use crate::ledger::{DisclosureCount, Entry, EntryDraft, Hash, TreeHead};

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL store.
/// A connection pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open.
    pub size: u32,
    /// Of those, not in use.
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    sequencer: Sequencer,
    /// Wake-ups for those following events.
    changes: Changes,
    /// SQLite's page cap on the connections that write (`max_page_count`;
    /// 0: none), applied to every one they open.
    page_cap: Arc<AtomicU32>,
}

/// How the write path opens its connection: the database's URL, how long
/// opening may take, and (SQLite) the settings every connection gets.
#[derive(Debug, Clone)]
pub(super) struct Link {
    backend: Backend,
    url: String,
    wait: Duration,
    /// SQLite's page cap to apply; `None` on PostgreSQL.
    page_cap: Option<Arc<AtomicU32>>,
}

impl Link {
    /// The SQLite database's file, when the URL names one: the path as
    /// sqlx itself reads it from the URL (percent-decoded), so that a
    /// second connection opens the same file; none for an in-memory
    /// database, or when in doubt.
    pub(super) fn sqlite_file(&self) -> Option<PathBuf> {
        if self.backend != Backend::Sqlite
            || self.url.contains(":memory:")
            || self.url.contains("mode=memory")
        {
            return None;
        }
        let options = SqliteConnectOptions::from_str(&self.url).ok()?;
        let file = options.get_filename();
        (!file.as_os_str().is_empty()).then(|| file.to_owned())
    }

    /// Opens a connection, set up as the backend needs.
    pub(super) async fn open(&self) -> Result<AnyConnection, StoreError> {
        let mut conn = tokio::time::timeout(self.wait, AnyConnection::connect(&self.url))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        if let Some(cap) = &self.page_cap {
            set_up_sqlite(&mut conn, cap.load(Ordering::SeqCst)).await?;
        }
        Ok(conn)
    }

    /// The database behind it.
    pub(super) fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite page cap a writing connection should have now (0: none;
    /// always 0 on PostgreSQL).
    pub(super) fn page_cap(&self) -> u32 {
        self.page_cap
            .as_ref()
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

/// Applies SQLite's page cap `pages` to `conn` (0: none).
pub(super) async fn cap_pages(conn: &mut AnyConnection, pages: u32) -> Result<u32, StoreError> {
    let pages = if pages == 0 { NO_PAGE_CAP } else { pages };
    let row = sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(NO_PAGE_CAP))
}

/// The settings of every SQLite connection, whichever driver opens it.
pub(super) const SQLITE_SETTINGS: [&str; 4] = [
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA synchronous = FULL",
    // Temporary files, and the statement journal a batch's append spills
    // to one once it passes 64 KiB, held in memory rather than written.
    "PRAGMA temp_store = MEMORY",
];

/// The settings of every SQLite connection; `page_cap` (0: none) for
/// those that write.
async fn set_up_sqlite(conn: &mut AnyConnection, page_cap: u32) -> Result<(), sqlx::Error> {
    for setting in SQLITE_SETTINGS {
        conn.execute(setting).await?;
    }
    if page_cap > 0 {
        conn.execute(format!("PRAGMA max_page_count = {page_cap}").as_str())
            .await?;
    }
    Ok(())
}

/// A pooled connection idle for longer than this is pinged before it is
/// used, so that one broken while idle (the database restarted, say) is
/// replaced rather than failing a call; one in steady use is not, which
/// saves a round trip per query. (sqlx also pings every connection as it
/// goes back to the pool and drops it if that fails.)
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool settings common to both backends: `max` connections, a call waits
/// `wait` for one, and idle ones are pinged before use.
fn pool_options(max: u32, wait: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(wait)
        .test_before_acquire(false)
        .before_acquire(|conn, meta: PoolConnectionMetadata| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// How long opening the first PostgreSQL connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the probe's write: more than two pages of SQLite's default
/// size, so that it needs room the database must find as a batch of
/// entries does (a row this small would fit in the probe table's own page).
const PROBE_BYTES: usize = 10_000;

/// SQLite's own largest `max_page_count` that every version accepts.
pub(super) const NO_PAGE_CAP: u32 = 1_073_741_823;

/// How long a call waits for a database connection by default before it
/// fails as unavailable.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

/// Opens the database at `url` (`sqlite://…` or `postgres://…`) and runs
/// the migrations when `migrate` is set; calls wait [`DEFAULT_WAIT`] for a
/// connection.
pub async fn connect(url: &str, migrate: bool) -> Result<SqlStore, StoreError> {
    connect_waiting(url, migrate, DEFAULT_WAIT).await
}

/// How the store's PostgreSQL pool is sized and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// How long a call waits for a connection before failing as
    /// unavailable.
    pub wait: Duration,
    /// The most connections the pool opens (PostgreSQL; SQLite's pools are
    /// fixed: one writer, four readers).
    pub max_connections: u32,
    /// How long opening the first connection may take.
    pub connect_timeout: Duration,
}

impl PoolSettings {
    /// The defaults, with calls waiting `wait`.
    pub fn waiting(wait: Duration) -> Self {
        Self {
            wait,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

/// The PostgreSQL pool's size unless configured.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Opens the database at `url` as [`connect`] does; a call waits at most
/// `wait` for a database connection before failing as unavailable (during
/// an outage a call fails this fast rather than queueing).
pub async fn connect_waiting(
    url: &str,
    migrate: bool,
    wait: Duration,
) -> Result<SqlStore, StoreError> {
    connect_with(url, migrate, PoolSettings::waiting(wait)).await
}

/// Opens the database at `url` as [`connect`] does, with `pool`'s settings.
pub async fn connect_with(
    url: &str,
    migrate: bool,
    pool: PoolSettings,
) -> Result<SqlStore, StoreError> {
    let wait = pool.wait;
    install_drivers();
    let store = if url.starts_with("sqlite:") {
        let page_cap = Arc::new(AtomicU32::new(0));
        let writer = sqlite_pool(url, 1, wait, Some(Arc::clone(&page_cap))).await?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&writer)
            .await?;
        let reader = sqlite_pool(url, 4, wait, None).await?;
        let link = Link {
            backend: Backend::Sqlite,
            url: url.to_owned(),
            wait,
            page_cap: Some(Arc::clone(&page_cap)),
        };
        let changes = Changes::new(None);
        SqlStore {
            backend: Backend::Sqlite,
            sequencer: Sequencer::start(link, changes.clone())?,
            changes,
            writer,
            reader,
            page_cap,
        }
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // One direct connection first: a pool retries a refused connection
        // until its timeout and then reports only the timeout, hiding why.
        let probe = tokio::time::timeout(pool.connect_timeout, AnyConnection::connect(url))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        probe.close().await?;
        let pool = pool_options(pool.max_connections, wait)
            .connect(url)
            .await?;
        let link = Link {
            backend: Backend::Postgres,
            url: url.to_owned(),
            wait,
            page_cap: None,
        };
        let changes = Changes::new(Some(url.to_owned()));
        SqlStore {
            backend: Backend::Postgres,
            sequencer: Sequencer::start(link, changes.clone())?,
            changes,
            writer: pool.clone(),
            reader: pool,
            page_cap: Arc::default(),
        }
    } else {
        return Err(StoreError::BadUrl(
            "the database URL must start with sqlite: or postgres:".to_owned(),
        ));
    };
    if migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// Makes sqlx's `Any` driver know SQLite and PostgreSQL (once per process).
pub fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// A pool on the SQLite database at `url`; the writer's pool applies
/// `page_cap` to each connection it opens.
async fn sqlite_pool(
    url: &str,
    max: u32,
    wait: Duration,
    page_cap: Option<Arc<AtomicU32>>,
) -> Result<AnyPool, StoreError> {
    Ok(pool_options(max, wait)
        .after_connect(move |conn, _| {
            let cap = page_cap.as_ref().map_or(0, |c| c.load(Ordering::SeqCst));
            Box::pin(set_up_sqlite(conn, cap))
        })
        .connect(url)
        .await?)
}

/// The name of the SQLite database file in the data directory.
pub const SQLITE_FILE: &str = "accord.db";

/// The URL of the SQLite database file in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display())
}

impl SqlStore {
    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The read pool's connections now.
    pub fn pool_state(&self) -> PoolState {
        PoolState {
            size: self.reader.size(),
            idle: u32::try_from(self.reader.num_idle()).unwrap_or(u32::MAX),
            max: self.reader.options().get_max_connections(),
        }
    }

    /// How many batches of commits this store has made durable.
    pub fn batches_committed(&self) -> u64 {
        self.sequencer.batches()
    }

    /// How many ledger entries this store has committed (in those
    /// batches).
    pub fn entries_committed(&self) -> u64 {
        self.sequencer.entries()
    }

    /// How many commits are waiting for the write path: queued, or in the
    /// batch being committed.
    pub fn commits_waiting(&self) -> u64 {
        self.sequencer.waiting()
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&self.writer).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&self.writer).await?,
        }
        let indexed = subjects::index_blocks(&self.writer).await?;
        if indexed > 0 {
            tracing::info!(subjects = indexed, "subjects given their matching keys");
        }
        Ok(())
    }

    /// Caps the SQLite database at `pages` pages (SQLite's
    /// `max_page_count`, never below its current size) on the connections
    /// that write (the write path's before its next batch) and every one
    /// that replaces them, or lifts the cap
    /// (`None`). A write that needs more room then fails as on a full
    /// disk: this is how the fault tests fill the disk on demand. Returns
    /// the cap in force. PostgreSQL has no such cap.
    pub async fn cap_sqlite_pages(&self, pages: Option<u32>) -> Result<u32, StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::BadUrl(
                "only an SQLite database can be capped".to_owned(),
            ));
        }
        let pages = pages.unwrap_or(NO_PAGE_CAP).clamp(1, NO_PAGE_CAP);
        // Stored first, so that a connection opened meanwhile has it too.
        self.page_cap.store(pages, Ordering::SeqCst);
        let mut conn = self.writer.acquire().await?;
        cap_pages(&mut conn, pages).await
    }

    /// Checks, cheaply, that the database can serve calls: it answers a
    /// query, and, after a batch of writes failed as a whole (a full disk,
    /// say), it takes a small write again (a row inserted and deleted in
    /// one committed transaction, so that it needs room as a real write
    /// does). The caller bounds how long this may take.
    pub async fn probe(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        if !self.sequencer.failing() {
            return Ok(());
        }
        let mut conn = self.writer.acquire().await?;
        let written = async {
            let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
            sqlx::query("INSERT INTO store_probe (id, payload) VALUES (1, $1)")
                .bind(vec![0x5a_u8; PROBE_BYTES])
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM store_probe WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        if written.is_err() {
            // As after a failed batch, the connection's transaction state
            // is not known: it is closed, never reused.
            conn.close_on_drop();
        }
        Ok(written?)
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Each method is served by the module of its aggregate.
#[async_trait]
impl Store for SqlStore {
    async fn commit_expecting(
        &self,
        writes: Vec<Write>,
        expects: Vec<Expect>,
        draft: EntryDraft,
    ) -> Result<Committed, StoreError> {
        self.sequencer.commit(writes, expects, draft).await
    }

    async fn agency(&self, code: &AgencyCode) -> Result<Option<Agency>, StoreError> {
        agencies::agency(&self.reader, code).await
    }

    async fn agencies(&self, after: After<String>, n: u32) -> Result<Vec<Agency>, StoreError> {
        agencies::agencies(&self.reader, after, n).await
    }

    async fn record_class(&self, id: &RecordClassId) -> Result<Option<RecordClass>, StoreError> {
        catalog::record_class(&self.reader, id).await
    }

    async fn record_classes(
        &self,
        after: After<String>,
        n: u32,
    ) -> Result<Vec<RecordClass>, StoreError> {
        catalog::record_classes(&self.reader, after, n).await
    }

    async fn subject(&self, id: &SubjectId) -> Result<Option<Subject>, StoreError> {
        subjects::subject(&self.reader, id).await
    }

    async fn certificate_identities(
        &self,
        agency: &AgencyCode,
    ) -> Result<Vec<CertificateIdentity>, StoreError> {
        credentials::certificate_identities(&self.reader, agency).await
    }

    async fn certificate_identities_matching(
        &self,
        matchers: &[CertificateMatch],
    ) -> Result<Vec<CertificateIdentity>, StoreError> {
        credentials::certificate_identities_matching(&self.reader, matchers).await
    }

    async fn token_issuers(&self, agency: &AgencyCode) -> Result<Vec<TokenIssuer>, StoreError> {
        credentials::token_issuers(&self.reader, agency).await
    }

    async fn token_issuer(&self, iss: &str) -> Result<Option<TokenIssuer>, StoreError> {
        credentials::token_issuer(&self.reader, iss).await
    }

    async fn subject_ties(&self, subject: &SubjectId) -> Result<SubjectTies, StoreError> {
        subjects::subject_ties(&self.reader, subject).await
    }

    async fn merged_subjects(&self, subject: &SubjectId) -> Result<Vec<Subject>, StoreError> {
        subjects::merged_subjects(&self.reader, subject).await
    }

    async fn linked_identifiers(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<LinkedIdentifier>, StoreError> {
        subjects::linked_identifiers(&self.reader, subject).await
    }

    async fn identifier_link(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<IdentifierLink>, StoreError> {
        subjects::identifier_link(&self.reader, identifier).await
    }

    async fn match_candidates(&self, keys: &[String], n: u32) -> Result<Vec<Subject>, StoreError> {
        subjects::match_candidates(&self.reader, keys, n).await
    }

    async fn block_population(&self, keys: &[String]) -> Result<u64, StoreError> {
        subjects::block_population(&self.reader, keys).await
    }

    async fn record(
        &self,
        id: &RecordId,
        version: Option<i64>,
    ) -> Result<Option<Record>, StoreError> {
        records::record(&self.reader, id, version).await
    }

    async fn records_of_subject(
        &self,
        subject: &SubjectId,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Record>, StoreError> {
        records::records_of_subject(&self.reader, subject, after, n).await
    }

    async fn entries(
        &self,
        f: &EntryFilter,
        after: After<i64>,
        n: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        ledger::entries(&self.reader, f, after, n).await
    }

    async fn count_entries(&self, f: &EntryFilter) -> Result<u64, StoreError> {
        ledger::count_entries(&self.reader, f).await
    }

    async fn disclosure_counts(
        &self,
        keys: &[String],
        f: &EntryFilter,
    ) -> Result<Vec<DisclosureCount>, StoreError> {
        ledger::disclosure_counts(&self.reader, keys, f).await
    }

    async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        ledger::tree_head(&self.reader).await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        ledger::nodes(&self.reader, ids).await
    }

    async fn save_checkpoint(&self, c: &SignedCheckpoint) -> Result<bool, StoreError> {
        ledger::save_checkpoint(&self.writer, c).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        ledger::latest_checkpoint(&self.reader).await
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        ledger::checkpoint(&self.reader, size).await
    }

    async fn checkpoints(&self, min: u64, max: u64) -> Result<Vec<SignedCheckpoint>, StoreError> {
        ledger::checkpoints(&self.reader, min, max).await
    }

    async fn alert(&self, id: &AlertId) -> Result<Option<Alert>, StoreError> {
        alerts::alert(&self.reader, id).await
    }

    async fn alerts(
        &self,
        recipient: &AgencyCode,
        unacknowledged_only: bool,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        alerts::alerts(&self.reader, recipient, unacknowledged_only, after, n).await
    }

    async fn agreement(
        &self,
        id: &AgreementId,
        version: Option<i64>,
    ) -> Result<Option<Agreement>, StoreError> {
        agreements::agreement(&self.reader, id, version).await
    }

    async fn agreement_versions(&self, id: &AgreementId) -> Result<Vec<Agreement>, StoreError> {
        agreements::agreement_versions(&self.reader, id).await
    }

    async fn agreements_of(
        &self,
        agency: &AgencyCode,
        after: After<String>,
        n: u32,
    ) -> Result<Vec<Agreement>, StoreError> {
        agreements::agreements_of(&self.reader, agency, after, n).await
    }

    async fn live_agreements(&self) -> Result<Vec<Agreement>, StoreError> {
        agreements::live_agreements(&self.reader).await
    }

    async fn consent(&self, id: &ConsentId) -> Result<Option<Consent>, StoreError> {
        consents::consent(&self.reader, id).await
    }

    async fn consents_of(
        &self,
        subject: &SubjectId,
        agency: &AgencyCode,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Consent>, StoreError> {
        consents::consents_of(&self.reader, subject, agency, after, n).await
    }

    async fn consents_changed(&self, since: i64) -> Result<Vec<Consent>, StoreError> {
        consents::consents_changed(&self.reader, since).await
    }

    async fn registry_version(&self) -> Result<i64, StoreError> {
        credentials::registry_version(&self.reader).await
    }

    async fn policy_versions(&self) -> Result<PolicyVersions, StoreError> {
        agreements::policy_versions(&self.reader).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        meta::meta(&self.reader, key).await
    }

    async fn events(&self, after: EventPosition, limit: u32) -> Result<Vec<Event>, StoreError> {
        events::events(&self.reader, after, limit).await
    }

    async fn noted_expiries(&self) -> Result<Vec<(AgreementId, i64)>, StoreError> {
        agreements::noted_expiries(&self.reader).await
    }

    async fn possible_duplicate(
        &self,
        id: &PossibleDuplicateId,
    ) -> Result<Option<PossibleDuplicate>, StoreError> {
        duplicates::possible_duplicate(&self.reader, id).await
    }

    async fn possible_duplicates(
        &self,
        state: DuplicateState,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<PossibleDuplicate>, StoreError> {
        duplicates::possible_duplicates(&self.reader, state, after, limit).await
    }

    async fn subject_merge(&self, id: &SubjectMergeId) -> Result<Option<SubjectMerge>, StoreError> {
        merges::subject_merge(&self.reader, id).await
    }

    async fn merges_of(&self, subject: &SubjectId) -> Result<Vec<SubjectMerge>, StoreError> {
        merges::merges_of(&self.reader, subject).await
    }

    async fn merge_plan(
        &self,
        survivor: &SubjectId,
        merged: &SubjectId,
    ) -> Result<Option<Holdings>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        merges::merge_plan(&mut conn, survivor, merged).await
    }

    async fn unmerge_plan(
        &self,
        merge: &SubjectMerge,
    ) -> Result<Option<(Holdings, Vec<StoredSeal>)>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        merges::unmerge_plan(&mut conn, merge).await
    }

    async fn review(&self, id: &ReviewId) -> Result<Option<Review>, StoreError> {
        reviews::review(&self.reader, id).await
    }

    async fn reviews_of(
        &self,
        recipient: &AgencyCode,
        unacknowledged_only: bool,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError> {
        reviews::reviews_of(&self.reader, recipient, unacknowledged_only, after, limit).await
    }

    async fn overdue_reviews(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError> {
        reviews::overdue_reviews(&self.reader, before, limit).await
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscriptions::subscription(&self.reader, id).await
    }

    async fn subscriptions_of(
        &self,
        agency: &AgencyCode,
        after: After<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError> {
        subscriptions::subscriptions_of(&self.reader, agency, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(url: &str) -> Link {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        Link {
            backend,
            url: url.to_owned(),
            wait: Duration::from_secs(1),
            page_cap: None,
        }
    }

    #[test]
    fn the_writers_own_connection_opens_the_file_sqlx_opens() {
        let file = |url: &str| link(url).sqlite_file();
        assert_eq!(
            file("sqlite:///tmp/a%20b/accord.db?mode=rwc"),
            Some(PathBuf::from("/tmp/a b/accord.db"))
        );
        assert_eq!(
            file("sqlite://data/accord.db"),
            Some(PathBuf::from("data/accord.db"))
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://accord.db?mode=memory"), None);
        assert_eq!(file("postgres://127.0.0.1/accord"), None);
    }
}
