//! Token issuers' public keys as token verification uses them.
//!
//! An issuer's keys are registered in one of three ways:
//!
//! - a JWKS document held in the registry;
//! - a JWKS file on the server, read the first time it is needed and kept;
//!   [`IssuerKeys::reload`] (on SIGHUP) reads every kept file again, and a
//!   file that no longer holds a usable JWKS document is refused with one
//!   log line while the keys read before stay in use, so a half-written
//!   file never locks staff out;
//! - the issuer's OpenID Connect discovery URL, as identity providers that
//!   rotate their keys without notice publish them (Microsoft Entra ID,
//!   NHS CIS2, Keycloak): the discovery document is fetched over HTTPS
//!   (its `issuer` must be the registered one), then the JWKS document at
//!   its `jwks_uri`. The keys are refreshed every `refresh` in the
//!   background ([`IssuerKeys::refresh`]) and at once when a token names a
//!   key not held — at most once per `unknown_key_interval` per issuer, so
//!   a flood of made-up key ids cannot hammer the provider. While the
//!   provider cannot be reached the last good keys stay in use, for at most
//!   `max_staleness` after they were fetched; then the issuer's tokens are
//!   refused (`TOKEN_ISSUER_KEYS_UNUSABLE`) until a fetch succeeds. When
//!   each issuer's keys were last fetched is a metric.
//!
//! Every key keeps its pinned algorithm: a discovered key without `alg` is
//! pinned to its key type's (RSA: RS256, EC P-256: ES256, OKP Ed25519:
//! EdDSA), and keys for encryption or for other algorithms are left out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::cache::digest;
use super::jwt::TokenError;
use crate::domain::credential::{JwksSource, check_discovery_url, check_jwks};

/// An issuer's keys, and a digest of the document they were read from
/// (what a verified token is remembered under).
#[derive(Debug)]
pub struct Keys {
    pub set: JwkSet,
    pub digest: [u8; 32],
}

impl Keys {
    /// The keys of a JWKS document, checked as at registration.
    fn parse(document: &str) -> Result<Self, TokenError> {
        check_jwks(document).map_err(|e| TokenError::Keys(e.to_string()))?;
        let set = serde_json::from_str(document).map_err(|e| TokenError::Keys(e.to_string()))?;
        Ok(Self {
            set,
            digest: digest([document.as_bytes()]),
        })
    }

    /// The keys of the JWKS file at `path`.
    fn read(path: &str) -> Result<Self, TokenError> {
        let document = std::fs::read_to_string(path)
            .map_err(|e| TokenError::Keys(format!("the key file cannot be read: {e}")))?;
        Self::parse(&document)
    }
}

/// How discovered keys are fetched and kept.
#[derive(Debug, Clone)]
pub struct Fetching {
    /// The CAs (PEM bundle) trusted for the providers' HTTPS; the
    /// platform's trust store when none.
    pub ca_file: Option<std::path::PathBuf>,
    /// How often held keys are fetched again.
    pub refresh: Duration,
    /// The shortest time between two fetches for one issuer when tokens
    /// name keys not held.
    pub unknown_key_interval: Duration,
    /// How long after their last successful fetch keys are still used.
    pub max_staleness: Duration,
    /// How long one HTTPS request may take.
    pub timeout: Duration,
}

