//! Secure mode over real TLS on loopback: agency systems by their client
//! certificates, staff by signed tokens from their agency's issuer, the two
//! bound together; every refusal answered with its reason and in the
//! ledger with the certificate that tried.

use accord::api::pb;
use accord::dev::{DevCa, Issued, TokenSigner, Validity};
use accord::ledger::Outcome;
use base64::Engine;
use chrono::{TimeDelta, Utc};
use pb::certificate_identity::Match;
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::helpers::*;

const COUNCIL: &str = "leeds-cc";
const HEALTH: &str = "leeds-th";

/// An agency's system and identity provider, as registered.
struct Member {
    code: &'static str,
    cert: Issued,
    iss: String,
    signer: TokenSigner,
    /// The claims naming the staff member and their roles, as this
    /// member's identity provider writes them: the council's `sub` and a
    /// `roles` list; the health trust's `oid` and a space-separated
    /// `groups` string.
    subject_claim: &'static str,
    roles_claim: &'static str,
}

impl Member {
    /// A valid staff token with `roles`.
    fn token(&self, roles: &[&str]) -> String {
        self.signer.sign(&self.claims_with(roles)).unwrap()
    }

    /// Claims as the member's issuer writes them.
    fn claims_with(&self, roles: &[&str]) -> serde_json::Value {
        let now = Utc::now().timestamp();
        let roles = if self.code == COUNCIL {
            json!(roles)
        } else {
            json!(roles.join(" "))
        };
        let mut claims = json!({"iss": self.iss, "aud": AUDIENCE, "iat": now, "nbf": now,
                                "exp": now + 300});
        claims[self.subject_claim] = json!(format!("staff-of-{}", self.code));
        claims[self.roles_claim] = roles;
        claims
    }

    /// Claims for tokens made by hand.
    fn claims(&self) -> serde_json::Value {
        self.claims_with(&["social_worker"])
    }
}

struct Secure {
    s: TestServer,
    pki: Pki,
    council: Member,
    health: Member,
}

/// How a member's keys are registered: the council's as a JWKS document in
/// the registry, the health trust's as a JWKS file on the server.
fn jwks(m: &Member, pki: &Pki) -> pb::token_issuer::Jwks {
    if m.code == COUNCIL {
        return pb::token_issuer::Jwks::JwksJson(m.signer.jwks.clone());
    }
    let path = pki.file(&format!("{}-jwks.json", m.code));
    std::fs::write(&path, &m.signer.jwks).unwrap();
    pb::token_issuer::Jwks::JwksPath(path.display().to_string())
}

/// A secure server with two members: the council recognised by its
/// certificate's fingerprint, the health trust by its certificate's URI.
async fn secure(db: Db) -> Option<Secure> {
    secure_tuned(db, |_| {}).await
}

/// As [`secure`], with the server's configuration changed by `tune`.
async fn secure_tuned(db: Db, tune: fn(&mut accord::config::Config)) -> Option<Secure> {
    let pki = Pki::new();
    let s = TestServer::start_secure_tuned(db, &pki, tune).await?;
    let member =
        |code: &'static str, uri: Option<&str>, claims: (&'static str, &'static str)| Member {
            code,
            cert: pki.client(&format!("case-system.{code}"), uri),
            iss: format!("https://idp.{code}.example"),
            signer: TokenSigner::generate(&format!("{code}-key-1")).unwrap(),
            subject_claim: claims.0,
            roles_claim: claims.1,
        };
    let council = member(COUNCIL, None, ("sub", "roles"));
    let health = member(
        HEALTH,
        Some("spiffe://accord.test/leeds-th"),
        ("oid", "groups"),
    );
    for (m, kind, matcher) in [
        (
            &council,
            pb::AgencyKind::Council,
            Match::CertificateSha256(council.cert.fingerprint.to_string()),
        ),
        (
            &health,
            pb::AgencyKind::Health,
            Match::SubjectAltName("spiffe://accord.test/leeds-th".into()),
        ),
    ] {
        let issuer = pb::TokenIssuer {
            issuer: m.iss.clone(),
            jwks: Some(jwks(m, &pki)),
            subject_claim: m.subject_claim.to_owned(),
            roles_claim: m.roles_claim.to_owned(),
            ..Default::default()
        };
        s.register_member(m.code, kind, matcher, issuer).await;
    }
    Some(Secure {
        s,
        pki,
        council,
        health,
    })
}

/// Revokes, as the operator, the oldest certificate identity of `agency`.
async fn revoke_oldest_identity(s: &TestServer, agency: &str) {
    let oldest = s
        .agencies()
        .list_certificate_identities(Request::new(pb::ListCertificateIdentitiesRequest {
            parent: format!("agencies/{agency}"),
        }))
        .await
        .unwrap()
        .into_inner()
        .certificate_identities
        .remove(0);
    s.agencies()
        .revoke_certificate_identity(Request::new(pb::RevokeCertificateIdentityRequest {
            name: oldest.name,
        }))
        .await
        .unwrap();
}

