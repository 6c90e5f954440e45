//! The `accord` binary as an operator meets it: one-line startup errors,
//! `accord migrate`, a clean stop on SIGTERM, the development setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use accord::api::pb;

#[path = "api/helpers/mod.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use helpers::process::{accord, serve_with, start, start_logged};

/// Runs `accord args…` to completion; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = accord().args(args).output().expect("run accord");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that a failed start said one actionable line and did not panic.
fn assert_one_line_failure(result: (bool, String, String), expected: &str) {
    let (ok, _, stderr) = result;
    assert!(!ok, "expected failure");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("accord: ") && last.contains(expected),
        "{stderr}"
    );
    // Each cause is said once.
    let parts: Vec<&str> = last.split(": ").collect();
    let mut unique = parts.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(parts.len(), unique.len(), "a cause is repeated: {last}");
}

#[test]
fn bad_setups_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "listen = 42\n").unwrap();
    assert_one_line_failure(
        run(&[
            "--config",
            bad_config.to_str().unwrap(),
            "serve",
            "--insecure",
            "--data-dir",
            data,
        ]),
        "bad configuration",
    );
    assert_one_line_failure(
        run(&[
            "--config",
            "/nonexistent/accord.toml",
            "serve",
            "--insecure",
        ]),
        "does not exist",
    );
    assert_one_line_failure(
        run(&[
            "serve",
            "--insecure",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            data,
        ]),
        "loopback",
    );
    assert_one_line_failure(run(&["serve", "--data-dir", data]), "--insecure");
    // Secure mode with TLS files that are missing, or not a key pair.
    let tls = |cert: &str, key: &str, ca: &str| {
        let file = dir.path().join("tls.toml");
        std::fs::write(
            &file,
            format!(
                "tls_cert_file = {cert:?}\ntls_key_file = {key:?}\ntls_client_ca_file = {ca:?}\n"
            ),
        )
        .unwrap();
        run(&[
            "--config",
            file.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ])
    };
    assert_one_line_failure(
        tls(
            "/nonexistent/s.pem",
            "/nonexistent/s.key",
            "/nonexistent/ca.pem",
        ),
        "cannot read certificates from /nonexistent/ca.pem",
    );
    let ca = accord::dev::DevCa::generate("CA").unwrap();
    let server = ca.server(accord::dev::Validity::days_from_now(2)).unwrap();
    let other = ca.server(accord::dev::Validity::days_from_now(2)).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca_file, cert, wrong_key) = (
        write("ca.pem", &ca.cert_pem()),
        write("s.pem", &server.cert_pem),
        write("other.key", &other.key_pem),
    );
    assert_one_line_failure(
        tls(&cert, &wrong_key, &ca_file),
        "do not make a usable pair",
    );
    assert_one_line_failure(tls(&cert, &cert, &ca_file), "cannot read a private key");
    assert_one_line_failure(
        run(&[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/x",
        ]),
        "Connection refused",
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("accord.db") || name.starts_with("ledger-signing"))
        .collect();
    assert!(left.is_empty(), "a refused start wrote {left:?}");
}

