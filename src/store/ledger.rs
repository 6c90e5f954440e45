//! The ledger at the storage boundary: its entries, the nodes of its tree,
//! its head and its checkpoints; and the append of a batch's entries with
//! the tree nodes their leaves complete.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Executor, Row};

use super::codec::{Tx, code, from_json, hash, json, limit, micros, signed, time, unsigned};
use super::events::EventRow;
use super::query::{Arg, Query};
use super::simple::{Literal, Named, Prepared};
use super::sql::Backend;
use super::{After, EntryFilter, StoreError, Write};
use crate::domain::Purpose;
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::merkle::{Frontier, NodeId};
use crate::ledger::{DisclosureCount, Entry, EntryDraft, Grounds, Hash, Outcome, TreeHead};

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
            trace_id: row.try_get("trace_id")?,
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

/// A query of ledger entries, `select` followed by the conditions of
/// `f` (at least one, so more can follow with ` AND`).
fn entry_query(select: &str, f: &EntryFilter) -> Query {
    let mut q = Query::new(select);
    q.raw("1 = 1");
    if let Some(id) = &f.id {
        q.push(" AND id = ?", Arg::Text(id.clone()));
    }
    if let Some(s) = &f.subject {
        // The subject's own entries and those of every subject merged into
        // it (while the merge stands): one person's.
        let id = s.strip_prefix("subjects/").unwrap_or_default();
        q.push(
            " AND idx IN (SELECT idx FROM ledger_subjects WHERE subject = ?",
            Arg::Text(s.clone()),
        )
        .push(
            " OR subject IN (WITH RECURSIVE merged (id) AS (\
             SELECT id FROM subjects WHERE merged_into = ? \
             UNION SELECT s.id FROM subjects s JOIN merged m ON s.merged_into = m.id) \
             SELECT 'subjects/' || id FROM merged))",
            Arg::Text(id.to_owned()),
        );
    }
    if let Some(k) = &f.disclosed {
        q.push(
            " AND idx IN (SELECT idx FROM ledger_disclosures WHERE key = ?)",
            Arg::Text(k.clone()),
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
    if let Some(t) = &f.trace_id {
        q.push(" AND trace_id = ? AND trace_id <> ''", Arg::Text(t.clone()));
    }
    if let Some(v) = &f.visible_to {
        q.push(" AND (agency = ?", Arg::Text(v.clone()))
            .push(" OR controller = ?)", Arg::Text(v.clone()));
    }
    q
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
        signed_by: Vec::new(),
    })
}

/// How many nodes one lookup asks for at most.
const NODES_PER_QUERY: usize = 500;

/// Where node `id` is stored (see [`NodeId::position`]).
pub(super) fn position(id: NodeId) -> Result<i64, StoreError> {
    let position = id
        .position()
        .ok_or_else(|| StoreError::Corrupt(format!("tree node {id:?} is past any position")))?;
    signed(position)
}

/// A tree node's id from its stored level and index.
pub(super) fn node_id(level: i64, index: i64) -> Result<NodeId, StoreError> {
    Ok(NodeId {
        level: u32::try_from(level)
            .map_err(|_| StoreError::Corrupt(format!("tree level {level}")))?,
        index: unsigned(index)?,
    })
}

/// The stored hashes of the nodes `ids` that exist.
pub(super) async fn fetch_nodes(
    conn: &mut sqlx::AnyConnection,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(NODES_PER_QUERY) {
        let mut q = Query::new("SELECT level, idx, hash FROM ledger_nodes WHERE pos IN (");
        for (n, id) in chunk.iter().enumerate() {
            q.push(if n == 0 { "?" } else { ", ?" }, Arg::Int(position(*id)?));
        }
        q.raw(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            let id = node_id(row.try_get("level")?, row.try_get("idx")?)?;
            out.insert(id, hash(row.try_get("hash")?)?);
        }
    }
    Ok(out)
}

