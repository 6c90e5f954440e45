//! Staff tokens: signed JWTs from an agency's registered issuer, checked
//! with `jsonwebtoken` against the issuer's keys.
//!
//! Only RS256, ES256 and EdDSA are accepted, and each key pins its own
//! algorithm: a token must name a key (`kid`) of its issuer and be signed
//! with that key's algorithm, so neither `alg: none` nor an HMAC "signed"
//! with a public key can pass. The audience must be Accord's; `exp` is
//! required and, like `nbf`, checked against the given time with a small
//! leeway (time is a parameter, so expiry is tested without waiting).

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::domain::credential::TokenIssuer;
use crate::domain::{PrincipalId, Role};

/// Why a token was refused. Messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted (RS256, ES256 or EdDSA, as its key pins)")]
    AlgorithmNotAllowed(String),
    #[error("the token's issuer {0:?} is not registered")]
    UnknownIssuer(String),
    #[error("the token names no key of its issuer (kid {0:?})")]
    UnknownKey(String),
    #[error("the issuer's keys cannot be used: {0}")]
    Keys(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is not for this service (audience)")]
    WrongAudience,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token's {0} claim is not valid: {1}")]
    BadClaim(String, String),
}

impl TokenError {
    /// The stable reason code audited and returned.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::AlgorithmNotAllowed(_) => "TOKEN_ALGORITHM_NOT_ALLOWED",
            Self::UnknownIssuer(_) => "TOKEN_UNKNOWN_ISSUER",
            Self::UnknownKey(_) => "TOKEN_UNKNOWN_KEY",
            Self::Keys(_) => "TOKEN_ISSUER_KEYS_UNUSABLE",
            Self::BadSignature => "TOKEN_BAD_SIGNATURE",
            Self::WrongAudience => "TOKEN_WRONG_AUDIENCE",
            Self::Expired(_) => "TOKEN_EXPIRED",
            Self::NotYetValid(_) => "TOKEN_NOT_YET_VALID",
            Self::MissingClaim(_) => "TOKEN_MISSING_CLAIM",
            Self::BadClaim(..) => "TOKEN_BAD_CLAIM",
        }
    }
}

/// What a verified token says of the staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffClaims {
    pub principal: PrincipalId,
    pub roles: Vec<Role>,
    /// When the token expires (`exp`).
    pub expires: DateTime<Utc>,
    /// The client certificate the token is bound to, if it is (RFC 8705:
    /// `cnf` with `x5t#S256`, the certificate's SHA-256 thumbprint).
    pub bound_certificate: Option<[u8; 32]>,
}

/// The certificate thumbprint a `cnf` claim binds the token to, if any.
fn bound_certificate(claims: &Value) -> Result<Option<[u8; 32]>, TokenError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let bad = |why: &str| TokenError::BadClaim("cnf".to_owned(), why.to_owned());
    let Some(thumbprint) = cnf.get("x5t#S256") else {
        return Ok(None);
    };
    let text = thumbprint
        .as_str()
        .ok_or_else(|| bad("x5t#S256 must be a string"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| bad("x5t#S256 must be base64url"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| bad("x5t#S256 must be a SHA-256 thumbprint"))
}

/// What a token is checked against besides its issuer's keys.
#[derive(Debug, Clone, Copy)]
pub struct TokenCheck<'a> {
    /// Accord's audience: the token's `aud` must name it.
    pub audience: &'a str,
    /// Allowance for clock skew on `exp` and `nbf`, in seconds.
    pub leeway_seconds: i64,
    pub now: DateTime<Utc>,
}

/// The accepted algorithms, as a key pins them.
fn accepted(alg: &str) -> Option<Algorithm> {
    match alg {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// A JSON segment of a token, decoded without checking anything.
fn segment(token: &str, n: usize) -> Result<Value, TokenError> {
    let part = token.split('.').nth(n).ok_or(TokenError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// The issuer a token claims, read before anything is verified (to find
/// the keys to verify it with).
pub fn claimed_issuer(token: &str) -> Result<String, TokenError> {
    if token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    segment(token, 1)?
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TokenError::MissingClaim("iss".to_owned()))
}

/// The key id (`kid`) a token's header names, read before anything is
/// verified (to find the key to verify it with); empty if none.
pub fn claimed_key_id(token: &str) -> String {
    segment(token, 0)
        .ok()
        .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// The key a token names, if its issuer has it.
fn key_for<'a>(jwks: &'a JwkSet, kid: &str) -> Result<&'a Jwk, TokenError> {
    jwks.find(kid)
        .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))
}

/// The algorithm `jwk` pins.
fn pinned(jwk: &Jwk) -> Option<Algorithm> {
    match jwk.common.key_algorithm? {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn instant(claims: &Value, name: &str) -> Result<Option<DateTime<Utc>>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .map(Some)
            .ok_or_else(|| TokenError::BadClaim(name.to_owned(), "not a time".to_owned())),
    }
}

