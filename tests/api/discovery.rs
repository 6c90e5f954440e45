//! A token issuer registered by its OpenID Connect discovery URL, against a
//! real HTTPS identity provider the test starts: keys fetched and used, a
//! key rotation mid-run picked up on the first token naming the new key,
//! made-up key ids not hammering the provider, the last good keys used
//! while the provider is down (for a bounded time), and a discovery
//! document naming another issuer refused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use accord::api::pb;
use accord::dev::{Issued, TokenSigner, Validity};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{TimeDelta, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::helpers::{AUDIENCE, Db, Pki, TestServer, http_get, reason, with_token};

/// What the identity provider serves, and how often it was asked.
struct Provider {
    /// The `iss` of its realm.
    issuer: String,
    jwks: Mutex<String>,
    down: AtomicBool,
    requests: AtomicUsize,
}

/// An HTTPS listener: TCP connections whose TLS handshake completed.
struct Tls {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for Tls {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Counts the request; 503 while the provider is down.
fn answer(p: &Provider, body: String) -> Response {
    p.requests.fetch_add(1, Ordering::SeqCst);
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    ([("content-type", "application/json")], body).into_response()
}

/// The discovery document: `iss` and the key set's address.
async fn discovery(State(p): State<Arc<Provider>>) -> Response {
    let body = serde_json::json!({
        "issuer": p.issuer,
        "jwks_uri": format!("{}/protocol/openid-connect/certs", p.issuer),
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    answer(&p, body.to_string())
}

async fn certs(State(p): State<Arc<Provider>>) -> Response {
    let jwks = p.jwks.lock().unwrap().clone();
    answer(&p, jwks)
}

/// Starts the provider on a free loopback port with a certificate of the
/// test CA; its realm's `iss` is `https://localhost:{port}/realms/leeds`,
/// and `/realms/imposter`'s discovery document claims that same issuer.
async fn start_provider(certificate: &Issued) -> Arc<Provider> {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let chain = vec![CertificateDer::from_pem_slice(certificate.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let provider = Arc::new(Provider {
        issuer: format!("https://localhost:{port}/realms/leeds"),
        jwks: Mutex::new(String::new()),
        down: AtomicBool::new(false),
        requests: AtomicUsize::new(0),
    });
    let router = axum::Router::new()
        .route(
            "/realms/leeds/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/realms/imposter/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/realms/leeds/protocol/openid-connect/certs", get(certs))
        .with_state(provider.clone());
    let listener = Tls {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, router).await });
    provider
}

/// A key set holding `signers`' keys.
fn key_set(signers: &[&TokenSigner]) -> String {
    let keys: Vec<serde_json::Value> = signers
        .iter()
        .flat_map(|s| {
            let set: serde_json::Value = serde_json::from_str(&s.jwks).unwrap();
            set["keys"].as_array().unwrap().clone()
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// The setting the test needs: made-up key ids may cause a fetch once a
/// second per issuer; keys are good for ten seconds without a fetch.
fn quick(config: &mut accord::config::Config) {
    config.token_issuer_unknown_key_interval_seconds = 1;
    config.token_issuer_refresh_seconds = 10;
    config.token_issuer_max_staleness_seconds = 10;
}

#[tokio::test]
async fn keys_are_discovered_rotated_rate_limited_and_kept_while_the_provider_is_down() {
    let pki = Pki::new();
    let provider = start_provider(&pki.ca.server(Validity::days_from_now(30)).unwrap()).await;
    let Some(s) = TestServer::start_secure_tuned(Db::Sqlite, &pki, quick).await else {
        return;
    };
    let first = TokenSigner::generate("leeds-key-1").unwrap();
    *provider.jwks.lock().unwrap() = key_set(&[&first]);
    let cert = pki.client("case-system.leeds-cc", None);

    // Registration takes an https:// discovery URL only.
    let refused = s
        .agencies()
        .add_token_issuer(tonic::Request::new(pb::AddTokenIssuerRequest {
            parent: "agencies/leeds-cc".into(),
            token_issuer: Some(pb::TokenIssuer {
                issuer: "http://idp.example".into(),
                jwks: Some(pb::token_issuer::Jwks::DiscoveryUrl(
                    "http://idp.example/.well-known/openid-configuration".into(),
                )),
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        crate::helpers::violations(&refused)[0].0,
        "token_issuer.discovery_url"
    );

    s.register_member(
        "leeds-cc",
        pb::AgencyKind::Council,
        pb::certificate_identity::Match::CertificateSha256(cert.fingerprint.to_string()),
        pb::TokenIssuer {
            issuer: provider.issuer.clone(),
            jwks: Some(pb::token_issuer::Jwks::DiscoveryUrl(format!(
                "{}/.well-known/openid-configuration",
                provider.issuer
            ))),
            ..Default::default()
        },
    )
    .await;
    let channel = s.tls_channel(Some(&cert)).await;
    let call = |token: String| {
        let channel = channel.clone();
        async move {
            pb::agency_service_client::AgencyServiceClient::new(channel)
                .list_agencies(with_token(pb::ListAgenciesRequest::default(), &token))
                .await
                .map(|_| ())
        }
    };
    let token = |signer: &TokenSigner| {
        signer
            .mint(
                &provider.issuer,
                AUDIENCE,
                "sw-1",
                &["social_worker".to_owned()],
                Utc::now(),
                TimeDelta::minutes(5),
            )
            .unwrap()
    };

    // First use: discovery document, then the key set.
    call(token(&first))
        .await
        .expect("a discovered key verifies");
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
    call(token(&first)).await.unwrap();
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "keys are kept");

    // The provider rotates: a new key is published and signs at once. The
    // first token naming it makes Accord fetch the keys again.
    let second = TokenSigner::generate("leeds-key-2").unwrap();
    *provider.jwks.lock().unwrap() = key_set(&[&second]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(token(&second))
        .await
        .expect("a rotated key is fetched when first named");
    assert_eq!(provider.requests.load(Ordering::SeqCst), 4);
    // The retired key is no longer accepted once the provider dropped it.
    let retired = call(token(&first)).await.unwrap_err();
    assert_eq!(reason(&retired), "TOKEN_UNKNOWN_KEY");

    // A flood of made-up key ids causes at most one fetch a second.
    let before = provider.requests.load(Ordering::SeqCst);
    for n in 0..20 {
        let forged = TokenSigner::generate(&format!("made-up-{n}")).unwrap();
        let refused = call(token(&forged)).await.unwrap_err();
        assert_eq!(reason(&refused), "TOKEN_UNKNOWN_KEY");
    }
    let fetched = provider.requests.load(Ordering::SeqCst) - before;
    assert!(fetched <= 4, "{fetched} requests for 20 made-up key ids");

    // The provider goes down: the keys held stay in use, and a fetch that
    // fails is counted.
    provider.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = TokenSigner::generate("leeds-key-3").unwrap();
    let refused = call(token(&unknown)).await.unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_UNKNOWN_KEY");
    call(token(&second))
        .await
        .expect("the last good keys are used while the provider is down");
    let (status, metrics) = http_get(s.metrics, "/metrics").await;
    assert_eq!(status, 200);
    let fetched_at = metrics
        .lines()
        .find(|l| {
            l.starts_with("accord_token_issuer_keys_fetched_timestamp_seconds")
                && l.contains(&provider.issuer)
        })
        .unwrap_or_else(|| panic!("no fetch time for the issuer: {metrics}"));
    let at: f64 = fetched_at.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (Utc::now().timestamp() as f64 - at).abs() < 60.0,
        "{fetched_at}"
    );
    assert!(
        metrics.contains("accord_token_issuer_key_fetches_total{outcome=\"failed\"}"),
        "{metrics}"
    );

    // Past the staleness bound the issuer's tokens are refused until a
    // fetch succeeds again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fresh = token(&second);
    let stale = call(fresh.clone()).await.unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Unauthenticated);
    assert_eq!(reason(&stale), "TOKEN_ISSUER_KEYS_UNUSABLE");
    provider.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(token(&second))
        .await
        .expect("keys are fetched again once the provider is back");

    // A discovery document naming another issuer is not believed.
    let imposter = provider.issuer.replace("/realms/leeds", "/realms/imposter");
    s.agencies()
        .add_token_issuer(tonic::Request::new(pb::AddTokenIssuerRequest {
            parent: "agencies/leeds-cc".into(),
            token_issuer: Some(pb::TokenIssuer {
                issuer: imposter.clone(),
                jwks: Some(pb::token_issuer::Jwks::DiscoveryUrl(format!(
                    "{imposter}/.well-known/openid-configuration"
                ))),
                ..Default::default()
            }),
        }))
        .await
        .unwrap();
    let claimed = second
        .mint(
            &imposter,
            AUDIENCE,
            "sw-1",
            &["social_worker".to_owned()],
            Utc::now(),
            TimeDelta::minutes(5),
        )
        .unwrap();
    let refused = call(claimed).await.unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_ISSUER_KEYS_UNUSABLE");
    assert!(
        refused.message().contains("names the issuer"),
        "{refused:?}"
    );
}
