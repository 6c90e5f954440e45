//! The secure authenticator: the agency system by its client certificate,
//! the staff member by a token from their agency's issuer, bound together.
//!
//! For each call on Accord's services:
//!
//! 1. the connection's client certificate must chain to a configured CA
//!    and be in date ([`ClientCas::check`]);
//! 2. it must be an operator certificate from the configuration, or match
//!    certificate identities of exactly one agency in the registry (by
//!    fingerprint, SPKI pin or subject alternative name), none of them
//!    revoked;
//! 3. an agency call must carry `authorization: Bearer <JWT>` from a token
//!    issuer registered to that same agency, verified as [`jwt::verify`]
//!    describes. A valid token of another agency is refused: a connection
//!    speaks for one agency only;
//! 4. a token bound to a certificate (RFC 8705: `cnf` with `x5t#S256`) is
//!    accepted only over that certificate's connection.
//!
//! Operator certificates carry the `operator` role; a token on such a
//! connection, optional, must come from the configured operator issuer and
//! names the person. Over a trusted certificate that is registered to no
//! agency, a token from the operator issuer that grants the `operator`
//! role is accepted too. Agency tokens can never confer `operator`.
//!
//! A call is authenticated on the registry this process holds, and its
//! ledger entry commits only if the registry has not changed since
//! ([`Registry`]); a refusal is made only on the registry as it is now. So
//! revoking a certificate identity or removing an issuer takes effect on
//! every call whose entry commits after it, in every process. What does not
//! change between calls on one connection is verified once and remembered
//! ([`Verified`]): a certificate chain for at most five minutes (and never
//! past its certificate's expiry), a token until it expires, under the
//! exact token and its issuer's keys as this process holds them (key files
//! are read again on SIGHUP: see [`IssuerKeys`]).

use std::sync::Arc;

use tonic::metadata::MetadataMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::cache::{Verified, digest};
use super::jwt::{self, StaffClaims, TokenCheck, TokenError};
use super::keys::IssuerKeys;
use super::registry::{AtVersion, Registry};
use super::tls::{ClientCas, examine};
use super::{AuthFailure, Authenticated, Authenticator, Basis, Presented, REGISTRY_UNAVAILABLE};
use crate::clock::SharedClock;
use crate::domain::credential::{CertificateMatch, Fingerprint, TokenIssuer};
use crate::domain::{AgencyCode, Caller, PrincipalId, Role};
use crate::store::{Store, StoreError};

/// How staff tokens are checked, besides their issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The audience (`aud`) tokens must name: this Accord service.
    pub audience: String,
    /// Allowance for clock skew on `exp` and `nbf`, in seconds.
    pub leeway_seconds: i64,
}

/// Who may make operator calls.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The name recorded as the operator's agency in the ledger.
    pub agency: AgencyCode,
    /// Operator client certificates, by fingerprint or SPKI pin.
    pub certificates: Vec<CertificateMatch>,
    /// The issuer of operator staff tokens, if any.
    pub issuer: Option<TokenIssuer>,
}

/// Mutual TLS plus signed staff tokens.
#[derive(Debug, Clone)]
pub struct MutualTls {
    registry: Arc<Registry>,
    clock: SharedClock,
    cas: ClientCas,
    tokens: TokenSettings,
    operator: Operator,
    chains: Arc<Verified<()>>,
    verified_tokens: Arc<Verified<StaffClaims>>,
    keys: Arc<IssuerKeys>,
}

/// The reason code of a trusted certificate registered to no agency.
const UNKNOWN_CERTIFICATE: &str = "CLIENT_CERTIFICATE_UNKNOWN";

/// How long a verified certificate chain is remembered at most.
const CHAIN_TTL: TimeDelta = TimeDelta::minutes(5);

/// The refusal when the registry cannot be read.
fn unavailable(e: StoreError) -> AuthFailure {
    tracing::error!(error = %e, "cannot read the agency registry");
    AuthFailure::new(
        REGISTRY_UNAVAILABLE,
        "the agency registry cannot be read; try again",
    )
}

/// The metadata key carrying the bearer token.
const AUTHORIZATION: &str = "authorization";

/// The bearer token of a request: none, or its text.
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, TokenError> {
    let Some(value) = metadata.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(TokenError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Some(token.trim()))
}

impl From<TokenError> for AuthFailure {
    fn from(e: TokenError) -> Self {
        AuthFailure::new(e.code(), e.to_string())
    }
}

