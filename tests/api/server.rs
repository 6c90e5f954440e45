use std::net::SocketAddr;

use accord::app::App;
use accord::config::Config;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::*;

#[tokio::test]
async fn health_reports_serving_and_the_starter_catalogue_is_loaded() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let health = HealthClient::new(s.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "accord.v1.RecordService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    let classes = s
        .catalog()
        .list_record_classes(
            s.as_operator()
                .request(accord::api::pb::ListRecordClassesRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .record_classes;
    let ids: Vec<&str> = classes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "contact.record",
            "health.summary",
            "police.incident",
            "safeguarding.concern",
            "social_care.referral"
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn startup_refuses_bad_setups_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_owned(),
        insecure: true,
        ..Config::default()
    };
    let secure = App::build(&Config {
        insecure: false,
        ..base.clone()
    })
    .await
    .unwrap_err();
    assert!(format!("{secure:#}").contains("--insecure"));
    let public = App::build(&Config {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..base.clone()
    })
    .await
    .unwrap_err();
    assert!(format!("{public:#}").contains("loopback"));
    let first = App::build(&base).await.unwrap();
    let taken = App::build(&Config {
        listen: first.address(),
        ..base.clone()
    })
    .await
    .unwrap_err();
    assert!(format!("{taken:#}").contains("cannot listen"), "{taken:#}");
    let unreachable = App::build(&Config {
        database_url: Some("postgres://nobody@127.0.0.1:1/none".into()),
        ..base
    })
    .await
    .unwrap_err();
    assert!(
        format!("{unreachable:#}").contains("cannot open the database"),
        "{unreachable:#}"
    );
}

#[tokio::test]
async fn unknown_methods_are_refused_and_audited() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = http::uri::PathAndQuery::from_static("/accord.v1.RecordService/DeleteEverything");
    let err = grpc
        .unary(s.as_operator().request(()), path, codec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    let entries = s.ledger(accord::store::EntryFilter::default()).await;
    let entry = entries
        .iter()
        .find(|e| e.draft.reason_code == "UNKNOWN_METHOD")
        .expect("an entry for the unknown method");
    assert_eq!(
        entry.draft.action,
        "/accord.v1.RecordService/DeleteEverything"
    );
    assert_eq!(entry.draft.principal, "ops-1");

    // A caller who cannot be authenticated is refused before the method is
    // looked up; the path it sent is recorded, bounded.
    let long = format!("/accord.v1.RecordService/{}", "X".repeat(5_000));
    let path = http::uri::PathAndQuery::try_from(long.as_str()).unwrap();
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("x-request-id", "long-path".parse().unwrap());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let err = grpc.unary(request, path, codec).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let entries = s.ledger(accord::store::EntryFilter::default()).await;
    let entry = entries
        .iter()
        .find(|e| e.draft.request_id == "long-path")
        .expect("an entry for the refused call");
    assert_eq!(entry.draft.reason_code, "MISSING_IDENTITY");
    assert_eq!(entry.draft.action.len(), 200);
    assert!(long.starts_with(&entry.draft.action));
    s.stop().await;
}

#[tokio::test]
async fn calls_in_flight_finish_when_the_server_stops() {
    use sqlx::Connection;
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    // Hold SQLite's write lock so that the next write waits, in flight.
    let mut lock = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut agencies = s.agencies();
    let request = s
        .as_operator()
        .request(accord::api::pb::CreateAgencyRequest {
            agency: Some(accord::api::pb::Agency {
                code: "late-council".into(),
                display_name: "Late Council".into(),
                kind: accord::api::pb::AgencyKind::Council as i32,
                ..Default::default()
            }),
        });
    let call = tokio::spawn(async move { agencies.create_agency(request).await });
    // Probe (for at most 10 s) until the call's commit waits on the lock.
    for _ in 0..1000 {
        if s.served_store.commits_waiting() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        s.served_store.commits_waiting() > 0,
        "the call never reached its commit"
    );
    if call.is_finished() {
        panic!("the call should be waiting for the lock: {:?}", call.await);
    }
    // A load balancer watching health hears first that the server is going.
    let mut watch = HealthClient::new(s.channel.clone())
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    let url = s.database_url.clone();
    let stopping = tokio::spawn(s.stop());
    let draining = watch.message().await.unwrap().unwrap();
    assert_eq!(draining.status(), ServingStatus::NotServing);
    assert!(!call.is_finished(), "the call in flight is still served");
    drop(watch);
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    let created = call.await.unwrap().expect("the call in flight completed");
    assert_eq!(
        created.into_inner().agency.unwrap().name,
        "agencies/late-council"
    );
    let _data = stopping.await.unwrap();
    let store = accord::store::connect(&url, false).await.unwrap();
    let code = accord::domain::AgencyCode::parse("late-council").unwrap();
    assert!(
        accord::store::Store::agency(&store, &code)
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;
}

#[tokio::test]
async fn request_ids_are_echoed_and_audited() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let mut request = s.as_operator().request(accord::api::pb::GetAgencyRequest {
        name: "agencies/nobody".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-123".parse().unwrap());
    let err = s.agencies().get_agency(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.metadata().get("x-request-id").unwrap(), "trace-123");

    let ok = s
        .agencies()
        .list_agencies(
            s.as_operator()
                .request(accord::api::pb::ListAgenciesRequest::default()),
        )
        .await
        .unwrap();
    let generated = ok
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let entries = s.ledger(accord::store::EntryFilter::default()).await;
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.draft.request_id.as_str())
        .collect();
    assert!(ids.contains(&"trace-123"), "{ids:?}");
    assert!(ids.contains(&generated.as_str()), "{ids:?}");
    s.stop().await;
}

/// ListAgencies as the operator with `extra` metadata entries.
async fn list_with_metadata(
    s: &TestServer,
    extra: &[(String, String)],
) -> Result<Vec<accord::api::pb::Agency>, tonic::Status> {
    let mut request = s
        .as_operator()
        .request(accord::api::pb::ListAgenciesRequest::default());
    for (name, value) in extra {
        request.metadata_mut().insert(
            tonic::metadata::MetadataKey::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    s.agencies()
        .list_agencies(request)
        .await
        .map(|r| r.into_inner().agencies)
}

/// Metadata over Accord's limits is answered on that call alone, with
/// RESOURCE_EXHAUSTED, and audited; the connection and its other calls go
/// on. Far beyond, HTTP/2 itself refuses the stream, still not the
/// connection.
#[tokio::test]
async fn oversized_metadata_is_answered_call_by_call() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let big = [("x-note".to_owned(), "a".repeat(20_000))];
    let refused = list_with_metadata(&s, &big).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("at most 16384"),
        "{}",
        refused.message()
    );
    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("x-tag-{i}"), "v".to_owned()))
        .collect();
    let refused = list_with_metadata(&s, &many).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("at most 100"),
        "{}",
        refused.message()
    );
    // The same connection still serves.
    assert!(list_with_metadata(&s, &[]).await.is_ok());
    let huge = [("x-note".to_owned(), "a".repeat(100_000))];
    assert!(list_with_metadata(&s, &huge).await.is_err());
    assert!(list_with_metadata(&s, &[]).await.is_ok());

    let entries = s
        .ledger(accord::store::EntryFilter {
            outcome: Some(accord::ledger::Outcome::Invalid),
            ..Default::default()
        })
        .await;
    let audited: Vec<_> = entries
        .iter()
        .filter(|e| e.draft.reason_code == "HEADERS_TOO_LARGE")
        .collect();
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().all(
        |e| e.draft.action == "/accord.v1.AgencyService/ListAgencies"
            && e.draft.agency == "accord-ops"
    ));
    s.stop().await;
}