#[test]
fn unrelated_accord_variables_do_not_stop_accord() {
    let dir = tempfile::tempdir().unwrap();
    let out = accord()
        .args(["migrate", "--data-dir", dir.path().to_str().unwrap()])
        .env("ACCORD_PORT", "tcp://10.0.0.7:50051")
        .env("ACCORD_CHECKOUT", "/src/accord")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no Accord setting") && stderr.contains("ACCORD_CHECKOUT,ACCORD_PORT"),
        "{stderr}"
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let (ok, stdout, stderr) = run(&["migrate", "--data-dir", data.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("up to date"));
    assert!(data.join("accord.db").is_file());
    // A second run finds nothing to do and still succeeds.
    assert!(run(&["migrate", "--data-dir", data.to_str().unwrap()]).0);
}

/// Starts `accord serve --insecure` on a free port; returns the child and
/// its address, read from its log (within a bounded time).
fn serve(data: &str) -> (Child, String) {
    serve_with(&["--data-dir", data], &[])
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_logs_caller_mistakes_at_info() {
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
        &[],
    );
    let mut client =
        pb::agency_service_client::AgencyServiceClient::connect(format!("http://{address}"))
            .await
            .unwrap();
    let mut request = tonic::Request::new(pb::ListAgenciesRequest::default());
    request
        .metadata_mut()
        .insert("x-accord-agency", "accord-ops".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-accord-principal", "ops".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-accord-roles", "operator".parse().unwrap());
    client.list_agencies(request).await.unwrap();

    // A caller's mistake is an INFO line naming the method, code, reason
    // and request id, never an ERROR.
    let mut request = tonic::Request::new(pb::GetAgencyRequest {
        name: "agencies/no-such-agency".into(),
    });
    for (key, value) in [
        ("x-accord-agency", "accord-ops"),
        ("x-accord-principal", "ops"),
        ("x-accord-roles", "operator"),
        ("x-request-id", "mistake-1"),
    ] {
        request.metadata_mut().insert(key, value.parse().unwrap());
    }
    let refused = client.get_agency(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    stop(child);
    let lines: Vec<String> = log.try_iter().collect();
    let refusal = lines
        .iter()
        .find(|l| l.contains("mistake-1"))
        .unwrap_or_else(|| panic!("no log line for the refusal in {lines:#?}"));
    assert!(refusal.contains("INFO"), "{refusal}");
    assert!(refusal.contains("call refused"), "{refusal}");
    assert!(refusal.contains("GetAgency"), "{refusal}");
    assert!(refusal.contains("NotFound"), "{refusal}");
    assert!(!lines.iter().any(|l| l.contains("ERROR")), "{lines:#?}");
}

/// Stops a server with SIGTERM and asserts it exits cleanly (within a
/// bounded time).
fn stop(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "accord did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn ledger_verify_names_the_altered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // `serve` creates the database and the signing key; its start records
    // one entry (the starter catalogue) and signs a checkpoint.
    let (child, _) = serve(data);
    stop(child);
    let url = accord::store::sqlite_url(dir.path());
    let store = accord::store::connect(&url, false).await.unwrap();
    for n in 0..3 {
        let draft = accord::ledger::EntryDraft {
            id: format!("entry-{n}"),
            time: chrono::Utc::now(),
            request_id: String::new(),
            trace_id: String::new(),
            agency: "leeds-cc".into(),
            principal: "sw-1".into(),
            roles: vec![],
            client_certificate: String::new(),
            action: "/accord.v1.Test/Step".into(),
            purpose: None,
            subject: String::new(),
            records: vec![],
            fields: vec![],
            outcome: accord::ledger::Outcome::Permitted,
            reason_code: String::new(),
            reason: String::new(),
            controller: String::new(),
            grounds: accord::ledger::Grounds::default(),
        };
        accord::store::Store::commit(&store, vec![], draft)
            .await
            .unwrap();
    }
    let (ok, stdout, stderr) = run(&["ledger", "verify", "--data-dir", data]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("4 entries"), "{stdout}");

    // Sign a checkpoint with the service's key, export, and verify the
    // export offline with the public key alone.
    let (ok, vkey, stderr) = run(&["ledger", "public-key", "--data-dir", data]);
    assert!(ok, "{stderr}");
    let vkey = vkey.trim().to_owned();
    let key = accord::ledger::checkpoint::SigningKey::parse(
        &std::fs::read_to_string(dir.path().join("ledger-signing.key")).unwrap(),
    )
    .unwrap();
    let head = accord::store::Store::tree_head(&store).await.unwrap();
    let checkpoint = accord::ledger::checkpoint::SignedCheckpoint {
        head,
        time: chrono::Utc::now(),
        note: key.sign(head).unwrap(),
        signed_by: vec![],
    };
    accord::store::Store::save_checkpoint(&store, &checkpoint)
        .await
        .unwrap();
    let export = dir.path().join("ledger.jsonl");
    let export = export.to_str().unwrap();
    let (ok, _, stderr) = run(&["ledger", "export", "--data-dir", data, "-o", export]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("exported 4 entries"), "{stderr}");
    let offline = [
        "ledger",
        "verify",
        "--export",
        export,
        "--public-key",
        &vkey,
    ];
    let (ok, stdout, stderr) = run(&offline);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("4 entries, 2 signed checkpoints"),
        "{stdout}"
    );
    let (other, _) =
        accord::ledger::checkpoint::SigningKey::generate("accord.local/ledger").unwrap();
    assert_one_line_failure(
        run(&[
            "ledger",
            "verify",
            "--export",
            export,
            "--public-key",
            other.verifier_key(),
        ]),
        "checkpoint of size",
    );

    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER ledger_entries_append_only_update")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_entries SET outcome = 'denied' WHERE idx = 1")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    store.close().await;
    assert_one_line_failure(run(&["ledger", "verify", "--data-dir", data]), "entry 1");
    // The altered row, exported, is named by the offline verifier too.
    let (ok, _, stderr) = run(&["ledger", "export", "--data-dir", data, "-o", export]);
    assert!(ok, "{stderr}");
    assert_one_line_failure(run(&offline), "entry 1: its content hashes to leaf");
}

