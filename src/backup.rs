//! Online backups of the embedded SQLite database: a consistent copy made
//! while the server keeps writing (SQLite's `VACUUM INTO`, which reads one
//! snapshot), into a directory that is a data directory of its own. For
//! PostgreSQL, the database's own tools do this (`pg_dump`, or continuous
//! archiving for point-in-time recovery: see docs/operations.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use crate::store::SQLITE_FILE;

/// How long the copy waits for a lock the writer holds (it only reads;
/// with the write-ahead log it is not blocked, but a checkpoint may be in
/// progress).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The database copy.
    pub file: PathBuf,
    /// The ledger's tree size in the copy.
    pub tree_size: u64,
}

/// Copies the SQLite database in `data_dir` to `to` (created if missing;
/// it must not hold a database already), as one consistent snapshot,
/// while other processes may be writing.
pub fn sqlite(data_dir: &Path, to: &Path) -> anyhow::Result<Backup> {
    let source = data_dir.join(SQLITE_FILE);
    if !source.is_file() {
        bail!("no database at {}", source.display());
    }
    let file = to.join(SQLITE_FILE);
    if file.exists() {
        bail!(
            "{} exists already; back up into an empty directory",
            file.display()
        );
    }
    std::fs::create_dir_all(to)
        .with_context(|| format!("cannot create the directory {}", to.display()))?;
    let db = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", source.display()))?;
    db.busy_timeout(BUSY_WAIT)?;
    let target = file
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", file.display()))?;
    db.execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot back up into {}", file.display()))?;
    let copy = Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let size: i64 = copy.query_row("SELECT size FROM ledger_head WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    Ok(Backup {
        file,
        tree_size: u64::try_from(size).context("a negative tree size")?,
    })
}
