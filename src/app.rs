//! Building and running the service: storage, services, the gRPC server
//! with health checking and reflection, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::api::backstop::{BackstopLayer, HeaderLimits};
use crate::api::inflight::InFlight;
use crate::api::pb::agency_service_server::AgencyServiceServer;
use crate::api::pb::agreement_service_server::AgreementServiceServer;
use crate::api::pb::audit_service_server::AuditServiceServer;
use crate::api::pb::catalog_service_server::CatalogServiceServer;
use crate::api::pb::consent_service_server::ConsentServiceServer;
use crate::api::pb::event_service_server::EventServiceServer;
use crate::api::pb::record_service_server::RecordServiceServer;
use crate::api::pb::subject_service_server::SubjectServiceServer;
use crate::api::{
    AgencyApi, AgreementApi, Api, AuditApi, CatalogApi, ConsentApi, EventApi, RecordApi,
    SubjectApi, pb,
};
use crate::auth::tls::{self, LiveTls, TlsFiles};
use crate::auth::{
    Fetching, InsecureHeaders, IssuerKeys, MutualTls, Operator, SharedAuthenticator, TokenSettings,
};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, redact_url};
use crate::domain::AgencyCode;
use crate::domain::agency::RateLimit;
use crate::domain::credential::{
    CertificateMatch, JwksSource, TokenIssuer, TokenIssuerId, check_issuer, check_jwks,
};
use crate::health::Health;
use crate::ledger::checkpoint::{CheckpointKeys, SigningKey};
use crate::matching::Matcher;
use crate::monitor::http::Readiness;
use crate::peers::{Admitted, Peers};
use crate::service::{AlertPolicy, Services};
use crate::store::{PoolSettings, SqlStore, connect_with};

/// How many times Accord's own limit on a request's metadata the HTTP/2
/// protocol limit is.
const HEADER_PROTOCOL_FACTOR: usize = 4;

/// How long shutdown waits after the last call for its response to leave.
const RESPONSE_SETTLE: Duration = Duration::from_millis(200);

/// A built service, bound to its port, ready to run.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    /// The HTTP listener for metrics, liveness and readiness.
    metrics_listener: TcpListener,
    metrics_address: SocketAddr,
    clock: SharedClock,
    store: SqlStore,
    services: Services,
    api: Api,
    max_message_bytes: usize,
    headers: HeaderLimits,
    /// Connection limits per peer address and on TLS handshakes.
    peers: Peers,
    grace: Duration,
    checkpoint_interval: Duration,
    /// How long a review may go unacknowledged before it is alerted.
    review_overdue: chrono::TimeDelta,
    /// How often the health probe runs, and how long it may take.
    probe_interval: Duration,
    store_wait: Duration,
    /// The TLS configuration; none in development mode.
    tls: Option<LiveTls>,
    /// The token issuers' keys; none in development mode.
    issuer_keys: Option<Arc<IssuerKeys>>,
}

/// The secure mode's settings, read and checked from the configuration
/// before anything is written: the TLS configuration, the client CAs, and
/// the operator's identities.
#[derive(Debug)]
pub struct SecureMode {
    tls: LiveTls,
    keys: Arc<IssuerKeys>,
    tokens: TokenSettings,
    operator: Operator,
}

