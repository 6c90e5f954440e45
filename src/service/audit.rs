//! Reading the audit ledger.

use super::{Call, Page, PageRequest, ServiceError, Services, page};
use crate::domain::{Role, Violations};
use crate::ledger::Entry;
use crate::store::{After, EntryFilter};

impl Services {
    /// Ledger entries an auditor of the caller's agency may see: calls made
    /// by the agency and calls that touched data it controls.
    pub async fn list_entries(
        &self,
        call: &Call,
        mut filter: EntryFilter,
        req: &PageRequest,
    ) -> Result<Page<Entry>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        if let Some(subject) = &filter.subject {
            call.note_subject(subject.clone());
        }
        let size = req.size()?;
        let after = match req.position()? {
            None => After::Start,
            Some(t) => After::Key(t.parse::<i64>().map_err(|_| {
                Violations::one("page_token", "is not a token this service issued")
            })?),
        };
        filter.visible_to = Some(call.caller.agency.as_str().to_owned());
        let items = self.store.entries(&filter, after, size + 1).await?;
        let page = page(items, size, |e| e.index.to_string());
        self.audit_read(call).await?;
        Ok(page)
    }
}
