//! Development credentials: a certificate authority, server and client
//! certificates, and token signing keys with their JWKS, as `accord dev
//! init` writes them and as tests use them. Never for real data: the CA's
//! key sits in a file next to the rest.

pub mod setup;

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::json;

use crate::domain::credential::Fingerprint;

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From a day ago until `days` from now.
    pub fn days_from_now(days: i64) -> Self {
        let now = Utc::now();
        Self {
            not_before: now - TimeDelta::days(1),
            not_after: now + TimeDelta::days(days),
        }
    }
}

/// The calendar day of `t`, as rcgen takes it.
fn ymd(t: DateTime<Utc>) -> anyhow::Result<(i32, u8, u8)> {
    let month = u8::try_from(t.month()).context("month out of range")?;
    let day = u8::try_from(t.day()).context("day out of range")?;
    Ok((t.year(), month, day))
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub fingerprint: Fingerprint,
}

/// A development certificate authority.
#[derive(Debug)]
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

fn params(common_name: &str, validity: Validity) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Accord development");
    p.distinguished_name = dn;
    let (y, m, d) = ymd(validity.not_before)?;
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(validity.not_after)?;
    p.not_after = rcgen::date_time_ymd(y, m, d);
    Ok(p)
}

impl DevCa {
    /// A new CA named `common_name`, valid for ten years.
    pub fn generate(common_name: &str) -> anyhow::Result<Self> {
        let mut p = params(common_name, Validity::days_from_now(3650))?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().context("cannot generate a key")?;
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(p, key).context("cannot sign the CA")?;
        Ok(Self { issuer, key_pem })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn issue(&self, mut p: CertificateParams) -> anyhow::Result<Issued> {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().context("cannot generate a key")?;
        let cert = p
            .signed_by(&key, &self.issuer)
            .context("cannot sign the certificate")?;
        Ok(Issued {
            fingerprint: Fingerprint::of(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for `localhost`, 127.0.0.1 and ::1.
    pub fn server(&self, validity: Validity) -> anyhow::Result<Issued> {
        let mut p = params("localhost", validity)?;
        p.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().context("bad DNS name")?),
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(p)
    }

    /// A client certificate named `common_name`, with `uri` as its subject
    /// alternative name if given.
    pub fn client(
        &self,
        common_name: &str,
        uri: Option<&str>,
        validity: Validity,
    ) -> anyhow::Result<Issued> {
        let mut p = params(common_name, validity)?;
        if let Some(uri) = uri {
            p.subject_alt_names = vec![SanType::URI(uri.try_into().context("bad URI")?)];
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(p)
    }
}

/// A staff-token signing key (ES256) of an identity provider.
#[derive(Debug)]
pub struct TokenSigner {
    pub kid: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The public key as a JWKS document, as the registry holds it.
    pub jwks: String,
}

impl TokenSigner {
    /// A new signing key named `kid`.
    pub fn generate(kid: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("cannot generate a key")?;
        Self::from_pem(kid, &key.serialize_pem())
    }

    /// The signer whose private key is `key_pem` (PKCS#8, P-256).
    pub fn from_pem(kid: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("not a PKCS#8 private key")?;
        let point = key.public_key_raw();
        // An uncompressed P-256 point: 0x04, then x and y.
        if point.len() != 65 || point[0] != 4 {
            anyhow::bail!("the key is not a P-256 key");
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        }]});
        Ok(Self {
            kid: kid.to_owned(),
            key_pem: key_pem.to_owned(),
            jwks: jwks.to_string(),
        })
    }

    /// A token of `issuer` for `audience`, naming `subject` with `roles`,
    /// valid from `now` for `lifetime`.
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        subject: &str,
        roles: &[String],
        now: DateTime<Utc>,
        lifetime: TimeDelta,
    ) -> anyhow::Result<String> {
        let claims = json!({
            "iss": issuer, "aud": audience, "sub": subject, "roles": roles,
            "iat": now.timestamp(), "nbf": now.timestamp(),
            "exp": (now + lifetime).timestamp(),
        });
        self.sign(&claims)
    }

    /// Signs any claims (for tests of what a verifier must refuse).
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.key_pem.as_bytes())
            .context("cannot use the signing key")?;
        jsonwebtoken::encode(&header, claims, &key).context("cannot sign the token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tls::{ClientCas, examine};
    use crate::domain::credential::CertificateMatch;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn issued_client_certificates_chain_to_their_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("Test CA").unwrap();
        let other = DevCa::generate("Other CA").unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let cas = ClientCas::load(&ca_file).unwrap();
        let now = Utc::now();
        let good = ca
            .client(
                "case-system",
                Some("spiffe://leeds-cc/case"),
                Validity::days_from_now(30),
            )
            .unwrap();
        assert_eq!(cas.check(&[der(&good.cert_pem)], now), Ok(()));
        let stranger = other
            .client("case-system", None, Validity::days_from_now(30))
            .unwrap();
        assert_eq!(
            cas.check(&[der(&stranger.cert_pem)], now)
                .unwrap_err()
                .code(),
            "CLIENT_CERTIFICATE_UNKNOWN_CA"
        );
        let old = Validity {
            not_before: now - TimeDelta::days(60),
            not_after: now - TimeDelta::days(30),
        };
        let expired = ca.client("case-system", None, old).unwrap();
        assert_eq!(
            cas.check(&[der(&expired.cert_pem)], now)
                .unwrap_err()
                .code(),
            "CLIENT_CERTIFICATE_EXPIRED"
        );
        // A server certificate is not a client certificate.
        let server = ca.server(Validity::days_from_now(30)).unwrap();
        assert_eq!(
            cas.check(&[der(&server.cert_pem)], now).unwrap_err().code(),
            "CLIENT_CERTIFICATE_INVALID"
        );
        let examined = examine(&der(&good.cert_pem)).unwrap();
        assert_eq!(examined.fingerprint, good.fingerprint);
        assert_eq!(examined.common_name.as_deref(), Some("case-system"));
        assert!(
            examined
                .matchers
                .contains(&CertificateMatch::SubjectAltName(
                    "spiffe://leeds-cc/case".into()
                ))
        );
        assert!(
            examined
                .matchers
                .contains(&CertificateMatch::CertificateSha256(good.fingerprint.0))
        );
    }