impl SecureMode {
    /// Reads the TLS files and operator settings `config` names; fails
    /// with one line naming the first problem.
    pub fn load(config: &Config, clock: &SharedClock) -> anyhow::Result<Self> {
        let (Some(cert), Some(key), Some(cas)) = (
            &config.tls_cert_file,
            &config.tls_key_file,
            &config.tls_client_ca_file,
        ) else {
            bail!(
                "secure mode needs tls_cert_file, tls_key_file and tls_client_ca_file \
             (`accord dev init` makes a development set); for local development without \
             TLS, start with --insecure on a loopback address"
            );
        };
        let tls = LiveTls::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_cas: cas.clone(),
        })?;
        let keys = Arc::new(
            IssuerKeys::new(Fetching {
                ca_file: config.token_issuer_ca_file.clone(),
                refresh: Duration::from_secs(config.token_issuer_refresh_seconds),
                unknown_key_interval: Duration::from_secs(
                    config.token_issuer_unknown_key_interval_seconds,
                ),
                max_staleness: Duration::from_secs(config.token_issuer_max_staleness_seconds),
                timeout: ISSUER_FETCH_TIMEOUT,
            })
            .context("token_issuer_ca_file")?,
        );
        let operator_agency = AgencyCode::parse(&config.operator_name)
            .map_err(|e| anyhow::anyhow!("operator_name {e}"))?;
        let mut certificates = Vec::new();
        for value in &config.operator_certificates {
            // A digest alone does not say whether it is of the certificate or
            // of its key: it is matched as either.
            match (
                CertificateMatch::certificate(value),
                CertificateMatch::spki(value),
            ) {
                (Ok(c), Ok(s)) => certificates.extend([c, s]),
                (Err(e), _) | (_, Err(e)) => bail!("operator_certificates: {value:?} {e}"),
            }
        }
        let issuer = match (&config.operator_token_issuer, &config.operator_jwks_file) {
            (Some(iss), Some(path)) => {
                check_issuer(iss).map_err(|e| anyhow::anyhow!("operator_token_issuer {e}"))?;
                let document = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read operator_jwks_file {}", path.display())
                })?;
                check_jwks(&document)
                    .map_err(|e| anyhow::anyhow!("operator_jwks_file {}: {e}", path.display()))?;
                Some(TokenIssuer {
                    id: TokenIssuerId::generate(),
                    agency: operator_agency.clone(),
                    issuer: iss.clone(),
                    jwks: JwksSource::Path(path.display().to_string()),
                    subject_claim: config.operator_subject_claim.clone(),
                    roles_claim: config.operator_roles_claim.clone(),
                    create_time: clock.now(),
                })
            }
            _ => None,
        };
        if certificates.is_empty() {
            tracing::warn!(
                "no operator_certificates are configured: nobody can make operator calls"
            );
        }
        tracing::info!(
            audience = config.token_audience,
            operator_certificates = config.operator_certificates.len(),
            operator_issuer = config.operator_token_issuer.as_deref().unwrap_or("none"),
            "secure mode: mutual TLS for agencies' systems, signed tokens for their staff"
        );
        Ok(Self {
            tls,
            keys,
            tokens: TokenSettings {
                audience: config.token_audience.clone(),
                leeway_seconds: i64::from(config.token_leeway_seconds),
            },
            operator: Operator {
                agency: operator_agency,
                certificates,
                issuer,
            },
        })
    }

    /// The TLS configuration, the token issuers' keys and the
    /// authenticator that maps client certificates and tokens to callers
    /// through `store`'s registry.
    pub fn authenticator(
        self,
        store: &SqlStore,
        clock: SharedClock,
    ) -> (LiveTls, Arc<IssuerKeys>, MutualTls) {
        let authenticator = MutualTls::new(
            Arc::new(store.clone()),
            clock,
            self.tls.client_cas().clone(),
            self.tokens,
            self.operator,
            self.keys.clone(),
        );
        (self.tls, self.keys, authenticator)
    }
}

/// Whether a command may create the data it needs: only `serve`, `migrate`
/// and `dev init` make a database or a signing key; every other command
/// reads what is there, so that a mistyped `--data-dir` is an error, not a
/// new empty ledger with a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Create the database or key when there is none yet.
    CreateIfMissing,
    /// The database or key must exist already.
    MustExist,
}

/// Opens (and migrates) the configured database.
pub async fn open_store(config: &Config, setup: Setup) -> anyhow::Result<SqlStore> {
    let url = config.database_url();
    if config.database_url.is_none() {
        let file = config.data_dir.join(crate::store::SQLITE_FILE);
        if setup == Setup::MustExist && !file.is_file() {
            bail!(
                "no Accord database in {} (is the data directory right? only `accord serve` and `accord migrate` create one)",
                config.data_dir.display()
            );
        }
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let pool = PoolSettings {
        wait: Duration::from_millis(config.store_wait_ms),
        max_connections: config.database_max_connections,
        connect_timeout: Duration::from_millis(config.database_connect_timeout_ms),
    };
    connect_with(&url, true, pool)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&url)))
}

