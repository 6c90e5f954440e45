//! Starting the real server on a free loopback port, with its own database,
//! and calling it through the generated tonic clients; the typed test
//! client (`staff`) and the shared fixtures (`fixtures`).

pub mod browser;
mod fixtures;
pub mod process;
pub mod staff;

pub use fixtures::*;

use std::net::SocketAddr;
use std::str::FromStr;

use accord::api::pb;
use accord::app::App;
use accord::config::Config;
use accord::dev::{DevCa, Issued, TokenSigner, Validity};
use accord::store::{SqlStore, connect};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A running server and what it needs to be checked.
pub struct TestServer {
    pub address: SocketAddr,
    /// The metrics, liveness and readiness listener (plain HTTP).
    pub metrics: SocketAddr,
    pub channel: Channel,
    pub database_url: String,
    /// A PostgreSQL database made for this server, dropped when it stops.
    owns_database: bool,
    /// The running server's own store.
    pub served_store: SqlStore,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    dir: TempDir,
    /// The CA a secure server's certificate chains to; none in
    /// development mode.
    ca_pem: Option<String>,
}

/// The audience of staff tokens in secure test servers.
pub const AUDIENCE: &str = "accord-test";

/// Development PKI for a secure test server: a CA, the server's
/// certificate and an operator client certificate, in a temp dir.
pub struct Pki {
    pub dir: TempDir,
    pub ca: DevCa,
    pub operator: Issued,
    /// The operator's token issuer (`OPERATOR_ISSUER`), whose keys are in
    /// `operator-jwks.json`.
    pub operator_signer: TokenSigner,
}

/// The `iss` of the operator's token issuer in secure test servers.
pub const OPERATOR_ISSUER: &str = "https://idp.operator.example";

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = DevCa::generate("Accord test CA").expect("CA");
        let server = ca.server(Validity::days_from_now(30)).expect("server cert");
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("idp-ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), &server.cert_pem).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key_pem).unwrap();
        let operator = ca
            .client("ops-console", None, Validity::days_from_now(30))
            .expect("operator cert");
        let operator_signer = TokenSigner::generate("ops-key-1").expect("operator key");
        std::fs::write(dir.path().join("operator-jwks.json"), &operator_signer.jwks).unwrap();
        Self {
            dir,
            ca,
            operator,
            operator_signer,
        }
    }

    /// A client certificate from this PKI's CA, valid for a month.
    pub fn client(&self, common_name: &str, uri: Option<&str>) -> Issued {
        self.ca
            .client(common_name, uri, Validity::days_from_now(30))
            .expect("client cert")
    }

    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database for one test, or `None` (with a loud
/// message) when PostgreSQL is unreachable outside CI. In CI it must be
/// reachable.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection;
    accord::store::install_drivers();
    let admin = postgres_admin_url();
    let mut conn = match sqlx::AnyConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but unreachable at {admin}: {e}");
            }
            eprintln!(
                "!!! SKIPPING a PostgreSQL test: cannot reach {admin}: {e} (set DATABASE_URL) !!!"
            );
            return None;
        }
    };
    let name = format!("accord_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    Some(format!("{base}/{name}"))
}

/// Drops a database made by [`fresh_postgres_database`].
pub async fn drop_postgres_database(url: &str) {
    use sqlx::Connection;
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    let mut conn = sqlx::AnyConnection::connect(&postgres_admin_url())
        .await
        .expect("reach PostgreSQL to drop a test database");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop test database");
}

/// A clock that runs with the system's but can be moved forward, to see
/// agreements and consents expire.
#[derive(Debug, Default)]
pub struct TestClock {
    ahead: std::sync::Mutex<chrono::Duration>,
}

impl TestClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        *self.ahead.lock().unwrap() += by;
    }
}

impl accord::clock::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.ahead.lock().unwrap()
    }
}

impl TestServer {
    /// Starts a server in development mode on `db`; `None` if PostgreSQL
    /// was asked for and is unreachable outside CI.
    pub async fn start(db: Db) -> Option<Self> {
        Self::start_with_clock(db, std::sync::Arc::new(accord::clock::SystemClock)).await
    }

    /// Starts a server in development mode on the PostgreSQL database at
    /// `url`, which the caller made and drops.
    pub async fn start_on_database(url: String) -> Self {
        let clock = std::sync::Arc::new(accord::clock::SystemClock);
        Self::start_on(Some(url), None, clock, false, None, None, |_| {}).await
    }

    /// Starts a server telling time with `clock`.
    pub async fn start_with_clock(db: Db, clock: accord::clock::SharedClock) -> Option<Self> {
        Self::start_dev(db, clock, |_| {}).await
    }

