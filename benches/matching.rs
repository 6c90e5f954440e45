//! Person matching benchmarks: one pair compared and explained, a
//! person's blocking keys, and one match (the candidates found through
//! the blocking indexes and the identifiers given, scored and explained)
//! against a store of a million synthetic subjects, on SQLite and on
//! PostgreSQL. After criterion's figures, each store's match is timed over
//! 2,000 probes and its p50 and p99 printed.
//!
//! `cargo bench --bench matching`; `ACCORD_BENCH_SUBJECTS=100000` for
//! fewer subjects. The stores are filled through each database's own bulk
//! path (multi-row inserts in large unsynchronised transactions on SQLite,
//! COPY on PostgreSQL) to build them quickly. PostgreSQL: `DATABASE_URL`,
//! else `postgres://postgres@127.0.0.1:5432/postgres` (a database is made
//! and dropped). Under `cargo test` each benchmark runs once over 1,000
//! subjects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use accord::domain::Gender;
use accord::matching::Matcher;
use accord::matching::quality::{identifiers, profile};
use accord::matching::synthetic::{ErrorRates, Generator, Person};
use accord::service::{MatchProbe, find_candidates};
use accord::store::{SqlStore, connect, sqlite_url};
use criterion::{Criterion, criterion_group, criterion_main};

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// How many subjects the stores hold.
fn subjects() -> usize {
    if benchmarking() {
        std::env::var("ACCORD_BENCH_SUBJECTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        1_000
    }
}

fn pair() -> (Person, Person) {
    let mut g = Generator::new(5);
    let p = g.person();
    let rates = ErrorRates {
        family_typo: 1.0,
        moved_nearby: 1.0,
        ..ErrorRates::default()
    };
    (p.clone(), g.copy(&p, &rates))
}

fn in_memory(c: &mut Criterion) {
    let matcher = Matcher::default();
    let (a, b) = pair();
    let (ia, ib) = (identifiers(&a), identifiers(&b));
    let (pa, pb) = (profile(&a, &ia), profile(&b, &ib));
    c.bench_function("matcher/explain_one_pair", |bench| {
        bench.iter(|| black_box(matcher.explain(black_box(&pa), black_box(&pb))));
    });
    c.bench_function("matcher/blocking_keys", |bench| {
        bench.iter(|| black_box(black_box(&pa).blocking_keys()));
    });
}

fn gender_code(g: Gender) -> &'static str {
    match g {
        Gender::Male => "male",
        Gender::Female => "female",
        Gender::Other => "other",
        Gender::Unknown => "unknown",
    }
}

/// The rows of the subjects, their identifiers and their blocking keys.
struct Rows {
    subjects: Vec<[String; 9]>,
    identifiers: Vec<[String; 6]>,
    blocks: Vec<[String; 2]>,
}

const AGENCY: &str = "bench-health";

fn rows(people: &[Person]) -> Rows {
    let mut rows = Rows {
        subjects: Vec::with_capacity(people.len()),
        identifiers: Vec::with_capacity(people.len()),
        blocks: Vec::with_capacity(people.len() * 5),
    };
    for (i, p) in people.iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        rows.subjects.push([
            id.clone(),
            p.given_name.clone(),
            p.family_name.clone(),
            p.birth_date.to_string(),
            gender_code(p.gender).to_owned(),
            p.postcode.clone().unwrap_or_default(),
            p.uprn.clone().unwrap_or_default(),
            AGENCY.to_owned(),
            "0".to_owned(),
        ]);
        if let Some(nhs) = &p.nhs_number {
            rows.identifiers.push([
                "nhs_number".to_owned(),
                String::new(),
                nhs.clone(),
                id.clone(),
                AGENCY.to_owned(),
                "0".to_owned(),
            ]);
        }
        let ids = identifiers(p);
        for key in profile(p, &ids).blocking_keys() {
            rows.blocks.push([key, id.clone()]);
        }
    }
    rows
}

const SUBJECT_COLUMNS: &str = "subjects (id, given_name, family_name, birth_date, gender, postcode, uprn, registered_by, create_time)";
const IDENTIFIER_COLUMNS: &str =
    "subject_identifiers (system, assigner, value, subject_id, linked_by, link_time)";
const BLOCK_COLUMNS: &str = "subject_blocks (key, subject_id)";
const AGENCY_ROW: &str = "INSERT INTO agencies (code, display_name, kind, status, create_time, update_time, etag) \
     VALUES ('bench-health', 'Bench Health', 'health', 'active', 0, 0, 'e1')";

/// Integer columns (the times) are bound as integers.
fn bind_row<'a, const N: usize>(
    mut b: sqlx::query_builder::Separated<'_, 'a, sqlx::Sqlite, &'static str>,
    row: &'a [String; N],
) {
    for (i, v) in row.iter().enumerate() {
        if i + 1 == N && v == "0" {
            b.push_bind(0_i64);
        } else {
            b.push_bind(v.as_str());
        }
    }
}

