//! How an agency's systems are recognised: the client-certificate
//! identities the registry holds for each agency. An agency may hold
//! several at once (certificate rotation); a revoked one recognises nobody.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};

use super::{AgencyCode, NameError};

super::uuid_resource_id!(
    /// An opaque certificate-identity identifier assigned by Accord (a UUID).
    CertificateIdentityId,
    "certificateIdentities"
);

/// The SHA-256 fingerprint of a certificate's DER encoding: how the
/// ledger names the certificate a call came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// What a client certificate must have to be recognised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertificateMatch {
    /// The SHA-256 fingerprint of the whole certificate (DER).
    CertificateSha256([u8; 32]),
    /// The SHA-256 of its public key (SubjectPublicKeyInfo, DER): an SPKI
    /// pin, which survives re-issuing a certificate for the same key.
    SpkiSha256([u8; 32]),
    /// A subject alternative name it carries (DNS name or URI), e.g.
    /// `case-system.leeds-cc.example` or `spiffe://leeds-cc/case-system`.
    SubjectAltName(String),
}

/// Why a value is not a certificate match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("is not hexadecimal")]
    NotHex,
    #[error("must be a SHA-256 digest: 64 hex digits (colons allowed) or 44 characters of base64")]
    DigestForm,
    #[error("must be 32 bytes (a SHA-256 digest), not {0}")]
    DigestLength(usize),
    #[error("must be a DNS name or URI of 1 to 253 printable ASCII characters")]
    SubjectAltName,
}

/// Parses a SHA-256 digest written as 64 hex digits (colons and case
/// ignored, as certificate tools print them) or, for SPKI pins, as the 44
/// characters of base64 used by RFC 7469 (`sha256/` prefix allowed).
fn parse_sha256(value: &str) -> Result<[u8; 32], MatchError> {
    let trimmed = value.trim();
    let hex_digits: String = trimmed.chars().filter(|c| *c != ':').collect();
    let bytes = if hex_digits.len() == 64 {
        hex::decode(&hex_digits).map_err(|_| MatchError::NotHex)?
    } else {
        let b64 = trimmed.strip_prefix("sha256/").unwrap_or(trimmed);
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| MatchError::DigestForm)?
    };
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| MatchError::DigestLength(bytes.len()))
}

/// Checks a subject alternative name: 1 to 253 printable ASCII characters,
/// no spaces.
fn parse_san(value: &str) -> Result<String, MatchError> {
    if printable(value, 253) {
        Ok(value.to_owned())
    } else {
        Err(MatchError::SubjectAltName)
    }
}

impl CertificateMatch {
    /// A certificate fingerprint.
    pub fn certificate(value: &str) -> Result<Self, MatchError> {
        parse_sha256(value).map(Self::CertificateSha256)
    }

    /// An SPKI pin.
    pub fn spki(value: &str) -> Result<Self, MatchError> {
        parse_sha256(value).map(Self::SpkiSha256)
    }

    /// A subject alternative name.
    pub fn subject_alt_name(value: &str) -> Result<Self, MatchError> {
        parse_san(value).map(Self::SubjectAltName)
    }

    /// The stable code of its kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CertificateSha256(_) => "certificate_sha256",
            Self::SpkiSha256(_) => "spki_sha256",
            Self::SubjectAltName(_) => "subject_alt_name",
        }
    }

    /// Its value as stored: lowercase hex for digests, the name as given.
    pub fn value(&self) -> String {
        match self {
            Self::CertificateSha256(d) | Self::SpkiSha256(d) => hex::encode(d),
            Self::SubjectAltName(name) => name.clone(),
        }
    }

    /// The match stored as `kind` and `value`.
    pub fn from_stored(kind: &str, value: &str) -> Option<Self> {
        match kind {
            "certificate_sha256" => Self::certificate(value).ok(),
            "spki_sha256" => Self::spki(value).ok(),
            "subject_alt_name" => Self::subject_alt_name(value).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for CertificateMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

/// A certificate identity of an agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub id: CertificateIdentityId,
    pub agency: AgencyCode,
    pub matcher: CertificateMatch,
    /// What it is for, e.g. "case system, 2026 certificate".
    pub note: String,
    pub create_time: DateTime<Utc>,
    /// Set once revoked: from then on it recognises nobody.
    pub revoke_time: Option<DateTime<Utc>>,
}

impl CertificateIdentity {
    /// `agencies/{code}/certificateIdentities/{id}`.
    pub fn resource_name(&self) -> String {
        format!(
            "{}/{}",
            self.agency.resource_name(),
            self.id.resource_name()
        )
    }
}

/// Splits `agencies/{code}/{rest}` into the agency and `rest`.
fn split_agency_child<'a>(
    name: &'a str,
    shape: &'static str,
) -> Result<(AgencyCode, &'a str), NameError> {
    let rest = name
        .strip_prefix("agencies/")
        .ok_or(NameError::Nested(shape))?;
    let (code, child) = rest.split_once('/').ok_or(NameError::Nested(shape))?;
    Ok((AgencyCode::parse(code)?, child))
}

