//! Who is calling: an [`Authenticator`] turns what a request presents (its
//! metadata and its connection's client certificate) into a [`Caller`], or
//! refuses it with a reason that is audited.
//!
//! Two authenticators exist. [`MutualTls`], the default: the agency system
//! is known by its client certificate ([`tls`]) and the staff member by a
//! signed token from their agency's issuer ([`jwt`]), and the two must
//! agree. [`InsecureHeaders`], for development only: the caller is read from
//! request metadata; it is started only with `accord serve --insecure`,
//! only on loopback, with a warning.

mod cache;
pub mod jwt;
mod keys;
mod mutual;
mod registry;
pub mod tls;

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use tonic::metadata::MetadataMap;

use crate::domain::credential::Fingerprint;
use crate::domain::{AgencyCode, Caller, PrincipalId, Role};

pub use keys::{Fetching, IssuerKeys, https_client};
pub use mutual::{MutualTls, Operator, TokenSettings};

/// Metadata key naming the calling agency in development mode.
pub const AGENCY_HEADER: &str = "x-accord-agency";
/// Metadata key naming the calling staff member in development mode.
pub const PRINCIPAL_HEADER: &str = "x-accord-principal";
/// Metadata key listing the caller's roles in development mode:
/// comma-separated, and/or repeated.
pub const ROLES_HEADER: &str = "x-accord-roles";

/// Why a caller was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    /// Stable machine-readable reason, e.g. `MISSING_IDENTITY`.
    pub code: &'static str,
    /// What is wrong, without secrets.
    pub message: String,
    /// The agency the request claimed, if any, for the audit entry.
    pub claimed_agency: String,
    /// The principal the request claimed, if any, for the audit entry.
    pub claimed_principal: String,
    /// The client certificate presented, if any, for the audit entry.
    pub client_certificate: Option<Box<Fingerprint>>,
    /// Another agency the refusal concerns, if any: the agency of a token
    /// presented over another agency's certificate. Its auditors see the
    /// entry too (it is recorded as the entry's controller).
    pub concerns: String,
}

/// The reason code of a caller who could not be established because the
/// registry could not be read: a failure of Accord's, not of the caller's
/// credentials (answered UNAVAILABLE, so clients retry).
pub const REGISTRY_UNAVAILABLE: &str = "REGISTRY_UNAVAILABLE";

impl AuthFailure {
    /// Whether the failure was Accord's own (see [`REGISTRY_UNAVAILABLE`]).
    pub fn is_unavailable(&self) -> bool {
        self.code == REGISTRY_UNAVAILABLE
    }

    /// A failure with `code` and `message`, claiming nothing yet.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            claimed_agency: String::new(),
            claimed_principal: String::new(),
            client_certificate: None,
            concerns: String::new(),
        }
    }
}

/// What a request presents to be authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// Its metadata (headers).
    pub metadata: &'a MetadataMap,
    /// The client certificate chain of its connection, leaf first, as
    /// presented in the TLS handshake (not yet checked), if any.
    pub peer_certificates: Option<&'a [CertificateDer<'static>]>,
}

/// What an authentication may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The registry as this process holds it: no read unless nothing is
    /// held. A refusal is only ever made on the registry as it is now.
    Held,
    /// The registry as it is now.
    Fresh,
}

/// An established caller, and the registry version their authentication
/// relied on, if it read the registry: a call's entry commits only while
/// the registry is still at that version (see `docs/identity.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub caller: Caller,
    pub registry: Option<i64>,
}

impl Authenticated {
    /// `caller`, established without the registry.
    pub fn without_registry(caller: Caller) -> Self {
        Self {
            caller,
            registry: None,
        }
    }
}

/// Establishes the caller of a request.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The caller, or why they could not be established, on `basis`.
    async fn authenticate(
        &self,
        presented: &Presented<'_>,
        basis: Basis,
    ) -> Result<Authenticated, AuthFailure>;
}

