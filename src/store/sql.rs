//! The SQL store, over sqlx's `Any` driver so that one implementation serves
//! both backends; [`Backend`] holds the few places where they differ.
//!
//! SQLite allows one writer at a time, so its writes go through a pool of a
//! single connection (no lock upgrades, no `SQLITE_BUSY` between our own
//! writers) while reads use a separate pool. PostgreSQL uses one pool and
//! serialises writes with a row lock on the ledger head, taken first in
//! every write transaction.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use super::agreements::{self, agreement_from};
use super::consents::{self, consent_from};
use super::credentials::{self, identity_from, issuer_from};
use super::write::Sequencer;
use super::{
    After, Committed, EntryFilter, IdentifierLink, PolicyVersions, Store, StoreError, SubjectTies,
    Write,
};
use crate::domain::agreement::{Agreement, AgreementId};
use crate::domain::consent::{Consent, ConsentId};
use crate::domain::credential::{CertificateIdentity, CertificateMatch, TokenIssuer};
use crate::domain::{
    Acknowledgement, Agency, AgencyCode, AgencyKind, AgencyStatus, Alert, AlertId, AlertKind,
    Demographics, FieldSpec, Gender, Identifier, IdentifierSystem, Purpose, Record, RecordClass,
    RecordClassId, RecordId, Subject, SubjectId,
};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::merkle::NodeId;
use crate::ledger::{Entry, EntryDraft, Grounds, Hash, Outcome, TreeHead};

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    sequencer: Sequencer,
    /// SQLite's page cap on the writer connection (`max_page_count`; 0:
    /// none), applied to every connection the writer pool opens.
    page_cap: Arc<AtomicU32>,
}

/// How long opening the first PostgreSQL connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the probe's write: more than two pages of SQLite's default
/// size, so that it needs room the database must find as a batch of
/// entries does (a row this small would fit in the probe table's own page).
const PROBE_BYTES: usize = 10_000;

/// SQLite's own largest `max_page_count` that every version accepts.
const NO_PAGE_CAP: u32 = 1_073_741_823;

/// How long a call waits for a database connection by default before it
/// fails as unavailable.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

/// Opens the database at `url` (`sqlite://…` or `postgres://…`) and runs
/// the migrations when `migrate` is set; calls wait [`DEFAULT_WAIT`] for a
/// connection.
pub async fn connect(url: &str, migrate: bool) -> Result<SqlStore, StoreError> {
    connect_waiting(url, migrate, DEFAULT_WAIT).await
}

/// Opens the database at `url` as [`connect`] does; a call waits at most
/// `wait` for a database connection before failing as unavailable (during
/// an outage a call fails this fast rather than queueing).
pub async fn connect_waiting(
    url: &str,
    migrate: bool,
    wait: Duration,
) -> Result<SqlStore, StoreError> {
    install_drivers();
    let store = if url.starts_with("sqlite:") {
        let page_cap = Arc::new(AtomicU32::new(0));
        let writer = sqlite_pool(url, 1, wait, Some(Arc::clone(&page_cap))).await?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&writer)
            .await?;
        let reader = sqlite_pool(url, 4, wait, None).await?;
        SqlStore {
            backend: Backend::Sqlite,
            sequencer: Sequencer::start(writer.clone()),
            writer,
            reader,
            page_cap,
        }
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // One direct connection first: a pool retries a refused connection
        // until its timeout and then reports only the timeout, hiding why.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(url))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(wait)
            .connect(url)
            .await?;
        SqlStore {
            backend: Backend::Postgres,
            sequencer: Sequencer::start(pool.clone()),
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
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(wait)
        .after_connect(move |conn, _| {
            let cap = page_cap.as_ref().map(|c| c.load(Ordering::SeqCst));
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                if let Some(cap) = cap.filter(|c| *c > 0) {
                    conn.execute(format!("PRAGMA max_page_count = {cap}").as_str())
                        .await?;
                }
                Ok(())
            })
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

    /// How many batches of commits this store has made durable.
    pub fn batches_committed(&self) -> u64 {
        self.sequencer.batches()
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&self.writer).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&self.writer).await?,
        }
        Ok(())
    }

    /// Caps the SQLite database at `pages` pages (SQLite's
    /// `max_page_count`, never below its current size) on the writer
    /// connection and every one that replaces it, or lifts the cap
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
        let row = sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .fetch_one(&self.writer)
            .await?;
        Ok(u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(NO_PAGE_CAP))
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

