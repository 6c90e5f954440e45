//! `buf curl` (a client nobody here wrote) calls the server through
//! reflection alone, without the proto files.

use std::process::Output;

use crate::helpers::*;

async fn buf_curl(buf: &std::ffi::OsStr, url: String, headers: &[&str], data: &str) -> Output {
    let mut cmd = tokio::process::Command::new(buf);
    cmd.args([
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-d",
        data,
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(url).output().await.expect("run buf")
}

#[tokio::test]
async fn buf_curl_works_through_reflection() {
    let Some(buf) = std::env::var_os("TEST_BUF") else {
        if std::env::var_os("CI").is_some() {
            panic!("TEST_BUF must name the buf CLI in CI (see scripts/ensure-tools)");
        }
        eprintln!("!!! SKIPPING the buf curl test: TEST_BUF is not set (run scripts/test) !!!");
        return;
    };
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let base = format!("http://{}", s.address);
    let operator = [
        "x-accord-agency: accord-ops",
        "x-accord-principal: ops",
        "x-accord-roles: operator",
    ];
    let created = buf_curl(
        &buf,
        format!("{base}/accord.v1.AgencyService/CreateAgency"),
        &operator,
        r#"{"agency":{"code":"leeds-cc","displayName":"Leeds City Council","kind":"AGENCY_KIND_COUNCIL"}}"#,
    )
    .await;
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(stdout.contains("\"agencies/leeds-cc\""), "{stdout}");
    assert!(stdout.contains("AGENCY_STATUS_ACTIVE"), "{stdout}");

    let council = [
        "x-accord-agency: leeds-cc",
        "x-accord-principal: sw-1",
        "x-accord-roles: social_worker",
    ];
    let missing = buf_curl(
        &buf,
        format!("{base}/accord.v1.SubjectService/GetSubject"),
        &council,
        r#"{"name":"subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69","purpose":"PURPOSE_DIRECT_CARE"}"#,
    )
    .await;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("not_found"), "{stderr}");

    // The walk-through's proof calls, as written in the README.
    let auditor = [
        "x-accord-agency: leeds-cc",
        "x-accord-principal: ig-1",
        "x-accord-roles: auditor",
    ];
    let checkpoint = buf_curl(
        &buf,
        format!("{base}/accord.v1.AuditService/GetCheckpoint"),
        &auditor,
        r#"{"purpose":"PURPOSE_ADMINISTRATION","refresh":true}"#,
    )
    .await;
    let stdout = String::from_utf8_lossy(&checkpoint.stdout);
    assert!(checkpoint.status.success(), "{stdout}");
    assert!(
        stdout.contains("\"verifierKey\": \"accord.local/ledger+"),
        "{stdout}"
    );
    let proof = buf_curl(
        &buf,
        format!("{base}/accord.v1.AuditService/GetInclusionProof"),
        &auditor,
        r#"{"purpose":"PURPOSE_ADMINISTRATION","leafIndex":"1"}"#,
    )
    .await;
    let stdout = String::from_utf8_lossy(&proof.stdout);
    assert!(
        proof.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&proof.stderr)
    );
    assert!(stdout.contains("\"hashes\""), "{stdout}");
    s.stop().await;
}

/// Reflection serves the error-detail messages Accord's errors carry, so a
/// reflection client can decode `BadRequest`, `ErrorInfo` and `RetryInfo`.
#[tokio::test]
async fn reflection_serves_the_error_detail_types() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let mut client = ServerReflectionClient::new(s.channel.clone());
    for symbol in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "google.rpc.RetryInfo",
    ] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().expect("one answer");
        match answer.message_response {
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                // The file declaring the symbol, in package google.rpc.
                let short = symbol.trim_start_matches("google.rpc.");
                let declared = files.file_descriptor_proto.iter().any(|bytes| {
                    let file =
                        <prost_types::FileDescriptorProto as prost::Message>::decode(&bytes[..])
                            .unwrap();
                    file.package() == "google.rpc"
                        && file.message_type.iter().any(|m| m.name() == short)
                });
                assert!(declared, "{symbol} is not declared in the files served");
            }
            other => panic!("{symbol}: {other:?}"),
        }
    }
    s.stop().await;
}