/// An authenticator shared by the services.
pub type SharedAuthenticator = Arc<dyn Authenticator>;

/// Development mode: trusts the `x-accord-*` request metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsecureHeaders;

fn header<'a>(metadata: &'a MetadataMap, key: &str) -> Option<&'a str> {
    metadata.get(key).and_then(|v| v.to_str().ok())
}

impl InsecureHeaders {
    fn caller(metadata: &MetadataMap) -> Result<Caller, AuthFailure> {
        let agency = header(metadata, AGENCY_HEADER).unwrap_or_default();
        let principal = header(metadata, PRINCIPAL_HEADER).unwrap_or_default();
        let fail = |message: String| AuthFailure {
            claimed_agency: agency.chars().take(64).collect(),
            claimed_principal: principal.chars().take(128).collect(),
            ..AuthFailure::new("INVALID_IDENTITY", message)
        };
        if agency.is_empty() || principal.is_empty() {
            return Err(AuthFailure {
                code: "MISSING_IDENTITY",
                ..fail(format!(
                    "development mode needs the {AGENCY_HEADER} and {PRINCIPAL_HEADER} metadata"
                ))
            });
        }
        let agency_code =
            AgencyCode::parse(agency).map_err(|e| fail(format!("{AGENCY_HEADER} {e}")))?;
        let principal_id =
            PrincipalId::parse(principal).map_err(|e| fail(format!("{PRINCIPAL_HEADER} {e}")))?;
        let roles = metadata
            .get_all(ROLES_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(Role::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("{ROLES_HEADER}: {e}")))?;
        Ok(Caller {
            agency: agency_code,
            principal: principal_id,
            roles,
            client_certificate: None,
        })
    }
}

#[async_trait::async_trait]
impl Authenticator for InsecureHeaders {
    async fn authenticate(
        &self,
        presented: &Presented<'_>,
        _basis: Basis,
    ) -> Result<Authenticated, AuthFailure> {
        Self::caller(presented.metadata).map(Authenticated::without_registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn reads_the_caller_from_metadata() {
        let caller = InsecureHeaders::caller(&metadata(&[
            (AGENCY_HEADER, "leeds-cc"),
            (PRINCIPAL_HEADER, "sw-17"),
            (ROLES_HEADER, "social_worker, auditor"),
        ]))
        .unwrap();
        assert_eq!(caller.agency.as_str(), "leeds-cc");
        assert!(caller.has_role("auditor"));
        assert!(!caller.has_role("operator"));
    }

    #[test]
    fn roles_may_be_repeated() {
        let mut m = metadata(&[(AGENCY_HEADER, "leeds-cc"), (PRINCIPAL_HEADER, "sw-17")]);
        m.append(ROLES_HEADER, "social_worker".parse().unwrap());
        m.append(ROLES_HEADER, "auditor,team_lead".parse().unwrap());
        let caller = InsecureHeaders::caller(&m).unwrap();
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["social_worker", "auditor", "team_lead"]);
    }

    #[test]
    fn refuses_missing_or_malformed_identity() {
        let missing = InsecureHeaders::caller(&metadata(&[(AGENCY_HEADER, "leeds-cc")]));
        assert_eq!(missing.unwrap_err().code, "MISSING_IDENTITY");
        let bad = InsecureHeaders::caller(&metadata(&[
            (AGENCY_HEADER, "Leeds CC"),
            (PRINCIPAL_HEADER, "x"),
        ]))
        .unwrap_err();
        assert_eq!(bad.code, "INVALID_IDENTITY");
        assert_eq!(bad.claimed_agency, "Leeds CC");
        let bad_role = InsecureHeaders::caller(&metadata(&[
            (AGENCY_HEADER, "leeds-cc"),
            (PRINCIPAL_HEADER, "x"),
            (ROLES_HEADER, "Social Worker"),
        ]));
        assert!(bad_role.is_err());
    }
}
