//! `accord dev init` and `accord dev token`: a complete development setup
//! in one directory — CA, server certificate, an operator certificate, two
//! example agencies registered with their client certificates and token
//! signing keys, a local web console acting for the council with the
//! settings of a development OpenID provider for its staff, and a
//! configuration file that uses them — and short-lived staff tokens for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::TimeDelta;
use serde::Serialize;

use super::{DevCa, TokenSigner, Validity};
use crate::api::method;
use crate::app::{Setup, checkpoint_keys, open_store, write_private};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::domain::credential::{CertificateMatch, JwksSource};
use crate::domain::{AgencyCode, AgencyKind, Caller, PrincipalId, Role};
use crate::service::{Call, NewTokenIssuer, Services};

/// The configuration file `init` writes.
pub const CONFIG_FILE: &str = "accord.toml";

/// The example agencies: code, display name, kind.
pub const AGENCIES: [(&str, &str, AgencyKind); 2] = [
    ("leeds-cc", "Leeds City Council", AgencyKind::Council),
    (
        "leeds-th",
        "Leeds Teaching Hospitals NHS Trust",
        AgencyKind::Health,
    ),
];

/// The agency the development console acts for.
const CONSOLE_AGENCY: &str = "leeds-cc";
/// Where the development console serves.
const CONSOLE_PORT: u16 = 8443;
/// Where the development OpenID provider (`console/dev-provider.mjs`)
/// serves.
const PROVIDER_PORT: u16 = 8444;
/// Accord's address in the development setup.
const API_PORT: u16 = 50051;
/// The provider's settings file `init` writes.
pub const PROVIDER_FILE: &str = "console-provider.json";

/// The `iss` of an example agency's development identity provider.
pub fn issuer_of(agency: &str) -> String {
    format!("https://idp.{agency}.example")
}

/// The `kid` of an example agency's token signing key.
fn kid_of(agency: &str) -> String {
    format!("{agency}-dev-1")
}

fn signing_key_file(dir: &Path, agency: &str) -> PathBuf {
    dir.join(format!("{agency}-signing.key"))
}

/// The configuration `init` writes (absolute paths, so that it works from
/// any directory).
#[derive(Debug, Serialize)]
struct DevConfig {
    listen: String,
    data_dir: PathBuf,
    tls_cert_file: PathBuf,
    tls_key_file: PathBuf,
    tls_client_ca_file: PathBuf,
    token_audience: String,
    operator_certificates: Vec<String>,
    /// Trusted for the development provider's HTTPS (it uses the server
    /// certificate).
    token_issuer_ca_file: PathBuf,
    console_listen: String,
    console_tls_cert_file: PathBuf,
    console_tls_key_file: PathBuf,
    console_api_url: String,
    console_api_ca_file: PathBuf,
    console_agency: String,
    console_client_cert_file: PathBuf,
    console_client_key_file: PathBuf,
    console_oidc_issuer: String,
    console_oidc_client_secret_file: PathBuf,
    console_oidc_resource: String,
    console_state_file: PathBuf,
    /// Filled in once the ledger's signing key exists.
    console_verifier_keys: Vec<String>,
}

impl DevConfig {
    /// The file's text.
    fn text(&self) -> anyhow::Result<String> {
        Ok(format!(
            "# Development configuration written by `accord dev init`: not for real data.\n{}",
            toml::to_string(self).context("cannot write the configuration")?
        ))
    }
}

/// The development provider's settings (see `console/dev-provider.mjs`):
/// the console's client and the council's staff.
fn provider_settings(dir: &Path, audience: &str, client_secret: &str) -> serde_json::Value {
    serde_json::json!({
        "port": PROVIDER_PORT,
        "cert": dir.join("server.pem"),
        "key": dir.join("server.key"),
        "audience": audience,
        "clients": [{
            "client_id": Config::default().console_oidc_client_id,
            "client_secret": client_secret,
            "redirect_uris": [format!("https://localhost:{CONSOLE_PORT}/sign-in/callback")],
        }],
        "accounts": {
            "ig-1": { "name": "Ida Gale", "roles": ["auditor", "ig_lead"] },
            "au-1": { "name": "Arun Umar", "roles": ["auditor"] },
            "sw-1": { "name": "Sam Wood", "roles": ["social_worker"] },
        },
    })
}

