//! A gRPC load generator for Accord: many concurrent streams calling one
//! method against a running server, reporting calls per second, the median
//! and 99th-percentile latency and, given the server's process id, its CPU
//! time per call and peak resident memory. See `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release --example loadgen -- --call get-record --streams 32 --requests 20000
//! cargo run --release --example loadgen -- --call health --streams 32 --requests 20000
//! ```
//!
//! The calls:
//!
//! - `health`: `grpc.health.v1.Health/Check`, no authentication and no
//!   database: the ceiling of the gRPC stack;
//! - `get-record`: a council social worker reads the council's own record
//!   (authenticated, decided, audited: a ledger entry durable before the
//!   answer);
//! - `get-shared-record`: a clinician of a health trust reads that record
//!   under a sharing agreement (the Cedar decision, the consent lookup and
//!   the field grant);
//! - `create-record`: the social worker writes a new record;
//! - `update-record`: the social worker changes a record of its own stream
//!   (one record per stream, so that etags do not collide).
//!
//! Against a server in development mode (`--insecure`) callers are named by
//! metadata; with `--dev-dir DIR` (a setup made by `accord dev init`) the
//! calls go over mutual TLS with each agency's certificate and a staff
//! token, as in production.
//!
//! Besides its human line, each run prints one machine-readable line:
//! `scenario=LABEL call=CALL calls_per_s=… p50_ms=… p99_ms=…
//! client_cpu_us_per_call=… cpu_us_per_call=… peak_rss_mb=…
//! db_cpu_us_per_call=…`: the load generator's own CPU time per measured
//! call, then the server's CPU and peak memory (with `--server-pid`), then
//! the database's CPU (with `--database-pid`).

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
    /// `RecordService/GetRecord` by the record's controller.
    GetRecord,
    /// `RecordService/GetRecord` by another agency, under an agreement.
    GetSharedRecord,
    /// `RecordService/CreateRecord`.
    CreateRecord,
    /// `RecordService/UpdateRecord`.
    UpdateRecord,
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
    /// call over mutual TLS as its agencies, with staff tokens.
    #[arg(long)]
    dev_dir: Option<std::path::PathBuf>,
    /// The server's process id (on this machine): report its CPU time per
    /// measured call and its peak resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A PostgreSQL server's main process id (on this machine): report the
    /// CPU time of its processes (sessions and background work) per
    /// measured call.
    #[arg(long)]
    database_pid: Option<u32>,
    /// The scenario's name in the machine-readable line.
    #[arg(long, default_value = "load")]
    label: String,
}

/// The agency whose records are read and written.
const PROVIDER: usize = 0;
/// The agency that reads them under an agreement.
const CONSUMER: usize = 1;

/// One agency's way in: its connections and how its staff are named.
#[derive(Debug, Clone)]
struct Agency {
    code: &'static str,
    channels: Vec<Channel>,
    /// Development mode names callers by metadata; a secure server needs
    /// a token per principal and roles (made from the development setup).
    dev_dir: Option<std::path::PathBuf>,
}

/// A staff member of an agency making calls.
#[derive(Debug, Clone)]
struct Staff {
    agency: Agency,
    principal: &'static str,
    roles: &'static str,
    /// The bearer token, on a secure server.
    token: Option<String>,
}

impl Agency {
    fn staff(&self, principal: &'static str, roles: &'static str) -> anyhow::Result<Staff> {
        let token = match &self.dev_dir {
            None => None,
            Some(dir) => {
                let roles: Vec<String> = roles.split(',').map(str::to_owned).collect();
                Some(accord::dev::setup::token(
                    dir, self.code, principal, &roles, 60,
                )?)
            }
        };
        Ok(Staff {
            agency: self.clone(),
            principal,
            roles,
            token,
        })
    }
}

impl Staff {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        let m = r.metadata_mut();
        let pairs = match &self.token {
            None => vec![
                ("x-accord-agency", self.agency.code.to_owned()),
                ("x-accord-principal", self.principal.to_owned()),
                ("x-accord-roles", self.roles.to_owned()),
            ],
            Some(token) => vec![("authorization", format!("Bearer {token}"))],
        };
        for (k, v) in pairs {
            if let Ok(v) = v.parse() {
                m.insert(k, v);
            }
        }
        r
    }

    fn channel(&self, n: u64) -> Channel {
        let channels = &self.agency.channels;
        channels[(n as usize) % channels.len()].clone()
    }

    fn records(&self, n: u64) -> pb::record_service_client::RecordServiceClient<Channel> {
        pb::record_service_client::RecordServiceClient::new(self.channel(n))
    }
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