pub(super) async fn entries(
    db: &AnyPool,
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
    let rows = q.build().fetch_all(db).await?;
    rows.iter().map(entry_from).collect()
}

pub(super) async fn count_entries(db: &AnyPool, f: &EntryFilter) -> Result<u64, StoreError> {
    let q = entry_query("SELECT COUNT(*) AS n FROM ledger_entries WHERE ", f);
    let n: i64 = q.build().fetch_one(db).await?.try_get("n")?;
    unsigned(n)
}

pub(super) async fn disclosure_counts(
    db: &AnyPool,
    keys: &[String],
    f: &EntryFilter,
) -> Result<Vec<DisclosureCount>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = entry_query(
        "SELECT agency, purpose, roles, COUNT(*) AS n FROM ledger_entries WHERE ",
        f,
    );
    q.raw(" AND idx IN (SELECT idx FROM ledger_disclosures WHERE key IN (");
    for (n, key) in keys.iter().enumerate() {
        q.push(if n == 0 { "?" } else { ", ?" }, Arg::Text(key.clone()));
    }
    q.raw(")) GROUP BY agency, purpose, roles ORDER BY agency, purpose, roles");
    let rows = q.build().fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            let purpose: String = row.try_get("purpose")?;
            Ok(DisclosureCount {
                agency: row.try_get("agency")?,
                purpose: if purpose.is_empty() {
                    None
                } else {
                    Some(code(Purpose::from_code(&purpose), "purpose", &purpose)?)
                },
                roles: from_json(&row.try_get::<String, _>("roles")?)?,
                disclosures: unsigned(row.try_get("n")?)?,
            })
        })
        .collect()
}

pub(super) async fn tree_head(db: &AnyPool) -> Result<TreeHead, StoreError> {
    head_from(
        &sqlx::query("SELECT size, root_hash FROM ledger_head WHERE id = 1")
            .fetch_one(db)
            .await?,
    )
}

pub(super) async fn nodes(
    db: &AnyPool,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut conn = db.acquire().await?;
    fetch_nodes(&mut conn, ids).await
}

