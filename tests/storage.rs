//! The storage conformance story, run against embedded SQLite and against
//! PostgreSQL: the same behaviour from both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use accord::domain::{
    Agency, AgencyCode, AgencyKind, AgencyStatus, Demographics, FieldValue, Gender, Identifier,
    IdentifierSystem, Record, RecordClassId, RecordId, Subject, SubjectId,
};
use accord::ledger::{self, EntryDraft, Outcome};
use accord::store::{After, EntryFilter, SqlStore, Store, StoreError, Write, connect};
use chrono::{DateTime, NaiveDate, Utc};

#[path = "api/helpers/mod.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000 + s, 0).unwrap()
}

fn draft(n: i64, outcome: Outcome) -> EntryDraft {
    EntryDraft {
        id: uuid::Uuid::new_v4().to_string(),
        time: t(n),
        request_id: format!("req-{n}"),
        agency: "leeds-cc".into(),
        principal: "sw-1".into(),
        roles: vec!["social_worker".into()],
        client_certificate: String::new(),
        action: "/accord.v1.Test/Step".into(),
        purpose: None,
        subject: String::new(),
        records: vec![],
        fields: vec![],
        outcome,
        reason_code: String::new(),
        reason: String::new(),
        controller: "leeds-cc".into(),
        grounds: accord::ledger::Grounds::default(),
    }
}

fn agency(code: &str) -> Agency {
    Agency {
        code: AgencyCode::parse(code).unwrap(),
        display_name: code.to_uppercase(),
        kind: AgencyKind::Council,
        status: AgencyStatus::Active,
        create_time: t(0),
        update_time: t(0),
        etag: "e1".into(),
    }
}

