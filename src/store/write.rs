//! The write path: one sequencer per process appends every change and its
//! ledger entry, batching the commits that arrive together (group commit).
//!
//! The sequencer runs on a thread of its own and has its own connection,
//! not a pooled one: opened when the first batch needs it and after any
//! batch failed (its state is then not known), and never pinged. On
//! SQLite a batch of reads and record writes (nearly every batch) runs on
//! a second one, called directly on the sequencer's thread (see
//! [`super::lite`]): the batch is then the one hop that brought its jobs
//! to the sequencer, with no trip to a driver's thread.
//!
//! A batch is one transaction and one durable commit. It takes the ledger
//! head's lock first (a row lock on PostgreSQL, so that batches of several
//! processes on one database follow one another and the tree never forks;
//! SQLite's write lock), in the trip that begins the transaction, and reads
//! the head there. The tree's right edge (the frontier) is kept in memory
//! from one batch to the next and used while the head is the one it was
//! built for; when another process has appended meanwhile, it is read
//! again. It then takes each job in commit order and gives its entry the
//! next leaf index. A job whose expectations (see [`super::expect`]) no
//! longer hold is refused alone. Record writes (creating a record, adding
//! a version) are checked against the state the batch read (their agency,
//! subject and current etag, kept up to date with the batch's own changes)
//! and become rows of the batch's append: no statement of their own. Any
//! other write runs its statements in a savepoint, so that a job whose
//! writes fail is rolled back alone and told why; the others go on. The
//! batch's entries, the subjects they concern, the tree nodes their leaves
//! complete, the record rows, the events the changes cause (the outbox:
//! see [`super::events`]) and the new head are then written by one
//! statement whose text does not depend on the batch's size (so it is
//! prepared once per connection).
//! A batch of reads and record writes is two round trips on PostgreSQL
//! whatever its size (begin, lock and the state its checks need; append
//! and commit) and, on SQLite, no trip beyond the sequencer's own thread.
//! Each caller waits until
//! its batch is durable, so no data is answered or changed before its entry
//! is on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Either, Executor};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;

use super::codec::{Tx, signed};
use super::expect::{Expect, Seen, StateQuery, StateRow};
use super::ledger::{Appended, head_from, load_frontier};
use super::lite::Lite;
use super::notify::Changes;
use super::records::Seal;
use super::simple::Prepared;
use super::sql::{Backend, Link, cap_pages};
use super::{Committed, StoreError, Write};
use super::{
    agencies, agreements, alerts, catalog, consents, credentials, duplicates, events, merges, meta,
    records, reviews, subjects, subscriptions,
};
use crate::ledger::merkle::Frontier;
use crate::ledger::{Entry, EntryDraft, TreeHead};

/// The most jobs one batch holds.
const MAX_BATCH: usize = 256;

/// How many jobs may wait for the sequencer.
const QUEUE: usize = 4096;

/// A change and its ledger entry, waiting to be committed.
struct Job {
    writes: Vec<Write>,
    expects: Vec<Expect>,
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
    /// Ledger entries in the batches committed.
    entries: AtomicU64,
    /// Commits sent to the sequencer and not answered yet.
    waiting: AtomicU64,
    /// Whether the last batch failed as a whole (the database refused it).
    failing: AtomicBool,
}

impl Job {
    /// Whether the job's writes are record writes only, written as rows of
    /// the batch's append (checked by the batch, with no statement of
    /// their own; see [`Seen::admit`]).
    fn as_rows(&self) -> bool {
        !self.writes.is_empty()
            && self
                .writes
                .iter()
                .all(|w| matches!(w, Write::InsertRecord { .. } | Write::UpdateRecord { .. }))
    }

    /// Whether the batch checks anything for the job before it is written.
    fn checks(&self) -> bool {
        !self.expects.is_empty() || self.as_rows()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("action", &self.draft.action)
            .finish()
    }
}

