//! Who is calling, and why.

use std::fmt;

use super::AgencyCode;
use super::credential::Fingerprint;

/// A staff member's identifier as their agency knows them: 1 to 128
/// printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrincipalId(String);

impl PrincipalId {
    /// Parses a principal id.
    pub fn parse(value: &str) -> Result<Self, PrincipalIdError> {
        if value.is_empty() || value.len() > 128 {
            return Err(PrincipalIdError::Length);
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PrincipalIdError::Characters);
        }
        Ok(Self(value.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a value is not a principal id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalIdError {
    #[error("must have 1 to 128 characters")]
    Length,
    #[error("must be printable ASCII without spaces")]
    Characters,
}

/// A role: 1 to 64 characters of lowercase letters, digits, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    /// The role that may manage the agency registry and the catalogue.
    pub const OPERATOR: &'static str = "operator";
    /// The role that may read the audit ledger.
    pub const AUDITOR: &'static str = "auditor";
    /// The role that signs agreements for an agency and answers its
    /// alerts: its information-governance lead (Caldicott guardian, DPO or
    /// their delegate).
    pub const IG_LEAD: &'static str = "ig_lead";
    /// The operator-side role that reviews calls refused before any agency
    /// could be established (no, or an unknown, client certificate), and
    /// the alerts raised on bursts of them. Only the operator's own
    /// credentials confer it.
    pub const SECURITY_AUDITOR: &'static str = "security_auditor";
    /// The operator-side role that works possible duplicates of subjects
    /// (and merges them): a pair spans agencies that may not see each
    /// other's subjects, so only the operator of the shared index sees
    /// both sides. Only the operator's own credentials confer it.
    pub const DATA_QUALITY: &'static str = "data_quality";
    /// The roles only the operator's own credentials confer: never taken
    /// from an agency's token.
    pub const OPERATOR_ONLY: [&'static str; 3] =
        [Self::OPERATOR, Self::SECURITY_AUDITOR, Self::DATA_QUALITY];

    /// Parses a role.
    pub fn parse(value: &str) -> Result<Self, RoleError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(RoleError(value.to_owned()))
        }
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The information-governance lead's role ([`Role::IG_LEAD`]).
    pub fn ig_lead() -> Self {
        Self(Self::IG_LEAD.to_owned())
    }
}

/// A value that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {0:?} must be 1 to 64 lowercase letters, digits, '_' or '-'")]
pub struct RoleError(pub String);

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authenticated caller: a staff member of an agency, with roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub agency: AgencyCode,
    pub principal: PrincipalId,
    pub roles: Vec<Role>,
    /// The client certificate the call came over (none in development
    /// mode).
    pub client_certificate: Option<Fingerprint>,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }
}

/// The declared purpose of use of a data call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    DirectCare,
    Safeguarding,
    CrimePrevention,
    Emergency,
    Administration,
    Research,
}

super::agency::storage_codes!(Purpose {
    DirectCare => "direct_care",
    Safeguarding => "safeguarding",
    CrimePrevention => "crime_prevention",
    Emergency => "emergency",
    Administration => "administration",
    Research => "research",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_principals_are_checked() {
        assert!(Role::parse("social_worker").is_ok());
        assert!(Role::parse("Social Worker").is_err());
        assert!(Role::parse("").is_err());
        assert!(PrincipalId::parse("u-123@leeds").is_ok());
        assert!(PrincipalId::parse("a b").is_err());
        assert!(PrincipalId::parse(&"x".repeat(129)).is_err());
    }
}