/// Generates the checkpoint signing key at `ledger_key_file` (or in the
/// data directory), readable by its owner only; refuses to overwrite one.
pub fn new_signing_key(config: &Config) -> anyhow::Result<SigningKey> {
    let path = config.ledger_key_path();
    if path.exists() {
        bail!(
            "{} exists already; a signing key is never overwritten",
            path.display()
        );
    }
    let (key, private) = SigningKey::generate(&config.ledger_origin)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    write_private(&path, &private)
        .with_context(|| format!("cannot write the ledger signing key {}", path.display()))?;
    tracing::info!(
        path = %path.display(),
        verifier_key = key.verifier_key(),
        "generated the ledger's checkpoint signing key"
    );
    Ok(key)
}

/// Reads the checkpoint signing key; when none is configured and none is in
/// the data directory yet, generates one there (readable by its owner
/// only) if `setup` allows it.
pub fn signing_key(config: &Config, setup: Setup) -> anyhow::Result<SigningKey> {
    let path = config.ledger_key_path();
    let key = if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the ledger signing key {}", path.display()))?;
        SigningKey::parse(&text)
            .with_context(|| format!("{} does not hold a signing key", path.display()))?
    } else if config.ledger_key_file.is_some() {
        bail!(
            "the ledger signing key file {} does not exist",
            path.display()
        );
    } else if setup == Setup::MustExist {
        bail!(
            "no signing key in {} (is the data directory right? only `accord serve` creates one)",
            path.parent().unwrap_or(&path).display()
        );
    } else {
        new_signing_key(config)?
    };
    if key.name() != config.ledger_origin {
        bail!(
            "the ledger signing key {} is named {:?} but ledger_origin is {:?}",
            path.display(),
            key.name(),
            config.ledger_origin
        );
    }
    Ok(key)
}

/// Every checkpoint key the configuration names: the current signing key
/// (as [`signing_key`] reads it), the outgoing keys of a changeover and
/// the retired verifier keys.
pub fn checkpoint_keys(config: &Config, setup: Setup) -> anyhow::Result<CheckpointKeys> {
    let current = signing_key(config, setup)?;
    let outgoing = config
        .ledger_outgoing_key_files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the outgoing signing key {}", path.display())
            })?;
            SigningKey::parse(&text)
                .with_context(|| format!("{} does not hold a signing key", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    CheckpointKeys::new(
        current,
        outgoing,
        config.ledger_retired_verifier_keys.clone(),
    )
    .context("ledger_outgoing_key_files and ledger_retired_verifier_keys must be other keys of ledger_origin")
}

/// Writes a new file that only its owner can read.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// How long one HTTPS request for a token issuer's keys may take.
const ISSUER_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches discovered token issuers' keys again, periodically.
async fn refresh_issuer_keys(keys: Arc<IssuerKeys>) {
    let mut ticks = tokio::time::interval(keys.refresh_interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing is held yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        keys.refresh().await;
    }
}

/// Publishes a checkpoint every `every` when the ledger has grown.
/// How long the review fan-out waits, without being woken, before it looks
/// at the events again.
const REVIEW_POLL: Duration = Duration::from_secs(5);

/// The least time between two passes of the review fan-out: under a steady
/// flow of commits, one pass takes every event committed since the last.
const REVIEW_PASS_GAP: Duration = Duration::from_millis(500);

/// Raises the reviews new events cause, woken when events commit (and at
/// least every [`REVIEW_POLL`]); notes agreements whose period ended and
/// alerts reviews unacknowledged for longer than `overdue`.
async fn follow_reviews(services: Services, overdue: chrono::TimeDelta) {
    let mut changes = services.event_changes();
    loop {
        tokio::time::sleep(REVIEW_PASS_GAP).await;
        changes.borrow_and_update();
        match services.raise_reviews().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                reviews = n,
                "raised reviews of data received under ended grounds"
            ),
            Err(e) => tracing::warn!(error = %e, "could not raise reviews"),
        }
        match services.note_expired_agreements().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(agreements = n, "noted agreements whose period ended"),
            Err(e) => tracing::warn!(error = %e, "could not note expired agreements"),
        }
        match services.alert_overdue_reviews(overdue).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reviews = n, "alerted reviews left unacknowledged"),
            Err(e) => tracing::warn!(error = %e, "could not alert overdue reviews"),
        }
        let _ = tokio::time::timeout(REVIEW_POLL, changes.changed()).await;
    }
}