/// Whether the server closes `stream` at once (rather than waiting, as for
/// a handshake, up to its 10-second limit). Reads for at most 5 s.
async fn closed_at_once(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Stalled TLS handshakes and floods of connections from one address are
/// held to their limits: a connection beyond is closed at once, and once
/// the stalled ones go, calls are served again.
#[tokio::test]
async fn stalled_handshakes_and_connection_floods_are_capped() {
    let pki = Pki::new();
    let s = TestServer::start_secure_tuned(Db::Sqlite, &pki, |c| {
        c.max_tls_handshakes = 3;
        c.max_connections_per_peer = 6;
    })
    .await
    .unwrap();
    // Three connections that never start their handshake take every
    // handshake slot: a fourth is closed at once.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(tokio::net::TcpStream::connect(s.address).await.unwrap());
    }
    let mut fourth = tokio::net::TcpStream::connect(s.address).await.unwrap();
    assert!(
        closed_at_once(&mut fourth).await,
        "a fourth handshake is refused"
    );
    drop(stalled);
    // The server sees them go as their handshakes fail: wait for that.
    let mut operator = None;
    for _ in 0..250 {
        let ca = pki.ca.cert_pem();
        if let Ok(channel) = tls_channel(s.address, &ca, Some(&pki.operator)).await {
            operator = Some(channel);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let operator = operator.expect("a handshake slot frees up");
    assert!(
        pb_agencies(operator.clone()).await.is_ok(),
        "served again once the stalled handshakes are gone"
    );

    // Connections from one address: the test's own (the server's channel
    // and the one above) and four more established ones fill its six.
    let mut open = Vec::new();
    for _ in 0..4 {
        let channel = s.tls_channel(Some(&pki.operator)).await;
        assert!(pb_agencies(channel.clone()).await.is_ok());
        open.push(channel);
    }
    let mut seventh = tokio::net::TcpStream::connect(s.address).await.unwrap();
    assert!(
        closed_at_once(&mut seventh).await,
        "a seventh connection is refused"
    );
    drop((open, operator));
    s.stop().await;
}

async fn pb_agencies(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    accord::api::pb::agency_service_client::AgencyServiceClient::new(channel)
        .list_agencies(tonic::Request::new(
            accord::api::pb::ListAgenciesRequest::default(),
        ))
        .await
        .map(|_| ())
}

/// The PostgreSQL pool's size is configuration.
#[tokio::test]
async fn the_database_pool_is_sized_by_configuration() {
    let Some(s) = TestServer::start_tuned(Db::Postgres, |c| c.database_max_connections = 5).await
    else {
        return;
    };
    assert_eq!(s.served_store.pool_state().max, 5);
    s.stop().await;
}
