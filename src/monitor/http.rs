//! The plaintext HTTP listener for what cannot speak mutual TLS: the
//! Prometheus scrape (`/metrics`), liveness (`/livez`: the process
//! answers) and readiness (`/readyz`: the gRPC health status, which the
//! store probe sets). It serves nothing about any citizen or call; bind it
//! to loopback or a private network (`metrics_listen`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::{
    CHECKPOINT_AGE, COMMITS_WAITING, POOL_CONNECTIONS, POOL_MAX, READY, TREE_SIZE, UNCHECKPOINTED,
};
use crate::clock::SharedClock;
use crate::store::{SqlStore, Store};

/// Whether the service is ready, as its health says; shared with the
/// health reporter.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Probe {
    handle: PrometheusHandle,
    store: SqlStore,
    clock: SharedClock,
    ready: Readiness,
}

/// Serves the listener until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    store: SqlStore,
    clock: SharedClock,
    ready: Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "alive\n" }))
        .route("/readyz", get(readyz))
        .with_state(Probe {
            handle,
            store,
            clock,
            ready,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(probe): State<Probe>) -> impl IntoResponse {
    if probe.ready.get() {
        (StatusCode::OK, "SERVING\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n")
    }
}

/// The scrape: the gauges read from the store now, then everything.
async fn metrics(State(probe): State<Probe>) -> impl IntoResponse {
    let store = &probe.store;
    gauge!(READY).set(if probe.ready.get() { 1.0 } else { 0.0 });
    let pool = store.pool_state();
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
    gauge!(POOL_CONNECTIONS, "state" => "in_use")
        .set(f64::from(pool.size.saturating_sub(pool.idle)));
    gauge!(POOL_MAX).set(f64::from(pool.max));
    gauge!(COMMITS_WAITING).set(store.commits_waiting() as f64);
    // A database that cannot answer leaves these as they were last read;
    // readiness says why.
    if let Ok(head) = store.tree_head().await {
        gauge!(TREE_SIZE).set(head.size as f64);
        if let Ok(latest) = store.latest_checkpoint().await {
            let (covered, age) = match latest {
                Some(c) => (
                    c.head.size,
                    (probe.clock.now() - c.time).as_seconds_f64().max(0.0),
                ),
                None if head.size == 0 => (0, 0.0),
                None => (0, f64::INFINITY),
            };
            gauge!(UNCHECKPOINTED).set(head.size.saturating_sub(covered) as f64);
            gauge!(CHECKPOINT_AGE).set(age);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probe.handle.render(),
    )
}

/// How long `accord probe` waits for an answer.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Asks the listener at `address` for `path` (plain HTTP/1.1): its
/// answer's first line, if the status is 200; otherwise why not.
pub async fn probe(address: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !path.starts_with('/')
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        anyhow::bail!("the path must start with / and hold no spaces");
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        // A probe's answer is a few bytes; more is not read.
        stream.take(4096).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(PROBE_WAIT, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("{address} did not answer within {PROBE_WAIT:?}"))?
        .map_err(|e| anyhow::anyhow!("cannot ask {address}: {e}"))?;
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(body)
    } else {
        anyhow::bail!("not ready: {status} {body}")
    }
}
