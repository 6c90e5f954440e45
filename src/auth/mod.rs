//! Who is calling: an [`Authenticator`] turns what arrives with a request
//! into a [`Caller`], or refuses it with a reason that is audited.
//!
//! Only the explicit development mode serves calls so far
//! ([`InsecureHeaders`]): the caller is read from request metadata. It is
//! started only with `accord serve --insecure`, only on loopback, with a
//! warning. [`jwt`] verifies staff tokens against their issuer's keys, for
//! the secure mode to come.

pub mod jwt;

use tonic::metadata::MetadataMap;

use crate::domain::{AgencyCode, Caller, PrincipalId, Role};

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
}

/// Establishes the caller of a request.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The caller, or why they could not be established.
    fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, AuthFailure>;
}

/// Development mode: trusts the `x-accord-*` request metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsecureHeaders;

fn header<'a>(metadata: &'a MetadataMap, key: &str) -> Option<&'a str> {
    metadata.get(key).and_then(|v| v.to_str().ok())
}

impl Authenticator for InsecureHeaders {
    fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, AuthFailure> {
        let agency = header(metadata, AGENCY_HEADER).unwrap_or_default();
        let principal = header(metadata, PRINCIPAL_HEADER).unwrap_or_default();
        let fail = |message: String| AuthFailure {
            code: "INVALID_IDENTITY",
            message,
            claimed_agency: agency.chars().take(64).collect(),
            claimed_principal: principal.chars().take(128).collect(),
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
        })
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
        let caller = InsecureHeaders
            .authenticate(&metadata(&[
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
        let caller = InsecureHeaders.authenticate(&m).unwrap();
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["social_worker", "auditor", "team_lead"]);
    }

    #[test]
    fn refuses_missing_or_malformed_identity() {
        let missing = InsecureHeaders.authenticate(&metadata(&[(AGENCY_HEADER, "leeds-cc")]));
        assert_eq!(missing.unwrap_err().code, "MISSING_IDENTITY");
        let bad = InsecureHeaders
            .authenticate(&metadata(&[
                (AGENCY_HEADER, "Leeds CC"),
                (PRINCIPAL_HEADER, "x"),
            ]))
            .unwrap_err();
        assert_eq!(bad.code, "INVALID_IDENTITY");
        assert_eq!(bad.claimed_agency, "Leeds CC");
        let bad_role = InsecureHeaders.authenticate(&metadata(&[
            (AGENCY_HEADER, "leeds-cc"),
            (PRINCIPAL_HEADER, "x"),
            (ROLES_HEADER, "Social Worker"),
        ]));
        assert!(bad_role.is_err());
    }
}
