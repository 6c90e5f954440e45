//! Event delivery latency: many subscribers follow `WatchEvents` streams on
//! one server while changes are written through another (two `accord
//! serve` processes on one PostgreSQL database, or one server for both),
//! and the time from each change's commit to its delivery on every stream
//! is measured. See `docs/benchmarks.md` and `scripts/bench-events`.
//!
//! ```sh
//! cargo run --release --example eventbench -- --write 127.0.0.1:50071 \
//!     --watch 127.0.0.1:50072 --subscribers 100 --changes 400 --rate 20
//! ```
//!
//! Each subscriber is a subscription of its own, of the agency that
//! writes (so every delivery is decided, permitted and audited: one ledger
//! entry per change per subscriber), followed on a stream of its own. A
//! change's commit is taken as the moment its CreateRecord answered OK (the
//! commit is durable before the answer leaves, so this is just after it);
//! its delivery as the moment the event arrived on a stream. Development
//! mode only (callers named by metadata). Prints one machine-readable
//! line: `scenario=LABEL subscribers=… changes=… deliveries=… p50_ms=…
//! p99_ms=… max_ms=…`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord::api::pb;
use anyhow::{Context, bail};
use clap::Parser;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
struct Args {
    /// The server changes are written through, host:port (loopback).
    #[arg(long)]
    write: std::net::SocketAddr,
    /// The server the streams follow, host:port (loopback); the same as
    /// `--write` for one process.
    #[arg(long)]
    watch: std::net::SocketAddr,
    /// Streams, each following a subscription of its own.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Changes written (records created), one at a time at `--rate`.
    #[arg(long, default_value_t = 400)]
    changes: usize,
    /// Changes per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// HTTP/2 connections the streams share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The scenario's name in the machine-readable line.
    #[arg(long, default_value = "events")]
    label: String,
}

const AGENCY: &str = "evt-cc";
const CLASS: &str = "recordClasses/social_care.referral";

fn request<T>(message: T, principal: &str, roles: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    for (k, v) in [
        ("x-accord-agency", AGENCY),
        ("x-accord-principal", principal),
        ("x-accord-roles", roles),
    ] {
        if let Ok(v) = v.parse() {
            r.metadata_mut().insert(k, v);
        }
    }
    r
}

async fn channel(address: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await
        .context("cannot connect to the server")
}

fn referral(subject: &str, n: usize) -> pb::Record {
    let code = |s: &str| pb::FieldValue {
        kind: Some(pb::field_value::Kind::CodeValue(s.to_owned())),
    };
    pb::Record {
        subject: subject.to_owned(),
        record_class: CLASS.to_owned(),
        fields: HashMap::from([
            (
                "referral_date".to_owned(),
                pb::FieldValue {
                    kind: Some(pb::field_value::Kind::DateValue("2026-11-20".into())),
                },
            ),
            ("referral_source".to_owned(), code("school")),
            ("service".to_owned(), code("children")),
            (
                "reason".to_owned(),
                pb::FieldValue {
                    kind: Some(pb::field_value::Kind::StringValue(format!("change {n}"))),
                },
            ),
        ]),
        ..Default::default()
    }
}

