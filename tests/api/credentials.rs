//! The registry's certificate identities: how agencies' systems will be
//! recognised by their client certificates.

use accord::api::pb;
use accord::domain::credential::CertificateMatch;
use accord::store::Store;
use pb::certificate_identity::Match;
use tonic::Code;

use crate::helpers::*;

fn add(parent: &str, m: Option<Match>, note: &str) -> pb::AddCertificateIdentityRequest {
    pb::AddCertificateIdentityRequest {
        parent: parent.to_owned(),
        certificate_identity: Some(pb::CertificateIdentity {
            r#match: m,
            note: note.to_owned(),
            ..Default::default()
        }),
    }
}

async fn list(
    s: &TestServer,
    agency: &str,
    as_agency: &str,
) -> Result<Vec<pb::CertificateIdentity>, tonic::Status> {
    s.agencies()
        .list_certificate_identities(s.as_staff(as_agency, "it-1", "admin").request(
            pb::ListCertificateIdentitiesRequest {
                parent: format!("agencies/{agency}"),
            },
        ))
        .await
        .map(|r| r.into_inner().certificate_identities)
}

async fn certificate_identities(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    s.register(&[
        ("leeds-cc", pb::AgencyKind::Council),
        ("wy-police", pb::AgencyKind::Police),
    ])
    .await;
    let pin = "AB:".repeat(32);
    let pin = pin.trim_end_matches(':');
    let old = s
        .agencies()
        .add_certificate_identity(s.as_operator().request(add(
            "agencies/leeds-cc",
            Some(Match::SpkiSha256(pin.to_owned())),
            "case system, 2026 key",
        )))
        .await
        .unwrap()
        .into_inner()
        .certificate_identity
        .unwrap();
    assert_eq!(old.r#match, Some(Match::SpkiSha256("ab".repeat(32))));
    // Rotation: a second identity beside the first.
    s.agencies()
        .add_certificate_identity(s.as_operator().request(add(
            "agencies/leeds-cc",
            Some(Match::SubjectAltName(
                "spiffe://leeds-cc/case-system".to_owned(),
            )),
            "case system, workload identity",
        )))
        .await
        .unwrap();
    assert_eq!(list(&s, "leeds-cc", "leeds-cc").await.unwrap().len(), 2);

    // One identity recognises one agency.
    let taken = s
        .agencies()
        .add_certificate_identity(s.as_operator().request(add(
            "agencies/wy-police",
            Some(Match::SpkiSha256("ab".repeat(32))),
            "",
        )))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let none = s
        .agencies()
        .add_certificate_identity(s.as_operator().request(add("agencies/leeds-cc", None, "")))
        .await
        .unwrap_err();
    assert_eq!(violations(&none)[0].0, "certificate_identity.match");
    let bad = s
        .agencies()
        .add_certificate_identity(s.as_operator().request(add(
            "agencies/leeds-cc",
            Some(Match::CertificateSha256("not-a-digest".to_owned())),
            "",
        )))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&bad)[0].0,
        "certificate_identity.certificate_sha256"
    );
    let unknown = s
        .agencies()
        .add_certificate_identity(s.as_operator().request(add(
            "agencies/nobody-here",
            Some(Match::SpkiSha256("cd".repeat(32))),
            "",
        )))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Agencies cannot register identities, nor read another's.
    let not_operator = s
        .agencies()
        .add_certificate_identity(s.as_staff("leeds-cc", "it-1", "admin").request(add(
            "agencies/leeds-cc",
            Some(Match::SpkiSha256("ef".repeat(32))),
            "",
        )))
        .await
        .unwrap_err();
    assert_eq!(not_operator.code(), Code::PermissionDenied);
    let nosy = list(&s, "leeds-cc", "wy-police").await.unwrap_err();
    assert_eq!(reason(&nosy), "NOT_YOUR_AGENCY");

    // The store finds the agency by the certificate's key.
    let store = s.store().await;
    let found = store
        .certificate_identities_matching(&[
            CertificateMatch::certificate(&"cd".repeat(32)).unwrap(),
            CertificateMatch::spki(&"ab".repeat(32)).unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].agency.as_str(), "leeds-cc");
    store.close().await;

    // Revocation keeps the identity, revoked.
    let revoke = || async {
        s.agencies()
            .revoke_certificate_identity(s.as_operator().request(
                pb::RevokeCertificateIdentityRequest {
                    name: old.name.clone(),
                },
            ))
            .await
    };
    let revoked = revoke()
        .await
        .unwrap()
        .into_inner()
        .certificate_identity
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    assert_eq!(reason(&revoke().await.unwrap_err()), "ALREADY_REVOKED");
    let listed = list(&s, "leeds-cc", "leeds-cc").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .find(|c| c.name == old.name)
            .unwrap()
            .revoke_time
            .is_some()
    );
    s.stop().await;
}