    #[test]
    fn minted_tokens_verify_against_the_published_keys() {
        use crate::auth::jwt::{TokenCheck, verify};
        use crate::domain::AgencyCode;
        use crate::domain::credential::{JwksSource, TokenIssuer, TokenIssuerId};
        let signer = TokenSigner::generate("k1").unwrap();
        let again = TokenSigner::from_pem("k1", &signer.key_pem).unwrap();
        assert_eq!(again.jwks, signer.jwks);
        let issuer = TokenIssuer {
            id: TokenIssuerId::generate(),
            agency: AgencyCode::parse("leeds-cc").unwrap(),
            issuer: "https://idp.example".into(),
            jwks: JwksSource::Document(signer.jwks.clone()),
            subject_claim: "sub".into(),
            roles_claim: "roles".into(),
            create_time: Utc::now(),
        };
        let now = Utc::now();
        let token = signer
            .mint(
                "https://idp.example",
                "accord",
                "sw-1",
                &["social_worker".into()],
                now,
                TimeDelta::minutes(5),
            )
            .unwrap();
        let keys = serde_json::from_str(&signer.jwks).unwrap();
        let check = TokenCheck {
            audience: "accord",
            leeway_seconds: 0,
            now,
        };
        let claims = verify(&token, &issuer, &keys, &check).unwrap();
        assert_eq!(claims.principal.as_str(), "sw-1");
        assert_eq!(claims.roles[0].as_str(), "social_worker");
    }
}