pub(super) async fn save_checkpoint(
    db: &AnyPool,
    c: &SignedCheckpoint,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO ledger_checkpoints (size, root_hash, time, note) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(signed(c.head.size)?)
    .bind(c.head.root.to_vec())
    .bind(micros(c.time))
    .bind(c.note.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn latest_checkpoint(
    db: &AnyPool,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row = sqlx::query("SELECT * FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
        .fetch_optional(db)
        .await?;
    row.as_ref().map(checkpoint_from).transpose()
}

pub(super) async fn checkpoint(
    db: &AnyPool,
    size: u64,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row = sqlx::query("SELECT * FROM ledger_checkpoints WHERE size = $1")
        .bind(signed(size)?)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(checkpoint_from).transpose()
}

pub(super) async fn checkpoints(
    db: &AnyPool,
    min: u64,
    max: u64,
) -> Result<Vec<SignedCheckpoint>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM ledger_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size",
    )
    .bind(signed(min)?)
    .bind(signed(max)?)
    .fetch_all(db)
    .await?;
    rows.iter().map(checkpoint_from).collect()
}

/// The tree's right edge for `head`, read under the head's lock.
pub(super) async fn load_frontier(tx: &mut Tx, head: &TreeHead) -> Result<Frontier, StoreError> {
    let ids = Frontier::ids(head.size);
    let stored = fetch_nodes(tx, &ids).await?;
    frontier_of(head, &ids, stored)
}

/// The tree's right edge for `head` from the stored nodes, checked against
/// the head's root; `ids` are the frontier's nodes.
pub(super) fn frontier_of(
    head: &TreeHead,
    ids: &[NodeId],
    mut stored: HashMap<NodeId, Hash>,
) -> Result<Frontier, StoreError> {
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
/// written together with the new head once every job has run.
#[derive(Default)]
pub(super) struct Appended {
    pub(super) entries: Vec<Entry>,
    pub(super) nodes: Vec<(NodeId, Hash)>,
    /// Records created by the batch, at their latest version in it.
    new_records: Vec<RecordRow>,
    /// Records changed by the batch (not created by it): their latest
    /// version in it, by id.
    moved_records: std::collections::BTreeMap<String, MovedRow>,
    /// Every record version the batch writes.
    versions: Vec<VersionRow>,
    /// The events the batch's changes cause (the outbox).
    pub(super) events: Vec<EventRow>,
}

/// A new record, as the batch statement reads it.
#[derive(serde::Serialize)]
struct RecordRow {
    id: String,
    subject_id: String,
    record_class: String,
    controller: String,
    version: i64,
    etag: String,
    create_time: i64,
    update_time: i64,
}

/// A record's new current version.
#[derive(serde::Serialize)]
struct MovedRow {
    id: String,
    version: i64,
    etag: String,
    update_time: i64,
}

/// A record version.
#[derive(serde::Serialize)]
struct VersionRow {
    record_id: String,
    version: i64,
    fields: String,
    etag: String,
    write_time: i64,
    written_by: String,
}

/// One entry as the batch statement reads it (JSON columns as their text).
#[derive(serde::Serialize)]
struct EntryRow<'a> {
    idx: i64,
    id: &'a str,
    time: i64,
    request_id: &'a str,
    agency: &'a str,
    principal: &'a str,
    roles: String,
    action: &'a str,
    purpose: &'a str,
    subject: &'a str,
    records: String,
    fields: String,
    outcome: &'a str,
    reason_code: &'a str,
    reason: &'a str,
    controller: &'a str,
    agreements: String,
    lawful_bases: String,
    consent: &'a str,
    break_glass: &'a str,
    client_certificate: &'a str,
    trace_id: &'a str,
}

impl<'a> EntryRow<'a> {
    fn of(entry: &'a Entry) -> Result<Self, StoreError> {
        let d = &entry.draft;
        Ok(Self {
            idx: entry.index,
            id: &d.id,
            time: micros(d.time),
            request_id: &d.request_id,
            agency: &d.agency,
            principal: &d.principal,
            roles: json(&d.roles)?,
            action: &d.action,
            purpose: d.purpose.map_or("", Purpose::code),
            subject: &d.subject,
            records: json(&d.records)?,
            fields: json(&d.fields)?,
            outcome: d.outcome.code(),
            reason_code: &d.reason_code,
            reason: &d.reason,
            controller: &d.controller,
            agreements: json(&d.grounds.agreements)?,
            lawful_bases: json(&d.grounds.lawful_bases)?,
            consent: &d.grounds.consent,
            break_glass: &d.grounds.break_glass,
            client_certificate: &d.client_certificate,
            trace_id: &d.trace_id,
        })
    }
}

/// A subject an entry concerns.
#[derive(serde::Serialize)]
struct SubjectRow<'a> {
    subject: &'a str,
    idx: i64,
}

/// A disclosure key of an entry (see [`Entry::disclosure_keys`]).
#[derive(serde::Serialize)]
struct DisclosureRow<'a> {
    key: &'a str,
    idx: i64,
}

/// A tree node, its hash in hex.
#[derive(serde::Serialize)]
struct NodeRow {
    pos: i64,
    level: i64,
    idx: i64,
    hash: String,
}