impl MutualTls {
    /// An authenticator trusting client certificates from `cas`, mapping
    /// them to agencies and issuers through `store`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        cas: ClientCas,
        tokens: TokenSettings,
        operator: Operator,
        keys: Arc<IssuerKeys>,
    ) -> Self {
        Self {
            registry: Arc::new(Registry::new(store)),
            clock,
            cas,
            tokens,
            operator,
            chains: Arc::default(),
            verified_tokens: Arc::default(),
            keys,
        }
    }

    /// Verifies `token` of `issuer`, presented over the client certificate
    /// `certificate`: a token bound to a certificate (RFC 8705) is accepted
    /// only over that one.
    async fn verify(
        &self,
        token: &str,
        issuer: &TokenIssuer,
        certificate: Fingerprint,
    ) -> Result<StaffClaims, AuthFailure> {
        let claims = self.verified(token, issuer).await?;
        match claims.bound_certificate {
            Some(bound) if bound != certificate.0 => Err(AuthFailure::new(
                "TOKEN_CERTIFICATE_MISMATCH",
                "the token is bound (cnf x5t#S256) to another client certificate",
            )),
            _ => Ok(claims),
        }
    }

    /// Verifies `token` of `issuer`, or finds it verified already under the
    /// issuer's keys as they are now.
    async fn verified(
        &self,
        token: &str,
        issuer: &TokenIssuer,
    ) -> Result<StaffClaims, AuthFailure> {
        let kid = jwt::claimed_key_id(token);
        let keys = self.keys.get(&issuer.jwks, &issuer.issuer, &kid).await?;
        let now = self.clock.now();
        let key = digest([
            issuer.issuer.as_bytes(),
            issuer.subject_claim.as_bytes(),
            issuer.roles_claim.as_bytes(),
            keys.digest.as_slice(),
            self.tokens.audience.as_bytes(),
            token.as_bytes(),
        ]);
        if let Some(claims) = self.verified_tokens.get(&key, now) {
            return Ok(claims);
        }
        let check = TokenCheck {
            audience: &self.tokens.audience,
            leeway_seconds: self.tokens.leeway_seconds,
            now,
        };
        let claims = jwt::verify(token, issuer, &keys.set, &check)?;
        let until = claims.expires + TimeDelta::seconds(self.tokens.leeway_seconds);
        self.verified_tokens.insert(key, claims.clone(), until);
        Ok(claims)
    }

    /// Checks the chain of a certificate valid until `not_after`, or finds
    /// it checked recently.
    fn check_chain(
        &self,
        chain: &[rustls::pki_types::CertificateDer<'static>],
        not_after: DateTime<Utc>,
    ) -> Result<(), super::tls::CertificateProblem> {
        let now = self.clock.now();
        // Checked against the CAs as they are now: a chain checked before
        // they were reloaded is checked again.
        let generation = self.cas.generation().to_be_bytes();
        let key =
            digest(std::iter::once(generation.as_slice()).chain(chain.iter().map(|c| c.as_ref())));
        if self.chains.get(&key, now).is_some() {
            return Ok(());
        }
        self.cas.check(chain, now)?;
        self.chains
            .insert(key, (), (now + CHAIN_TTL).min(not_after));
        Ok(())
    }

    /// An operator connection: the certificate confers the role; a token,
    /// if any, must come from the operator issuer and names the person.
    async fn operator_caller(
        &self,
        token: Option<&str>,
        common_name: Option<&str>,
        certificate: Fingerprint,
    ) -> Result<Caller, AuthFailure> {
        let (principal, mut roles) = match token {
            None => {
                let name = common_name
                    .and_then(|cn| PrincipalId::parse(cn).ok())
                    .or_else(|| {
                        let hex = certificate.to_string();
                        PrincipalId::parse(&format!("certificate-{}", &hex[..16])).ok()
                    })
                    .ok_or_else(|| {
                        AuthFailure::new("CLIENT_CERTIFICATE_INVALID", "unnamed certificate")
                    })?;
                (name, vec![])
            }
            Some(token) => {
                let iss = jwt::claimed_issuer(token)?;
                let issuer = self
                    .operator
                    .issuer
                    .as_ref()
                    .filter(|i| i.issuer == iss)
                    .ok_or_else(|| {
                        AuthFailure::new(
                            "AGENCY_MISMATCH",
                            format!(
                                "the token's issuer {iss:?} is not the operator issuer, \
                                 and this is an operator connection"
                            ),
                        )
                    })?;
                let claims = self.verify(token, issuer, certificate).await?;
                (claims.principal, claims.roles)
            }
        };
        if !roles.iter().any(|r| r.as_str() == Role::OPERATOR) {
            roles.push(
                Role::parse(Role::OPERATOR)
                    .map_err(|e| AuthFailure::new("INTERNAL", e.to_string()))?,
            );
        }
        Ok(Caller {
            agency: self.operator.agency.clone(),
            principal,
            roles,
            client_certificate: None,
        })
    }

    /// An operator staff member over a certificate that is neither an
    /// operator certificate nor registered to an agency: accepted when
    /// their token comes from the operator issuer and grants the operator
    /// role. `None` when the token is not the operator issuer's.
    async fn operator_staff(
        &self,
        token: &str,
        certificate: Fingerprint,
    ) -> Result<Option<Caller>, AuthFailure> {
        let Some(issuer) = self.operator.issuer.as_ref() else {
            return Ok(None);
        };
        if jwt::claimed_issuer(token).ok().as_deref() != Some(issuer.issuer.as_str()) {
            return Ok(None);
        }
        let claims = self.verify(token, issuer, certificate).await?;
        if !claims.roles.iter().any(|r| r.as_str() == Role::OPERATOR) {
            return Err(AuthFailure::new(
                "OPERATOR_ROLE_MISSING",
                "the operator issuer's token does not grant the operator role, and the \
                 client certificate belongs to no agency",
            ));
        }
        Ok(Some(Caller {
            agency: self.operator.agency.clone(),
            principal: claims.principal,
            roles: claims.roles,
            client_certificate: Some(certificate),
        }))
    }

    /// `failure`, a refusal of a certificate whose chain did not check,
    /// attributed where the certificate can be: by its fingerprint or key
    /// (SPKI), which nobody else can present; by a subject alternative
    /// name only if a CA Accord trusts issued it (an expired or not yet
    /// valid certificate), since anyone can put a name in a certificate
    /// of their own CA.
    async fn attributed_refusal(
        &self,
        chain: &[rustls::pki_types::CertificateDer<'static>],
        examined: &super::tls::Examined,
        failure: AuthFailure,
    ) -> AuthFailure {
        let trusted_issuer = self
            .cas
            .check(chain, examined.not_after - chrono::TimeDelta::seconds(1))
            .is_ok();
        let matchers: Vec<CertificateMatch> = examined
            .matchers
            .iter()
            .filter(|m| trusted_issuer || !matches!(m, CertificateMatch::SubjectAltName(_)))
            .cloned()
            .collect();
        self.attributed(&matchers, failure).await
    }

    /// `failure`, attributed to the agency whose registered certificate
    /// identities (revoked ones included) `matchers` match, if they are all
    /// one agency's.
    async fn attributed(&self, matchers: &[CertificateMatch], failure: AuthFailure) -> AuthFailure {
        let Ok(registry) = self.registry.current().await else {
            return failure;
        };
        let Ok(found) = registry.identities(matchers).await else {
            return failure;
        };
        match found.first() {
            Some(first) if found.iter().all(|i| i.agency == first.agency) => AuthFailure {
                claimed_agency: first.agency.as_str().to_owned(),
                ..failure
            },
            _ => failure,
        }
    }

    /// The caller over a certificate that `matchers` describe, as the
    /// registry on `basis` knows it: an agency's staff member, or an
    /// operator's over a certificate registered to no agency. A refusal
    /// comes with whether it was made on the registry as it is now.
    async fn registered(
        &self,
        matchers: &[CertificateMatch],
        token: Option<&str>,
        fingerprint: Fingerprint,
        basis: Basis,
    ) -> Result<Authenticated, (AuthFailure, bool)> {
        let registry = self
            .registry
            .at(basis)
            .await
            .map_err(|e| (unavailable(e), true))?;
        let refused = |f: AuthFailure| (f, registry.fresh());
        let established = |caller: Caller| Authenticated {
            caller,
            registry: Some(registry.version()),
        };
        let agency = match self.agency_of(&registry, matchers).await {
            Ok(agency) => agency,
            Err(f) => {
                if let (UNKNOWN_CERTIFICATE, Some(token)) = (f.code, token) {
                    let as_operator = |f: AuthFailure| AuthFailure {
                        claimed_agency: self.operator.agency.as_str().to_owned(),
                        ..f
                    };
                    if let Some(caller) = self
                        .operator_staff(token, fingerprint)
                        .await
                        .map_err(|f| refused(as_operator(f)))?
                    {
                        return Ok(established(caller));
                    }
                }
                return Err(refused(f));
            }
        };
        let staff = self
            .staff_of(&registry, &agency, token, fingerprint)
            .await
            .map_err(|f| {
                refused(AuthFailure {
                    claimed_agency: agency.as_str().to_owned(),
                    ..f
                })
            })?;
        Ok(established(Caller {
            agency,
            principal: staff.principal,
            roles: staff.roles,
            client_certificate: Some(fingerprint),
        }))
    }

    /// The agency whose certificate identities the certificate matches.
    async fn agency_of(
        &self,
        registry: &AtVersion<'_>,
        matchers: &[CertificateMatch],
    ) -> Result<AgencyCode, AuthFailure> {
        let found = registry.identities(matchers).await.map_err(unavailable)?;
        if found.is_empty() {
            return Err(AuthFailure::new(
                UNKNOWN_CERTIFICATE,
                "the client certificate is not registered to any agency",
            ));
        }
        // Revoking any identity the certificate matches (its fingerprint,
        // its key or one of its names) stops it.
        if let Some(revoked) = found.iter().find(|i| i.revoke_time.is_some()) {
            return Err(AuthFailure {
                claimed_agency: revoked.agency.as_str().to_owned(),
                ..AuthFailure::new(
                    "CLIENT_CERTIFICATE_REVOKED",
                    format!(
                        "the client certificate's identity {} was revoked",
                        revoked.resource_name()
                    ),
                )
            });
        }
        let agency = found[0].agency.clone();
        if found.iter().any(|i| i.agency != agency) {
            return Err(AuthFailure::new(
                "CLIENT_CERTIFICATE_AMBIGUOUS",
                "the client certificate matches identities of more than one agency",
            ));
        }
        Ok(agency)
    }

    /// A staff member of `agency`, by a token from one of its issuers.
    async fn staff_of(
        &self,
        registry: &AtVersion<'_>,
        agency: &AgencyCode,
        token: Option<&str>,
        certificate: Fingerprint,
    ) -> Result<StaffClaims, AuthFailure> {
        let token = token.ok_or_else(|| {
            AuthFailure::new(
                "TOKEN_MISSING",
                "no bearer token: send `authorization: Bearer <token>` from your agency's issuer",
            )
        })?;
        let iss = jwt::claimed_issuer(token)?;
        let mismatch = |owner: &str| {
            AuthFailure::new(
                "AGENCY_MISMATCH",
                format!(
                    "the token's issuer {iss:?} belongs to {owner}, but the client certificate \
                     to {}",
                    agency.resource_name()
                ),
            )
        };
        if self
            .operator
            .issuer
            .as_ref()
            .is_some_and(|i| i.issuer == iss)
        {
            return Err(mismatch("the operator"));
        }
        let issuer = registry
            .issuer(&iss)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthFailure::from(TokenError::UnknownIssuer(iss.clone())))?;
        if issuer.agency != *agency {
            // The token's agency is told too: its credential was presented
            // where it should not be.
            return Err(AuthFailure {
                concerns: issuer.agency.as_str().to_owned(),
                ..mismatch(&issuer.agency.resource_name())
            });
        }
        let mut claims = self.verify(token, &issuer, certificate).await?;
        // Only the operator's own credentials confer the operator's roles.
        claims
            .roles
            .retain(|r| !Role::OPERATOR_ONLY.contains(&r.as_str()));
        Ok(claims)
    }
}

