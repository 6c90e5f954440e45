//! The ledger: entries, reports, checkpoints, proofs, exports and alerts across the proto boundary.

use super::{
    enums, instant, page_request, pb, purpose, purpose_at, purpose_out, subject_name, timestamp,
};
use crate::domain::{AgencyCode, Alert, AlertId, AlertKind, Purpose, SubjectId, Violations};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::{Entry, Outcome};
use crate::service::{ConsistencyProof, EntryRef, InclusionProof};
use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// ListEntries input.
pub fn list_entries(
    req: pb::ListEntriesRequest,
) -> Result<
    (
        Purpose,
        crate::ledger::EntryFilter,
        crate::service::PageRequest,
    ),
    Violations,
> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let mut filter = crate::ledger::EntryFilter::default();
    if !req.subject.is_empty() {
        filter.subject = subject_name(&req.subject, "subject", &mut v).map(|s| s.resource_name());
    }
    if !req.agency.is_empty() {
        filter.agency = v
            .check("agency", AgencyCode::parse_name(&req.agency))
            .map(|a| a.as_str().to_owned());
    }
    if !req.principal.is_empty() {
        filter.principal = v
            .check(
                "principal",
                crate::domain::PrincipalId::parse(&req.principal),
            )
            .map(|p| p.as_str().to_owned());
    }
    if req.entry_purpose != 0 {
        filter.purpose = purpose_at(req.entry_purpose, "entry_purpose", &mut v);
    }
    filter.outcome = match v.check("outcome", enums::optional(req.outcome)).flatten() {
        None | Some(pb::Outcome::Unspecified) => None,
        Some(pb::Outcome::Permitted) => Some(Outcome::Permitted),
        Some(pb::Outcome::Denied) => Some(Outcome::Denied),
        Some(pb::Outcome::Invalid) => Some(Outcome::Invalid),
        Some(pb::Outcome::Failed) => Some(Outcome::Failed),
    };

    filter.break_glass_only = req.break_glass_only;
    if req.unattributed_only {
        if req.agency.is_empty() {
            // No agency code is empty: this asks for unattributed entries.
            filter.agency = Some(String::new());
        } else {
            v.add("agency", "cannot be combined with unattributed_only");
        }
    }
    if !req.client_certificate.is_empty() {
        filter.client_certificate = v
            .check(
                "client_certificate",
                crate::domain::credential::CertificateMatch::certificate(&req.client_certificate),
            )
            .map(|m| m.value());
    }
    if !req.trace_id.is_empty() {
        if req.trace_id.len() == 32
            && req
                .trace_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            filter.trace_id = Some(req.trace_id.clone());
        } else {
            v.add(
                "trace_id",
                "must be 32 lowercase hex digits (a W3C trace id)",
            );
        }
    }
    (filter.start, filter.end) = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((purpose?, filter, page)))
}

/// A `[start, end)` time range; either end may be open.
pub type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A `[start, end)` time range of a request; either end may be open.
pub(super) fn time_range(
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
    v: &mut Violations,
) -> TimeRange {
    let mut at = |field: &str, t: Option<&Timestamp>| {
        t.and_then(|t| {
            v.check(
                field,
                instant(t).ok_or_else(|| "is not a valid timestamp".to_owned()),
            )
        })
    };
    let (start, end) = (at("start_time", start), at("end_time", end));
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.add("end_time", "must be after start_time");
    }
    (start, end)
}

/// GetSubjectAccessReport input.
pub fn subject_access_report(
    req: pb::GetSubjectAccessReportRequest,
) -> Result<(Purpose, SubjectId, TimeRange), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let subject = subject_name(&req.subject, "subject", &mut v);
    let range = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    v.into_result(|| Some((purpose?, subject?, range)))
}

fn outcome_out(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Permitted => pb::Outcome::Permitted,
        Outcome::Denied => pb::Outcome::Denied,
        Outcome::Invalid => pb::Outcome::Invalid,
        Outcome::Failed => pb::Outcome::Failed,
    }
}