async fn story(url: &str) {
    let store: SqlStore = connect(url, true).await.unwrap();
    let leeds = AgencyCode::parse("leeds-cc").unwrap();
    store
        .commit(
            vec![Write::InsertAgency(agency("leeds-cc"))],
            draft(1, Outcome::Permitted),
        )
        .await
        .unwrap();
    let dup = store
        .commit(
            vec![Write::InsertAgency(agency("leeds-cc"))],
            draft(2, Outcome::Permitted),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    assert_eq!(
        store.tree_head().await.unwrap().size,
        1,
        "a failed commit appends nothing"
    );

    // The starter catalogue is not loaded by the store; add a class here.
    let class = accord::domain::RecordClass::parse(
        "test.note",
        "Note",
        "",
        vec![serde_json::from_str(r#"{"name":"text","type":"string","required":true}"#).unwrap()],
        t(0),
    )
    .unwrap();
    store
        .commit(
            vec![Write::InsertRecordClass(class.clone())],
            draft(3, Outcome::Permitted),
        )
        .await
        .unwrap();
    assert_eq!(store.record_class(&class.id).await.unwrap().unwrap(), class);

    let nhs = Identifier::parse(IdentifierSystem::NhsNumber, "9434765919", None).unwrap();
    let subject = Subject {
        id: SubjectId::generate(),
        identifiers: vec![nhs.clone()],
        demographics: Demographics {
            given_name: "Amira".into(),
            family_name: "Khan".into(),
            birth_date: NaiveDate::from_ymd_opt(2012, 5, 4).unwrap(),
            gender: Gender::Female,
            postcode: Some("LS1 4AP".into()),
            uprn: None,
        },
        registered_by: leeds.clone(),
        create_time: t(4),
    };
    store
        .commit(
            vec![Write::InsertSubject(subject.clone())],
            draft(4, Outcome::Permitted),
        )
        .await
        .unwrap();
    assert_eq!(store.subject(&subject.id).await.unwrap().unwrap(), subject);
    assert_eq!(
        store.identifier_link(&nhs).await.unwrap().unwrap().subject,
        subject.id
    );
    let taken = store
        .commit(
            vec![Write::InsertSubject(Subject {
                id: SubjectId::generate(),
                ..subject.clone()
            })],
            draft(5, Outcome::Permitted),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists(_))),
        "{taken:?}"
    );
    assert!(
        store
            .subject_candidates("KHAN", NaiveDate::from_ymd_opt(1999, 1, 1).unwrap(), 10)
            .await
            .unwrap()
            .len()
            == 1
    );

    let id = RecordId::generate();
    let fields = BTreeMap::from([("text".to_owned(), FieldValue::String("v1".into()))]);
    let v1 = Record {
        etag: Record::compute_etag(&id, 1, &fields),
        id: id.clone(),
        subject: subject.id.clone(),
        record_class: RecordClassId::parse("test.note").unwrap(),
        controller: leeds.clone(),
        version: 1,
        fields,
        create_time: t(6),
        update_time: t(6),
        sealed: false,
    };
    store
        .commit(
            vec![Write::InsertRecord {
                record: v1.clone(),
                written_by: "sw-1".into(),
            }],
            draft(6, Outcome::Permitted),
        )
        .await
        .unwrap();
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.fields
        .insert("text".into(), FieldValue::String("v2".into()));
    v2.etag = Record::compute_etag(&id, 2, &v2.fields);
    v2.update_time = t(7);
    let update = |expected: &str| Write::UpdateRecord {
        record: v2.clone(),
        expected_etag: expected.to_owned(),
        written_by: "sw-1".into(),
    };
    store
        .commit(vec![update(&v1.etag)], draft(7, Outcome::Permitted))
        .await
        .unwrap();
    let stale = store
        .commit(vec![update(&v1.etag)], draft(8, Outcome::Permitted))
        .await;
    assert!(
        matches!(stale, Err(StoreError::StaleEtag { .. })),
        "{stale:?}"
    );
    assert_eq!(store.record(&id, None).await.unwrap().unwrap(), v2);
    assert_eq!(store.record(&id, Some(1)).await.unwrap().unwrap(), v1);
    assert!(store.record(&id, Some(3)).await.unwrap().is_none());
    let listed = store
        .records_of_subject(&subject.id, After::Start, 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![v2.clone()]);
    assert!(
        store
            .records_of_subject(&SubjectId::generate(), After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Ledger reads: filters and order; the tree verifies.
    store
        .commit(vec![], draft(9, Outcome::Denied))
        .await
        .unwrap();
    let denied = store
        .entries(
            &EntryFilter {
                outcome: Some(Outcome::Denied),
                ..Default::default()
            },
            After::Start,
            10,
        )
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].draft.request_id, "req-9");
    let window = store
        .entries(
            &EntryFilter {
                start: Some(t(4)),
                end: Some(t(7)),
                ..Default::default()
            },
            After::Start,
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = window.iter().map(|e| e.draft.request_id.as_str()).collect();
    assert_eq!(ids, ["req-4", "req-6"]);
    let all = store
        .entries(&EntryFilter::default(), After::Start, 100)
        .await
        .unwrap();
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.size, 6);
    assert_eq!(accord::store::verify_ledger(&store).await.unwrap(), head);
    let leaves: Vec<_> = all.iter().map(ledger::Entry::leaf_hash).collect();
    assert_eq!(head.root, ledger::merkle::root(&leaves));
    // Proofs served from the stored nodes verify against the roots.
    for size in 1..=6u64 {
        let root = accord::store::root_at(&store, size).await.unwrap();
        assert_eq!(root, ledger::merkle::root(&leaves[..size as usize]));
        for i in 0..size {
            let proof = accord::store::inclusion_proof(&store, i, size)
                .await
                .unwrap();
            ledger::merkle::verify_inclusion(i, size, &leaves[i as usize], &proof, &root).unwrap();
        }
        let proof = accord::store::consistency_proof(&store, size, 6)
            .await
            .unwrap();
        ledger::merkle::verify_consistency(size, 6, &proof, &root, &head.root).unwrap();
    }
    assert!(matches!(
        accord::store::inclusion_proof(&store, 0, 7).await,
        Err(accord::store::ProveError::BeyondHead { asked: 7, size: 6 })
    ));

    // The ledger is append-only in the database itself.
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    let tamper = sqlx::query("UPDATE ledger_entries SET outcome = 'permitted' WHERE idx = 5")
        .execute(&raw)
        .await;
    let delete = sqlx::query("DELETE FROM ledger_entries WHERE idx = 5")
        .execute(&raw)
        .await;
    assert!(
        delete.is_err(),
        "the database refused to delete from the ledger"
    );
    raw.close().await;
    assert!(
        tamper.is_err(),
        "the database refused to rewrite the ledger"
    );
    store.close().await;
}

#[tokio::test]
async fn storage_conformance_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = accord::store::sqlite_url(dir.path());
    story(&url).await;
}

#[tokio::test]
async fn storage_conformance_postgres() {
    let Some(url) = helpers::fresh_postgres_database().await else {
        return;
    };
    story(&url).await;
    helpers::drop_postgres_database(&url).await;
}

/// How someone with direct database access could rewrite the ledger.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Edit,
    Delete,
    Reorder,
    Node,
}

