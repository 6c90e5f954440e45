//! A gRPC load generator for Accord: many concurrent streams calling one
//! method against a running server, reporting requests per second and the
//! median and 99th-percentile latency. See `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release --example loadgen -- --call get-record --streams 32 --requests 20000
//! cargo run --release --example loadgen -- --call health --streams 32 --requests 20000
//! ```
//!
//! `get-record` first registers an agency, a subject and a record, then
//! reads the record: each read is authenticated, authorised, audited (a
//! ledger entry committed before the answer) and answered. Against a
//! server in development mode (`--insecure`) callers are named by
//! metadata; with `--dev-dir DIR` (a setup made by `accord dev init`) the
//! calls go over mutual TLS with the council's certificate and a staff
//! token, as in production.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord::api::pb;
use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Call {
    /// `grpc.health.v1.Health/Check`: the server's ceiling.
    Health,
    /// `accord.v1.RecordService/GetRecord`: an audited read.
    GetRecord,
}

#[derive(Debug, Parser)]
struct Args {
    /// The server, host:port (loopback only).
    #[arg(long, default_value = "127.0.0.1:50051")]
    address: std::net::SocketAddr,
    /// What to call.
    #[arg(long, value_enum)]
    call: Call,
    /// Concurrent streams (calls in flight at once).
    #[arg(long, default_value_t = 32)]
    streams: u64,
    /// HTTP/2 connections the streams share.
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// Measured calls in all (after a warm-up of one tenth as many).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// A development setup (`accord dev init`) whose server is running:
    /// call over mutual TLS as its council, with a staff token.
    #[arg(long)]
    dev_dir: Option<std::path::PathBuf>,
}

/// How calls say who makes them.
#[derive(Debug, Clone)]
enum Identity {
    /// Development-mode metadata.
    Metadata,
    /// A bearer token (over a mutual-TLS connection).
    Token(String),
}

/// The agency that makes the calls.
fn agency(identity: &Identity) -> &'static str {
    match identity {
        Identity::Metadata => "load-cc",
        Identity::Token(_) => "leeds-cc",
    }
}

fn as_caller<T>(identity: &Identity, message: T, agency: &str, roles: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    let m = r.metadata_mut();
    let pairs = match identity {
        Identity::Metadata => vec![
            ("x-accord-agency", agency.to_owned()),
            ("x-accord-principal", "load-1".to_owned()),
            ("x-accord-roles", roles.to_owned()),
        ],
        Identity::Token(token) => vec![("authorization", format!("Bearer {token}"))],
    };
    for (k, v) in pairs {
        if let Ok(v) = v.parse() {
            m.insert(k, v);
        }
    }
    r
}

fn text(s: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::StringValue(s.to_owned())),
    }
}

fn code(s: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::CodeValue(s.to_owned())),
    }
}

