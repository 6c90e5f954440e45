//! Faults injected into a running server: nothing answered OK is lost,
//! nothing is answered without its ledger entry, and the service recovers
//! by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use accord::api::pb;
use accord::api::pb::record_service_client::RecordServiceClient;
use accord::ledger::Outcome;
use accord::store::{EntryFilter, Store, verify_ledger};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use crate::helpers::*;

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
    async fn create_big(&mut self, channel: &Channel, subject: &str, id: &str) -> Option<Code> {
        let request = pb::CreateRecordRequest {
            record: Some(pb::Record {
                subject: subject.to_owned(),
                record_class: CLASS.to_owned(),
                fields: referral_fields(&"x".repeat(4000)),
                ..Default::default()
            }),
            purpose: pb::Purpose::Safeguarding as i32,
        };
        match RecordServiceClient::new(channel.clone())
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
    async fn read(&mut self, channel: &Channel, record: &str, id: &str) -> Option<Code> {
        let request = pb::GetRecordRequest {
            name: record.to_owned(),
            purpose: pb::Purpose::Safeguarding as i32,
            ..Default::default()
        };
        match RecordServiceClient::new(channel.clone())
            .get_record(with_request_id(request, id))
            .await
        {
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

    /// Adds what `other` saw.
    fn merge(&mut self, other: Answers) {
        self.ok.extend(other.ok);
        self.failed.extend(other.failed);
        self.created.extend(other.created);
    }

    /// Every call answered OK has exactly one permit entry, no call
    /// answered with an error has one, and every record created is there.
    async fn check_durable(&self, s: &TestServer, subject: &str) {
        let listed = s
            .records()
            .list_records(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
                pb::ListRecordsRequest {
                    subject: subject.to_owned(),
                    purpose: pb::Purpose::Safeguarding as i32,
                    page_size: 1000,
                    ..Default::default()
                },
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
            .create_big(&s.channel, &subject, &format!("fill-{calls}"))
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
        refused = answers
            .read(&s.channel, &record, &format!("drain-{calls}"))
            .await;
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
            answers
                .read(&s.channel, &record, &format!("full-read-{i}"))
                .await,
            Some(Code::Unavailable)
        );
    }
    for i in 0..3 {
        assert_eq!(
            answers
                .create_big(&s.channel, &subject, &format!("full-create-{i}"))
                .await,
            Some(Code::Unavailable)
        );
    }

    // Load balancers are told (over gRPC health and the HTTP readiness
    // probe), and callers are told when to try again.
    s.await_health(ServingStatus::NotServing).await;
    assert_eq!(
        http_get(s.metrics, "/readyz").await,
        (503, "NOT_SERVING\n".to_owned())
    );
    assert_eq!(http_get(s.metrics, "/livez").await.0, 200);
    let status = s
        .records()
        .get_record(with_request_id(
            pb::GetRecordRequest {
                name: record.clone(),
                purpose: pb::Purpose::Safeguarding as i32,
                ..Default::default()
            },
            "full-retry",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));

    // Room again: the server recovers by itself, and says so.
    s.served_store.cap_sqlite_pages(None).await.unwrap();
    s.await_health(ServingStatus::Serving).await;
    assert_eq!(
        http_get(s.metrics, "/readyz").await,
        (200, "SERVING\n".to_owned())
    );
    assert_eq!(answers.read(&s.channel, &record, "after-read").await, None);
    assert_eq!(
        answers
            .create_big(&s.channel, &subject, "after-create")
            .await,
        None
    );
    answers.check_durable(&s, &subject).await;

    // A restart finds exactly what was acknowledged.
    let s = s.restart().await;
    answers.check_durable(&s, &subject).await;
    assert_eq!(
        answers.read(&s.channel, &record, "restarted-read").await,
        None
    );
    s.stop().await;
}

/// Calls the background load makes at most.
const MAX_LOAD_CALLS: usize = 2000;

/// Light load, one call at a time (a read, then a small create), until
/// `stop` says so or `MAX_LOAD_CALLS` have been made; what it saw.
async fn steady_load(
    channel: Channel,
    record: String,
    subject: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Answers {
    let mut answers = Answers::default();
    for i in 0..MAX_LOAD_CALLS / 2 {
        if *stop.borrow() {
            break;
        }
        answers
            .read(&channel, &record, &format!("load-read-{i}"))
            .await;
        answers
            .create_big(&channel, &subject, &format!("load-create-{i}"))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    answers
}

/// The median of `times`.
fn median(times: &mut [std::time::Duration]) -> std::time::Duration {
    times.sort();
    times[times.len() / 2]
}

/// A PostgreSQL outage under light load: while the database is down,
/// health says NOT_SERVING and every call fails cleanly with UNAVAILABLE
/// and a RetryInfo; when it is back the service resumes without a
/// restart; nothing answered OK is lost and the ledger verifies.
#[tokio::test]
async fn postgres_outage_fails_fast_and_recovers() {
    let Some(pg) = crate::own_postgres::OwnPostgres::start() else {
        return;
    };
    let s = TestServer::start_on_database(pg.url()).await;
    let subject = register_subject(&s).await;
    let record = create_referral(&s, &subject).await.name;
    let (stop_load, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(steady_load(
        s.channel.clone(),
        record.clone(),
        subject.clone(),
        stopped,
    ));
    let mut answers = Answers::default();
    for i in 0..10 {
        assert_eq!(
            answers
                .read(&s.channel, &record, &format!("before-{i}"))
                .await,
            None
        );
    }

    // The database goes away.
    pg.stop();
    s.await_health(ServingStatus::NotServing).await;
    let mut failing = Vec::new();
    for i in 0..10 {
        let started = std::time::Instant::now();
        let status = RecordServiceClient::new(s.channel.clone())
            .get_record(with_request_id(
                pb::GetRecordRequest {
                    name: record.clone(),
                    purpose: pb::Purpose::Safeguarding as i32,
                    ..Default::default()
                },
                &format!("down-{i}"),
            ))
            .await
            .unwrap_err();
        failing.push(started.elapsed());
        answers.failed.insert(format!("down-{i}"));
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(
            status.message(),
            "storage is unavailable; nothing was changed or disclosed"
        );
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
    }
    assert_eq!(
        answers
            .create_big(&s.channel, &subject, "down-create")
            .await,
        Some(Code::Unavailable)
    );

    // It comes back: the service resumes by itself.
    let restarted = std::time::Instant::now();
    pg.start_again();
    s.await_health(ServingStatus::Serving).await;
    let mut recovered = None;
    for i in 0..500 {
        if answers
            .read(&s.channel, &record, &format!("back-{i}"))
            .await
            .is_none()
        {
            recovered = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect("the service resumes once PostgreSQL is back");
    for i in 0..10 {
        assert_eq!(
            answers
                .read(&s.channel, &record, &format!("after-{i}"))
                .await,
            None
        );
    }
    let _ = stop_load.send(true);
    let loaded = load.await.unwrap();
    assert!(
        !loaded.ok.is_empty() && !loaded.failed.is_empty(),
        "the load saw both"
    );
    answers.merge(loaded);
    answers.check_durable(&s, &subject).await;
    eprintln!(
        "postgres outage: a call failed in {:?} (median of {}, max {:?}); first OK call {:?} after PostgreSQL was started again",
        median(&mut failing),
        failing.len(),
        failing.iter().max().unwrap(),
        recovered
    );
    s.stop().await;
}
