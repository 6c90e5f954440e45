//! The write path: one sequencer per process appends every change and its
//! ledger entry, batching the commits that arrive together (group commit).
//!
//! A batch is one transaction and one durable commit. It takes the ledger
//! head's lock first (a row lock on PostgreSQL, so that batches of several
//! processes on one database follow one another and the tree never forks;
//! SQLite's write lock), reads the tree's right edge once, and then runs
//! each job's writes in a savepoint and gives its entry the next leaf index
//! (in commit order). A job whose writes fail is rolled back to its
//! savepoint alone and told why; the others go on. The batch's entries and
//! the tree nodes their leaves complete are then inserted with a few
//! multi-row statements, and the new head written. Each caller waits until its batch is durable, so no data is
//! answered or changed before its entry is on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::sql::{fetch_nodes, head_from, json, micros, signed};
use super::{Committed, StoreError, Write};
use crate::domain::{AgencyCode, Identifier, Purpose, Record, RecordId, SubjectId};
use crate::ledger::merkle::{Frontier, NodeId};
use crate::ledger::{Entry, EntryDraft};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The most jobs one batch holds.
const MAX_BATCH: usize = 256;

/// How many jobs may wait for the sequencer.
const QUEUE: usize = 4096;

/// A change and its ledger entry, waiting to be committed.
struct Job {
    writes: Vec<Write>,
    draft: EntryDraft,
    done: oneshot::Sender<Result<Entry, StoreError>>,
}

/// The handle through which a store's commits reach its sequencer.
#[derive(Debug, Clone)]
pub struct Sequencer {
    jobs: mpsc::Sender<Job>,
    state: Arc<State>,
}

/// What the sequencer's task tells its handles.
#[derive(Debug, Default)]
struct State {
    /// Batches committed (each one durable commit).
    batches: AtomicU64,
    /// Whether the last batch failed as a whole (the database refused it).
    failing: AtomicBool,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("action", &self.draft.action)
            .finish()
    }
}

impl Sequencer {
    /// Starts the sequencer of the database behind `pool`.
    pub fn start(pool: AnyPool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let state = Arc::new(State::default());
        tokio::spawn(run(pool, queue, Arc::clone(&state)));
        Self { jobs, state }
    }

    /// Commits `writes` with the entry `draft`; the receipt comes once they
    /// are durable.
    pub async fn commit(
        &self,
        writes: Vec<Write>,
        draft: EntryDraft,
    ) -> Result<Committed, StoreError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                writes,
                draft,
                done,
            })
            .await
            .map_err(|_| StoreError::Batch("the ledger sequencer has stopped".to_owned()))?;
        result
            .await
            .map_err(|_| StoreError::Batch("the ledger sequencer has stopped".to_owned()))?
            .map(|entry| Committed { entry })
    }

    /// How many batches have been committed (each one durable commit).
    pub fn batches(&self) -> u64 {
        self.state.batches.load(Ordering::Relaxed)
    }

    /// Whether the last batch failed as a whole: until one commits again,
    /// the database may be refusing writes (a full disk, say).
    pub fn failing(&self) -> bool {
        self.state.failing.load(Ordering::SeqCst)
    }
}

/// Takes the jobs waiting, up to a batch, and commits them; until every
/// handle is dropped.
async fn run(pool: AnyPool, mut queue: mpsc::Receiver<Job>, state: Arc<State>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let committed = commit_batch(&pool, batch, &mut outcomes).await;
        if committed.is_ok() {
            state.batches.fetch_add(1, Ordering::Relaxed);
        }
        state.failing.store(committed.is_err(), Ordering::SeqCst);
        for (done, outcome) in outcomes {
            let outcome = match (&committed, outcome) {
                (Ok(()), outcome) => outcome,
                (Err(e), Ok(_)) => Err(e.for_job()),
                (Err(_), failed) => failed,
            };
            // The caller may have gone; its entry stands either way.
            let _ = done.send(outcome);
        }
    }
}

type Outcomes = Vec<(
    oneshot::Sender<Result<Entry, StoreError>>,
    Result<Entry, StoreError>,
)>;