#[test]
fn a_new_key_is_generated_for_a_secret_store_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets/ledger.key");
    let file = file.to_str().unwrap();
    let (ok, missing, _) = run(&["ledger", "public-key", "--data-dir", file]);
    assert!(!ok && missing.is_empty(), "no key is made by reading one");
    let made = accord()
        .args(["ledger", "new-key"])
        .env("ACCORD_LEDGER_KEY_FILE", file)
        .env("ACCORD_LEDGER_ORIGIN", "accord.example.gov.uk/ledger")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let vkey = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    assert!(vkey.starts_with("accord.example.gov.uk/ledger+"), "{vkey}");
    let private = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        accord::ledger::checkpoint::SigningKey::parse(&private)
            .unwrap()
            .verifier_key(),
        vkey
    );
    let again = accord()
        .args(["ledger", "new-key"])
        .env("ACCORD_LEDGER_KEY_FILE", file)
        .env("ACCORD_LEDGER_ORIGIN", "accord.example.gov.uk/ledger")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), private);
}

#[test]
fn the_checkpoint_key_is_generated_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, _) = serve(data);
    stop(child);
    let (ok, first, stderr) = run(&["ledger", "public-key", "--data-dir", data]);
    assert!(ok, "{stderr}");
    let (ok, again, _) = run(&["ledger", "public-key", "--data-dir", data]);
    assert!(ok);
    assert_eq!(first, again, "the key is kept, not regenerated");
    let vkey = first.trim();
    assert!(vkey.starts_with("accord.local/ledger+"), "{vkey}");
    let path = dir.path().join("ledger-signing.key");
    let private = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        accord::ledger::checkpoint::SigningKey::parse(&private)
            .unwrap()
            .verifier_key(),
        vkey
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // A key named for another origin is refused.
    let config = dir.path().join("other.toml");
    std::fs::write(&config, "ledger_origin = \"elsewhere.example/log\"\n").unwrap();
    assert_one_line_failure(
        run(&[
            "--config",
            config.to_str().unwrap(),
            "ledger",
            "public-key",
            "--data-dir",
            data,
        ]),
        "ledger_origin",
    );
}

#[test]
fn only_serve_creates_a_key_and_only_serve_or_migrate_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("mistyped");
    let wrong = wrong.to_str().unwrap();
    assert_one_line_failure(
        run(&["ledger", "public-key", "--data-dir", wrong]),
        "no signing key in",
    );
    let output = dir.path().join("out.jsonl");
    assert_one_line_failure(
        run(&[
            "ledger",
            "export",
            "--data-dir",
            wrong,
            "-o",
            output.to_str().unwrap(),
        ]),
        "no signing key in",
    );
    assert_one_line_failure(
        run(&["ledger", "verify", "--data-dir", wrong]),
        "no Accord database in",
    );
    assert_one_line_failure(
        run(&[
            "ledger",
            "report",
            "--data-dir",
            wrong,
            "--subject",
            "subjects/7d4f1c1e-2b0a-4c55-9a43-3c1e2f9b8a10",
            "-o",
            output.to_str().unwrap(),
        ]),
        "no Accord database in",
    );
    assert!(!std::path::Path::new(wrong).exists(), "nothing was created");
    assert!(!output.exists());

    // A database without a key (made by `migrate`) is still no key.
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    assert!(run(&["migrate", "--data-dir", data]).0);
    assert_one_line_failure(
        run(&["ledger", "public-key", "--data-dir", data]),
        "no signing key in",
    );
}