/// What `init` made.
#[derive(Debug)]
pub struct Initialised {
    pub config_file: PathBuf,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
}

fn write_public(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    write_private(path, text.trim_end()).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates the development setup in `dir` (made if missing); refuses to
/// overwrite one.
pub async fn init(dir: &Path) -> anyhow::Result<Initialised> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let config_file = dir.join(CONFIG_FILE);
    if config_file.exists() {
        bail!(
            "{} already holds a development setup ({CONFIG_FILE}); remove the directory to start again",
            dir.display()
        );
    }
    let mut files = Vec::new();
    let mut public = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        write_public(&path, text)?;
        files.push(path.clone());
        Ok(path)
    };
    let ca = DevCa::generate("Accord development CA")?;
    let year = Validity::days_from_now(365);
    let server = ca.server(year)?;
    let operator = ca.client("accord-operator", None, year)?;
    let ca_file = public("ca.pem", &ca.cert_pem())?;
    let server_file = public("server.pem", &server.cert_pem)?;
    public("operator.pem", &operator.cert_pem)?;
    let mut agencies = Vec::new();
    for (code, _, _) in AGENCIES {
        let cert = ca.client(&format!("case-system.{code}"), None, year)?;
        public(&format!("{code}.pem"), &cert.cert_pem)?;
        let signer = TokenSigner::generate(&kid_of(code))?;
        public(&format!("{code}-jwks.json"), &signer.jwks)?;
        agencies.push((code, cert, signer));
    }
    let mut secrets = vec![
        (dir.join("ca.key"), ca.key_pem().to_owned()),
        (dir.join("server.key"), server.key_pem.clone()),
        (dir.join("operator.key"), operator.key_pem.clone()),
    ];
    for (code, cert, signer) in &agencies {
        secrets.push((dir.join(format!("{code}.key")), cert.key_pem.clone()));
        secrets.push((signing_key_file(&dir, code), signer.key_pem.clone()));
    }
    for (path, text) in &secrets {
        write_secret(path, text)?;
        files.push(path.clone());
    }
    // The console's client secret at the development provider.
    let client_secret = crate::console::session::random_token();
    let audience = format!("https://localhost:{API_PORT}");
    for (name, text) in [
        ("console-secret", client_secret.clone()),
        (
            PROVIDER_FILE,
            provider_settings(&dir, &audience, &client_secret).to_string(),
        ),
    ] {
        let path = dir.join(name);
        write_secret(&path, &text)?;
        files.push(path);
    }
    let mut config = DevConfig {
        listen: format!("127.0.0.1:{API_PORT}"),
        data_dir: dir.join("data"),
        tls_cert_file: server_file.clone(),
        tls_key_file: dir.join("server.key"),
        tls_client_ca_file: ca_file.clone(),
        token_audience: audience.clone(),
        operator_certificates: vec![operator.fingerprint.to_string()],
        token_issuer_ca_file: ca_file.clone(),
        console_listen: format!("127.0.0.1:{CONSOLE_PORT}"),
        console_tls_cert_file: server_file,
        console_tls_key_file: dir.join("server.key"),
        console_api_url: audience.clone(),
        console_api_ca_file: ca_file,
        console_agency: CONSOLE_AGENCY.to_owned(),
        console_client_cert_file: dir.join(format!("{CONSOLE_AGENCY}.pem")),
        console_client_key_file: dir.join(format!("{CONSOLE_AGENCY}.key")),
        console_oidc_issuer: console_issuer(),
        console_oidc_client_secret_file: dir.join("console-secret"),
        console_oidc_resource: audience,
        console_state_file: dir.join("console-state.json"),
        console_verifier_keys: Vec::new(),
    };
    write_public(&config_file, &config.text()?)?;
    files.push(config_file.clone());
    config.console_verifier_keys = register(&config_file, &agencies).await?;
    write_public(&config_file, &config.text()?)?;
    Ok(Initialised { config_file, files })
}

/// The development provider's issuer, where the console's staff sign in.
fn console_issuer() -> String {
    format!("https://localhost:{PROVIDER_PORT}")
}

