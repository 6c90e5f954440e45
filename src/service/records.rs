//! Versioned records.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::merges::merged_refusal;
use super::paging::time_key;
use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::record::{RawValue, check_fields};
use crate::domain::{AgencyCode, Record, RecordClassId, RecordId, SubjectId, Violations};
use crate::ledger::Outcome;
use crate::policy::{self, Agreements, Decision, Denial, Disclosed, Permit, Read};
use crate::store::{After, Expect, StoreError, Write};

/// The most records one ListRecords call considers while filling a page.
const MAX_SCAN: usize = 5000;

/// A record to create.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub subject: SubjectId,
    pub record_class: RecordClassId,
    pub fields: Vec<(String, RawValue)>,
}

/// The outcome of a dry-run access check.
#[derive(Debug, Clone)]
pub struct AccessCheck {
    /// The decision: its grounds, or why not.
    pub permit: Result<Permit, Denial>,
    /// The fields a read would disclose now.
    pub fields: Vec<String>,
}

/// What a seal applies to.
#[derive(Debug, Clone)]
pub enum SealTarget {
    /// One record.
    Record(RecordId),
    /// Every record the caller's agency holds about the subject.
    SubjectRecords(SubjectId),
}

/// A new version of a record.
#[derive(Debug, Clone)]
pub struct RecordChange {
    pub id: RecordId,
    pub etag: String,
    pub fields: Vec<(String, RawValue)>,
}

fn version_name(r: &Record) -> String {
    format!("{}@{}", r.id.resource_name(), r.version)
}

impl Services {
    /// Holds `record` in memory as its record's current version.
    fn hold(&self, record: &Record) {
        self.records.insert(record.id.clone(), record.clone());
    }

    /// Creates a record, controlled by the caller's agency.
    pub async fn create_record(
        &self,
        call: &Call,
        new: NewRecord,
    ) -> Result<Audited<Disclosed>, ServiceError> {
        call.note_subject(new.subject.resource_name());
        call.note_controller(call.caller.agency.as_str().to_owned());
        let class = self.record_class(&new.record_class).await?.ok_or_else(|| {
            Violations::one(
                "record.record_class",
                format!(
                    "{} is not in the catalogue",
                    new.record_class.resource_name()
                ),
            )
        })?;
        let fields = check_fields(&class, new.fields, "record.fields")?;
        // The subject is taken to exist, and the commit checks that it does;
        // a call whose subject is not found there is decided again on a
        // fresh read, which refuses it.
        if call.fresh() {
            match self.store.subject(&new.subject).await? {
                None => {
                    return Err(Violations::one(
                        "record.subject",
                        format!("{} does not exist", new.subject.resource_name()),
                    )
                    .into());
                }
                Some(s) if s.merged_into.is_some() => return Err(merged_refusal(&s.id)),
                Some(_) => {}
            }
        }
        call.rely_on(Expect::Subject(new.subject.clone()), !call.fresh());
        let id = RecordId::generate();
        let record = Record {
            etag: Record::compute_etag(&id, 1, &fields),
            id,
            subject: new.subject,
            record_class: new.record_class,
            controller: call.caller.agency.clone(),
            version: 1,
            fields,
            create_time: call.time,
            update_time: call.time,
            sealed: false,
        };
        let permit = policy::decide_write(&call.caller, &record).map_err(ServiceError::Denied)?;
        call.note_records(vec![version_name(&record)]);
        call.note_fields(record.field_names());
        let write = Write::InsertRecord {
            record: record.clone(),
            written_by: call.caller.principal.as_str().to_owned(),
        };
        let audited = self
            .commit(call, vec![write], permit.disclose(record))
            .await?;
        self.hold(audited.value().record());
        Ok(audited)
    }

    /// Writes a new version of a record, if the caller controls it and the
    /// etag is current.
    pub async fn update_record(
        &self,
        call: &Call,
        change: RecordChange,
    ) -> Result<Audited<Disclosed>, ServiceError> {
        call.note_records(vec![change.id.resource_name()]);
        let (current, _) = self.known_record(call, &change.id, None).await?;
        let permit = policy::decide_write(&call.caller, &current).map_err(ServiceError::Denied)?;
        let class = self
            .record_class(&current.record_class)
            .await?
            .ok_or_else(|| ServiceError::NotFound(current.record_class.resource_name()))?;
        let fields = check_fields(&class, change.fields, "record.fields")?;
        if change.etag != current.etag {
            return Err(ServiceError::StaleEtag(format!(
                "etag {:?} is not the current one: read the latest version and apply the change to it",
                change.etag
            )));
        }
        let version = current.version + 1;
        let next = Record {
            etag: Record::compute_etag(&current.id, version, &fields),
            version,
            fields,
            update_time: call.time.max(current.update_time),
            ..current
        };
        call.note_records(vec![version_name(&next)]);
        call.note_fields(next.field_names());
        let write = Write::UpdateRecord {
            record: next.clone(),
            expected_etag: change.etag,
            written_by: call.caller.principal.as_str().to_owned(),
        };
        let audited = self
            .commit(call, vec![write], permit.disclose(next))
            .await?;
        self.hold(audited.value().record());
        Ok(audited)
    }

