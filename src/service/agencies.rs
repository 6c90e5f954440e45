//! The agency registry.

use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::agency::RateLimit;
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, JwksError, JwksSource,
    TokenIssuer, TokenIssuerId, check_jwks,
};
use crate::domain::{Agency, AgencyCode, AgencyKind, AgencyStatus, Role, Violations, check_text};
use crate::store::{StoreError, Write};

fn agency_etag(
    code: &AgencyCode,
    time: chrono::DateTime<chrono::Utc>,
    display: &str,
    status: AgencyStatus,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(code.as_str());
    h.update(time.timestamp_micros().to_be_bytes());
    h.update(display);
    h.update(status.code());
    hex::encode(&h.finalize()[..8])
}

/// A token issuer to register, as received (each value checked).
#[derive(Debug, Clone)]
pub struct NewTokenIssuer {
    pub issuer: String,
    pub jwks: JwksSource,
    pub subject_claim: String,
    pub roles_claim: String,
}

/// The changes UpdateAgency may make.
#[derive(Debug, Clone, Default)]
pub struct AgencyChange {
    pub display_name: Option<String>,
    pub status: Option<AgencyStatus>,
    /// `Some(None)`: back to the configured default.
    pub rate_limit: Option<Option<RateLimit>>,
    /// When set, the update applies only if this is the current etag.
    pub etag: Option<String>,
}