/// Lists agencies over `channel` with `token` (if any) and request id
/// `id`.
async fn list_agencies(
    channel: Channel,
    token: Option<&str>,
    id: &str,
) -> Result<Vec<pb::Agency>, tonic::Status> {
    let mut request = match token {
        Some(t) => with_token(pb::ListAgenciesRequest::default(), t),
        None => Request::new(pb::ListAgenciesRequest::default()),
    };
    request
        .metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    pb::agency_service_client::AgencyServiceClient::new(channel)
        .list_agencies(request)
        .await
        .map(|r| r.into_inner().agencies)
}

/// The one ledger entry of request `id`.
async fn entry_of(s: &TestServer, id: &str) -> accord::ledger::Entry {
    let mut found: Vec<_> = s
        .ledger(Default::default())
        .await
        .into_iter()
        .filter(|e| e.draft.request_id == id)
        .collect();
    assert_eq!(found.len(), 1, "exactly one entry for request {id}");
    found.pop().unwrap()
}

/// Asserts that request `id` was refused with `code` and `reason`, and
/// that its ledger entry records the refusal and `certificate`.
async fn assert_refused(
    s: &TestServer,
    result: Result<Vec<pb::Agency>, tonic::Status>,
    id: &str,
    code: Code,
    why: &str,
    certificate: Option<&Issued>,
) {
    let status = result.expect_err(id);
    assert_eq!(status.code(), code, "{id}: {status:?}");
    assert_eq!(reason(&status), why, "{id}: {}", status.message());
    let entry = entry_of(s, id).await;
    assert_eq!(entry.draft.outcome, Outcome::Denied, "{id}");
    assert_eq!(entry.draft.reason_code, why, "{id}");
    assert_eq!(
        entry.draft.client_certificate,
        certificate
            .map(|c| c.fingerprint.to_string())
            .unwrap_or_default(),
        "{id}"
    );
}

/// A token with `header` and `claims`, signed by nobody in particular.
fn unsigned(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// HS256 "signed" with the issuer's public key as the secret: the classic
/// algorithm-confusion attack.
fn hs256_with_public_key(m: &Member) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(m.signer.jwks.as_bytes());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(m.signer.kid.clone());
    jsonwebtoken::encode(&header, &m.claims(), &key).unwrap()
}

/// The token with its payload's roles changed, signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["social_worker", "auditor", "ig_lead"]);
    format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    )
}