#[tokio::test]
async fn ledger_report_writes_a_subject_access_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, _, stderr) = run(&["migrate", "--data-dir", data]);
    assert!(ok, "{stderr}");
    let store = accord::store::connect(&accord::store::sqlite_url(dir.path()), false)
        .await
        .unwrap();
    let subject = "subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69";
    let accesses = [
        (
            "leeds-cc",
            "leeds-cc",
            "GetRecord",
            accord::ledger::Outcome::Permitted,
            subject,
        ),
        (
            "wy-police",
            "leeds-cc",
            "GetRecord",
            accord::ledger::Outcome::Denied,
            subject,
        ),
        (
            "wy-police",
            "wy-police",
            "GetSubject",
            accord::ledger::Outcome::Permitted,
            subject,
        ),
        (
            "leeds-cc",
            "leeds-cc",
            "GetSubject",
            accord::ledger::Outcome::Permitted,
            "subjects/other",
        ),
    ];
    for (n, (agency, controller, method, outcome, about)) in accesses.into_iter().enumerate() {
        let draft = accord::ledger::EntryDraft {
            id: format!("entry-{n}"),
            time: chrono::Utc::now(),
            request_id: String::new(),
            trace_id: String::new(),
            agency: agency.into(),
            principal: format!("{agency}-staff"),
            roles: vec!["officer".into()],
            client_certificate: String::new(),
            action: format!("/accord.v1.RecordService/{method}"),
            purpose: Some(accord::domain::Purpose::Safeguarding),
            subject: about.into(),
            records: vec![],
            fields: vec![],
            outcome,
            reason_code: String::new(),
            reason: String::new(),
            controller: controller.into(),
            grounds: accord::ledger::Grounds::default(),
        };
        accord::store::Store::commit(&store, vec![], draft)
            .await
            .unwrap();
    }
    store.close().await;

    let (ok, csv, stderr) = run(&["ledger", "report", "--data-dir", data, "--subject", subject]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("reported 3 accesses"), "{stderr}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows[1].contains(",leeds-cc,leeds-cc-staff,officer,viewed a record,safeguarding,"),
        "{csv}"
    );
    assert!(rows[2].contains(",denied,"), "{csv}");
    assert!(rows[3].contains("viewed the person's details"), "{csv}");

    // The council's view: its own access and the police's refused attempt
    // on its data, not the police's access to their own data.
    let file = dir.path().join("report.json");
    let (ok, _, stderr) = run(&[
        "ledger",
        "report",
        "--data-dir",
        data,
        "--subject",
        subject,
        "--agency",
        "leeds-cc",
        "--format",
        "json",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let agencies: Vec<&str> = report["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agency"].as_str().unwrap())
        .collect();
    assert_eq!(agencies, ["leeds-cc", "wy-police"]);
    assert_eq!(report["subject"], subject);

    assert_one_line_failure(
        run(&[
            "ledger",
            "report",
            "--data-dir",
            data,
            "--subject",
            "people/1",
        ]),
        "--subject",
    );
}

