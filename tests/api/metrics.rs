//! The metrics, liveness and readiness listener of a real `accord serve`
//! process, scraped over plain HTTP as Prometheus and probes would.

use std::collections::BTreeMap;

use accord::api::pb;
use accord::api::pb::agency_service_client::AgencyServiceClient;
use accord::api::pb::subject_service_client::SubjectServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::process::{Reaped, serve_with_metrics};
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

    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut agencies = AgencyServiceClient::new(channel.clone());
    agencies
        .create_agency(as_caller(
            pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: COUNCIL.to_owned(),
                    display_name: "Leeds City Council".to_owned(),
                    kind: pb::AgencyKind::Council as i32,
                    ..Default::default()
                }),
            },
            "accord-ops",
            "ops-1",
            "operator",
        ))
        .await
        .unwrap();
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
}