/// The batch on PostgreSQL: one statement, whatever the batch's size
/// (so prepared once per connection), reading the rows from JSON
/// parameters; sent with the commit as one simple query (see
/// [`super::simple`]).
const APPEND_POSTGRES: &str = "\
WITH entries AS (
    INSERT INTO ledger_entries (idx, id, time, request_id, agency, principal, roles, action,
        purpose, subject, records, fields, outcome, reason_code, reason, controller,
        agreements, lawful_bases, consent, break_glass, client_certificate, trace_id)
    SELECT idx, id, time, request_id, agency, principal, roles, action,
        purpose, subject, records, fields, outcome, reason_code, reason, controller,
        agreements, lawful_bases, consent, break_glass, client_certificate, trace_id
    FROM json_to_recordset($1::json) AS r(idx BIGINT, id TEXT, time BIGINT, request_id TEXT,
        agency TEXT, principal TEXT, roles TEXT, action TEXT, purpose TEXT, subject TEXT,
        records TEXT, fields TEXT, outcome TEXT, reason_code TEXT, reason TEXT,
        controller TEXT, agreements TEXT, lawful_bases TEXT, consent TEXT, break_glass TEXT,
        client_certificate TEXT, trace_id TEXT)
), subjects AS (
    INSERT INTO ledger_subjects (subject, idx)
    SELECT subject, idx FROM json_to_recordset($2::json) AS s(subject TEXT, idx BIGINT)
), disclosures AS (
    INSERT INTO ledger_disclosures (key, idx)
    SELECT key, idx FROM json_to_recordset($10::json) AS d(key TEXT, idx BIGINT)
), nodes AS (
    INSERT INTO ledger_nodes (pos, level, idx, hash)
    SELECT pos, level, idx, decode(hash, 'hex')
    FROM json_to_recordset($3::json) AS n(pos BIGINT, level BIGINT, idx BIGINT, hash TEXT)
), new_records AS (
    INSERT INTO records (id, subject_id, record_class, controller, version, etag,
        create_time, update_time)
    SELECT id, subject_id, record_class, controller, version, etag, create_time, update_time
    FROM json_to_recordset($6::json) AS r(id TEXT, subject_id TEXT, record_class TEXT,
        controller TEXT, version BIGINT, etag TEXT, create_time BIGINT, update_time BIGINT)
), moved_records AS (
    UPDATE records SET version = m.version, etag = m.etag, update_time = m.update_time
    FROM json_to_recordset($7::json) AS m(id TEXT, version BIGINT, etag TEXT, update_time BIGINT)
    WHERE records.id = m.id
), versions AS (
    INSERT INTO record_versions (record_id, version, fields, etag, write_time, written_by)
    SELECT record_id, version, fields, etag, write_time, written_by
    FROM json_to_recordset($8::json) AS v(record_id TEXT, version BIGINT, fields TEXT,
        etag TEXT, write_time BIGINT, written_by TEXT)
), events AS (
    INSERT INTO events (entry_idx, ord, kind, resource, version, time, controller, subject,
        record_class, agreement, recipient)
    SELECT entry_idx, ord, kind, resource, version, time, controller, subject,
        record_class, agreement, recipient
    FROM json_to_recordset($9::json) AS e(entry_idx BIGINT, ord INTEGER, kind TEXT,
        resource TEXT, version BIGINT, time BIGINT, controller TEXT, subject TEXT,
        record_class TEXT, agreement TEXT, recipient TEXT)
)
UPDATE ledger_head SET size = $4, root_hash = $5 WHERE id = 1";

/// The batch on SQLite: the same in nine statements and the commit, sent
/// as one (one trip to the driver's thread), each prepared once per
/// connection. Each row's
/// JSON object is converted to SQLite's binary JSON once (a materialised
/// view of the rows), not parsed again for every column read from it.
pub(super) const APPEND_SQLITE: &str = "\
INSERT INTO ledger_entries (idx, id, time, request_id, agency, principal, roles, action,
    purpose, subject, records, fields, outcome, reason_code, reason, controller,
    agreements, lawful_bases, consent, break_glass, client_certificate, trace_id)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($1))
SELECT v ->> 'idx', v ->> 'id', v ->> 'time', v ->> 'request_id', v ->> 'agency',
    v ->> 'principal', v ->> 'roles', v ->> 'action', v ->> 'purpose', v ->> 'subject',
    v ->> 'records', v ->> 'fields', v ->> 'outcome', v ->> 'reason_code', v ->> 'reason',
    v ->> 'controller', v ->> 'agreements', v ->> 'lawful_bases', v ->> 'consent',
    v ->> 'break_glass', v ->> 'client_certificate', v ->> 'trace_id'