    /// Starts a server in development mode whose configuration `tune`
    /// adjusts.
    pub async fn start_tuned(db: Db, tune: fn(&mut Config)) -> Option<Self> {
        Self::start_dev(db, std::sync::Arc::new(accord::clock::SystemClock), tune).await
    }

    async fn start_dev(
        db: Db,
        clock: accord::clock::SharedClock,
        tune: fn(&mut Config),
    ) -> Option<Self> {
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_postgres_database().await?),
        };
        Some(
            Self::start_on(
                database_url,
                None,
                clock,
                matches!(db, Db::Postgres),
                None,
                None,
                tune,
            )
            .await,
        )
    }

    /// Starts a server in secure mode (mutual TLS and staff tokens) with
    /// `pki`; its `channel` speaks with the operator's certificate.
    pub async fn start_secure(db: Db, pki: &Pki) -> Option<Self> {
        Self::start_secure_tuned(db, pki, |_| {}).await
    }

    /// Starts a secure server whose configuration `tune` adjusts.
    pub async fn start_secure_tuned(db: Db, pki: &Pki, tune: fn(&mut Config)) -> Option<Self> {
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_postgres_database().await?),
        };
        let clock = std::sync::Arc::new(accord::clock::SystemClock);
        Some(
            Self::start_on(
                database_url,
                None,
                clock,
                matches!(db, Db::Postgres),
                Some(pki),
                None,
                tune,
            )
            .await,
        )
    }

    /// A TLS channel to this (secure) server presenting `identity`.
    pub async fn tls_channel(&self, identity: Option<&Issued>) -> Channel {
        tls_channel(
            self.address,
            self.ca_pem.as_deref().expect("a secure server"),
            identity,
        )
        .await
        .expect("TLS connection")
    }

    /// Starts a second server process on this one's PostgreSQL database,
    /// signing with the same key, as a deployment of several processes
    /// does. Its database is this one's: stopping it drops nothing.
    pub async fn start_beside(&self) -> Self {
        self.start_beside_with(None, |_| {}).await
    }

    /// Starts a second server beside this one (see [`Self::start_beside`])
    /// whose configuration `tune` adjusts.
    pub async fn start_beside_tuned(&self, tune: fn(&mut Config)) -> Self {
        self.start_beside_with(None, tune).await
    }

    /// Starts a second secure server beside this one (see
    /// [`Self::start_beside`]), with the same `pki`.
    pub async fn start_secure_beside(&self, pki: &Pki) -> Self {
        self.start_beside_with(Some(pki), |_| {}).await
    }

    /// The file of the ledger signing key this server uses, for another
    /// process to share.
    pub fn ledger_key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger-signing.key")
    }

    async fn start_beside_with(&self, pki: Option<&Pki>, tune: fn(&mut Config)) -> Self {
        assert!(
            self.owns_database,
            "only PostgreSQL serves several processes"
        );
        Self::start_on(
            Some(self.database_url.clone()),
            Some(self.ledger_key_file()),
            std::sync::Arc::new(accord::clock::SystemClock),
            false,
            pki,
            None,
            tune,
        )
        .await
    }

    /// Stops this (development-mode) server and starts a new one on the
    /// same data directory and database, as a restart does.
    pub async fn restart(mut self) -> Self {
        let database_url = self.database_url.clone();
        let owns_database = std::mem::replace(&mut self.owns_database, false);
        let dir = self.stop().await;
        let clock = std::sync::Arc::new(accord::clock::SystemClock);
        let database_url = owns_database.then_some(database_url);
        Self::start_on(
            database_url,
            None,
            clock,
            owns_database,
            None,
            Some(dir),
            |_| {},
        )
        .await
    }

    async fn start_on(
        database_url: Option<String>,
        ledger_key_file: Option<std::path::PathBuf>,
        clock: accord::clock::SharedClock,
        owns_database: bool,
        pki: Option<&Pki>,
        dir: Option<TempDir>,
        tune: fn(&mut Config),
    ) -> Self {
        accord::telemetry::init_for_tests();
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let tls = pki.map(|pki| Config {
            insecure: false,
            tls_cert_file: Some(pki.file("server.pem")),
            tls_key_file: Some(pki.file("server.key")),
            tls_client_ca_file: Some(pki.file("ca.pem")),
            // Identity providers the tests start serve certificates of the
            // test CA (its file is kept as `idp-ca.pem`: the client CA
            // bundle may be replaced by a test).
            token_issuer_ca_file: Some(pki.file("idp-ca.pem")),
            token_audience: AUDIENCE.to_owned(),
            token_leeway_seconds: 0,
            operator_certificates: vec![pki.operator.fingerprint.to_string()],
            operator_token_issuer: Some(OPERATOR_ISSUER.to_owned()),
            operator_jwks_file: Some(pki.file("operator-jwks.json")),
            ..Config::default()
        });
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            database_url,
            ledger_key_file,
            insecure: pki.is_none(),
            max_message_bytes: 64 * 1024,
            shutdown_grace_seconds: 5,
            checkpoint_interval_ms: 100,
            health_probe_interval_ms: 50,
            // Tests call as fast as they can; the rate limit tests set theirs.
            agency_calls_per_second: 0,
            certificate_calls_per_second: 0,
            ..tls.unwrap_or_default()
        };
        let mut config = config;
        tune(&mut config);
        let app = App::build_with_clock(&config, clock)
            .await
            .expect("server builds");
        let address = app.address();
        let metrics = app.metrics_address();
        let served_store = app.store().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let ca_pem = pki.map(|p| p.ca.cert_pem());
        let channel = match pki {
            Some(pki) => tls_channel(address, &pki.ca.cert_pem(), Some(&pki.operator))
                .await
                .expect("connect to the test server"),
            None => Channel::from_shared(format!("http://{address}"))
                .expect("uri")
                .connect()
                .await
                .expect("connect to the test server"),
        };
        Self {
            address,
            metrics,
            channel,
            database_url: config.database_url(),
            served_store,
            owns_database,
            stop: Some(stop),
            task: Some(task),
            dir,
            ca_pem,
        }
    }

    /// The server's data directory (its SQLite file and signing key).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Opens the server's database directly, for checks behind the API.
    pub async fn store(&self) -> SqlStore {
        connect(&self.database_url, false)
            .await
            .expect("open the test database")
    }

    /// The ledger entries matching `filter`, read directly from the
    /// server's database, in ledger order.
    pub async fn ledger(&self, filter: accord::store::EntryFilter) -> Vec<accord::ledger::Entry> {
        use accord::store::Store;
        let store = self.store().await;
        let entries = store
            .entries(&filter, accord::store::After::Start, 10_000)
            .await
            .expect("read the ledger");
        store.close().await;
        entries
    }

    /// Stops the server and waits for it; returns its data directory, which
    /// is deleted when dropped.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        if self.owns_database {
            drop_postgres_database(&self.database_url).await;
        }
        self.dir
    }

    pub fn agencies(&self) -> pb::agency_service_client::AgencyServiceClient<Channel> {
        pb::agency_service_client::AgencyServiceClient::new(self.channel.clone())
    }
    pub fn catalog(&self) -> pb::catalog_service_client::CatalogServiceClient<Channel> {
        pb::catalog_service_client::CatalogServiceClient::new(self.channel.clone())
    }
    pub fn subjects(&self) -> pb::subject_service_client::SubjectServiceClient<Channel> {
        pb::subject_service_client::SubjectServiceClient::new(self.channel.clone())
    }
    pub fn agreements(&self) -> pb::agreement_service_client::AgreementServiceClient<Channel> {
        pb::agreement_service_client::AgreementServiceClient::new(self.channel.clone())
    }
    pub fn consents(&self) -> pb::consent_service_client::ConsentServiceClient<Channel> {
        pb::consent_service_client::ConsentServiceClient::new(self.channel.clone())
    }
    pub fn records(&self) -> pb::record_service_client::RecordServiceClient<Channel> {
        pb::record_service_client::RecordServiceClient::new(self.channel.clone())
    }
    pub fn audit(&self) -> pb::audit_service_client::AuditServiceClient<Channel> {
        pb::audit_service_client::AuditServiceClient::new(self.channel.clone())
    }
    pub fn events(&self) -> pb::event_service_client::EventServiceClient<Channel> {
        pb::event_service_client::EventServiceClient::new(self.channel.clone())
    }

    /// The health status the server reports for `service` ("" for the
    /// server as a whole).
    pub async fn health(&self, service: &str) -> ServingStatus {
        let answer = HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health check");
        answer.into_inner().status()
    }

    /// Waits, checking every 20 ms for at most 10 s, until the server
    /// reports `status` for itself and for the record service.
    pub async fn await_health(&self, status: ServingStatus) {
        for _ in 0..500 {
            if self.health("").await == status
                && self.health("accord.v1.RecordService").await == status
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the server never reported {status:?}");
    }

    /// Registers, over a secure server's operator connection (its
    /// certificate alone makes operator calls), an agency with one
    /// certificate identity and one token issuer.
    pub async fn register_member(
        &self,
        code: &str,
        kind: pb::AgencyKind,
        matcher: pb::certificate_identity::Match,
        issuer: pb::TokenIssuer,
    ) {
        let mut agencies = self.agencies();
        agencies
            .create_agency(Request::new(pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: code.to_owned(),
                    display_name: format!("Agency {code}"),
                    kind: kind as i32,
                    ..Default::default()
                }),
            }))
            .await
            .unwrap();
        agencies
            .add_certificate_identity(Request::new(pb::AddCertificateIdentityRequest {
                parent: format!("agencies/{code}"),
                certificate_identity: Some(pb::CertificateIdentity {
                    r#match: Some(matcher),
                    note: "case system".into(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap();
        agencies
            .add_token_issuer(Request::new(pb::AddTokenIssuerRequest {
                parent: format!("agencies/{code}"),
                token_issuer: Some(issuer),
            }))
            .await
            .unwrap();
    }

    /// Registers agencies as the operator.
    pub async fn register(&self, agencies: &[(&str, pb::AgencyKind)]) {
        for (code, kind) in agencies {
            self.agencies()
                .create_agency(self.as_operator().request(pb::CreateAgencyRequest {
                    agency: Some(pb::Agency {
                        code: (*code).to_owned(),
                        display_name: format!("Agency {code}"),
                        kind: *kind as i32,
                        ..Default::default()
                    }),
                }))
                .await
                .expect("register agency");
        }
    }
}

/// An HTTPS client trusting the CA `ca_pem`, with a cookie jar; following
/// redirects or not.
pub fn https_client(ca_pem: &str, follow: bool) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .cookie_store(true)
        .redirect(if follow {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .build()
        .unwrap()
}

/// A TLS channel to `address` trusting `ca_pem`, presenting `identity`.
pub async fn tls_channel(
    address: SocketAddr,
    ca_pem: &str,
    identity: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(&id.cert_pem, &id.key_pem));
    }
    Channel::from_shared(format!("https://{address}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

/// A request bearing `token`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::from_str(&format!("Bearer {token}")).expect("token"),
    );
    r
}

/// A request made by `principal` of `agency` holding `roles`.
pub fn as_caller<T>(message: T, agency: &str, principal: &str, roles: &str) -> Request<T> {
    let mut r = Request::new(message);
    let m = r.metadata_mut();
    m.insert(
        "x-accord-agency",
        MetadataValue::from_str(agency).expect("agency"),
    );
    m.insert(
        "x-accord-principal",
        MetadataValue::from_str(principal).expect("principal"),
    );
    m.insert(
        "x-accord-roles",
        MetadataValue::from_str(roles).expect("roles"),
    );
    r
}

/// A valid NHS number for `n` (0..=99_999), made by computing its check digit.
pub fn nhs_number(n: u32) -> String {
    loop_nhs(n * 7 + 400_000_000)
}

fn loop_nhs(mut base: u32) -> String {
    loop {
        let digits = format!("{base:09}");
        let sum: u32 = digits
            .bytes()
            .zip((2..=10).rev())
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let check = 11 - sum % 11;
        if check != 10 {
            return format!("{digits}{}", if check == 11 { 0 } else { check });
        }
        base += 1;
    }
}

/// A subject with an NHS number and demographics.
pub fn subject(nhs: &str, given: &str, family: &str, birth: &str) -> pb::Subject {
    pb::Subject {
        identifiers: vec![pb::Identifier {
            system: pb::IdentifierSystem::NhsNumber as i32,
            value: nhs.to_owned(),
            ..Default::default()
        }],
        demographics: Some(pb::Demographics {
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            birth_date: birth.to_owned(),
            gender: pb::AdministrativeGender::Female as i32,
            postcode: "ls1 4ap".to_owned(),
            uprn: String::new(),
        }),
        ..Default::default()
    }
}

/// `GET path` over plain HTTP/1.1 from the listener at `address`: the
/// status code and the body (bounded in time).
pub async fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .expect("the HTTP listener answers within 10 s")
        .expect("an HTTP exchange");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The field violations of an InvalidArgument status, as (field, description).
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

/// The ErrorInfo reason of a status.
/// Asserts that `status` answers exactly as for an unknown `name`.
pub fn assert_unknown(status: &tonic::Status, name: &str) {
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert_eq!(status.message(), format!("{name} not found"));
    assert_eq!(reason(status), "NOT_FOUND");
}

pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .expect("an ErrorInfo detail")
        .reason
}

/// A field value helper.
pub fn string_value(s: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::StringValue(s.to_owned())),
    }
}

/// A code value helper.
pub fn code_value(s: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::CodeValue(s.to_owned())),
    }
}

/// A date value helper.
pub fn date_value(s: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::DateValue(s.to_owned())),
    }
}
