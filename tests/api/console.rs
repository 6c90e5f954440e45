//! The web console (`accord console`) as a process, with a real OpenID
//! Connect provider (npm `oidc-provider`) and a secure Accord: staff sign
//! in with PKCE, every page is a ListEntries call Accord records under the
//! staff member's name over the console's agency certificate, sessions and
//! forms are protected.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord::api::pb;
use accord::store::EntryFilter;

use crate::helpers::process::{Reaped, start_logged};
use crate::helpers::{COUNCIL, Db, Pki, TestServer};

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
    let script = modules
        .parent()
        .unwrap()
        .join(format!("provider-{}.mjs", std::process::id()));
    std::fs::copy("tests/console/provider.mjs", &script).unwrap();
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
            "ig-1": { "name": "Ida Gale", "roles": ["auditor"] },
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
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes())
                .unwrap(),
        )
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
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

use rustls::pki_types::pem::PemObject;

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
async fn deploy() -> Option<Deployment> {
    let modules = node_modules()?;
    let pki = Pki::new();
    let s = TestServer::start_secure_tuned(Db::Sqlite, &pki, absolute_audience).await?;
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
    let Some(d) = deploy().await else {
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
    let nobody = get(format!("nhs_number={}", crate::helpers::nhs_number(7))).await;
    assert!(
        nobody.contains("No person with that NHS number"),
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
async fn in_a_real_browser_staff_sign_in_and_the_pages_pass_the_accessibility_check() {
    use fantoccini::Locator;
    let Some(d) = deploy().await else {
        return;
    };
    let Some(browser) = crate::helpers::browser::Browser::start().await else {
        return;
    };
    let axe = node_modules().unwrap().join("axe-core/axe.min.js");
    let c = &browser.client;
    let path = || async { c.current_url().await.unwrap().path().to_owned() };

    c.goto(&format!("{}/ledger", d.console)).await.unwrap();

    assert_eq!(path().await, "/sign-in");
    let violations = browser.accessibility_violations("sign-in", &axe).await;
    assert!(violations.is_empty(), "sign-in page: {violations:#?}");

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
    let violations = browser.accessibility_violations("ledger", &axe).await;
    assert!(violations.is_empty(), "ledger page: {violations:#?}");

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
    let violations = browser.accessibility_violations("entry", &axe).await;
    assert!(violations.is_empty(), "entry page: {violations:#?}");
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
    browser.screenshot("entry-tampered").await;
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
    let violations = browser.accessibility_violations("alerts", &axe).await;
    assert!(violations.is_empty(), "alerts page: {violations:#?}");
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
    browser.screenshot("alerts-acknowledged").await;
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
