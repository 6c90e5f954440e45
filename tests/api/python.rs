//! Drives the server from Python grpcio stubs generated from `proto/`: a
//! client nobody here wrote. Needs `TEST_GRPC_PYTHON` (a Python with grpcio and
//! grpcio-tools, made by `scripts/test`); required when `CI` is set.

use std::path::Path;

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
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(root.join("tests/python/client.py"))
        .arg(s.address.to_string())
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
    // What Python did is in the ledger, under the agency it claimed.
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
    assert!(
        actions.contains(&"/accord.v1.RecordService/GetRecord"),
        "{actions:?}"
    );
    s.stop().await;
}
