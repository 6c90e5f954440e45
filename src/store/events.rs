//! Events at the storage boundary: the outbox. A committed job's writes
//! say which events its change causes ([`of`]); they become rows of the
//! batch's append, in the transaction of the change (see
//! [`super::ledger::Appended`]), and are read back in order.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{agency_code, code, limit, micros, time};
use super::{StoreError, Write};
use crate::domain::agreement::{Agreement, AgreementId, AgreementStatus};
use crate::domain::consent::ConsentKind;
use crate::domain::event::{Event, EventKind, EventPosition};
use crate::domain::{AgencyCode, RecordClassId, RecordId, SubjectId};

/// An event as the batch's append reads it.
#[derive(Debug, serde::Serialize)]
pub(super) struct EventRow {
    entry_idx: i64,
    ord: i64,
    kind: &'static str,
    resource: String,
    version: i64,
    time: i64,
    controller: String,
    subject: String,
    record_class: String,
    agreement: String,
    recipient: String,
}

/// What one write causes, before it has a place in the order.
struct Change {
    kind: EventKind,
    resource: String,
    version: i64,
    controller: String,
    subject: Option<String>,
    record_class: Option<String>,
    agreement: Option<String>,
    recipient: Option<String>,
}

impl Change {
    fn new(kind: EventKind, resource: String, controller: &AgencyCode) -> Self {
        Self {
            kind,
            resource,
            version: 0,
            controller: controller.as_str().to_owned(),
            subject: None,
            record_class: None,
            agreement: None,
            recipient: None,
        }
    }

    fn about(mut self, subject: &SubjectId) -> Self {
        self.subject = Some(subject.as_str().to_owned());
        self
    }
}

/// The event a seal or unseal causes: of the record when it names one,
/// else of the subject (all of the agency's records about it).
fn seal_change(
    kind: EventKind,
    agency: &AgencyCode,
    subject: &SubjectId,
    record: Option<&RecordId>,
) -> Change {
    let resource = record.map_or_else(|| subject.resource_name(), RecordId::resource_name);
    Change::new(kind, resource, agency).about(subject)
}

/// The event an agreement's lifecycle step causes, if any: becoming active
/// (for the first time, or again after a suspension) or suspended.
fn agreement_change(agreement: &Agreement) -> Option<Change> {
    let kind = match (agreement.status, &agreement.suspension) {
        (AgreementStatus::Active, None) => EventKind::AgreementActivated,
        (AgreementStatus::Active, Some(_)) => EventKind::AgreementReinstated,
        (AgreementStatus::Suspended, _) => EventKind::AgreementSuspended,
        _ => return None,
    };
    let mut change = Change::new(kind, agreement.resource_name(), &agreement.terms.provider);
    change.version = agreement.version;
    change.agreement = Some(agreement.id.as_str().to_owned());
    Some(change)
}

/// The change one write causes, if it causes an event.
fn change_of(write: &Write) -> Option<Change> {
    Some(match write {
        Write::InsertRecord { record, .. } | Write::UpdateRecord { record, .. } => {
            let kind = match write {
                Write::InsertRecord { .. } => EventKind::RecordCreated,
                _ => EventKind::RecordUpdated,
            };
            let mut change = Change::new(kind, record.id.resource_name(), &record.controller)
                .about(&record.subject);
            change.version = record.version;
            change.record_class = Some(record.record_class.as_str().to_owned());
            change
        }
        Write::Seal {
            agency,
            subject,
            record,
            ..
        } => seal_change(EventKind::RecordSealed, agency, subject, record.as_ref()),
        Write::Unseal {
            agency,
            subject,
            record,
        } => seal_change(EventKind::RecordUnsealed, agency, subject, record.as_ref()),
        Write::LinkIdentifier {
            subject, linked_by, ..
        } => Change::new(
            EventKind::IdentifierLinked,
            subject.resource_name(),
            linked_by,
        )
        .about(subject),
        Write::UnlinkIdentifier {
            subject,
            unlinked_by,
            ..
        } => Change::new(
            EventKind::IdentifierUnlinked,
            subject.resource_name(),
            unlinked_by,
        )
        .about(subject),
        Write::InsertConsent(consent) | Write::WithdrawConsent { consent, .. } => {
            let withdrawn = matches!(write, Write::WithdrawConsent { .. });
            let kind = match (consent.kind, withdrawn) {
                (ConsentKind::Consent, false) => EventKind::ConsentRecorded,
                (ConsentKind::Consent, true) => EventKind::ConsentWithdrawn,
                (ConsentKind::Objection, false) => EventKind::ObjectionRecorded,
                (ConsentKind::Objection, true) => EventKind::ObjectionWithdrawn,
            };
            Change::new(kind, consent.id.resource_name(), &consent.recorded_by)
                .about(&consent.subject)
        }
        Write::UpdateAgreement { agreement, .. } => agreement_change(agreement)?,
        Write::NoteAgreementExpired(agreement) => {
            let mut change = Change::new(
                EventKind::AgreementExpired,
                agreement.resource_name(),
                &agreement.terms.provider,
            );
            change.version = agreement.version;
            change.agreement = Some(agreement.id.as_str().to_owned());
            change
        }
        Write::InsertReview(review) => {
            let mut change = Change::new(
                EventKind::ReviewRequired,
                review.id.resource_name(),
                &review.controller,
            );
            change.subject = review.subject.as_ref().map(|s| s.as_str().to_owned());
            change.recipient = Some(review.recipient.as_str().to_owned());
            change
        }
        Write::InsertAgency(_)
        | Write::UpdateAgency { .. }
        | Write::InsertRecordClass(_)
        | Write::CheckBlockPopulation { .. }
        | Write::InsertSubject(_)
        | Write::InsertAgreement(_)
        | Write::InsertCertificateIdentity(_)
        | Write::RevokeCertificateIdentity { .. }
        | Write::InsertTokenIssuer(_)
        | Write::RemoveTokenIssuer(_)
        | Write::SetMeta { .. }
        | Write::RaiseAlert(_)
        | Write::AcknowledgeAlert { .. }
        | Write::InsertSubscription(_)
        | Write::DeleteSubscription { .. }
        | Write::AcknowledgeReview { .. }
        | Write::MarkReviewOverdue(_)
        | Write::InsertPossibleDuplicate(_)
        | Write::ResolvePossibleDuplicate { .. }
        | Write::MergeSubjects(_)
        | Write::UnmergeSubjects(_) => return None,
    })
}