/// The checkpoint key rotated in three steps: key A alone, a changeover
/// (B signs, A beside it), then B alone with A retired. `GetCheckpoint`
/// names the keys that signed (both during the changeover). Every
/// checkpoint stays verifiable: `ledger verify` names both keys and what each
/// signed, the export carries both, and a verifier holding only the new
/// key cannot pass the old checkpoints.
#[tokio::test]
async fn a_checkpoint_key_rotation_keeps_every_checkpoint_verifiable() {
    use accord::ledger::checkpoint::{SigningKey, open_checkpoint};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let key_a = dir.path().join("data/ledger-signing.key");
    let (b, private_b) = SigningKey::generate("accord.local/ledger").unwrap();
    let key_b = dir.path().join("ledger-b.key");
    std::fs::write(&key_b, private_b).unwrap();
    let config = dir.path().join("accord.toml");
    let config_text = config.to_str().unwrap().to_owned();
    let with_config = |args: &[&str]| {
        let out = accord()
            .args(args)
            .env("ACCORD_CONFIG", &config_text)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The council registered (once), a checkpoint asked for by its auditor,
    // which names the keys that signed it, then a stop, which signs a
    // final checkpoint.
    let step = |settings: String, name: &'static str, signers: usize| {
        std::fs::write(&config, settings).unwrap();
        let config = config_text.clone();
        async move {
            let (child, address) = serve_with(&["--data-dir", data], &[("ACCORD_CONFIG", &config)]);
            let channel = helpers::process::channel_to(&address).await;
            if name == "with-a" {
                helpers::process::register_council(&channel).await;
            }
            // An entry the checkpoint asked for must cover.
            pb::agency_service_client::AgencyServiceClient::new(channel.clone())
                .list_agencies(request_as(
                    pb::ListAgenciesRequest::default(),
                    "accord-ops",
                    "operator",
                    name,
                ))
                .await
                .unwrap();
            let answer = pb::audit_service_client::AuditServiceClient::new(channel)
                .get_checkpoint(request_as(
                    pb::GetCheckpointRequest {
                        purpose: pb::Purpose::Administration as i32,
                        refresh: true,
                    },
                    "leeds-cc",
                    "auditor",
                    name,
                ))
                .await
                .unwrap()
                .into_inner();
            let checkpoint = answer.checkpoint.unwrap();
            assert_eq!(
                checkpoint.signed_by.len(),
                signers,
                "{name}: {checkpoint:?}"
            );
            assert_eq!(checkpoint.signed_by[0], answer.verifier_key);
            stop(child);
        }
    };
    step(String::new(), "with-a", 1).await;
    let (ok, a, stderr) = with_config(&["ledger", "public-key", "--data-dir", data]);
    assert!(ok, "{stderr}");
    let a = a.trim().to_owned();
    assert_eq!(
        SigningKey::parse(&std::fs::read_to_string(&key_a).unwrap())
            .unwrap()
            .verifier_key(),
        a
    );
    let changeover = format!(
        "ledger_key_file = {:?}\nledger_outgoing_key_files = [{:?}]\n",
        key_b.to_str().unwrap(),
        key_a.to_str().unwrap()
    );
    step(changeover, "changeover", 2).await;
    let after = format!(
        "ledger_key_file = {:?}\nledger_retired_verifier_keys = [{a:?}]\n",
        key_b.to_str().unwrap()
    );
    step(after, "with-b", 1).await;

    // Both keys are published, the current one first.
    let (ok, all, stderr) = with_config(&["ledger", "public-key", "--all", "--data-dir", data]);
    assert!(ok, "{stderr}");
    assert_eq!(all.lines().collect::<Vec<_>>(), vec![b.verifier_key(), &a]);

    // The database's checkpoints verify against the published keys, and
    // the command says which key signed how many.
    let (ok, stdout, stderr) = with_config(&["ledger", "verify", "--data-dir", data]);
    assert!(ok, "{stderr}");
    let signed = |key: &str| -> u64 {
        let prefix = format!("signed by {key}: ");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no signer line for {key}: {stdout}"))
    };
    // A signed every checkpoint until B alone took over; B from the
    // changeover on (the changeover's checkpoints carry both).
    assert!(signed(&a) >= 2, "{stdout}");
    assert!(signed(b.verifier_key()) >= 2, "{stdout}");
    // Told only the new key, the old checkpoints cannot be verified.
    let (ok, _, stderr) = with_config(&[
        "ledger",
        "verify",
        "--data-dir",
        data,
        "--public-key",
        b.verifier_key(),
    ]);
    assert!(!ok && stderr.contains("checkpoint of size"), "{stderr}");

    // The export carries every key; offline, both are needed.
    let export = dir.path().join("ledger.jsonl");
    let export = export.to_str().unwrap();
    let (ok, _, stderr) = with_config(&["ledger", "export", "--data-dir", data, "-o", export]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(export).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["verifier_key"], b.verifier_key());
    assert_eq!(
        header["verifier_keys"],
        serde_json::json!([b.verifier_key(), a])
    );
    let (ok, stdout, stderr) = run(&[
        "ledger",
        "verify",
        "--export",
        export,
        "--public-key",
        b.verifier_key(),
        "--public-key",
        &a,
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("signed by {a}: ")), "{stdout}");
    // Some checkpoint carries both signatures (the changeover), and the
    // last carries B's alone.
    let notes: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["type"] == "checkpoint")
        .map(|l| l["note"].as_str().unwrap().to_owned())
        .collect();
    let keys = [b.verifier_key().to_owned(), a.clone()];
    let signers: Vec<Vec<String>> = notes
        .iter()
        .map(|n| open_checkpoint(n, &keys).unwrap().signed_by)
        .collect();
    assert!(signers.contains(&keys.to_vec()), "{signers:?}");
    assert_eq!(signers.last().unwrap(), &vec![b.verifier_key().to_owned()]);
    assert_eq!(signers.first().unwrap(), &vec![a.clone()]);
}

/// A request as `agency`'s staff member with `roles`, carrying `request_id`.
fn request_as<T>(message: T, agency: &str, roles: &str, request_id: &str) -> tonic::Request<T> {
    let mut r = helpers::as_caller(message, agency, "staff-1", roles);
    r.metadata_mut()
        .insert("x-request-id", request_id.parse().unwrap());
    r
}