/// When each record's event arrived on each stream.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.write.ip().is_loopback() || !args.watch.ip().is_loopback() {
        bail!("the event benchmark only targets loopback addresses");
    }
    let writer = channel(args.write).await?;
    let created = pb::agency_service_client::AgencyServiceClient::new(writer.clone())
        .create_agency(request(
            pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: AGENCY.into(),
                    display_name: "Event benchmark council".into(),
                    kind: pb::AgencyKind::Council as i32,
                    ..Default::default()
                }),
            },
            "ops-1",
            "operator",
        ))
        .await;
    if let Err(e) = created
        && e.code() != tonic::Code::AlreadyExists
    {
        return Err(e).context("cannot register the agency");
    }
    let subject = pb::subject_service_client::SubjectServiceClient::new(writer.clone())
        .create_subject(request(
            pb::CreateSubjectRequest {
                purpose: pb::Purpose::DirectCare as i32,
                // A fresh subject for every run, however alike the last one.
                create_despite_match: true,
                subject: Some(pb::Subject {
                    identifiers: vec![pb::Identifier {
                        system: pb::IdentifierSystem::LocalReference as i32,
                        value: format!("EVT-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]),
                        ..Default::default()
                    }],
                    demographics: Some(pb::Demographics {
                        given_name: "Event".into(),
                        family_name: "Bench".into(),
                        birth_date: "2015-03-02".into(),
                        gender: pb::AdministrativeGender::Unknown as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            "evt-1",
            "social_worker",
        ))
        .await
        .context("cannot register the subject")?
        .into_inner()
        .subject
        .context("no subject")?
        .name;

    // The subscribers: a subscription and a stream each, on the watching
    // server, over a few connections.
    let mut watchers = Vec::new();
    for _ in 0..args.connections.max(1) {
        watchers.push(channel(args.watch).await?);
    }
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let mut streams = Vec::new();
    for n in 0..args.subscribers {
        let events =
            pb::event_service_client::EventServiceClient::new(watchers[n % watchers.len()].clone());
        let subscription = events
            .clone()
            .create_subscription(request(
                pb::CreateSubscriptionRequest {
                    subscription: Some(pb::Subscription {
                        kinds: vec![pb::EventKind::RecordCreated as i32],
                        purpose: pb::Purpose::DirectCare as i32,
                        role: "social_worker".into(),
                        cohort: pb::SubscriptionCohort::All as i32,
                        ..Default::default()
                    }),
                },
                "evt-1",
                "social_worker",
            ))
            .await
            .context("cannot subscribe")?
            .into_inner()
            .subscription
            .context("no subscription")?;
        let mut stream = events
            .clone()
            .watch_events(request(
                pb::WatchEventsRequest {
                    subscription: subscription.name,
                    cursor: String::new(),
                },
                &format!("evt-system-{n}"),
                "social_worker",
            ))
            .await
            .context("cannot watch")?
            .into_inner();
        let arrivals = arrivals.clone();
        let expected = args.changes;
        streams.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < expected {
                match tokio::time::timeout(Duration::from_secs(60), stream.message()).await {
                    Ok(Ok(Some(pb::WatchEventsResponse {
                        item: Some(pb::watch_events_response::Item::Event(e)),
                    }))) => {
                        let at = Instant::now();
                        seen += 1;
                        if let Ok(mut a) = arrivals.lock() {
                            a.push((e.resource, at));
                        }
                    }
                    Ok(Ok(Some(_))) => {}
                    _ => break,
                }
            }
            seen
        }));
    }

    // The changes, at the rate asked for; each one's commit time.
    let mut committed: HashMap<String, Instant> = HashMap::new();
    let mut records = pb::record_service_client::RecordServiceClient::new(writer.clone());
    let mut tick =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    for n in 0..args.changes {
        tick.tick().await;
        let record = records
            .create_record(request(
                pb::CreateRecordRequest {
                    record: Some(referral(&subject, n)),
                    purpose: pb::Purpose::DirectCare as i32,
                },
                "evt-1",
                "social_worker",
            ))
            .await
            .context("a change failed")?
            .into_inner()
            .record
            .context("no record")?;
        committed.insert(record.name, Instant::now());
    }
    let mut delivered = 0;
    for s in streams {
        delivered += s.await?;
    }
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .filter_map(|(name, at)| Some(at.saturating_duration_since(*committed.get(name)?)))
        .collect();
    latencies.sort_unstable();
    let at = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
    };
    let expected = args.changes * args.subscribers;
    println!(
        "{} changes to {} subscribers: {delivered} of {expected} deliveries, p50 {:.2} ms, p99 {:.2} ms",
        args.changes,
        args.subscribers,
        at(0.5),
        at(0.99)
    );
    println!(
        "scenario={} subscribers={} changes={} deliveries={delivered} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        args.label,
        args.subscribers,
        args.changes,
        at(0.5),
        at(0.99),
        at(1.0)
    );
    if delivered < expected {
        bail!("{} deliveries never came", expected - delivered);
    }
    Ok(())
}
