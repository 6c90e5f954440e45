//! The sequencer's own SQLite connection, driven directly on its thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every
//! statement (or text of statements) it is given is a trip there and back:
//! a channel send and two threads' wake-ups. A batch made only of reads and
//! record writes — nearly every batch — runs instead through this
//! connection, opened on the same database file with the same settings and
//! called synchronously on the sequencer's thread: the whole batch is one
//! hop, the one that brought its jobs to the sequencer. Its statements are
//! prepared once per connection and kept (`prepare_cached`). A batch with
//! any other write still runs through sqlx, whose connection the
//! aggregates' statements are written for; the two are never in a
//! transaction at once.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql};

use super::StoreError;
use super::codec::hash;
use super::expect::{Seen, StateQuery, StateRow};
use super::ledger::{APPEND_SQLITE, AppendValues, frontier_of, node_id, position};
use super::sql::{NO_PAGE_CAP, SQLITE_SETTINGS};
use super::write::LOCK_HEAD;
use crate::ledger::merkle::Frontier;
use crate::ledger::{Hash, TreeHead};

/// The frontier's stored nodes, by position.
const FRONTIER_NODES: &str =
    "SELECT level, idx, hash FROM ledger_nodes WHERE pos IN (SELECT value FROM json_each($1))";

/// The sequencer's synchronous SQLite connection.
pub(super) struct Lite {
    conn: Connection,
    /// The page cap applied to it (0: none).
    page_cap: u32,
}

impl std::fmt::Debug for Lite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lite")
            .field("page_cap", &self.page_cap)
            .finish()
    }
}

impl Lite {
    /// Opens the database `file` (which the store has created and
    /// migrated) with every SQLite connection's settings.
    pub(super) fn open(file: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(file, flags)?;
        for setting in SQLITE_SETTINGS {
            conn.execute_batch(setting)?;
        }
        Ok(Self { conn, page_cap: 0 })
    }

    /// Applies SQLite's page cap `pages` (0: none) if it is not the one
    /// applied.
    pub(super) fn cap(&mut self, pages: u32) -> Result<(), StoreError> {
        if pages != self.page_cap {
            let cap = if pages == 0 { NO_PAGE_CAP } else { pages };
            self.conn
                .query_row(&format!("PRAGMA max_page_count = {cap}"), [], |_| Ok(()))?;
            self.page_cap = pages;
        }
        Ok(())
    }

    /// Begins the batch's transaction, taking the database's write lock
    /// (`BEGIN IMMEDIATE`), and reads the head and, when `state` is given,
    /// the state the batch's checks need (see [`Seen`]).
    pub(super) fn begin(
        &mut self,
        state: Option<&StateQuery>,
    ) -> Result<(TreeHead, Option<Seen>), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let head = self.conn.prepare_cached(LOCK_HEAD)?.query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let head = TreeHead {
            size: super::codec::unsigned(head.0)?,
            root: hash(head.1)?,
        };
        let seen = match state {
            Some(state) => {
                let mut statement = self.conn.prepare_cached(state.sql)?;
                bind(&mut statement, |name| match name {
                    "$1" => Some(&state.params[0] as &dyn ToSql),
                    "$2" => Some(&state.params[1]),
                    "$3" => Some(&state.params[2]),
                    _ => None,
                })?;
                let mut rows = statement.raw_query();
                let mut read = Vec::new();
                while let Some(row) = rows.next()? {
                    read.push(Ok(StateRow {
                        kind: row.get("kind")?,
                        name: row.get("name")?,
                        status: row.get("status")?,
                        version: row.get("version")?,
                        etag: row.get("etag")?,
                        sealed: row.get("sealed")?,
                    }));
                }
                Some(Seen::from_rows(read)?)
            }
            None => None,
        };
        Ok((head, seen))
    }

    /// The tree's right edge for `head`, read under the lock.
    pub(super) fn frontier(&mut self, head: &TreeHead) -> Result<Frontier, StoreError> {
        let ids = Frontier::ids(head.size);
        let positions = ids
            .iter()
            .map(|id| position(*id))
            .collect::<Result<Vec<_>, _>>()?;
        let positions = super::codec::json(&positions)?;
        let mut statement = self.conn.prepare_cached(FRONTIER_NODES)?;
        let mut stored: HashMap<_, Hash> = HashMap::with_capacity(ids.len());
        let mut rows = statement.query([positions])?;
        while let Some(row) = rows.next()? {
            let id = node_id(row.get("level")?, row.get("idx")?)?;
            stored.insert(id, hash(row.get("hash")?)?);
        }
        frontier_of(head, &ids, stored)
    }

    /// Writes the batch's append with the values `v` and commits.
    pub(super) fn append(&mut self, v: &AppendValues) -> Result<(), StoreError> {
        let root = v.root.to_vec();
        for sql in APPEND_SQLITE.split(";\n") {
            let mut statement = self.conn.prepare_cached(sql)?;
            bind(&mut statement, |name| match name {
                "$1" => Some(&v.entries as &dyn ToSql),
                "$2" => Some(&v.subjects),
                "$3" => Some(&v.nodes),
                "$4" => Some(&v.size),
                "$5" => Some(&root),
                "$6" => Some(&v.new_records),
                "$7" => Some(&v.moved_records),
                "$8" => Some(&v.versions),
                "$9" => Some(&v.events),
                "$10" => Some(&v.disclosures),
                _ => None,
            })?;
            statement.raw_execute()?;
        }
        Ok(())
    }
}

/// Binds each of `statement`'s parameters, by name, to what `value` gives
/// for it.
fn bind<'v>(
    statement: &mut CachedStatement<'_>,
    value: impl Fn(&str) -> Option<&'v dyn ToSql>,
) -> Result<(), StoreError> {
    for i in 1..=statement.parameter_count() {
        let name = statement.parameter_name(i).unwrap_or_default().to_owned();
        let v = value(&name).ok_or_else(|| {
            StoreError::Corrupt(format!("no value for the statement's parameter {name:?}"))
        })?;
        statement.raw_bind_parameter(i, v)?;
    }
    Ok(())
}
