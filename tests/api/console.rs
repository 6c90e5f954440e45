//! The web console (`accord console`) as a process, with a real OpenID
//! Connect provider (npm `oidc-provider`) and a secure Accord: staff sign
//! in with PKCE, every page is a ListEntries call Accord records under the
//! staff member's name over the console's agency certificate, sessions and
//! forms are protected.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use accord::api::pb;
use accord::store::EntryFilter;

use crate::helpers::process::{Reaped, start_logged};
use crate::helpers::staff::Staff;
use crate::helpers::{
    CLASS, COUNCIL, Db, GP_SHARE, HEALTH, Pki, TestServer, nhs_number, referral_fields,
    safeguarding_terms, subject, terms,
};

/// Accord's audience here: a resource indicator must be an absolute URI.
const AUDIENCE: &str = "https://accord.test";

fn absolute_audience(config: &mut accord::config::Config) {
    config.token_audience = AUDIENCE.to_owned();
}

/// The console's client at the provider.
const CLIENT_ID: &str = "accord-console";
const CLIENT_SECRET: &str = "console-secret-for-tests";

/// The npm packages of the console's tests, or `None` (skipping loudly)
/// outside CI when they are not installed.
fn node_modules() -> Option<std::path::PathBuf> {
    match std::env::var_os("TEST_CONSOLE_NODE_MODULES") {
        Some(dir) => Some(dir.into()),
        None if std::env::var_os("CI").is_some() => {
            panic!("TEST_CONSOLE_NODE_MODULES must be set in CI (see scripts/ensure-tools)")
        }
        None => {
            eprintln!(
                "!!! SKIPPING the console test: TEST_CONSOLE_NODE_MODULES is not set (run scripts/test) !!!"
            );
            None
        }
    }
}

/// Starts the provider with the console's client (calling back to
/// `console_port`) and two staff members of the council; returns it and
/// its issuer.
fn start_provider(pki: &Pki, modules: &std::path::Path, console_port: u16) -> (Reaped, String) {
    // ES modules resolve packages from where the script is: it runs beside
    // the installed node_modules.
    // A copy of its own: tests run side by side, each removing its copy.
    static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let script = modules
        .parent()
        .unwrap()
        .join(format!("provider-{}-{copy}.mjs", std::process::id()));
    std::fs::copy("console/dev-provider.mjs", &script).unwrap();
    let config = pki.file("provider.json");
    let settings = serde_json::json!({
        "cert": pki.file("server.pem"),
        "key": pki.file("server.key"),
        "audience": AUDIENCE,
        "clients": [{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [format!("https://localhost:{console_port}/sign-in/callback")],
        }],
        "accounts": {
            "ig-1": { "name": "Ida Gale", "roles": ["auditor", "ig_lead"] },
            "sw-1": { "name": "Sam Wood", "roles": ["social_worker"] },
        },
    });
    std::fs::write(&config, settings.to_string()).unwrap();
    let mut child = Command::new("node")
        .arg(&script)
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the provider reports its port");
        if let Some(port) = line.strip_prefix("listening ") {
            // Loaded: the copy is no longer needed.
            let _ = std::fs::remove_file(&script);
            return (child, format!("https://localhost:{port}"));
        }
    }
}

/// A free loopback port (bound and released: the console takes it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTPS client trusting the test CA, with a cookie jar; following
/// redirects or not.
fn browser(pki: &Pki, follow: bool) -> reqwest::Client {
    crate::helpers::https_client(&pki.ca.cert_pem(), follow)
}

/// The `value` of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_owned)
}

/// Signs `account` in through the provider's login form; returns the page
/// the console lands on.
async fn sign_in(client: &reqwest::Client, console: &str, account: &str) -> (u16, String) {
    let login = client
        .get(format!("{console}/sign-in/start"))
        .send()
        .await
        .unwrap();
    let url = login.url().clone();
    let form = login.text().await.unwrap();
    let action = form
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no login form at {url}: {form}"));
    let action = url.join(action).unwrap();
    let landed = client
        .post(action)
        .form(&[("prompt", "login"), ("login", account), ("password", "x")])
        .send()
        .await
        .unwrap();
    let status = landed.status().as_u16();
    (status, landed.text().await.unwrap())
}

/// Accord (secure), the provider and the console, running.
struct Deployment {
    pki: Pki,
    s: TestServer,
    /// The console's base URL.
    console: String,
    /// The provider's issuer.
    issuer: String,
    /// The console's client certificate.
    cert: accord::dev::Issued,
    _provider: Reaped,
    _console: Reaped,
}