#[async_trait::async_trait]
impl Authenticator for MutualTls {
    async fn authenticate(
        &self,
        presented: &Presented<'_>,
        basis: Basis,
    ) -> Result<Authenticated, AuthFailure> {
        let chain = presented.peer_certificates.unwrap_or_default();
        let Some(leaf) = chain.first() else {
            let missing = super::tls::CertificateProblem::Missing;
            return Err(AuthFailure::new(missing.code(), missing.to_string()));
        };
        let fingerprint = Fingerprint::of(leaf);
        let with_certificate = |f: AuthFailure| AuthFailure {
            client_certificate: Some(Box::new(fingerprint)),
            ..f
        };
        let refuse = |p: super::tls::CertificateProblem| {
            with_certificate(AuthFailure::new(p.code(), p.to_string()))
        };
        let examined = match examine(leaf) {
            Ok(examined) => examined,
            Err(p) => {
                let by_fingerprint = [CertificateMatch::CertificateSha256(fingerprint.0)];
                return Err(self.attributed(&by_fingerprint, refuse(p)).await);
            }
        };
        if let Err(p) = self.check_chain(chain, examined.not_after) {
            return Err(self.attributed_refusal(chain, &examined, refuse(p)).await);
        }
        let token = bearer(presented.metadata).map_err(|e| with_certificate(e.into()))?;
        let is_operator = examined
            .matchers
            .iter()
            .any(|m| self.operator.certificates.contains(m));
        if is_operator {
            let caller = self
                .operator_caller(token, examined.common_name.as_deref(), fingerprint)
                .await
                .map_err(|f| AuthFailure {
                    claimed_agency: self.operator.agency.as_str().to_owned(),
                    ..with_certificate(f)
                })?;
            return Ok(Authenticated::without_registry(Caller {
                client_certificate: Some(fingerprint),
                ..caller
            }));
        }
        let established = self
            .registered(&examined.matchers, token, fingerprint, basis)
            .await;
        match established {
            Err((_, false)) => {
                // A refusal stands only on the registry as it is now.
                self.registered(&examined.matchers, token, fingerprint, Basis::Fresh)
                    .await
            }
            other => other,
        }
        .map_err(|(f, _)| with_certificate(f))
    }
}
