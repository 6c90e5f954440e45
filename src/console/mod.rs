//! The web console for information-governance staff (`accord console`):
//! its own process, serving HTTPS, that acts as one agency's system. It
//! holds that agency's client certificate and calls Accord's gRPC API like
//! any other client, forwarding the signed-in staff member's token, so that
//! every page is a call Accord decides and records exactly as an API call:
//! the console reads no database and adds no authority of its own.
//!
//! Staff sign in with their agency's identity provider ([`oidc`]); sessions
//! are held on the server ([`session`]); every form carries the session's
//! CSRF token. Pages are rendered on the server with askama templates
//! (`console/templates/`) and styled with GOV.UK Frontend, built into the
//! binary from npm at build time ([`assets`]).

mod agreements;
mod alerts;
mod assets;
mod integrity;
mod ledger;
mod listener;
pub mod oidc;
mod people;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::config::Config;
use oidc::{Registration, SignIn};
use session::{Lifetimes, Sessions, Staff};

/// How long a call to Accord or the identity provider may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// What every request handler shares.
#[derive(Debug)]
struct Shared {
    sessions: Sessions,
    sign_in: SignIn,
    /// The channel to Accord, over the agency's client certificate.
    accord: Channel,
    /// The code of the agency the console acts for.
    agency: String,
    /// The last checkpoint the console verified.
    witness: integrity::Witness,
    /// The ledger's verifier keys as the operator publishes them: proofs
    /// are checked in the browser against these, never against a key the
    /// API hands out.
    verifier_keys: Vec<String>,
}

/// The console, bound and ready to serve.
#[derive(Debug)]
pub struct Console {
    listener: listener::TlsListener,
    address: SocketAddr,
    shared: Arc<Shared>,
}

/// Reads a file the configuration names, saying which setting named it.
fn read(setting: &str, path: Option<&std::path::PathBuf>) -> anyhow::Result<String> {
    let path = path.with_context(|| format!("the console needs {setting}"))?;
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {setting} {}", path.display()))
}

impl Console {
    /// Binds the console's listener and prepares its clients, as `config`
    /// says; fails with one line naming the first problem.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let tls = listener::server_config(
            config
                .console_tls_cert_file
                .as_deref()
                .context("the console needs console_tls_cert_file")?,
            config
                .console_tls_key_file
                .as_deref()
                .context("the console needs console_tls_key_file")?,
        )?;
        let api_url = config.console_api_url.clone();
        let host = url::Url::parse(&api_url)
            .ok()
            .filter(|u| u.scheme() == "https")
            .and_then(|u| u.host_str().map(str::to_owned))
            .with_context(|| format!("console_api_url must be an https:// URL, not {api_url:?}"))?;
        let client_tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(
                "console_api_ca_file",
                config.console_api_ca_file.as_ref(),
            )?))
            .identity(Identity::from_pem(
                read(
                    "console_client_cert_file",
                    config.console_client_cert_file.as_ref(),
                )?,
                read(
                    "console_client_key_file",
                    config.console_client_key_file.as_ref(),
                )?,
            ))
            .domain_name(host);
        let accord = Channel::from_shared(api_url.clone())
            .with_context(|| format!("console_api_url {api_url:?} is not a URL"))?
            .tls_config(client_tls)
            .context("cannot use the console's client certificate")?
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        let issuer = config
            .console_oidc_issuer
            .clone()
            .context("the console needs console_oidc_issuer")?;
        let secret = read(
            "console_oidc_client_secret_file",
            config.console_oidc_client_secret_file.as_ref(),
        )?;
        let agency = config
            .console_agency
            .clone()
            .context("the console needs console_agency: the code of the agency it acts for")?;
        crate::domain::AgencyCode::parse(&agency)
            .map_err(|e| anyhow::anyhow!("console_agency {agency:?}: {e}"))?;
        if config.console_verifier_keys.is_empty() {
            anyhow::bail!(
                "the console needs console_verifier_keys: the ledger's verifier keys as the \
                 operator publishes them (`accord ledger public-key --all`)"
            );
        }
        for key in &config.console_verifier_keys {
            signed_note::StandardVerifier::new(key.trim()).map_err(|e| {
                anyhow::anyhow!("console_verifier_keys: {key:?} is not a verifier key: {e}")
            })?;
        }
        let tcp = tokio::net::TcpListener::bind(config.console_listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.console_listen))?;
        let address = tcp.local_addr().context("cannot read the bound address")?;
        let public_url = config
            .console_public_url
            .clone()
            .unwrap_or_else(|| format!("https://localhost:{}", address.port()));
        let http =
            crate::auth::https_client(config.token_issuer_ca_file.as_deref(), CALL_TIMEOUT, false)?;
        let sign_in = SignIn::new(
            Registration {
                issuer,
                client_id: config.console_oidc_client_id.clone(),
                client_secret: secret.trim().to_owned(),
                redirect_url: format!("{}/sign-in/callback", public_url.trim_end_matches('/')),
                scopes: config.console_oidc_scopes.clone(),
                resource: config.console_oidc_resource.clone(),
            },
            http,
        );
        Ok(Self {
            listener: listener::TlsListener::new(tcp, tls),
            address,
            shared: Arc::new(Shared {
                sessions: Sessions::new(Lifetimes {
                    idle: Duration::from_secs(60 * u64::from(config.console_session_idle_minutes)),
                    longest: Duration::from_secs(3600 * u64::from(config.console_session_hours)),
                }),
                sign_in,
                accord,
                agency,
                witness: integrity::Witness::open(config.console_state_file.clone())?,
                verifier_keys: config
                    .console_verifier_keys
                    .iter()
                    .map(|k| k.trim().to_owned())
                    .collect(),
            }),
        })
    }

    /// The address the console is bound to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = Router::new()
            .route("/", get(|| async { Redirect::to("/ledger") }))
            .route("/sign-in", get(sign_in_page))
            .route("/sign-in/start", get(sign_in_start))
            .route("/sign-in/callback", get(sign_in_callback))
            .route("/sign-out", post(sign_out))
            .route("/ledger", get(ledger::search))
            .route("/ledger/entries/{index}", get(ledger::entry))
            .route("/ledger/export.csv", get(ledger::export))
            .route("/alerts", get(alerts::inbox))
            .route("/alerts/acknowledge", post(alerts::acknowledge))
            .route("/agreements", get(agreements::register))
            .route("/agreements/{id}", get(agreements::show))
            .route("/agreements/approve", post(agreements::approve))
            .route("/agreements/suspend", post(agreements::suspend))
            .route("/agreements/reinstate", post(agreements::reinstate))
            .route("/integrity", get(integrity::panel))
            .route("/people", get(people::search))
            .route("/people/{id}", get(people::show))
            .route("/people/{id}/report", get(people::report))
            .route("/assets/{file}", get(assets::serve))
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.shared);
        tracing::info!(address = %self.address, "the console is serving");
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the console failed")
    }
}

