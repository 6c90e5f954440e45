//! Operational metrics, through the `metrics` facade and rendered in the
//! Prometheus text format by `metrics-exporter-prometheus` (see
//! [`http`] for the listener that serves them with liveness and
//! readiness). Labels are few and bounded — the method, the gRPC code, the
//! reason code, the agency, the outcome — and never name a subject, a
//! principal, a record or anything a caller typed.

pub mod http;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ledger::{Entry, Outcome};

/// Calls answered, by method, gRPC code, reason code and agency.
pub const CALLS: &str = "accord_calls_total";
/// How long calls took, by method and gRPC code.
pub const CALL_SECONDS: &str = "accord_call_duration_seconds";
/// Requests being served (HTTP/2 streams: calls and event streams).
pub const IN_FLIGHT: &str = "accord_calls_in_flight";
/// Ledger entries committed, by outcome, reason code and agency: every
/// decision Accord made and recorded.
pub const DECISIONS: &str = "accord_decisions_total";
/// Emergency ("break the glass") accesses permitted, by agency.
pub const BREAK_GLASS: &str = "accord_break_glass_total";
/// Callers refused before any agency was established, by reason code.
pub const AUTH_FAILURES: &str = "accord_authentication_failures_total";
/// Ledger entries committed by this process.
pub const LEDGER_ENTRIES: &str = "accord_ledger_entries_total";
/// Entries per durable commit (group commit's batch).
pub const BATCH_ENTRIES: &str = "accord_ledger_batch_entries";
/// How long a batch took, from its transaction's start to its durable
/// commit.
pub const COMMIT_SECONDS: &str = "accord_ledger_commit_duration_seconds";
/// Commits the write path refused as a whole (the database failed).
pub const BATCH_FAILURES: &str = "accord_ledger_batch_failures_total";
/// The ledger's tree size, read when scraped.
pub const TREE_SIZE: &str = "accord_ledger_tree_size";
/// Seconds since the latest signed checkpoint, read when scraped.
pub const CHECKPOINT_AGE: &str = "accord_ledger_checkpoint_age_seconds";
/// Entries not yet covered by a signed checkpoint, read when scraped.
pub const UNCHECKPOINTED: &str = "accord_ledger_uncheckpointed_entries";
/// Database connections of the read pool, by state (`idle`, `in_use`).
pub const POOL_CONNECTIONS: &str = "accord_db_pool_connections";
/// The read pool's size limit.
pub const POOL_MAX: &str = "accord_db_pool_max_connections";
/// Commits waiting for the write path.
pub const COMMITS_WAITING: &str = "accord_ledger_commits_waiting";
/// Event streams (WatchEvents) open.
pub const EVENT_STREAMS: &str = "accord_event_streams";
/// Events delivered, by agency and kind.
pub const EVENTS_DELIVERED: &str = "accord_events_delivered_total";
/// How long after its change an event was delivered.
pub const EVENT_LAG_SECONDS: &str = "accord_event_delivery_lag_seconds";
/// Calls refused over a rate limit, by agency and scope.
pub const RATE_LIMITED: &str = "accord_rate_limited_total";
/// Reloads on SIGHUP, by outcome (`ok`, or `refused` when some new file
/// was refused and the old configuration kept).
pub const RELOADS: &str = "accord_reloads_total";
/// Fetches of discovered token issuers' keys, by outcome (`ok`,
/// `failed`).
pub const ISSUER_KEY_FETCHES: &str = "accord_token_issuer_key_fetches_total";
/// When each discovered token issuer's keys were last fetched
/// successfully (Unix time), by issuer: `time() -` it is their age.
pub const ISSUER_KEYS_FETCHED: &str = "accord_token_issuer_keys_fetched_timestamp_seconds";
/// Whether the service is ready (1) or not (0), as its health says.
pub const READY: &str = "accord_ready";

/// Latency buckets, in seconds: a millisecond to a minute.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Batch sizes, in entries (a batch holds at most 256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's recorder: installed as the global recorder the first time
/// it is asked for, and the handle that renders it. Every server in one
/// process (tests run several) shares it.
pub fn handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(BATCH_ENTRIES.to_owned()), BATCH_BUCKETS)
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        CALLS,
        "Calls answered, by method, gRPC code, reason code and agency."
    );
    describe_histogram!(
        CALL_SECONDS,
        Unit::Seconds,
        "How long calls took, by method and gRPC code."
    );
    describe_gauge!(
        IN_FLIGHT,
        "Requests being served (calls and event streams)."
    );
    describe_counter!(
        DECISIONS,
        "Ledger entries committed, by outcome, reason code and agency."
    );
    describe_counter!(
        BREAK_GLASS,
        "Emergency (break the glass) accesses permitted, by agency."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Callers refused before any agency was established, by reason code."
    );
    describe_counter!(
        RATE_LIMITED,
        "Calls refused over a rate limit, by agency and scope."
    );
    describe_counter!(
        RELOADS,
        "Reloads on SIGHUP, by outcome (ok, or refused: a new file was refused and the old configuration kept)."
    );
    describe_counter!(
        ISSUER_KEY_FETCHES,
        "Fetches of discovered token issuers' keys, by outcome (ok, failed)."
    );
    describe_gauge!(
        ISSUER_KEYS_FETCHED,
        Unit::Seconds,
        "When each discovered token issuer's keys were last fetched successfully (Unix time), by issuer."
    );
    describe_counter!(LEDGER_ENTRIES, "Ledger entries committed by this process.");
    describe_histogram!(BATCH_ENTRIES, "Ledger entries per durable commit.");
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "How long a batch took from its transaction's start to its durable commit."
    );
    describe_counter!(
        BATCH_FAILURES,
        "Batches of commits the database refused as a whole."
    );
    describe_gauge!(TREE_SIZE, "The ledger's tree size.");
    describe_gauge!(
        CHECKPOINT_AGE,
        Unit::Seconds,
        "Seconds since the latest signed checkpoint."
    );
    describe_gauge!(
        UNCHECKPOINTED,
        "Ledger entries not yet covered by a signed checkpoint."
    );
    describe_gauge!(POOL_CONNECTIONS, "Read pool connections, by state.");
    describe_gauge!(POOL_MAX, "The read pool's size limit.");
    describe_gauge!(COMMITS_WAITING, "Commits waiting for the write path.");
    describe_gauge!(EVENT_STREAMS, "Event streams (WatchEvents) open.");
    describe_counter!(EVENTS_DELIVERED, "Events delivered, by agency and kind.");
    describe_histogram!(
        EVENT_LAG_SECONDS,
        Unit::Seconds,
        "How long after its change an event was delivered."
    );
    describe_gauge!(
        READY,
        "Whether the service is ready to serve audited calls (1) or not (0)."
    );
}