/// Parses `agencies/{code}/certificateIdentities/{id}`.
pub fn parse_identity_name(name: &str) -> Result<(AgencyCode, CertificateIdentityId), NameError> {
    let (agency, child) = split_agency_child(name, "agencies/{code}/certificateIdentities/{id}")?;
    Ok((agency, CertificateIdentityId::parse_name(child)?))
}

/// Parses `agencies/{code}/tokenIssuers/{id}`.
pub fn parse_issuer_name(name: &str) -> Result<(AgencyCode, TokenIssuerId), NameError> {
    let (agency, child) = split_agency_child(name, "agencies/{code}/tokenIssuers/{id}")?;
    Ok((agency, TokenIssuerId::parse_name(child)?))
}

super::uuid_resource_id!(
    /// An opaque token-issuer identifier assigned by Accord (a UUID).
    TokenIssuerId,
    "tokenIssuers"
);

/// The signing algorithms Accord accepts, each pinned to its key type.
/// Symmetric (HS*) and unsigned (`none`) tokens are never accepted.
const ALGORITHMS: [(&str, &str, Option<&str>); 3] = [
    ("RS256", "RSA", None),
    ("ES256", "EC", Some("P-256")),
    ("EdDSA", "OKP", Some("Ed25519")),
];

/// Where an issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document held in the registry (checked when registered).
    Document(String),
    /// A JWKS file on the server, read when first needed and again on
    /// SIGHUP.
    Path(String),
    /// An OpenID Connect discovery document's URL (HTTPS): the keys are
    /// fetched from the `jwks_uri` it names and refreshed (see
    /// `crate::auth::IssuerKeys`).
    Discovery(String),
}

/// Checks an OpenID Connect discovery URL: an absolute `https://` URL
/// with a host, without credentials or a fragment, of at most 2000
/// characters.
pub fn check_discovery_url(value: &str) -> Result<(), DiscoveryUrlError> {
    if value.len() > 2000 {
        return Err(DiscoveryUrlError::TooLong);
    }
    let url = url::Url::parse(value).map_err(|e| DiscoveryUrlError::NotAUrl(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(DiscoveryUrlError::NotHttps);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DiscoveryUrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(DiscoveryUrlError::Extras);
    }
    Ok(())
}

/// Why a discovery URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryUrlError {
    #[error("must be at most 2000 characters")]
    TooLong,
    #[error("is not a URL: {0}")]
    NotAUrl(String),
    #[error("must be an https:// URL (keys are never fetched over plain HTTP)")]
    NotHttps,
    #[error("must name a host")]
    NoHost,
    #[error("must not carry credentials or a fragment")]
    Extras,
}

