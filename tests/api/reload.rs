//! SIGHUP reloads the server certificate and key and the client CAs of a
//! running `accord serve` process: new connections see the new
//! configuration, an established connection keeps working, and a bad new
//! file is refused with one log line while the old configuration stays.
//! JWKS files are read again too.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use accord::api::pb;
use accord::dev::{DevCa, TokenSigner, Validity};
use chrono::{TimeDelta, Utc};

use crate::helpers::process::{Reaped, start_logged};
use crate::helpers::{AUDIENCE, OPERATOR_ISSUER, Pki, reason, tls_channel, with_token};

/// Sends SIGHUP to `child` and waits (bounded) for a log line containing
/// `expected`.
fn hang_up(child: &Reaped, log: &Receiver<String>, expected: &str) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(expected) => return,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no {expected:?} in the log ({e}): {seen:#?}"),
        }
    }
}

/// ListAgencies as the operator over `channel`.
async fn list(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    pb::agency_service_client::AgencyServiceClient::new(channel)
        .list_agencies(pb::ListAgenciesRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn sighup_reloads_tls_files_and_keeps_old_connections_and_refuses_bad_files() {
    let pki = Pki::new();
    let config = pki.file("accord.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\ntls_cert_file = {cert:?}\n\
             tls_key_file = {key:?}\ntls_client_ca_file = {ca:?}\noperator_certificates = [{op:?}]\n\
             token_audience = {AUDIENCE:?}\noperator_token_issuer = {OPERATOR_ISSUER:?}\n\
             operator_jwks_file = {jwks:?}\n",
            data = pki.file("data"),
            cert = pki.file("server.pem"),
            key = pki.file("server.key"),
            ca = pki.file("ca.pem"),
            op = pki.operator.fingerprint.to_string(),
            jwks = pki.file("operator-jwks.json"),
        ),
    )
    .unwrap();
    let (child, address, log) =
        start_logged(&["serve"], &[("ACCORD_CONFIG", config.to_str().unwrap())]);
    let child = Reaped(child);
    let address: std::net::SocketAddr = address.parse().unwrap();
    let first_ca = pki.ca.cert_pem();

    // An established connection, trusting the first server certificate.
    let old = tls_channel(address, &first_ca, Some(&pki.operator))
        .await
        .unwrap();
    list(old.clone()).await.unwrap();

    // A new server certificate, from another CA, written in place.
    let second = DevCa::generate("Accord second test CA").unwrap();
    let renewed = second.server(Validity::days_from_now(30)).unwrap();
    std::fs::write(pki.file("server.pem"), &renewed.cert_pem).unwrap();
    std::fs::write(pki.file("server.key"), &renewed.key_pem).unwrap();
    hang_up(&child, &log, "reloaded the TLS certificate");

    // A fresh client sees the new certificate: one trusting only the new CA
    // connects; one trusting only the old CA cannot.
    let fresh = tls_channel(address, &second.cert_pem(), Some(&pki.operator))
        .await
        .expect("the new certificate is served");
    list(fresh).await.unwrap();
    let stale = match tls_channel(address, &first_ca, Some(&pki.operator)).await {
        Ok(channel) => list(channel).await.is_ok(),
        Err(_) => false,
    };
    assert!(!stale, "the old certificate is still served to new clients");
    // The connection made before the reload goes on working (a reconnect
    // would fail: it trusts only the old certificate's CA).
    list(old.clone())
        .await
        .expect("the old connection keeps working");

    // A bad certificate file is refused with one line; the configuration in
    // use stays.
    std::fs::write(pki.file("server.pem"), "not a certificate").unwrap();
    hang_up(&child, &log, "refused the new TLS files");
    let after_bad = tls_channel(address, &second.cert_pem(), Some(&pki.operator))
        .await
        .expect("the previous certificate is still served");
    list(after_bad).await.unwrap();

    // JWKS files: read when first needed, kept, and read again on SIGHUP.
    let as_operator = |signer: &TokenSigner, channel: tonic::transport::Channel| {
        let token = signer
            .mint(
                OPERATOR_ISSUER,
                AUDIENCE,
                "ops-1",
                &[],
                Utc::now(),
                TimeDelta::minutes(5),
            )
            .unwrap();
        async move {
            pb::agency_service_client::AgencyServiceClient::new(channel)
                .list_agencies(with_token(pb::ListAgenciesRequest::default(), &token))
                .await
                .map(|_| ())
        }
    };
    as_operator(&pki.operator_signer, old.clone())
        .await
        .unwrap();
    let rotated = TokenSigner::generate("ops-key-2").unwrap();
    std::fs::write(pki.file("operator-jwks.json"), &rotated.jwks).unwrap();
    let early = as_operator(&rotated, old.clone()).await.unwrap_err();
    assert_eq!(
        reason(&early),
        "TOKEN_UNKNOWN_KEY",
        "the file is kept until SIGHUP"
    );
    hang_up(&child, &log, "reloaded a token issuer's key file");
    as_operator(&rotated, old.clone())
        .await
        .expect("the new key file is read on SIGHUP");
    std::fs::write(pki.file("operator-jwks.json"), "{\"keys\": [").unwrap();
    hang_up(&child, &log, "refused a token issuer's key file");
    as_operator(&rotated, old.clone())
        .await
        .expect("a bad key file leaves the keys read before");

    // New client CAs apply to the next call, even on an old connection: the
    // operator's certificate, from the first CA, is refused once only the
    // second CA is trusted.
    std::fs::write(pki.file("server.pem"), &renewed.cert_pem).unwrap();
    std::fs::write(pki.file("ca.pem"), second.cert_pem()).unwrap();
    hang_up(&child, &log, "reloaded the TLS certificate");
    let refused = list(old).await.expect_err("a CA no longer trusted");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason(&refused), "CLIENT_CERTIFICATE_UNKNOWN_CA");
}
