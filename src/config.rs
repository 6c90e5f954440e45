//! Layered configuration: defaults < TOML file < `ACCORD_*` environment
//! variables < command-line flags. No file is needed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::matching::{MatchWeights, Thresholds};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The service configuration.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// Address of the plaintext HTTP listener serving Prometheus metrics
    /// (`/metrics`), liveness (`/livez`) and readiness (`/readyz`). It
    /// tells nothing about citizens, but keep it on loopback or a private
    /// network.
    pub metrics_listen: SocketAddr,
    /// Directory for the embedded SQLite database (created if missing).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite
    /// database (or an explicit `sqlite://…` URL).
    pub database_url: Option<String>,
    /// Development mode: callers named by request metadata, loopback only.
    pub insecure: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `accord=debug,info` (`RUST_LOG` wins).
    pub log_level: String,
    /// Where to export traces over OTLP/gRPC (an OpenTelemetry collector,
    /// e.g. `http://127.0.0.1:4317`); none: traces are not exported.
    pub otlp_endpoint: Option<String>,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The most bytes of request metadata (headers) a call may carry,
    /// counted as HTTP/2 does; beyond it the call is RESOURCE_EXHAUSTED.
    pub max_header_bytes: u32,
    /// The most request metadata entries a call may carry.
    pub max_headers: u32,
    /// The most connections open at once from one peer address; more are
    /// closed at once.
    pub max_connections_per_peer: u32,
    /// The most TLS handshakes in progress at once; a connection beyond is
    /// closed at once (a handshake has 10 s to complete).
    pub max_tls_handshakes: u32,
    /// How long shutdown waits for calls in flight, in seconds.
    pub shutdown_grace_seconds: u64,
    /// How long a call waits for a database connection before failing
    /// UNAVAILABLE (and how long the health probe may take), in
    /// milliseconds.
    pub store_wait_ms: u64,
    /// How often the health probe checks the database, in milliseconds.
    pub health_probe_interval_ms: u64,
    /// Each agency's rate limit unless the registry gives it its own:
    /// calls a second (0: none) and the burst allowed, per process.
    pub agency_calls_per_second: u32,
    pub agency_burst: u32,
    /// Each client certificate's rate limit: calls a second (0: none) and
    /// the burst allowed, per process.
    pub certificate_calls_per_second: u32,
    pub certificate_burst: u32,
    /// The most connections the PostgreSQL pool opens (per process).
    pub database_max_connections: u32,
    /// How long opening the first database connection may take, in
    /// milliseconds.
    pub database_connect_timeout_ms: u64,
    /// The ledger's name in its signed checkpoints, e.g.
    /// `accord.example.gov.uk/ledger`; also the signing key's name.
    pub ledger_origin: String,
    /// File holding the checkpoint signing key (note private key format);
    /// when absent, `ledger-signing.key` in the data directory, generated
    /// on first start.
    pub ledger_key_file: Option<PathBuf>,
    /// Files holding keys that sign each checkpoint beside the current one
    /// during a key changeover (note private key format); see
    /// `docs/ledger.md`.
    pub ledger_outgoing_key_files: Vec<PathBuf>,
    /// Verifier keys (`name+id+base64`) of retired signing keys, published
    /// so that the checkpoints they signed still verify.
    pub ledger_retired_verifier_keys: Vec<String>,
    /// How often a checkpoint is signed when the ledger has grown, in
    /// milliseconds.
    pub checkpoint_interval_ms: u64,
    /// This many refusals of one staff member within
    /// `alert_window_seconds` raise an alert to their agency and to the
    /// controller of the data refused.
    pub alert_refusals: u32,
    /// The window of `alert_refusals`, in seconds.
    pub alert_window_seconds: u32,
    /// How long an event stream (`WatchEvents`) goes without sending
    /// anything before it sends a heartbeat, in milliseconds; also the
    /// longest a stream waits before it looks for events again without
    /// being woken.
    pub event_heartbeat_ms: u64,
    /// A review (of data received under a ground that ended) left
    /// unacknowledged for this many days raises an alert to the IG leads of
    /// the agency asked and of the data's controller.
    pub review_overdue_days: u32,
    /// The weights of person matching, per field and level of agreement
    /// (log-likelihood ratios in bits; see `docs/matching.md`).
    pub match_weights: MatchWeights,
    /// Where a match score means the same person, and where a possible
    /// match for review.
    pub match_thresholds: Thresholds,
    /// The server's certificate chain (PEM). Required unless `insecure`.
    pub tls_cert_file: Option<PathBuf>,
    /// The server certificate's private key (PEM). Required unless
    /// `insecure`.
    pub tls_key_file: Option<PathBuf>,
    /// The certificate authorities (PEM bundle) that issue agencies' and
    /// operators' client certificates. Required unless `insecure`.
    pub tls_client_ca_file: Option<PathBuf>,
    /// The audience (`aud`) staff tokens must name: this service.
    pub token_audience: String,
    /// Allowance for clock skew on tokens' `exp` and `nbf`, in seconds
    /// (at most 300).
    pub token_leeway_seconds: u32,
    /// The CAs (PEM bundle) trusted for token issuers' HTTPS (OpenID
    /// Connect discovery and JWKS); the platform's trust store when absent.
    pub token_issuer_ca_file: Option<PathBuf>,
    /// How often discovered issuers' keys are fetched again, in seconds.
    pub token_issuer_refresh_seconds: u64,
    /// The shortest time between two fetches of one issuer's keys when
    /// tokens name keys not held, in seconds.
    pub token_issuer_unknown_key_interval_seconds: u64,
    /// How long after their last successful fetch an issuer's keys are
    /// still used while the provider cannot be reached, in seconds.
    pub token_issuer_max_staleness_seconds: u64,
    /// The web console (`accord console`): the address it serves HTTPS on.
    pub console_listen: SocketAddr,
    /// The console's address as browsers reach it (its callback URL is
    /// this plus `/sign-in/callback`); `https://localhost:{port}` when
    /// absent.
    pub console_public_url: Option<String>,
    /// The console's HTTPS certificate chain and key (PEM).
    pub console_tls_cert_file: Option<PathBuf>,
    pub console_tls_key_file: Option<PathBuf>,
    /// Accord's gRPC address as the console calls it (`https://…`).
    pub console_api_url: String,
    /// The CA (PEM) of Accord's server certificate.
    pub console_api_ca_file: Option<PathBuf>,
    /// Where the console keeps the last ledger checkpoint it verified, so
    /// that a restart goes on checking from there (none: memory only).
    pub console_state_file: Option<PathBuf>,
    /// The code of the agency the console acts for (its client
    /// certificate's), e.g. `leeds-cc`: how the console knows which
    /// agreements wait for its IG leads.
    pub console_agency: Option<String>,
    /// The client certificate and key (PEM) of the agency the console
    /// acts for.
    pub console_client_cert_file: Option<PathBuf>,
    pub console_client_key_file: Option<PathBuf>,
    /// The `iss` of the agency's identity provider, where staff sign in
    /// (OpenID Connect discovery from there).
    pub console_oidc_issuer: Option<String>,
    /// The console's client id at the identity provider, and a file
    /// holding its client secret.
    pub console_oidc_client_id: String,
    pub console_oidc_client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides `openid` (e.g. Entra ID's
    /// `api://accord/.default` for a token for Accord).
    pub console_oidc_scopes: Vec<String>,
    /// The RFC 8707 resource indicator asked for, where the provider issues
    /// access tokens per resource (an absolute URI, usually Accord's
    /// `token_audience`).
    pub console_oidc_resource: Option<String>,
    /// The ledger's verifier keys as the operator publishes them (`accord
    /// ledger public-key --all`): the console's pages check proofs against
    /// these in the browser.
    pub console_verifier_keys: Vec<String>,
    /// A console session ends after this many minutes without a request,
    /// and this many hours after sign-in (and always when the staff
    /// member's token expires).
    pub console_session_idle_minutes: u32,
    pub console_session_hours: u32,
    /// The name recorded as the agency of operator calls.
    pub operator_name: String,
    /// Operator client certificates: SHA-256 fingerprints of the
    /// certificate or of its public key (SPKI), hex or base64.
    pub operator_certificates: Vec<String>,
    /// The `iss` of the operator staff's token issuer, if any.
    pub operator_token_issuer: Option<String>,
    /// The operator issuer's public keys (a JWKS file).
    pub operator_jwks_file: Option<PathBuf>,
    /// The claim naming the operator staff member.
    pub operator_subject_claim: String,
    /// The claim listing the operator staff member's roles.
    pub operator_roles_claim: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            data_dir: dirs::data_local_dir()
                .map(|d| d.join("accord"))
                .unwrap_or_else(|| PathBuf::from("accord-data")),
            database_url: None,
            insecure: false,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            max_message_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_connections_per_peer: 64,
            max_tls_handshakes: 256,
            shutdown_grace_seconds: 30,
            store_wait_ms: 500,
            health_probe_interval_ms: 1000,
            agency_calls_per_second: 2000,
            agency_burst: 4000,
            certificate_calls_per_second: 1000,
            certificate_burst: 2000,
            database_max_connections: crate::store::DEFAULT_MAX_CONNECTIONS,
            database_connect_timeout_ms: 10_000,
            ledger_origin: "accord.local/ledger".to_owned(),
            ledger_key_file: None,
            ledger_outgoing_key_files: vec![],
            ledger_retired_verifier_keys: vec![],
            checkpoint_interval_ms: 1000,
            alert_refusals: 5,
            alert_window_seconds: 600,
            event_heartbeat_ms: 10_000,
            review_overdue_days: 14,
            match_weights: MatchWeights::default(),
            match_thresholds: Thresholds::default(),
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            token_audience: "accord".to_owned(),
            token_leeway_seconds: 60,
            console_listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            console_public_url: None,
            console_tls_cert_file: None,
            console_tls_key_file: None,
            console_api_url: "https://localhost:50051".to_owned(),
            console_api_ca_file: None,
            console_client_cert_file: None,
            console_client_key_file: None,
            console_oidc_issuer: None,
            console_agency: None,
            console_state_file: None,
            console_oidc_client_id: "accord-console".to_owned(),
            console_oidc_client_secret_file: None,
            console_oidc_scopes: vec!["profile".to_owned()],
            console_oidc_resource: None,
            console_verifier_keys: vec![],
            console_session_idle_minutes: 30,
            console_session_hours: 8,
            token_issuer_ca_file: None,
            token_issuer_refresh_seconds: 300,
            token_issuer_unknown_key_interval_seconds: 30,
            token_issuer_max_staleness_seconds: 86_400,
            operator_name: "operator".to_owned(),
            operator_certificates: vec![],
            operator_token_issuer: None,
            operator_jwks_file: None,
            operator_subject_claim: "sub".to_owned(),
            operator_roles_claim: "roles".to_owned(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("insecure", &self.insecure)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("max_tls_handshakes", &self.max_tls_handshakes)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("store_wait_ms", &self.store_wait_ms)
            .field("health_probe_interval_ms", &self.health_probe_interval_ms)
            .field("agency_calls_per_second", &self.agency_calls_per_second)
            .field("agency_burst", &self.agency_burst)
            .field(
                "certificate_calls_per_second",
                &self.certificate_calls_per_second,
            )
            .field("certificate_burst", &self.certificate_burst)
            .field("database_max_connections", &self.database_max_connections)
            .field(
                "database_connect_timeout_ms",
                &self.database_connect_timeout_ms,
            )
            .field("ledger_origin", &self.ledger_origin)
            .field("ledger_key_file", &self.ledger_key_file)
            .field("ledger_outgoing_key_files", &self.ledger_outgoing_key_files)
            .field(
                "ledger_retired_verifier_keys",
                &self.ledger_retired_verifier_keys,
            )
            .field("checkpoint_interval_ms", &self.checkpoint_interval_ms)
            .field("alert_refusals", &self.alert_refusals)
            .field("alert_window_seconds", &self.alert_window_seconds)
            .field("event_heartbeat_ms", &self.event_heartbeat_ms)
            .field("review_overdue_days", &self.review_overdue_days)
            .field("match_weights", &self.match_weights)
            .field("match_thresholds", &self.match_thresholds)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("tls_client_ca_file", &self.tls_client_ca_file)
            .field("token_audience", &self.token_audience)
            .field("token_leeway_seconds", &self.token_leeway_seconds)
            .field("token_issuer_ca_file", &self.token_issuer_ca_file)
            .field(
                "token_issuer_refresh_seconds",
                &self.token_issuer_refresh_seconds,
            )
            .field(
                "token_issuer_unknown_key_interval_seconds",
                &self.token_issuer_unknown_key_interval_seconds,
            )
            .field(
                "token_issuer_max_staleness_seconds",
                &self.token_issuer_max_staleness_seconds,
            )
            .field("console_listen", &self.console_listen)
            .field("console_public_url", &self.console_public_url)
            .field("console_tls_cert_file", &self.console_tls_cert_file)
            .field("console_tls_key_file", &self.console_tls_key_file)
            .field("console_api_url", &self.console_api_url)
            .field("console_api_ca_file", &self.console_api_ca_file)
            .field("console_client_cert_file", &self.console_client_cert_file)
            .field("console_client_key_file", &self.console_client_key_file)
            .field("console_oidc_issuer", &self.console_oidc_issuer)
            .field("console_agency", &self.console_agency)
            .field("console_state_file", &self.console_state_file)
            .field("console_oidc_client_id", &self.console_oidc_client_id)
            .field(
                "console_oidc_client_secret_file",
                &self.console_oidc_client_secret_file,
            )
            .field("console_oidc_scopes", &self.console_oidc_scopes)
            .field("console_oidc_resource", &self.console_oidc_resource)
            .field("console_verifier_keys", &self.console_verifier_keys)
            .field(
                "console_session_idle_minutes",
                &self.console_session_idle_minutes,
            )
            .field("console_session_hours", &self.console_session_hours)
            .field("operator_name", &self.operator_name)
            .field("operator_certificates", &self.operator_certificates)
            .field("operator_token_issuer", &self.operator_token_issuer)
            .field("operator_jwks_file", &self.operator_jwks_file)
            .field("operator_subject_claim", &self.operator_subject_claim)
            .field("operator_roles_claim", &self.operator_roles_claim)
            .finish()
    }
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// The prefix of the environment variables that set Accord's settings
/// (`ACCORD_LISTEN` sets `listen`); `ACCORD_CONFIG` names the file.
const ENV_PREFIX: &str = "ACCORD_";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("bad configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if given), then the
    /// `ACCORD_*` environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let known = Self::keys();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .filter(move |key| known.iter().any(|k| key == k.as_str())),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string().replace('\n', " ")))?;
        if let Some(endpoint) = &config.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "otlp_endpoint must be an http:// or https:// URL, not {endpoint:?}"
            )));
        }
        if !(10..=3_600_000).contains(&config.checkpoint_interval_ms) {
            return Err(ConfigError::Invalid(format!(
                "checkpoint_interval_ms must be between 10 and 3600000, not {}",
                config.checkpoint_interval_ms
            )));
        }
        if !(1024..=1024 * 1024).contains(&config.max_header_bytes) || config.max_headers == 0 {
            return Err(ConfigError::Invalid(format!(
                "max_header_bytes must be between 1024 and 1048576 (not {}) and max_headers at least 1",
                config.max_header_bytes
            )));
        }
        for (key, rate, burst) in [
            (
                "agency",
                config.agency_calls_per_second,
                config.agency_burst,
            ),
            (
                "certificate",
                config.certificate_calls_per_second,
                config.certificate_burst,
            ),
        ] {
            if rate > 0 && burst < rate {
                return Err(ConfigError::Invalid(format!(
                    "{key}_burst must be at least {key}_calls_per_second ({burst} < {rate})"
                )));
            }
        }
        if !(1..=1000).contains(&config.database_max_connections)
            || !(100..=600_000).contains(&config.database_connect_timeout_ms)
        {
            return Err(ConfigError::Invalid(format!(
                "database_max_connections must be between 1 and 1000 (not {}) and \
                 database_connect_timeout_ms between 100 and 600000 (not {})",
                config.database_max_connections, config.database_connect_timeout_ms
            )));
        }
        if config.max_connections_per_peer == 0 || config.max_tls_handshakes == 0 {
            return Err(ConfigError::Invalid(
                "max_connections_per_peer and max_tls_handshakes must be at least 1".to_owned(),
            ));
        }
        for (key, value) in [
            ("store_wait_ms", config.store_wait_ms),
            ("health_probe_interval_ms", config.health_probe_interval_ms),
            ("event_heartbeat_ms", config.event_heartbeat_ms),
        ] {
            if !(10..=60_000).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be between 10 and 60000, not {value}"
                )));
            }
        }
        if config.alert_refusals < 2 || config.alert_window_seconds == 0 {
            return Err(ConfigError::Invalid(
                "alert_refusals must be at least 2 and alert_window_seconds at least 1".to_owned(),
            ));
        }
        if !(1..=365).contains(&config.review_overdue_days) {
            return Err(ConfigError::Invalid(format!(
                "review_overdue_days must be between 1 and 365, not {}",
                config.review_overdue_days
            )));
        }
        config
            .match_weights
            .check()
            .and_then(|()| config.match_thresholds.check())
            .map_err(ConfigError::Invalid)?;
        if config.token_leeway_seconds > 300 {
            return Err(ConfigError::Invalid(format!(
                "token_leeway_seconds must be at most 300, not {}",
                config.token_leeway_seconds
            )));
        }
        if !(10..=86_400).contains(&config.token_issuer_refresh_seconds)
            || !(1..=3_600).contains(&config.token_issuer_unknown_key_interval_seconds)
            || config.token_issuer_max_staleness_seconds < config.token_issuer_refresh_seconds
        {
            return Err(ConfigError::Invalid(format!(
                "token_issuer_refresh_seconds must be between 10 and 86400 (not {}), \
                 token_issuer_unknown_key_interval_seconds between 1 and 3600 (not {}), and \
                 token_issuer_max_staleness_seconds at least the refresh (not {})",
                config.token_issuer_refresh_seconds,
                config.token_issuer_unknown_key_interval_seconds,
                config.token_issuer_max_staleness_seconds
            )));
        }
        if !(1..=1440).contains(&config.console_session_idle_minutes)
            || !(1..=24).contains(&config.console_session_hours)
        {
            return Err(ConfigError::Invalid(format!(
                "console_session_idle_minutes must be between 1 and 1440 (not {}) and \
                 console_session_hours between 1 and 24 (not {})",
                config.console_session_idle_minutes, config.console_session_hours
            )));
        }
        if config.operator_token_issuer.is_some() != config.operator_jwks_file.is_some() {
            return Err(ConfigError::Invalid(
                "operator_token_issuer and operator_jwks_file go together".to_owned(),
            ));
        }
        if !signed_note::is_key_name_valid(&config.ledger_origin) {
            return Err(ConfigError::Invalid(format!(
                "ledger_origin {:?} must be non-empty, without spaces or '+'",
                config.ledger_origin
            )));
        }
        Ok(config)
    }

    /// The names of every setting, as the file and the environment spell
    /// them.
    fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }

    /// The `ACCORD_*` environment variables that name no setting: Accord
    /// ignores them (a wrapper's own variables, or the service-link
    /// variables Kubernetes makes for a Service named `accord`, such as
    /// `ACCORD_PORT`), and says so once.
    pub fn unknown_environment() -> Vec<String> {
        let known = Self::keys();
        let mut unknown: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| {
                let name = name.into_string().ok()?;
                let key = name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
                let ours = key == "config" || known.contains(&key);
                (!ours).then_some(name)
            })
            .collect();
        unknown.sort();
        unknown
    }

    /// Where the checkpoint signing key is kept.
    pub fn ledger_key_path(&self) -> PathBuf {
        self.ledger_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("ledger-signing.key"))
    }

    /// The database URL to use: the configured one, or the SQLite file in
    /// the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::store::sqlite_url(&self.data_dir))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "accord.toml",
                "listen = \"127.0.0.1:7000\"\nlog_level = \"debug\"\ninsecure = true",
            )?;
            jail.set_env("ACCORD_LOG_LEVEL", "warn");
            jail.set_env("ACCORD_LISTEN", "127.0.0.1:7001");
            let overrides = Overrides {
                listen: Some("127.0.0.1:7002".parse().unwrap()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("accord.toml")), &overrides).unwrap();
            assert_eq!(c.listen.port(), 7002);
            assert_eq!(c.log_level, "warn");
            assert!(c.insecure);
            Ok(())
        });
    }

    #[test]
    fn defaults_need_no_file_and_typos_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen.port(), 50051);
            assert!(!c.insecure);
            assert_eq!(c.checkpoint_interval_ms, 1000);
            jail.create_file("zero.toml", "checkpoint_interval_ms = 0")?;
            let err =
                Config::load(Some(Path::new("zero.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("checkpoint_interval_ms"), "{err}");
            jail.create_file("leeway.toml", "token_leeway_seconds = 301")?;
            let err =
                Config::load(Some(Path::new("leeway.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("token_leeway_seconds"), "{err}");
            assert_eq!(c.store_wait_ms, 500);
            jail.create_file("wait.toml", "store_wait_ms = 0")?;
            let err =
                Config::load(Some(Path::new("wait.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("store_wait_ms"), "{err}");
            jail.create_file("ops.toml", "operator_token_issuer = \"https://ops\"")?;
            let err = Config::load(Some(Path::new("ops.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("operator_jwks_file"), "{err}");
            jail.create_file("bad.toml", "lisen = \"x\"")?;
            let err = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn match_settings_are_partial_tables_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "match.toml",
                "[match_thresholds]\nsame_person = 30.0\n\n[match_weights.uprn]\nagrees = 9.5\ndisagrees = -2.0\n",
            )?;
            let c = Config::load(Some(Path::new("match.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.match_thresholds.same_person, 30.0);
            assert_eq!(c.match_thresholds.possible, Thresholds::default().possible);
            assert_eq!(c.match_weights.uprn.agrees, 9.5);
            assert_eq!(
                c.match_weights.nhs_number,
                MatchWeights::default().nhs_number
            );
            jail.create_file("order.toml", "[match_thresholds]\npossible = 40.0\n")?;
            let err =
                Config::load(Some(Path::new("order.toml")), &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("match_thresholds.possible"),
                "{err}"
            );
            jail.create_file("typo.toml", "[match_weights.uprn]\nagree = 9.5\n")?;
            let err =
                Config::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("agree"), "{err}");
            jail.set_env("ACCORD_MATCH_THRESHOLDS", "{same_person=28.5}");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.match_thresholds.same_person, 28.5);
            Ok(())
        });
    }

    #[test]
    fn unrelated_accord_variables_are_ignored_and_named() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            // Kubernetes' service links for a Service named `accord`, and a
            // wrapper's own variable.
            jail.set_env("ACCORD_PORT", "tcp://10.0.0.7:50051");
            jail.set_env("ACCORD_SERVICE_HOST", "10.0.0.7");
            jail.set_env("ACCORD_CHECKOUT", "/src/accord");
            jail.set_env("ACCORD_LOG_LEVEL", "debug");
            jail.set_env("ACCORD_CONFIG", "ignored-here.toml");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.log_level, "debug", "a setting's variable still applies");
            assert_eq!(c.listen.port(), 50051);
            let unknown = Config::unknown_environment();
            assert_eq!(
                unknown,
                ["ACCORD_CHECKOUT", "ACCORD_PORT", "ACCORD_SERVICE_HOST"]
            );
            // A bad value for a real setting is still an error.
            jail.set_env("ACCORD_LISTEN", "nowhere");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("LISTEN"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_example_deployment_configuration_loads() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/accord.example.toml");
            let c = Config::load(Some(&example), &Overrides::default()).unwrap();
            assert!(!c.insecure);
            assert!(c.tls_client_ca_file.is_some());
            assert_eq!(c.operator_certificates.len(), 1);
            assert_eq!(c.ledger_origin, "accord.example.gov.uk/ledger");
            Ok(())
        });
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://accord:s3cret@db:5432/accord"),
            "postgres://accord:***@db:5432/accord"
        );
        assert_eq!(redact_url("postgres://db/accord"), "postgres://db/accord");
        let c = Config {
            database_url: Some("postgres://a:pw@h/d".into()),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("pw@"));
    }
}