/// Checks a JWKS document: a `keys` array of public keys, each with a
/// unique `kid` and an `alg` pinned to its key type (RS256 for RSA,
/// ES256 for EC P-256, EdDSA for OKP Ed25519); symmetric keys, private
/// keys and other algorithms are refused.
pub fn check_jwks(document: &str) -> Result<(), JwksError> {
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|e| JwksError::NotJson(e.to_string()))?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or(JwksError::NoKeysArray)?;
    if keys.is_empty() {
        return Err(JwksError::NoKeys);
    }
    let mut kids = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let text = |name: &str| key.get(name).and_then(serde_json::Value::as_str);
        let kid = text("kid")
            .filter(|k| !k.is_empty())
            .ok_or(JwksError::NoKid(i))?;
        if kids.contains(&kid) {
            return Err(JwksError::KidTwice(kid.to_owned()));
        }
        kids.push(kid);
        let (alg, kty) = (text("alg"), text("kty"));
        let pinned = ALGORITHMS
            .iter()
            .find(|(a, _, _)| Some(*a) == alg)
            .ok_or_else(|| JwksError::AlgorithmNotPinned {
                kid: kid.to_owned(),
                alg: alg.unwrap_or("missing").to_owned(),
            })?;
        if kty != Some(pinned.1) || pinned.2.is_some_and(|crv| text("crv") != Some(crv)) {
            return Err(JwksError::KeyType {
                kid: kid.to_owned(),
                alg: pinned.0,
                kty: pinned.1,
                crv: pinned
                    .2
                    .map(|c| format!(" and crv {c}"))
                    .unwrap_or_default(),
            });
        }
        if key.get("d").is_some() {
            return Err(JwksError::PrivateKey(kid.to_owned()));
        }
    }
    Ok(())
}

/// Why a JWKS document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// A JWKS file that could not be read.
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is not JSON: {0}")]
    NotJson(String),
    #[error("must be a JWKS document: an object with a \"keys\" array")]
    NoKeysArray,
    #[error("holds no keys")]
    NoKeys,
    #[error("key {0} has no kid")]
    NoKid(usize),
    #[error("kid {0:?} is used twice")]
    KidTwice(String),
    #[error("key {kid:?} must pin its algorithm: alg RS256, ES256 or EdDSA (not {alg})")]
    AlgorithmNotPinned { kid: String, alg: String },
    /// `crv` is empty or ` and crv {curve}`.
    #[error("key {kid:?}: alg {alg} needs kty {kty}{crv}")]
    KeyType {
        kid: String,
        alg: &'static str,
        kty: &'static str,
        crv: String,
    },
    #[error("key {0:?} is a private key: register only public keys")]
    PrivateKey(String),
}

/// A token issuer of an agency: the identity provider whose signed tokens
/// (JWTs) identify the agency's staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssuer {
    pub id: TokenIssuerId,
    pub agency: AgencyCode,
    /// The `iss` value its tokens carry.
    pub issuer: String,
    pub jwks: JwksSource,
    /// The claim holding the staff member's id (e.g. `sub`, `oid`).
    pub subject_claim: String,
    /// The claim holding their roles (e.g. `roles`, `groups`).
    pub roles_claim: String,
    pub create_time: DateTime<Utc>,
}

impl TokenIssuer {
    /// `agencies/{code}/tokenIssuers/{id}`.
    pub fn resource_name(&self) -> String {
        format!(
            "{}/{}",
            self.agency.resource_name(),
            self.id.resource_name()
        )
    }
}

/// Why an issuer's `iss` value or claim name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("must be the issuer's iss value: 1 to 500 printable ASCII characters")]
    Issuer,
    #[error("must be a claim name of 1 to 100 printable ASCII characters")]
    Claim,
}