/// The changes one write causes: a merge or an unmerge one about each of
/// its two subjects (so that agencies following either hear of it); any
/// other write at most one.
fn changes_of(write: &Write) -> Vec<Change> {
    let (kind, merge, act) = match write {
        Write::MergeSubjects(m) => (EventKind::SubjectMerged, m, &m.act),
        Write::UnmergeSubjects(m) => match &m.unmerge {
            Some(u) => (EventKind::SubjectUnmerged, m, &u.act),
            None => return vec![],
        },
        other => return change_of(other).into_iter().collect(),
    };
    [&merge.survivor, &merge.merged]
        .into_iter()
        .map(|s| Change::new(kind, s.resource_name(), &act.agency).about(s))
        .collect()
}

/// The events that `writes`, committed with the entry of ledger index
/// `index` and time `at`, cause: one per write that changes something an
/// agency may be told about, in the writes' order.
pub(super) fn of(writes: &[Write], index: i64, at: DateTime<Utc>) -> Vec<EventRow> {
    writes
        .iter()
        .flat_map(changes_of)
        .zip(0..)
        .map(|(c, ord)| EventRow {
            entry_idx: index,
            ord,
            kind: c.kind.code(),
            resource: c.resource,
            version: c.version,
            time: micros(at),
            controller: c.controller,
            subject: c.subject.unwrap_or_default(),
            record_class: c.record_class.unwrap_or_default(),
            agreement: c.agreement.unwrap_or_default(),
            recipient: c.recipient.unwrap_or_default(),
        })
        .collect()
}

/// A stored optional text read back: empty is none.
fn optional(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn event_from(row: &AnyRow) -> Result<Event, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Event {
        position: EventPosition {
            entry: row.try_get("entry_idx")?,
            ord: row.try_get("ord")?,
        },
        kind: code(EventKind::from_code(&kind), "event kind", &kind)?,
        resource: row.try_get("resource")?,
        version: row.try_get("version")?,
        time: time(row.try_get("time")?)?,
        controller: agency_code(&row.try_get::<String, _>("controller")?)?,
        subject: optional(row.try_get("subject")?).map(SubjectId::from_stored),
        record_class: optional(row.try_get("record_class")?)
            .map(|c| {
                RecordClassId::parse(&c)
                    .map_err(|_| StoreError::Corrupt(format!("record class {c:?}")))
            })
            .transpose()?,
        agreement: optional(row.try_get("agreement")?).map(AgreementId::from_stored),
        recipient: optional(row.try_get("recipient")?)
            .map(|a| agency_code(&a))
            .transpose()?,
    })
}

/// Events in order after `after`, at most `n`.
pub(super) async fn events(
    db: &AnyPool,
    after: EventPosition,
    n: u32,
) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM events WHERE entry_idx > $1 OR (entry_idx = $1 AND ord > $2) \
         ORDER BY entry_idx, ord LIMIT $3",
    )
    .bind(after.entry)
    .bind(after.ord)
    .bind(limit(n))
    .fetch_all(db)
    .await?;
    rows.iter().map(event_from).collect()
}