/// Headers on every answer: no framing, no sniffing, no referrer, nothing
/// cached (pages show audit data), and a content security policy that
/// allows only the console's own scripts and styles.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// A page rendered from `template`, or a plain 500 if it cannot be.
fn page(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a console page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page cannot be shown",
            )
                .into_response()
        }
    }
}

/// A timestamp as `format` writes it (UTC), or empty when there is none.
fn formatted(time: Option<&prost_types::Timestamp>, format: &str) -> String {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// The signed-in staff member of a request, if its session is live.
fn staff_of(shared: &Shared, headers: &HeaderMap) -> Option<Staff> {
    let id = session::cookie_value(headers)?;
    match shared.sessions.get(&id)? {
        session::State::SignedIn(staff) => Some(staff),
        session::State::SigningIn(_) => None,
    }
}

/// Where a request without a live session is sent.
fn to_sign_in() -> Response {
    Redirect::to("/sign-in").into_response()
}

#[derive(askama::Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    problem: Option<String>,
}

async fn sign_in_page() -> Response {
    page(&SignInPage { problem: None })
}

/// Starts a sign-in: a new session holding the PKCE verifier, state and
/// nonce, and a redirect to the identity provider.
async fn sign_in_start(State(shared): State<Arc<Shared>>) -> Response {
    match shared.sign_in.start("/ledger".to_owned()).await {
        Ok((url, pending)) => {
            let id = shared.sessions.start(session::State::SigningIn(pending));
            (
                [(header::SET_COOKIE, session::set_cookie(Some(&id)))],
                Redirect::to(&url),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a sign-in");
            let problem = Some(
                "Your organisation's sign-in service cannot be reached. Try again later."
                    .to_owned(),
            );
            (StatusCode::BAD_GATEWAY, page(&SignInPage { problem })).into_response()
        }
    }
}

/// The identity provider's answer to a sign-in.
#[derive(Debug, serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Finishes a sign-in: the code exchanged (with the PKCE verifier) for
/// tokens, the ID token checked, and a new session id for the signed-in
/// session (the one that held the sign-in is ended).
async fn sign_in_callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let failed = |status: StatusCode, problem: &str| {
        (
            status,
            [(header::SET_COOKIE, session::set_cookie(None))],
            page(&SignInPage {
                problem: Some(problem.to_owned()),
            }),
        )
            .into_response()
    };
    let pending = session::cookie_value(&headers)
        .and_then(|id| shared.sessions.end(&id))
        .and_then(|state| match state {
            session::State::SigningIn(pending) => Some(pending),
            session::State::SignedIn(_) => None,
        });
    let Some(pending) = pending else {
        return failed(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was not started here. Sign in again.",
        );
    };
    if let Some(error) = answer.error {
        tracing::info!(
            error,
            description = answer.error_description.as_deref().unwrap_or_default(),
            "the identity provider refused a sign-in"
        );
        return failed(
            StatusCode::FORBIDDEN,
            "Your organisation's sign-in service refused the sign-in.",
        );
    }
    let (Some(code), Some(state)) = (answer.code, answer.state) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "The sign-in answer was incomplete. Sign in again.",
        );
    };
    let then = pending.then.clone();
    match shared.sign_in.finish(pending, &code, &state).await {
        Ok(staff) => {
            tracing::info!(
                principal = staff.principal,
                "a staff member signed in to the console"
            );
            let id = shared.sessions.start(session::State::SignedIn(staff));
            (
                [(header::SET_COOKIE, session::set_cookie(Some(&id)))],
                Redirect::to(&then),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "a console sign-in failed");
            failed(
                StatusCode::FORBIDDEN,
                "The sign-in could not be completed. Sign in again.",
            )
        }
    }
}

/// A form that changes something: it must carry the session's CSRF token.
#[derive(Debug, serde::Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Ends the session.
async fn sign_out(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    let Some(id) = session::cookie_value(&headers) else {
        return to_sign_in();
    };
    match shared.sessions.get(&id) {
        Some(session::State::SignedIn(staff)) if session::same_secret(&form.csrf, &staff.csrf) => {
            shared.sessions.end(&id);
            (
                [(header::SET_COOKIE, session::set_cookie(None))],
                Redirect::to("/sign-in"),
            )
                .into_response()
        }
        Some(session::State::SignedIn(_)) => refused_form(),
        _ => to_sign_in(),
    }
}

/// The answer to a form without its session's CSRF token.
fn refused_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from the console. Go back, reload the page and try again.",
    )
        .into_response()
}