impl Tamper {
    fn statements(self) -> &'static [&'static str] {
        match self {
            Tamper::Edit => &["UPDATE ledger_entries SET reason = 'nothing to see' WHERE idx = 2"],
            Tamper::Delete => &["DELETE FROM ledger_entries WHERE idx = 3"],
            Tamper::Reorder => &[
                "UPDATE ledger_entries SET idx = -1 WHERE idx = 2",
                "UPDATE ledger_entries SET idx = 2 WHERE idx = 3",
                "UPDATE ledger_entries SET idx = 3 WHERE idx = -1",
            ],
            Tamper::Node => &[
                "UPDATE ledger_nodes SET hash = (SELECT n.hash FROM ledger_nodes n WHERE n.level = 0 AND n.idx = 5) \
                 WHERE level = 1 AND idx = 0",
            ],
        }
    }

    /// What the offline verifier says of an export made after tampering.
    fn expected_in_export(self) -> Option<&'static str> {
        match self {
            Tamper::Edit | Tamper::Reorder => Some("entry 2: its content hashes to leaf"),
            Tamper::Delete => Some("entry 4 stands where entry 3 should be"),
            // Interior nodes are not exported: the export rebuilds them.
            Tamper::Node => None,
        }
    }

    fn expected(self) -> ledger::VerifyError {
        match self {
            Tamper::Edit | Tamper::Reorder => ledger::VerifyError::Altered { index: 2 },
            Tamper::Delete => ledger::VerifyError::Gap {
                expected: 3,
                found: 4,
            },
            Tamper::Node => ledger::VerifyError::NodeAltered {
                node: ledger::merkle::NodeId { level: 1, index: 0 },
            },
        }
    }
}