/// Whether `value` has 1 to `max` printable ASCII characters.
fn printable(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks an issuer (`iss`) value: 1 to 500 printable ASCII characters.
pub fn check_issuer(value: &str) -> Result<(), IssuerError> {
    printable(value, 500)
        .then_some(())
        .ok_or(IssuerError::Issuer)
}

/// Checks a claim name: 1 to 100 printable ASCII characters.
pub fn check_claim(value: &str) -> Result<(), IssuerError> {
    printable(value, 100)
        .then_some(())
        .ok_or(IssuerError::Claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_must_be_https() {
        assert!(
            check_discovery_url(
                "https://login.example/realms/staff/.well-known/openid-configuration"
            )
            .is_ok()
        );
        assert!(check_discovery_url("https://127.0.0.1:8443/.well-known/x").is_ok());
        for (bad, expected) in [
            (
                "http://idp.example/.well-known/openid-configuration",
                DiscoveryUrlError::NotHttps,
            ),
            ("https://user:pw@idp.example/", DiscoveryUrlError::Extras),
            ("https://idp.example/#frag", DiscoveryUrlError::Extras),
            ("file:///etc/passwd", DiscoveryUrlError::NotHttps),
        ] {
            assert_eq!(check_discovery_url(bad), Err(expected), "{bad}");
        }
        assert!(matches!(
            check_discovery_url("idp.example"),
            Err(DiscoveryUrlError::NotAUrl(_))
        ));
        assert_eq!(
            check_discovery_url(&format!("https://idp.example/{}", "a".repeat(2000))),
            Err(DiscoveryUrlError::TooLong)
        );
    }

    #[test]
    fn jwks_keys_must_pin_an_asymmetric_algorithm() {
        let ed = r#"{"keys":[{"kid":"k1","kty":"OKP","crv":"Ed25519","alg":"EdDSA","x":"abc"}]}"#;
        assert!(check_jwks(ed).is_ok());
        let rsa = r#"{"keys":[{"kid":"r","kty":"RSA","alg":"RS256","n":"x","e":"AQAB"}]}"#;
        assert!(check_jwks(rsa).is_ok());
        for (bad, why) in [
            ("[]", "keys"),
            (r#"{"keys":[]}"#, "no keys"),
            (r#"{"keys":[{"kty":"RSA","alg":"RS256"}]}"#, "no kid"),
            (
                r#"{"keys":[{"kid":"a","kty":"oct","alg":"HS256","k":"c2VjcmV0"}]}"#,
                "pin",
            ),
            (r#"{"keys":[{"kid":"a","kty":"RSA"}]}"#, "pin"),
            (r#"{"keys":[{"kid":"a","kty":"RSA","alg":"none"}]}"#, "pin"),
            (
                r#"{"keys":[{"kid":"a","kty":"RSA","alg":"ES256"}]}"#,
                "needs kty EC",
            ),
            (
                r#"{"keys":[{"kid":"a","kty":"EC","crv":"P-384","alg":"ES256"}]}"#,
                "crv P-256",
            ),
            (
                r#"{"keys":[{"kid":"a","kty":"OKP","crv":"Ed25519","alg":"EdDSA","d":"s"}]}"#,
                "private",
            ),
            (
                r#"{"keys":[{"kid":"a","kty":"RSA","alg":"RS256"},{"kid":"a","kty":"RSA","alg":"RS256"}]}"#,
                "twice",
            ),
        ] {
            let err = check_jwks(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn digests_are_read_as_tools_print_them() {
        let hex = "AB:CD:".repeat(16);
        let hex = hex.trim_end_matches(':');
        let m = CertificateMatch::certificate(hex).unwrap();
        assert_eq!(m.value(), "abcd".repeat(16));
        let pin = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            CertificateMatch::spki(&format!("sha256/{pin}")).unwrap(),
            CertificateMatch::SpkiSha256([7; 32])
        );
        assert!(CertificateMatch::certificate("abcd").is_err());
        assert!(CertificateMatch::spki(&"zz".repeat(32)).is_err());
        assert!(CertificateMatch::subject_alt_name("has space").is_err());
        let san = CertificateMatch::subject_alt_name("spiffe://leeds-cc/case").unwrap();
        assert_eq!(
            CertificateMatch::from_stored(san.kind(), &san.value()),
            Some(san)
        );
    }

    #[test]
    fn names_round_trip() {
        let id = CertificateIdentity {
            id: CertificateIdentityId::generate(),
            agency: AgencyCode::parse("leeds-cc").unwrap(),
            matcher: CertificateMatch::SpkiSha256([1; 32]),
            note: String::new(),
            create_time: Utc::now(),
            revoke_time: None,
        };
        let (agency, parsed) = parse_identity_name(&id.resource_name()).unwrap();
        assert_eq!((agency, parsed), (id.agency.clone(), id.id.clone()));
        assert!(parse_identity_name("agencies/leeds-cc").is_err());
    }
}