/// Three `accord serve` processes share one PostgreSQL database under
/// concurrent load; one is killed with SIGKILL mid-run. The ledger they
/// built together verifies (no fork, no gap), and every call that was
/// answered OK has its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_share_one_ledger_through_a_sigkill() {
    let Some(url) = helpers::fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, private) =
        accord::ledger::checkpoint::SigningKey::generate("accord.local/ledger").unwrap();
    let key_file = dir.path().join("ledger.key");
    std::fs::write(&key_file, private).unwrap();
    let key_file = key_file.to_str().unwrap().to_owned();
    let mut servers = Vec::new();
    for n in 0..3 {
        let data = dir.path().join(format!("node-{n}"));
        servers.push(serve_with(
            &["--database-url", &url, "--data-dir", data.to_str().unwrap()],
            &[("ACCORD_LEDGER_KEY_FILE", &key_file)],
        ));
    }
    let channels: Vec<tonic::transport::Channel> = {
        let mut out = Vec::new();
        for (_, address) in &servers {
            out.push(
                tonic::transport::Channel::from_shared(format!("http://{address}"))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        out
    };
    pb::agency_service_client::AgencyServiceClient::new(channels[0].clone())
        .create_agency(request_as(
            pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: "leeds-cc".into(),
                    display_name: "Leeds".into(),
                    kind: pb::AgencyKind::Council as i32,
                    ..Default::default()
                }),
            },
            "accord-ops",
            "operator",
            "setup",
        ))
        .await
        .unwrap();

    // 3 servers x 8 clients x 60 audited reads, each with its own request id.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for (s, channel) in channels.iter().enumerate() {
        for c in 0..8 {
            let channel = channel.clone();
            let answered = answered.clone();
            clients.push(tokio::spawn(async move {
                let mut client = pb::agency_service_client::AgencyServiceClient::new(channel);
                for n in 0..60 {
                    let id = format!("s{s}-c{c}-n{n}");
                    let ok = client
                        .list_agencies(request_as(
                            pb::ListAgenciesRequest::default(),
                            "leeds-cc",
                            "social_worker",
                            &id,
                        ))
                        .await
                        .is_ok();
                    if ok {
                        answered.lock().unwrap().push(id);
                    }
                }
            }));
        }
    }
    // Kill the second server once the load is well under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    servers[1].0.kill().unwrap();
    servers[1].0.wait().unwrap();
    for client in clients {
        client.await.unwrap();
    }
    for (child, _) in servers.iter_mut() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    let store = accord::store::connect(&url, false).await.unwrap();
    let head = accord::store::verify_ledger(&store)
        .await
        .expect("the shared ledger verifies");
    let recorded: std::collections::HashSet<String> = {
        use accord::store::{After, EntryFilter, Store};
        let mut ids = std::collections::HashSet::new();
        let mut after = After::Start;
        loop {
            let page = store
                .entries(&EntryFilter::default(), after, 1000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = After::Key(last.index);
            ids.extend(page.into_iter().map(|e| e.draft.request_id));
        }
        ids
    };
    store.close().await;
    let answered = answered.lock().unwrap().clone();
    let from_killed = answered.iter().filter(|id| id.starts_with("s1-")).count();
    assert!(
        from_killed > 0,
        "the killed server answered nothing before it died"
    );
    assert!(answered.len() < 3 * 8 * 60, "the kill interrupted nothing");
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "answered OK without an entry: {missing:?}"
    );
    assert!(head.size as usize >= answered.len());
    helpers::drop_postgres_database(&url).await;
}