// ---- value conversions at the storage boundary -------------------------

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn time(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us}")))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn code<T>(parsed: Option<T>, what: &str, value: &str) -> Result<T, StoreError> {
    parsed.ok_or_else(|| StoreError::Corrupt(format!("{what} {value:?}")))
}

pub(super) fn agency_code(value: &str) -> Result<AgencyCode, StoreError> {
    AgencyCode::parse(value).map_err(|e| StoreError::Corrupt(format!("agency code {value:?}: {e}")))
}

fn hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt("hash length".to_owned()))
}

fn agency_from(row: &AnyRow) -> Result<Agency, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(Agency {
        code: agency_code(&row.try_get::<String, _>("code")?)?,
        display_name: row.try_get("display_name")?,
        kind: code(AgencyKind::from_code(&kind), "agency kind", &kind)?,
        status: code(AgencyStatus::from_code(&status), "agency status", &status)?,
        create_time: time(row.try_get("create_time")?)?,
        update_time: time(row.try_get("update_time")?)?,
        etag: row.try_get("etag")?,
    })
}

fn record_class_from(row: &AnyRow) -> Result<RecordClass, StoreError> {
    let id: String = row.try_get("id")?;
    let fields: Vec<FieldSpec> = from_json(&row.try_get::<String, _>("fields")?)?;
    Ok(RecordClass {
        id: RecordClassId::parse(&id).map_err(StoreError::Corrupt)?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        fields,
        create_time: time(row.try_get("create_time")?)?,
    })
}

fn record_from(row: &AnyRow) -> Result<Record, StoreError> {
    let class: String = row.try_get("record_class")?;
    let controller: String = row.try_get("controller")?;
    Ok(Record {
        id: RecordId::from_stored(row.try_get("id")?),
        subject: SubjectId::from_stored(row.try_get("subject_id")?),
        record_class: RecordClassId::parse(&class).map_err(StoreError::Corrupt)?,
        controller: agency_code(&controller)?,
        version: row.try_get("version")?,
        fields: from_json(&row.try_get::<String, _>("fields")?)?,
        etag: row.try_get("etag")?,
        create_time: time(row.try_get("create_time")?)?,
        update_time: time(row.try_get("write_time")?)?,
        sealed: row.try_get::<i64, _>("sealed")? != 0,
    })
}

fn entry_from(row: &AnyRow) -> Result<Entry, StoreError> {
    let purpose: String = row.try_get("purpose")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(Entry {
        index: row.try_get("idx")?,
        draft: EntryDraft {
            id: row.try_get("id")?,
            time: time(row.try_get("time")?)?,
            request_id: row.try_get("request_id")?,
            agency: row.try_get("agency")?,
            principal: row.try_get("principal")?,
            roles: from_json(&row.try_get::<String, _>("roles")?)?,
            client_certificate: row.try_get("client_certificate")?,
            action: row.try_get("action")?,
            purpose: if purpose.is_empty() {
                None
            } else {
                Some(code(Purpose::from_code(&purpose), "purpose", &purpose)?)
            },
            subject: row.try_get("subject")?,
            records: from_json(&row.try_get::<String, _>("records")?)?,
            fields: from_json(&row.try_get::<String, _>("fields")?)?,
            outcome: code(Outcome::from_code(&outcome), "outcome", &outcome)?,
            reason_code: row.try_get("reason_code")?,
            reason: row.try_get("reason")?,
            controller: row.try_get("controller")?,
            grounds: Grounds {
                agreements: from_json(&row.try_get::<String, _>("agreements")?)?,
                lawful_bases: from_json(&row.try_get::<String, _>("lawful_bases")?)?,
                consent: row.try_get("consent")?,
                break_glass: row.try_get("break_glass")?,
            },
        },
    })
}