impl Services {
    /// Registers an agency (operator only).
    pub async fn create_agency(
        &self,
        call: &Call,
        code: AgencyCode,
        display_name: String,
        kind: AgencyKind,
    ) -> Result<Audited<Agency>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(code.as_str().to_owned());
        let agency = Agency {
            etag: agency_etag(&code, call.time, &display_name, AgencyStatus::Active),
            code,
            display_name,
            kind,
            status: AgencyStatus::Active,
            create_time: call.time,
            update_time: call.time,
            rate_limit: None,
        };
        call.note_fields(vec![
            "code".into(),
            "display_name".into(),
            "kind".into(),
            "status".into(),
        ]);
        self.commit(call, vec![Write::InsertAgency(agency.clone())], agency)
            .await
    }

    /// Reads one agency.
    pub async fn get_agency(
        &self,
        call: &Call,
        code: &AgencyCode,
    ) -> Result<Audited<Agency>, ServiceError> {
        call.note_controller(code.as_str().to_owned());
        let agency = self
            .store
            .agency(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(code.resource_name()))?;
        self.commit(call, vec![], agency).await
    }

    /// Lists agencies in code order.
    pub async fn list_agencies(
        &self,
        call: &Call,
        req: &PageRequest,
    ) -> Result<Audited<Page<Agency>>, ServiceError> {
        let paging = self.tokens.paging(call, "ListAgencies", req)?;
        let items = self
            .store
            .agencies(paging.after(), paging.size() + 1)
            .await?;
        let page = paging.page(items, |a| a.code.as_str().to_owned());
        self.commit(call, vec![], page).await
    }

    /// Changes an agency's display name or status (operator only).
    pub async fn update_agency(
        &self,
        call: &Call,
        code: &AgencyCode,
        change: AgencyChange,
    ) -> Result<Audited<Agency>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(code.as_str().to_owned());
        let current = self
            .store
            .agency(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(code.resource_name()))?;
        let expected_etag = change.etag.clone().unwrap_or_else(|| current.etag.clone());
        let mut fields = vec![];
        let mut next = current;
        if let Some(name) = change.display_name {
            next.display_name = name;
            fields.push("display_name".to_owned());
        }
        if let Some(status) = change.status {
            next.status = status;
            fields.push("status".to_owned());
        }
        if let Some(rate_limit) = change.rate_limit {
            next.rate_limit = rate_limit;
            fields.push("rate_limit".to_owned());
            self.limits.forget(code);
        }
        next.update_time = call.time;
        next.etag = agency_etag(code, call.time, &next.display_name, next.status);
        call.note_fields(fields);
        self.commit(
            call,
            vec![Write::UpdateAgency {
                agency: next.clone(),
                expected_etag,
            }],
            next,
        )
        .await
    }

    /// Registers a certificate identity of `agency` (operator only).
    pub async fn add_certificate_identity(
        &self,
        call: &Call,
        agency: &AgencyCode,
        matcher: CertificateMatch,
        note: String,
    ) -> Result<Audited<CertificateIdentity>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(agency.as_str().to_owned());
        if let Err(e) = check_text(&note, 0, 200) {
            return Err(Violations::one("certificate_identity.note", e).into());
        }
        if self.store.agency(agency).await?.is_none() {
            return Err(ServiceError::NotFound(agency.resource_name()));
        }
        let identity = CertificateIdentity {
            id: CertificateIdentityId::generate(),
            agency: agency.clone(),
            matcher,
            note: note.trim().to_owned(),
            create_time: call.time,
            revoke_time: None,
        };
        call.note_records(vec![identity.resource_name()]);
        self.commit(
            call,
            vec![Write::InsertCertificateIdentity(identity.clone())],
            identity,
        )
        .await
    }

    /// Revokes a certificate identity (operator only).
    pub async fn revoke_certificate_identity(
        &self,
        call: &Call,
        agency: &AgencyCode,
        id: &CertificateIdentityId,
    ) -> Result<Audited<CertificateIdentity>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(agency.as_str().to_owned());
        let not_found =
            || ServiceError::NotFound(format!("{}/{}", agency.resource_name(), id.resource_name()));
        let identity = self
            .store
            .certificate_identities(agency)
            .await?
            .into_iter()
            .find(|c| &c.id == id)
            .ok_or_else(not_found)?;
        call.note_records(vec![identity.resource_name()]);
        let write = Write::RevokeCertificateIdentity {
            id: id.clone(),
            time: call.time,
        };
        let revoked = CertificateIdentity {
            revoke_time: Some(call.time),
            ..identity
        };
        match self.commit_receipt(call, vec![write]).await {
            Ok(receipt) => Ok(Audited::new(receipt, revoked)),
            Err(StoreError::Conflict(message)) => Err(ServiceError::Precondition {
                code: "ALREADY_REVOKED",
                message,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists an agency's certificate identities, for the operator and the
    /// agency's own staff.
    pub async fn list_certificate_identities(
        &self,
        call: &Call,
        agency: &AgencyCode,
    ) -> Result<Audited<Vec<CertificateIdentity>>, ServiceError> {
        self.check_own_registry(call, agency).await?;
        let identities = self.store.certificate_identities(agency).await?;
        self.commit(call, vec![], identities).await
    }

    /// Registers a token issuer of `agency` (operator only). A JWKS file
    /// is read and checked now, as a document is.
    pub async fn add_token_issuer(
        &self,
        call: &Call,
        agency: &AgencyCode,
        issuer: NewTokenIssuer,
    ) -> Result<Audited<TokenIssuer>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(agency.as_str().to_owned());
        let jwks_check = match &issuer.jwks {
            JwksSource::Document(d) => check_jwks(d).map_err(|e| ("token_issuer.jwks_json", e)),
            JwksSource::Path(p) => std::fs::read_to_string(p)
                .map_err(|e| JwksError::Unreadable(e.to_string()))
                .and_then(|d| check_jwks(&d))
                .map_err(|e| ("token_issuer.jwks_path", e)),
            // Checked as a URL on input; its keys are fetched when first
            // needed.
            JwksSource::Discovery(_) => Ok(()),
        };
        if let Err((field, e)) = jwks_check {
            return Err(Violations::one(field, e).into());
        }
        if self.store.agency(agency).await?.is_none() {
            return Err(ServiceError::NotFound(agency.resource_name()));
        }
        let issuer = TokenIssuer {
            id: TokenIssuerId::generate(),
            agency: agency.clone(),
            issuer: issuer.issuer,
            jwks: issuer.jwks,
            subject_claim: issuer.subject_claim,
            roles_claim: issuer.roles_claim,
            create_time: call.time,
        };
        call.note_records(vec![issuer.resource_name()]);
        self.commit(call, vec![Write::InsertTokenIssuer(issuer.clone())], issuer)
            .await
    }

    /// Removes a token issuer (operator only).
    pub async fn remove_token_issuer(
        &self,
        call: &Call,
        agency: &AgencyCode,
        id: &TokenIssuerId,
    ) -> Result<Audited<()>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_controller(agency.as_str().to_owned());
        let name = format!("{}/{}", agency.resource_name(), id.resource_name());
        call.note_records(vec![name.clone()]);
        if !self
            .store
            .token_issuers(agency)
            .await?
            .iter()
            .any(|t| &t.id == id)
        {
            return Err(ServiceError::NotFound(name));
        }
        self.commit(call, vec![Write::RemoveTokenIssuer(id.clone())], ())
            .await
    }

    /// Lists an agency's token issuers, for the operator and the agency's
    /// own staff.
    pub async fn list_token_issuers(
        &self,
        call: &Call,
        agency: &AgencyCode,
    ) -> Result<Audited<Vec<TokenIssuer>>, ServiceError> {
        self.check_own_registry(call, agency).await?;
        let issuers = self.store.token_issuers(agency).await?;
        self.commit(call, vec![], issuers).await
    }

    /// Checks that the caller may read `agency`'s credentials: the
    /// operator, or the agency's own staff.
    async fn check_own_registry(
        &self,
        call: &Call,
        agency: &AgencyCode,
    ) -> Result<(), ServiceError> {
        call.note_controller(agency.as_str().to_owned());
        if !call.caller.has_role(Role::OPERATOR) && &call.caller.agency != agency {
            return Err(ServiceError::denied(
                "NOT_YOUR_AGENCY",
                format!(
                    "only the operator and {}'s own staff may read its credentials",
                    agency.resource_name()
                ),
            ));
        }
        if self.store.agency(agency).await?.is_none() {
            return Err(ServiceError::NotFound(agency.resource_name()));
        }
        Ok(())
    }
}