/// Commits one batch; each job's own outcome goes to `outcomes` (jobs not
/// reached when the batch fails are answered with the batch's error).
async fn commit_batch(
    pool: &AnyPool,
    batch: Vec<Job>,
    outcomes: &mut Outcomes,
) -> Result<(), StoreError> {
    let mut jobs = batch.into_iter();
    let result = match pool.acquire().await {
        Ok(mut conn) => {
            let result = run_batch(&mut conn, &mut jobs, outcomes).await;
            if result.is_err() {
                // After a failed batch the connection's transaction state
                // is not known: SQLite rolls a transaction back by itself
                // on some errors (a full disk, an I/O error) while the
                // driver still counts it as open, so the next batch would
                // only open a savepoint inside it and its "commit" would
                // save nothing. Such a connection is closed, never reused;
                // the pool opens a fresh one for the next batch.
                conn.close_on_drop();
            }
            result
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = &result {
        for job in jobs {
            outcomes.push((job.done, Err(e.for_job())));
        }
    }
    result
}

/// Runs the jobs of one batch in one transaction on `conn`; a job that
/// fails on its own (a stale etag, a taken identifier) is undone alone,
/// while any database error fails the whole batch.
async fn run_batch(
    conn: &mut sqlx::AnyConnection,
    jobs: &mut impl Iterator<Item = Job>,
    outcomes: &mut Outcomes,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Acquire::begin(conn).await?;
    // Take the ledger head's lock first: on PostgreSQL a row lock that
    // serialises batches; on SQLite the database write lock, taken before
    // any read so that a busy database is waited for rather than failing
    // the upgrade of a read snapshot.
    sqlx::query("UPDATE ledger_head SET size = size WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let mut frontier = load_frontier(&mut tx).await?;
    let mut appended = Appended::default();
    for job in jobs.by_ref() {
        let index = signed(frontier.size())?;
        if !job.writes.is_empty() {
            // Only a job that changes data can fail on its own; it runs in
            // a savepoint so that it can be undone alone.
            let mut savepoint = sqlx::Acquire::begin(&mut tx).await?;
            let mut applied = Ok(());
            for write in job.writes {
                applied = apply(&mut savepoint, write, index).await;
                if applied.is_err() {
                    break;
                }
            }
            match applied {
                Ok(()) => savepoint.commit().await?,
                // The database itself failed: the transaction may be gone
                // with it, so nothing more is run in it.
                Err(e @ StoreError::Database(_)) => {
                    outcomes.push((job.done, Err(e.for_job())));
                    return Err(e);
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    outcomes.push((job.done, Err(e)));
                    continue;
                }
            }
        }
        let entry = Entry {
            index,
            draft: job.draft,
        };
        frontier.push(entry.leaf_hash(), |id, h| appended.nodes.push((id, h)));
        appended.entries.push(entry.clone());
        outcomes.push((job.done, Ok(entry)));
    }
    appended.insert(&mut tx).await?;
    sqlx::query("UPDATE ledger_head SET size = $1, root_hash = $2 WHERE id = 1")
        .bind(signed(frontier.size())?)
        .bind(frontier.root().to_vec())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The tree's right edge, read under the head's lock.
async fn load_frontier(tx: &mut Tx<'_>) -> Result<Frontier, StoreError> {
    let head = head_from(
        &sqlx::query("SELECT size, root_hash FROM ledger_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?,
    )?;
    let ids = Frontier::ids(head.size);
    let mut stored = fetch_nodes(tx, &ids).await?;
    let nodes = ids
        .iter()
        .map(|id| {
            stored
                .remove(id)
                .ok_or_else(|| StoreError::Corrupt(format!("ledger tree node {id:?} is missing")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let frontier =
        Frontier::new(head.size, nodes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if frontier.root() != head.root {
        return Err(StoreError::Corrupt(
            "the ledger head's root is not the root of its stored tree".to_owned(),
        ));
    }
    Ok(frontier)
}

/// The entries of a batch and the tree nodes their leaves complete,
/// written together once every job has run.
#[derive(Default)]
struct Appended {
    entries: Vec<Entry>,
    nodes: Vec<(NodeId, crate::ledger::Hash)>,
}

/// Rows per multi-row INSERT (within both backends' parameter limits).
const ENTRY_ROWS: usize = 1000;
const NODE_ROWS: usize = 5000;

/// `INSERT INTO {table} ({columns}) VALUES ($1, …), …` for `rows` rows.
fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut p = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..columns.len() {
            p += 1;
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${p}"));
        }
        sql.push(')');
    }
    sql
}

impl Appended {
    async fn insert(&self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        const ENTRY_COLUMNS: [&str; 21] = [
            "idx",
            "id",
            "time",
            "request_id",
            "agency",
            "principal",
            "roles",
            "action",
            "purpose",
            "subject",
            "records",
            "fields",
            "outcome",
            "reason_code",
            "reason",
            "controller",
            "agreements",
            "lawful_bases",
            "consent",
            "break_glass",
            "client_certificate",
        ];
        for chunk in self.entries.chunks(ENTRY_ROWS) {
            let sql = insert_sql("ledger_entries", &ENTRY_COLUMNS, chunk.len());
            let mut q = sqlx::query(&sql);
            for entry in chunk {
                let d = &entry.draft;
                q = q
                    .bind(entry.index)
                    .bind(d.id.as_str())
                    .bind(micros(d.time))
                    .bind(d.request_id.as_str())
                    .bind(d.agency.as_str())
                    .bind(d.principal.as_str())
                    .bind(json(&d.roles)?)
                    .bind(d.action.as_str())
                    .bind(d.purpose.map_or("", Purpose::code))
                    .bind(d.subject.as_str())
                    .bind(json(&d.records)?)
                    .bind(json(&d.fields)?)
                    .bind(d.outcome.code())
                    .bind(d.reason_code.as_str())
                    .bind(d.reason.as_str())
                    .bind(d.controller.as_str())
                    .bind(json(&d.grounds.agreements)?)
                    .bind(json(&d.grounds.lawful_bases)?)
                    .bind(d.grounds.consent.as_str())
                    .bind(d.grounds.break_glass.as_str())
                    .bind(d.client_certificate.as_str());
            }
            q.execute(&mut **tx).await?;
        }
        let subjects: Vec<(&str, i64)> = self
            .entries
            .iter()
            .flat_map(|e| e.subjects().into_iter().map(move |s| (s, e.index)))
            .collect();
        for chunk in subjects.chunks(NODE_ROWS) {
            let sql = insert_sql("ledger_subjects", &["subject", "idx"], chunk.len());
            let mut q = sqlx::query(&sql);
            for (subject, index) in chunk {
                q = q.bind(*subject).bind(*index);
            }
            q.execute(&mut **tx).await?;
        }
        for chunk in self.nodes.chunks(NODE_ROWS) {
            let sql = insert_sql("ledger_nodes", &["level", "idx", "hash"], chunk.len());
            let mut q = sqlx::query(&sql);
            for (id, h) in chunk {
                q = q
                    .bind(i64::from(id.level))
                    .bind(signed(id.index)?)
                    .bind(h.to_vec());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// Applies one write; `index` is the ledger index the job's entry will
/// have.
async fn apply(tx: &mut Tx<'_>, write: Write, index: i64) -> Result<(), StoreError> {
    match write {
        Write::InsertAgency(a) => {
            let exists = sqlx::query("SELECT 1 FROM agencies WHERE code = $1")
                .bind(a.code.as_str())
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "agency {} already exists",
                    a.code.resource_name()
                )));
            }
            sqlx::query(
                "INSERT INTO agencies (code, display_name, kind, status, create_time, update_time, etag) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(a.code.as_str())
            .bind(a.display_name.as_str())
            .bind(a.kind.code())
            .bind(a.status.code())
            .bind(micros(a.create_time))
            .bind(micros(a.update_time))
            .bind(a.etag.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Write::UpdateAgency {
            agency: a,
            expected_etag,
        } => {
            let done = sqlx::query(
                "UPDATE agencies SET display_name = $1, status = $2, update_time = $3, etag = $4 \
                 WHERE code = $5 AND etag = $6",
            )
            .bind(a.display_name.as_str())
            .bind(a.status.code())
            .bind(micros(a.update_time))
            .bind(a.etag.as_str())
            .bind(a.code.as_str())
            .bind(expected_etag.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                let current: Option<String> =
                    sqlx::query_scalar("SELECT etag FROM agencies WHERE code = $1")
                        .bind(a.code.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                return Err(match current {
                    None => StoreError::NotFound(a.code.resource_name()),
                    Some(current) => StoreError::StaleEtag {
                        given: expected_etag,
                        current,
                    },
                });
            }
        }
        Write::InsertRecordClass(c) => {
            let exists = sqlx::query("SELECT 1 FROM record_classes WHERE id = $1")
                .bind(c.id.as_str())
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "record class {} already exists",
                    c.id.resource_name()
                )));
            }
            sqlx::query(
                "INSERT INTO record_classes (id, display_name, description, fields, create_time) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(c.id.as_str())
            .bind(c.display_name.as_str())
            .bind(c.description.as_str())
            .bind(json(&c.fields)?)
            .bind(micros(c.create_time))
            .execute(&mut **tx)
            .await?;
        }
        Write::InsertSubject(s) => {
            let d = &s.demographics;
            sqlx::query(
                "INSERT INTO subjects (id, given_name, family_name, family_name_key, birth_date, gender, \
                 postcode, uprn, registered_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(s.id.as_str())
            .bind(d.given_name.as_str())
            .bind(d.family_name.as_str())
            .bind(d.family_name.to_lowercase())
            .bind(d.birth_date.to_string())
            .bind(d.gender.code())
            .bind(d.postcode.clone().unwrap_or_default())
            .bind(d.uprn.clone().unwrap_or_default())
            .bind(s.registered_by.as_str())
            .bind(micros(s.create_time))
            .execute(&mut **tx)
            .await?;
            for identifier in &s.identifiers {
                link(tx, &s.id, identifier, &s.registered_by, s.create_time).await?;
            }
        }
        Write::LinkIdentifier {
            subject,
            identifier,
            linked_by,
            time,
        } => {
            link(tx, &subject, &identifier, &linked_by, time).await?;
        }
        Write::UnlinkIdentifier {
            subject,
            identifier,
        } => {
            let done = sqlx::query(
                "DELETE FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3 AND subject_id = $4",
            )
            .bind(identifier.system().code())
            .bind(identifier.assigner().map_or("", AgencyCode::as_str))
            .bind(identifier.value())
            .bind(subject.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "identifier {identifier} on {}",
                    subject.resource_name()
                )));
            }
        }
        Write::InsertRecord {
            record: r,
            written_by,
        } => {
            sqlx::query(
                "INSERT INTO records (id, subject_id, record_class, controller, version, etag, create_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(r.id.as_str())
            .bind(r.subject.as_str())
            .bind(r.record_class.as_str())
            .bind(r.controller.as_str())
            .bind(r.version)
            .bind(r.etag.as_str())
            .bind(micros(r.create_time))
            .bind(micros(r.update_time))
            .execute(&mut **tx)
            .await?;
            insert_version(tx, &r, &written_by).await?;
        }
        Write::UpdateRecord {
            record: r,
            expected_etag,
            written_by,
        } => {
            let done = sqlx::query(
                "UPDATE records SET version = $1, etag = $2, update_time = $3 WHERE id = $4 AND etag = $5",
            )
            .bind(r.version)
            .bind(r.etag.as_str())
            .bind(micros(r.update_time))
            .bind(r.id.as_str())
            .bind(expected_etag.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                let current: Option<String> =
                    sqlx::query_scalar("SELECT etag FROM records WHERE id = $1")
                        .bind(r.id.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                return Err(match current {
                    None => StoreError::NotFound(r.id.resource_name()),
                    Some(current) => StoreError::StaleEtag {
                        given: expected_etag,
                        current,
                    },
                });
            }
            insert_version(tx, &r, &written_by).await?;
        }
        Write::InsertAgreement(a) => super::agreements::insert(tx, &a).await?,
        Write::UpdateAgreement {
            agreement,
            expected_revision,
        } => super::agreements::update(tx, &agreement, expected_revision).await?,
        Write::Seal {
            agency,
            subject,
            record,
            reason,
            sealed_by,
            time,
        } => {
            let done = sqlx::query(
                "INSERT INTO seals (agency, subject_id, record_id, reason, sealed_by, seal_time) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(agency.as_str())
            .bind(subject.as_str())
            .bind(record.as_ref().map_or("", RecordId::as_str))
            .bind(reason.as_str())
            .bind(sealed_by.as_str())
            .bind(micros(time))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("it is already sealed".to_owned()));
            }
        }
        Write::Unseal {
            agency,
            subject,
            record,
        } => {
            let done = sqlx::query(
                "DELETE FROM seals WHERE agency = $1 AND subject_id = $2 AND record_id = $3",
            )
            .bind(agency.as_str())
            .bind(subject.as_str())
            .bind(record.as_ref().map_or("", RecordId::as_str))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("it is not sealed".to_owned()));
            }
        }
        Write::InsertCertificateIdentity(c) => super::credentials::insert(tx, &c).await?,
        Write::RevokeCertificateIdentity { id, time } => {
            super::credentials::revoke(tx, &id, time).await?;
        }
        Write::InsertTokenIssuer(t) => super::credentials::insert_issuer(tx, &t).await?,
        Write::RemoveTokenIssuer(id) => super::credentials::remove_issuer(tx, &id).await?,
        Write::InsertConsent(c) => super::consents::insert(tx, &c).await?,
        Write::WithdrawConsent { id, withdrawal } => {
            super::consents::withdraw(tx, &id, &withdrawal).await?;
        }
        Write::RaiseAlert(a) => {
            sqlx::query(
                "INSERT INTO alerts (id, kind, recipient, agency, principal, subject, summary, entry_index, raise_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id.as_str())
            .bind(a.kind.code())
            .bind(a.recipient.as_str())
            .bind(a.agency.as_str())
            .bind(a.principal.as_str())
            .bind(a.subject.as_str())
            .bind(a.summary.as_str())
            .bind(index)
            .bind(micros(a.raise_time))
            .execute(&mut **tx)
            .await?;
        }
        Write::AcknowledgeAlert {
            id,
            acknowledgement: ack,
        } => {
            let done = sqlx::query(
                "UPDATE alerts SET ack_by = $1, ack_time = $2, ack_note = $3 WHERE id = $4 AND ack_by IS NULL",
            )
            .bind(ack.principal.as_str())
            .bind(micros(ack.time))
            .bind(ack.note.as_str())
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                let exists = sqlx::query("SELECT 1 FROM alerts WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(id.resource_name()));
                }
            }
        }
        Write::SetMeta { key, value } => {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn link(
    tx: &mut Tx<'_>,
    subject: &SubjectId,
    identifier: &Identifier,
    linked_by: &AgencyCode,
    time: DateTime<Utc>,
) -> Result<(), StoreError> {
    let assigner = identifier.assigner().map_or("", AgencyCode::as_str);
    let taken = sqlx::query(
        "SELECT 1 FROM subject_identifiers WHERE system = $1 AND assigner = $2 AND value = $3",
    )
    .bind(identifier.system().code())
    .bind(assigner)
    .bind(identifier.value())
    .fetch_optional(&mut **tx)
    .await?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "identifier {identifier} already belongs to a subject"
        )));
    }
    sqlx::query(
        "INSERT INTO subject_identifiers (system, assigner, value, subject_id, linked_by, link_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(identifier.system().code())
    .bind(assigner)
    .bind(identifier.value())
    .bind(subject.as_str())
    .bind(linked_by.as_str())
    .bind(micros(time))
    .execute(&mut **tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::AlreadyExists(
            format!("identifier {identifier} already belongs to a subject"),
        ),
        sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => {
            StoreError::NotFound(subject.resource_name())
        }
        other => StoreError::Database(other),
    })?;
    Ok(())
}

async fn insert_version(tx: &mut Tx<'_>, r: &Record, written_by: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO record_versions (record_id, version, fields, etag, write_time, written_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(r.id.as_str())
    .bind(r.version)
    .bind(json(&r.fields)?)
    .bind(r.etag.as_str())
    .bind(micros(r.update_time))
    .bind(written_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