const RECORD_COLUMNS: &str = "r.id, r.subject_id, r.record_class, r.controller, r.create_time, \
     v.version, v.fields, v.etag, v.write_time, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM seals s WHERE s.agency = r.controller \
       AND s.subject_id = r.subject_id AND (s.record_id = '' OR s.record_id = r.id)) \
     THEN 1 ELSE 0 END AS BIGINT) AS sealed";

/// A query under construction with numbered placeholders.
#[derive(Default)]
struct Query {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Query {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: vec![],
        }
    }

    /// Appends `text`, where `?` stands for the placeholder of `arg`.
    fn push(&mut self, text: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("${}", self.args.len());
        self.text.push_str(&text.replacen('?', &placeholder, 1));
        self
    }

    fn raw(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn build(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

impl SqlStore {
    async fn identifiers_of(&self, subject: &SubjectId) -> Result<Vec<Identifier>, StoreError> {
        let rows = sqlx::query(
            "SELECT system, assigner, value FROM subject_identifiers WHERE subject_id = $1 \
             ORDER BY link_time, system, assigner, value",
        )
        .bind(subject.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let system: String = row.try_get("system")?;
                let assigner: String = row.try_get("assigner")?;
                Ok(Identifier::from_stored(
                    code(
                        IdentifierSystem::from_code(&system),
                        "identifier system",
                        &system,
                    )?,
                    row.try_get("value")?,
                    if assigner.is_empty() {
                        None
                    } else {
                        Some(agency_code(&assigner)?)
                    },
                ))
            })
            .collect()
    }

    async fn subject_from(&self, row: &AnyRow) -> Result<Subject, StoreError> {
        let id = SubjectId::from_stored(row.try_get("id")?);
        let birth: String = row.try_get("birth_date")?;
        let gender: String = row.try_get("gender")?;
        let postcode: String = row.try_get("postcode")?;
        let uprn: String = row.try_get("uprn")?;
        let registered_by: String = row.try_get("registered_by")?;
        Ok(Subject {
            identifiers: self.identifiers_of(&id).await?,
            demographics: Demographics {
                given_name: row.try_get("given_name")?,
                family_name: row.try_get("family_name")?,
                birth_date: NaiveDate::from_str(&birth)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                gender: code(Gender::from_code(&gender), "gender", &gender)?,
                postcode: Some(postcode).filter(|p| !p.is_empty()),
                uprn: Some(uprn).filter(|u| !u.is_empty()),
            },
            registered_by: agency_code(&registered_by)?,
            create_time: time(row.try_get("create_time")?)?,
            id,
        })
    }
}

/// A tree size or index as stored (SQL integers are signed).
pub(super) fn signed(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("tree position {n} is too large")))
}

pub(super) fn unsigned(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("tree position {n} is negative")))
}

pub(super) fn head_from(row: &AnyRow) -> Result<TreeHead, StoreError> {
    Ok(TreeHead {
        size: unsigned(row.try_get("size")?)?,
        root: hash(row.try_get("root_hash")?)?,
    })
}

fn checkpoint_from(row: &AnyRow) -> Result<SignedCheckpoint, StoreError> {
    Ok(SignedCheckpoint {
        head: TreeHead {
            size: unsigned(row.try_get("size")?)?,
            root: hash(row.try_get("root_hash")?)?,
        },
        time: time(row.try_get("time")?)?,
        note: row.try_get("note")?,
    })
}

