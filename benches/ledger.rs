//! Ledger benchmarks: hashing an entry into a leaf and appending it to the
//! tree (in memory), and serving inclusion and consistency proofs from a
//! SQLite ledger of many leaves (stored subtree hashes, as in production);
//! and what one trip to the SQLite driver's thread costs the write path.
//!
//! `cargo bench --bench ledger` builds a tree of 1,000,000 leaves for the
//! proof benchmarks; `ACCORD_BENCH_LEAVES=10000000` for ten million. Under
//! `cargo test` each benchmark runs once over a small tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use accord::domain::Purpose;
use accord::ledger::merkle::{Frontier, leaf_hash};
use accord::ledger::{EntryDraft, Outcome, canonical_encoding};
use accord::store::{SqlStore, Store, connect, consistency_proof, inclusion_proof, sqlite_url};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A typical entry: a record read with its fields.
fn draft() -> EntryDraft {
    EntryDraft {
        id: "5d0c6a51-1f0e-4a4e-8f55-3c1f3e0f2b7a".into(),
        time: chrono::Utc::now(),
        request_id: "b1946ac9-2f4c-4a4e-9d4f-7e5f0c3a2b10".into(),
        trace_id: String::new(),
        agency: "leeds-cc".into(),
        principal: "sw-17".into(),
        roles: vec!["social_worker".into()],
        client_certificate: String::new(),
        action: "/accord.v1.RecordService/GetRecord".into(),
        purpose: Some(Purpose::Safeguarding),
        subject: "subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69".into(),
        records: vec!["records/2c7e5f1a-0b4d-4c3e-8a9f-1d2e3f4a5b6c@3".into()],
        fields: vec![
            "referral_date".into(),
            "referral_source".into(),
            "service".into(),
            "reason".into(),
        ],
        outcome: Outcome::Permitted,
        reason_code: String::new(),
        reason: String::new(),
        controller: "leeds-cc".into(),
        grounds: accord::ledger::Grounds::default(),
    }
}

fn append(c: &mut Criterion) {
    let d = draft();
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_hash_and_append_one_entry", |b| {
        let mut frontier = Frontier::EMPTY;
        let mut index = 0i64;
        b.iter(|| {
            let leaf = leaf_hash(&canonical_encoding(index, &d));
            frontier.push(leaf, |id, h| {
                black_box((id, h));
            });
            index += 1;
        });
        black_box(frontier.root());
    });
    group.finish();
}

/// How many leaves the proof benchmarks' tree holds.
fn leaves() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        std::env::var("ACCORD_BENCH_LEAVES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        1_000
    }
}

/// A SQLite ledger whose tree holds `n` synthetic leaves: the nodes and
/// head are written directly through the native SQLite driver, in large
/// transactions without waiting for the disk, to build it quickly.
async fn big_tree(dir: &std::path::Path, n: u64) -> SqlStore {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteSynchronous};
    let url = sqlite_url(dir);
    let store = connect(&url, true).await.unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.join("accord.db"))
        .synchronous(SqliteSynchronous::Off);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    let started = std::time::Instant::now();
    let mut frontier = Frontier::EMPTY;
    let mut rows: Vec<(i64, i64, i64, [u8; 32])> = Vec::with_capacity(1 << 20);
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        frontier.push(leaf_hash(&i.to_be_bytes()), |id, h| {
            let pos = id.position().unwrap() as i64;
            rows.push((pos, i64::from(id.level), id.index as i64, h));
        });
        if rows.len() >= 1_000 || i + 1 == n {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO ledger_nodes (pos, level, idx, hash) ",
            );
            q.push_values(rows.drain(..), |mut b, (pos, level, idx, hash)| {
                b.push_bind(pos)
                    .push_bind(level)
                    .push_bind(idx)
                    .push_bind(hash.to_vec());
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        if i % 1_000_000 == 999_999 {
            tx.commit().await.unwrap();
            tx = pool.begin().await.unwrap();
        }
    }
    sqlx::query("UPDATE ledger_head SET size = ?, root_hash = ? WHERE id = 1")
        .bind(n as i64)
        .bind(frontier.root().to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    eprintln!("built a tree of {n} leaves in {:.1?}", started.elapsed());
    assert_eq!(store.tree_head().await.unwrap().root, frontier.root());
    store
}

fn proofs(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = leaves();
    let store = runtime.block_on(big_tree(dir.path(), n));
    let mut group = c.benchmark_group("proofs_from_sqlite");
    // A fixed pseudo-random walk over the leaves (no I/O cache favouritism
    // for one path).
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    group.bench_function(format!("inclusion_proof/{n}_leaves"), |b| {
        b.to_async(&runtime).iter(|| {
            let index = next() % n;
            let store = &store;
            async move { black_box(inclusion_proof(store, index, n).await.unwrap()) }
        });
    });
    group.bench_function(format!("consistency_proof/{n}_leaves"), |b| {
        b.to_async(&runtime).iter(|| {
            let old = 1 + next() % (n - 1);
            let store = &store;
            async move { black_box(consistency_proof(store, old, n).await.unwrap()) }
        });
    });
    group.finish();
    runtime.block_on(store.close());
}

/// One trip to sqlx's SQLite worker thread, made as the ledger sequencer
/// makes them (from a runtime on a thread of its own): a statement that
/// does nothing, so the figure is the trip itself, the channel sends and
/// the two threads' wake-ups. A batch with writes other than records'
/// still costs two or more; one of reads and record writes none.
fn driver_trip(c: &mut Criterion) {
    use sqlx::Connection;
    use sqlx::sqlite::SqliteConnection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("trip.db").display());
    let mut conn = runtime.block_on(SqliteConnection::connect(&url)).unwrap();
    c.bench_function("sqlite_driver/one_trip", |b| {
        b.iter(|| {
            let done = runtime.block_on(sqlx::query("SELECT 1").execute(&mut conn));
            black_box(done.unwrap());
        });
    });
    runtime.block_on(conn.close()).unwrap();
}

criterion_group!(benches, append, proofs, driver_trip);
criterion_main!(benches);
