//! Drives the secure server from Python grpcio stubs generated from
//! `proto/`, over mutual TLS with a token Python signs itself (PyJWT): a
//! client nobody here wrote. Needs `TEST_GRPC_PYTHON` (a Python with grpcio,
//! grpcio-tools, PyJWT and cryptography, made by `scripts/test`); required
//! when `CI` is set.

use std::path::Path;

use accord::api::pb;
use accord::dev::TokenSigner;
use accord::store::EntryFilter;

use crate::helpers::*;

#[tokio::test]
async fn a_python_grpcio_client_works_end_to_end() {
    let Some(python) = std::env::var_os("TEST_GRPC_PYTHON") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "TEST_GRPC_PYTHON must name a Python with grpcio in CI (see scripts/ensure-tools)"
            );
        }
        eprintln!(
            "!!! SKIPPING the Python client test: TEST_GRPC_PYTHON is not set (run scripts/test) !!!"
        );
        return;
    };
    let pki = Pki::new();
    let s = TestServer::start_secure(Db::Sqlite, &pki).await.unwrap();
    let cert = pki.client("case-system.py-council", None);
    let signer = TokenSigner::generate("py-key-1").unwrap();
    let iss = "https://idp.py-council.example";
    s.register_member(
        "py-council",
        pb::AgencyKind::Council,
        pb::certificate_identity::Match::CertificateSha256(cert.fingerprint.to_string()),
        pb::TokenIssuer {
            issuer: iss.to_owned(),
            jwks: Some(pb::token_issuer::Jwks::JwksJson(signer.jwks.clone())),
            ..Default::default()
        },
    )
    .await;
    // What the Python client is given: files, as an integrator has them.
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let setup = serde_json::json!({
        "address": s.address.to_string(),
        "ca": file("ca.pem", &pki.ca.cert_pem()),
        "cert": file("client.pem", &cert.cert_pem),
        "key": file("client.key", &cert.key_pem),
        "signing_key": file("signing.key", &signer.key_pem),
        "kid": "py-key-1",
        "iss": iss,
        "aud": AUDIENCE,
        "agency": "py-council",
    });
    let setup_file = file("setup.json", &setup.to_string());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(root.join("tests/python/client.py"))
        .arg(setup_file)
        .arg(root.join("proto"))
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
    // What Python did is in the ledger, under its agency and certificate.
    let entries = s
        .ledger(EntryFilter {
            agency: Some("py-council".into()),
            ..Default::default()
        })
        .await;
    let actions: Vec<&str> = entries.iter().map(|e| e.draft.action.as_str()).collect();
    assert!(
        actions.contains(&"/accord.v1.SubjectService/CreateSubject"),
        "{actions:?}"
    );
    for action in [
        "/accord.v1.RecordService/GetRecord",
        "/accord.v1.SubjectService/MatchSubjects",
        "/accord.v1.SubjectService/GetSubjectView",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    // The event it consumed from a stream was delivered with an entry.
    assert!(
        entries
            .iter()
            .any(|e| e.draft.action == "/accord.v1.EventService/WatchEvents"
                && e.draft.reason == "notified: record updated"),
        "{actions:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.draft.client_certificate == cert.fingerprint.to_string())
    );
    let refused = entries
        .iter()
        .filter(|e| e.draft.reason_code == "TOKEN_MISSING")
        .count();
    assert_eq!(refused, 1, "the call without a token is in the ledger");
    s.stop().await;
}