/// Starts Accord, the council's identity provider and its console, with
/// the console's certificate and the provider registered in Accord.
async fn deploy(db: Db) -> Option<Deployment> {
    let modules = node_modules()?;
    let pki = Pki::new();
    let s = TestServer::start_secure_tuned(db, &pki, absolute_audience).await?;
    let console_port = free_port();
    let (provider, issuer) = start_provider(&pki, &modules, console_port);
    // The council's console: its certificate registered, its issuer by
    // discovery.
    let cert = pki.client("console.leeds-cc", None);
    s.register_member(
        COUNCIL,
        pb::AgencyKind::Council,
        pb::certificate_identity::Match::CertificateSha256(cert.fingerprint.to_string()),
        pb::TokenIssuer {
            issuer: issuer.clone(),
            jwks: Some(pb::token_issuer::Jwks::DiscoveryUrl(format!(
                "{issuer}/.well-known/openid-configuration"
            ))),
            ..Default::default()
        },
    )
    .await;
    std::fs::write(pki.file("console.pem"), &cert.cert_pem).unwrap();
    std::fs::write(pki.file("console.key"), &cert.key_pem).unwrap();
    std::fs::write(pki.file("console-secret"), CLIENT_SECRET).unwrap();
    let config = pki.file("console.toml");
    std::fs::write(
        &config,
        format!(
            "console_listen = \"127.0.0.1:{console_port}\"\n\
             console_tls_cert_file = {server:?}\nconsole_tls_key_file = {server_key:?}\n\
             console_api_url = \"https://localhost:{accord}\"\nconsole_api_ca_file = {ca:?}\n\
             console_client_cert_file = {cert:?}\nconsole_client_key_file = {key:?}\n\
             console_agency = {COUNCIL:?}\nconsole_state_file = {state:?}\n\
             console_oidc_issuer = {issuer:?}\nconsole_oidc_client_id = {CLIENT_ID:?}\n\
             console_oidc_client_secret_file = {secret:?}\ntoken_issuer_ca_file = {ca:?}\n\
             console_oidc_resource = {AUDIENCE:?}\nconsole_verifier_keys = [{verifier:?}]\n",
            server = pki.file("server.pem"),
            server_key = pki.file("server.key"),
            accord = s.address.port(),
            ca = pki.file("ca.pem"),
            cert = pki.file("console.pem"),
            key = pki.file("console.key"),
            secret = pki.file("console-secret"),
            state = pki.file("console-state.json"),
            verifier = accord::ledger::checkpoint::SigningKey::parse(
                &std::fs::read_to_string(s.ledger_key_file()).unwrap()
            )
            .unwrap()
            .verifier_key(),
        ),
    )
    .unwrap();
    let (child, _address, _log): (Child, _, _) =
        start_logged(&["console"], &[("ACCORD_CONFIG", config.to_str().unwrap())]);
    Some(Deployment {
        pki,
        s,
        console: format!("https://localhost:{console_port}"),
        issuer,
        cert,
        _provider: provider,
        _console: Reaped(child),
    })
}