async fn mutual_tls_and_tokens(db: Db) {
    let Some(Secure {
        s,
        pki,
        council,
        health,
    }) = secure(db).await
    else {
        return;
    };
    let council_channel = s.tls_channel(Some(&council.cert)).await;
    let health_channel = s.tls_channel(Some(&health.cert)).await;

    // A valid certificate with a valid token of the same agency.
    let agencies = list_agencies(
        council_channel.clone(),
        Some(&council.token(&["social_worker"])),
        "valid-council",
    )
    .await
    .unwrap();
    assert_eq!(agencies.len(), 2);
    let ok = entry_of(&s, "valid-council").await;
    assert_eq!(ok.draft.outcome, Outcome::Permitted);
    assert_eq!(ok.draft.agency, COUNCIL);
    assert_eq!(ok.draft.principal, "staff-of-leeds-cc");
    assert_eq!(ok.draft.roles, ["social_worker"]);
    assert_eq!(
        ok.draft.client_certificate,
        council.cert.fingerprint.to_string()
    );
    // The health trust is recognised by its certificate's URI.
    let ok = list_agencies(
        health_channel.clone(),
        Some(&health.token(&["gp"])),
        "valid-health",
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let ok = entry_of(&s, "valid-health").await;
    assert_eq!(ok.draft.agency, HEALTH);
    // Its issuer names staff in `oid` and roles in `groups`.
    assert_eq!(ok.draft.principal, "staff-of-leeds-th");
    assert_eq!(ok.draft.roles, ["gp"]);
    // A token in another issuer's shape lacks the claim this one names.
    let other_shape = health
        .signer
        .mint(
            &health.iss,
            AUDIENCE,
            "gp-1",
            &[],
            Utc::now(),
            TimeDelta::minutes(5),
        )
        .unwrap();
    let r = list_agencies(health_channel.clone(), Some(&other_shape), "missing-claim").await;
    assert_refused(
        &s,
        r,
        "missing-claim",
        Code::Unauthenticated,
        "TOKEN_MISSING_CLAIM",
        Some(&health.cert),
    )
    .await;

    // A certificate from a CA Accord does not trust.
    let stranger_ca = DevCa::generate("Stranger CA").unwrap();
    let stranger = stranger_ca
        .client("case-system.leeds-cc", None, Validity::days_from_now(30))
        .unwrap();
    let r = list_agencies(
        s.tls_channel(Some(&stranger)).await,
        Some(&council.token(&["social_worker"])),
        "unknown-ca",
    )
    .await;
    let unauth = Code::Unauthenticated;
    assert_refused(
        &s,
        r,
        "unknown-ca",
        unauth,
        "CLIENT_CERTIFICATE_UNKNOWN_CA",
        Some(&stranger),
    )
    .await;
    assert_eq!(entry_of(&s, "unknown-ca").await.draft.agency, "");

    // Refusals are attributed where the certificate can be: a registered
    // fingerprint whatever its CA; a registered name only from a trusted
    // CA (anyone can write a name into a certificate of their own CA).
    let health_uri = Some("spiffe://accord.test/leeds-th");
    let stranger_named = stranger_ca
        .client(
            "case-system.leeds-th",
            health_uri,
            Validity::days_from_now(30),
        )
        .unwrap();
    let r = list_agencies(
        s.tls_channel(Some(&stranger_named)).await,
        Some(&health.token(&["gp"])),
        "unknown-ca-named",
    )
    .await;
    assert_refused(
        &s,
        r,
        "unknown-ca-named",
        unauth,
        "CLIENT_CERTIFICATE_UNKNOWN_CA",
        Some(&stranger_named),
    )
    .await;
    assert_eq!(entry_of(&s, "unknown-ca-named").await.draft.agency, "");
    s.agencies()
        .add_certificate_identity(Request::new(pb::AddCertificateIdentityRequest {
            parent: format!("agencies/{COUNCIL}"),
            certificate_identity: Some(pb::CertificateIdentity {
                r#match: Some(Match::CertificateSha256(stranger.fingerprint.to_string())),
                note: "a certificate of a CA Accord does not trust".to_owned(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap();
    let r = list_agencies(
        s.tls_channel(Some(&stranger)).await,
        Some(&council.token(&["social_worker"])),
        "unknown-ca-pinned",
    )
    .await;
    assert_refused(
        &s,
        r,
        "unknown-ca-pinned",
        unauth,
        "CLIENT_CERTIFICATE_UNKNOWN_CA",
        Some(&stranger),
    )
    .await;
    assert_eq!(
        entry_of(&s, "unknown-ca-pinned").await.draft.agency,
        COUNCIL
    );

    // An expired certificate from the trusted CA.
    let now = Utc::now();
    let expired = pki
        .ca
        .client(
            "case-system.leeds-cc",
            None,
            Validity {
                not_before: now - TimeDelta::days(60),
                not_after: now - TimeDelta::days(2),
            },
        )
        .unwrap();
    let r = list_agencies(
        s.tls_channel(Some(&expired)).await,
        Some(&council.token(&["social_worker"])),
        "expired-cert",
    )
    .await;
    assert_refused(
        &s,
        r,
        "expired-cert",
        unauth,
        "CLIENT_CERTIFICATE_EXPIRED",
        Some(&expired),
    )
    .await;
    assert_eq!(entry_of(&s, "expired-cert").await.draft.agency, "");
    // The trust's expired certificate, from the trusted CA, by its name.
    let expired_health = pki
        .ca
        .client(
            "case-system.leeds-th",
            health_uri,
            Validity {
                not_before: now - TimeDelta::days(60),
                not_after: now - TimeDelta::days(2),
            },
        )
        .unwrap();
    let r = list_agencies(
        s.tls_channel(Some(&expired_health)).await,
        Some(&health.token(&["gp"])),
        "expired-named",
    )
    .await;
    assert_refused(
        &s,
        r,
        "expired-named",
        unauth,
        "CLIENT_CERTIFICATE_EXPIRED",
        Some(&expired_health),
    )
    .await;
    assert_eq!(entry_of(&s, "expired-named").await.draft.agency, HEALTH);

    // A trusted certificate no agency registered.
    let unregistered = pki.client("case-system.elsewhere", None);
    let r = list_agencies(
        s.tls_channel(Some(&unregistered)).await,
        Some(&council.token(&["social_worker"])),
        "unregistered-cert",
    )
    .await;
    assert_refused(
        &s,
        r,
        "unregistered-cert",
        unauth,
        "CLIENT_CERTIFICATE_UNKNOWN",
        Some(&unregistered),
    )
    .await;

    // No client certificate at all.
    let r = list_agencies(
        s.tls_channel(None).await,
        Some(&council.token(&["social_worker"])),
        "no-cert",
    )
    .await;
    assert_refused(&s, r, "no-cert", unauth, "CLIENT_CERTIFICATE_MISSING", None).await;

    // The health trust's certificate with a valid council token.
    let r = list_agencies(
        health_channel.clone(),
        Some(&council.token(&["social_worker"])),
        "wrong-agency",
    )
    .await;
    assert_refused(
        &s,
        r,
        "wrong-agency",
        unauth,
        "AGENCY_MISMATCH",
        Some(&health.cert),
    )
    .await;
    let mismatch = entry_of(&s, "wrong-agency").await;
    assert_eq!(mismatch.draft.agency, HEALTH);
    // The council's credential was presented over another agency's
    // connection: its auditors see the refusal too.
    assert_eq!(mismatch.draft.controller, COUNCIL);

    // Token refusals, all over the council's own connection.
    let expired_token = council
        .signer
        .mint(
            &council.iss,
            AUDIENCE,
            "sw-1",
            &[],
            now - TimeDelta::minutes(10),
            TimeDelta::minutes(5),
        )
        .unwrap();
    let impostor = TokenSigner::generate(&council.signer.kid).unwrap();
    let none = unsigned(
        &json!({"alg": "none", "typ": "JWT", "kid": council.signer.kid}),
        &council.claims(),
        b"",
    );
    let wrong_audience = council
        .signer
        .mint(
            &council.iss,
            "some-other-service",
            "sw-1",
            &[],
            now,
            TimeDelta::minutes(5),
        )
        .unwrap();
    let unknown_issuer = impostor
        .mint(
            "https://idp.nobody.example",
            AUDIENCE,
            "sw-1",
            &[],
            now,
            TimeDelta::minutes(5),
        )
        .unwrap();
    let cases: [(&str, Option<String>, &str); 9] = [
        ("expired-token", Some(expired_token), "TOKEN_EXPIRED"),
        (
            "other-key",
            Some(impostor.sign(&council.claims()).unwrap()),
            "TOKEN_BAD_SIGNATURE",
        ),
        ("alg-none", Some(none), "TOKEN_ALGORITHM_NOT_ALLOWED"),
        (
            "hs256-public-key",
            Some(hs256_with_public_key(&council)),
            "TOKEN_ALGORITHM_NOT_ALLOWED",
        ),
        (
            "wrong-audience",
            Some(wrong_audience),
            "TOKEN_WRONG_AUDIENCE",
        ),
        ("missing-token", None, "TOKEN_MISSING"),
        (
            "tampered",
            Some(tampered(&council.token(&["social_worker"]))),
            "TOKEN_BAD_SIGNATURE",
        ),
        (
            "unknown-issuer",
            Some(unknown_issuer),
            "TOKEN_UNKNOWN_ISSUER",
        ),
        ("garbage", Some("not-a-jwt".to_owned()), "TOKEN_MALFORMED"),
    ];
    for (id, token, why) in cases {
        let r = list_agencies(council_channel.clone(), token.as_deref(), id).await;
        assert_refused(&s, r, id, unauth, why, Some(&council.cert)).await;
        let entry = entry_of(&s, id).await;
        assert_eq!(entry.draft.agency, COUNCIL, "{id}");
        // Tokens are never recorded.
        if let Some(t) = token.filter(|t| t.len() > 20) {
            let signature = t.rsplit('.').next().unwrap_or_default();
            assert!(!format!("{:?}", entry.draft).contains(&t), "{id}");
            assert!(
                signature.len() < 8 || !entry.draft.reason.contains(signature),
                "{id}"
            );
        }
    }

    // An auditor lists the calls made with one certificate (written as
    // certificate tools print fingerprints).
    let printed = council
        .cert
        .fingerprint
        .0
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut audit = pb::audit_service_client::AuditServiceClient::new(council_channel.clone());
    let listed = audit
        .list_entries(with_token(
            pb::ListEntriesRequest {
                purpose: pb::Purpose::Administration as i32,
                client_certificate: printed,
                page_size: 100,
                ..Default::default()
            },
            &council.token(&["auditor"]),
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(listed.len() >= 10, "{}", listed.len());
    assert!(
        listed
            .iter()
            .all(|e| e.client_certificate == council.cert.fingerprint.to_string())
    );
    assert!(listed.iter().any(|e| e.request_id == "valid-council"));
    assert!(listed.iter().any(|e| e.request_id == "tampered"));
    let bad = audit
        .list_entries(with_token(
            pb::ListEntriesRequest {
                purpose: pb::Purpose::Administration as i32,
                client_certificate: "not-a-fingerprint".into(),
                ..Default::default()
            },
            &council.token(&["auditor"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("client_certificate"),
        "{}",
        bad.message()
    );

    // Agencies cannot make operator calls, whatever their token claims.
    let mut as_council =
        pb::agency_service_client::AgencyServiceClient::new(council_channel.clone());
    let denied = as_council
        .create_agency(with_token(
            pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: "rogue".into(),
                    display_name: "Rogue".into(),
                    kind: pb::AgencyKind::Council as i32,
                    ..Default::default()
                }),
            },
            &council.token(&["operator"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A suspended agency is known but refused.
    s.agencies()
        .update_agency(Request::new(pb::UpdateAgencyRequest {
            agency: Some(pb::Agency {
                name: format!("agencies/{HEALTH}"),
                status: pb::AgencyStatus::Suspended as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
        }))
        .await
        .unwrap();
    let r = list_agencies(
        health_channel.clone(),
        Some(&health.token(&["gp"])),
        "suspended",
    )
    .await;
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "AGENCY_SUSPENDED");

    // Rotation: a second identity for the council's new certificate; both
    // work until the old one is revoked, then only the new one.
    let renewed = pki.client("case-system.leeds-cc", None);
    s.agencies()
        .add_certificate_identity(Request::new(pb::AddCertificateIdentityRequest {
            parent: format!("agencies/{COUNCIL}"),
            certificate_identity: Some(pb::CertificateIdentity {
                r#match: Some(Match::CertificateSha256(renewed.fingerprint.to_string())),
                note: "renewed".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap();
    let renewed_channel = s.tls_channel(Some(&renewed)).await;
    let token = council.token(&["social_worker"]);
    // A token bound to a certificate (RFC 8705 `cnf`) works over that one
    // only, even within its agency.
    let mut bound_claims = council.claims();
    bound_claims["cnf"] = json!({
        "x5t#S256": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(council.cert.fingerprint.0)
    });
    let bound = council.signer.sign(&bound_claims).unwrap();
    assert!(
        list_agencies(council_channel.clone(), Some(&bound), "bound")
            .await
            .is_ok()
    );
    let r = list_agencies(renewed_channel.clone(), Some(&bound), "bound-elsewhere").await;
    assert_refused(
        &s,
        r,
        "bound-elsewhere",
        unauth,
        "TOKEN_CERTIFICATE_MISMATCH",
        Some(&renewed),
    )
    .await;
    assert!(
        list_agencies(renewed_channel.clone(), Some(&token), "renewed")
            .await
            .is_ok()
    );
    assert!(
        list_agencies(council_channel.clone(), Some(&token), "old")
            .await
            .is_ok()
    );
    revoke_oldest_identity(&s, COUNCIL).await;
    let r = list_agencies(council_channel, Some(&token), "revoked").await;
    assert_refused(
        &s,
        r,
        "revoked",
        unauth,
        "CLIENT_CERTIFICATE_REVOKED",
        Some(&council.cert),
    )
    .await;
    assert!(
        list_agencies(renewed_channel.clone(), Some(&token), "renewed-again")
            .await
            .is_ok()
    );

    // The operator's certificate alone: the certificate's name is recorded.
    assert!(
        list_agencies(s.channel.clone(), None, "operator-system")
            .await
            .is_ok()
    );
    let entry = entry_of(&s, "operator-system").await;
    assert_eq!(entry.draft.principal, "ops-console");
    assert_eq!(entry.draft.roles, ["operator"]);
    assert_eq!(
        entry.draft.client_certificate,
        pki.operator.fingerprint.to_string()
    );
    // With a token from the operator issuer, the person is recorded.
    let ops_token = pki
        .operator_signer
        .mint(
            OPERATOR_ISSUER,
            AUDIENCE,
            "ops-anna",
            &["ops_lead".to_owned()],
            now,
            TimeDelta::minutes(5),
        )
        .unwrap();
    assert!(
        list_agencies(s.channel.clone(), Some(&ops_token), "operator-person")
            .await
            .is_ok()
    );
    let entry = entry_of(&s, "operator-person").await;
    assert_eq!(entry.draft.principal, "ops-anna");
    assert_eq!(entry.draft.roles, ["ops_lead", "operator"]);
    // The operator's token over an agency's connection, and an agency's
    // token over the operator's, are both refused.
    let r = list_agencies(renewed_channel, Some(&ops_token), "operator-token").await;
    assert_refused(
        &s,
        r,
        "operator-token",
        unauth,
        "AGENCY_MISMATCH",
        Some(&renewed),
    )
    .await;
    // Operator staff may also work from a trusted certificate that no
    // agency holds, with a token of the operator issuer granting the role.
    let laptop = pki.client("ops-laptop", None);
    let laptop_channel = s.tls_channel(Some(&laptop)).await;
    let with_role = pki
        .operator_signer
        .mint(
            OPERATOR_ISSUER,
            AUDIENCE,
            "ops-ben",
            &["operator".to_owned()],
            now,
            TimeDelta::minutes(5),
        )
        .unwrap();
    let mut request = with_token(
        pb::CreateAgencyRequest {
            agency: Some(pb::Agency {
                code: "wy-police".into(),
                display_name: "West Yorkshire Police".into(),
                kind: pb::AgencyKind::Police as i32,
                ..Default::default()
            }),
        },
        &with_role,
    );
    request
        .metadata_mut()
        .insert("x-request-id", "laptop".parse().unwrap());
    pb::agency_service_client::AgencyServiceClient::new(laptop_channel.clone())
        .create_agency(request)
        .await
        .unwrap();
    let entry = entry_of(&s, "laptop").await;
    assert_eq!(
        (entry.draft.agency.as_str(), entry.draft.principal.as_str()),
        ("operator", "ops-ben")
    );
    assert_eq!(
        entry.draft.client_certificate,
        laptop.fingerprint.to_string()
    );
    let r = list_agencies(laptop_channel, Some(&ops_token), "laptop-no-role").await;
    assert_refused(
        &s,
        r,
        "laptop-no-role",
        unauth,
        "OPERATOR_ROLE_MISSING",
        Some(&laptop),
    )
    .await;
    let r = list_agencies(s.channel.clone(), Some(&token), "agency-token").await;
    assert_refused(
        &s,
        r,
        "agency-token",
        unauth,
        "AGENCY_MISMATCH",
        Some(&pki.operator),
    )
    .await;

    // When the registry cannot be read, the caller is told to retry
    // (UNAVAILABLE), not that their credentials are bad; it is recorded as
    // Accord's failure. A certificate never seen is looked up in it; a
    // known one is authenticated on the registry as held, but its entry
    // commits only if the registry's version can be read (and is still the
    // one relied on).
    accord::store::install_drivers();
    let raw = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    let unseen = pki.client("case-system-2.leeds-cc", None);
    for (table, certificate, id, why) in [
        (
            "certificate_identities",
            &unseen,
            "registry-down",
            "REGISTRY_UNAVAILABLE",
        ),
        (
            "policy_state",
            &renewed,
            "counter-down",
            "STORAGE_UNAVAILABLE",
        ),
    ] {
        let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
        let away = format!("{table}_away");
        sqlx::query(&rename(table, &away))
            .execute(&raw)
            .await
            .unwrap();
        let r = list_agencies(s.tls_channel(Some(certificate)).await, Some(&token), id).await;
        let status = r.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{id}: {status:?}");
        let entry = entry_of(&s, id).await;
        assert_eq!(entry.draft.outcome, Outcome::Failed, "{id}");
        assert_eq!(entry.draft.reason_code, why, "{id}");
        sqlx::query(&rename(&away, table))
            .execute(&raw)
            .await
            .unwrap();
    }
    raw.close().await;

    // Removing an issuer stops its tokens at once, even one verified (and
    // remembered) a moment ago.
    let renewed_channel = s.tls_channel(Some(&renewed)).await;
    assert!(
        list_agencies(renewed_channel.clone(), Some(&token), "before-removal")
            .await
            .is_ok()
    );
    let issuer = s
        .agencies()
        .list_token_issuers(Request::new(pb::ListTokenIssuersRequest {
            parent: format!("agencies/{COUNCIL}"),
        }))
        .await
        .unwrap()
        .into_inner()
        .token_issuers
        .remove(0);
    s.agencies()
        .remove_token_issuer(Request::new(pb::RemoveTokenIssuerRequest {
            name: issuer.name,
        }))
        .await
        .unwrap();
    let r = list_agencies(renewed_channel, Some(&token), "after-removal").await;
    assert_refused(
        &s,
        r,
        "after-removal",
        unauth,
        "TOKEN_UNKNOWN_ISSUER",
        Some(&renewed),
    )
    .await;

    // Plain TCP to a TLS server gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", s.address))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(list_agencies(plain, Some(&token), "plain").await.is_err());
    }
    s.stop().await;
}

#[tokio::test]
async fn mutual_tls_and_tokens_sqlite() {
    mutual_tls_and_tokens(Db::Sqlite).await;
}

#[tokio::test]
async fn mutual_tls_and_tokens_postgres() {
    mutual_tls_and_tokens(Db::Postgres).await;
}

/// Two server processes on one PostgreSQL database: a revocation made
/// through one is refused by the other on its very next call, though it
/// had just accepted (and remembered) that certificate.
#[tokio::test]
async fn revocation_reaches_every_process() {
    let Some(Secure {
        s, pki, council, ..
    }) = secure(Db::Postgres).await
    else {
        return;
    };
    let other = s.start_secure_beside(&pki).await;
    let token = council.token(&["social_worker"]);
    let channel = other.tls_channel(Some(&council.cert)).await;
    assert!(
        list_agencies(channel.clone(), Some(&token), "before")
            .await
            .is_ok()
    );
    revoke_oldest_identity(&s, COUNCIL).await;
    let r = list_agencies(channel, Some(&token), "after").await;
    assert_refused(
        &other,
        r,
        "after",
        Code::Unauthenticated,
        "CLIENT_CERTIFICATE_REVOKED",
        Some(&council.cert),
    )
    .await;
    other.stop().await;
    s.stop().await;
}

/// Revocations made through one server race calls made through another on
/// the same PostgreSQL database, which authenticates on the registry it
/// holds and has the registry's version checked when each call's entry
/// commits. A call started after a revocation was answered is refused; in
/// the ledger, no call over a certificate is permitted after its identity
/// was revoked; and every call answered has its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_race_calls_in_another_process() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const ROUNDS: usize = 3;
    const CALLERS: usize = 4;
    const MAX_CALLS: usize = 300;

    let Some(Secure {
        s, pki, council, ..
    }) = secure(Db::Postgres).await
    else {
        return;
    };
    let other = s.start_secure_beside(&pki).await;
    let token = council.token(&["social_worker"]);
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let cert = pki.client(&format!("case-system-{round}.leeds-cc"), None);
        let identity = s
            .agencies()
            .add_certificate_identity(Request::new(pb::AddCertificateIdentityRequest {
                parent: format!("agencies/{COUNCIL}"),
                certificate_identity: Some(pb::CertificateIdentity {
                    r#match: Some(Match::CertificateSha256(cert.fingerprint.to_string())),
                    note: format!("round {round}"),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .certificate_identity
            .unwrap();
        let channel = other.tls_channel(Some(&cert)).await;
        let (stop, oks) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (channel, token) = (channel.clone(), token.clone());
                let (stop, oks) = (Arc::clone(&stop), Arc::clone(&oks));
                tokio::spawn(async move {
                    for i in 0..MAX_CALLS {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let id = format!("race-{round}-{caller}-{i}");
                        match list_agencies(channel.clone(), Some(&token), &id).await {
                            Ok(_) => {
                                oks.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                assert_eq!(reason(&e), "CLIENT_CERTIFICATE_REVOKED", "{e:?}");
                            }
                        }
                    }
                })
            })
            .collect();
        for _ in 0..500 {
            if oks.load(Ordering::SeqCst) >= CALLERS {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            oks.load(Ordering::SeqCst) >= CALLERS,
            "the calls did not get going"
        );
        s.agencies()
            .revoke_certificate_identity(Request::new(pb::RevokeCertificateIdentityRequest {
                name: identity.name.clone(),
            }))
            .await
            .unwrap();
        // Answered: from now on no call over that certificate is served.
        for i in 0..5 {
            let id = format!("after-{round}-{i}");
            let r = list_agencies(channel.clone(), Some(&token), &id).await;
            assert_eq!(reason(&r.unwrap_err()), "CLIENT_CERTIFICATE_REVOKED");
        }
        stop.store(true, Ordering::SeqCst);
        for caller in callers {
            caller.await.unwrap();
        }
        rounds.push((cert, identity.name, oks.load(Ordering::SeqCst)));
    }

    let entries = s.ledger(Default::default()).await;
    for (cert, identity, answered_ok) in rounds {
        let fingerprint = cert.fingerprint.to_string();
        let permitted: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.draft.client_certificate == fingerprint && e.draft.outcome == Outcome::Permitted
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            permitted.len(),
            answered_ok,
            "every call answered has its entry"
        );
        let revoked = entries
            .iter()
            .position(|e| {
                e.draft.action.ends_with("/RevokeCertificateIdentity")
                    && e.draft.records == [identity.clone()]
            })
            .expect("the revocation's entry");
        assert!(
            permitted.iter().all(|&i| i < revoked),
            "a call over {identity} was permitted after its revocation"
        );
    }
    other.stop().await;
    s.stop().await;
}

/// ListEntries over `channel` with `token`.
async fn entries_as(
    channel: Channel,
    token: &str,
    request: pb::ListEntriesRequest,
) -> Result<Vec<pb::LedgerEntry>, tonic::Status> {
    pb::audit_service_client::AuditServiceClient::new(channel)
        .list_entries(with_token(request, token))
        .await
        .map(|r| r.into_inner().entries)
}

/// Calls refused before any agency was established are seen by the
/// operator's security auditors (a role agencies' tokens cannot grant),
/// who are alerted to bursts of them; no agency's auditors see them.
#[tokio::test]
async fn security_auditors_review_unattributed_refusals() {
    let Some(Secure {
        s, pki, council, ..
    }) = secure(Db::Sqlite).await
    else {
        return;
    };
    for i in 0..5 {
        let r = list_agencies(s.tls_channel(None).await, None, &format!("anon-{i}")).await;
        assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);
    }
    let unattributed = pb::ListEntriesRequest {
        purpose: pb::Purpose::Administration as i32,
        unattributed_only: true,
        ..Default::default()
    };

    // An agency's token cannot grant the role, nor do its auditors see them.
    let council_channel = s.tls_channel(Some(&council.cert)).await;
    let council_token = council.token(&["auditor", "security_auditor"]);
    let refused = entries_as(
        council_channel.clone(),
        &council_token,
        unattributed.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "ROLE_NOT_PERMITTED");
    let own = entries_as(
        council_channel,
        &council_token,
        pb::ListEntriesRequest {
            purpose: pb::Purpose::Administration as i32,
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(own.iter().all(|e| !e.agency.is_empty()), "{own:?}");

    // The operator's security auditor sees them, and only them.
    let security = pki
        .operator_signer
        .mint(
            OPERATOR_ISSUER,
            AUDIENCE,
            "sec-1",
            &["security_auditor".to_owned()],
            Utc::now(),
            TimeDelta::minutes(5),
        )
        .unwrap();
    let seen = entries_as(s.channel.clone(), &security, unattributed.clone())
        .await
        .unwrap();
    let anonymous: Vec<&pb::LedgerEntry> = seen
        .iter()
        .filter(|e| e.request_id.starts_with("anon-"))
        .collect();
    assert_eq!(anonymous.len(), 5, "{seen:?}");
    assert!(seen.iter().all(|e| e.agency.is_empty()));
    assert!(
        anonymous
            .iter()
            .all(|e| e.reason_code == "CLIENT_CERTIFICATE_MISSING")
    );
    let both = entries_as(
        s.channel.clone(),
        &security,
        pb::ListEntriesRequest {
            agency: format!("agencies/{COUNCIL}"),
            ..unattributed
        },
    )
    .await
    .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);

    // The fifth refusal raised one alert to the operator.
    let alerts = pb::audit_service_client::AuditServiceClient::new(s.channel.clone())
        .list_alerts(with_token(
            pb::ListAlertsRequest {
                purpose: pb::Purpose::Administration as i32,
                ..Default::default()
            },
            &security,
        ))
        .await
        .unwrap()
        .into_inner()
        .alerts;
    let bursts: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind == pb::AlertKind::UnattributedRefusals as i32)
        .collect();
    assert_eq!(bursts.len(), 1, "{alerts:?}");
    assert_eq!(bursts[0].recipient, "agencies/operator");
    assert!(
        bursts[0].summary.contains("before any agency"),
        "{}",
        bursts[0].summary
    );
    s.stop().await;
}

/// The data-quality role (possible duplicates of subjects across agencies)
/// comes only with the operator's own credentials: an agency's token that
/// claims it is refused.
#[tokio::test]
async fn only_the_operator_confers_the_data_quality_role() {
    let Some(Secure {
        s, pki, council, ..
    }) = secure(Db::Sqlite).await
    else {
        return;
    };
    let list = |channel: Channel, token: String| async move {
        pb::subject_service_client::SubjectServiceClient::new(channel)
            .list_possible_duplicates(with_token(
                pb::ListPossibleDuplicatesRequest::default(),
                &token,
            ))
            .await
    };
    let council_channel = s.tls_channel(Some(&council.cert)).await;
    let refused = list(council_channel, council.token(&["data_quality"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "ROLE_NOT_PERMITTED");
    let data_quality = pki
        .operator_signer
        .mint(
            OPERATOR_ISSUER,
            AUDIENCE,
            "dq-1",
            &["data_quality".to_owned()],
            Utc::now(),
            TimeDelta::minutes(5),
        )
        .unwrap();
    let listed = list(s.channel.clone(), data_quality).await.unwrap();
    assert!(listed.into_inner().possible_duplicates.is_empty());
    s.stop().await;
}

/// Each client certificate has a rate limit of its own: one system's
/// burst is refused (RESOURCE_EXHAUSTED, audited with the certificate)
/// while another agency's system is served.
#[tokio::test]
async fn each_client_certificate_is_rate_limited() {
    // The health trust's keys are a file in `_pki`'s directory.
    let Some(Secure {
        s,
        council,
        health,
        pki: _pki,
    }) = secure_tuned(Db::Sqlite, |c| {
        c.certificate_calls_per_second = 1;
        c.certificate_burst = 3;
    })
    .await
    else {
        return;
    };
    let channel = s.tls_channel(Some(&council.cert)).await;
    let token = council.token(&["social_worker"]);
    let mut refused = None;
    for i in 0..10 {
        if let Err(e) = list_agencies(channel.clone(), Some(&token), &format!("burst-{i}")).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the certificate's limit refuses a call");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "RATE_LIMITED");
    assert!(
        refused.message().contains("client_certificate"),
        "{}",
        refused.message()
    );
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.reason_code, "RATE_LIMITED");
    assert_eq!(
        entry.draft.client_certificate,
        council.cert.fingerprint.to_string()
    );
    let other = list_agencies(
        s.tls_channel(Some(&health.cert)).await,
        Some(&health.token(&["gp"])),
        "other-system",
    )
    .await;
    assert!(other.is_ok(), "{other:?}");
    s.stop().await;
}
