//! Reading the audit ledger.

use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::{Purpose, Role, SubjectId};
use crate::ledger::EntryFilter;
use crate::ledger::{Entry, Grounds, Outcome};
use crate::store::After;

/// The most accesses one subject access report holds.
pub const MAX_REPORT_ENTRIES: u32 = 10_000;

/// A subject access report: the accesses to one subject that the caller's
/// agency may see, oldest first.
#[derive(Debug, Clone)]
pub struct AccessReport {
    pub subject: SubjectId,
    pub generate_time: chrono::DateTime<chrono::Utc>,
    pub accesses: Vec<SubjectAccess>,
    /// Whether more entries matched than the report holds.
    pub truncated: bool,
}

/// One access to a subject's identity or records, in plain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAccess {
    pub time: chrono::DateTime<chrono::Utc>,
    /// The agency code of the caller (empty if not established).
    pub agency: String,
    pub principal: String,
    pub roles: Vec<String>,
    /// What they did, e.g. "viewed a record".
    pub activity: String,
    pub purpose: Option<Purpose>,
    pub records: Vec<String>,
    pub fields: Vec<String>,
    pub outcome: Outcome,
    pub reason: String,
    /// The agreements, lawful bases, consent and emergency reason it rested
    /// on (or that a refusal named).
    pub grounds: Grounds,
    /// The ledger entry that records it, for proofs.
    pub entry_index: i64,
}

impl From<Entry> for SubjectAccess {
    fn from(e: Entry) -> Self {
        let d = e.draft;
        Self {
            time: d.time,
            agency: d.agency,
            principal: d.principal,
            roles: d.roles,
            activity: activity(&d.action),
            purpose: d.purpose,
            records: d.records,
            fields: d.fields,
            outcome: d.outcome,
            reason: d.reason,
            grounds: d.grounds,
            entry_index: e.index,
        }
    }
}

/// The ledger filter of the accesses to `subject`, as seen by `agency`
/// (every access when `None`).
pub fn subject_access_filter(subject: &SubjectId, agency: Option<&str>) -> EntryFilter {
    EntryFilter {
        subject: Some(subject.resource_name()),
        visible_to: agency.map(str::to_owned),
        ..EntryFilter::default()
    }
}

/// What an audited action did, in plain words for a citizen.
pub fn activity(action: &str) -> String {
    let method = action.rsplit('/').next().unwrap_or(action);
    match method {
        "CreateSubject" => "registered the person",
        "GetSubject" => "viewed the person's details",
        "FindSubjects" => "searched for the person",
        "LinkIdentifier" => "linked an identifier to the person",
        "UnlinkIdentifier" => "removed an identifier from the person",
        "CreateRecord" => "created a record",
        "UpdateRecord" => "changed a record",
        "GetRecord" => "viewed a record",
        "ListRecords" => "listed the person's records",
        "ListEntries" => "read the audit log about the person",
        "GetSubjectAccessReport" => "produced an access report about the person",
        "CreateSubscription" => "asked to be told of changes about the person",
        "DeleteSubscription" => "stopped being told of changes about the person",
        "ListEvents" => "was told of a change about the person",
        "GetSubjectView" => "viewed a summary of the person's records",
        "CheckAccess" => "checked whether they could see a record",
        "SealRecord" => "restricted a record",
        "UnsealRecord" => "lifted a restriction on a record",
        "SealSubjectRecords" => "restricted the person's records",
        "UnsealSubjectRecords" => "lifted a restriction on the person's records",
        "MergeSubjects" => "joined duplicate registrations of the person",
        "UnmergeSubjects" => "separated registrations of the person joined in error",
        "RecordConsent" => "recorded the person's consent or objection",
        "WithdrawConsent" => "recorded that the person withdrew a consent or objection",
        "ListConsents" => "viewed the person's consent history",
        _ => return action.to_owned(),
    }
    .to_owned()
}

impl Services {
    /// Ledger entries an auditor of the caller's agency may see: calls made
    /// by the agency and calls that touched data it controls.
    pub async fn list_entries(
        &self,
        call: &Call,
        mut filter: EntryFilter,
        req: &PageRequest,
    ) -> Result<Audited<Page<Entry>>, ServiceError> {
        if filter.agency.as_deref() == Some("") {
            // The operator's security view: calls refused before any
            // agency was established, which no agency sees.
            call.require_role(Role::SECURITY_AUDITOR)?;
        } else {
            call.require_role(Role::AUDITOR)?;
            filter.visible_to = Some(call.caller.agency.as_str().to_owned());
        }
        if let Some(subject) = &filter.subject {
            call.note_subject(subject.clone());
        }
        let listing = format!("ListEntries\n{filter:?}");
        let paging = self.tokens.paging(call, &listing, req)?;
        let items = self
            .store
            .entries(&filter, paging.after_number()?, paging.size() + 1)
            .await?;
        let page = paging.page(items, |e| e.index.to_string());
        self.commit(call, vec![], page).await
    }

    /// Every access to `subject` an auditor of the caller's agency may see,
    /// within `[start, end)` if given.
    pub async fn subject_access_report(
        &self,
        call: &Call,
        subject: SubjectId,
        start: Option<chrono::DateTime<chrono::Utc>>,
        end: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Audited<AccessReport>, ServiceError> {
        call.require_role(Role::AUDITOR)?;
        call.note_subject(subject.resource_name());
        let filter = EntryFilter {
            start,
            end,
            ..subject_access_filter(&subject, Some(call.caller.agency.as_str()))
        };
        let mut entries = self
            .store
            .entries(&filter, After::Start, MAX_REPORT_ENTRIES + 1)
            .await?;
        let limit = usize::try_from(MAX_REPORT_ENTRIES).unwrap_or(usize::MAX);
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        self.commit(
            call,
            vec![],
            AccessReport {
                subject,
                generate_time: call.time,
                accesses: entries.into_iter().map(SubjectAccess::from).collect(),
                truncated,
            },
        )
        .await
    }
}