/// The label of an agency: its code, or `none` before one was established.
fn agency_label(agency: &str) -> String {
    if agency.is_empty() {
        "none".to_owned()
    } else {
        agency.to_owned()
    }
}

/// Counts one call to `method` answered with `code`, and how long it took.
pub fn call(
    method: &'static str,
    code: tonic::Code,
    reason: &'static str,
    agency: &str,
    took: Duration,
) {
    let code = code_label(code);
    counter!(
        CALLS,
        "method" => method,
        "code" => code,
        "reason_code" => reason,
        "agency" => agency_label(agency)
    )
    .increment(1);
    histogram!(CALL_SECONDS, "method" => method, "code" => code).record(took.as_secs_f64());
}

/// The gRPC code's name, as Prometheus labels carry it.
pub fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A request began (`true`) or ended being served.
pub fn in_flight(began: bool) {
    let g = gauge!(IN_FLIGHT);
    if began {
        g.increment(1.0)
    } else {
        g.decrement(1.0)
    }
}

/// Counts a caller refused before any agency was established.
pub fn auth_failure(reason: &'static str) {
    counter!(AUTH_FAILURES, "reason_code" => reason).increment(1);
}

/// Counts the entries of a batch made durable, and how long it took.
pub fn batch(entries: &[&Entry], took: Duration) {
    counter!(LEDGER_ENTRIES).increment(entries.len() as u64);
    histogram!(BATCH_ENTRIES).record(entries.len() as f64);
    histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
    for entry in entries {
        let d = &entry.draft;
        counter!(
            DECISIONS,
            "outcome" => d.outcome.code(),
            "reason_code" => reason_label(&d.reason_code),
            "agency" => agency_label(&d.agency)
        )
        .increment(1);
        if !d.grounds.break_glass.is_empty() && d.outcome == Outcome::Permitted {
            counter!(BREAK_GLASS, "agency" => agency_label(&d.agency)).increment(1);
        }
    }
}

/// A reason code as a label: the codes Accord writes are fixed upper-case
/// words; anything else (none written so far) is `OTHER`, so that the
/// label stays bounded whatever is in the ledger.
fn reason_label(code: &str) -> String {
    if code.is_empty() {
        "NONE".to_owned()
    } else if code.len() <= 48 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        code.to_owned()
    } else {
        "OTHER".to_owned()
    }
}

/// Counts a call refused over a rate limit.
pub fn rate_limited(agency: &str, scope: &'static str) {
    counter!(RATE_LIMITED, "agency" => agency_label(agency), "scope" => scope).increment(1);
}

/// Counts a reload on SIGHUP: `ok` if every new file was taken.
pub fn reloaded(ok: bool) {
    let outcome = if ok { "ok" } else { "refused" };
    counter!(RELOADS, "outcome" => outcome).increment(1);
}

/// Counts a fetch of the keys of the discovered token issuer `issuer`
/// (its `iss`: issuers are few, registered by the operator), and on
/// success records when.
pub fn issuer_keys_fetched(issuer: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!(ISSUER_KEY_FETCHES, "outcome" => outcome).increment(1);
    if ok {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        gauge!(ISSUER_KEYS_FETCHED, "issuer" => issuer.to_owned()).set(now);
    }
}

/// Counts a batch the database refused as a whole.
pub fn batch_failed() {
    counter!(BATCH_FAILURES).increment(1);
}

/// Held while an event stream is open: counted in [`EVENT_STREAMS`].
#[derive(Debug)]
pub struct EventStream(());

impl EventStream {
    pub fn opened() -> Self {
        gauge!(EVENT_STREAMS).increment(1.0);
        Self(())
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        gauge!(EVENT_STREAMS).decrement(1.0);
    }
}

/// Counts an event delivered to `agency`, `lag` after its change.
pub fn event_delivered(agency: &str, kind: &'static str, lag: Duration) {
    counter!(EVENTS_DELIVERED, "agency" => agency_label(agency), "kind" => kind).increment(1);
    histogram!(EVENT_LAG_SECONDS).record(lag.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_labels_stay_bounded() {
        assert_eq!(reason_label(""), "NONE");
        assert_eq!(reason_label("NO_AGREEMENT"), "NO_AGREEMENT");
        assert_eq!(reason_label("subjects/123"), "OTHER");
        assert_eq!(reason_label(&"A".repeat(49)), "OTHER");
    }

    #[test]
    fn agencies_are_named_or_none() {
        assert_eq!(agency_label(""), "none");
        assert_eq!(agency_label("leeds-cc"), "leeds-cc");
    }
}