impl Sequencer {
    /// Starts the sequencer of the database `link` opens, on a thread of
    /// its own: each batch waits on its connection several times, and on
    /// the server's runtime every one of those wake-ups would queue behind
    /// the calls being served.
    pub(super) fn start(link: Link, changes: Changes) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let state = Arc::new(State::default());
        let writer = Writer {
            link,
            conn: None,
            page_cap: 0,
            frontier: None,
            prepared: Prepared::default(),
            lite: None,
            changes,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Batch(format!("cannot start the ledger sequencer: {e}")))?;
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name("accord-sequencer".to_owned())
            .spawn(move || runtime.block_on(run(writer, queue, shared)))
            .map_err(|e| StoreError::Batch(format!("cannot start the ledger sequencer: {e}")))?;
        Ok(Self { jobs, state })
    }

    /// Commits `writes` with the entry `draft` if `expects` hold; the
    /// receipt comes once they are durable.
    pub async fn commit(
        &self,
        writes: Vec<Write>,
        expects: Vec<Expect>,
        draft: EntryDraft,
    ) -> Result<Committed, StoreError> {
        let (done, result) = oneshot::channel();
        self.state.waiting.fetch_add(1, Ordering::SeqCst);
        let sent = self
            .jobs
            .send(Job {
                writes,
                expects,
                draft,
                done,
            })
            .await;
        if sent.is_err() {
            self.state.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Batch(
                "the ledger sequencer has stopped".to_owned(),
            ));
        }
        result
            .await
            .map_err(|_| StoreError::Batch("the ledger sequencer has stopped".to_owned()))?
            .map(|entry| Committed { entry })
    }

    /// How many batches have been committed (each one durable commit).
    pub fn batches(&self) -> u64 {
        self.state.batches.load(Ordering::Relaxed)
    }

    /// How many ledger entries those batches held.
    pub fn entries(&self) -> u64 {
        self.state.entries.load(Ordering::Relaxed)
    }

    /// How many commits are waiting: queued for the sequencer or in the
    /// batch it is committing.
    pub fn waiting(&self) -> u64 {
        self.state.waiting.load(Ordering::SeqCst)
    }

    /// Whether the last batch failed as a whole: until one commits again,
    /// the database may be refusing writes (a full disk, say).
    pub fn failing(&self) -> bool {
        self.state.failing.load(Ordering::SeqCst)
    }
}

/// The sequencer's connection and what it keeps between batches.
struct Writer {
    link: Link,
    /// Open, and in no transaction, between batches that committed.
    conn: Option<AnyConnection>,
    /// The SQLite page cap applied to `conn` (0: none).
    page_cap: u32,
    /// The tree's right edge after the last batch this writer committed.
    frontier: Option<Frontier>,
    /// The statements `conn` has prepared by name (PostgreSQL).
    prepared: Prepared,
    /// The sequencer's own SQLite connection (see [`super::lite`]); open
    /// between batches that committed.
    lite: Option<Lite>,
    /// Woken when a batch with events commits.
    changes: Changes,
}

impl Writer {
    /// The connection, opened if there is none, with the page cap wanted
    /// now, and the statements it has prepared.
    async fn connection(&mut self) -> Result<(&mut AnyConnection, &mut Prepared), StoreError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            empty => {
                self.page_cap = self.link.page_cap();
                empty.insert(self.link.open().await?)
            }
        };
        let cap = self.link.page_cap();
        if cap != self.page_cap {
            cap_pages(conn, cap).await?;
            self.page_cap = cap;
        }
        Ok((conn, &mut self.prepared))
    }

    /// The sequencer's own SQLite connection, opened if there is none, with
    /// the page cap wanted now.
    fn lite(&mut self) -> Result<&mut Lite, StoreError> {
        let lite = match &mut self.lite {
            Some(lite) => lite,
            empty => {
                let file = self.link.sqlite_file().ok_or_else(|| {
                    StoreError::Corrupt("the database is not a SQLite file".to_owned())
                })?;
                empty.insert(Lite::open(&file)?)
            }
        };
        lite.cap(self.link.page_cap())?;
        Ok(lite)
    }

    /// Forgets the connections and the frontier (after a failed batch).
    fn reset(&mut self) {
        // After a failed batch the connection's transaction state is not
        // known: SQLite rolls a transaction back by itself on some errors
        // (a full disk, an I/O error) while the driver still counts it as
        // open, so the next batch would only open a savepoint inside it and
        // its "commit" would save nothing. Such a connection is dropped,
        // never reused; the next batch opens a fresh one.
        self.conn = None;
        self.frontier = None;
        self.prepared = Prepared::default();
        self.lite = None;
    }
}