/// A query of ledger entries, `select` followed by the conditions of
/// `f` (at least one, so more can follow with ` AND`).
fn entry_query(select: &str, f: &EntryFilter) -> Query {
    let mut q = Query::new(select);
    q.raw("1 = 1");
    if let Some(id) = &f.id {
        q.push(" AND id = ?", Arg::Text(id.clone()));
    }
    if let Some(s) = &f.subject {
        q.push(
            " AND idx IN (SELECT idx FROM ledger_subjects WHERE subject = ?)",
            Arg::Text(s.clone()),
        );
    }
    if let Some(a) = &f.agency {
        q.push(" AND agency = ?", Arg::Text(a.clone()));
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ?", Arg::Text(o.code().to_owned()));
    }
    if let Some(p) = &f.principal {
        q.push(" AND principal = ?", Arg::Text(p.clone()));
    }
    if let Some(p) = f.purpose {
        q.push(" AND purpose = ?", Arg::Text(p.code().to_owned()));
    }
    if let Some(t) = f.start {
        q.push(" AND time >= ?", Arg::Int(micros(t)));
    }
    if let Some(t) = f.end {
        q.push(" AND time < ?", Arg::Int(micros(t)));
    }
    if f.break_glass_only {
        q.raw(" AND break_glass <> ''");
    }
    if let Some(c) = &f.client_certificate {
        q.push(" AND client_certificate = ?", Arg::Text(c.clone()));
    }
    if let Some(v) = &f.visible_to {
        q.push(" AND (agency = ?", Arg::Text(v.clone()))
            .push(" OR controller = ?)", Arg::Text(v.clone()));
    }
    q
}