const CLASS: &str = "recordClasses/social_care.referral";

fn referral(subject: &str, reason: &str) -> pb::Record {
    pb::Record {
        subject: subject.to_owned(),
        record_class: CLASS.into(),
        fields: HashMap::from([
            (
                "referral_date".to_owned(),
                pb::FieldValue {
                    kind: Some(pb::field_value::Kind::DateValue("2026-11-20".into())),
                },
            ),
            ("referral_source".to_owned(), code("school")),
            ("service".to_owned(), code("children")),
            ("reason".to_owned(), text(reason)),
        ]),
        ..Default::default()
    }
}

/// What the calls work on.
#[derive(Debug)]
struct Ground {
    /// The social worker who writes and reads the provider's records.
    worker: Staff,
    /// The clinician who reads them under an agreement.
    clinician: Staff,
    subject: String,
    record: String,
}

/// Registers the agencies (in development mode), a subject and a record;
/// for shared reads, an agreement both agencies approve.
async fn set_up(agencies: &[Agency], call: Call) -> anyhow::Result<Ground> {
    let secure = agencies[PROVIDER].dev_dir.is_some();
    if !secure {
        let operator = agencies[PROVIDER].staff("ops-1", "operator")?;
        let operator = Staff {
            agency: Agency {
                code: "accord-ops",
                ..agencies[PROVIDER].clone()
            },
            ..operator
        };
        for (agency, kind) in [
            (&agencies[PROVIDER], pb::AgencyKind::Council),
            (&agencies[CONSUMER], pb::AgencyKind::Health),
        ] {
            let created = pb::agency_service_client::AgencyServiceClient::new(operator.channel(0))
                .create_agency(operator.request(pb::CreateAgencyRequest {
                    agency: Some(pb::Agency {
                        code: agency.code.into(),
                        display_name: format!("Load test {}", agency.code),
                        kind: kind as i32,
                        ..Default::default()
                    }),
                }))
                .await;
            if let Err(e) = created
                && e.code() != tonic::Code::AlreadyExists
            {
                return Err(e).context("cannot register a load test agency");
            }
        }
    }
    let worker = agencies[PROVIDER].staff("load-1", "social_worker")?;
    let clinician = agencies[CONSUMER].staff("load-2", "clinician")?;
    let reference = format!("LOAD-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let subject = pb::subject_service_client::SubjectServiceClient::new(worker.channel(0))
        .create_subject(worker.request(pb::CreateSubjectRequest {
            purpose: pb::Purpose::DirectCare as i32,
            // A fresh subject for every run, however alike the last one.
            create_despite_match: true,
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
        }))
        .await
        .context("cannot register the load test subject")?
        .into_inner()
        .subject
        .map(|s| s.name)
        .unwrap_or_default();
    let record = create(&worker, 0, &subject)
        .await
        .context("cannot create the load test record")?
        .name;
    if call == Call::GetSharedRecord {
        agree(agencies).await?;
    }
    Ok(Ground {
        worker,
        clinician,
        subject,
        record,
    })
}

/// The provider shares its referrals' reason with the consumer's
/// clinicians for safeguarding; both IG leads approve.
async fn agree(agencies: &[Agency]) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    };
    let (provider, consumer) = (&agencies[PROVIDER], &agencies[CONSUMER]);
    let terms = pb::Agreement {
        title: "Load test: referrals for safeguarding".into(),
        provider: format!("agencies/{}", provider.code),
        consumers: vec![pb::ConsumerTerms {
            agency: format!("agencies/{}", consumer.code),
            grants: vec![pb::FieldGrant {
                role: "clinician".into(),
                record_class: CLASS.into(),
                fields: vec!["reason".into(), "service".into()],
            }],
        }],
        record_classes: vec![CLASS.into()],
        purposes: vec![pb::Purpose::Safeguarding as i32],
        lawful_bases: vec![pb::LawfulBasis {
            code: pb::LawfulBasisCode::UkGdprArt61E as i32,
            reference: "Children Act 2004 s11".into(),
        }],
        consent: pb::ConsentRequirement::NotRequired as i32,
        valid_from: Some(at(now - chrono::Duration::days(1))),
        valid_until: Some(at(now + chrono::Duration::days(30))),
        review_date: (now + chrono::Duration::days(180))
            .format("%Y-%m-%d")
            .to_string(),
        ..Default::default()
    };
    let lead = provider.staff("ig-1", "ig_lead")?;
    let client =
        |s: &Staff| pb::agreement_service_client::AgreementServiceClient::new(s.channel(0));
    let draft = client(&lead)
        .create_agreement(lead.request(pb::CreateAgreementRequest {
            agreement: Some(terms),
        }))
        .await
        .context("cannot propose the load test agreement")?
        .into_inner()
        .agreement
        .unwrap_or_default();
    for agency in [provider, consumer] {
        let lead = agency.staff("ig-1", "ig_lead")?;
        client(&lead)
            .approve_agreement(lead.request(pb::ApproveAgreementRequest {
                name: draft.name.clone(),
                version: draft.version,
                etag: String::new(),
            }))
            .await
            .context("cannot approve the load test agreement")?;
    }
    Ok(())
}

