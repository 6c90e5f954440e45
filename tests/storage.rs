//! The storage conformance suite: named scenarios, one or more per
//! aggregate, each run against embedded SQLite and against PostgreSQL
//! (`{scenario}::sqlite`, `{scenario}::postgres`), which together call every
//! `Store` method and expect the same behaviour from both backends. Then
//! the ledger's defences: tampering named by the verifier, group commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use accord::domain::agreement::{
    Agreement, AgreementId, AgreementStatus, AgreementTerms, Approval, ConsentRequirement,
    ConsumerTerms, FieldGrant, LawfulBasis, LawfulBasisCode, Suspension,
};
use accord::domain::consent::{Channel, Consent, ConsentId, ConsentKind, ConsentScope, Withdrawal};
use accord::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, JwksSource, TokenIssuer,
    TokenIssuerId,
};
use accord::domain::duplicate::{
    DuplicateCause, DuplicateResolution, DuplicateState, PossibleDuplicate, PossibleDuplicateId,
};
use accord::domain::event::{Event, EventKind, EventPosition};
use accord::domain::merge::{MergeAct, SubjectMerge, SubjectMergeId, Unmerge};
use accord::domain::{
    Acknowledgement, Agency, AgencyCode, AgencyKind, AgencyStatus, Alert, AlertId, AlertKind,
    Demographics, FieldValue, Gender, Identifier, IdentifierSystem, Purpose, Record, RecordClass,
    RecordClassId, RecordId, Role, Subject, SubjectId,
};
use accord::ledger::{self, EntryDraft, Outcome};
use accord::matching::blocking;
use accord::store::{After, EntryFilter, Expect, SqlStore, Store, StoreError, Write, connect};
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
        // Odd entries carry a trace id (encoding v4), even ones none (v3).
        trace_id: if n % 2 == 1 {
            format!("{n:032x}")
        } else {
            String::new()
        },
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

fn code(value: &str) -> AgencyCode {
    AgencyCode::parse(value).unwrap()
}

fn agency(code_: &str) -> Agency {
    Agency {
        code: code(code_),
        display_name: code_.to_uppercase(),
        kind: AgencyKind::Council,
        status: AgencyStatus::Active,
        create_time: t(0),
        update_time: t(0),
        etag: "e1".into(),
        rate_limit: None,
    }
}

/// Commits `writes` with a permitted entry.
async fn commit(store: &SqlStore, writes: Vec<Write>) -> Result<ledger::Entry, StoreError> {
    store
        .commit(writes, draft(1, Outcome::Permitted))
        .await
        .map(accord::store::Committed::into_entry)
}

/// A fresh, migrated store on one backend, dropped when done.
struct Fresh {
    store: SqlStore,
    url: String,
    postgres: bool,
    _dir: tempfile::TempDir,
}

impl Fresh {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = accord::store::sqlite_url(dir.path());
        Self {
            store: connect(&url, true).await.unwrap(),
            url,
            postgres: false,
            _dir: dir,
        }
    }

    /// `None` (loudly) when PostgreSQL is unreachable outside CI.
    async fn postgres() -> Option<Self> {
        let url = helpers::fresh_postgres_database().await?;
        Some(Self {
            store: connect(&url, true).await.unwrap(),
            url,
            postgres: true,
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    async fn finish(self) {
        self.store.close().await;
        if self.postgres {
            helpers::drop_postgres_database(&self.url).await;
        }
    }
}

/// Runs each named scenario as two tests, `{scenario}::sqlite` and
/// `{scenario}::postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                let fresh = super::Fresh::sqlite().await;
                super::$scenario(&fresh).await;
                fresh.finish().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(fresh) = super::Fresh::postgres().await else {
                    return;
                };
                super::$scenario(&fresh).await;
                fresh.finish().await;
            }
        }
    )*};
}

on_both_backends!(
    agencies_are_unique_paged_and_changed_by_etag,
    record_classes_are_kept_and_paged,
    subjects_are_found_by_identifier_and_demographics,
    subjects_registered_before_blocking_keys_are_given_them,
    possible_duplicates_are_raised_once_and_resolved_once,
    merges_move_exactly_what_was_planned,
    records_keep_every_version_and_can_be_sealed,
    credentials_recognise_callers_until_revoked_or_removed,
    agreements_keep_every_version_and_change_by_revision,
    consents_are_recorded_withdrawn_once_and_followed,
    alerts_are_tied_to_their_entry_and_acknowledged_once,
    service_metadata_is_set_and_read,
    the_ledger_is_filtered_counted_proven_and_checkpointed,
    two_writers_append_to_one_tree,
    decisions_are_checked_again_when_they_commit,
    record_writes_of_one_batch_are_checked_in_order_and_kept,
    changes_write_their_events_with_their_entry,
    disclosures_are_found_by_what_they_rested_on,
);

/// A commit with the expectations `expects` and no data: its entry's index,
/// or the error.
async fn expecting(store: &SqlStore, expects: Vec<Expect>) -> Result<i64, StoreError> {
    store
        .commit_expecting(vec![], expects, draft(30, Outcome::Permitted))
        .await
        .map(|c| c.entry().index)
}

fn is_stale(result: Result<i64, StoreError>) -> bool {
    matches!(result, Err(StoreError::Stale(_)))
}

/// What a decision relied on (counters, an agency's status, a record's
/// version and seal) is checked when its entry commits, after every change
/// committed before it, including one queued ahead of it in its own batch;
/// a job whose expectations fail writes nothing and has no entry.
async fn decisions_are_checked_again_when_they_commit(f: &Fresh) {
    let store = &f.store;
    let subject = record_ground(store).await;
    let id = RecordId::generate();
    commit(
        store,
        vec![Write::InsertRecord {
            record: note(&subject.id, &id, 1, "first"),
            written_by: "sw-1".into(),
        }],
    )
    .await
    .unwrap();
    let policy = store.policy_versions().await.unwrap();
    let registry = store.registry_version().await.unwrap();
    let record = |current: Option<i64>, sealed: bool| Expect::Record {
        id: id.clone(),
        subject: subject.id.clone(),
        current,
        sealed,
    };
    let all = vec![
        Expect::Policy(policy),
        Expect::Registry(registry),
        Expect::AgencyActive(code("leeds-cc")),
        record(Some(1), false),
    ];
    expecting(store, all.clone()).await.unwrap();

    // Each kind of change makes what relied on the old state stale.
    commit(
        store,
        vec![Write::InsertConsent(consent(&subject.id, &[], 21))],
    )
    .await
    .unwrap();
    let size = store.tree_head().await.unwrap().size;
    assert!(is_stale(expecting(store, all.clone()).await));
    assert_eq!(
        store.tree_head().await.unwrap().size,
        size,
        "a stale job has no entry"
    );
    let policy = store.policy_versions().await.unwrap();
    assert!(expecting(store, vec![Expect::Policy(policy)]).await.is_ok());
    commit(
        store,
        vec![Write::InsertTokenIssuer(issuer(
            "leeds-cc",
            "https://idp.leeds.test",
        ))],
    )
    .await
    .unwrap();
    assert!(is_stale(
        expecting(store, vec![Expect::Registry(registry)]).await
    ));
    commit(
        store,
        vec![Write::UpdateRecord {
            record: note(&subject.id, &id, 2, "second"),
            expected_etag: note(&subject.id, &id, 1, "first").etag,
            written_by: "sw-1".into(),
        }],
    )
    .await
    .unwrap();
    assert!(is_stale(
        expecting(store, vec![record(Some(1), false)]).await
    ));
    assert!(expecting(store, vec![record(Some(2), false)]).await.is_ok());
    assert!(
        expecting(store, vec![record(None, false)]).await.is_ok(),
        "a past version's read relies only on the seal"
    );
    commit(
        store,
        vec![Write::Seal {
            agency: code("leeds-cc"),
            subject: subject.id.clone(),
            record: None,
            reason: "court order".into(),
            sealed_by: "lead-1".into(),
            time: t(22),
        }],
    )
    .await
    .unwrap();
    assert!(is_stale(expecting(store, vec![record(None, false)]).await));
    assert!(expecting(store, vec![record(None, true)]).await.is_ok());
    let mut suspended = agency("leeds-cc");
    suspended.status = AgencyStatus::Suspended;
    suspended.etag = "e2".into();
    commit(
        store,
        vec![Write::UpdateAgency {
            agency: suspended,
            expected_etag: "e1".into(),
        }],
    )
    .await
    .unwrap();
    let active = |c: &str| vec![Expect::AgencyActive(code(c))];
    assert!(is_stale(expecting(store, active("leeds-cc")).await));
    assert!(is_stale(expecting(store, active("nobody")).await));
    let unknown = Expect::Record {
        id: RecordId::generate(),
        subject: SubjectId::generate(),
        current: None,
        sealed: false,
    };
    assert!(is_stale(expecting(store, vec![unknown]).await));

    // A stale job's writes are not applied.
    let stale_write = store
        .commit_expecting(
            vec![Write::InsertAgency(agency("never-cc"))],
            active("leeds-cc"),
            draft(31, Outcome::Permitted),
        )
        .await;
    assert!(matches!(stale_write, Err(StoreError::Stale(_))));
    assert!(store.agency(&code("never-cc")).await.unwrap().is_none());

    // In one batch: a withdrawal queued ahead of a read that relied on the
    // consent makes the read stale; a read queued ahead of it commits.
    let policy = store.policy_versions().await.unwrap();
    let given = consent(&subject.id, &[], 23);
    commit(store, vec![Write::InsertConsent(given.clone())])
        .await
        .unwrap();
    let policy_given = store.policy_versions().await.unwrap();
    assert_ne!(policy, policy_given);
    let mut blocker = hold_ledger_lock(&f.url, store).await;
    let queued = |store: &SqlStore, writes: Vec<Write>, expects: Vec<Expect>| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit_expecting(writes, expects, draft(32, Outcome::Permitted))
                .await
                .map(|c| c.entry().index)
        })
    };
    let wait_for = |n: u64| async move {
        for _ in 0..1000 {
            if store.commits_waiting() == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the commits never queued");
    };
    // The first job waits alone for the lock; the next three then form one
    // batch, in this order.
    let first = queued(store, vec![], vec![]);
    wait_for(1).await;
    let before = queued(store, vec![], vec![Expect::Policy(policy_given)]);
    wait_for(2).await;
    let withdrawal = queued(
        store,
        vec![Write::WithdrawConsent {
            consent: given.clone(),
            withdrawal: Withdrawal {
                time: t(24),
                agency: code("leeds-cc"),
                principal: "sw-1".into(),
                reason: "asked".into(),
            },
        }],
        vec![],
    );
    wait_for(3).await;
    let after = queued(store, vec![], vec![Expect::Policy(policy_given)]);
    wait_for(4).await;
    // Then a record changed and an agency reinstated within the batch:
    // what later jobs relied on is checked against those changes.
    let v2 = queued(store, vec![], vec![record(Some(2), true)]);
    wait_for(5).await;
    let update = queued(
        store,
        vec![Write::UpdateRecord {
            record: note(&subject.id, &id, 3, "third"),
            expected_etag: note(&subject.id, &id, 2, "second").etag,
            written_by: "sw-1".into(),
        }],
        vec![record(Some(2), true)],
    );
    wait_for(6).await;
    let stale_v2 = queued(store, vec![], vec![record(Some(2), true)]);
    wait_for(7).await;
    let v3 = queued(store, vec![], vec![record(Some(3), true)]);
    wait_for(8).await;
    let suspended_read = queued(store, vec![], active("leeds-cc"));
    wait_for(9).await;
    let mut reinstated = agency("leeds-cc");
    reinstated.etag = "e3".into();
    let reinstate = queued(
        store,
        vec![Write::UpdateAgency {
            agency: reinstated,
            expected_etag: "e2".into(),
        }],
        vec![],
    );
    wait_for(10).await;
    let active_read = queued(store, vec![], active("leeds-cc"));
    wait_for(11).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(before.await.unwrap().unwrap(), first + 1);
    assert_eq!(withdrawal.await.unwrap().unwrap(), first + 2);
    assert!(is_stale(after.await.unwrap()));
    assert_eq!(v2.await.unwrap().unwrap(), first + 3);
    assert_eq!(update.await.unwrap().unwrap(), first + 4);
    assert!(
        is_stale(stale_v2.await.unwrap()),
        "a version replaced earlier in the batch is no longer current"
    );
    assert_eq!(v3.await.unwrap().unwrap(), first + 5);
    assert!(is_stale(suspended_read.await.unwrap()));
    assert_eq!(reinstate.await.unwrap().unwrap(), first + 6);
    assert_eq!(
        active_read.await.unwrap().unwrap(),
        first + 7,
        "an agency reinstated earlier in the batch is active"
    );
    assert_eq!(
        accord::store::verify_ledger(store).await.unwrap().size as i64,
        first + 8
    );
}