/// Takes the jobs waiting, up to a batch, and commits them; until every
/// handle is dropped.
async fn run(mut writer: Writer, mut queue: mpsc::Receiver<Job>, state: Arc<State>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let started = std::time::Instant::now();
        let committed = commit_batch(&mut writer, batch, &mut outcomes).await;
        if committed.is_ok() {
            let entries: Vec<&Entry> = outcomes
                .iter()
                .filter_map(|(_, o)| o.as_ref().ok())
                .collect();
            crate::monitor::batch(&entries, started.elapsed());
            state.batches.fetch_add(1, Ordering::Relaxed);
            state
                .entries
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
        } else {
            crate::monitor::batch_failed();
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
            state.waiting.fetch_sub(1, Ordering::SeqCst);
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
    writer: &mut Writer,
    batch: Vec<Job>,
    outcomes: &mut Outcomes,
) -> Result<(), StoreError> {
    let size = batch.len();
    let reused = writer.conn.is_some();
    let mut jobs = batch.into_iter();
    let mut result = run_batch(writer, &mut jobs, outcomes).await;
    if result.is_err() {
        writer.reset();
    }
    if let Err(e) = &result
        && reused
        && e.is_outage()
        && jobs.len() == size
    {
        // The connection kept from an earlier batch was broken (the
        // database restarted, say) and the batch failed before any of its
        // jobs ran: nothing was written, so it is tried once on a fresh
        // connection.
        result = run_batch(writer, &mut jobs, outcomes).await;
        if result.is_err() {
            writer.reset();
        }
    }
    if let Err(e) = &result {
        for job in jobs {
            outcomes.push((job.done, Err(e.for_job())));
        }
    }
    result
}

/// Runs the jobs of one batch in one transaction on the writer's
/// connection; a job that fails on its own (a stale etag, a taken
/// identifier) is undone alone, while any database error fails the whole
/// batch.
async fn run_batch(
    writer: &mut Writer,
    jobs: &mut std::vec::IntoIter<Job>,
    outcomes: &mut Outcomes,
) -> Result<(), StoreError> {
    let cached = writer.frontier.take();
    let direct = writer.link.sqlite_file().is_some()
        && jobs
            .as_slice()
            .iter()
            .all(|j| j.writes.is_empty() || j.as_rows());
    let mut driver = if direct {
        Driver::Lite(writer.lite()?)
    } else {
        let backend = writer.link.backend();
        let (conn, prepared) = writer.connection().await?;
        Driver::Sqlx {
            conn,
            backend,
            prepared,
        }
    };
    let checks = jobs.as_slice().iter().any(Job::checks);
    let pending = jobs
        .as_slice()
        .iter()
        .map(|j| (j.expects.as_slice(), j.writes.as_slice()));
    let (head, mut seen) = driver.begin(checks.then_some(pending)).await?;
    let mut frontier = match cached {
        Some(f) if f.size() == head.size && f.root() == head.root => f,
        _ => driver.frontier(&head).await?,
    };
    let mut appended = Appended::default();
    while let Some(job) = jobs.next() {
        let index = signed(frontier.size())?;
        if job.checks() {
            let pending = std::iter::once(&job)
                .chain(jobs.as_slice())
                .map(|j| (j.expects.as_slice(), j.writes.as_slice()));
            let state = match seen.take() {
                Some(state) => state,
                None => {
                    let (conn, backend) = driver.sqlx()?;
                    Seen::read(conn, backend, pending).await?
                }
            };
            let holds = state
                .check(&job.expects)
                .and_then(|()| match job.as_rows() {
                    true => state.admit(&job.writes),
                    false => Ok(()),
                });
            seen = Some(state);
            if let Err(e) = holds {
                outcomes.push((job.done, Err(e)));
                continue;
            }
        }
        let events = events::of(&job.writes, index, job.draft.time);
        if job.as_rows() {
            // Record writes, checked above, are rows of the batch's append.
            seen = seen.and_then(|s| s.after(&job.writes));
            appended.record_rows(job.writes)?;
        } else if !job.writes.is_empty() {
            // Any other write runs its own statements, in a savepoint so
            // that it can be undone alone if it fails.
            let (conn, _) = driver.sqlx()?;
            conn.execute("SAVEPOINT job").await?;
            let mut applied = Ok(());
            for write in &job.writes {
                applied = apply(conn, write, index).await;
                if applied.is_err() {
                    break;
                }
            }
            match applied {
                Ok(()) => {
                    conn.execute("RELEASE SAVEPOINT job").await?;
                    seen = seen.and_then(|s| s.after(&job.writes));
                }
                // The database itself failed: the transaction may be gone
                // with it, so nothing more is run in it.
                Err(e @ StoreError::Database(_)) => {
                    outcomes.push((job.done, Err(e.for_job())));
                    return Err(e);
                }
                Err(e) => {
                    conn.execute("ROLLBACK TO SAVEPOINT job").await?;
                    conn.execute("RELEASE SAVEPOINT job").await?;
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
        appended.events.extend(events);
        outcomes.push((job.done, Ok(entry)));
    }
    driver.commit(&appended, &frontier).await?;
    writer.frontier = Some(frontier);
    if !appended.events.is_empty() {
        writer.changes.bump();
    }
    Ok(())
}

/// The connection a batch runs on.
enum Driver<'a> {
    /// sqlx's: every batch on PostgreSQL, and on SQLite a batch with a
    /// write that runs statements of its own.
    Sqlx {
        conn: &'a mut AnyConnection,
        backend: Backend,
        prepared: &'a mut Prepared,
    },
    /// The sequencer's own SQLite connection, for a batch of reads and
    /// record writes (see [`super::lite`]).
    Lite(&'a mut Lite),
}

impl Driver<'_> {
    /// Begins the batch (see [`begin`]).
    async fn begin<'e>(
        &mut self,
        pending: Option<impl Iterator<Item = (&'e [Expect], &'e [Write])>>,
    ) -> Result<(TreeHead, Option<Seen>), StoreError> {
        match self {
            Self::Sqlx {
                conn,
                backend,
                prepared,
            } => begin(conn, *backend, prepared, pending).await,
            Self::Lite(lite) => {
                let state = pending
                    .map(|p| StateQuery::of(Backend::Sqlite, p))
                    .transpose()?;
                lite.begin(state.as_ref())
            }
        }
    }

    /// The tree's right edge for `head`, read from the database.
    async fn frontier(&mut self, head: &TreeHead) -> Result<Frontier, StoreError> {
        match self {
            Self::Sqlx { conn, .. } => load_frontier(conn, head).await,
            Self::Lite(lite) => lite.frontier(head),
        }
    }

    /// Writes the batch's append and commits.
    async fn commit(&mut self, appended: &Appended, frontier: &Frontier) -> Result<(), StoreError> {
        match self {
            Self::Sqlx {
                conn,
                backend,
                prepared,
            } => appended.commit(conn, *backend, frontier, prepared).await,
            Self::Lite(lite) => lite.append(&appended.values(frontier)?),
        }
    }

    /// sqlx's connection, for what only it runs: a write's own statements
    /// and the state read again after one.
    fn sqlx(&mut self) -> Result<(&mut AnyConnection, Backend), StoreError> {
        match self {
            Self::Sqlx { conn, backend, .. } => Ok((conn, *backend)),
            Self::Lite(_) => Err(StoreError::Corrupt(
                "a batch on the sequencer's own connection holds only reads and record writes"
                    .to_owned(),
            )),
        }
    }
}

/// The statement that takes the ledger head's lock and reads the head: on
/// PostgreSQL a row lock that serialises batches (of every process on the
/// database); on SQLite the database is already locked by then.
pub(super) const LOCK_HEAD: &str =
    "UPDATE ledger_head SET size = size WHERE id = 1 RETURNING size, root_hash";

/// Begins the batch's transaction and takes the ledger head's lock,
/// reading the head and, for the jobs `pending` when any of them has
/// checks, the state those checks need (see [`Seen`]).
///
/// On SQLite this is one trip to the driver's thread: `BEGIN IMMEDIATE`
/// takes the database's write lock before any read (so that a busy
/// database is waited for, rather than failing the upgrade of a read
/// snapshot), and the statements after it, sent with it, read with the
/// lock held, so they see every commit before it. On PostgreSQL it is one
/// round trip too, a simple query of the three (see [`super::simple`]):
/// the state is read by its own statement after the lock's, because a
/// statement's snapshot is taken when it starts (before it waits for the
/// row lock, so the lock's statement could miss the very commit it waited
/// for) and, at read committed, each statement of a simple query takes a
/// snapshot of its own.
async fn begin<'e>(
    conn: &mut AnyConnection,
    backend: Backend,
    prepared: &mut Prepared,
    pending: Option<impl Iterator<Item = (&'e [Expect], &'e [Write])>>,
) -> Result<(TreeHead, Option<Seen>), StoreError> {
    let state = pending.map(|p| StateQuery::of(backend, p)).transpose()?;
    let mut results = match backend {
        Backend::Sqlite => {
            let state_sql = state.as_ref().map_or("", |s| s.sql);
            let sql = format!("BEGIN IMMEDIATE;\n{LOCK_HEAD};\n{state_sql}");
            let query = match &state {
                Some(state) => state.bound(&sql),
                None => sqlx::query(&sql),
            };
            statements(conn, query).await?
        }
        Backend::Postgres => {
            let mut sql = format!("BEGIN;\n{LOCK_HEAD}");
            if let Some(state) = &state {
                sql.push_str(";\n");
                state.execute(&mut sql, prepared)?;
            }
            statements(conn, sql.as_str()).await?
        }
    };
    // The rows of the lock's statement (after the begin) and of the last,
    // the state's.
    let head = head_of(results.get(1))?;
    let seen = match state {
        Some(_) => {
            let rows = results.pop().unwrap_or_default();
            Some(Seen::from_rows(rows.iter().map(StateRow::of))?)
        }
        None => None,
    };
    Ok((head, seen))
}

/// The head in the rows of the lock statement.
fn head_of(rows: Option<&Vec<AnyRow>>) -> Result<TreeHead, StoreError> {
    let row = rows
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| StoreError::Corrupt("the ledger head is missing".to_owned()))?;
    head_from(row)
}

