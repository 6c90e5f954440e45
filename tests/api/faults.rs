//! Faults injected into a running server: nothing answered OK is lost,
//! nothing is answered without its ledger entry, and the service recovers
//! by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use accord::api::pb;
use accord::ledger::Outcome;
use accord::store::{EntryFilter, Store, verify_ledger};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use crate::helpers::*;
use crate::records::{CLASS, create_referral, referral_fields, server_with_subject};

/// Calls made while filling the database are bounded.
const MAX_FILL_CALLS: usize = 400;

/// What the test saw answered, by request id.
#[derive(Default)]
struct Answers {
    /// Request ids answered OK (each must have its entry).
    ok: BTreeSet<String>,
    /// Request ids answered with an error (none may have a permit entry).
    failed: BTreeSet<String>,
    /// Records whose creation was answered OK.
    created: BTreeSet<String>,
}

fn with_request_id<T>(request: T, id: &str) -> Request<T> {
    let mut r = as_caller(request, "leeds-cc", "sw-1", "social_worker");
    r.metadata_mut()
        .insert("x-request-id", MetadataValue::from_str(id).unwrap());
    r
}

impl Answers {
    /// Creates a record too big to fit in a page; the status, if refused.
    async fn create_big(&mut self, s: &TestServer, subject: &str, id: &str) -> Option<Code> {
        let request = pb::CreateRecordRequest {
            record: Some(pb::Record {
                subject: subject.to_owned(),
                record_class: CLASS.to_owned(),
                fields: referral_fields(&"x".repeat(4000)),
                ..Default::default()
            }),
            purpose: pb::Purpose::Safeguarding as i32,
        };
        match s
            .records()
            .create_record(with_request_id(request, id))
            .await
        {
            Ok(r) => {
                self.ok.insert(id.to_owned());
                let record = r.into_inner().record.unwrap();
                self.created.insert(record.name);
                None
            }
            Err(status) => {
                self.failed.insert(id.to_owned());
                Some(status.code())
            }
        }
    }

    /// Reads `record`; the status, if refused.
    async fn read(&mut self, s: &TestServer, record: &str, id: &str) -> Option<Code> {
        let request = pb::GetRecordRequest {
            name: record.to_owned(),
            purpose: pb::Purpose::Safeguarding as i32,
            ..Default::default()
        };
        match s.records().get_record(with_request_id(request, id)).await {
            Ok(r) => {
                assert!(r.into_inner().record.is_some());
                self.ok.insert(id.to_owned());
                None
            }
            Err(status) => {
                assert_eq!(
                    status.message(),
                    "storage is unavailable; nothing was changed or disclosed"
                );
                self.failed.insert(id.to_owned());
                Some(status.code())
            }
        }
    }

    /// Every call answered OK has exactly one permit entry, no call
    /// answered with an error has one, and every record created is there.
    async fn check_durable(&self, s: &TestServer, subject: &str) {
        let listed = s
            .records()
            .list_records(as_caller(
                pb::ListRecordsRequest {
                    subject: subject.to_owned(),
                    purpose: pb::Purpose::Safeguarding as i32,
                    page_size: 1000,
                    ..Default::default()
                },
                "leeds-cc",
                "sw-1",
                "social_worker",
            ))
            .await
            .unwrap()
            .into_inner();
        let names: BTreeSet<String> = listed.records.into_iter().map(|r| r.name).collect();
        assert!(
            self.created.is_subset(&names),
            "every record whose creation was answered OK is stored"
        );
        let entries = s.ledger(EntryFilter::default()).await;
        let mut permits: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &entries {
            if e.draft.outcome == Outcome::Permitted {
                *permits.entry(e.draft.request_id.as_str()).or_default() += 1;
            }
        }
        for id in &self.ok {
            assert_eq!(
                permits.get(id.as_str()),
                Some(&1),
                "call {id} was answered OK: it must have one permit entry"
            );
        }
        for id in &self.failed {
            assert_eq!(
                permits.get(id.as_str()),
                None,
                "call {id} failed: it must not have a permit entry"
            );
        }
        let store = s.store().await;
        verify_ledger(&store).await.expect("the ledger verifies");
        assert_eq!(
            store.tree_head().await.unwrap().size,
            u64::try_from(entries.len()).unwrap()
        );
        store.close().await;
    }
}

/// A full disk: every call made while the database cannot grow fails with
/// UNAVAILABLE and discloses nothing; once there is room again the server
/// serves without a restart; every call answered OK, before, during and
/// after, has its entry, also after a restart.
#[tokio::test]
async fn sqlite_full_disk_fails_closed_and_recovers() {
    let (s, subject) = server_with_subject(Db::Sqlite).await.unwrap();
    let record = create_referral(&s, &subject).await.name;
    let mut answers = Answers::default();
    let cap = s.served_store.cap_sqlite_pages(Some(1)).await.unwrap();
    assert!(cap > 1, "the cap is the database's current size");

    // Fill what room is left: big records first, then reads, whose entries
    // are small, until even a read's entry does not fit.
    let mut calls = 0;
    let mut refused = None;
    while refused.is_none() && calls < MAX_FILL_CALLS {
        refused = answers
            .create_big(&s, &subject, &format!("fill-{calls}"))
            .await;
        calls += 1;
    }
    assert_eq!(
        refused,
        Some(Code::Unavailable),
        "a full disk is UNAVAILABLE"
    );
    refused = None;
    while refused.is_none() && calls < MAX_FILL_CALLS {
        refused = answers.read(&s, &record, &format!("drain-{calls}")).await;
        calls += 1;
    }
    assert_eq!(
        refused,
        Some(Code::Unavailable),
        "reads must fail once their entries cannot be written (after {calls} calls)"
    );

    // While full, every call fails and discloses nothing.
    for i in 0..10 {
        assert_eq!(
            answers.read(&s, &record, &format!("full-read-{i}")).await,
            Some(Code::Unavailable)
        );
    }
    for i in 0..3 {
        assert_eq!(
            answers
                .create_big(&s, &subject, &format!("full-create-{i}"))
                .await,
            Some(Code::Unavailable)
        );
    }

    // Room again: the server recovers by itself.
    s.served_store.cap_sqlite_pages(None).await.unwrap();
    assert_eq!(answers.read(&s, &record, "after-read").await, None);
    assert_eq!(answers.create_big(&s, &subject, "after-create").await, None);
    answers.check_durable(&s, &subject).await;

    // A restart finds exactly what was acknowledged.
    let s = s.restart().await;
    answers.check_durable(&s, &subject).await;
    assert_eq!(answers.read(&s, &record, "restarted-read").await, None);
    s.stop().await;
}