/// Writes six entries, rewrites the ledger behind Accord's back (after
/// disabling the append-only triggers, as an intruder could), and checks
/// that the verifier names the first bad entry.
async fn tamper_story(url: &str, tamper: Tamper) {
    let store = connect(url, true).await.unwrap();
    for n in 0..6 {
        store
            .commit(vec![], draft(n, Outcome::Permitted))
            .await
            .unwrap();
    }
    let intact = accord::store::verify_ledger(&store).await.unwrap();
    assert_eq!(intact.size, 6);
    let (key, _) = ledger::checkpoint::SigningKey::generate("accord.test/ledger").unwrap();
    let checkpoint = ledger::checkpoint::SignedCheckpoint {
        head: intact,
        time: t(50),
        note: key.sign(intact).unwrap(),
    };
    assert!(store.save_checkpoint(&checkpoint).await.unwrap());
    assert!(
        !store.save_checkpoint(&checkpoint).await.unwrap(),
        "one per size"
    );
    let summary = verify_export(&store, key.verifier_key()).await.unwrap();
    assert_eq!((summary.entries, summary.checkpoints), (6, 1));

    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    let disable: &[&str] = match store.backend() {
        accord::store::Backend::Sqlite => &[
            "DROP TRIGGER ledger_entries_append_only_update",
            "DROP TRIGGER ledger_entries_append_only_delete",
            "DROP TRIGGER ledger_nodes_append_only_update",
        ],
        accord::store::Backend::Postgres => &[
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only",
            "ALTER TABLE ledger_nodes DISABLE TRIGGER ledger_nodes_append_only",
        ],
    };
    for sql in disable.iter().chain(tamper.statements()) {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    raw.close().await;

    match accord::store::verify_ledger(&store).await {
        Err(accord::store::LedgerCheckError::Tree(e)) => {
            assert_eq!(e, tamper.expected(), "{tamper:?}")
        }
        other => panic!("{tamper:?} was not detected: {other:?}"),
    }
    let exported = verify_export(&store, key.verifier_key()).await;
    match (tamper.expected_in_export(), exported) {
        (Some(expected), Err(e)) => assert!(e.to_string().contains(expected), "{tamper:?}: {e}"),
        (None, Ok(summary)) => assert_eq!(summary.signed.size, 6),
        (expected, got) => panic!("{tamper:?}: expected {expected:?}, got {got:?}"),
    }
    store.close().await;
}

/// Exports the ledger and checks the export offline with `key` alone.
async fn verify_export(
    store: &dyn Store,
    key: &str,
) -> Result<ledger::export::ExportSummary, ledger::export::ExportError> {
    use ledger::export::{FORMAT, Line, OfflineVerifier};
    let mut verifier = OfflineVerifier::new(key);
    let header = Line::Header {
        format: FORMAT.into(),
        verifier_key: key.into(),
    };
    verifier.feed(&serde_json::to_string(&header).unwrap())?;
    let mut cursor = accord::store::ExportCursor::open(store).await.unwrap();
    loop {
        let lines = cursor.next_lines().await.unwrap();
        if lines.is_empty() {
            break;
        }
        for line in lines {
            verifier.feed(&serde_json::to_string(&line).unwrap())?;
        }
    }
    verifier.finish()
}

#[tokio::test]
async fn tampering_is_named_sqlite() {
    for tamper in [Tamper::Edit, Tamper::Delete, Tamper::Reorder, Tamper::Node] {
        let dir = tempfile::tempdir().unwrap();
        tamper_story(&accord::store::sqlite_url(dir.path()), tamper).await;
    }
}

#[tokio::test]
async fn tampering_is_named_postgres() {
    for tamper in [Tamper::Edit, Tamper::Delete, Tamper::Reorder, Tamper::Node] {
        let Some(url) = helpers::fresh_postgres_database().await else {
            return;
        };
        tamper_story(&url, tamper).await;
        helpers::drop_postgres_database(&url).await;
    }
}

/// Many concurrent commits, some of which fail, while another connection
/// holds the ledger's lock so that they queue up: they are committed in a
/// few batches, each success gets the next leaf index with no gaps, each
/// failure is rolled back alone, and the tree verifies.
async fn group_commit_story(url: &str) {
    use sqlx::Connection;
    let store = connect(url, true).await.unwrap();
    store
        .commit(
            vec![Write::InsertAgency(agency("taken"))],
            draft(0, Outcome::Permitted),
        )
        .await
        .unwrap();
    let before = store.batches_committed();

    let mut blocker = sqlx::AnyConnection::connect(url).await.unwrap();
    let hold = match store.backend() {
        accord::store::Backend::Sqlite => "BEGIN IMMEDIATE",
        accord::store::Backend::Postgres => "BEGIN",
    };
    sqlx::query(hold).execute(&mut blocker).await.unwrap();
    sqlx::query("UPDATE ledger_head SET size = size WHERE id = 1")
        .execute(&mut blocker)
        .await
        .unwrap();

    const JOBS: i64 = 300;
    let tasks: Vec<_> = (0..JOBS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                // Every tenth job fails: the agency exists already.
                let code = if n % 10 == 0 {
                    "taken".to_owned()
                } else {
                    format!("agency-{n}")
                };
                store
                    .commit(
                        vec![Write::InsertAgency(agency(&code))],
                        draft(n, Outcome::Permitted),
                    )
                    .await
            })
        })
        .collect();
    // Let the jobs queue behind the lock, then release it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    let mut indexes = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(receipt) => indexes.push(receipt.entry().index),
            Err(StoreError::AlreadyExists(_)) => failures += 1,
            Err(other) => panic!("unexpected failure {other:?}"),
        }
    }
    assert_eq!(failures, JOBS / 10);
    indexes.sort_unstable();
    let expected: Vec<i64> = (1..=JOBS - JOBS / 10).collect();
    assert_eq!(
        indexes, expected,
        "every success has the next index, no gaps"
    );
    let batches = store.batches_committed() - before;
    assert!(batches < 10, "{JOBS} commits took {batches} batches");
    let head = accord::store::verify_ledger(&store).await.unwrap();
    assert_eq!(head.size as i64, JOBS - JOBS / 10 + 1);
    // The failed jobs' writes were rolled back; the others' are there.
    assert!(
        store
            .agency(&AgencyCode::parse("agency-1").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.agencies(After::Start, 1000).await.unwrap().len() as i64,
        JOBS - JOBS / 10 + 1
    );
    blocker.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn group_commit_batches_concurrent_commits_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    group_commit_story(&accord::store::sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn group_commit_batches_concurrent_commits_postgres() {
    let Some(url) = helpers::fresh_postgres_database().await else {
        return;
    };
    group_commit_story(&url).await;
    helpers::drop_postgres_database(&url).await;
}

/// Two processes starting at once on one database both try to load the
/// starter catalogue: one loads it, the other finds it loaded.
#[tokio::test]
async fn the_starter_catalogue_loads_once_when_processes_start_together() {
    use accord::service::Services;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        connect(&accord::store::sqlite_url(dir.path()), true)
            .await
            .unwrap(),
    );
    let (key, _) = ledger::checkpoint::SigningKey::generate("accord.test/ledger").unwrap();
    let key = Arc::new(key);
    let clock: accord::clock::SharedClock = Arc::new(accord::clock::SystemClock);
    let a = Services::new(store.clone(), clock.clone(), key.clone());
    let b = Services::new(store.clone(), clock, key);
    let (ra, rb) = tokio::join!(a.load_starter_catalogue(), b.load_starter_catalogue());
    let mut loaded = [ra.unwrap(), rb.unwrap()];
    loaded.sort_unstable();
    assert_eq!(loaded[0], 0, "{loaded:?}");
    assert!(loaded[1] > 0, "{loaded:?}");
    let classes = store.record_classes(After::Start, 100).await.unwrap();
    assert_eq!(classes.len(), loaded[1]);
}
