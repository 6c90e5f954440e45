//! W3C trace context: a caller's `traceparent` is recorded in its ledger
//! entry beside the request id, auditors find a trace's entries, and each
//! call leaves one access-log line.

use accord::api::pb;
use accord::api::pb::subject_service_client::SubjectServiceClient;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::helpers::process::{Reaped, channel_to, start_logged};
use crate::helpers::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traced<T>(mut request: tonic::Request<T>, traceparent: &str) -> tonic::Request<T> {
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(traceparent).expect("metadata"),
    );
    request
}

async fn get(s: &TestServer, name: &str, traceparent: &str) -> pb::Subject {
    let request = s
        .as_staff(COUNCIL, "sw-1", "social_worker")
        .request(pb::GetSubjectRequest {
            name: name.to_owned(),
            purpose: pb::Purpose::DirectCare as i32,
        });
    s.subjects()
        .get_subject(traced(request, traceparent))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap()
}

async fn entries_of_trace(
    s: &TestServer,
    trace_id: &str,
) -> Result<Vec<pb::LedgerEntry>, tonic::Status> {
    s.audit()
        .list_entries(
            s.as_auditor(COUNCIL, "aud-1")
                .request(pb::ListEntriesRequest {
                    purpose: pb::Purpose::Administration as i32,
                    trace_id: trace_id.to_owned(),
                    ..Default::default()
                }),
        )
        .await
        .map(|r| r.into_inner().entries)
}

async fn traces_are_recorded_and_followed(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    get(&s, &subject, &format!("00-{TRACE}-00f067aa0ba902b7-01")).await;
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.trace_id, TRACE);
    // A later version's extra fields are allowed; an invalid context is
    // ignored, as W3C trace context says.
    get(
        &s,
        &subject,
        &format!("01-{TRACE}-00f067aa0ba902b7-01-later"),
    )
    .await;
    assert_eq!(last_entry(&s, COUNCIL).await.draft.trace_id, TRACE);
    for bad in [
        format!("00-{TRACE}-00f067aa0ba902b7-01-more"),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("ff-{TRACE}-00f067aa0ba902b7-01"),
        format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
        "not a trace".to_owned(),
    ] {
        get(&s, &subject, &bad).await;
        assert_eq!(last_entry(&s, COUNCIL).await.draft.trace_id, "", "{bad}");
    }
    // Auditors follow the trace: its entries, and no others.
    let found = entries_of_trace(&s, TRACE).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|e| e.trace_id == TRACE));
    let other = "0af7651916cd43dd8448eb211c80319c";
    assert!(entries_of_trace(&s, other).await.unwrap().is_empty());
    let bad = entries_of_trace(&s, "XYZ").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violations(&bad)[0].0, "trace_id");
    // A traced entry (encoding version 4) verifies with the rest.
    let head = accord::store::verify_ledger(&s.served_store)
        .await
        .expect("the ledger verifies");
    assert!(head.size >= 8, "{head:?}");
    s.stop().await;
}

#[tokio::test]
async fn traces_are_recorded_and_followed_sqlite() {
    traces_are_recorded_and_followed(Db::Sqlite).await;
}

#[tokio::test]
async fn traces_are_recorded_and_followed_postgres() {
    traces_are_recorded_and_followed(Db::Postgres).await;
}

/// One JSON access-log line per call, with who, how it went and how long
/// it took, and nothing of what was asked for.
#[tokio::test]
async fn each_call_leaves_one_access_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, address, log) = start_logged(
        &[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--log-format",
            "json",
        ],
        &[],
    );
    let _server = Reaped(child);
    let channel = channel_to(&address).await;
    let mut subjects = SubjectServiceClient::new(channel);
    let name = format!("subjects/{}", uuid::Uuid::new_v4());
    let request = as_caller(
        pb::GetSubjectRequest {
            name: name.clone(),
            purpose: pb::Purpose::DirectCare as i32,
        },
        "leeds-cc",
        "sw-1",
        "social_worker",
    );
    let refused = subjects
        .get_subject(traced(request, &format!("00-{TRACE}-00f067aa0ba902b7-01")))
        .await
        .unwrap_err();
    // The development server knows no agency yet: refused, and logged.
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = log.recv_timeout(left).expect("an access-log line");
        if line.contains("\"accord::access\"") {
            break line;
        }
    };
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    let fields = &value["fields"];
    assert_eq!(value["level"], "INFO");
    assert_eq!(fields["method"], "/accord.v1.SubjectService/GetSubject");
    assert_eq!(fields["code"], "PERMISSION_DENIED");
    assert_eq!(fields["agency"], "leeds-cc");
    assert_eq!(fields["principal"], "sw-1");
    assert_eq!(fields["trace_id"], TRACE);
    assert!(!fields["request_id"].as_str().unwrap_or_default().is_empty());
    assert!(
        !fields["reason_code"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(fields["latency_ms"].as_f64().is_some());
    assert!(fields["request_bytes"].as_u64().unwrap_or_default() > 0);
    assert!(!line.contains(&name), "the subject asked for is not logged");
}

/// An OTLP/gRPC collector: the spans it was sent.
#[derive(Default, Clone)]
struct Collector(
    std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

/// With `otlp_endpoint` set, each call's span is exported to the
/// collector as a child of the caller's trace.
#[tokio::test]
async fn spans_are_exported_in_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer::new(
                    collector.clone(),
                ),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, address, log) = start_logged(
        &[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ],
        &[("ACCORD_OTLP_ENDPOINT", &endpoint)],
    );
    let mut reaped = Reaped(child);
    let channel = channel_to(&address).await;
    let mut subjects = SubjectServiceClient::new(channel);
    let request = as_caller(
        pb::GetSubjectRequest {
            name: format!("subjects/{}", uuid::Uuid::new_v4()),
            purpose: pb::Purpose::DirectCare as i32,
        },
        "leeds-cc",
        "sw-1",
        "social_worker",
    );
    let parent = "00f067aa0ba902b7";
    let refused = subjects
        .get_subject(traced(request, &format!("00-{TRACE}-{parent}-01")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // SIGTERM: the server stops and sends the spans it holds.
    let pid = reaped.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let stopped = tokio::task::spawn_blocking(move || {
        let status = reaped.0.wait();
        (reaped, status)
    })
    .await
    .unwrap();
    assert!(stopped.1.unwrap().success());
    let spans = collector.0.lock().unwrap().clone();
    server.abort();
    let call = spans.iter().find(|s| s.name == "call").unwrap_or_else(|| {
        let log: Vec<String> = log.iter().collect();
        panic!("no call span among {spans:?}; the server said {log:#?}")
    });
    assert_eq!(hex::encode(&call.trace_id), TRACE);
    assert_eq!(hex::encode(&call.parent_span_id), parent);
}