/// Verifies `token`, which claims to come from `issuer` whose keys are
/// `jwks`, and reads the staff member's id and roles from the claims the
/// issuer names.
pub fn verify(
    token: &str,
    issuer: &TokenIssuer,
    jwks: &JwkSet,
    check: &TokenCheck<'_>,
) -> Result<StaffClaims, TokenError> {
    let header = segment(token, 0)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    let alg = accepted(alg).ok_or_else(|| TokenError::AlgorithmNotAllowed(alg.to_owned()))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::UnknownKey(String::new()))?;
    let jwk = key_for(jwks, kid)?;
    if pinned(jwk) != Some(alg) {
        return Err(TokenError::AlgorithmNotAllowed(format!(
            "{alg:?} (key {kid:?} pins another)"
        )));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Keys(e.to_string()))?;
    let mut validation = Validation::new(alg);
    // Times are checked below against the given clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_audience(&[check.audience]);
    validation.set_issuer(&[issuer.issuer.as_str()]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidIssuer => TokenError::UnknownIssuer(issuer.issuer.clone()),
            ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed(format!("{alg:?}")),
            _ => TokenError::Malformed,
        })?;
    let claims = data.claims;
    let leeway = chrono::Duration::seconds(check.leeway_seconds);
    let expires = match instant(&claims, "exp")? {
        Some(exp) if exp + leeway > check.now => exp,
        Some(exp) => return Err(TokenError::Expired(exp)),
        None => return Err(TokenError::MissingClaim("exp".to_owned())),
    };
    if let Some(nbf) = instant(&claims, "nbf")?
        && nbf - leeway > check.now
    {
        return Err(TokenError::NotYetValid(nbf));
    }
    let subject = &issuer.subject_claim;
    let principal = claims
        .get(subject)
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::MissingClaim(subject.clone()))?;
    let principal = PrincipalId::parse(principal)
        .map_err(|e| TokenError::BadClaim(subject.clone(), e.to_string()))?;
    let roles_claim = &issuer.roles_claim;
    let names: Vec<&str> = match claims.get(roles_claim) {
        None => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    TokenError::BadClaim(roles_claim.clone(), "holds a non-string".to_owned())
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TokenError::BadClaim(
                roles_claim.clone(),
                "must be a list of strings".to_owned(),
            ));
        }
    };
    let roles = names
        .into_iter()
        .map(|r| {
            Role::parse(r).map_err(|e| TokenError::BadClaim(roles_claim.clone(), e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(StaffClaims {
        principal,
        roles,
        expires,
        bound_certificate: bound_certificate(&claims)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgencyCode;
    use crate::domain::credential::{JwksSource, TokenIssuerId};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const ISS: &str = "https://login.leeds-cc.example/realms/staff";
    const AUD: &str = "accord.example";

    struct Signer {
        kid: &'static str,
        alg: Algorithm,
        key: EncodingKey,
    }

    fn signer(kid: &'static str, alg: Algorithm, pem: &[u8]) -> Signer {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_ed_pem(pem),
        }
        .unwrap();
        Signer { kid, alg, key }
    }

    fn signers() -> Vec<Signer> {
        vec![
            signer(
                "rsa-1",
                Algorithm::RS256,
                include_bytes!("../../tests/data/jwt/rsa.pem"),
            ),
            signer(
                "ec-1",
                Algorithm::ES256,
                include_bytes!("../../tests/data/jwt/ec.pem"),
            ),
            signer(
                "ed-1",
                Algorithm::EdDSA,
                include_bytes!("../../tests/data/jwt/ed25519.pem"),
            ),
        ]
    }

    fn jwks(signers: &[Signer]) -> JwkSet {
        JwkSet {
            keys: signers
                .iter()
                .map(|s| {
                    let mut jwk = Jwk::from_encoding_key(&s.key, s.alg).unwrap();
                    jwk.common.key_id = Some(s.kid.to_owned());
                    jwk
                })
                .collect(),
        }
    }

    fn issuer(subject_claim: &str, roles_claim: &str) -> TokenIssuer {
        TokenIssuer {
            id: TokenIssuerId::generate(),
            agency: AgencyCode::parse("leeds-cc").unwrap(),
            issuer: ISS.to_owned(),
            jwks: JwksSource::Document(String::new()),
            subject_claim: subject_claim.to_owned(),
            roles_claim: roles_claim.to_owned(),
            create_time: Utc::now(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": AUD, "sub": "sw-17", "roles": ["social_worker"],
               "iat": 1_790_000_000 - 60, "exp": 1_790_000_000 + 300})
    }

    fn sign(s: &Signer, claims: &Value) -> String {
        let mut header = Header::new(s.alg);
        header.kid = Some(s.kid.to_owned());
        encode(&header, claims, &s.key).unwrap()
    }

    fn check(token: &str, keys: &JwkSet) -> Result<StaffClaims, TokenError> {
        let c = TokenCheck {
            audience: AUD,
            leeway_seconds: 30,
            now: now(),
        };
        verify(token, &issuer("sub", "roles"), keys, &c)
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn each_accepted_algorithm_verifies_and_yields_the_staff_member() {
        let all = signers();
        let keys = jwks(&all);
        for s in &all {
            let token = sign(s, &claims());
            assert_eq!(claimed_issuer(&token).unwrap(), ISS);
            let staff = check(&token, &keys).unwrap_or_else(|e| panic!("{}: {e}", s.kid));
            assert_eq!(staff.principal.as_str(), "sw-17");
            assert_eq!(staff.roles, [Role::parse("social_worker").unwrap()]);
        }
    }

    #[test]
    fn claim_names_follow_the_issuer() {
        let all = signers();
        let token = sign(
            &all[2],
            &json!({"iss": ISS, "aud": AUD, "oid": "0c1f-77", "groups": "gp ig_lead",
                    "exp": 1_790_000_000 + 300}),
        );
        let c = TokenCheck {
            audience: AUD,
            leeway_seconds: 0,
            now: now(),
        };
        let staff = verify(&token, &issuer("oid", "groups"), &jwks(&all), &c).unwrap();
        assert_eq!(staff.principal.as_str(), "0c1f-77");
        assert_eq!(staff.roles.len(), 2);
    }

    #[test]
    fn every_bad_token_is_refused_with_its_reason() {
        let all = signers();
        let keys = jwks(&all);
        let ed = &all[2];
        let other = signer(
            "ed-1",
            Algorithm::EdDSA,
            include_bytes!("../../tests/data/jwt/other-ed25519.pem"),
        );
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            sign(ed, &c)
        };
        let good = sign(ed, &claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload = {
            let mut c = claims();
            c["roles"] = json!(["operator"]);
            b64(&c)
        };
        parts[1] = &tampered_payload;
        let tampered = parts.join(".");
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "ed-1"})),
            b64(&claims())
        );
        // An HMAC whose secret is the RSA public key, the classic confusion.
        let hs256 = {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("rsa-1".to_owned());
            let secret = serde_json::to_vec(&keys.keys[0]).unwrap();
            encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap()
        };
        // A token saying it is ES256 but naming the EdDSA key.
        let mismatch = {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("ed-1".to_owned());
            encode(&header, &claims(), &all[1].key).unwrap()
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("garbage", "not a token".to_owned(), "TOKEN_MALFORMED"),
            (
                "expired",
                with(&|c| c["exp"] = json!(1_790_000_000 - 31)),
                "TOKEN_EXPIRED",
            ),
            (
                "not yet valid",
                with(&|c| c["nbf"] = json!(1_790_000_000 + 31)),
                "TOKEN_NOT_YET_VALID",
            ),
            (
                "no exp",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                "TOKEN_MISSING_CLAIM",
            ),
            (
                "wrong audience",
                with(&|c| c["aud"] = json!("another-service")),
                "TOKEN_WRONG_AUDIENCE",
            ),
            (
                "cnf thumbprint not a digest",
                with(&|c| c["cnf"] = json!({"x5t#S256": "c2hvcnQ"})),
                "TOKEN_BAD_CLAIM",
            ),
            (
                "another issuer",
                with(&|c| c["iss"] = json!("https://evil.example")),
                "TOKEN_UNKNOWN_ISSUER",
            ),
            (
                "signed by another key",
                sign(&other, &claims()),
                "TOKEN_BAD_SIGNATURE",
            ),
            ("tampered payload", tampered, "TOKEN_BAD_SIGNATURE"),
            ("alg none", none, "TOKEN_ALGORITHM_NOT_ALLOWED"),
            (
                "HS256 with the public key",
                hs256,
                "TOKEN_ALGORITHM_NOT_ALLOWED",
            ),
            ("alg not the key's", mismatch, "TOKEN_ALGORITHM_NOT_ALLOWED"),
            (
                "unknown kid",
                {
                    let mut h = Header::new(Algorithm::EdDSA);
                    h.kid = Some("ed-9".into());
                    encode(&h, &claims(), &ed.key).unwrap()
                },
                "TOKEN_UNKNOWN_KEY",
            ),
            (
                "no subject",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
                "TOKEN_MISSING_CLAIM",
            ),
            (
                "bad role",
                with(&|c| c["roles"] = json!(["Social Worker"])),
                "TOKEN_BAD_CLAIM",
            ),
        ];
        for (name, token, code) in cases {
            let err = check(&token, &keys).expect_err(name);
            assert_eq!(err.code(), code, "{name}: {err}");
            assert!(
                !err.to_string().contains(&token),
                "{name}: the message quotes the token"
            );
        }
        // Within the leeway, a just-expired token still passes.
        assert!(check(&with(&|c| c["exp"] = json!(1_790_000_000 - 29)), &keys).is_ok());
    }
}
