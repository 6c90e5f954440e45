//! The agency registry.

use super::{Call, Page, PageRequest, ServiceError, Services, page};
use crate::domain::{Agency, AgencyCode, AgencyKind, AgencyStatus, Role};
use crate::store::{After, Write};

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

/// The changes UpdateAgency may make.
#[derive(Debug, Clone, Default)]
pub struct AgencyChange {
    pub display_name: Option<String>,
    pub status: Option<AgencyStatus>,
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
    ) -> Result<Agency, ServiceError> {
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
        };
        call.note_fields(vec![
            "code".into(),
            "display_name".into(),
            "kind".into(),
            "status".into(),
        ]);
        self.store
            .commit(vec![Write::InsertAgency(agency.clone())], call.permitted())
            .await?;
        Ok(agency)
    }

    /// Reads one agency.
    pub async fn get_agency(&self, call: &Call, code: &AgencyCode) -> Result<Agency, ServiceError> {
        call.note_controller(code.as_str().to_owned());
        let agency = self
            .store
            .agency(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(code.resource_name()))?;
        self.audit_read(call).await?;
        Ok(agency)
    }

    /// Lists agencies in code order.
    pub async fn list_agencies(
        &self,
        call: &Call,
        req: &PageRequest,
    ) -> Result<Page<Agency>, ServiceError> {
        let size = req.size()?;
        let after = req.position()?.map_or(After::Start, After::Key);
        let items = self.store.agencies(after, size + 1).await?;
        let page = page(items, size, |a| a.code.as_str().to_owned());
        self.audit_read(call).await?;
        Ok(page)
    }

    /// Changes an agency's display name or status (operator only).
    pub async fn update_agency(
        &self,
        call: &Call,
        code: &AgencyCode,
        change: AgencyChange,
    ) -> Result<Agency, ServiceError> {
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
        next.update_time = call.time;
        next.etag = agency_etag(code, call.time, &next.display_name, next.status);
        call.note_fields(fields);
        self.store
            .commit(
                vec![Write::UpdateAgency {
                    agency: next.clone(),
                    expected_etag,
                }],
                call.permitted(),
            )
            .await?;
        Ok(next)
    }
}