#[tokio::test]
async fn staff_sign_in_and_every_page_is_an_audited_call() {
    let Some(d) = deploy(Db::Sqlite).await else {
        return;
    };
    let Deployment {
        pki,
        s,
        console,
        issuer,
        cert,
        ..
    } = &d;
    let console = console.as_str();

    // Without a session every page sends the browser to sign in.
    let direct = browser(pki, false);
    let to_sign_in = direct
        .get(format!("{console}/ledger"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_sign_in.status().as_u16(), 303);
    assert_eq!(to_sign_in.headers()["location"], "/sign-in");
    let headers = to_sign_in.headers();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    // A forged session cookie is no session.
    let forged = direct
        .get(format!("{console}/ledger"))
        .header("cookie", "__Host-accord-console=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 303);

    // Sign-in starts with PKCE (S256), state and nonce, asking for a token
    // for Accord's audience; the session cookie is host-only, secure,
    // HttpOnly and SameSite=Lax.
    let start = direct
        .get(format!("{console}/sign-in/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 303);
    let cookie = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "__Host-accord-console=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let to_provider = reqwest::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        to_provider.as_str().starts_with(issuer.as_str()),
        "{to_provider}"
    );
    let query: std::collections::HashMap<_, _> = to_provider.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["resource"], AUDIENCE);
    for present in ["code_challenge", "state", "nonce"] {
        assert!(query[present].len() >= 32, "{present}");
    }
    // An answer that does not belong to the sign-in is refused.
    let wrong = direct
        .get(format!(
            "{console}/sign-in/callback?code=x&state=not-the-state"
        ))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);

    // The auditor signs in and lands on the ledger.
    let auditor = browser(pki, true);
    let (status, page) = sign_in(&auditor, console, "ig-1").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in as Ida Gale (ig-1)"), "{page}");
    assert!(
        page.contains("<h1 class=\"govuk-heading-l\">Ledger</h1>"),
        "{page}"
    );
    assert!(!page.contains("There is a problem"), "{page}");
    // The page was a call: the next one lists it, under her name.
    let again = auditor
        .get(format!("{console}/ledger?agency={COUNCIL}&principal=ig-1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("ig-1 (leeds-cc)"), "{again}");
    assert!(again.contains("ListEntries"), "{again}");
    let recorded = s
        .ledger(EntryFilter {
            principal: Some("ig-1".into()),
            ..EntryFilter::default()
        })
        .await;
    assert!(recorded.len() >= 2, "{recorded:?}");
    for entry in &recorded {
        assert_eq!(entry.draft.agency, COUNCIL);
        assert_eq!(entry.draft.client_certificate, cert.fingerprint.to_string());
        assert_eq!(entry.draft.action, "/accord.v1.AuditService/ListEntries");
    }

    // Every filter of ListEntries: a bad date is explained; an NHS number
    // nobody the council knows holds finds nobody; a day in the past and
    // emergency access only find nothing here.
    let get = |query: String| {
        let auditor = auditor.clone();
        let console = console.to_owned();
        async move {
            auditor
                .get(format!("{console}/ledger?{query}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let bad_date = get("from=01/12/2026".into()).await;
    assert!(bad_date.contains("year-month-day"), "{bad_date}");
    let nobody = get(format!("nhs_number={}", nhs_number(7))).await;
    assert!(
        nobody.contains("Nobody your organisation may see matches"),
        "{nobody}"
    );
    let past = get("to=2020-01-01".into()).await;
    assert!(past.contains("No entries match."), "{past}");
    let emergency = get("emergency=yes".into()).await;
    assert!(emergency.contains("No entries match."), "{emergency}");
    let by_certificate = get(format!("certificate={}", cert.fingerprint)).await;
    assert!(
        by_certificate.contains("ig-1 (leeds-cc)"),
        "{by_certificate}"
    );
    let by_purpose = get("purpose=research".into()).await;
    assert!(by_purpose.contains("No entries match."), "{by_purpose}");

    // The search as CSV: every entry, with a header, as an attachment.
    let csv = auditor
        .get(format!("{console}/ledger/export.csv?principal=ig-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("index,time,agency,principal")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 3, "{csv}");
    assert!(rows.iter().all(|r| r.contains(",ig-1,")), "{csv}");

    // GOV.UK Frontend is served from the binary.
    let css = auditor
        .get(format!("{console}/assets/govuk-frontend.min.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status().as_u16(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains(".govuk-"));

    // Signing out needs the form's CSRF token.
    let csrf = hidden(&again, "csrf").expect("the sign-out form carries a CSRF token");
    let refused = auditor
        .post(format!("{console}/sign-out"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let still = auditor
        .get(format!("{console}/ledger"))
        .send()
        .await
        .unwrap();
    assert!(still.url().path().ends_with("/ledger"), "still signed in");
    let out = auditor
        .post(format!("{console}/sign-out"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(out.url().path().ends_with("/sign-in"), "{}", out.url());
    let after = auditor
        .get(format!("{console}/ledger"))
        .send()
        .await
        .unwrap();
    assert!(after.url().path().ends_with("/sign-in"), "signed out");

    // A social worker signs in too, but Accord does not let her search the
    // ledger: the console says so, and the refusal is recorded.
    let worker = browser(pki, true);
    let (status, page) = sign_in(&worker, console, "sw-1").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are not allowed to do this"), "{page}");
    let refusals = s
        .ledger(EntryFilter {
            principal: Some("sw-1".into()),
            ..EntryFilter::default()
        })
        .await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].draft.outcome, accord::ledger::Outcome::Denied);

    // Refused again and again, she raises an alert to the council, which
    // its auditor works in the inbox.
    raise_refusal_alert(&worker, console, 4).await;
    let auditor = browser(pki, true);
    sign_in(&auditor, console, "ig-1").await;
    let inbox = auditor
        .get(format!("{console}/alerts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        inbox.contains("Repeated refusals, raised just now"),
        "{inbox}"
    );
    assert!(inbox.contains("sw-1"), "{inbox}");
    let alert = hidden(&inbox, "alert").expect("an acknowledgement form");
    let csrf = hidden(&inbox, "csrf").unwrap();
    let acknowledge = |form: Vec<(&'static str, String)>| {
        let auditor = auditor.clone();
        let console = console.to_owned();
        async move {
            let r = auditor
                .post(format!("{console}/alerts/acknowledge"))
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, _) = acknowledge(vec![("alert", alert.clone()), ("note", "looked".into())]).await;
    assert_eq!(status, 403, "no CSRF token");
    let (_, empty) = acknowledge(vec![
        ("csrf", csrf.clone()),
        ("alert", alert.clone()),
        ("note", " ".into()),
    ])
    .await;
    assert!(empty.contains("Say what you found"), "{empty}");
    let (status, done) = acknowledge(vec![
        ("csrf", csrf.clone()),
        ("alert", alert.clone()),
        (
            "note",
            "Sam tried the console without the auditor role.".into(),
        ),
    ])
    .await;
    assert_eq!(status, 200);
    assert!(done.contains("The alert was acknowledged"), "{done}");
    assert!(done.contains("There are no alerts to work."), "{done}");
    let all = auditor
        .get(format!("{console}/alerts?all=yes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        all.contains("Sam tried the console without the auditor role."),
        "{all}"
    );
    let acknowledged = s
        .ledger(EntryFilter {
            principal: Some("ig-1".into()),
            ..EntryFilter::default()
        })
        .await;
    assert!(
        acknowledged
            .iter()
            .any(|e| e.draft.action == "/accord.v1.AuditService/AcknowledgeAlert"),
        "{acknowledged:?}"
    );
}

/// An agency's case system beside the console: its client certificate and
/// its own token issuer, whose tokens it signs for its staff.
struct System {
    cert: accord::dev::Issued,
    iss: String,
    signer: accord::dev::TokenSigner,
}

impl System {
    /// A new system of `code`, with a certificate from `pki`.
    fn new(pki: &Pki, code: &str) -> Self {
        Self {
            cert: pki.client(&format!("case-system.{code}"), None),
            iss: format!("https://idp.{code}.example"),
            signer: accord::dev::TokenSigner::generate(&format!("{code}-key-1")).unwrap(),
        }
    }

    /// The issuer as Accord's registry holds it.
    fn issuer(&self) -> pb::TokenIssuer {
        pb::TokenIssuer {
            issuer: self.iss.clone(),
            jwks: Some(pb::token_issuer::Jwks::JwksJson(self.signer.jwks.clone())),
            subject_claim: "sub".into(),
            roles_claim: "roles".into(),
            ..Default::default()
        }
    }

    /// Calls as `principal` holding `roles`, over the system's certificate.
    async fn staff<'s>(&self, s: &'s TestServer, principal: &str, roles: &[&str]) -> Staff<'s> {
        let now = chrono::Utc::now().timestamp();
        let token = self
            .signer
            .sign(&serde_json::json!({
                "iss": self.iss, "aud": AUDIENCE, "sub": principal, "roles": roles,
                "iat": now, "nbf": now, "exp": now + 600,
            }))
            .unwrap();
        s.as_signed_staff(s.tls_channel(Some(&self.cert)).await, token)
    }
}

/// What [`seed`] made.
struct Seeded {
    /// The person, `subjects/{id}`.
    subject: String,
    nhs: String,
    /// The council's referrals shared with the trust's GPs, in force.
    active: pb::Agreement,
    /// The trust's health summaries offered to the council, waiting for
    /// the council's approval.
    pending: pb::Agreement,
}

/// A person the council registered, with a referral and their consent to
/// share it with the trust's GPs; the sharing agreed and a GP's reading of
/// the referral; and an agreement the trust proposed, waiting for the
/// council.
async fn seed(d: &Deployment) -> Seeded {
    let s = &d.s;
    let council = System::new(&d.pki, COUNCIL);
    s.agencies()
        .add_certificate_identity(tonic::Request::new(pb::AddCertificateIdentityRequest {
            parent: format!("agencies/{COUNCIL}"),
            certificate_identity: Some(pb::CertificateIdentity {
                r#match: Some(pb::certificate_identity::Match::CertificateSha256(
                    council.cert.fingerprint.to_string(),
                )),
                note: "case system".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap();
    s.agencies()
        .add_token_issuer(tonic::Request::new(pb::AddTokenIssuerRequest {
            parent: format!("agencies/{COUNCIL}"),
            token_issuer: Some(council.issuer()),
        }))
        .await
        .unwrap();
    let health = System::new(&d.pki, HEALTH);
    s.register_member(
        HEALTH,
        pb::AgencyKind::Health,
        pb::certificate_identity::Match::CertificateSha256(health.cert.fingerprint.to_string()),
        health.issuer(),
    )
    .await;
    let worker = council.staff(s, "sw-1", &["social_worker"]).await;
    let nhs = nhs_number(21);
    let person = worker
        .create_subject(
            subject(&nhs, "Jo", "Bloggs", "2015-03-02"),
            pb::Purpose::DirectCare,
        )
        .await
        .unwrap();
    let referral = worker
        .create_record(
            &person.name,
            CLASS,
            referral_fields("bruising noticed at school"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    worker
        .record_consent(pb::Consent {
            subject: person.name.clone(),
            kind: pb::ConsentKind::Consent as i32,
            purposes: vec![pb::Purpose::DirectCare as i32],
            recipients: vec![format!("agencies/{HEALTH}")],
            channel: pb::ConsentChannel::FaceToFace as i32,
            note: "Given at the family's review meeting".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let council_ig = council.staff(s, "ig-cc", &["ig_lead"]).await;
    let health_ig = health.staff(s, "ig-th", &["ig_lead"]).await;
    // Its review falls due within the month.
    let mut gp_share = terms(&GP_SHARE);
    gp_share.review_date = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let draft = council_ig.propose(gp_share).await.unwrap();
    council_ig.approve(&draft).await.unwrap();
    let active = health_ig.approve(&draft).await.unwrap();
    assert_eq!(active.state, pb::AgreementState::Active as i32);
    health
        .staff(s, "gp-1", &["gp"])
        .await
        .get_record(&referral.name, pb::Purpose::DirectCare)
        .await
        .unwrap();
    let offered = health_ig
        .propose(safeguarding_terms(&["allergies"], 90))
        .await
        .unwrap();
    let pending = health_ig.approve(&offered).await.unwrap();
    assert_eq!(pending.state, pb::AgreementState::Draft as i32);
    Seeded {
        subject: person.name,
        nhs,
        active,
        pending,
    }
}

#[tokio::test]
async fn people_their_consent_history_and_their_access_report() {
    let Some(d) = deploy(Db::Sqlite).await else {
        return;
    };
    let seeded = seed(&d).await;
    let id = seeded.subject.strip_prefix("subjects/").unwrap();
    let auditor = browser(&d.pki, true);
    sign_in(&auditor, &d.console, "ig-1").await;
    let get = |path: String| {
        let auditor = auditor.clone();
        let console = d.console.clone();
        async move {
            auditor
                .get(format!("{console}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };

    // Found by NHS number, and by name and date of birth; a search
    // without enough to go on is explained.
    let by_number = get(format!("/people?nhs_number={}", seeded.nhs)).await;
    assert!(
        by_number.contains(&format!(
            "<a class=\"govuk-link\" href=\"/people/{id}\">Jo Bloggs</a>"
        )),
        "{by_number}"
    );
    assert!(by_number.contains("Exact"), "{by_number}");
    let by_name = get("/people?family_name=Bloggs&birth_date=2015-03-02".into()).await;
    assert!(by_name.contains(&format!("/people/{id}")), "{by_name}");
    let too_little = get("/people?family_name=Bloggs".into()).await;
    assert!(
        too_little.contains("Enter an NHS number, or a family name and a date of birth"),
        "{too_little}"
    );
    let unknown = get("/people/not-a-person".into()).await;
    assert!(unknown.contains("There is no such person"), "{unknown}");

    // Their page: who they are and their consent history.
    let person = get(format!("/people/{id}")).await;
    assert!(
        person.contains("<h1 class=\"govuk-heading-l\">Jo Bloggs</h1>"),
        "{person}"
    );
    for words in [
        "Consent recorded",
        "In effect",
        "your care",
        "Agency leeds-health",
        "In person",
        "Given at the family&#39;s review meeting",
        "sw-1 (Agency leeds-cc)",
    ] {
        assert!(person.contains(words), "{words}: {person}");
    }

    // Their access report: grouped by agency and purpose, in plain words,
    // with the grounds of the GP's reading.
    let report = get(format!("/people/{id}/report")).await;
    assert!(!report.contains("There is a problem"), "{report}");
    for words in [
        "Who has looked at your records",
        "Jo Bloggs, born 2015-03-02, NHS number",
        "since records began",
        "Agency leeds-health (1)",
        "For your care",
        "A gp",
        "Viewed a record: referral date, service.",
        &format!("Under the sharing agreement “{}”.", seeded.active.title),
        "a public task (UK GDPR Article 6(1)(e))",
        "You had given your consent.",
        "Agency leeds-cc",
        "A social worker",
        "Registered the person:",
        "Recorded the person&#39;s consent or objection.",
        "Without a stated purpose",
    ] {
        assert!(report.contains(words), "{words}: {report}");
    }
    assert!(
        report.contains("href=\"/assets/console.css\""),
        "the print stylesheet"
    );
    // A period before any of it: nobody looked.
    let empty = get(format!("/people/{id}/report?to=2020-01-01")).await;
    assert!(
        empty.contains("Nobody looked at your records in this period."),
        "{empty}"
    );
    let bad = get(format!("/people/{id}/report?from=yesterday")).await;
    assert!(bad.contains("year-month-day"), "{bad}");
    let css = auditor
        .get(format!("{}/assets/console.css", d.console))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("@media print"), "{css}");

    // The ledger about them, by name and date of birth; a name without a
    // date of birth is not enough.
    let by_name = get("/ledger?family_name=Bloggs&birth_date=2015-03-02".into()).await;
    assert!(by_name.contains("gp-1 (leeds-health)"), "{by_name}");
    assert!(!by_name.contains("There is a problem"), "{by_name}");
    let half = get("/ledger?family_name=Bloggs".into()).await;
    assert!(half.contains("a family name and a date of birth"), "{half}");

    // The ledger about them, from their page.
    let entries = get(format!("/ledger?subject={id}")).await;
    assert!(
        entries.contains("Showing entries about one person"),
        "{entries}"
    );
    assert!(entries.contains("CreateRecord"), "{entries}");
    assert!(entries.contains("gp-1 (leeds-health)"), "{entries}");

    // Each page was a call Accord recorded under her name.
    let recorded: Vec<String> =
        d.s.ledger(EntryFilter {
            principal: Some("ig-1".into()),
            ..EntryFilter::default()
        })
        .await
        .into_iter()
        .map(|e| e.draft.action)
        .collect();
    for action in [
        "/accord.v1.SubjectService/FindSubjects",
        "/accord.v1.SubjectService/GetSubject",
        "/accord.v1.ConsentService/ListConsents",
        "/accord.v1.AuditService/GetSubjectAccessReport",
    ] {
        assert!(
            recorded.iter().any(|a| a == action),
            "{action}: {recorded:?}"
        );
    }
}

#[tokio::test]
async fn the_agreement_register_and_an_ig_leads_steps() {
    let Some(d) = deploy(Db::Sqlite).await else {
        return;
    };
    let seeded = seed(&d).await;
    let lead = browser(&d.pki, true);
    sign_in(&lead, &d.console, "ig-1").await;
    let get = |path: String| {
        let lead = lead.clone();
        let console = d.console.clone();
        async move {
            lead.get(format!("{console}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let lead = lead.clone();
        let console = d.console.clone();
        async move {
            let r = lead
                .post(format!("{console}{path}"))
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let id = |a: &pb::Agreement| a.name.strip_prefix("agreements/").unwrap().to_owned();
    let (pending, active) = (id(&seeded.pending), id(&seeded.active));

    // The register: what waits for the council, the review falling due,
    // and every agreement.
    let register = get("/agreements".into()).await;
    assert!(!register.contains("There is a problem"), "{register}");
    let waiting = register.split("Reviews due within 30 days").next().unwrap();
    assert!(waiting.contains("Waiting for your approval"), "{register}");
    assert!(waiting.contains(&seeded.pending.title), "{register}");
    assert!(waiting.contains("Needs your approval"), "{register}");
    assert!(!waiting.contains(&seeded.active.title), "{register}");
    let reviews = register.split("All agreements").next().unwrap();
    assert!(reviews.contains(&seeded.active.title), "{register}");
    assert!(reviews.contains("govuk-tag--yellow\">Due"), "{register}");
    assert!(register.contains(&format!("href=\"/agreements/{active}\"")));

    // Approving the trust's offer: the form needs its CSRF token; then the
    // agreement is in force.
    let offer = get(format!("/agreements/{pending}")).await;
    assert!(offer.contains("Approve this agreement"), "{offer}");
    assert!(
        offer.contains("safeguarding children and people at risk"),
        "{offer}"
    );
    let csrf = hidden(&offer, "csrf").unwrap();
    let etag = hidden(&offer, "etag").unwrap();
    let version = hidden(&offer, "version").unwrap();
    let (status, _) = post(
        "/agreements/approve",
        vec![("id", pending.clone()), ("version", version.clone())],
    )
    .await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, approved) = post(
        "/agreements/approve",
        vec![
            ("csrf", csrf.clone()),
            ("id", pending.clone()),
            ("version", version),
            ("etag", etag),
        ],
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert!(
        approved.contains("You approved this agreement for your organisation."),
        "{approved}"
    );
    assert!(approved.contains("In force"), "{approved}");
    assert!(!approved.contains("Approve this agreement"), "{approved}");

    // The GP sharing: its use by purpose and role, then suspended (with a
    // reason) and reinstated.
    let shared = get(format!("/agreements/{active}")).await;
    assert!(
        shared.contains("as far as your organisation may see: 1 in all"),
        "{shared}"
    );
    let usage = shared.split("Disclosures by receiver").nth(1).unwrap();
    for cell in ["leeds-health", "Direct care", "gp", ">1<"] {
        assert!(usage.contains(cell), "{cell}: {usage}");
    }
    let empty = get(format!("/agreements/{active}?to=2020-01-01")).await;
    assert!(empty.contains("0 in all"), "{empty}");
    let etag = hidden(&shared, "etag").unwrap();
    let (_, no_reason) = post(
        "/agreements/suspend",
        vec![
            ("csrf", csrf.clone()),
            ("id", active.clone()),
            ("etag", etag.clone()),
        ],
    )
    .await;
    assert!(
        no_reason.contains("Say why you are suspending"),
        "{no_reason}"
    );
    let (_, suspended) = post(
        "/agreements/suspend",
        vec![
            ("csrf", csrf.clone()),
            ("id", active.clone()),
            ("etag", etag.clone()),
            ("reason", "Consent forms under review".into()),
        ],
    )
    .await;
    assert!(
        suspended.contains("You suspended this agreement"),
        "{suspended}"
    );
    assert!(
        suspended.contains("Consent forms under review"),
        "{suspended}"
    );
    let reinstate_etag = hidden(&suspended, "etag").unwrap();
    let (_, reinstated) = post(
        "/agreements/reinstate",
        vec![
            ("csrf", csrf.clone()),
            ("id", active.clone()),
            ("etag", reinstate_etag),
        ],
    )
    .await;
    assert!(
        reinstated.contains("You reinstated this agreement."),
        "{reinstated}"
    );
    assert!(reinstated.contains("In force"), "{reinstated}");
    // A form from before those steps is stale: refused, nothing changes.
    let (_, stale) = post(
        "/agreements/suspend",
        vec![
            ("csrf", csrf.clone()),
            ("id", active.clone()),
            ("etag", etag),
            ("reason", "from an old page".into()),
        ],
    )
    .await;
    assert!(
        stale.contains("The agreement changed since you opened it"),
        "{stale}"
    );
    // A forged form naming no agreement is refused without a call.
    let (status, forged) = post(
        "/agreements/reinstate",
        vec![
            ("csrf", csrf.clone()),
            ("id", "x\r\nLocation: /elsewhere".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(forged.contains("There is no such agreement"), "{forged}");
    let unknown = get("/agreements/not-an-agreement".into()).await;
    assert!(unknown.contains("There is no such agreement"), "{unknown}");

    // Each step was a call Accord decided and recorded under her name.
    let recorded: Vec<(String, accord::ledger::Outcome)> =
        d.s.ledger(EntryFilter {
            principal: Some("ig-1".into()),
            ..EntryFilter::default()
        })
        .await
        .into_iter()
        .map(|e| (e.draft.action, e.draft.outcome))
        .collect();
    for action in [
        "ListAgreements",
        "GetAgreement",
        "GetAgreementUsage",
        "ApproveAgreement",
        "SuspendAgreement",
        "ReinstateAgreement",
    ] {
        let action = format!("/accord.v1.AgreementService/{action}");
        assert!(
            recorded
                .iter()
                .any(|(a, o)| *a == action && *o == accord::ledger::Outcome::Permitted),
            "{action}: {recorded:?}"
        );
    }
}

#[tokio::test]
async fn the_integrity_panel_verifies_each_checkpoint_extends_the_last() {
    let Some(mut d) = deploy(Db::Sqlite).await else {
        return;
    };
    let auditor = browser(&d.pki, true);
    sign_in(&auditor, &d.console, "ig-1").await;
    let panel = || async {
        auditor
            .get(format!("{}/integrity", d.console))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let first = panel().await;
    assert!(!first.contains("There is a problem"), "{first}");
    assert!(!first.contains("did not verify"), "{first}");
    assert!(
        first.contains("It is the first checkpoint this console has seen"),
        "{first}"
    );
    let key = accord::ledger::checkpoint::SigningKey::parse(
        &std::fs::read_to_string(d.s.ledger_key_file()).unwrap(),
    )
    .unwrap()
    .verifier_key()
    .to_owned();
    // The key: published by the operator and by Accord, and signing.
    let row = first.rsplit(&key).next().expect("the key is listed");
    let cells: Vec<&str> = row
        .split("<td class=\"govuk-table__cell\">")
        .skip(1)
        .take(3)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(cells, ["Yes", "Yes", "Yes"], "{row}");
    let size = |page: &str| -> u64 {
        page.split("id=\"tree-size\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no tree size: {page}"))
    };
    // More calls, another checkpoint: it extends the first.
    auditor
        .get(format!("{}/ledger", d.console))
        .send()
        .await
        .unwrap();
    let second = panel().await;
    assert!(size(&second) > size(&first));
    assert!(
        second.contains(&format!(
            "extends the ledger of {} entries it verified",
            size(&first)
        )),
        "{second}"
    );
    // Both were GetCheckpoint calls, the second with a consistency proof,
    // recorded under her name.
    let recorded: Vec<String> =
        d.s.ledger(EntryFilter {
            principal: Some("ig-1".into()),
            ..EntryFilter::default()
        })
        .await
        .into_iter()
        .map(|e| e.draft.action)
        .collect();
    for action in ["GetCheckpoint", "GetConsistencyProof"] {
        let action = format!("/accord.v1.AuditService/{action}");
        assert!(recorded.contains(&action), "{action}: {recorded:?}");
    }

    // Restarted, the console remembers what it verified (its state file)
    // and goes on from there instead of trusting the next checkpoint as
    // the first.
    let _ = d._console.0.kill();
    let _ = d._console.0.wait();
    let (child, _address, _log) = start_logged(
        &["console"],
        &[(
            "ACCORD_CONFIG",
            d.pki.file("console.toml").to_str().unwrap(),
        )],
    );
    d._console = Reaped(child);
    let auditor = browser(&d.pki, true);
    sign_in(&auditor, &d.console, "ig-1").await;
    let third = auditor
        .get(format!("{}/integrity", d.console))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!third.contains("It is the first checkpoint"), "{third}");
    assert!(
        third.contains(&format!(
            "extends the ledger of {} entries it verified",
            size(&second)
        )),
        "{third}"
    );
}

/// Makes the signed-in `client` load the ledger page `times` times: for a
/// staff member without the auditor role, so many refusals.
async fn raise_refusal_alert(client: &reqwest::Client, console: &str, times: usize) {
    for _ in 0..times {
        let page = client
            .get(format!("{console}/ledger"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("You are not allowed to do this"), "{page}");
    }
}

/// In Chromium: the sign-in page, the provider's login form, the ledger
/// page styled and enhanced under the content security policy, sign-out;
/// every console page passes axe-core's WCAG 2.2 AA checks.
#[tokio::test]
async fn in_a_real_browser_sqlite() {
    in_a_real_browser(Db::Sqlite).await;
}

#[tokio::test]
async fn in_a_real_browser_postgres() {
    in_a_real_browser(Db::Postgres).await;
}

async fn in_a_real_browser(db: Db) {
    use fantoccini::Locator;
    let Some(d) = deploy(db).await else {
        return;
    };
    let seeded = seed(&d).await;
    let Some(browser) = crate::helpers::browser::Browser::start().await else {
        return;
    };
    let axe = node_modules().unwrap().join("axe-core/axe.min.js");
    // Screenshots are named by page, those of the PostgreSQL run apart.
    let shot = |page: &str| match db {
        Db::Sqlite => page.to_owned(),
        Db::Postgres => format!("postgres-{page}"),
    };
    let check = |page: &'static str| {
        let browser = &browser;
        let axe = &axe;
        let name = shot(page);
        async move {
            let violations = browser.accessibility_violations(&name, axe).await;
            assert!(violations.is_empty(), "{page} page: {violations:#?}");
        }
    };
    let c = &browser.client;
    let path = || async { c.current_url().await.unwrap().path().to_owned() };

    c.goto(&format!("{}/ledger", d.console)).await.unwrap();

    assert_eq!(path().await, "/sign-in");
    check("sign-in").await;

    c.find(Locator::Css("a.govuk-button--start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys("ig-1")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("h1.govuk-heading-l"))
        .await
        .unwrap();
    assert_eq!(path().await, "/ledger");
    let source = c.source().await.unwrap();
    assert!(source.contains("Signed in as Ida Gale (ig-1)"), "{source}");
    // GOV.UK Frontend's CSS is applied and its JavaScript ran (the console's
    // script marks the page), both under the content security policy.
    let styled = c
        .execute(
            "return getComputedStyle(document.querySelector('.govuk-heading-l')).fontWeight",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(styled, serde_json::json!("700"), "the heading is bold");
    let enhanced = c
        .execute(
            "return document.body.classList.contains('govuk-frontend-supported')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(enhanced, serde_json::json!(true));
    check("ledger").await;

    // An entry's page: its grounds in words, and its proof checked in the
    // browser against the published key.
    c.find(Locator::Css("a[href='/ledger/entries/1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "verified", "{}", status.1);
    assert!(
        status.1.contains("entry 1 is in the ledger's tree of")
            && status.1.contains("signed by accord.local/ledger+"),
        "{}",
        status.1
    );
    let source = c.source().await.unwrap();
    assert!(source.contains("CreateAgency"), "{source}");
    check("entry").await;
    // In a browser whose WebCrypto has no Ed25519, the bundled library
    // checks the signature instead.
    c.execute(
        "const subtle = globalThis.crypto.subtle;
         const importKey = subtle.importKey.bind(subtle);
         subtle.importKey = (format, key, algorithm, ...rest) =>
           algorithm && algorithm.name === 'Ed25519'
             ? Promise.reject(new DOMException('no Ed25519', 'NotSupportedError'))
             : importKey(format, key, algorithm, ...rest);",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("proof-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "verified", "{}", status.1);
    assert!(
        status
            .1
            .contains("checked with the bundled Ed25519 library"),
        "{}",
        status.1
    );
    // Tampered with on its way to the browser, the proof fails visibly:
    // another leaf hash, then a checkpoint whose size was changed.
    c.execute(
        "document.getElementById('proof').dataset.leaf = '00'.repeat(32)",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("proof-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "failed", "{}", status.1);
    assert!(
        status.1.contains("does not lead to the checkpoint"),
        "{}",
        status.1
    );
    browser.screenshot(&shot("entry-tampered")).await;
    c.goto(&format!("{}/ledger/entries/1", d.console))
        .await
        .unwrap();
    assert_eq!(proof_status(c).await.0, "verified");
    c.execute(
        "const p = document.getElementById('proof');
         const lines = p.dataset.note.split('\\n');
         lines[1] = String(Number(lines[1]) + 1);
         p.dataset.note = lines.join('\\n');
         p.dataset.size = lines[1];",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("proof-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "failed", "{}", status.1);
    assert!(status.1.contains("signature"), "{}", status.1);
    // The alerts inbox: a social worker's repeated refusals, acknowledged
    // with what was found.
    let worker = self::browser(&d.pki, true);
    sign_in(&worker, &d.console, "sw-1").await;
    raise_refusal_alert(&worker, &d.console, 4).await;
    c.goto(&format!("{}/alerts", d.console)).await.unwrap();
    check("alerts").await;
    c.find(Locator::Css("textarea[name=note]"))
        .await
        .unwrap()
        .send_keys("A social worker tried the ledger; no access was given.")
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/alerts/acknowledge'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(".govuk-notification-banner--success"))
        .await
        .unwrap();
    browser.screenshot(&shot("alerts-acknowledged")).await;

    // A person, found by name: their consent history, and the access
    // report produced for them.
    c.goto(&format!("{}/people", d.console)).await.unwrap();
    check("people").await;
    c.find(Locator::Id("family_name"))
        .await
        .unwrap()
        .send_keys("Bloggs")
        .await
        .unwrap();
    c.find(Locator::Id("birth_date"))
        .await
        .unwrap()
        .send_keys("2015-03-02")
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/people'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::LinkText("Jo Bloggs"))
        .await
        .unwrap();
    check("people-found").await;
    c.find(Locator::LinkText("Jo Bloggs"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("h1.govuk-heading-l"))
        .await
        .unwrap();
    let person = c.source().await.unwrap();
    assert!(person.contains("Consent history"), "{person}");
    assert!(person.contains("Given at the family"), "{person}");
    check("person").await;
    c.find(Locator::LinkText("Produce their access report"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("report")).await.unwrap();
    let report = c.source().await.unwrap();
    assert!(
        report.contains("Who has looked at your records"),
        "{report}"
    );
    assert!(
        report.contains("Viewed a record: referral date, service."),
        "{report}"
    );
    // The print button is there once the script runs, and printing leaves
    // the navigation and forms out.
    let printable = c
        .execute(
            "return [document.getElementById('print-report').hidden,
                     [...document.styleSheets].some((s) => [...s.cssRules].some((r) =>
                       r.media && r.media.mediaText === 'print'))]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(printable, serde_json::json!([false, true]));
    check("report").await;
    // Printed to PDF by the browser, as the IG officer would save it.
    let pdf = c
        .print(
            fantoccini::wd::PrintConfigurationBuilder::default()
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    std::fs::write(
        format!("target/console-screenshots/{}.pdf", shot("report")),
        &pdf,
    )
    .unwrap();

    // The agreement register: the trust's offer waits for the council's
    // IG lead, who approves it.
    c.goto(&format!("{}/agreements", d.console)).await.unwrap();
    check("agreements").await;
    c.find(Locator::LinkText(&seeded.pending.title))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("form[action='/agreements/approve'] button"))
        .await
        .unwrap();
    check("agreement").await;
    c.find(Locator::Css("form[action='/agreements/approve'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(".govuk-notification-banner--success"))
        .await
        .unwrap();
    let approved = c.source().await.unwrap();
    assert!(approved.contains("In force"), "{approved}");
    browser.screenshot(&shot("agreement-approved")).await;

    // The integrity panel: the checkpoint checked by the console and again
    // in the browser, which sees a forged one fail.
    c.goto(&format!("{}/integrity", d.console)).await.unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "verified", "{}", status.1);
    assert!(
        status.1.contains("is signed by accord.local/ledger+"),
        "{}",
        status.1
    );
    check("integrity").await;
    c.execute(
        "const p = document.getElementById('proof');
         const lines = p.dataset.note.split('\\n');
         lines[2] = btoa(String.fromCharCode(...new Uint8Array(32)));
         p.dataset.note = lines.join('\\n');",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("proof-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = proof_status(c).await;
    assert_eq!(status.0, "failed", "{}", status.1);
    assert!(status.1.contains("signature"), "{}", status.1);

    // A page Accord refused: an entry beyond the ledger.
    c.goto(&format!("{}/ledger/entries/999999", d.console))
        .await
        .unwrap();
    assert!(c.source().await.unwrap().contains("There is a problem"));
    check("entry-refused").await;

    c.goto(&format!("{}/ledger", d.console)).await.unwrap();

    c.find(Locator::Css("form[action='/sign-out'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("a.govuk-button--start"))
        .await
        .unwrap();
    assert_eq!(path().await, "/sign-in");
    c.goto(&format!("{}/ledger", d.console)).await.unwrap();
    assert_eq!(path().await, "/sign-in", "signed out");
}

/// The proof status of the entry page once the browser has checked it:
/// its result (`verified` or `failed`) and its words.
async fn proof_status(c: &fantoccini::Client) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = c
            .execute(
                "const s = document.getElementById('proof-status');
                 return s ? [s.dataset.result, s.textContent] : ['missing', ''];",
                vec![],
            )
            .await
            .unwrap();
        let result = status[0].as_str().unwrap_or_default().to_owned();
        if result == "verified" || result == "failed" || Instant::now() > deadline {
            return (result, status[1].as_str().unwrap_or_default().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
