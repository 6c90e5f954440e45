//! Agencies and their credentials (certificate identities, token issuers) across the proto boundary.

use super::enums::EnumError;
use super::{enums, pb, require, timestamp};
use crate::domain::agency::RateLimit;
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, JwksSource, TokenIssuer,
    TokenIssuerId,
};
use crate::domain::{Agency, AgencyCode, AgencyKind, AgencyStatus, Violations, check_text};

fn agency_kind(value: i32) -> Result<AgencyKind, EnumError> {
    match enums::required(value)? {
        pb::AgencyKind::Council => Ok(AgencyKind::Council),
        pb::AgencyKind::Health => Ok(AgencyKind::Health),
        pb::AgencyKind::Police => Ok(AgencyKind::Police),
        pb::AgencyKind::Education => Ok(AgencyKind::Education),
        pb::AgencyKind::Other => Ok(AgencyKind::Other),
        pb::AgencyKind::Unspecified => Err(EnumError::required::<pb::AgencyKind>()),
    }
}

fn agency_status(value: i32) -> Result<AgencyStatus, EnumError> {
    match enums::required(value)? {
        pb::AgencyStatus::Active => Ok(AgencyStatus::Active),
        pb::AgencyStatus::Suspended => Ok(AgencyStatus::Suspended),
        pb::AgencyStatus::Unspecified => Err(EnumError::required::<pb::AgencyStatus>()),
    }
}

/// CreateAgency input: code, display name, kind.
pub fn create_agency(
    req: pb::CreateAgencyRequest,
) -> Result<(AgencyCode, String, AgencyKind), Violations> {
    let mut v = Violations::new();
    let a = require(req.agency, "agency", &mut v).unwrap_or_default();
    let code = v.check("agency.code", AgencyCode::parse(&a.code));
    v.check("agency.display_name", check_text(&a.display_name, 1, 200));
    let kind = v.check("agency.kind", agency_kind(a.kind));
    v.into_result(|| Some((code?, a.display_name.trim().to_owned(), kind?)))
}

/// UpdateAgency input.
pub fn update_agency(
    req: pb::UpdateAgencyRequest,
) -> Result<(AgencyCode, crate::service::AgencyChange), Violations> {
    let mut v = Violations::new();
    let a = require(req.agency, "agency", &mut v).unwrap_or_default();
    let code = v.check("agency.name", AgencyCode::parse_name(&a.name));
    let mut change = crate::service::AgencyChange {
        etag: Some(a.etag.clone()).filter(|e| !e.is_empty()),
        ..Default::default()
    };
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        v.add(
            "update_mask",
            "must name the fields to change: display_name, status, rate_limit",
        );
    }
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "display_name" => {
                if v.check("agency.display_name", check_text(&a.display_name, 1, 200))
                    .is_some()
                {
                    change.display_name = Some(a.display_name.trim().to_owned());
                }
            }
            "status" => change.status = v.check("agency.status", agency_status(a.status)),
            "rate_limit" => {
                change.rate_limit = match &a.rate_limit {
                    None => Some(None),
                    Some(r) => v
                        .check("agency.rate_limit", rate_limit(r.calls_per_second, r.burst))
                        .map(Some),
                }
            }
            other => v.add(
                format!("update_mask.paths[{i}]"),
                format!("{other:?} cannot be changed (only display_name, status and rate_limit)"),
            ),
        }
    }
    v.into_result(|| Some((code?, change)))
}

/// A rate limit from the wire.
fn rate_limit(per_second: u32, burst: u32) -> Result<RateLimit, String> {
    match (per_second, burst) {
        (0, 0) => Ok(RateLimit::NONE),
        (1..=100_000, _) if (per_second..=1_000_000).contains(&burst) => {
            Ok(RateLimit { per_second, burst })
        }
        _ => Err(
            "calls_per_second must be 1 to 100000 and burst from calls_per_second to 1000000 \
             (or both 0: no limit)"
                .to_owned(),
        ),
    }
}

/// The agency resource name of a request.
pub fn agency_name(name: &str) -> Result<AgencyCode, Violations> {
    AgencyCode::parse_name(name).map_err(|e| Violations::one("name", e))
}

/// The proto form of an agency.
pub fn agency_out(a: Agency) -> pb::Agency {
    pb::Agency {
        name: a.code.resource_name(),
        code: a.code.as_str().to_owned(),
        display_name: a.display_name,
        kind: match a.kind {
            AgencyKind::Council => pb::AgencyKind::Council,
            AgencyKind::Health => pb::AgencyKind::Health,
            AgencyKind::Police => pb::AgencyKind::Police,
            AgencyKind::Education => pb::AgencyKind::Education,
            AgencyKind::Other => pb::AgencyKind::Other,
        } as i32,
        status: match a.status {
            AgencyStatus::Active => pb::AgencyStatus::Active,
            AgencyStatus::Suspended => pb::AgencyStatus::Suspended,
        } as i32,
        rate_limit: a.rate_limit.map(|r| pb::RateLimit {
            calls_per_second: r.per_second,
            burst: r.burst,
        }),
        create_time: Some(timestamp(a.create_time)),
        update_time: Some(timestamp(a.update_time)),
        etag: a.etag,
    }
}