    /// Reads a record version the caller may see.
    pub async fn get_record(
        &self,
        call: &Call,
        id: &RecordId,
        version: Option<i64>,
    ) -> Result<Audited<Disclosed>, ServiceError> {
        call.note_records(vec![match version {
            Some(v) => format!("{}@{v}", id.resource_name()),
            None => id.resource_name(),
        }]);
        let (record, agreements) = self.known_record(call, id, version).await?;
        let permit = self.decide_read(call, &agreements, &record)?;
        let disclosed = permit.disclose(record);
        call.note_fields(disclosed.record().field_names());
        let alert = self.break_glass_alert(call, &permit);
        self.commit(call, alert.into_iter().collect(), disclosed)
            .await
    }

    /// Seals a record (`Some`) or all the caller's agency's records about a
    /// subject, or removes such a seal: only the controller may.
    pub async fn set_seal(
        &self,
        call: &Call,
        target: SealTarget,
        reason: Option<String>,
    ) -> Result<Audited<Option<Disclosed>>, ServiceError> {
        let (subject, record) = match &target {
            SealTarget::Record(id) => {
                call.note_records(vec![id.resource_name()]);
                let (record, _) = self.known_record(call, id, None).await?;
                let permit =
                    policy::decide_write(&call.caller, &record).map_err(ServiceError::Denied)?;
                (record.subject.clone(), Some((record.id, permit)))
            }
            SealTarget::SubjectRecords(subject) => {
                call.note_subject(subject.resource_name());
                call.note_controller(call.caller.agency.as_str().to_owned());
                match self.store.subject(subject).await? {
                    None => return Err(ServiceError::NotFound(subject.resource_name())),
                    Some(s) if s.merged_into.is_some() => return Err(merged_refusal(subject)),
                    Some(_) => call.rely_on(Expect::Subject(subject.clone()), false),
                }
                (subject.clone(), None)
            }
        };
        let agency = call.caller.agency.clone();
        let (write, code) = match reason {
            Some(reason) => (
                Write::Seal {
                    agency,
                    subject,
                    record: record.as_ref().map(|(id, _)| id.clone()),
                    reason,
                    sealed_by: call.caller.principal.as_str().to_owned(),
                    time: call.time,
                },
                "ALREADY_SEALED",
            ),
            None => (
                Write::Unseal {
                    agency,
                    subject,
                    record: record.as_ref().map(|(id, _)| id.clone()),
                },
                "NOT_SEALED",
            ),
        };
        let receipt = match self.commit_receipt(call, vec![write]).await {
            Ok(receipt) => receipt,
            Err(StoreError::Conflict(message)) => {
                return Err(ServiceError::Precondition { code, message });
            }
            Err(e) => return Err(e.into()),
        };
        let changed = match record {
            Some((id, permit)) => {
                let changed = self.store.record(&id, None).await?;
                match &changed {
                    Some(r) => self.hold(r),
                    None => self.records.remove(&id),
                }
                changed.map(|r| permit.disclose(r))
            }
            None => None,
        };
        Ok(Audited::new(receipt, changed))
    }

    /// What decisions on reading `records` need: the agreements (and, in
    /// the cache, the consents) as they stand now — or nothing, if the
    /// caller controls them all.
    pub(super) async fn policies_for(
        &self,
        call: &Call,
        records: &[Record],
    ) -> Result<Arc<Agreements>, ServiceError> {
        if records
            .iter()
            .all(|r| policy::is_controller(&call.caller, &r.controller))
        {
            return Ok(Arc::new(Agreements::none()));
        }
        let held = if call.fresh() {
            None
        } else {
            self.policies.held()
        };
        let (agreements, versions, cached) = match held {
            Some((agreements, versions)) => (agreements, versions, true),
            None => {
                let (agreements, versions) = self.policies.refresh(self.store.as_ref()).await?;
                (agreements, versions, false)
            }
        };
        call.rely_on(Expect::Policy(versions), cached);
        Ok(agreements)
    }