#[tokio::test]
async fn dev_init_makes_a_working_secure_setup() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let dev_arg = dev.to_str().unwrap();
    let (ok, stdout, stderr) = run(&["dev", "init", "--dir", dev_arg]);
    assert!(ok, "{stdout}{stderr}");
    // Private keys are readable by their owner only; certificates by all.
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(dev.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for key in [
        "ca.key",
        "server.key",
        "operator.key",
        "leeds-cc.key",
        "leeds-cc-signing.key",
        "leeds-th.key",
        "leeds-th-signing.key",
    ] {
        assert_eq!(mode(key), 0o600, "{key}");
    }
    assert_eq!(mode("leeds-cc.pem") & 0o044, 0o044);
    // It will not overwrite a setup.
    assert_one_line_failure(run(&["dev", "init", "--dir", dev_arg]), "already holds");
    // Tokens for the example agencies only.
    assert_one_line_failure(
        run(&["dev", "token", "--dir", dev_arg, "--agency", "nobody"]),
        "--agency",
    );
    let (ok, token, stderr) = run(&[
        "dev",
        "token",
        "--dir",
        dev_arg,
        "--agency",
        "leeds-cc",
        "--roles",
        "social_worker,auditor",
    ]);
    assert!(ok, "{stderr}");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");

    // The configuration it wrote serves over mutual TLS.
    let config = dev.join("accord.toml");
    let (child, address) = start(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let read = |name: &str| std::fs::read_to_string(dev.join(name)).unwrap();
    let council = accord::dev::Issued {
        cert_pem: read("leeds-cc.pem"),
        key_pem: read("leeds-cc.key"),
        fingerprint: accord::domain::credential::Fingerprint([0; 32]),
    };
    let address: std::net::SocketAddr = address.parse().unwrap();
    let channel = helpers::tls_channel(address, &read("ca.pem"), Some(&council))
        .await
        .unwrap();
    let agencies = pb::agency_service_client::AgencyServiceClient::new(channel)
        .list_agencies(helpers::with_token(
            pb::ListAgenciesRequest::default(),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .agencies;
    let codes: Vec<&str> = agencies.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(codes, ["leeds-cc", "leeds-th"]);

    // What a local console needs: its part of the configuration, the
    // development provider's settings (with the console's client secret,
    // so private) and the provider registered as the council's issuer.
    assert_eq!(mode("console-provider.json"), 0o600);
    assert_eq!(mode("console-secret"), 0o600);
    let provider: serde_json::Value = serde_json::from_str(&read("console-provider.json")).unwrap();
    assert_eq!(provider["port"], 8444);
    assert_eq!(
        provider["clients"][0]["client_secret"].as_str().unwrap(),
        read("console-secret").trim()
    );
    assert_eq!(
        provider["clients"][0]["redirect_uris"][0],
        "https://localhost:8443/sign-in/callback"
    );
    let written = accord::config::Config::load(Some(&config), &Default::default()).unwrap();
    assert_eq!(written.console_agency.as_deref(), Some("leeds-cc"));
    assert_eq!(written.console_verifier_keys.len(), 1);
    assert_eq!(provider["audience"], written.token_audience);
    let operator = accord::dev::Issued {
        cert_pem: read("operator.pem"),
        key_pem: read("operator.key"),
        fingerprint: accord::domain::credential::Fingerprint([0; 32]),
    };
    let issuers: Vec<String> = pb::agency_service_client::AgencyServiceClient::new(
        helpers::tls_channel(address, &read("ca.pem"), Some(&operator))
            .await
            .unwrap(),
    )
    .list_token_issuers(pb::ListTokenIssuersRequest {
        parent: "agencies/leeds-cc".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .token_issuers
    .into_iter()
    .map(|i| i.issuer)
    .collect();
    assert!(
        issuers.contains(&"https://localhost:8444".to_owned()),
        "{issuers:?}"
    );
    // The console starts on that configuration and serves its sign-in page.
    let (console, console_address) = start(
        &[
            "console",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let console = helpers::process::Reaped(console);
    let port = console_address
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .port();
    let page = helpers::https_client(&read("ca.pem"), false)
        .get(format!("https://localhost:{port}/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Sign in"));
    drop(console);

    // The README's call: buf curl with the client certificate and a token.
    if let Some(buf) = std::env::var_os("TEST_BUF") {
        let out = Command::new(buf)
            .args(["curl", "--protocol", "grpc"])
            .arg("--cacert")
            .arg(dev.join("ca.pem"))
            .arg("--cert")
            .arg(dev.join("leeds-cc.pem"))
            .arg("--key")
            .arg(dev.join("leeds-cc.key"))
            .args(["-H", &format!("authorization: Bearer {token}")])
            .arg(format!(
                "https://localhost:{}/accord.v1.AgencyService/ListAgencies",
                address.port()
            ))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("Leeds Teaching Hospitals NHS Trust"),
            "{stdout}"
        );
    } else if std::env::var_os("CI").is_some() {
        panic!("TEST_BUF must name the buf CLI in CI (see scripts/ensure-tools)");
    }
    stop(child);
}
