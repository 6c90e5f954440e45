//! The metrics, liveness and readiness listener of a real `accord serve`
//! process, scraped over plain HTTP as Prometheus and probes would.

use std::collections::BTreeMap;

use accord::api::pb;
use accord::api::pb::subject_service_client::SubjectServiceClient;
use tonic::Code;

use crate::helpers::process::{Reaped, accord, channel_to, register_council, serve_with_metrics};
use crate::helpers::*;

/// One sample of the Prometheus text format: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of a scrape, by series (comments left out). Label values
/// here hold no commas or escaped quotes, which keeps the parse simple.
fn samples(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closed labels");
                let labels = inner
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().expect("a number"),
        };
        out.insert(
            Series {
                name: name.to_owned(),
                labels,
            },
            value,
        );
    }
    out
}

/// The value of the series `name` with (at least) `labels`, summed.
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn calls_decisions_and_the_ledger_are_measured_without_naming_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, address, metrics) =
        serve_with_metrics(&["--data-dir", data, "--log-format", "text"]);
    let _server = Reaped(child);
    let metrics: std::net::SocketAddr = metrics.parse().unwrap();
    assert_eq!(http_get(metrics, "/livez").await.0, 200);
    assert_eq!(
        http_get(metrics, "/readyz").await,
        (200, "SERVING\n".to_owned())
    );
    // The container health check asks the same.
    let probed = accord()
        .args(["probe", "--address", &metrics.to_string()])
        .output()
        .unwrap();
    assert!(probed.status.success(), "{probed:?}");
    assert_eq!(String::from_utf8_lossy(&probed.stdout).trim(), "SERVING");
    let nobody = accord()
        .args(["probe", "--address", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("cannot ask"));

    let channel = channel_to(&address).await;
    register_council(&channel).await;
    let mut subjects = SubjectServiceClient::new(channel);
    let created = subjects
        .create_subject(as_caller(
            pb::CreateSubjectRequest {
                subject: Some(subject(&nhs_number(3), "Ada", "Khan", "2011-02-03")),
                purpose: pb::Purpose::DirectCare as i32,
                create_despite_match: false,
            },
            COUNCIL,
            "sw-1",
            "social_worker",
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    for _ in 0..3 {
        let missing = subjects
            .get_subject(as_caller(
                pb::GetSubjectRequest {
                    name: format!("subjects/{}", uuid::Uuid::new_v4()),
                    purpose: pb::Purpose::DirectCare as i32,
                },
                COUNCIL,
                "sw-1",
                "social_worker",
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
    }
    let anonymous = subjects
        .get_subject(pb::GetSubjectRequest {
            name: created.name.clone(),
            purpose: pb::Purpose::DirectCare as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let s = samples(&text);
    let create = "/accord.v1.SubjectService/CreateSubject";
    let get = "/accord.v1.SubjectService/GetSubject";
    assert_eq!(
        value(
            &s,
            "accord_calls_total",
            &[("method", create), ("code", "OK"), ("agency", COUNCIL)]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &s,
            "accord_calls_total",
            &[
                ("method", get),
                ("code", "NOT_FOUND"),
                ("reason_code", "NOT_FOUND")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "accord_decisions_total",
            &[
                ("outcome", "denied"),
                ("reason_code", "NOT_FOUND"),
                ("agency", COUNCIL)
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "accord_authentication_failures_total",
            &[("reason_code", "MISSING_IDENTITY")]
        ),
        1.0
    );
    // Every call is an entry; the ledger's gauges are read when scraped.
    let entries = value(&s, "accord_ledger_entries_total", &[]);
    assert!(entries >= 6.0, "{entries}");
    assert!(value(&s, "accord_ledger_tree_size", &[]) >= entries);
    assert_eq!(
        value(&s, "accord_ledger_batch_entries_count", &[]),
        value(&s, "accord_ledger_commit_duration_seconds_count", &[])
    );
    assert!(value(&s, "accord_ledger_commit_duration_seconds_count", &[]) >= 1.0);
    assert!(
        s.keys()
            .any(|k| k.name == "accord_ledger_checkpoint_age_seconds")
    );
    assert!(value(&s, "accord_db_pool_max_connections", &[]) >= 1.0);
    assert_eq!(value(&s, "accord_ready", &[]), 1.0);
    assert_eq!(
        value(
            &s,
            "accord_call_duration_seconds_count",
            &[("method", get), ("code", "NOT_FOUND")]
        ),
        3.0
    );
    assert!(text.contains("# TYPE accord_call_duration_seconds histogram"));
    // The scrape itself is not a call, and nobody is named.
    assert!(!text.contains(&created.id), "a subject in the metrics");
    assert!(!text.contains("sw-1"), "a principal in the metrics");
    assert!(!text.contains(&nhs_number(3)));
    // Prometheus's own linter accepts the exposition.
    if let Some(promtool) = promtool() {
        let checked = run_with_input(&promtool, &["check", "metrics"], &text);
        assert!(checked.status.success(), "{}", report(&checked));
    }
}

/// Prometheus's `promtool`, from `TEST_PROMTOOL`; `None` (loudly) when it
/// is not there outside CI.
fn promtool() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("TEST_PROMTOOL")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file());
    if path.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "TEST_PROMTOOL must name promtool in CI (see scripts/ensure-tools)"
        );
        eprintln!("!!! SKIPPING promtool checks: TEST_PROMTOOL is not set (run scripts/test) !!!");
    }
    path
}

fn run_with_input(program: &std::path::Path, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to promtool");
    child.wait_with_output().expect("promtool's output")
}

fn report(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The metric names Accord defines (`src/monitor/mod.rs`).
fn defined_metrics() -> std::collections::BTreeSet<String> {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/monitor/mod.rs"))
            .expect("read src/monitor/mod.rs");
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split('"').nth(1))
        .filter(|name| name.starts_with("accord_"))
        .map(str::to_owned)
        .collect()
}

/// The `accord_…` metric names `text` refers to, histogram series folded
/// into their metric.
fn referenced_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("accord_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The alert rules and their unit tests pass promtool, the dashboard's
/// queries parse, and both name only metrics Accord defines.
#[test]
fn the_alert_rules_and_the_dashboard_check_out() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let rules = std::fs::read_to_string(deploy.join("prometheus/alerts.yaml")).unwrap();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy.join("grafana/accord.json")).unwrap())
            .expect("the dashboard is JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("a query").to_owned())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    let defined = defined_metrics();
    assert!(defined.len() >= 15, "{defined:?}");
    for text in exprs.iter().map(String::as_str).chain([rules.as_str()]) {
        let unknown: Vec<String> = referenced_metrics(text)
            .into_iter()
            .filter(|n| !defined.contains(n))
            .collect();
        assert!(unknown.is_empty(), "unknown metrics {unknown:?} in {text}");
    }
    let Some(promtool) = promtool() else {
        return;
    };
    let run = |args: &[&str], dir: &std::path::Path| {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run promtool");
        assert!(out.status.success(), "promtool {args:?}: {}", report(&out));
    };
    let prometheus = deploy.join("prometheus");
    run(&["check", "rules", "alerts.yaml"], &prometheus);
    run(&["test", "rules", "alerts.test.yaml"], &prometheus);
    // Each of the dashboard's queries as a recording rule, so that
    // promtool parses it (Grafana's rate interval as five minutes).
    let dir = tempfile::tempdir().unwrap();
    let mut recording = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m");
        recording.push_str(&format!(
            "      - record: dashboard:panel_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    std::fs::write(dir.path().join("dashboard.yaml"), recording).unwrap();
    run(&["check", "rules", "dashboard.yaml"], dir.path());
}