/// The proto form of a subject access report.
pub fn access_report_out(r: crate::service::AccessReport) -> pb::GetSubjectAccessReportResponse {
    pb::GetSubjectAccessReportResponse {
        subject: r.subject.resource_name(),
        generate_time: Some(timestamp(r.generate_time)),
        accesses: r
            .accesses
            .into_iter()
            .map(|a| pb::SubjectAccess {
                time: Some(timestamp(a.time)),
                agency: agency_ref(&a.agency),
                principal: a.principal,
                roles: a.roles,
                activity: a.activity,
                purpose: purpose_out(a.purpose) as i32,
                records: a.records,
                fields: a.fields,
                outcome: outcome_out(a.outcome) as i32,
                reason: a.reason,
                entry_index: a.entry_index,
                agreements: a.grounds.agreements,
                lawful_bases: a.grounds.lawful_bases,
                consent: a.grounds.consent,
                break_glass_reason: a.grounds.break_glass,
            })
            .collect(),
        truncated: r.truncated,
    }
}

fn agency_ref(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!("agencies/{code}")
    }
}

/// The proto form of a ledger entry.
pub fn entry_out(e: Entry) -> pb::LedgerEntry {
    let leaf_hash = e.leaf_hash().to_vec();
    let d = e.draft;
    pb::LedgerEntry {
        index: e.index,
        id: d.id,
        time: Some(timestamp(d.time)),
        request_id: d.request_id,
        agency: agency_ref(&d.agency),
        principal: d.principal,
        roles: d.roles,
        action: d.action,
        purpose: purpose_out(d.purpose) as i32,
        subject: d.subject,
        records: d.records,
        fields: d.fields,
        outcome: outcome_out(d.outcome) as i32,
        reason_code: d.reason_code,
        reason: d.reason,
        controller: agency_ref(&d.controller),
        leaf_hash,
        agreements: d.grounds.agreements,
        lawful_bases: d.grounds.lawful_bases,
        consent: d.grounds.consent,
        break_glass_reason: d.grounds.break_glass,
        client_certificate: d.client_certificate,
        trace_id: d.trace_id,
    }
}

/// A non-negative size or index from the wire, `field` naming it.
fn position(value: i64, field: &str, v: &mut Violations) -> Option<u64> {
    let p = u64::try_from(value).ok();
    if p.is_none() {
        v.add(field, "must not be negative");
    }
    p
}

/// The inputs of GetCheckpoint.
pub fn checkpoint_request(req: pb::GetCheckpointRequest) -> Result<(Purpose, bool), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    v.into_result(|| Some((purpose?, req.refresh)))
}

/// The inputs of GetInclusionProof.
pub fn inclusion_request(
    req: pb::GetInclusionProofRequest,
) -> Result<(Purpose, EntryRef, Option<u64>), Violations> {
    use pb::get_inclusion_proof_request::Entry as Which;
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let target = match req.entry {
        Some(Which::LeafIndex(i)) => position(i, "leaf_index", &mut v).map(EntryRef::Index),
        Some(Which::EntryId(id)) if !id.is_empty() && id.len() <= 64 => Some(EntryRef::Id(id)),
        Some(Which::EntryId(_)) => {
            v.add("entry_id", "must be an entry id (1 to 64 characters)");
            None
        }
        None => {
            v.add("entry", "name the entry by leaf_index or entry_id");
            None
        }
    };
    let size = position(req.tree_size, "tree_size", &mut v);
    v.into_result(|| Some((purpose?, target?, size.filter(|s| *s > 0))))
}

/// The inputs of GetConsistencyProof.
pub fn consistency_request(
    req: pb::GetConsistencyProofRequest,
) -> Result<(Purpose, u64, Option<u64>), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let first = position(req.first_size, "first_size", &mut v);
    if first == Some(0) {
        v.add(
            "first_size",
            "must be at least 1: a proof from the empty tree proves nothing",
        );
    }
    let second = position(req.second_size, "second_size", &mut v);
    v.into_result(|| Some((purpose?, first?, second.filter(|s| *s > 0))))
}