#[tokio::test]
async fn certificate_identities_sqlite() {
    certificate_identities(Db::Sqlite).await;
}

#[tokio::test]
async fn certificate_identities_postgres() {
    certificate_identities(Db::Postgres).await;
}

const ED_JWKS: &str = r#"{"keys":[{"kid":"2026-1","kty":"OKP","crv":"Ed25519","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

fn issuer(parent: &str, iss: &str, jwks: pb::token_issuer::Jwks) -> pb::AddTokenIssuerRequest {
    pb::AddTokenIssuerRequest {
        parent: parent.to_owned(),
        token_issuer: Some(pb::TokenIssuer {
            issuer: iss.to_owned(),
            jwks: Some(jwks),
            ..Default::default()
        }),
    }
}

/// The council's token issuers, as `as_agency` asks for them.
async fn list_issuers(
    s: &TestServer,
    as_agency: &str,
) -> Result<Vec<pb::TokenIssuer>, tonic::Status> {
    s.agencies()
        .list_token_issuers(s.as_staff(as_agency, "it-1", "admin").request(
            pb::ListTokenIssuersRequest {
                parent: "agencies/leeds-cc".to_owned(),
            },
        ))
        .await
        .map(|r| r.into_inner().token_issuers)
}

async fn token_issuers(db: Db) {
    use pb::token_issuer::Jwks;
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    s.register(&[
        ("leeds-cc", pb::AgencyKind::Council),
        ("wy-police", pb::AgencyKind::Police),
    ])
    .await;
    let iss = "https://login.leeds-cc.example/realms/staff";
    let added = s
        .agencies()
        .add_token_issuer(s.as_operator().request(issuer(
            "agencies/leeds-cc",
            iss,
            Jwks::JwksJson(ED_JWKS.to_owned()),
        )))
        .await
        .unwrap()
        .into_inner()
        .token_issuer
        .unwrap();
    assert_eq!(
        (added.subject_claim.as_str(), added.roles_claim.as_str()),
        ("sub", "roles")
    );

    // A key file on the server, with the claim names an IdP uses.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entra.jwks.json");
    std::fs::write(&path, ED_JWKS).unwrap();
    let mut entra = issuer(
        "agencies/leeds-cc",
        "https://login.microsoftonline.example/tenant/v2.0",
        Jwks::JwksPath(path.display().to_string()),
    );
    let t = entra.token_issuer.as_mut().unwrap();
    t.subject_claim = "oid".to_owned();
    t.roles_claim = "groups".to_owned();
    s.agencies()
        .add_token_issuer(s.as_operator().request(entra))
        .await
        .unwrap();

    let taken = s
        .agencies()
        .add_token_issuer(s.as_operator().request(issuer(
            "agencies/wy-police",
            iss,
            Jwks::JwksJson(ED_JWKS.to_owned()),
        )))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let symmetric = s
        .agencies()
        .add_token_issuer(s.as_operator().request(issuer(
            "agencies/wy-police",
            "https://idp.wy-police.example",
            Jwks::JwksJson(
                r#"{"keys":[{"kid":"a","kty":"oct","alg":"HS256","k":"c2VjcmV0"}]}"#.to_owned(),
            ),
        )))
        .await
        .unwrap_err();
    let v = violations(&symmetric);
    assert_eq!(v[0].0, "token_issuer.jwks_json");
    assert!(v[0].1.contains("RS256, ES256 or EdDSA"), "{v:?}");
    let relative = s
        .agencies()
        .add_token_issuer(s.as_operator().request(issuer(
            "agencies/wy-police",
            "https://idp.wy-police.example",
            Jwks::JwksPath("keys.json".to_owned()),
        )))
        .await
        .unwrap_err();
    assert_eq!(violations(&relative)[0].0, "token_issuer.jwks_path");

    let listed = list_issuers(&s, "leeds-cc").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].subject_claim, "oid");
    let nosy = list_issuers(&s, "wy-police").await.unwrap_err();
    assert_eq!(reason(&nosy), "NOT_YOUR_AGENCY");

    let store = s.store().await;
    let found = store.token_issuer(iss).await.unwrap().unwrap();
    assert_eq!(found.agency.as_str(), "leeds-cc");
    store.close().await;

    let remove = || async {
        s.agencies()
            .remove_token_issuer(s.as_operator().request(pb::RemoveTokenIssuerRequest {
                name: added.name.clone(),
            }))
            .await
    };
    remove().await.unwrap();
    assert_eq!(remove().await.unwrap_err().code(), Code::NotFound);
    let store = s.store().await;
    assert!(store.token_issuer(iss).await.unwrap().is_none());
    store.close().await;
    s.stop().await;
}

#[tokio::test]
async fn token_issuers_sqlite() {
    token_issuers(Db::Sqlite).await;
}

#[tokio::test]
async fn token_issuers_postgres() {
    token_issuers(Db::Postgres).await;
}