impl Default for Fetching {
    fn default() -> Self {
        Self {
            ca_file: None,
            refresh: Duration::from_secs(300),
            unknown_key_interval: Duration::from_secs(30),
            max_staleness: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The largest discovery or JWKS document accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// One discovered issuer's keys.
#[derive(Debug, Default)]
struct Remote {
    state: Mutex<RemoteState>,
    /// Held while fetching: one fetch per issuer at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct RemoteState {
    /// The `iss` the discovery document must name.
    issuer: String,
    keys: Option<Arc<Keys>>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last started.
    attempted: Option<Instant>,
    /// Why the last fetch failed, if it did.
    failure: Option<String>,
}

/// The keys of every issuer, as this process holds them.
#[derive(Debug)]
pub struct IssuerKeys {
    /// JWKS files read, by path.
    files: Mutex<HashMap<String, Arc<Keys>>>,
    /// Discovered issuers, by discovery URL.
    remotes: Mutex<HashMap<String, Arc<Remote>>>,
    fetching: Fetching,
    http: reqwest::Client,
}

/// Locks `m`, whatever a panicking holder left.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTPS-only client for identity providers (redirects, if followed,
/// HTTPS too), trusting the CAs of `ca_file` or the platform's, each
/// request bounded by `timeout`.
pub fn https_client(
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
    follow_redirects: bool,
) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot choose TLS versions")?;
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in super::tls::read_certificates(path)? {
                roots.add(cert).with_context(|| {
                    format!("{} holds a certificate that is not a CA", path.display())
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .context("cannot read the platform's trusted CAs")?
                .with_no_client_auth()
        }
    };
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(3)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .https_only(true)
        .redirect(redirects)
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .context("cannot build the HTTPS client for identity providers")
}

impl IssuerKeys {
    /// Keys fetched and kept as `fetching` says.
    pub fn new(fetching: Fetching) -> anyhow::Result<Self> {
        let http = https_client(fetching.ca_file.as_deref(), fetching.timeout, true)?;
        Ok(Self {
            files: Mutex::default(),
            remotes: Mutex::default(),
            fetching,
            http,
        })
    }

    /// The keys `source`, the source of `issuer`'s keys, names, with the
    /// key `kid` if the issuer has it.
    pub async fn get(
        &self,
        source: &JwksSource,
        issuer: &str,
        kid: &str,
    ) -> Result<Arc<Keys>, TokenError> {
        match source {
            JwksSource::Document(d) => Keys::parse(d).map(Arc::new),
            JwksSource::Path(path) => {
                if let Some(keys) = lock(&self.files).get(path) {
                    return Ok(keys.clone());
                }
                let keys = Arc::new(Keys::read(path)?);
                Ok(lock(&self.files)
                    .entry(path.clone())
                    .or_insert(keys)
                    .clone())
            }
            JwksSource::Discovery(url) => self.discovered(url, issuer, kid).await,
        }
    }

    /// The remote entry for `url`, made on first use.
    fn remote(&self, url: &str, issuer: &str) -> Arc<Remote> {
        lock(&self.remotes)
            .entry(url.to_owned())
            .or_insert_with(|| {
                Arc::new(Remote {
                    state: Mutex::new(RemoteState {
                        issuer: issuer.to_owned(),
                        ..RemoteState::default()
                    }),
                    fetching: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// The keys discovered at `url`: as held when they hold `kid` (or
    /// when they may not be fetched again yet), else fetched first.
    async fn discovered(
        &self,
        url: &str,
        issuer: &str,
        kid: &str,
    ) -> Result<Arc<Keys>, TokenError> {
        let remote = self.remote(url, issuer);
        if self.needs_fetch(&remote, kid) {
            let _fetching = remote.fetching.lock().await;
            // Another call may have fetched while this one waited.
            if self.needs_fetch(&remote, kid) {
                self.fetch_into(url, &remote).await;
            }
        }
        self.usable(&remote)
    }

    /// Whether `remote`'s keys must be fetched for a token naming `kid`
    /// (none held, too old to use, or without that key), and may be now.
    fn needs_fetch(&self, remote: &Remote, kid: &str) -> bool {
        let state = lock(&remote.state);
        let stale = state
            .fetched
            .is_none_or(|at| at.elapsed() > self.fetching.max_staleness);
        let missing = stale
            || state
                .keys
                .as_ref()
                .is_none_or(|k| k.set.find(kid).is_none());
        let may = state
            .attempted
            .is_none_or(|at| at.elapsed() >= self.fetching.unknown_key_interval);
        missing && may
    }

    /// The keys of `remote` if they may be used.
    fn usable(&self, remote: &Remote) -> Result<Arc<Keys>, TokenError> {
        let state = lock(&remote.state);
        match (&state.keys, state.fetched) {
            (Some(keys), Some(at)) if at.elapsed() <= self.fetching.max_staleness => {
                Ok(keys.clone())
            }
            (Some(_), Some(at)) => Err(TokenError::Keys(format!(
                "the issuer's keys were last fetched {} s ago, longer than allowed, and cannot be fetched now",
                at.elapsed().as_secs()
            ))),
            _ => Err(TokenError::Keys(format!(
                "the issuer's keys cannot be fetched: {}",
                state.failure.as_deref().unwrap_or("not fetched yet")
            ))),
        }
    }

    /// Fetches `remote`'s keys from `url` and keeps them, or keeps the
    /// failure beside the keys held.
    async fn fetch_into(&self, url: &str, remote: &Remote) {
        let issuer = {
            let mut state = lock(&remote.state);
            state.attempted = Some(Instant::now());
            state.issuer.clone()
        };
        let fetched = self.fetch(url, &issuer).await;
        let mut state = lock(&remote.state);
        match fetched {
            Ok(keys) => {
                let changed = state.keys.as_ref().is_none_or(|k| k.digest != keys.digest);
                if changed {
                    tracing::info!(
                        issuer,
                        keys = keys.set.keys.len(),
                        "fetched a token issuer's keys"
                    );
                }
                state.keys = Some(Arc::new(keys));
                state.fetched = Some(Instant::now());
                state.failure = None;
                crate::monitor::issuer_keys_fetched(&issuer, true);
            }
            Err(e) => {
                let e = format!("{e:#}");
                tracing::warn!(
                    issuer,
                    error = e,
                    "cannot fetch a token issuer's keys; the keys held stay in use"
                );
                state.failure = Some(e);
                crate::monitor::issuer_keys_fetched(&issuer, false);
            }
        }
    }

    /// The keys published through the discovery document at `url`, which
    /// must name `issuer`.
    async fn fetch(&self, url: &str, issuer: &str) -> anyhow::Result<Keys> {
        let discovery: Value = serde_json::from_slice(&self.download(url).await?)
            .with_context(|| format!("the discovery document {url} is not JSON"))?;
        let named = discovery.get("issuer").and_then(Value::as_str);
        if named != Some(issuer) {
            anyhow::bail!(
                "the discovery document {url} names the issuer {named:?}, not {issuer:?}"
            );
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .with_context(|| format!("the discovery document {url} has no jwks_uri"))?;
        check_discovery_url(jwks_uri).map_err(|e| anyhow::anyhow!("jwks_uri {jwks_uri:?} {e}"))?;
        let document = self.download(jwks_uri).await?;
        let document =
            signing_keys(&document).with_context(|| format!("the key set at {jwks_uri}"))?;
        Keys::parse(&document).map_err(|e| anyhow::anyhow!("the key set at {jwks_uri}: {e}"))
    }

    /// The body of a successful GET of `url`, at most
    /// [`MAX_DOCUMENT_BYTES`].
    async fn download(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("cannot fetch {url}"))?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("{url} answered {status}");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("cannot read {url}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                anyhow::bail!("{url} answered more than {MAX_DOCUMENT_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Fetches the keys of every discovered issuer again (each at most
    /// once at a time); what cannot be fetched keeps its keys.
    pub async fn refresh(&self) {
        let remotes: Vec<(String, Arc<Remote>)> = lock(&self.remotes)
            .iter()
            .map(|(url, r)| (url.clone(), r.clone()))
            .collect();
        for (url, remote) in remotes {
            let _fetching = remote.fetching.lock().await;
            self.fetch_into(&url, &remote).await;
        }
    }

    /// How often [`Self::refresh`] should run.
    pub fn refresh_interval(&self) -> Duration {
        self.fetching.refresh
    }

    /// Reads every JWKS file again. A file that cannot be read or holds no
    /// usable keys is refused with one log line and its keys as read
    /// before stay in use. Returns how many files were refused.
    pub fn reload(&self) -> usize {
        let paths: Vec<String> = lock(&self.files).keys().cloned().collect();
        let mut refused = 0;
        for path in paths {
            match Keys::read(&path) {
                Ok(keys) => {
                    let new = keys.digest;
                    let old = lock(&self.files).insert(path.clone(), Arc::new(keys));
                    let changed = old.is_none_or(|old| old.digest != new);
                    tracing::info!(path, changed, "reloaded a token issuer's key file");
                }
                Err(e) => {
                    refused += 1;
                    tracing::error!(
                        path,
                        error = %e,
                        "refused a token issuer's key file on reload; the keys read before stay in use"
                    );
                }
            }
        }
        refused
    }
}

/// The signing keys of a provider's JWKS document, each pinned to one
/// algorithm: a key without `alg` gets its key type's; keys for
/// encryption, for other algorithms and symmetric keys are left out.
fn signing_keys(document: &[u8]) -> anyhow::Result<String> {
    let value: Value = serde_json::from_slice(document).context("is not JSON")?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .context("has no \"keys\" array")?;
    let text = |key: &Value, name: &str| key.get(name).and_then(Value::as_str).map(str::to_owned);
    let kept: Vec<Value> = keys
        .iter()
        .filter(|key| text(key, "use").is_none_or(|u| u == "sig"))
        .filter_map(|key| {
            let inferred = match (text(key, "kty").as_deref(), text(key, "crv").as_deref()) {
                (Some("RSA"), _) => "RS256",
                (Some("EC"), Some("P-256")) => "ES256",
                (Some("OKP"), Some("Ed25519")) => "EdDSA",
                _ => return None,
            };
            match text(key, "alg") {
                Some(alg) if alg != inferred => None,
                Some(_) => Some(key.clone()),
                None => {
                    let mut key = key.clone();
                    key.as_object_mut()?
                        .insert("alg".to_owned(), Value::String(inferred.to_owned()));
                    Some(key)
                }
            }
        })
        .collect();
    if kept.is_empty() {
        anyhow::bail!("holds no RS256, ES256 or EdDSA signing key");
    }
    Ok(serde_json::json!({ "keys": kept }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    #[test]
    fn a_key_file_is_kept_and_a_bad_reload_keeps_the_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, KEYS).unwrap();
        let keys = IssuerKeys::new(Fetching::default()).unwrap();
        let source = JwksSource::Path(path.display().to_string());
        let get = |source: &JwksSource| {
            futures_util::FutureExt::now_or_never(keys.get(source, "iss", "k1")).unwrap()
        };
        let first = get(&source).unwrap();
        assert!(first.set.find("k1").is_some());

        // Changed on disk: still the kept keys until a reload.
        let rotated = KEYS.replace("\"k1\"", "\"k2\"");
        std::fs::write(&path, &rotated).unwrap();
        assert!(get(&source).unwrap().set.find("k1").is_some());
        assert_eq!(keys.reload(), 0);
        assert!(get(&source).unwrap().set.find("k2").is_some());

        // A bad file is refused; the keys read before stay.
        std::fs::write(&path, "{\"keys\": [").unwrap();
        assert_eq!(keys.reload(), 1);
        assert!(get(&source).unwrap().set.find("k2").is_some());

        // A file never read successfully is an error, not kept.
        let missing = JwksSource::Path(dir.path().join("none.json").display().to_string());
        assert!(matches!(get(&missing), Err(TokenError::Keys(_))));
        assert_eq!(keys.reload(), 1);
    }
}

#[cfg(test)]
mod signing_key_tests {
    use super::*;

    #[test]
    fn provider_keys_are_pinned_or_left_out() {
        let document = br#"{"keys":[
            {"kty":"RSA","kid":"no-alg","n":"x","e":"AQAB","use":"sig"},
            {"kty":"RSA","kid":"enc","n":"x","e":"AQAB","use":"enc"},
            {"kty":"RSA","kid":"rs384","alg":"RS384","n":"x","e":"AQAB"},
            {"kty":"EC","kid":"p256","crv":"P-256","x":"x","y":"y"},
            {"kty":"EC","kid":"p384","crv":"P-384","x":"x","y":"y"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"}
        ]}"#;
        let kept: Value = serde_json::from_str(&signing_keys(document).unwrap()).unwrap();
        let kept: Vec<(&str, &str)> = kept["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kid"].as_str().unwrap(), k["alg"].as_str().unwrap()))
            .collect();
        assert_eq!(kept, vec![("no-alg", "RS256"), ("p256", "ES256")]);
        assert!(signing_keys(br#"{"keys":[{"kty":"oct","kid":"h","k":"x"}]}"#).is_err());
        assert!(signing_keys(b"[]").is_err());
    }
}