/// The proto form of a size or index (sizes beyond `i64` cannot be stored).
fn wire_position(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The proto form of a signed checkpoint.
pub fn checkpoint_out(c: SignedCheckpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        origin: c.origin().to_owned(),
        size: wire_position(c.head.size),
        root_hash: c.head.root.to_vec(),
        sign_time: Some(timestamp(c.time)),
        note: c.note,
        signed_by: c.signed_by,
    }
}

/// The proto form of an inclusion proof.
pub fn inclusion_out(p: InclusionProof) -> pb::GetInclusionProofResponse {
    pb::GetInclusionProofResponse {
        entry: Some(entry_out(p.entry)),
        tree_size: wire_position(p.tree_size),
        hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
        checkpoint: p.checkpoint.map(checkpoint_out),
    }
}

/// The proto form of a consistency proof.
pub fn consistency_out(p: ConsistencyProof) -> pb::GetConsistencyProofResponse {
    pb::GetConsistencyProofResponse {
        first_size: wire_position(p.first_size),
        second_size: wire_position(p.second_size),
        hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
        first_checkpoint: p.first_checkpoint.map(checkpoint_out),
        second_checkpoint: p.second_checkpoint.map(checkpoint_out),
    }
}

/// The inputs of ExportEntries.
pub fn export_request(req: pb::ExportEntriesRequest) -> Result<(Purpose, u64), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let start = position(req.start_index, "start_index", &mut v);
    v.into_result(|| Some((purpose?, start?)))
}

/// The export item of an entry and its proof.
pub fn exported_entry_out(
    entry: Entry,
    proof: Vec<crate::ledger::Hash>,
) -> pb::ExportEntriesResponse {
    pb::ExportEntriesResponse {
        item: Some(pb::export_entries_response::Item::Entry(
            pb::ExportedEntry {
                entry: Some(entry_out(entry)),
                inclusion_proof: proof.iter().map(|h| h.to_vec()).collect(),
            },
        )),
    }
}

/// The inputs of ListAlerts.
pub fn list_alerts_request(
    req: pb::ListAlertsRequest,
) -> Result<(Purpose, bool, crate::service::PageRequest), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((purpose?, req.unacknowledged_only, page)))
}

/// The inputs of AcknowledgeAlert.
pub fn acknowledge_request(
    req: pb::AcknowledgeAlertRequest,
) -> Result<(Purpose, AlertId, String), Violations> {
    let mut v = Violations::new();
    let purpose = purpose(req.purpose, &mut v);
    let id = v.check("name", AlertId::parse_name(&req.name));
    let note = v
        .check("note", crate::domain::check_text(&req.note, 0, 2000))
        .map(|()| req.note.trim().to_owned());
    v.into_result(|| Some((purpose?, id?, note?)))
}

/// The proto form of an alert.
pub fn alert_out(a: Alert) -> pb::Alert {
    let ack = a.acknowledgement;
    pb::Alert {
        name: a.id.resource_name(),
        kind: match a.kind {
            AlertKind::RepeatedRefusals => pb::AlertKind::RepeatedRefusals,
            AlertKind::BreakGlass => pb::AlertKind::BreakGlass,
            AlertKind::UnattributedRefusals => pb::AlertKind::UnattributedRefusals,
            AlertKind::ReviewOverdue => pb::AlertKind::ReviewOverdue,
        } as i32,
        recipient: a.recipient.resource_name(),
        agency: agency_ref(&a.agency),
        principal: a.principal,
        subject: a.subject,
        summary: a.summary,
        entry_index: a.entry_index,
        raise_time: Some(timestamp(a.raise_time)),
        acknowledged: ack.is_some(),
        acknowledged_by: ack
            .as_ref()
            .map(|k| k.principal.clone())
            .unwrap_or_default(),
        acknowledge_time: ack.as_ref().map(|k| timestamp(k.time)),
        acknowledge_note: ack.map(|k| k.note).unwrap_or_default(),
    }
}