FROM r;
INSERT INTO ledger_subjects (subject, idx)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($2))
SELECT v ->> 'subject', v ->> 'idx' FROM r;
INSERT INTO ledger_disclosures (key, idx)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($10))
SELECT v ->> 'key', v ->> 'idx' FROM r;
INSERT INTO ledger_nodes (pos, level, idx, hash)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($3))
SELECT v ->> 'pos', v ->> 'level', v ->> 'idx', unhex(v ->> 'hash') FROM r;
INSERT INTO records (id, subject_id, record_class, controller, version, etag,
    create_time, update_time)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($6))
SELECT v ->> 'id', v ->> 'subject_id', v ->> 'record_class', v ->> 'controller',
    v ->> 'version', v ->> 'etag', v ->> 'create_time', v ->> 'update_time'
FROM r;
WITH m AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($7))
UPDATE records SET version = m.v ->> 'version', etag = m.v ->> 'etag',
    update_time = m.v ->> 'update_time'
FROM m WHERE records.id = m.v ->> 'id';
INSERT INTO record_versions (record_id, version, fields, etag, write_time, written_by)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($8))
SELECT v ->> 'record_id', v ->> 'version', v ->> 'fields', v ->> 'etag',
    v ->> 'write_time', v ->> 'written_by'
FROM r;
INSERT INTO events (entry_idx, ord, kind, resource, version, time, controller, subject,
    record_class, agreement, recipient)
WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each($9))
SELECT v ->> 'entry_idx', v ->> 'ord', v ->> 'kind', v ->> 'resource', v ->> 'version',
    v ->> 'time', v ->> 'controller', v ->> 'subject', v ->> 'record_class',
    v ->> 'agreement', v ->> 'recipient'
FROM r;
UPDATE ledger_head SET size = $4, root_hash = $5 WHERE id = 1;
COMMIT";

impl Appended {
    /// Adds the record writes `writes` (admitted by the batch's checks:
    /// see [`super::expect::Seen::admit`]) as rows of the append. A record
    /// changed more than once in the batch, or created and changed in it,
    /// is written once, at its latest version; every version is kept.
    pub(super) fn record_rows(&mut self, writes: Vec<Write>) -> Result<(), StoreError> {
        for write in writes {
            let (r, written_by) = match write {
                Write::InsertRecord { record, written_by } => {
                    self.new_records.push(RecordRow {
                        id: record.id.as_str().to_owned(),
                        subject_id: record.subject.as_str().to_owned(),
                        record_class: record.record_class.as_str().to_owned(),
                        controller: record.controller.as_str().to_owned(),
                        version: record.version,
                        etag: record.etag.clone(),
                        create_time: micros(record.create_time),
                        update_time: micros(record.update_time),
                    });
                    (record, written_by)
                }
                Write::UpdateRecord {
                    record, written_by, ..
                } => {
                    let created = self
                        .new_records
                        .iter_mut()
                        .find(|n| n.id == record.id.as_str());
                    if let Some(row) = created {
                        row.version = record.version;
                        row.etag.clone_from(&record.etag);
                        row.update_time = micros(record.update_time);
                    } else {
                        self.moved_records.insert(
                            record.id.as_str().to_owned(),
                            MovedRow {
                                id: record.id.as_str().to_owned(),
                                version: record.version,
                                etag: record.etag.clone(),
                                update_time: micros(record.update_time),
                            },
                        );
                    }
                    (record, written_by)
                }
                _ => {
                    return Err(StoreError::Corrupt(
                        "only record writes are written as rows".to_owned(),
                    ));
                }
            };
            self.versions.push(VersionRow {
                fields: json(&r.fields)?,
                record_id: r.id.as_str().to_owned(),
                version: r.version,
                etag: r.etag,
                write_time: micros(r.update_time),
                written_by,
            });
        }
        Ok(())
    }

