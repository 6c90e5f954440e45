//! How an agency's systems are recognised: the client-certificate
//! identities the registry holds for each agency. An agency may hold
//! several at once (certificate rotation); a revoked one recognises nobody.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};

use super::AgencyCode;

super::uuid_resource_id!(
    /// An opaque certificate-identity identifier assigned by Accord (a UUID).
    CertificateIdentityId,
    "certificateIdentities"
);

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

/// Parses a SHA-256 digest written as 64 hex digits (colons and case
/// ignored, as certificate tools print them) or, for SPKI pins, as the 44
/// characters of base64 used by RFC 7469 (`sha256/` prefix allowed).
fn parse_sha256(value: &str) -> Result<[u8; 32], String> {
    let trimmed = value.trim();
    let hex_digits: String = trimmed.chars().filter(|c| *c != ':').collect();
    let bytes = if hex_digits.len() == 64 {
        hex::decode(&hex_digits).map_err(|_| "is not hexadecimal".to_owned())?
    } else {
        let b64 = trimmed.strip_prefix("sha256/").unwrap_or(trimmed);
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| {
                "must be a SHA-256 digest: 64 hex digits (colons allowed) or 44 characters of base64"
                    .to_owned()
            })?
    };
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("must be 32 bytes (a SHA-256 digest), not {}", bytes.len()))
}

/// Checks a subject alternative name: 1 to 253 printable ASCII characters,
/// no spaces.
fn parse_san(value: &str) -> Result<String, String> {
    let ok = !value.is_empty() && value.len() <= 253 && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be a DNS name or URI of 1 to 253 printable ASCII characters".to_owned())
    }
}

impl CertificateMatch {
    /// A certificate fingerprint.
    pub fn certificate(value: &str) -> Result<Self, String> {
        parse_sha256(value).map(Self::CertificateSha256)
    }

    /// An SPKI pin.
    pub fn spki(value: &str) -> Result<Self, String> {
        parse_sha256(value).map(Self::SpkiSha256)
    }

    /// A subject alternative name.
    pub fn subject_alt_name(value: &str) -> Result<Self, String> {
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

/// Parses `agencies/{code}/certificateIdentities/{id}`.
pub fn parse_identity_name(name: &str) -> Result<(AgencyCode, CertificateIdentityId), String> {
    let shape = || "must be of the form agencies/{code}/certificateIdentities/{id}".to_owned();
    let rest = name.strip_prefix("agencies/").ok_or_else(shape)?;
    let (code, id) = rest.split_once('/').ok_or_else(shape)?;
    Ok((
        AgencyCode::parse(code)?,
        CertificateIdentityId::parse_name(id)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