/// Record writes are rows of their batch's append, checked by the batch in
/// commit order: a record created and changed, or changed twice, in one
/// batch keeps every version and ends at the last; a change on an etag an
/// earlier job replaced, or a record about an unknown subject, is refused
/// alone, with nothing written and no entry.
async fn record_writes_of_one_batch_are_checked_in_order_and_kept(f: &Fresh) {
    let store = &f.store;
    let subject = record_ground(store).await;
    let (old, new) = (RecordId::generate(), RecordId::generate());
    let old_v = |v: i64| note(&subject.id, &old, v, &format!("old {v}"));
    let new_v = |v: i64| note(&subject.id, &new, v, &format!("new {v}"));
    let insert = |record: Record| Write::InsertRecord {
        record,
        written_by: "sw-1".into(),
    };
    let update = |record: Record, expected: &Record| Write::UpdateRecord {
        record,
        expected_etag: expected.etag.clone(),
        written_by: "sw-2".into(),
    };
    commit(store, vec![insert(old_v(1))]).await.unwrap();

    let mut blocker = hold_ledger_lock(&f.url, store).await;
    let mut queued = Vec::new();
    let jobs = vec![
        vec![],
        vec![insert(new_v(1))],
        vec![update(new_v(2), &new_v(1))],
        vec![update(old_v(2), &old_v(1))],
        vec![update(new_v(2), &new_v(1))],
        vec![update(old_v(3), &old_v(2))],
        vec![insert(note(
            &SubjectId::generate(),
            &RecordId::generate(),
            1,
            "x",
        ))],
        vec![update(new_v(3), &new_v(2))],
    ];
    for (n, writes) in jobs.into_iter().enumerate() {
        let store = store.clone();
        queued.push(tokio::spawn(async move {
            commit(&store, writes).await.map(|e| e.index)
        }));
        // The first job waits alone for the lock; the rest form one batch,
        // in this order.
        for _ in 0..1000 {
            if store_waiting(f) == n as u64 + 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store_waiting(f), n as u64 + 1, "the commits never queued");
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let mut outcomes = Vec::new();
    for task in queued {
        outcomes.push(task.await.unwrap());
    }
    let first = *outcomes[0].as_ref().unwrap();
    let indexes: Vec<Option<i64>> = outcomes.iter().map(|o| o.as_ref().ok().copied()).collect();
    assert_eq!(
        indexes,
        vec![
            Some(first),
            Some(first + 1),
            Some(first + 2),
            Some(first + 3),
            None,
            Some(first + 4),
            None,
            Some(first + 5),
        ]
    );
    assert!(
        matches!(&outcomes[4], Err(StoreError::StaleEtag { given, current })
            if *given == new_v(1).etag && *current == new_v(2).etag),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(&outcomes[6], Err(StoreError::NotFound(_))),
        "{:?}",
        outcomes[6]
    );
    for v in 1..=3 {
        assert_eq!(store.record(&old, Some(v)).await.unwrap(), Some(old_v(v)));
        assert_eq!(store.record(&new, Some(v)).await.unwrap(), Some(new_v(v)));
    }
    assert_eq!(store.record(&old, None).await.unwrap(), Some(old_v(3)));
    assert_eq!(store.record(&new, None).await.unwrap(), Some(new_v(3)));
    let held = store
        .records_of_subject(&subject.id, After::Start, 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 2, "the refused record was not written");
    assert_eq!(
        accord::store::verify_ledger(store).await.unwrap().size as i64,
        first + 6
    );
    // One event per change that committed, each at its own entry; none
    // for the jobs refused.
    let events: Vec<(i64, EventKind, i64)> = all_events(store)
        .await
        .iter()
        .filter(|e| e.position.entry > first)
        .map(|e| (e.position.entry, e.kind, e.version))
        .collect();
    assert_eq!(
        events,
        vec![
            (first + 1, EventKind::RecordCreated, 1),
            (first + 2, EventKind::RecordUpdated, 2),
            (first + 3, EventKind::RecordUpdated, 2),
            (first + 4, EventKind::RecordUpdated, 3),
            (first + 5, EventKind::RecordUpdated, 3),
        ]
    );
}

fn store_waiting(f: &Fresh) -> u64 {
    f.store.commits_waiting()
}

/// Another connection holding the ledger head's lock (in an open
/// transaction), so that the store's commits queue up behind it.
async fn hold_ledger_lock(url: &str, store: &SqlStore) -> sqlx::AnyConnection {
    use sqlx::Connection;
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
    blocker
}

/// Two stores on one database (two processes' writers) append in turn and
/// then at once: each keeps the tree's right edge in memory between its
/// batches, and must notice the other's appends under the head's lock, so
/// the indexes run on without a gap or a fork and the tree verifies.
async fn two_writers_append_to_one_tree(f: &Fresh) {
    let (one, other) = (&f.store, &connect(&f.url, false).await.unwrap());
    let mut indexes = Vec::new();
    for n in 0..6 {
        let store = if n % 2 == 0 { one } else { other };
        indexes.push(commit(store, vec![]).await.unwrap().index);
    }
    assert_eq!(indexes, (0..6).collect::<Vec<i64>>(), "taken in turn");
    let together: Vec<_> = (0..40)
        .map(|n| {
            let store = if n % 2 == 0 {
                one.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { commit(&store, vec![]).await.map(|e| e.index) })
        })
        .collect();
    for task in together {
        indexes.push(task.await.unwrap().unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..46).collect::<Vec<i64>>(), "no gap, no repeat");
    assert_eq!(accord::store::verify_ledger(one).await.unwrap().size, 46);
    assert_eq!(accord::store::verify_ledger(other).await.unwrap().size, 46);
    // Each goes on appending after the other's last batch.
    assert_eq!(commit(one, vec![]).await.unwrap().index, 46);
    assert_eq!(commit(other, vec![]).await.unwrap().index, 47);

    // Every column of an entry comes back as written, whatever its text
    // (the batch passes its rows to the database as JSON).
    let mut odd = draft(48, Outcome::Denied);
    odd.reason = "a \"quoted\" back\\slash, a\nnew line, \t tab, ünïcödé 🙂 and '[]'".into();
    odd.purpose = Some(accord::domain::Purpose::DirectCare);
    odd.subject = "subjects/s-1".into();
    odd.records = vec!["records/r-1@2".into(), "records/r-2".into()];
    odd.fields = vec!["note".into(), "{not json}".into()];
    odd.roles = vec![];
    odd.grounds.agreements = vec!["agreements/a-1".into()];
    odd.grounds.lawful_bases = vec!["UK_GDPR_6_1_E".into()];
    odd.grounds.consent = "consents/c-1".into();
    odd.grounds.break_glass = "emergency".into();
    odd.client_certificate = "ab".repeat(32);
    let written = other
        .commit(vec![], odd.clone())
        .await
        .unwrap()
        .into_entry();
    let read = one
        .entries(&EntryFilter::default(), After::Key(47), 10)
        .await
        .unwrap();
    assert_eq!(read, vec![written.clone()]);
    assert_eq!(read[0].draft, odd);
    let concerning = EntryFilter {
        subject: Some("subjects/s-1".into()),
        ..Default::default()
    };
    assert_eq!(one.count_entries(&concerning).await.unwrap(), 1);
    assert_eq!(accord::store::verify_ledger(one).await.unwrap().size, 49);
    other.close().await;
}

async fn agencies_are_unique_paged_and_changed_by_etag(f: &Fresh) {
    let store = &f.store;
    for c in ["bb-council", "aa-council", "cc-council"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let dup = commit(store, vec![Write::InsertAgency(agency("aa-council"))]).await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    assert_eq!(
        store.tree_head().await.unwrap().size,
        3,
        "a failed commit appends nothing"
    );
    assert_eq!(
        store.agency(&code("aa-council")).await.unwrap(),
        Some(agency("aa-council"))
    );
    assert_eq!(store.agency(&code("zz-council")).await.unwrap(), None);

    // Pages in code order, each after the last key of the one before.
    let first = store.agencies(After::Start, 2).await.unwrap();
    let codes: Vec<&str> = first.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(codes, ["aa-council", "bb-council"]);
    let rest = store
        .agencies(After::Key("bb-council".into()), 2)
        .await
        .unwrap();
    assert_eq!(rest, vec![agency("cc-council")]);

    // A change applies to the etag it was made from, and only once.
    let renamed = Agency {
        display_name: "Council A".into(),
        status: AgencyStatus::Suspended,
        update_time: t(5),
        etag: "e2".into(),
        ..agency("aa-council")
    };
    let update = |expected: &str, a: &Agency| Write::UpdateAgency {
        agency: a.clone(),
        expected_etag: expected.to_owned(),
    };
    commit(store, vec![update("e1", &renamed)]).await.unwrap();
    assert_eq!(
        store.agency(&code("aa-council")).await.unwrap(),
        Some(renamed.clone())
    );
    let stale = commit(store, vec![update("e1", &renamed)]).await;
    assert!(
        matches!(&stale, Err(StoreError::StaleEtag { given, current }) if given == "e1" && current == "e2"),
        "{stale:?}"
    );
    let unknown = commit(store, vec![update("e1", &agency("zz-council"))]).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

fn note_class(id: &str) -> RecordClass {
    RecordClass::parse(
        id,
        "Note",
        "",
        vec![serde_json::from_str(r#"{"name":"text","type":"string","required":true}"#).unwrap()],
        t(0),
    )
    .unwrap()
}

async fn record_classes_are_kept_and_paged(f: &Fresh) {
    let store = &f.store;
    let (b, a) = (note_class("test.b_note"), note_class("test.a_note"));
    commit(store, vec![Write::InsertRecordClass(b.clone())])
        .await
        .unwrap();
    commit(store, vec![Write::InsertRecordClass(a.clone())])
        .await
        .unwrap();
    let dup = commit(store, vec![Write::InsertRecordClass(a.clone())]).await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    assert_eq!(store.record_class(&a.id).await.unwrap(), Some(a.clone()));
    let unknown = RecordClassId::parse("test.none").unwrap();
    assert_eq!(store.record_class(&unknown).await.unwrap(), None);
    assert_eq!(
        store.record_classes(After::Start, 1).await.unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        store
            .record_classes(After::Key(a.id.as_str().to_owned()), 10)
            .await
            .unwrap(),
        vec![b]
    );
}

fn nhs(value: &str) -> Identifier {
    Identifier::parse(IdentifierSystem::NhsNumber, value, None).unwrap()
}

fn person(registered_by: &str, nhs_number: &str, family: &str, born: (i32, u32, u32)) -> Subject {
    Subject {
        id: SubjectId::generate(),
        identifiers: vec![nhs(nhs_number)],
        demographics: Demographics {
            given_name: "Amira".into(),
            family_name: family.into(),
            birth_date: NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap(),
            gender: Gender::Female,
            postcode: Some("LS1 4AP".into()),
            uprn: None,
        },
        registered_by: code(registered_by),
        create_time: t(4),
        merged_into: None,
    }
}

async fn subjects_are_found_by_identifier_and_demographics(f: &Fresh) {
    let store = &f.store;
    for c in ["leeds-cc", "wy-police"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let amira = person("leeds-cc", "9434765919", "Khan", (2012, 5, 4));
    commit(store, vec![Write::InsertSubject(amira.clone())])
        .await
        .unwrap();
    assert_eq!(store.subject(&amira.id).await.unwrap(), Some(amira.clone()));
    assert_eq!(store.subject(&SubjectId::generate()).await.unwrap(), None);
    let link = store
        .identifier_link(&nhs("9434765919"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (link.subject, link.linked_by),
        (amira.id.clone(), code("leeds-cc"))
    );
    // An identifier belongs to one subject.
    let taken = commit(
        store,
        vec![Write::InsertSubject(person(
            "wy-police",
            "9434765919",
            "Other",
            (1990, 1, 1),
        ))],
    )
    .await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists(_))),
        "{taken:?}"
    );

    // Candidates are found through their blocking keys, with their
    // identifiers: by the sound of the family name and the birth year, by
    // the given name and birth date.
    let other = person("wy-police", "4010232137", "Smith", (2012, 5, 4));
    commit(store, vec![Write::InsertSubject(other.clone())])
        .await
        .unwrap();
    let keys = |family: &str, born: (i32, u32, u32)| {
        let born = NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap();
        blocking::keys(family, "Amira", born, None)
    };
    let by_sound = store
        .match_candidates(&keys("Kahn", (2012, 9, 9)), 10)
        .await
        .unwrap();
    assert_eq!(by_sound, vec![amira.clone()]);
    let by_birth = store
        .match_candidates(&keys("Nobody", (2012, 5, 4)), 10)
        .await
        .unwrap();
    assert_eq!(by_birth.len(), 2);
    let limited = store
        .match_candidates(&keys("Khan", (2012, 5, 4)), 1)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    let nobody = store
        .match_candidates(&keys("Nobody", (1999, 1, 1)), 10)
        .await
        .unwrap();
    assert!(nobody.is_empty());

    // Another agency links its own reference; it is tied to the subject
    // until it unlinks it.
    let local = Identifier::parse(
        IdentifierSystem::LocalReference,
        "wyp/77",
        Some(&code("wy-police")),
    )
    .unwrap();
    let link_write = |subject: &SubjectId| Write::LinkIdentifier {
        subject: subject.clone(),
        identifier: local.clone(),
        linked_by: code("wy-police"),
        time: t(9),
    };
    commit(store, vec![link_write(&amira.id)]).await.unwrap();
    let twice = commit(store, vec![link_write(&other.id)]).await;
    assert!(
        matches!(twice, Err(StoreError::AlreadyExists(_))),
        "{twice:?}"
    );
    let ghost = commit(
        store,
        vec![Write::LinkIdentifier {
            subject: SubjectId::generate(),
            identifier: nhs(&helpers::nhs_number(3)),
            linked_by: code("wy-police"),
            time: t(9),
        }],
    )
    .await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
    let linked = store.subject(&amira.id).await.unwrap().unwrap();
    assert_eq!(linked.identifiers.len(), 2);
    let candidates = store
        .match_candidates(&keys("Khan", (2012, 9, 9)), 10)
        .await
        .unwrap();
    assert_eq!(
        candidates,
        vec![linked],
        "every identifier comes with a candidate"
    );
    let ties = store.subject_ties(&amira.id).await.unwrap();
    let connected: BTreeSet<&str> = ties.connected.iter().map(AgencyCode::as_str).collect();
    assert_eq!(connected, BTreeSet::from(["leeds-cc", "wy-police"]));
    assert!(ties.sealed_by.is_empty());

    let unlink = Write::UnlinkIdentifier {
        subject: amira.id.clone(),
        identifier: local.clone(),
        unlinked_by: code("leeds-cc"),
    };
    commit(store, vec![unlink.clone()]).await.unwrap();
    assert_eq!(store.identifier_link(&local).await.unwrap(), None);
    let again = commit(store, vec![unlink]).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let ties = store.subject_ties(&amira.id).await.unwrap();
    assert_eq!(ties.connected, vec![code("leeds-cc")]);
}

/// Subjects from before the blocking keys (their keys removed here, and
/// the version mark with them) are given their keys when the schema is
/// brought up to date, once.
async fn subjects_registered_before_blocking_keys_are_given_them(f: &Fresh) {
    let store = &f.store;
    commit(store, vec![Write::InsertAgency(agency("leeds-cc"))])
        .await
        .unwrap();
    let amira = person("leeds-cc", "9434765919", "Khan", (2012, 5, 4));
    commit(store, vec![Write::InsertSubject(amira.clone())])
        .await
        .unwrap();
    let keys = blocking::keys("Khan", "Amira", amira.demographics.birth_date, None);
    let raw = sqlx::AnyPool::connect(&f.url).await.unwrap();
    sqlx::query("DELETE FROM subject_blocks")
        .execute(&raw)
        .await
        .unwrap();
    assert!(store.match_candidates(&keys, 10).await.unwrap().is_empty());
    store.migrate().await.unwrap();
    assert!(
        store.match_candidates(&keys, 10).await.unwrap().is_empty(),
        "done once: the version is marked"
    );
    // Enough subjects that their keys take several statements.
    let others: Vec<Subject> = (0..150)
        .map(|n| {
            let mut p = person("leeds-cc", &helpers::nhs_number(n), "Other", (1990, 1, 1));
            p.demographics.family_name = format!("Family{n}");
            p
        })
        .collect();
    commit(
        store,
        others.iter().cloned().map(Write::InsertSubject).collect(),
    )
    .await
    .unwrap();
    let expected: usize = std::iter::once(&amira)
        .chain(&others)
        .map(|s| accord::matching::Profile::of(s).blocking_keys().len())
        .sum();
    assert!(expected > 400, "{expected}");
    sqlx::query("DELETE FROM subject_blocks")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM meta WHERE key = 'subject_blocks'")
        .execute(&raw)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.match_candidates(&keys, 10).await.unwrap(),
        vec![amira]
    );
    let filed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subject_blocks")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(filed, i64::try_from(expected).unwrap());
    raw.close().await;
}

/// A pair is raised once, whichever subject came first; it is resolved
/// once, and listed by where it stands.
async fn possible_duplicates_are_raised_once_and_resolved_once(f: &Fresh) {
    let store = &f.store;
    commit(store, vec![Write::InsertAgency(agency("leeds-cc"))])
        .await
        .unwrap();
    let a = person("leeds-cc", "9434765919", "Khan", (2012, 5, 4));
    let b = person("leeds-cc", "4010232137", "Kahn", (2012, 5, 4));
    commit(
        store,
        vec![
            Write::InsertSubject(a.clone()),
            Write::InsertSubject(b.clone()),
        ],
    )
    .await
    .unwrap();
    let raise = |subject: &Subject, candidate: &Subject| PossibleDuplicate {
        id: PossibleDuplicateId::generate(),
        subject: subject.id.clone(),
        candidate: candidate.id.clone(),
        cause: DuplicateCause::PossibleMatch,
        raised_by: code("leeds-cc"),
        create_time: t(5),
        resolution: None,
    };
    let first = raise(&b, &a);
    commit(store, vec![Write::InsertPossibleDuplicate(first.clone())])
        .await
        .unwrap();
    // The same pair the other way round is not raised again.
    commit(store, vec![Write::InsertPossibleDuplicate(raise(&a, &b))])
        .await
        .unwrap();
    let open = store
        .possible_duplicates(DuplicateState::Open, After::Start, 10)
        .await
        .unwrap();
    assert_eq!(open, vec![first.clone()]);
    let resolution = DuplicateResolution {
        state: DuplicateState::DifferentPeople,
        principal: "dq-1".into(),
        time: t(6),
        note: "two children".into(),
    };
    let resolve = Write::ResolvePossibleDuplicate {
        id: first.id.clone(),
        resolution: resolution.clone(),
    };
    commit(store, vec![resolve.clone()]).await.unwrap();
    let again = commit(store, vec![resolve]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(
        store
            .possible_duplicates(DuplicateState::Open, After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let resolved = store.possible_duplicate(&first.id).await.unwrap().unwrap();
    assert_eq!(resolved.resolution, Some(resolution));
    assert_eq!(
        store
            .possible_duplicates(DuplicateState::DifferentPeople, After::Start, 10)
            .await
            .unwrap(),
        vec![resolved]
    );
    // Resolved as different people, the pair stays so.
    commit(store, vec![Write::InsertPossibleDuplicate(raise(&b, &a))])
        .await
        .unwrap();
    assert!(
        store
            .possible_duplicates(DuplicateState::Open, After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn merges_move_exactly_what_was_planned(f: &Fresh) {
    let store = &f.store;
    let a = record_ground(store).await;
    let b = person("leeds-cc", "4010232137", "Kahn", (2012, 5, 4));
    commit(store, vec![Write::InsertSubject(b.clone())])
        .await
        .unwrap();
    let id = RecordId::generate();
    let held = consent(&b.id, &[], 6);
    commit(
        store,
        vec![
            Write::InsertRecord {
                record: note(&b.id, &id, 1, "about b"),
                written_by: "sw-1".into(),
            },
            Write::InsertConsent(held.clone()),
        ],
    )
    .await
    .unwrap();
    let record = Expect::Record {
        id: id.clone(),
        subject: b.id.clone(),
        current: Some(1),
        sealed: false,
    };
    expecting(store, vec![record.clone(), Expect::Subject(b.id.clone())])
        .await
        .unwrap();
    assert_eq!(store.merge_plan(&a.id, &a.id).await.unwrap(), None);
    let moved = store.merge_plan(&a.id, &b.id).await.unwrap().unwrap();
    assert_eq!(moved.identifiers, b.identifiers);
    assert_eq!(moved.records, std::slice::from_ref(&id));
    assert_eq!(moved.consents, std::slice::from_ref(&held.id));
    let act = |at: i64| MergeAct {
        principal: "dq-1".into(),
        agency: code("leeds-cc"),
        time: t(at),
        note: "one child".into(),
    };
    let merge = SubjectMerge {
        id: SubjectMergeId::generate(),
        survivor: a.id.clone(),
        merged: b.id.clone(),
        act: act(7),
        moved: moved.clone(),
        possible_duplicate: None,
        unmerge: None,
    };

    // A merge decided on less than what would move writes nothing.
    let mut short = merge.clone();
    short.moved.consents.clear();
    let size = store.tree_head().await.unwrap().size;
    let stale = commit(store, vec![Write::MergeSubjects(short)]).await;
    assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
    assert_eq!(store.tree_head().await.unwrap().size, size);
    assert_eq!(
        store.record(&id, None).await.unwrap().unwrap().subject,
        b.id
    );

    commit(store, vec![Write::MergeSubjects(merge.clone())])
        .await
        .unwrap();
    let merged = store.subject(&b.id).await.unwrap().unwrap();
    assert_eq!(merged.merged_into, Some(a.id.clone()));
    assert!(merged.identifiers.is_empty());
    assert_eq!(
        store.record(&id, None).await.unwrap().unwrap().subject,
        a.id
    );
    assert_eq!(
        store.consent(&held.id).await.unwrap().unwrap().subject,
        a.id
    );
    assert_eq!(store.merged_subjects(&a.id).await.unwrap().len(), 1);
    assert_eq!(
        store.merges_of(&b.id).await.unwrap(),
        std::slice::from_ref(&merge)
    );
    // Decisions about the record as it was, and writes naming the merged
    // subject, no longer commit.
    assert!(is_stale(expecting(store, vec![record]).await));
    assert!(is_stale(
        expecting(store, vec![Expect::Subject(b.id.clone())]).await
    ));
    let late = commit(
        store,
        vec![Write::InsertRecord {
            record: note(&b.id, &RecordId::generate(), 1, "late"),
            written_by: "sw-1".into(),
        }],
    )
    .await;
    assert!(matches!(late, Err(StoreError::NotFound(_))), "{late:?}");
    // The merged subject is no longer a candidate.
    let keys = blocking::keys("Kahn", "Amira", b.demographics.birth_date, Some("LS1 4AP"));
    let candidates = store.match_candidates(&keys, 100).await.unwrap();
    assert!(candidates.iter().all(|s| s.id != b.id), "{candidates:?}");
    assert!(candidates.iter().any(|s| s.id == a.id));
    // A second merge of it is refused.
    assert_eq!(store.merge_plan(&a.id, &b.id).await.unwrap(), None);

    // Undone exactly.
    let (restored, copied) = store.unmerge_plan(&merge).await.unwrap().unwrap();
    assert_eq!(restored, moved);
    assert!(copied.is_empty());
    let mut undone = merge.clone();
    undone.unmerge = Some(Unmerge {
        act: act(8),
        restored,
        copied_seals: copied,
    });
    commit(store, vec![Write::UnmergeSubjects(undone.clone())])
        .await
        .unwrap();
    let back = store.subject(&b.id).await.unwrap().unwrap();
    assert_eq!(back, b);
    assert_eq!(
        store.record(&id, None).await.unwrap().unwrap().subject,
        b.id
    );
    assert_eq!(
        store.consent(&held.id).await.unwrap().unwrap().subject,
        b.id
    );
    assert_eq!(store.merges_of(&a.id).await.unwrap(), [undone.clone()]);
    assert!(store.merged_subjects(&a.id).await.unwrap().is_empty());
    assert_eq!(store.unmerge_plan(&merge).await.unwrap(), None);
    let twice = commit(store, vec![Write::UnmergeSubjects(undone)]).await;
    assert!(matches!(twice, Err(StoreError::Stale(_))), "{twice:?}");
    let kinds: Vec<EventKind> = all_events(store)
        .await
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| matches!(k, EventKind::SubjectMerged | EventKind::SubjectUnmerged))
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::SubjectMerged,
            EventKind::SubjectMerged,
            EventKind::SubjectUnmerged,
            EventKind::SubjectUnmerged
        ]
    );
}

/// An agency, a record class and a subject to write records about.
async fn record_ground(store: &SqlStore) -> Subject {
    commit(
        store,
        vec![
            Write::InsertAgency(agency("leeds-cc")),
            Write::InsertRecordClass(note_class("test.note")),
        ],
    )
    .await
    .unwrap();
    let subject = person("leeds-cc", "9434765919", "Khan", (2012, 5, 4));
    commit(store, vec![Write::InsertSubject(subject.clone())])
        .await
        .unwrap();
    subject
}

fn note(subject: &SubjectId, id: &RecordId, version: i64, text: &str) -> Record {
    let fields = BTreeMap::from([("text".to_owned(), FieldValue::String(text.into()))]);
    Record {
        etag: Record::compute_etag(id, version, &fields),
        id: id.clone(),
        subject: subject.clone(),
        record_class: RecordClassId::parse("test.note").unwrap(),
        controller: code("leeds-cc"),
        version,
        fields,
        create_time: t(6),
        update_time: t(5 + version),
        sealed: false,
    }
}

async fn records_keep_every_version_and_can_be_sealed(f: &Fresh) {
    let store = &f.store;
    let subject = record_ground(store).await;
    let id = RecordId::generate();
    // Texts that would end a quoted literal early, were they written into
    // a statement carelessly, come back whole.
    let v1 = note(
        &subject.id,
        &id,
        1,
        "v1 $q0$'); COMMIT; DELETE FROM records; --",
    );
    commit(
        store,
        vec![Write::InsertRecord {
            record: v1.clone(),
            written_by: "sw-1".into(),
        }],
    )
    .await
    .unwrap();
    let v2 = note(&subject.id, &id, 2, "v2 \\' $$ ends with $q");
    let update = |expected: &str| Write::UpdateRecord {
        record: v2.clone(),
        expected_etag: expected.to_owned(),
        written_by: "sw-1".into(),
    };
    commit(store, vec![update(&v1.etag)]).await.unwrap();
    let stale = commit(store, vec![update(&v1.etag)]).await;
    assert!(
        matches!(stale, Err(StoreError::StaleEtag { .. })),
        "{stale:?}"
    );
    assert_eq!(store.record(&id, None).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.record(&id, Some(1)).await.unwrap(), Some(v1.clone()));
    assert_eq!(store.record(&id, Some(3)).await.unwrap(), None);
    assert_eq!(
        store.record(&RecordId::generate(), None).await.unwrap(),
        None
    );

    let other = note(&subject.id, &RecordId::generate(), 1, "other");
    commit(
        store,
        vec![Write::InsertRecord {
            record: other.clone(),
            written_by: "sw-1".into(),
        }],
    )
    .await
    .unwrap();
    // Latest versions, the most recently changed first, paged.
    let all = store
        .records_of_subject(&subject.id, After::Start, 10)
        .await
        .unwrap();
    assert_eq!(all, vec![v2.clone(), other.clone()]);
    let first = store
        .records_of_subject(&subject.id, After::Start, 1)
        .await
        .unwrap();
    assert_eq!(first, vec![v2.clone()]);
    let second = store
        .records_of_subject(
            &subject.id,
            After::Key((v2.update_time.timestamp_micros(), v2.id.as_str().to_owned())),
            10,
        )
        .await
        .unwrap();
    assert_eq!(second, vec![other.clone()]);
    assert!(
        store
            .records_of_subject(&SubjectId::generate(), After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Sealing one record marks it; sealing all of an agency's records about
    // the subject ties the seal to the subject. Each seals once.
    let seal = |record: Option<RecordId>| Write::Seal {
        agency: code("leeds-cc"),
        subject: subject.id.clone(),
        record,
        reason: "court order".into(),
        sealed_by: "lead-1".into(),
        time: t(20),
    };
    let unseal = |record: Option<RecordId>| Write::Unseal {
        agency: code("leeds-cc"),
        subject: subject.id.clone(),
        record,
    };
    commit(store, vec![seal(Some(id.clone()))]).await.unwrap();
    assert!(store.record(&id, None).await.unwrap().unwrap().sealed);
    assert!(!store.record(&other.id, None).await.unwrap().unwrap().sealed);
    let twice = commit(store, vec![seal(Some(id.clone()))]).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    commit(store, vec![seal(None)]).await.unwrap();
    assert_eq!(
        store.subject_ties(&subject.id).await.unwrap().sealed_by,
        vec![code("leeds-cc")]
    );
    assert!(store.record(&other.id, None).await.unwrap().unwrap().sealed);
    commit(store, vec![unseal(None)]).await.unwrap();
    commit(store, vec![unseal(Some(id.clone()))]).await.unwrap();
    assert!(!store.record(&id, None).await.unwrap().unwrap().sealed);
    assert!(
        store
            .subject_ties(&subject.id)
            .await
            .unwrap()
            .sealed_by
            .is_empty()
    );
    let not_sealed = commit(store, vec![unseal(None)]).await;
    assert!(
        matches!(not_sealed, Err(StoreError::Conflict(_))),
        "{not_sealed:?}"
    );
}

fn identity(agency_: &str, san: &str, at: i64) -> CertificateIdentity {
    CertificateIdentity {
        id: CertificateIdentityId::generate(),
        agency: code(agency_),
        matcher: CertificateMatch::subject_alt_name(san).unwrap(),
        note: "case system".into(),
        create_time: t(at),
        revoke_time: None,
    }
}

fn issuer(agency_: &str, iss: &str) -> TokenIssuer {
    TokenIssuer {
        id: TokenIssuerId::generate(),
        agency: code(agency_),
        issuer: iss.into(),
        jwks: JwksSource::Path("/etc/accord/jwks.json".into()),
        subject_claim: "sub".into(),
        roles_claim: "roles".into(),
        create_time: t(3),
    }
}

async fn credentials_recognise_callers_until_revoked_or_removed(f: &Fresh) {
    let store = &f.store;
    for c in ["leeds-cc", "wy-police"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let version = store.registry_version().await.unwrap();
    let case = identity("leeds-cc", "case.leeds-cc.example", 1);
    let portal = identity("leeds-cc", "portal.leeds-cc.example", 2);
    let police = identity("wy-police", "niche.wy-police.example", 3);
    for c in [&case, &portal, &police] {
        commit(store, vec![Write::InsertCertificateIdentity(c.clone())])
            .await
            .unwrap();
    }
    assert!(store.registry_version().await.unwrap() > version);
    let taken = commit(
        store,
        vec![Write::InsertCertificateIdentity(identity(
            "wy-police",
            "case.leeds-cc.example",
            4,
        ))],
    )
    .await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists(_))),
        "{taken:?}"
    );
    assert_eq!(
        store
            .certificate_identities(&code("leeds-cc"))
            .await
            .unwrap(),
        vec![case.clone(), portal.clone()]
    );
    let matching = store
        .certificate_identities_matching(&[
            police.matcher.clone(),
            CertificateMatch::subject_alt_name("unknown.example").unwrap(),
            case.matcher.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(matching, vec![case.clone(), police.clone()]);
    assert!(
        store
            .certificate_identities_matching(&[])
            .await
            .unwrap()
            .is_empty()
    );

    // Revoking keeps the identity, marked, once.
    let before = store.registry_version().await.unwrap();
    let revoke = Write::RevokeCertificateIdentity {
        id: case.id.clone(),
        time: t(30),
    };
    commit(store, vec![revoke.clone()]).await.unwrap();
    assert!(store.registry_version().await.unwrap() > before);
    let revoked = store
        .certificate_identities_matching(std::slice::from_ref(&case.matcher))
        .await
        .unwrap();
    assert_eq!(revoked[0].revoke_time, Some(t(30)));
    let again = commit(store, vec![revoke]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Token issuers: one per `iss`, found by it, removable.
    let idp = issuer("leeds-cc", "https://idp.leeds-cc.example");
    commit(store, vec![Write::InsertTokenIssuer(idp.clone())])
        .await
        .unwrap();
    let dup = commit(
        store,
        vec![Write::InsertTokenIssuer(issuer(
            "wy-police",
            "https://idp.leeds-cc.example",
        ))],
    )
    .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    assert_eq!(
        store.token_issuers(&code("leeds-cc")).await.unwrap(),
        vec![idp.clone()]
    );
    assert!(
        store
            .token_issuers(&code("wy-police"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.token_issuer(&idp.issuer).await.unwrap(),
        Some(idp.clone())
    );
    let before = store.registry_version().await.unwrap();
    commit(store, vec![Write::RemoveTokenIssuer(idp.id.clone())])
        .await
        .unwrap();
    assert!(store.registry_version().await.unwrap() > before);
    assert_eq!(store.token_issuer(&idp.issuer).await.unwrap(), None);
}

fn agreement(id: &AgreementId, version: i64, status: AgreementStatus) -> Agreement {
    let class = RecordClassId::parse("test.note").unwrap();
    Agreement {
        id: id.clone(),
        version,
        terms: AgreementTerms {
            title: format!("Notes for safeguarding, version {version}"),
            provider: code("leeds-cc"),
            consumers: vec![ConsumerTerms {
                agency: code("wy-police"),
                grants: vec![FieldGrant {
                    role: Role::parse("officer").unwrap(),
                    record_class: class.clone(),
                    fields: BTreeSet::from(["text".to_owned()]),
                }],
            }],
            record_classes: vec![class],
            purposes: vec![Purpose::Safeguarding],
            lawful_bases: vec![LawfulBasis {
                code: LawfulBasisCode::UkGdprArt6_1E,
                reference: "Children Act 2004 s11".into(),
            }],
            consent: ConsentRequirement::NotRequired,
            covers_sealed: false,
            valid_from: t(0),
            valid_until: t(1_000_000),
            review_date: NaiveDate::from_ymd_opt(2027, 6, 1).unwrap(),
        },
        status,
        approvals: vec![],
        suspension: None,
        created_by: code("leeds-cc"),
        create_time: t(10),
        update_time: t(10),
        revision: 1,
    }
}

async fn agreements_keep_every_version_and_change_by_revision(f: &Fresh) {
    let store = &f.store;
    record_ground(store).await;
    for c in ["wy-police", "other-cc"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let versions = store.policy_versions().await.unwrap();
    let id = AgreementId::generate();
    let v1 = agreement(&id, 1, AgreementStatus::Draft);
    commit(store, vec![Write::InsertAgreement(v1.clone())])
        .await
        .unwrap();
    assert_eq!(store.agreement(&id, None).await.unwrap(), Some(v1.clone()));
    assert!(store.policy_versions().await.unwrap().agreements > versions.agreements);

    // A lifecycle step applies to the revision it was made from.
    let approved = Agreement {
        status: AgreementStatus::Active,
        approvals: vec![Approval {
            agency: code("leeds-cc"),
            principal: "ig-1".into(),
            time: t(11),
        }],
        update_time: t(11),
        revision: 2,
        ..v1.clone()
    };
    let step = |a: &Agreement, expected| Write::UpdateAgreement {
        agreement: a.clone(),
        expected_revision: expected,
    };
    commit(store, vec![step(&approved, 1)]).await.unwrap();
    let stale = commit(store, vec![step(&approved, 1)]).await;
    assert!(
        matches!(stale, Err(StoreError::StaleEtag { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.agreement(&id, None).await.unwrap(),
        Some(approved.clone())
    );

    // A revision is a new version; the old one is superseded but kept.
    let v2 = agreement(&id, 2, AgreementStatus::Draft);
    let superseded = Agreement {
        status: AgreementStatus::Superseded,
        revision: 3,
        ..approved.clone()
    };
    commit(
        store,
        vec![Write::InsertAgreement(v2.clone()), step(&superseded, 2)],
    )
    .await
    .unwrap();
    assert_eq!(store.agreement(&id, None).await.unwrap(), Some(v2.clone()));
    assert_eq!(
        store.agreement(&id, Some(1)).await.unwrap(),
        Some(superseded.clone())
    );
    assert_eq!(store.agreement(&id, Some(3)).await.unwrap(), None);
    assert_eq!(
        store.agreement_versions(&id).await.unwrap(),
        vec![superseded, v2.clone()]
    );
    assert_eq!(store.live_agreements().await.unwrap(), vec![v2.clone()]);

    // Each party sees the latest version; others see nothing.
    let other_id = AgreementId::generate();
    let other = agreement(&other_id, 1, AgreementStatus::Draft);
    commit(store, vec![Write::InsertAgreement(other.clone())])
        .await
        .unwrap();
    for party in ["leeds-cc", "wy-police"] {
        let seen = store
            .agreements_of(&code(party), After::Start, 10)
            .await
            .unwrap();
        let mut expected = vec![v2.clone(), other.clone()];
        expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        assert_eq!(seen, expected, "{party}");
        let page = store
            .agreements_of(&code(party), After::Key(expected[0].id.as_str().into()), 10)
            .await
            .unwrap();
        assert_eq!(page, vec![expected[1].clone()], "{party}");
    }
    assert!(
        store
            .agreements_of(&code("other-cc"), After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn consent(subject: &SubjectId, recipients: &[&str], at: i64) -> Consent {
    Consent {
        id: ConsentId::generate(),
        subject: subject.clone(),
        kind: ConsentKind::Consent,
        scope: ConsentScope {
            purposes: vec![Purpose::DirectCare],
            record_classes: vec![],
            recipients: recipients.iter().map(|r| code(r)).collect(),
        },
        channel: Channel::FaceToFace,
        valid_from: t(at),
        valid_until: None,
        note: String::new(),
        recorded_by: code("leeds-cc"),
        recorded_principal: "sw-1".into(),
        record_time: t(at),
        withdrawal: None,
    }
}

async fn consents_are_recorded_withdrawn_once_and_followed(f: &Fresh) {
    let store = &f.store;
    let subject = record_ground(store).await;
    for c in ["wy-police", "leeds-health"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let start = store.policy_versions().await.unwrap().consents;
    let to_police = consent(&subject.id, &["wy-police"], 10);
    let to_anyone = consent(&subject.id, &[], 11);
    for c in [&to_police, &to_anyone] {
        commit(store, vec![Write::InsertConsent(c.clone())])
            .await
            .unwrap();
    }
    let after_insert = store.policy_versions().await.unwrap().consents;
    assert!(after_insert > start);
    assert_eq!(
        store.consent(&to_police.id).await.unwrap(),
        Some(to_police.clone())
    );
    assert_eq!(store.consent(&ConsentId::generate()).await.unwrap(), None);

    // What concerns an agency: recorded by it, or naming it or everyone;
    // newest first.
    let of = |agency_: &'static str| {
        let subject = subject.id.clone();
        async move {
            store
                .consents_of(&subject, &code(agency_), After::Start, 10)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        of("leeds-cc").await,
        vec![to_anyone.clone(), to_police.clone()]
    );
    assert_eq!(
        of("wy-police").await,
        vec![to_anyone.clone(), to_police.clone()]
    );
    assert_eq!(of("leeds-health").await, vec![to_anyone.clone()]);
    let paged = store
        .consents_of(
            &subject.id,
            &code("leeds-cc"),
            After::Key((
                to_anyone.record_time.timestamp_micros(),
                to_anyone.id.as_str().to_owned(),
            )),
            10,
        )
        .await
        .unwrap();
    assert_eq!(paged, vec![to_police.clone()]);
    assert_eq!(store.consents_changed(0).await.unwrap().len(), 2);
    assert!(
        store
            .consents_changed(after_insert)
            .await
            .unwrap()
            .is_empty()
    );

    // A withdrawal is kept, happens once, and counts as a change.
    let withdrawal = Withdrawal {
        agency: code("leeds-cc"),
        principal: "sw-1".into(),
        time: t(40),
        reason: "changed their mind".into(),
    };
    let withdraw = Write::WithdrawConsent {
        consent: to_police.clone(),
        withdrawal: withdrawal.clone(),
    };
    commit(store, vec![withdraw.clone()]).await.unwrap();
    let withdrawn = store.consent(&to_police.id).await.unwrap().unwrap();
    assert_eq!(withdrawn.withdrawal, Some(withdrawal));
    assert_eq!(
        store.consents_changed(after_insert).await.unwrap(),
        vec![withdrawn]
    );
    let again = commit(store, vec![withdraw]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

fn alert(recipient: &str, at: i64) -> Alert {
    Alert {
        id: AlertId::generate(),
        kind: AlertKind::RepeatedRefusals,
        recipient: code(recipient),
        agency: "wy-police".into(),
        principal: "pc-9".into(),
        subject: String::new(),
        summary: "5 refusals in 10 minutes".into(),
        entry_index: 0,
        raise_time: t(at),
        acknowledgement: None,
    }
}

async fn alerts_are_tied_to_their_entry_and_acknowledged_once(f: &Fresh) {
    let store = &f.store;
    for c in ["leeds-cc", "wy-police"] {
        commit(store, vec![Write::InsertAgency(agency(c))])
            .await
            .unwrap();
    }
    let first = alert("leeds-cc", 10);
    let second = alert("leeds-cc", 11);
    let police = alert("wy-police", 12);
    let mut raised = Vec::new();
    for a in [&first, &second, &police] {
        let entry = commit(store, vec![Write::RaiseAlert(a.clone())])
            .await
            .unwrap();
        raised.push(Alert {
            entry_index: entry.index,
            ..a.clone()
        });
    }
    assert_eq!(
        store.alert(&first.id).await.unwrap(),
        Some(raised[0].clone())
    );
    assert_eq!(store.alert(&AlertId::generate()).await.unwrap(), None);
    assert_eq!(
        store
            .alerts(&code("leeds-cc"), false, After::Start, 10)
            .await
            .unwrap(),
        raised[..2].to_vec(),
        "oldest first, the recipient's only"
    );
    let page = store
        .alerts(
            &code("leeds-cc"),
            false,
            After::Key((
                first.raise_time.timestamp_micros(),
                first.id.as_str().into(),
            )),
            10,
        )
        .await
        .unwrap();
    assert_eq!(page, vec![raised[1].clone()]);

    let ack = |note: &str| Write::AcknowledgeAlert {
        id: first.id.clone(),
        acknowledgement: Acknowledgement {
            principal: "ig-1".into(),
            time: t(20),
            note: note.into(),
        },
    };
    commit(store, vec![ack("spoke to the officer")])
        .await
        .unwrap();
    commit(store, vec![ack("a second look")]).await.unwrap();
    let acknowledged = store.alert(&first.id).await.unwrap().unwrap();
    assert_eq!(
        acknowledged.acknowledgement.map(|a| a.note),
        Some("spoke to the officer".to_owned()),
        "the first acknowledgement stands"
    );
    assert_eq!(
        store
            .alerts(&code("leeds-cc"), true, After::Start, 10)
            .await
            .unwrap(),
        vec![raised[1].clone()]
    );
    let unknown = commit(
        store,
        vec![Write::AcknowledgeAlert {
            id: AlertId::generate(),
            acknowledgement: Acknowledgement {
                principal: "ig-1".into(),
                time: t(20),
                note: String::new(),
            },
        }],
    )
    .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

async fn service_metadata_is_set_and_read(f: &Fresh) {
    let store = &f.store;
    assert_eq!(store.meta("test.key").await.unwrap(), None);
    let set = |value: &str| Write::SetMeta {
        key: "test.key".into(),
        value: value.into(),
    };
    commit(store, vec![set("one")]).await.unwrap();
    assert_eq!(
        store.meta("test.key").await.unwrap().as_deref(),
        Some("one")
    );
    commit(store, vec![set("two")]).await.unwrap();
    assert_eq!(
        store.meta("test.key").await.unwrap().as_deref(),
        Some("two")
    );
}

async fn the_ledger_is_filtered_counted_proven_and_checkpointed(f: &Fresh) {
    let store = &f.store;
    for n in 1..=6 {
        let outcome = if n == 5 {
            Outcome::Denied
        } else {
            Outcome::Permitted
        };
        store.commit(vec![], draft(n, outcome)).await.unwrap();
    }
    let denied_filter = EntryFilter {
        outcome: Some(Outcome::Denied),
        ..Default::default()
    };
    let denied = store
        .entries(&denied_filter, After::Start, 10)
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].draft.request_id, "req-5");
    assert_eq!(store.count_entries(&denied_filter).await.unwrap(), 1);
    let window = EntryFilter {
        start: Some(t(2)),
        end: Some(t(4)),
        ..Default::default()
    };
    let ids: Vec<String> = store
        .entries(&window, After::Start, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.draft.request_id)
        .collect();
    assert_eq!(ids, ["req-2", "req-3"], "the window is start-inclusive");
    assert_eq!(store.count_entries(&window).await.unwrap(), 2);
    let after_two = store
        .entries(&EntryFilter::default(), After::Key(1), 2)
        .await
        .unwrap();
    let indexes: Vec<i64> = after_two.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [2, 3]);

    // The tree: head, nodes and proofs agree with the entries.
    let all = store
        .entries(&EntryFilter::default(), After::Start, 100)
        .await
        .unwrap();
    assert_eq!(
        store.count_entries(&EntryFilter::default()).await.unwrap(),
        6
    );
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.size, 6);
    assert_eq!(accord::store::verify_ledger(store).await.unwrap(), head);
    let leaves: Vec<_> = all.iter().map(ledger::Entry::leaf_hash).collect();
    assert_eq!(head.root, ledger::merkle::root(&leaves));
    let leaf = ledger::merkle::NodeId { level: 0, index: 4 };
    let pair = ledger::merkle::NodeId { level: 1, index: 0 };
    let beyond = ledger::merkle::NodeId { level: 0, index: 6 };
    let nodes = store.nodes(&[leaf, pair, beyond]).await.unwrap();
    assert_eq!(nodes.get(&leaf), Some(&leaves[4]));
    assert_eq!(nodes.get(&pair), Some(&ledger::merkle::root(&leaves[..2])));
    assert!(!nodes.contains_key(&beyond));
    for size in 1..=6u64 {
        let root = accord::store::root_at(store, size).await.unwrap();
        assert_eq!(root, ledger::merkle::root(&leaves[..size as usize]));
        for i in 0..size {
            let proof = accord::store::inclusion_proof(store, i, size)
                .await
                .unwrap();
            ledger::merkle::verify_inclusion(i, size, &leaves[i as usize], &proof, &root).unwrap();
        }
        let proof = accord::store::consistency_proof(store, size, 6)
            .await
            .unwrap();
        ledger::merkle::verify_consistency(size, 6, &proof, &root, &head.root).unwrap();
    }
    assert!(matches!(
        accord::store::inclusion_proof(store, 0, 7).await,
        Err(accord::store::ProveError::BeyondHead { asked: 7, size: 6 })
    ));

    // Checkpoints: one per size, found by size, by range and latest.
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    let (key, _) = ledger::checkpoint::SigningKey::generate("accord.test/ledger").unwrap();
    let mut signed = Vec::new();
    for size in [2u64, 4, 6] {
        let head = ledger::TreeHead {
            size,
            root: accord::store::root_at(store, size).await.unwrap(),
        };
        let checkpoint = ledger::checkpoint::SignedCheckpoint {
            head,
            time: t(50 + size as i64),
            note: key.sign(head).unwrap(),
            signed_by: vec![],
        };
        assert!(store.save_checkpoint(&checkpoint).await.unwrap());
        assert!(
            !store.save_checkpoint(&checkpoint).await.unwrap(),
            "one per size"
        );
        signed.push(checkpoint);
    }
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some(signed[2].clone())
    );
    assert_eq!(store.checkpoint(4).await.unwrap(), Some(signed[1].clone()));
    assert_eq!(store.checkpoint(3).await.unwrap(), None);
    assert_eq!(store.checkpoints(3, 6).await.unwrap(), signed[1..].to_vec());

    // The ledger is append-only in the database itself.
    let raw = sqlx::AnyPool::connect(&f.url).await.unwrap();
    let tamper = sqlx::query("UPDATE ledger_entries SET outcome = 'permitted' WHERE idx = 4")
        .execute(&raw)
        .await;
    let delete = sqlx::query("DELETE FROM ledger_entries WHERE idx = 4")
        .execute(&raw)
        .await;
    raw.close().await;
    assert!(
        tamper.is_err(),
        "the database refused to rewrite the ledger"
    );
    assert!(
        delete.is_err(),
        "the database refused to delete from the ledger"
    );
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
        signed_by: vec![],
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
    let mut verifier = OfflineVerifier::new(&[key]);
    let header = Line::Header {
        format: FORMAT.into(),
        verifier_key: key.into(),
        verifier_keys: vec![key.into()],
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

    let mut blocker = hold_ledger_lock(url, &store).await;

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
    // Let every job queue behind the lock (probing, for at most 10 s),
    // then release it.
    for _ in 0..1000 {
        if store.commits_waiting() == JOBS as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.commits_waiting(),
        JOBS as u64,
        "the jobs never queued"
    );
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
    assert_eq!(store.commits_waiting(), 0, "every job was answered");
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
    let key = Arc::new(ledger::checkpoint::CheckpointKeys::single(key));
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
    assert_eq!(a.load_starter_catalogue().await.unwrap(), 0);

    // A newer starter catalogue's class (here: one taken away behind
    // Accord's back) is added on the next start, and only it.
    let raw = sqlx::AnyPool::connect(&accord::store::sqlite_url(dir.path()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM record_classes WHERE id = 'contact.record'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_eq!(b.load_starter_catalogue().await.unwrap(), 1);
    let contact = RecordClassId::parse("contact.record").unwrap();
    assert!(store.record_class(&contact).await.unwrap().is_some());
}

/// A ledger written before its tree's nodes were stored by position (the
/// migrations up to 0007, nodes keyed by level and index) is moved to the
/// new layout on start: the tree loads, grows on, and proves its old and
/// new entries against the new root.
async fn nodes_move_to_their_positions_story(url: &str, backend: &str) {
    const OLD: u64 = 300;
    accord::store::install_drivers();
    let earlier = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for file in std::fs::read_dir(&source).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0008" {
            std::fs::copy(&path, earlier.path().join(name)).unwrap();
        }
    }
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .unwrap()
        .run(&raw)
        .await
        .unwrap();
    let leaves: Vec<_> = (0..OLD)
        .map(|i| ledger::merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut frontier = ledger::merkle::Frontier::new(0, vec![]).unwrap();
    let mut nodes = Vec::new();
    for leaf in &leaves {
        frontier.push(*leaf, |id, hash| nodes.push((id, hash)));
    }
    for (id, hash) in nodes {
        sqlx::query("INSERT INTO ledger_nodes (level, idx, hash) VALUES ($1, $2, $3)")
            .bind(i64::from(id.level))
            .bind(id.index as i64)
            .bind(hash.to_vec())
            .execute(&raw)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE ledger_head SET size = $1, root_hash = $2 WHERE id = 1")
        .bind(OLD as i64)
        .bind(frontier.root().to_vec())
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    let store = connect(url, true).await.unwrap();
    let entry = store
        .commit(vec![], draft(1, Outcome::Permitted))
        .await
        .unwrap()
        .into_entry();
    assert_eq!(entry.index, OLD as i64, "the tree loaded from its nodes");
    let head = store.tree_head().await.unwrap();
    let mut all = leaves.clone();
    all.push(entry.leaf_hash());
    assert_eq!(head.root, ledger::merkle::root(&all));
    for i in [0, 1, 2, 127, 128, 255, 256, 299, OLD] {
        let proof = accord::store::inclusion_proof(&store, i, head.size)
            .await
            .unwrap();
        ledger::merkle::verify_inclusion(i, head.size, &all[i as usize], &proof, &head.root)
            .unwrap();
    }
    let proof = accord::store::consistency_proof(&store, 200, head.size)
        .await
        .unwrap();
    let old_root = ledger::merkle::root(&leaves[..200]);
    ledger::merkle::verify_consistency(200, head.size, &proof, &old_root, &head.root).unwrap();
    store.close().await;
}

#[tokio::test]
async fn nodes_move_to_their_positions_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = accord::store::sqlite_url(dir.path());
    nodes_move_to_their_positions_story(&url, "sqlite").await;
}

#[tokio::test]
async fn nodes_move_to_their_positions_postgres() {
    let Some(url) = helpers::fresh_postgres_database().await else {
        return;
    };
    nodes_move_to_their_positions_story(&url, "postgres").await;
    helpers::drop_postgres_database(&url).await;
}

/// The events of every stored change, in order.
async fn all_events(store: &SqlStore) -> Vec<Event> {
    store.events(EventPosition::START, 1000).await.unwrap()
}

/// Each change an agency may be told about writes its event in the
/// transaction of its entry, at that entry's index; a change refused (a
/// stale etag, a seal that is already there) writes none; events come
/// back in order and page from any position.
async fn changes_write_their_events_with_their_entry(f: &Fresh) {
    let store = &f.store;
    let subject = record_ground(store).await;
    commit(store, vec![Write::InsertAgency(agency("wy-police"))])
        .await
        .unwrap();
    assert!(all_events(store).await.is_empty(), "no event for set-up");

    let id = RecordId::generate();
    let v1 = note(&subject.id, &id, 1, "first");
    let created = commit(
        store,
        vec![Write::InsertRecord {
            record: v1.clone(),
            written_by: "sw-1".into(),
        }],
    )
    .await
    .unwrap();
    let v2 = note(&subject.id, &id, 2, "second");
    let update = Write::UpdateRecord {
        record: v2.clone(),
        expected_etag: v1.etag.clone(),
        written_by: "sw-1".into(),
    };
    let updated = commit(store, vec![update.clone()]).await.unwrap();
    let stale = commit(store, vec![update]).await;
    assert!(
        matches!(stale, Err(StoreError::StaleEtag { .. })),
        "{stale:?}"
    );
    let seal = Write::Seal {
        agency: code("leeds-cc"),
        subject: subject.id.clone(),
        record: Some(id.clone()),
        reason: "court order".into(),
        sealed_by: "lead-1".into(),
        time: t(20),
    };
    let sealed = commit(store, vec![seal.clone()]).await.unwrap();
    let twice = commit(store, vec![seal]).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let unsealed = commit(
        store,
        vec![Write::Unseal {
            agency: code("leeds-cc"),
            subject: subject.id.clone(),
            record: None,
        }],
    )
    .await;
    assert!(
        matches!(unsealed, Err(StoreError::Conflict(_))),
        "{unsealed:?}"
    );
    let local = Identifier::parse(
        IdentifierSystem::LocalReference,
        "wyp/77",
        Some(&code("wy-police")),
    )
    .unwrap();
    let linked = commit(
        store,
        vec![Write::LinkIdentifier {
            subject: subject.id.clone(),
            identifier: local.clone(),
            linked_by: code("wy-police"),
            time: t(21),
        }],
    )
    .await
    .unwrap();
    let given = consent(&subject.id, &["wy-police"], 22);
    let recorded = commit(store, vec![Write::InsertConsent(given.clone())])
        .await
        .unwrap();
    let withdrawn = commit(
        store,
        vec![Write::WithdrawConsent {
            consent: given.clone(),
            withdrawal: Withdrawal {
                agency: code("leeds-cc"),
                principal: "sw-1".into(),
                time: t(23),
                reason: "asked".into(),
            },
        }],
    )
    .await
    .unwrap();
    // An agreement's steps: a draft is no event; becoming active,
    // suspended and active again are, in one entry with two versions.
    let aid = AgreementId::generate();
    let draft_ = agreement(&aid, 1, AgreementStatus::Draft);
    commit(store, vec![Write::InsertAgreement(draft_.clone())])
        .await
        .unwrap();
    let active = Agreement {
        status: AgreementStatus::Active,
        revision: 2,
        ..draft_.clone()
    };
    let activated = commit(
        store,
        vec![Write::UpdateAgreement {
            agreement: active.clone(),
            expected_revision: 1,
        }],
    )
    .await
    .unwrap();
    let suspended = Agreement {
        status: AgreementStatus::Suspended,
        suspension: Some(Suspension {
            agency: code("wy-police"),
            principal: "lead-2".into(),
            time: t(30),
            reason: "breach under review".into(),
        }),
        revision: 3,
        ..active.clone()
    };
    let reinstated = Agreement {
        status: AgreementStatus::Active,
        revision: 4,
        ..suspended.clone()
    };
    let both = commit(
        store,
        vec![
            Write::UpdateAgreement {
                agreement: suspended,
                expected_revision: 2,
            },
            Write::UpdateAgreement {
                agreement: reinstated,
                expected_revision: 3,
            },
        ],
    )
    .await
    .unwrap();

    let events = all_events(store).await;
    let seen: Vec<(i64, i64, EventKind, &str, i64, &str)> = events
        .iter()
        .map(|e| {
            (
                e.position.entry,
                e.position.ord,
                e.kind,
                e.resource.as_str(),
                e.version,
                e.controller.as_str(),
            )
        })
        .collect();
    let record = id.resource_name();
    let person = subject.id.resource_name();
    let consent_name = given.id.resource_name();
    let agreement_name = aid.resource_name();
    assert_eq!(
        seen,
        vec![
            (
                created.index,
                0,
                EventKind::RecordCreated,
                record.as_str(),
                1,
                "leeds-cc"
            ),
            (
                updated.index,
                0,
                EventKind::RecordUpdated,
                record.as_str(),
                2,
                "leeds-cc"
            ),
            (
                sealed.index,
                0,
                EventKind::RecordSealed,
                record.as_str(),
                0,
                "leeds-cc"
            ),
            (
                linked.index,
                0,
                EventKind::IdentifierLinked,
                person.as_str(),
                0,
                "wy-police"
            ),
            (
                recorded.index,
                0,
                EventKind::ConsentRecorded,
                consent_name.as_str(),
                0,
                "leeds-cc"
            ),
            (
                withdrawn.index,
                0,
                EventKind::ConsentWithdrawn,
                consent_name.as_str(),
                0,
                "leeds-cc"
            ),
            (
                activated.index,
                0,
                EventKind::AgreementActivated,
                agreement_name.as_str(),
                1,
                "leeds-cc"
            ),
            (
                both.index,
                0,
                EventKind::AgreementSuspended,
                agreement_name.as_str(),
                1,
                "leeds-cc"
            ),
            (
                both.index,
                1,
                EventKind::AgreementReinstated,
                agreement_name.as_str(),
                1,
                "leeds-cc"
            ),
        ]
    );
    // Every event bears its entry's time, the subject and (for records)
    // the class; the agreement's events name it.
    assert_eq!(events[0].time, created.draft.time);
    assert!(
        events[..6]
            .iter()
            .all(|e| e.subject.as_ref() == Some(&subject.id))
    );
    assert_eq!(events[0].record_class, Some(v1.record_class.clone()));
    assert_eq!(events[2].record_class, None);
    assert!(
        events[6..]
            .iter()
            .all(|e| e.agreement.as_ref() == Some(&aid) && e.subject.is_none())
    );

    // Paged from any position, with nothing repeated or skipped.
    let mut paged = Vec::new();
    let mut after = EventPosition::START;
    loop {
        let page = store.events(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        paged.extend(page);
    }
    assert_eq!(paged, events);
    assert!(
        store
            .events(events[8].position, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An entry that disclosed fields to an agency other than their controller
/// is found by each record it disclosed (whatever the version), by its
/// consent and by each of its agreements; a controller's own read, a
/// refusal and an entry that disclosed no field are not.
async fn disclosures_are_found_by_what_they_rested_on(f: &Fresh) {
    let store = &f.store;
    let disclosure = |n: i64, agency: &str, outcome: Outcome, fields: &[&str]| {
        let mut d = draft(n, outcome);
        d.agency = agency.into();
        d.controller = "leeds-cc".into();
        d.records = vec![format!("records/r{n}@2"), "records/shared@1".into()];
        d.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        d.grounds.consent = "consents/c1".into();
        d.grounds.agreements = vec!["agreements/a1@1".into(), format!("agreements/a{n}@3")];
        d
    };
    let mut indexes = Vec::new();
    for d in [
        disclosure(1, "wy-police", Outcome::Permitted, &["reason"]),
        disclosure(2, "leeds-cc", Outcome::Permitted, &["reason"]),
        disclosure(3, "wy-police", Outcome::Denied, &["reason"]),
        disclosure(4, "wy-police", Outcome::Permitted, &[]),
        disclosure(
            5,
            "leeds-health",
            Outcome::Permitted,
            &["reason", "service"],
        ),
    ] {
        indexes.push(store.commit(vec![], d).await.unwrap().entry().index);
    }
    let found = |key: &str| {
        let filter = EntryFilter {
            disclosed: Some(key.to_owned()),
            ..EntryFilter::default()
        };
        async move {
            store
                .entries(&filter, After::Start, 100)
                .await
                .unwrap()
                .iter()
                .map(|e| e.index)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("records/shared").await, vec![indexes[0], indexes[4]]);
    assert_eq!(found("records/r1").await, vec![indexes[0]]);
    assert_eq!(found("records/r2").await, Vec::<i64>::new());
    assert_eq!(found("records/r1@2").await, Vec::<i64>::new());
    assert_eq!(found("consents/c1").await, vec![indexes[0], indexes[4]]);
    assert_eq!(found("agreements/a1@1").await, vec![indexes[0], indexes[4]]);
    assert_eq!(found("agreements/a5@3").await, vec![indexes[4]]);
    assert_eq!(found("agreements/a4@3").await, Vec::<i64>::new());
}