async fn publish_checkpoints(services: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = services.publish_checkpoint().await {
            tracing::warn!(error = %e, "could not publish a checkpoint");
        }
    }
}

impl App {
    /// Builds the service from `config` with the system clock.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds the service from `config`, telling time with `clock`.
    pub async fn build_with_clock(config: &Config, clock: SharedClock) -> anyhow::Result<Self> {
        if config.insecure && !config.listen.ip().is_loopback() {
            bail!(
                "--insecure only listens on loopback addresses (127.0.0.1 or ::1), not {}",
                config.listen.ip()
            );
        }
        // Everything that can be checked is checked before anything is
        // written: a service that refuses to start leaves no database or
        // key behind.
        let secure = if config.insecure {
            None
        } else {
            Some(SecureMode::load(config, &clock)?)
        };
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another process using it?)",
                config.listen
            )
        })?;
        let metrics_listener = TcpListener::bind(config.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen for metrics on {} (is another process using it? set metrics_listen)",
                    config.metrics_listen
                )
            })?;
        let metrics_address = metrics_listener
            .local_addr()
            .context("cannot read the bound metrics address")?;
        crate::monitor::handle()
            .map_err(|e| anyhow::anyhow!("cannot start the metrics recorder: {e}"))?;
        let store = open_store(config, Setup::CreateIfMissing).await?;
        let keys = checkpoint_keys(config, Setup::CreateIfMissing)?;
        tracing::info!(
            verifier_key = keys.current().verifier_key(),
            published = keys.verifier_keys().len(),
            "checkpoints are signed with this key"
        );
        let (authenticator, tls, issuer_keys): (SharedAuthenticator, _, _) = match secure {
            None => {
                tracing::warn!(
                    "INSECURE DEVELOPMENT MODE: callers are whoever the x-accord-* metadata says; never use this with real data"
                );
                (Arc::new(InsecureHeaders), None, None)
            }
            Some(secure) => {
                let (tls, keys, authenticator) = secure.authenticator(&store, clock.clone());
                (Arc::new(authenticator), Some(tls), Some(keys))
            }
        };
        let services = Services::new(Arc::new(store.clone()), clock.clone(), Arc::new(keys))
            .with_alert_policy(AlertPolicy {
                refusals: config.alert_refusals,
                window: chrono::TimeDelta::seconds(i64::from(config.alert_window_seconds)),
                operator: AgencyCode::parse(&config.operator_name).ok(),
            })
            .with_event_heartbeat(Duration::from_millis(config.event_heartbeat_ms))
            .with_matcher(Matcher {
                weights: config.match_weights,
                thresholds: config.match_thresholds,
            })
            .with_rate_limits(
                RateLimit {
                    per_second: config.agency_calls_per_second,
                    burst: config.agency_burst,
                },
                RateLimit {
                    per_second: config.certificate_calls_per_second,
                    burst: config.certificate_burst,
                },
            );
        let loaded = services
            .load_starter_catalogue()
            .await
            .context("cannot load the starter catalogue")?;
        if loaded > 0 {
            tracing::info!(classes = loaded, "loaded the starter catalogue");
        }
        let agreements = services
            .load_policies()
            .await
            .context("cannot load the sharing agreements and consents")?;
        tracing::info!(agreements, "sharing agreements compiled");
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;
        Ok(Self {
            listener,
            address,
            metrics_listener,
            metrics_address,
            clock,
            store,
            services: services.clone(),
            api: Api::new(services, authenticator),
            max_message_bytes: config.max_message_bytes,
            peers: Peers::new(
                usize::try_from(config.max_connections_per_peer).unwrap_or(usize::MAX),
                usize::try_from(config.max_tls_handshakes).unwrap_or(usize::MAX),
            ),
            headers: HeaderLimits {
                max_bytes: usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX),
                max_count: usize::try_from(config.max_headers).unwrap_or(usize::MAX),
            },
            grace: Duration::from_secs(config.shutdown_grace_seconds),
            checkpoint_interval: Duration::from_millis(config.checkpoint_interval_ms),
            review_overdue: chrono::TimeDelta::days(i64::from(config.review_overdue_days)),
            probe_interval: Duration::from_millis(config.health_probe_interval_ms),
            store_wait: Duration::from_millis(config.store_wait_ms),
            tls,
            issuer_keys,
        })
    }

    /// The port the service is bound to.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address the service is bound to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address of the metrics, liveness and readiness listener.
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    /// The service's store (the fault tests cap its size through it).
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Serves until `shutdown` completes, then lets calls in flight finish
    /// (up to the grace period) and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let readiness = Readiness::default();
        let health = Health::new(reporter, readiness.clone());
        health.set(true).await;
        let handle = crate::monitor::handle()
            .map_err(|e| anyhow::anyhow!("cannot start the metrics recorder: {e}"))?;
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = tokio::spawn(crate::monitor::http::serve(
            self.metrics_listener,
            handle,
            self.store.clone(),
            self.clock.clone(),
            readiness,
            async move {
                let _ = metrics_stopped.await;
            },
        ));

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // So that reflection clients print BadRequest, ErrorInfo, RetryInfo… readably.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().context("cannot build reflection")?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .context("cannot build reflection")?;
        let max = self.max_message_bytes;
        let api = self.api;
        let in_flight = InFlight::default();
        let router = Server::builder()
            // HTTP/2 itself refuses a stream whose header list is over this
            // (431, or GOAWAY when far over): set well above Accord's own
            // limit, which is answered call by call with a gRPC status.
            .http2_max_header_list_size(
                u32::try_from(
                    self.headers
                        .max_bytes
                        .saturating_mul(HEADER_PROTOCOL_FACTOR),
                )
                .unwrap_or(u32::MAX),
            )
            .layer(in_flight.clone())
            .layer(BackstopLayer::new(api.clone(), self.headers))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                AgencyServiceServer::new(AgencyApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(
                AgreementServiceServer::new(AgreementApi(api.clone()))
                    .max_decoding_message_size(max),
            )
            .add_service(
                CatalogServiceServer::new(CatalogApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(
                ConsentServiceServer::new(ConsentApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(
                EventServiceServer::new(EventApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(
                SubjectServiceServer::new(SubjectApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(
                RecordServiceServer::new(RecordApi(api.clone())).max_decoding_message_size(max),
            )
            .add_service(AuditServiceServer::new(AuditApi(api)).max_decoding_message_size(max));
        let publisher = tokio::spawn(publish_checkpoints(
            self.services.clone(),
            self.checkpoint_interval,
        ));
        let reviewer = tokio::spawn(follow_reviews(self.services.clone(), self.review_overdue));
        let refresher = self
            .issuer_keys
            .clone()
            .map(|keys| tokio::spawn(refresh_issuer_keys(keys)));
        #[cfg(unix)]
        let reloader = hangup_signal().map(|hangups| {
            tokio::spawn(reload_on_hangup(
                hangups,
                self.tls.clone(),
                self.issuer_keys.clone(),
            ))
        });
        #[cfg(not(unix))]
        let reloader: Option<tokio::task::JoinHandle<()>> = None;
        let prober = tokio::spawn(health.clone().follow_store(
            self.store.clone(),
            self.probe_interval,
            self.store_wait,
        ));
        tracing::info!(
            address = %self.address,
            metrics = %self.metrics_address,
            "accord is serving"
        );
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let counted = in_flight.clone();
        let signal = async move {
            shutdown.await;
            // Load balancers watching health learn first that this server
            // is going away.
            prober.abort();
            let _ = prober.await;
            health.set(false).await;
            tracing::info!(
                calls = counted.count(),
                "shutting down: finishing calls in flight"
            );
            let _ = stopping_tx.send(());
        };
        // Small gRPC frames (headers, message, trailers) must leave at once:
        // without TCP_NODELAY, Nagle's algorithm and the peer's delayed ACK
        // hold a response back for ~40 ms.
        let serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match self.tls {
                Some(tls) => Box::pin(router.serve_with_incoming_shutdown(
                    tls::incoming(self.listener, tls, self.peers),
                    signal,
                )),
                None => {
                    let peers = self.peers;
                    let incoming =
                        TcpListenerStream::new(self.listener).filter_map(move |conn| match conn {
                            Err(e) => Some(Err(e)),
                            Ok(stream) => {
                                let peer = stream.peer_addr().ok()?;
                                let Some(slot) = peers.admit(peer.ip()) else {
                                    tracing::debug!(%peer, "too many connections from this address; closed");
                                    return None;
                                };
                                if let Err(e) = stream.set_nodelay(true) {
                                    tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
                                }
                                Some(Ok(Admitted::new(stream, slot)))
                            }
                        });
                    Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
                }
            };
        tokio::pin!(serve);
        // Once shutdown starts, new connections are refused; the server is
        // dropped when the calls in flight are done (plus a moment for their
        // responses to leave) or the grace period ends, whichever is first,
        // so that idle client connections cannot hold it open.
        let grace = self.grace;
        let drained = {
            let in_flight = in_flight.clone();
            async move {
                let _ = stopping_rx.await;
                if tokio::time::timeout(grace, in_flight.idle()).await.is_err() {
                    tracing::warn!(
                        calls = in_flight.count(),
                        "calls still in flight after the grace period; stopping anyway"
                    );
                }
                tokio::time::sleep(RESPONSE_SETTLE).await;
            }
        };
        let result = tokio::select! {
            r = &mut serve => r.context("the server failed"),
            () = drained => Ok(()),
        };
        publisher.abort();
        reviewer.abort();
        if let Some(refresher) = refresher {
            refresher.abort();
        }
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        let _ = metrics_stop.send(());
        match metrics.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics listener failed"),
            Ok(Ok(())) => {}
        }
        // The last entries are covered by a final checkpoint.
        if let Err(e) = self.services.publish_checkpoint().await {
            tracing::warn!(error = %e, "could not publish the final checkpoint");
        }
        self.store.close().await;
        tracing::info!(
            batches = self.store.batches_committed(),
            entries = self.store.entries_committed(),
            "stopped"
        );
        result
    }
}

/// The SIGHUP signals this process receives, if they can be listened
/// for (installed when called, as [`shutdown_signal`]'s handlers are).
#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: nothing can be reloaded");
            None
        }
    }
}

/// On each SIGHUP, reads the server certificate and key, the client CA
/// bundle and the token issuers' key files again. Each is replaced only if
/// its new files are usable; otherwise one line says why, and what was in
/// use stays.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    tls: Option<LiveTls>,
    issuer_keys: Option<Arc<IssuerKeys>>,
) {
    while hangups.recv().await.is_some() {
        let mut refused = 0;
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificate, key and client CAs"),
                Err(e) => {
                    refused += 1;
                    tracing::error!(
                        error = format!("{e:#}"),
                        "refused the new TLS files; the TLS configuration in use stays"
                    );
                }
            }
        }
        if let Some(keys) = &issuer_keys {
            refused += keys.reload();
        }
        crate::monitor::reloaded(refused == 0);
        tracing::info!(refused, "reload finished");
    }
}

/// Completes on SIGTERM or ctrl-c. The handlers are installed when this
/// is called, not when the future is first polled, so a signal sent as soon
/// as the server reports its address is not missed (nor does it kill the
/// process before the handler exists). Call it within the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