/// AddCertificateIdentity input: the agency, the match and the note.
pub fn add_certificate_identity(
    req: pb::AddCertificateIdentityRequest,
) -> Result<(AgencyCode, CertificateMatch, String), Violations> {
    use pb::certificate_identity::Match;
    let mut v = Violations::new();
    let agency = v.check("parent", AgencyCode::parse_name(&req.parent));
    let identity = req.certificate_identity.unwrap_or_default();
    let field = |name: &str| format!("certificate_identity.{name}");
    let matcher = match &identity.r#match {
        None => {
            v.add(
                "certificate_identity.match",
                "one of certificate_sha256, spki_sha256 or subject_alt_name is required",
            );
            None
        }
        Some(Match::CertificateSha256(s)) => v.check(
            &field("certificate_sha256"),
            CertificateMatch::certificate(s),
        ),
        Some(Match::SpkiSha256(s)) => v.check(&field("spki_sha256"), CertificateMatch::spki(s)),
        Some(Match::SubjectAltName(s)) => v.check(
            &field("subject_alt_name"),
            CertificateMatch::subject_alt_name(s),
        ),
    };
    v.into_result(|| Some((agency?, matcher?, identity.note)))
}

/// A certificate identity's resource name.
pub fn certificate_identity_name(
    name: &str,
) -> Result<(AgencyCode, CertificateIdentityId), Violations> {
    crate::domain::credential::parse_identity_name(name).map_err(|e| Violations::one("name", e))
}

/// AddTokenIssuer input: the agency and the issuer.
pub fn add_token_issuer(
    req: pb::AddTokenIssuerRequest,
) -> Result<(AgencyCode, crate::service::NewTokenIssuer), Violations> {
    use crate::domain::credential::{check_claim, check_issuer};
    use pb::token_issuer::Jwks;
    let mut v = Violations::new();
    let agency = v.check("parent", AgencyCode::parse_name(&req.parent));
    let t = req.token_issuer.unwrap_or_default();
    let issuer = v.check("token_issuer.issuer", check_issuer(&t.issuer));
    let jwks = match t.jwks {
        Some(Jwks::JwksJson(d)) => Some(JwksSource::Document(d)),
        Some(Jwks::JwksPath(p)) if std::path::Path::new(&p).is_absolute() => {
            Some(JwksSource::Path(p))
        }
        Some(Jwks::JwksPath(_)) => {
            v.add("token_issuer.jwks_path", "must be an absolute path");
            None
        }
        Some(Jwks::DiscoveryUrl(u)) => v
            .check(
                "token_issuer.discovery_url",
                crate::domain::credential::check_discovery_url(&u),
            )
            .map(|()| JwksSource::Discovery(u)),
        None => {
            v.add(
                "token_issuer.jwks",
                "jwks_json, jwks_path or discovery_url is required",
            );
            None
        }
    };
    let claim = |value: String, default: &str, field: &str, v: &mut Violations| {
        let value = if value.is_empty() {
            default.to_owned()
        } else {
            value
        };
        v.check(field, check_claim(&value)).map(|()| value)
    };
    let subject_claim = claim(t.subject_claim, "sub", "token_issuer.subject_claim", &mut v);
    let roles_claim = claim(t.roles_claim, "roles", "token_issuer.roles_claim", &mut v);
    v.into_result(|| {
        issuer?;
        Some((
            agency?,
            crate::service::NewTokenIssuer {
                issuer: t.issuer,
                jwks: jwks?,
                subject_claim: subject_claim?,
                roles_claim: roles_claim?,
            },
        ))
    })
}

/// A token issuer's resource name.
pub fn token_issuer_name(name: &str) -> Result<(AgencyCode, TokenIssuerId), Violations> {
    crate::domain::credential::parse_issuer_name(name).map_err(|e| Violations::one("name", e))
}

/// The proto form of a token issuer.
pub fn token_issuer_out(t: TokenIssuer) -> pb::TokenIssuer {
    use pb::token_issuer::Jwks;
    pb::TokenIssuer {
        name: t.resource_name(),
        issuer: t.issuer,
        jwks: Some(match t.jwks {
            JwksSource::Document(d) => Jwks::JwksJson(d),
            JwksSource::Path(p) => Jwks::JwksPath(p),
            JwksSource::Discovery(u) => Jwks::DiscoveryUrl(u),
        }),
        subject_claim: t.subject_claim,
        roles_claim: t.roles_claim,
        create_time: Some(timestamp(t.create_time)),
    }
}

/// The agency a list request names as `parent`.
pub fn parent_agency(parent: &str) -> Result<AgencyCode, Violations> {
    AgencyCode::parse_name(parent).map_err(|e| Violations::one("parent", e))
}

/// The proto form of a certificate identity.
pub fn certificate_identity_out(c: CertificateIdentity) -> pb::CertificateIdentity {
    use pb::certificate_identity::Match;
    let name = c.resource_name();
    let value = c.matcher.value();
    pb::CertificateIdentity {
        name,
        r#match: Some(match c.matcher {
            CertificateMatch::CertificateSha256(_) => Match::CertificateSha256(value),
            CertificateMatch::SpkiSha256(_) => Match::SpkiSha256(value),
            CertificateMatch::SubjectAltName(_) => Match::SubjectAltName(value),
        }),
        note: c.note,
        create_time: Some(timestamp(c.create_time)),
        revoke_time: c.revoke_time.map(timestamp),
    }
}
