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
        .list_certificate_identities(as_caller(
            pb::ListCertificateIdentitiesRequest {
                parent: format!("agencies/{agency}"),
            },
            as_agency,
            "it-1",
            "admin",
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
        .add_certificate_identity(as_operator(add(
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
        .add_certificate_identity(as_operator(add(
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
        .add_certificate_identity(as_operator(add(
            "agencies/wy-police",
            Some(Match::SpkiSha256("ab".repeat(32))),
            "",
        )))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let none = s
        .agencies()
        .add_certificate_identity(as_operator(add("agencies/leeds-cc", None, "")))
        .await
        .unwrap_err();
    assert_eq!(violations(&none)[0].0, "certificate_identity.match");
    let bad = s
        .agencies()
        .add_certificate_identity(as_operator(add(
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
        .add_certificate_identity(as_operator(add(
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
        .add_certificate_identity(as_caller(
            add(
                "agencies/leeds-cc",
                Some(Match::SpkiSha256("ef".repeat(32))),
                "",
            ),
            "leeds-cc",
            "it-1",
            "admin",
        ))
        .await
        .unwrap_err();
    assert_eq!(not_operator.code(), Code::PermissionDenied);
    let nosy = list(&s, "leeds-cc", "wy-police").await.unwrap_err();
    assert_eq!(reason(&nosy), "NOT_YOUR_AGENCY");

    // The store finds the agency by the certificate's key.
    let store = s.store().await;
    let found = store
        .certificate_identity(&CertificateMatch::spki(&"ab".repeat(32)).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.agency.as_str(), "leeds-cc");
    store.close().await;

    // Revocation keeps the identity, revoked.
    let revoke = || async {
        s.agencies()
            .revoke_certificate_identity(as_operator(pb::RevokeCertificateIdentityRequest {
                name: old.name.clone(),
            }))
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