async fn create(worker: &Staff, n: u64, subject: &str) -> Result<pb::Record, tonic::Status> {
    worker
        .records(n)
        .create_record(worker.request(pb::CreateRecordRequest {
            purpose: pb::Purpose::Safeguarding as i32,
            record: Some(referral(subject, "load test")),
        }))
        .await
        .map(|r| r.into_inner().record.unwrap_or_default())
}

async fn read(staff: &Staff, n: u64, record: &str) -> Result<(), tonic::Status> {
    staff
        .records(n)
        .get_record(staff.request(pb::GetRecordRequest {
            name: record.to_owned(),
            purpose: pb::Purpose::Safeguarding as i32,
            ..Default::default()
        }))
        .await
        .map(|_| ())
}

/// One stream's calls, and what it keeps between them.
struct Stream {
    call: Call,
    n: u64,
    ground: Arc<Ground>,
    /// The record this stream updates, with its current etag.
    own: Option<(String, String)>,
}

impl Stream {
    async fn call(&mut self) -> Result<(), tonic::Status> {
        let g = &self.ground;
        match self.call {
            Call::Health => {
                tonic_health::pb::health_client::HealthClient::new(g.worker.channel(self.n))
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .map(|_| ())
            }
            Call::GetRecord => read(&g.worker, self.n, &g.record).await,
            Call::GetSharedRecord => read(&g.clinician, self.n, &g.record).await,
            Call::CreateRecord => create(&g.worker, self.n, &g.subject).await.map(|_| ()),
            Call::UpdateRecord => {
                let (name, etag) = match self.own.take() {
                    Some(own) => own,
                    None => {
                        let r = create(&g.worker, self.n, &g.subject).await?;
                        (r.name, r.etag)
                    }
                };
                let mut record = referral(&g.subject, &format!("update {}", self.n));
                record.name = name;
                record.etag = etag;
                let updated = g
                    .worker
                    .records(self.n)
                    .update_record(g.worker.request(pb::UpdateRecordRequest {
                        record: Some(record),
                        purpose: pb::Purpose::Safeguarding as i32,
                    }))
                    .await?
                    .into_inner()
                    .record
                    .unwrap_or_default();
                self.own = Some((updated.name, updated.etag));
                Ok(())
            }
        }
    }
}

