//! A typed client for tests: calls made as one staff member of one agency,
//! in the words of the domain (`s.as_staff("wy-police", "pc-9",
//! "officer").get_record(&name, Purpose::Safeguarding)`), so a test reads
//! as what happens rather than as request literals.

use std::collections::HashMap;

use accord::api::pb;
use tonic::{Request, Status};

use super::{TestServer, as_caller};

/// Calls to one server made as one staff member: their agency, their id
/// and their roles (comma-separated), sent as development-mode metadata.
#[derive(Clone)]
pub struct Staff<'s> {
    server: &'s TestServer,
    agency: String,
    principal: String,
    roles: String,
    /// For a secure server: the agency system's channel and the staff
    /// member's token, used instead of development-mode metadata.
    signed: Option<(tonic::transport::Channel, String)>,
}

impl TestServer {
    /// Calls made as `principal` of `agency` holding `roles`.
    pub fn as_staff(&self, agency: &str, principal: &str, roles: &str) -> Staff<'_> {
        Staff {
            server: self,
            agency: agency.to_owned(),
            principal: principal.to_owned(),
            roles: roles.to_owned(),
            signed: None,
        }
    }

    /// Calls to a secure server over an agency system's `channel` (its
    /// client certificate) bearing a staff member's `token`.
    pub fn as_signed_staff(&self, channel: tonic::transport::Channel, token: String) -> Staff<'_> {
        Staff {
            signed: Some((channel, token)),
            ..self.as_staff("", "", "")
        }
    }

    /// Calls made as the operator.
    pub fn as_operator(&self) -> Staff<'_> {
        self.as_staff("accord-ops", "ops-1", "operator")
    }

    /// Calls made as `agency`'s IG lead (`ig-{agency}`).
    pub fn as_ig_lead(&self, agency: &str) -> Staff<'_> {
        self.as_staff(agency, &format!("ig-{agency}"), "ig_lead")
    }

    /// Calls made as `principal`, an auditor of `agency`.
    pub fn as_auditor(&self, agency: &str, principal: &str) -> Staff<'_> {
        self.as_staff(agency, principal, "auditor")
    }
}