/// Registers what a GetRecord needs; returns the record's name.
async fn set_up_record(channel: Channel, identity: &Identity) -> anyhow::Result<String> {
    let agency = agency(identity);
    // A development setup registered its agencies already.
    let created = match identity {
        Identity::Token(_) => Ok(()),
        Identity::Metadata => pb::agency_service_client::AgencyServiceClient::new(channel.clone())
            .create_agency(as_caller(
                identity,
                pb::CreateAgencyRequest {
                    agency: Some(pb::Agency {
                        code: agency.into(),
                        display_name: "Load test council".into(),
                        kind: pb::AgencyKind::Council as i32,
                        ..Default::default()
                    }),
                },
                "accord-ops",
                "operator",
            ))
            .await
            .map(|_| ()),
    };
    if let Err(e) = created
        && e.code() != tonic::Code::AlreadyExists
    {
        return Err(e).context("cannot register the load test agency");
    }
    let reference = format!("LOAD-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let subject = pb::subject_service_client::SubjectServiceClient::new(channel.clone())
        .create_subject(as_caller(
            identity,
            pb::CreateSubjectRequest {
                purpose: pb::Purpose::DirectCare as i32,
                subject: Some(pb::Subject {
                    identifiers: vec![pb::Identifier {
                        system: pb::IdentifierSystem::LocalReference as i32,
                        value: reference,
                        ..Default::default()
                    }],
                    demographics: Some(pb::Demographics {
                        given_name: "Load".into(),
                        family_name: "Test".into(),
                        birth_date: "2010-01-01".into(),
                        gender: pb::AdministrativeGender::Unknown as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            agency,
            "social_worker",
        ))
        .await
        .context("cannot register the load test subject")?
        .into_inner();
    let subject = subject.subject.map(|s| s.name).unwrap_or_default();
    let record = pb::record_service_client::RecordServiceClient::new(channel)
        .create_record(as_caller(
            identity,
            pb::CreateRecordRequest {
                purpose: pb::Purpose::Safeguarding as i32,
                record: Some(pb::Record {
                    subject,
                    record_class: "recordClasses/social_care.referral".into(),
                    fields: HashMap::from([
                        (
                            "referral_date".to_owned(),
                            pb::FieldValue {
                                kind: Some(pb::field_value::Kind::DateValue("2026-11-20".into())),
                            },
                        ),
                        ("referral_source".to_owned(), code("school")),
                        ("service".to_owned(), code("children")),
                        ("reason".to_owned(), text("load test")),
                    ]),
                    ..Default::default()
                }),
            },
            agency,
            "social_worker",
        ))
        .await
        .context("cannot create the load test record")?
        .into_inner();
    Ok(record.record.map(|r| r.name).unwrap_or_default())
}

/// Makes one call; true if it succeeded.
async fn call_once(call: Call, channel: &Channel, record: &str, identity: &Identity) -> bool {
    match call {
        Call::Health => tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .is_ok(),
        Call::GetRecord => pb::record_service_client::RecordServiceClient::new(channel.clone())
            .get_record(as_caller(
                identity,
                pb::GetRecordRequest {
                    name: record.to_owned(),
                    version: 0,
                    purpose: pb::Purpose::Safeguarding as i32,
                    ..Default::default()
                },
                agency(identity),
                "social_worker",
            ))
            .await
            .is_ok(),
    }
}

/// Runs `total` calls over `streams` concurrent streams; returns each
/// call's latency and the wall time.
async fn run(
    call: Call,
    channels: &[Channel],
    record: &Arc<str>,
    identity: &Identity,
    streams: u64,
    total: u64,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..streams {
        let channel = channels[(s as usize) % channels.len()].clone();
        let issued = issued.clone();
        let record = record.clone();
        let identity = identity.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                if call_once(call, &channel, &record, &identity).await {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let wall = started.elapsed();
    if failures > 0 {
        bail!("{failures} calls failed");
    }
    latencies.sort_unstable();
    Ok((latencies, wall))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.address.ip().is_loopback() {
        bail!("the load generator only targets loopback addresses");
    }
    let (identity, tls) = match &args.dev_dir {
        None => (Identity::Metadata, None),
        Some(dir) => {
            use tonic::transport::{Certificate, ClientTlsConfig, Identity as Pem};
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .with_context(|| format!("cannot read {name} in {}", dir.display()))
            };
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("ca.pem")?))
                .identity(Pem::from_pem(read("leeds-cc.pem")?, read("leeds-cc.key")?))
                .domain_name("localhost");
            let roles = ["social_worker".to_owned()];
            let token = accord::dev::setup::token(dir, "leeds-cc", "load-1", &roles, 60)?;
            (Identity::Token(token), Some(tls))
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        let mut endpoint = Channel::from_shared(format!("{scheme}://{}", args.address))?;
        if let Some(tls) = &tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        channels.push(
            endpoint
                .connect()
                .await
                .context("cannot connect to the server")?,
        );
    }
    let record: Arc<str> = match args.call {
        Call::GetRecord => set_up_record(channels[0].clone(), &identity).await?.into(),
        Call::Health => "".into(),
    };
    run(
        args.call,
        &channels,
        &record,
        &identity,
        args.streams,
        args.requests / 10,
    )
    .await?;
    let (latencies, wall) = run(
        args.call,
        &channels,
        &record,
        &identity,
        args.streams,
        args.requests,
    )
    .await?;
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    println!(
        "{:?}: {} calls, {} streams over {} connections: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
        args.call,
        latencies.len(),
        args.streams,
        channels.len(),
        rate,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}