    /// The decision on the call's caller reading `record` for the call's
    /// purpose. Nothing is noted for the ledger.
    pub(super) fn decide(
        &self,
        call: &Call,
        agreements: &Agreements,
        record: &Record,
    ) -> Result<Decision, ServiceError> {
        let consents = self.policies.consents_of(&record.subject);
        let break_glass = call.break_glass();
        let read = Read {
            caller: &call.caller,
            purpose: call.purpose()?,
            break_glass: break_glass.as_deref(),
            now: call.time,
            controller: &record.controller,
            record_class: &record.record_class,
            sealed: record.sealed,
        };
        policy::decide_read(agreements, &consents, &read)
            .map_err(|e| ServiceError::Policy(e.into()))
    }

    /// The record `id` (at `version`, else its latest) and the agreements
    /// deciding on it, if the caller may learn that it exists
    /// ([`policy::may_know_of`]); otherwise NOT_FOUND, worded and audited
    /// exactly as for an unknown id. Notes the record, its subject and
    /// controller for the ledger.
    pub(super) async fn known_record(
        &self,
        call: &Call,
        id: &RecordId,
        version: Option<i64>,
    ) -> Result<(Record, Arc<Agreements>), ServiceError> {
        let not_found = || {
            ServiceError::NotFound(match version {
                Some(v) => format!("version {v} of {}", id.resource_name()),
                None => id.resource_name(),
            })
        };
        let held = match version {
            None if !call.fresh() => self.records.get(id),
            _ => None,
        };
        let cached = held.is_some();
        let record = match held {
            Some(record) => record,
            None => {
                let read = self
                    .store
                    .record(id, version)
                    .await?
                    .ok_or_else(not_found)?;
                if version.is_none() {
                    self.hold(&read);
                }
                read
            }
        };
        call.rely_on(
            Expect::Record {
                id: record.id.clone(),
                subject: record.subject.clone(),
                current: version.is_none().then_some(record.version),
                sealed: record.sealed,
            },
            cached,
        );
        let agreements = self
            .policies_for(call, std::slice::from_ref(&record))
            .await?;
        if !policy::may_know_of(
            &agreements,
            &call.caller,
            &record.controller,
            &record.record_class,
        ) {
            return Err(not_found());
        }
        call.note_subject(record.subject.resource_name());
        call.note_controller(record.controller.as_str().to_owned());
        call.note_records(vec![version_name(&record)]);
        Ok((record, agreements))
    }

    /// Requires that the call's caller may read `record`: notes the grounds
    /// for the ledger; a refusal is an error.
    fn decide_read(
        &self,
        call: &Call,
        agreements: &Agreements,
        record: &Record,
    ) -> Result<Permit, ServiceError> {
        match self.decide(call, agreements, record)? {
            Decision::Permit(permit) => {
                call.note_permit(&permit);
                Ok(permit)
            }
            Decision::Deny(denial) => {
                call.note_denial(&denial);
                Err(ServiceError::Denied(denial))
            }
        }
    }

    /// The decision on reading a record, as a dry run: nothing is disclosed
    /// and no alert is raised. Audited as a check, naming the decision's
    /// grounds (and the code of a refusal).
    pub async fn check_access(
        &self,
        call: &Call,
        id: &RecordId,
    ) -> Result<Audited<AccessCheck>, ServiceError> {
        call.note_records(vec![id.resource_name()]);
        let (record, agreements) = self.known_record(call, id, None).await?;
        let decision = self.decide(call, &agreements, &record)?;
        let (code, message) = match &decision {
            Decision::Permit(permit) => {
                // A dry run is not an emergency access: no reason recorded.
                call.note_permit(&permit.dry_run());
                (String::new(), String::new())
            }
            Decision::Deny(denial) => {
                call.note_denial(denial);
                (
                    denial.code.to_owned(),
                    format!("dry run: {}", denial.message),
                )
            }
        };
        let check = match decision {
            Decision::Permit(permit) => AccessCheck {
                fields: permit.disclose(record).record().field_names(),
                permit: Ok(permit),
            },
            Decision::Deny(denial) => AccessCheck {
                fields: Vec::new(),
                permit: Err(denial),
            },
        };
        let receipt = self
            .store
            .commit(vec![], call.draft(Outcome::Permitted, &code, &message))
            .await?;
        Ok(Audited::new(receipt, check))
    }