/// Runs `total` calls over `streams` concurrent streams; returns each
/// call's latency and the wall time.
async fn run(
    call: Call,
    ground: &Arc<Ground>,
    streams: u64,
    total: u64,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..streams {
        let issued = issued.clone();
        let mut stream = Stream {
            call,
            n,
            ground: ground.clone(),
            own: None,
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                match stream.call().await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(status) => failures.push(status),
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failures = Vec::new();
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures.extend(f);
    }
    let wall = started.elapsed();
    if let Some(first) = failures.first() {
        bail!("{} calls failed, the first with {first:?}", failures.len());
    }
    latencies.sort_unstable();
    Ok((latencies, wall))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Clock ticks per second in `/proc/PID/stat` (Linux's `USER_HZ`, fixed
/// at 100 for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// A process's parent and its CPU time so far (user and system, all
/// threads), from its `/proc/PID/stat` line.
fn stat(pid: u32) -> anyhow::Result<(u32, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) start
    // with the state; the parent is the 2nd, utime and stime the 12th and
    // 13th.
    let after = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .context("an unreadable /proc stat line")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<&str> {
        fields.get(i).copied().context("a short /proc stat line")
    };
    let ticks = field(11)?.parse::<f64>()? + field(12)?.parse::<f64>()?;
    Ok((
        field(1)?.parse()?,
        Duration::from_secs_f64(ticks / TICKS_PER_SECOND),
    ))
}

/// A process's CPU time so far.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    Ok(stat(pid)?.1)
}

/// The CPU time so far of `parent`'s child processes (a PostgreSQL
/// server's sessions and background processes), those alive now.
fn children_cpu_time(parent: u32) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A process may end between the listing and the read.
        if let Ok((ppid, cpu)) = stat(pid)
            && ppid == parent
        {
            total += cpu;
        }
    }
    Ok(total)
}

/// A process's peak resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmHWM in /proc status")?
        .parse()?;
    Ok(kib / 1024.0)
}

async fn connect(
    address: std::net::SocketAddr,
    connections: u64,
    dev_dir: Option<&std::path::Path>,
    agency: &str,
) -> anyhow::Result<Vec<Channel>> {
    let tls = match dev_dir {
        None => None,
        Some(dir) => {
            use tonic::transport::{Certificate, ClientTlsConfig, Identity as Pem};
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .with_context(|| format!("cannot read {name} in {}", dir.display()))
            };
            Some(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read("ca.pem")?))
                    .identity(Pem::from_pem(
                        read(&format!("{agency}.pem"))?,
                        read(&format!("{agency}.key"))?,
                    ))
                    .domain_name("localhost"),
            )
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let mut endpoint = Channel::from_shared(format!("{scheme}://{address}"))?;
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
    Ok(channels)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.address.ip().is_loopback() {
        bail!("the load generator only targets loopback addresses");
    }
    // A development setup has a council and a health trust, each with its
    // certificate; in development mode any codes do.
    let codes = match &args.dev_dir {
        Some(_) => ["leeds-cc", "leeds-th"],
        None => ["load-cc", "load-th"],
    };
    let mut agencies = Vec::new();
    for code in codes {
        let dev_dir = args.dev_dir.clone();
        let channels = connect(args.address, args.connections, dev_dir.as_deref(), code).await?;
        agencies.push(Agency {
            code,
            channels,
            dev_dir,
        });
    }
    let ground = Arc::new(set_up(&agencies, args.call).await?);
    run(args.call, &ground, args.streams, args.requests / 10).await?;
    let client = std::process::id();
    let cpu_before = args.server_pid.map(cpu_time).transpose()?;
    let (db_before, client_before) = (
        args.database_pid.map(children_cpu_time).transpose()?,
        cpu_time(client)?,
    );
    let (latencies, wall) = run(args.call, &ground, args.streams, args.requests).await?;
    let cpu_after = args.server_pid.map(cpu_time).transpose()?;
    let (db_after, client_after) = (
        args.database_pid.map(children_cpu_time).transpose()?,
        cpu_time(client)?,
    );
    let per_call = |before: Duration, after: Duration| {
        after.saturating_sub(before).as_secs_f64() * 1e6 / latencies.len().max(1) as f64
    };
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    let (p50, p99) = (
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "{:?}: {} calls, {} streams over {} connections: {rate:.0} calls/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
        args.call,
        latencies.len(),
        args.streams,
        args.connections.max(1),
    );
    let mut line = format!(
        "scenario={} call={} calls_per_s={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2}",
        args.label,
        args.call
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
    );
    line.push_str(&format!(
        " client_cpu_us_per_call={:.0}",
        per_call(client_before, client_after)
    ));
    if let (Some(pid), Some(before), Some(after)) = (args.server_pid, cpu_before, cpu_after) {
        line.push_str(&format!(
            " cpu_us_per_call={:.0} peak_rss_mb={:.0}",
            per_call(before, after),
            peak_rss_mib(pid)?
        ));
    }
    if let (Some(before), Some(after)) = (db_before, db_after) {
        line.push_str(&format!(
            " db_cpu_us_per_call={:.0}",
            per_call(before, after)
        ));
    }
    println!("{line}");
    Ok(())
}
