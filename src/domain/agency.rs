//! Member organisations.

use std::fmt;

use chrono::{DateTime, Utc};

use super::NameError;

/// A stable agency code: 2 to 64 characters of lowercase ASCII letters,
/// digits and single hyphens, starting with a letter and not ending with a
/// hyphen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgencyCode(String);

impl AgencyCode {
    /// Parses a code.
    pub fn parse(value: &str) -> Result<Self, AgencyCodeError> {
        let ok_chars = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if value.len() < 2 || value.len() > 64 {
            return Err(AgencyCodeError::Length);
        }
        if !ok_chars || !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(AgencyCodeError::Characters);
        }
        if value.ends_with('-') || value.contains("--") {
            return Err(AgencyCodeError::Hyphens);
        }
        Ok(Self(value.to_owned()))
    }

    /// Parses a resource name, `agencies/{code}`.
    pub fn parse_name(name: &str) -> Result<Self, NameError> {
        let code = name
            .strip_prefix("agencies/")
            .ok_or(NameError::Form("agencies/{code}"))?;
        Ok(Self::parse(code)?)
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name, `agencies/{code}`.
    pub fn resource_name(&self) -> String {
        format!("agencies/{}", self.0)
    }
}

/// Why a value is not an agency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AgencyCodeError {
    #[error("must have 2 to 64 characters")]
    Length,
    #[error("must be lowercase letters, digits and hyphens, starting with a letter")]
    Characters,
    #[error("must not end with a hyphen or contain two in a row")]
    Hyphens,
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of a member organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyKind {
    Council,
    Health,
    Police,
    Education,
    Other,
}

/// Whether an agency may use the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyStatus {
    Active,
    Suspended,
}

/// A registered agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub code: AgencyCode,
    pub display_name: String,
    pub kind: AgencyKind,
    pub status: AgencyStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: String,
    /// Its own rate limit; `None`: the configured default.
    pub rate_limit: Option<RateLimit>,
}

/// A rate limit: calls a second, sustained, and how many may come at once
/// (a token bucket). No calls a second: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const NONE: Self = Self {
        per_second: 0,
        burst: 0,
    };
}

/// Defines the stable storage codes of a fieldless enum, in both directions.
macro_rules! storage_codes {
    ($ty:ty { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable code under which this value is stored.
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }

            /// The value stored under `code`.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use storage_codes;

storage_codes!(AgencyKind {
    Council => "council",
    Health => "health",
    Police => "police",
    Education => "education",
    Other => "other",
});

storage_codes!(AgencyStatus {
    Active => "active",
    Suspended => "suspended",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_rule() {
        assert!(AgencyCode::parse("leeds-cc").is_ok());
        assert!(AgencyCode::parse("nhs-trust-7").is_ok());
        for bad in [
            "", "a", "Leeds", "7leeds", "leeds-", "le--eds", "leeds cc", "léeds",
        ] {
            assert!(AgencyCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn resource_names_round_trip() {
        let code = AgencyCode::parse_name("agencies/west-yorks-police").unwrap();
        assert_eq!(code.resource_name(), "agencies/west-yorks-police");
        assert!(AgencyCode::parse_name("west-yorks-police").is_err());
    }

    #[test]
    fn storage_codes_round_trip() {
        for kind in [
            AgencyKind::Council,
            AgencyKind::Health,
            AgencyKind::Police,
            AgencyKind::Education,
            AgencyKind::Other,
        ] {
            assert_eq!(AgencyKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(AgencyStatus::from_code("gone"), None);
    }
}