fn alert_from(row: &AnyRow) -> Result<Alert, StoreError> {
    let kind: String = row.try_get("kind")?;
    let ack_by: Option<String> = row.try_get("ack_by")?;
    let acknowledgement = match ack_by {
        Some(principal) => Some(Acknowledgement {
            principal,
            time: time(
                row.try_get::<Option<i64>, _>("ack_time")?
                    .unwrap_or_default(),
            )?,
            note: row
                .try_get::<Option<String>, _>("ack_note")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Alert {
        id: AlertId::from_stored(row.try_get("id")?),
        kind: code(AlertKind::from_code(&kind), "alert kind", &kind)?,
        recipient: agency_code(&row.try_get::<String, _>("recipient")?)?,
        agency: row.try_get("agency")?,
        principal: row.try_get("principal")?,
        subject: row.try_get("subject")?,
        summary: row.try_get("summary")?,
        entry_index: row.try_get("entry_index")?,
        raise_time: time(row.try_get("raise_time")?)?,
        acknowledgement,
    })
}

/// How many nodes one lookup asks for at most (two parameters each).
const NODES_PER_QUERY: usize = 400;

/// The stored hashes of the nodes `ids` that exist.
pub(super) async fn fetch_nodes(
    conn: &mut sqlx::AnyConnection,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(NODES_PER_QUERY) {
        let mut q = Query::new("SELECT level, idx, hash FROM ledger_nodes WHERE ");
        for (n, id) in chunk.iter().enumerate() {
            q.raw(if n == 0 { "(" } else { " OR (" })
                .push("level = ?", Arg::Int(i64::from(id.level)))
                .push(" AND idx = ?)", Arg::Int(signed(id.index)?));
        }
        for row in q.build().fetch_all(&mut *conn).await? {
            let level: i64 = row.try_get("level")?;
            let id = NodeId {
                level: u32::try_from(level)
                    .map_err(|_| StoreError::Corrupt(format!("tree level {level}")))?,
                index: unsigned(row.try_get("idx")?)?,
            };
            out.insert(id, hash(row.try_get("hash")?)?);
        }
    }
    Ok(out)
}

fn limit(n: u32) -> i64 {
    i64::from(n)
}

#[async_trait]
impl Store for SqlStore {
    async fn commit(&self, writes: Vec<Write>, draft: EntryDraft) -> Result<Committed, StoreError> {
        self.sequencer.commit(writes, draft).await
    }

    async fn agency(&self, code: &AgencyCode) -> Result<Option<Agency>, StoreError> {
        let row = sqlx::query("SELECT * FROM agencies WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(agency_from).transpose()
    }

    async fn agencies(&self, after: After<String>, n: u32) -> Result<Vec<Agency>, StoreError> {
        let after = match after {
            After::Start => String::new(),
            After::Key(k) => k,
        };
        let rows = sqlx::query("SELECT * FROM agencies WHERE code > $1 ORDER BY code LIMIT $2")
            .bind(after)
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(agency_from).collect()
    }

    async fn record_class(&self, id: &RecordClassId) -> Result<Option<RecordClass>, StoreError> {
        let row = sqlx::query("SELECT * FROM record_classes WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(record_class_from).transpose()
    }

    async fn record_classes(
        &self,
        after: After<String>,
        n: u32,
    ) -> Result<Vec<RecordClass>, StoreError> {
        let after = match after {
            After::Start => String::new(),
            After::Key(k) => k,
        };
        let rows = sqlx::query("SELECT * FROM record_classes WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(record_class_from).collect()
    }

    async fn subject(&self, id: &SubjectId) -> Result<Option<Subject>, StoreError> {
        let row = sqlx::query("SELECT * FROM subjects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => Ok(Some(self.subject_from(&row).await?)),
            None => Ok(None),
        }
    }

    async fn certificate_identities(
        &self,
        agency: &AgencyCode,
    ) -> Result<Vec<CertificateIdentity>, StoreError> {
        let sql = format!(
            "SELECT {} FROM certificate_identities WHERE agency = $1 ORDER BY create_time, id",
            credentials::COLUMNS
        );
        sqlx::query(&sql)
            .bind(agency.as_str())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(identity_from)
            .collect()
    }

    async fn certificate_identities_matching(
        &self,
        matchers: &[CertificateMatch],
    ) -> Result<Vec<CertificateIdentity>, StoreError> {
        if matchers.is_empty() {
            return Ok(vec![]);
        }
        let conditions: Vec<String> = (0..matchers.len())
            .map(|i| format!("(kind = ${} AND value = ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT {} FROM certificate_identities WHERE {} ORDER BY create_time, id",
            credentials::COLUMNS,
            conditions.join(" OR ")
        );
        let mut q = sqlx::query(&sql);
        for m in matchers {
            q = q.bind(m.kind()).bind(m.value());
        }
        q.fetch_all(&self.reader)
            .await?
            .iter()
            .map(identity_from)
            .collect()
    }

    async fn token_issuers(&self, agency: &AgencyCode) -> Result<Vec<TokenIssuer>, StoreError> {
        let sql = format!(
            "SELECT {} FROM token_issuers WHERE agency = $1 ORDER BY create_time, id",
            credentials::ISSUER_COLUMNS
        );
        sqlx::query(&sql)
            .bind(agency.as_str())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(issuer_from)
            .collect()
    }

    async fn token_issuer(&self, iss: &str) -> Result<Option<TokenIssuer>, StoreError> {
        let sql = format!(
            "SELECT {} FROM token_issuers WHERE issuer = $1",
            credentials::ISSUER_COLUMNS
        );
        sqlx::query(&sql)
            .bind(iss)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(issuer_from)
            .transpose()
    }

    async fn subject_ties(&self, subject: &SubjectId) -> Result<SubjectTies, StoreError> {
        let rows = sqlx::query(
            "SELECT 'connected' AS tie, registered_by AS agency FROM subjects WHERE id = $1 \
             UNION SELECT 'connected', linked_by FROM subject_identifiers WHERE subject_id = $1 \
             UNION SELECT 'connected', controller FROM records WHERE subject_id = $1 \
             UNION SELECT 'sealed', agency FROM seals WHERE subject_id = $1 AND record_id = ''",
        )
        .bind(subject.as_str())
        .fetch_all(&self.reader)
        .await?;
        let mut ties = SubjectTies::default();
        for row in rows {
            let agency = agency_code(&row.try_get::<String, _>("agency")?)?;
            match row.try_get::<String, _>("tie")?.as_str() {
                "sealed" => ties.sealed_by.push(agency),
                _ => ties.connected.push(agency),
            }
        }
        Ok(ties)
    }

    async fn identifier_link(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<IdentifierLink>, StoreError> {
        let row = sqlx::query(
            "SELECT subject_id, linked_by FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3",
        )
        .bind(identifier.system().code())
        .bind(identifier.assigner().map_or("", AgencyCode::as_str))
        .bind(identifier.value())
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(Some(IdentifierLink {
                subject: SubjectId::from_stored(row.try_get("subject_id")?),
                linked_by: agency_code(&row.try_get::<String, _>("linked_by")?)?,
            })),
            None => Ok(None),
        }
    }

    async fn subject_candidates(
        &self,
        family_name: &str,
        birth_date: NaiveDate,
        n: u32,
    ) -> Result<Vec<Subject>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM subjects WHERE family_name_key = $1 OR birth_date = $2 ORDER BY create_time, id LIMIT $3",
        )
        .bind(family_name.trim().to_lowercase())
        .bind(birth_date.to_string())
        .bind(limit(n))
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.subject_from(row).await?);
        }
        Ok(out)
    }

    async fn record(
        &self,
        id: &RecordId,
        version: Option<i64>,
    ) -> Result<Option<Record>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records r JOIN record_versions v ON v.record_id = r.id \
             WHERE r.id = $1 AND v.version = {}",
            if version.is_some() { "$2" } else { "r.version" }
        );
        let mut q = sqlx::query(&sql).bind(id.as_str());
        if let Some(v) = version {
            q = q.bind(v);
        }
        let row = q.fetch_optional(&self.reader).await?;
        row.as_ref().map(record_from).transpose()
    }

    async fn records_of_subject(
        &self,
        subject: &SubjectId,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let mut q = Query::new(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r JOIN record_versions v ON v.record_id = r.id AND v.version = r.version \
             WHERE "
        ));
        q.push("r.subject_id = ?", Arg::Text(subject.as_str().to_owned()));
        if let After::Key((t, id)) = after {
            q.push(" AND (r.update_time < ?", Arg::Int(t))
                .push(" OR (r.update_time = ?", Arg::Int(t))
                .push(" AND r.id < ?))", Arg::Text(id));
        }
        q.raw(" ORDER BY r.update_time DESC, r.id DESC")
            .push(" LIMIT ?", Arg::Int(limit(n)));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(record_from).collect()
    }

    async fn entries(
        &self,
        f: &EntryFilter,
        after: After<i64>,
        n: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut q = entry_query("SELECT * FROM ledger_entries WHERE ", f);
        q.push(
            " AND idx > ?",
            Arg::Int(match after {
                After::Start => -1,
                After::Key(k) => k,
            }),
        );
        q.raw(" ORDER BY idx").push(" LIMIT ?", Arg::Int(limit(n)));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(entry_from).collect()
    }

    async fn count_entries(&self, f: &EntryFilter) -> Result<u64, StoreError> {
        let q = entry_query("SELECT COUNT(*) AS n FROM ledger_entries WHERE ", f);
        let n: i64 = q.build().fetch_one(&self.reader).await?.try_get("n")?;
        unsigned(n)
    }

    async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        head_from(
            &sqlx::query("SELECT size, root_hash FROM ledger_head WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        fetch_nodes(&mut conn, ids).await
    }

    async fn save_checkpoint(&self, c: &SignedCheckpoint) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root_hash, time, note) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(signed(c.head.size)?)
        .bind(c.head.root.to_vec())
        .bind(micros(c.time))
        .bind(c.note.as_str())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        let row = sqlx::query("SELECT * FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(checkpoint_from).transpose()
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        let row = sqlx::query("SELECT * FROM ledger_checkpoints WHERE size = $1")
            .bind(signed(size)?)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(checkpoint_from).transpose()
    }

    async fn checkpoints(&self, min: u64, max: u64) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM ledger_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size",
        )
        .bind(signed(min)?)
        .bind(signed(max)?)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(checkpoint_from).collect()
    }

    async fn alert(&self, id: &AlertId) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query("SELECT * FROM alerts WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(alert_from).transpose()
    }

    async fn alerts(
        &self,
        recipient: &AgencyCode,
        unacknowledged_only: bool,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut q = Query::new("SELECT * FROM alerts WHERE ");
        q.push("recipient = ?", Arg::Text(recipient.as_str().to_owned()));
        if unacknowledged_only {
            q.raw(" AND ack_by IS NULL");
        }
        if let After::Key((t, id)) = after {
            q.push(" AND (raise_time > ?", Arg::Int(t))
                .push(" OR (raise_time = ?", Arg::Int(t))
                .push(" AND id > ?))", Arg::Text(id));
        }
        q.raw(" ORDER BY raise_time, id")
            .push(" LIMIT ?", Arg::Int(limit(n)));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(alert_from).collect()
    }

    async fn agreement(
        &self,
        id: &AgreementId,
        version: Option<i64>,
    ) -> Result<Option<Agreement>, StoreError> {
        let sql = format!(
            "SELECT {} FROM agreements WHERE id = $1 AND ($2 = 0 OR version = $2) \
             ORDER BY version DESC LIMIT 1",
            agreements::COLUMNS
        );
        sqlx::query(&sql)
            .bind(id.as_str())
            .bind(version.unwrap_or(0))
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(agreement_from)
            .transpose()
    }

    async fn agreement_versions(&self, id: &AgreementId) -> Result<Vec<Agreement>, StoreError> {
        let sql = format!(
            "SELECT {} FROM agreements WHERE id = $1 ORDER BY version",
            agreements::COLUMNS
        );
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(agreement_from)
            .collect()
    }

    async fn agreements_of(
        &self,
        agency: &AgencyCode,
        after: After<String>,
        n: u32,
    ) -> Result<Vec<Agreement>, StoreError> {
        let columns: Vec<String> = agreements::COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect();
        let sql = format!(
            "SELECT {} FROM agreements a JOIN agreement_parties p \
             ON p.agreement_id = a.id AND p.version = a.version AND p.agency = $1 \
             WHERE a.version = (SELECT MAX(m.version) FROM agreements m WHERE m.id = a.id) \
             AND a.id > $2 ORDER BY a.id LIMIT $3",
            columns.join(", ")
        );
        let after = match after {
            After::Start => String::new(),
            After::Key(id) => id,
        };
        sqlx::query(&sql)
            .bind(agency.as_str())
            .bind(after)
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(agreement_from)
            .collect()
    }

    async fn live_agreements(&self) -> Result<Vec<Agreement>, StoreError> {
        let sql = format!(
            "SELECT {} FROM agreements WHERE status <> 'superseded' ORDER BY id, version",
            agreements::COLUMNS
        );
        sqlx::query(&sql)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(agreement_from)
            .collect()
    }

    async fn consent(&self, id: &ConsentId) -> Result<Option<Consent>, StoreError> {
        let sql = format!("SELECT {} FROM consents WHERE id = $1", consents::COLUMNS);
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(consent_from)
            .transpose()
    }

    async fn consents_of(
        &self,
        subject: &SubjectId,
        agency: &AgencyCode,
        after: After<(i64, String)>,
        n: u32,
    ) -> Result<Vec<Consent>, StoreError> {
        let mut q = Query::new(&format!(
            "SELECT {} FROM consents WHERE ",
            consents::COLUMNS
        ));
        let code = agency.as_str().to_owned();
        q.push("subject_id = ?", Arg::Text(subject.as_str().to_owned()))
            .push(" AND (recorded_by = ?", Arg::Text(code.clone()))
            .push(
                " OR recipients = '' OR recipients LIKE ?)",
                Arg::Text(format!("%,{code},%")),
            );
        if let After::Key((t, id)) = after {
            q.push(" AND (record_time < ?", Arg::Int(t))
                .push(" OR (record_time = ?", Arg::Int(t))
                .push(" AND id < ?))", Arg::Text(id));
        }
        q.raw(" ORDER BY record_time DESC, id DESC")
            .push(" LIMIT ?", Arg::Int(limit(n)));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(consent_from).collect()
    }

    async fn consents_changed(&self, since: i64) -> Result<Vec<Consent>, StoreError> {
        let sql = format!(
            "SELECT {} FROM consents WHERE seq > $1 ORDER BY seq",
            consents::COLUMNS
        );
        sqlx::query(&sql)
            .bind(since)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(consent_from)
            .collect()
    }

    async fn registry_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT registry_version FROM policy_state WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn policy_versions(&self) -> Result<PolicyVersions, StoreError> {
        let row = sqlx::query(
            "SELECT agreements_version, consents_version FROM policy_state WHERE id = 1",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(PolicyVersions {
            agreements: row.try_get("agreements_version")?,
            consents: row.try_get("consents_version")?,
        })
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }
}