/// Runs `query`, several statements sent as one, and returns the rows of
/// each statement, in order.
async fn statements<'q>(
    conn: &mut AnyConnection,
    query: impl sqlx::Execute<'q, sqlx::Any> + 'q,
) -> Result<Vec<Vec<AnyRow>>, StoreError> {
    let mut out = vec![Vec::new()];
    let mut results = conn.fetch_many(query);
    while let Some(result) = results.next().await {
        match result? {
            Either::Left(_) => out.push(Vec::new()),
            Either::Right(row) => {
                if let Some(rows) = out.last_mut() {
                    rows.push(row);
                }
            }
        }
    }
    // After the last statement's end, no statement follows.
    out.pop();
    Ok(out)
}

/// Applies one write through the aggregate it changes; `index` is the
/// ledger index the job's entry will have.
async fn apply(tx: &mut Tx, write: &Write, index: i64) -> Result<(), StoreError> {
    match write {
        Write::InsertAgency(a) => agencies::insert(tx, a).await,
        Write::UpdateAgency {
            agency,
            expected_etag,
        } => agencies::update(tx, agency, expected_etag).await,
        Write::InsertRecordClass(c) => catalog::insert(tx, c).await,
        Write::CheckBlockPopulation { keys, population } => {
            subjects::check_block_population(tx, keys, *population).await
        }
        Write::InsertSubject(s) => subjects::insert(tx, s).await,
        Write::LinkIdentifier {
            subject,
            identifier,
            linked_by,
            time,
        } => subjects::link(tx, subject, identifier, linked_by, *time).await,
        Write::UnlinkIdentifier {
            subject,
            identifier,
            ..
        } => subjects::unlink(tx, subject, identifier).await,
        Write::InsertRecord { record, written_by } => records::insert(tx, record, written_by).await,
        Write::UpdateRecord {
            record,
            expected_etag,
            written_by,
        } => records::update(tx, record, expected_etag, written_by).await,
        Write::Seal {
            agency,
            subject,
            record,
            reason,
            sealed_by,
            time,
        } => {
            let target = Seal {
                agency,
                subject,
                record: record.as_ref(),
            };
            records::seal(tx, target, reason, sealed_by, *time).await
        }
        Write::Unseal {
            agency,
            subject,
            record,
        } => {
            let target = Seal {
                agency,
                subject,
                record: record.as_ref(),
            };
            records::unseal(tx, target).await
        }
        Write::InsertAgreement(a) => agreements::insert(tx, a).await,
        Write::UpdateAgreement {
            agreement,
            expected_revision,
        } => agreements::update(tx, agreement, *expected_revision).await,
        Write::InsertCertificateIdentity(c) => credentials::insert(tx, c).await,
        Write::RevokeCertificateIdentity { id, time } => credentials::revoke(tx, id, *time).await,
        Write::InsertTokenIssuer(t) => credentials::insert_issuer(tx, t).await,
        Write::RemoveTokenIssuer(id) => credentials::remove_issuer(tx, id).await,
        Write::InsertConsent(c) => consents::insert(tx, c).await,
        Write::WithdrawConsent {
            consent,
            withdrawal,
        } => consents::withdraw(tx, &consent.id, withdrawal).await,
        Write::SetMeta { key, value } => meta::set(tx, key, value).await,
        Write::RaiseAlert(a) => alerts::raise(tx, a, index).await,
        Write::AcknowledgeAlert {
            id,
            acknowledgement,
        } => alerts::acknowledge(tx, id, acknowledgement).await,
        Write::InsertSubscription(s) => subscriptions::insert(tx, s, index).await,
        Write::DeleteSubscription {
            id,
            deleted_by,
            time,
        } => subscriptions::delete(tx, id, deleted_by, *time).await,
        Write::InsertReview(r) => reviews::insert(tx, r).await,
        Write::AcknowledgeReview {
            id,
            acknowledgement,
        } => reviews::acknowledge(tx, id, acknowledgement).await,
        Write::MarkReviewOverdue(id) => reviews::mark_overdue(tx, id).await,
        Write::NoteAgreementExpired(a) => agreements::note_expired(tx, a, index).await,
        Write::InsertPossibleDuplicate(d) => duplicates::insert(tx, d).await,
        Write::ResolvePossibleDuplicate { id, resolution } => {
            duplicates::resolve(tx, id, resolution).await
        }
        Write::MergeSubjects(m) => merges::merge(tx, m).await,
        Write::UnmergeSubjects(m) => merges::unmerge(tx, m).await,
    }
}