async fn fill_sqlite(dir: &std::path::Path, rows: &Rows) {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(dir.join("accord.db"))
        .synchronous(SqliteSynchronous::Off);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(AGENCY_ROW).execute(&mut *tx).await.unwrap();
    async fn insert<const N: usize>(
        tx: &mut sqlx::SqliteConnection,
        columns: &str,
        rows: &[[String; N]],
    ) {
        for chunk in rows.chunks(30_000 / N) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO {columns} "));
            q.push_values(chunk, |b, row| bind_row(b, row));
            q.build().execute(&mut *tx).await.unwrap();
        }
    }
    insert(&mut tx, SUBJECT_COLUMNS, &rows.subjects).await;
    insert(&mut tx, IDENTIFIER_COLUMNS, &rows.identifiers).await;
    insert(&mut tx, BLOCK_COLUMNS, &rows.blocks).await;
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    pool.close().await;
}

fn csv<const N: usize>(rows: &[[String; N]]) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row).unwrap();
    }
    w.into_inner().unwrap()
}

async fn fill_postgres(url: &str, rows: &Rows) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(AGENCY_ROW).execute(&mut conn).await.unwrap();
    for (columns, data) in [
        (SUBJECT_COLUMNS, csv(&rows.subjects)),
        (IDENTIFIER_COLUMNS, csv(&rows.identifiers)),
        (BLOCK_COLUMNS, csv(&rows.blocks)),
    ] {
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {columns} FROM STDIN WITH (FORMAT csv, NULL '\\N')"
            ))
            .await
            .unwrap();
        for chunk in data.chunks(1 << 20) {
            copy.send(chunk).await.unwrap();
        }
        copy.finish().await.unwrap();
    }
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database, or `None` (loudly) when unreachable
/// outside CI.
async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("!!! SKIPPING the PostgreSQL match benchmark: cannot reach {admin}: {e} !!!");
            return None;
        }
        Err(e) => panic!("PostgreSQL is required in CI but unreachable at {admin}: {e}"),
    };
    let name = format!("accord_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

async fn drop_postgres(url: &str) {
    use sqlx::Connection;
    let name = url.rsplit_once('/').map(|(_, n)| n).unwrap_or_default();
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Probes: a corrupted copy of a registered person, or someone new, in
/// turn; each with the NHS number it carries.
fn probes(registered: &[Person], n: usize) -> Vec<MatchProbe> {
    let mut g = Generator::new(2);
    let rates = ErrorRates::default();
    (0..n)
        .map(|i| {
            let p = if i % 2 == 0 {
                g.copy(&registered[(i * 7919) % registered.len()], &rates)
            } else {
                g.person()
            };
            MatchProbe {
                identifiers: identifiers(&p),
                family_name: p.family_name,
                given_name: Some(p.given_name),
                birth_date: p.birth_date,
                gender: Some(p.gender),
                postcode: p.postcode,
                uprn: p.uprn,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn match_in(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    store: &SqlStore,
    probes: &[MatchProbe],
) {
    let matcher = Matcher::default();
    let n = subjects();
    let mut next = 0usize;
    c.bench_function(&format!("match_one/{name}/{n}_subjects"), |b| {
        b.to_async(runtime).iter(|| {
            next = (next + 1) % probes.len();
            let probe = &probes[next];
            let matcher = &matcher;
            async move {
                let profile = probe.profile();
                black_box(find_candidates(store, matcher, &profile).await.unwrap())
            }
        });
    });
    if benchmarking() {
        let mut times: Vec<Duration> = runtime.block_on(async {
            let mut times = Vec::with_capacity(probes.len());
            for probe in probes {
                let started = Instant::now();
                let profile = probe.profile();
                black_box(find_candidates(store, &matcher, &profile).await.unwrap());
                times.push(started.elapsed());
            }
            times
        });
        times.sort();
        eprintln!(
            "match_one/{name}/{n}_subjects over {} probes: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
}

fn stores(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let n = subjects();
    let started = Instant::now();
    let mut g = Generator::new(1);
    let registered: Vec<Person> = (0..n).map(|_| g.person()).collect();
    let rows = rows(&registered);
    eprintln!(
        "made {n} subjects ({} blocking keys) in {:.1?}",
        rows.blocks.len(),
        started.elapsed()
    );
    let probes = probes(&registered, if benchmarking() { 2000 } else { 20 });

    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(async {
        let url = sqlite_url(dir.path());
        let store = connect(&url, true).await.unwrap();
        let started = Instant::now();
        fill_sqlite(dir.path(), &rows).await;
        eprintln!("filled SQLite in {:.1?}", started.elapsed());
        store
    });
    match_in(c, "sqlite", &runtime, &store, &probes);
    runtime.block_on(store.close());

    let Some(url) = runtime.block_on(fresh_postgres()) else {
        return;
    };
    let store = runtime.block_on(async {
        let store = connect(&url, true).await.unwrap();
        let started = Instant::now();
        fill_postgres(&url, &rows).await;
        eprintln!("filled PostgreSQL in {:.1?}", started.elapsed());
        store
    });
    match_in(c, "postgres", &runtime, &store, &probes);
    runtime.block_on(store.close());
    runtime.block_on(drop_postgres(&url));
}

criterion_group!(benches, in_memory, stores);
criterion_main!(benches);