    /// Lists the latest versions of the subject's records the caller may
    /// see, newest first.
    pub async fn list_records(
        &self,
        call: &Call,
        subject: &SubjectId,
        req: &PageRequest,
    ) -> Result<Audited<Page<Disclosed>>, ServiceError> {
        call.note_subject(subject.resource_name());
        let listing = format!(
            "ListRecords\n{}\n{}",
            subject.resource_name(),
            call.purpose().map(|p| p.code()).unwrap_or_default()
        );
        let paging = self.tokens.paging(call, &listing, req)?;
        let size = usize::try_from(paging.size()).unwrap_or(usize::MAX);
        let after = paging.after_time()?;
        // A merged subject's records are the survivor's.
        let subject = &self.resolve_subject(call, subject).await?.id;
        let ReadableRecords {
            mut items,
            controllers,
            resume,
            exhausted,
        } = self
            .readable_records(call, subject, after, size, paging.size() + 1)
            .await?;
        let next_token = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|last| {
                    paging.token(&time_key(
                        last.record().update_time,
                        last.record().id.as_str(),
                    ))
                })
                .unwrap_or_default()
        } else if exhausted {
            String::new()
        } else {
            resume.map(|key| paging.token(&key)).unwrap_or_default()
        };
        note_disclosed(call, &items, &controllers);
        self.commit(call, vec![], Page { items, next_token }).await
    }
}

/// What a scan of a subject's records found the caller may read.
pub(super) struct ReadableRecords {
    /// Disclosed, newest first: at most one more than asked for (which
    /// says there is more, and is not noted as disclosed).
    pub items: Vec<Disclosed>,
    /// The controllers of the records disclosed.
    pub controllers: BTreeSet<AgencyCode>,
    /// The position of the last record considered.
    pub resume: Option<String>,
    /// Whether every record after the start was considered.
    pub exhausted: bool,
}

impl Services {
    /// The subject's records after `after` that the caller may read for
    /// its purpose, whoever controls them, newest first, each minimised as
    /// GetRecord would: scanning in chunks of `chunk` goes on until
    /// `disclose` records (and one more) are found, every record is
    /// considered, or [`MAX_SCAN`] were. The grounds of the first
    /// `disclose` are noted in the call's entry.
    pub(super) async fn readable_records(
        &self,
        call: &Call,
        subject: &SubjectId,
        mut after: After<(i64, String)>,
        disclose: usize,
        chunk: u32,
    ) -> Result<ReadableRecords, ServiceError> {
        let mut found = ReadableRecords {
            items: Vec::with_capacity(disclose.min(1000) + 1),
            controllers: BTreeSet::new(),
            resume: None,
            exhausted: false,
        };
        let mut considered = 0;
        'scan: while found.items.len() <= disclose {
            if considered >= MAX_SCAN {
                break;
            }
            let candidates = self
                .store
                .records_of_subject(subject, after.clone(), chunk)
                .await?;
            found.exhausted = candidates.len() < usize::try_from(chunk).unwrap_or(usize::MAX);
            let agreements = self.policies_for(call, &candidates).await?;
            for record in candidates {
                considered += 1;
                found.resume = Some(time_key(record.update_time, record.id.as_str()));
                after = After::Key((
                    record.update_time.timestamp_micros(),
                    record.id.as_str().to_owned(),
                ));
                if let Decision::Permit(permit) = self.decide(call, &agreements, &record)? {
                    if found.items.len() == disclose {
                        // The first record beyond: there is more.
                        found.items.push(permit.disclose(record));
                        break 'scan;
                    }
                    call.note_permit(&permit);
                    found.controllers.insert(record.controller.clone());
                    found.items.push(permit.disclose(record));
                }
            }
            if found.exhausted {
                break;
            }
        }
        Ok(found)
    }
}

/// Notes in the call's entry the records disclosed (at their versions),
/// their fields, and the controller when there is one other than the
/// caller, so that its auditors see the disclosure.
pub(super) fn note_disclosed(call: &Call, items: &[Disclosed], controllers: &BTreeSet<AgencyCode>) {
    let mut fields: Vec<String> = items
        .iter()
        .flat_map(|d| d.record().field_names())
        .collect();
    fields.sort();
    fields.dedup();
    call.note_records(items.iter().map(|d| version_name(d.record())).collect());
    call.note_fields(fields);
    let other: Vec<_> = controllers
        .iter()
        .filter(|c| **c != call.caller.agency)
        .collect();
    let controller = match other.as_slice() {
        [one] => (*one).clone(),
        _ => call.caller.agency.clone(),
    };
    call.note_controller(controller.as_str().to_owned());
}
