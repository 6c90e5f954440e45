//! The ledger at the storage boundary: its entries, the nodes of its tree,
//! its head and its checkpoints; and the append of a batch's entries with
//! the tree nodes their leaves complete.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, code, from_json, hash, json, limit, micros, signed, time, unsigned};
use super::query::{Arg, Query};
use super::{After, EntryFilter, StoreError};
use crate::domain::Purpose;
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::merkle::{Frontier, NodeId};
use crate::ledger::{Entry, EntryDraft, Grounds, Hash, Outcome, TreeHead};

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
pub(super) async fn load_frontier(
    tx: &mut Tx<'_>,
    head: &TreeHead,
) -> Result<Frontier, StoreError> {
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

/// Writes the new head of the tree.
pub(super) async fn set_head(tx: &mut Tx<'_>, frontier: &Frontier) -> Result<(), StoreError> {
    sqlx::query("UPDATE ledger_head SET size = $1, root_hash = $2 WHERE id = 1")
        .bind(signed(frontier.size())?)
        .bind(frontier.root().to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The entries of a batch and the tree nodes their leaves complete,
/// written together once every job has run.
#[derive(Default)]
pub(super) struct Appended {
    pub(super) entries: Vec<Entry>,
    pub(super) nodes: Vec<(NodeId, crate::ledger::Hash)>,
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
    pub(super) async fn insert(&self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
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