impl Staff<'_> {
    /// `message` as a request from this staff member, for the RPCs this
    /// client has no method for.
    pub fn request<T>(&self, message: T) -> Request<T> {
        match &self.signed {
            Some((_, token)) => super::with_token(message, token),
            None => as_caller(message, &self.agency, &self.principal, &self.roles),
        }
    }

    /// The channel the calls go over.
    fn channel(&self) -> tonic::transport::Channel {
        match &self.signed {
            Some((channel, _)) => channel.clone(),
            None => self.server.channel.clone(),
        }
    }

    /// Registers `subject`.
    pub async fn create_subject(
        &self,
        subject: pb::Subject,
        purpose: pb::Purpose,
    ) -> Result<pb::Subject, Status> {
        let request = pb::CreateSubjectRequest {
            subject: Some(subject),
            purpose: purpose as i32,
            create_despite_match: false,
        };
        let answer = pb::subject_service_client::SubjectServiceClient::new(self.channel())
            .create_subject(self.request(request))
            .await?;
        Ok(answer.into_inner().subject.unwrap_or_default())
    }

    /// Writes a new record of `class` (`recordClasses/…`) about `subject`.
    pub async fn create_record(
        &self,
        subject: &str,
        class: &str,
        fields: HashMap<String, pb::FieldValue>,
        purpose: pb::Purpose,
    ) -> Result<pb::Record, Status> {
        let request = pb::CreateRecordRequest {
            record: Some(pb::Record {
                subject: subject.to_owned(),
                record_class: class.to_owned(),
                fields,
                ..Default::default()
            }),
            purpose: purpose as i32,
        };
        let answer = pb::record_service_client::RecordServiceClient::new(self.channel())
            .create_record(self.request(request))
            .await?;
        Ok(answer.into_inner().record.unwrap_or_default())
    }

    /// Reads the latest version of the record `name` for `purpose`.
    pub async fn get_record(&self, name: &str, purpose: pb::Purpose) -> Result<pb::Record, Status> {
        self.get_record_with(name, 0, purpose, "").await
    }

    /// Reads `version` of the record `name` (0: the latest).
    pub async fn get_record_version(
        &self,
        name: &str,
        version: i64,
        purpose: pb::Purpose,
    ) -> Result<pb::Record, Status> {
        self.get_record_with(name, version, purpose, "").await
    }

    /// Reads the record `name` in an emergency, breaking the glass for
    /// `reason`.
    pub async fn break_glass(&self, name: &str, reason: &str) -> Result<pb::Record, Status> {
        self.get_record_with(name, 0, pb::Purpose::Emergency, reason)
            .await
    }

    /// Reads `version` of the record `name` (0: the latest) for `purpose`,
    /// breaking the glass for `break_glass_reason` when it is not empty.
    pub async fn get_record_with(
        &self,
        name: &str,
        version: i64,
        purpose: pb::Purpose,
        break_glass_reason: &str,
    ) -> Result<pb::Record, Status> {
        let request = pb::GetRecordRequest {
            name: name.to_owned(),
            version,
            purpose: purpose as i32,
            break_glass_reason: break_glass_reason.to_owned(),
        };
        let answer = pb::record_service_client::RecordServiceClient::new(self.channel())
            .get_record(self.request(request))
            .await?;
        Ok(answer.into_inner().record.unwrap_or_default())
    }

    /// Records `consent`.
    pub async fn record_consent(&self, consent: pb::Consent) -> Result<pb::Consent, Status> {
        let request = pb::RecordConsentRequest {
            consent: Some(consent),
        };
        let answer = pb::consent_service_client::ConsentServiceClient::new(self.channel())
            .record_consent(self.request(request))
            .await?;
        Ok(answer.into_inner().consent.unwrap_or_default())
    }

    /// Proposes an agreement on `terms`.
    pub async fn propose(&self, terms: pb::Agreement) -> Result<pb::Agreement, Status> {
        let request = pb::CreateAgreementRequest {
            agreement: Some(terms),
        };
        let answer = pb::agreement_service_client::AgreementServiceClient::new(self.channel())
            .create_agreement(self.request(request))
            .await?;
        Ok(answer.into_inner().agreement.unwrap_or_default())
    }

    /// Approves `agreement` (at its version) for this staff member's agency.
    pub async fn approve(&self, agreement: &pb::Agreement) -> Result<pb::Agreement, Status> {
        let request = pb::ApproveAgreementRequest {
            name: agreement.name.clone(),
            version: agreement.version,
            etag: String::new(),
        };
        let answer = pb::agreement_service_client::AgreementServiceClient::new(self.channel())
            .approve_agreement(self.request(request))
            .await?;
        Ok(answer.into_inner().agreement.unwrap_or_default())
    }

    /// The subject access report of `subject`, for administration.
    pub async fn access_report(
        &self,
        subject: &str,
    ) -> Result<pb::GetSubjectAccessReportResponse, Status> {
        let request = pb::GetSubjectAccessReportRequest {
            subject: subject.to_owned(),
            purpose: pb::Purpose::Administration as i32,
            ..Default::default()
        };
        let answer = pb::audit_service_client::AuditServiceClient::new(self.channel())
            .get_subject_access_report(self.request(request))
            .await?;
        Ok(answer.into_inner())
    }

    /// The alerts this staff member may see, for administration.
    pub async fn alerts(&self, unacknowledged_only: bool) -> Result<Vec<pb::Alert>, Status> {
        let request = pb::ListAlertsRequest {
            purpose: pb::Purpose::Administration as i32,
            unacknowledged_only,
            ..Default::default()
        };
        let answer = pb::audit_service_client::AuditServiceClient::new(self.channel())
            .list_alerts(self.request(request))
            .await?;
        Ok(answer.into_inner().alerts)
    }
}