/// Registers the example agencies, their certificates and their issuers
/// (the council's development provider too, by discovery), as the operator
/// (audited like any operator call); returns the ledger's verifier keys.
async fn register(
    config_file: &Path,
    agencies: &[(&str, super::Issued, TokenSigner)],
) -> anyhow::Result<Vec<String>> {
    let config = Config::load(Some(config_file), &Overrides::default())?;
    let store = open_store(&config, Setup::CreateIfMissing).await?;
    let keys = checkpoint_keys(&config, Setup::CreateIfMissing)?;
    let verifier_keys = keys.verifier_keys();
    let clock = Arc::new(SystemClock);
    let services = Services::new(Arc::new(store.clone()), clock.clone(), Arc::new(keys));
    let operator = Caller {
        agency: AgencyCode::parse(&config.operator_name).map_err(anyhow::Error::msg)?,
        principal: PrincipalId::parse("accord-dev-init").map_err(anyhow::Error::msg)?,
        roles: vec![Role::parse(Role::OPERATOR).map_err(anyhow::Error::msg)?],
        client_certificate: None,
    };
    let call = |action: &'static str| {
        Call::new(
            operator.clone(),
            uuid::Uuid::new_v4().to_string(),
            action,
            clock.now(),
        )
    };
    for ((code, cert, signer), (_, name, kind)) in agencies.iter().zip(AGENCIES) {
        let agency = AgencyCode::parse(code).map_err(anyhow::Error::msg)?;
        services
            .create_agency(
                &call(method!("AgencyService", "CreateAgency")),
                agency.clone(),
                name.to_owned(),
                kind,
            )
            .await
            .with_context(|| format!("cannot register {name}"))?;
        services
            .add_certificate_identity(
                &call(method!("AgencyService", "AddCertificateIdentity")),
                &agency,
                CertificateMatch::CertificateSha256(cert.fingerprint.0),
                "development case system (accord dev init)".to_owned(),
            )
            .await
            .with_context(|| format!("cannot register the certificate of {name}"))?;
        services
            .add_token_issuer(
                &call(method!("AgencyService", "AddTokenIssuer")),
                &agency,
                NewTokenIssuer {
                    issuer: issuer_of(code),
                    jwks: JwksSource::Document(signer.jwks.clone()),
                    subject_claim: "sub".to_owned(),
                    roles_claim: "roles".to_owned(),
                },
            )
            .await
            .with_context(|| format!("cannot register the token issuer of {name}"))?;
    }
    let issuer = console_issuer();
    services
        .add_token_issuer(
            &call(method!("AgencyService", "AddTokenIssuer")),
            &AgencyCode::parse(CONSOLE_AGENCY).map_err(anyhow::Error::msg)?,
            NewTokenIssuer {
                jwks: JwksSource::Discovery(format!("{issuer}/.well-known/openid-configuration")),
                issuer,
                subject_claim: "sub".to_owned(),
                roles_claim: "roles".to_owned(),
            },
        )
        .await
        .context("cannot register the development provider of the console")?;
    store.close().await;
    Ok(verifier_keys)
}

/// A short-lived staff token of `agency` from the development setup in
/// `dir`.
pub fn token(
    dir: &Path,
    agency: &str,
    principal: &str,
    roles: &[String],
    minutes: u32,
) -> anyhow::Result<String> {
    if !(1..=60).contains(&minutes) {
        bail!("--minutes must be between 1 and 60, not {minutes}");
    }
    PrincipalId::parse(principal).map_err(|e| anyhow::anyhow!("--principal {e}"))?;
    for role in roles {
        Role::parse(role).map_err(|e| anyhow::anyhow!("--roles: {e}"))?;
    }
    if !AGENCIES.iter().any(|(code, _, _)| *code == agency) {
        let known: Vec<&str> = AGENCIES.iter().map(|(c, _, _)| *c).collect();
        bail!(
            "--agency must be one of the development agencies: {}",
            known.join(", ")
        );
    }
    let config_file = dir.join(CONFIG_FILE);
    if !config_file.is_file() {
        bail!(
            "{} holds no development setup; run `accord dev init --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    let config = Config::load(Some(&config_file), &Overrides::default())?;
    let key_file = signing_key_file(dir, agency);
    let key_pem = std::fs::read_to_string(&key_file)
        .with_context(|| format!("cannot read {}", key_file.display()))?;
    let signer = TokenSigner::from_pem(&kid_of(agency), &key_pem)?;
    signer.mint(
        &issuer_of(agency),
        &config.token_audience,
        principal,
        roles,
        SystemClock.now(),
        TimeDelta::minutes(i64::from(minutes)),
    )
}