    /// The values of the append's parameters, `$1` to `$10`, with
    /// `frontier` as the new head.
    pub(super) fn values(&self, frontier: &Frontier) -> Result<AppendValues, StoreError> {
        let entries = self
            .entries
            .iter()
            .map(EntryRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        let subjects: Vec<SubjectRow<'_>> = self
            .entries
            .iter()
            .flat_map(|e| {
                e.subjects().into_iter().map(|subject| SubjectRow {
                    subject,
                    idx: e.index,
                })
            })
            .collect();
        let disclosures: Vec<DisclosureRow<'_>> = self
            .entries
            .iter()
            .flat_map(|e| {
                e.disclosure_keys()
                    .into_iter()
                    .map(|key| DisclosureRow { key, idx: e.index })
            })
            .collect();
        let nodes = self
            .nodes
            .iter()
            .map(|(id, h)| {
                Ok(NodeRow {
                    pos: position(*id)?,
                    level: i64::from(id.level),
                    idx: signed(id.index)?,
                    hash: hex::encode(h),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AppendValues {
            entries: json(&entries)?,
            subjects: json(&subjects)?,
            nodes: json(&nodes)?,
            size: signed(frontier.size())?,
            root: frontier.root(),
            new_records: json(&self.new_records)?,
            moved_records: json(&self.moved_records.values().collect::<Vec<_>>())?,
            versions: json(&self.versions)?,
            events: json(&self.events)?,
            disclosures: json(&disclosures)?,
        })
    }

    /// Writes the entries, the subjects they concern, the tree nodes, the
    /// record rows, the events and `frontier` as the new head, and commits the batch's
    /// transaction: one statement whose text does not depend on the batch's
    /// size and the commit, in one round trip on PostgreSQL (a simple
    /// query) and one trip to the driver's thread on SQLite.
    pub(super) async fn commit(
        &self,
        tx: &mut Tx,
        backend: Backend,
        frontier: &Frontier,
        prepared: &mut Prepared,
    ) -> Result<(), StoreError> {
        let v = self.values(frontier)?;
        match backend {
            Backend::Postgres => {
                let statement = Named {
                    name: "accord_append",
                    types: "json, json, json, bigint, bytea, json, json, json, json, json",
                    text: APPEND_POSTGRES,
                };
                let mut sql = String::new();
                prepared.execute(
                    &mut sql,
                    statement,
                    &[
                        Literal::Text(&v.entries),
                        Literal::Text(&v.subjects),
                        Literal::Text(&v.nodes),
                        Literal::Int(v.size),
                        Literal::Bytes(&v.root),
                        Literal::Text(&v.new_records),
                        Literal::Text(&v.moved_records),
                        Literal::Text(&v.versions),
                        Literal::Text(&v.events),
                        Literal::Text(&v.disclosures),
                    ],
                )?;
                if !self.events.is_empty() {
                    // Delivered to listeners when the batch commits (see
                    // `super::notify`).
                    sql.push_str("; NOTIFY ");
                    sql.push_str(super::notify::CHANNEL);
                }
                sql.push_str("; COMMIT");
                tx.execute(sql.as_str()).await?;
            }
            Backend::Sqlite => {
                sqlx::query(APPEND_SQLITE)
                    .bind(v.entries)
                    .bind(v.subjects)
                    .bind(v.nodes)
                    .bind(v.size)
                    .bind(v.root.to_vec())
                    .bind(v.new_records)
                    .bind(v.moved_records)
                    .bind(v.versions)
                    .bind(v.events)
                    .bind(v.disclosures)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The values of a batch's append, its parameters `$1` to `$10`.
pub(super) struct AppendValues {
    pub(super) entries: String,
    pub(super) subjects: String,
    pub(super) nodes: String,
    pub(super) size: i64,
    pub(super) root: Hash,
    pub(super) new_records: String,
    pub(super) moved_records: String,
    pub(super) versions: String,
    pub(super) events: String,
    pub(super) disclosures: String,
}
