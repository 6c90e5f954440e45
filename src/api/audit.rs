//! `accord.v1.AuditService`.

use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::operation::{ServerStream, declared, operation, serve};
use super::pb::audit_service_server::AuditService;
use super::{Api, convert, pb};
use crate::domain::{Alert, AlertId, SubjectId};
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::ledger::{Entry, EntryFilter};
use crate::service::{
    AccessReport, ConsistencyProof, EntryExport, EntryRef, InclusionProof, Page, PageRequest,
};

/// The stream of an export.
type ExportStream = ServerStream<pb::ExportEntriesResponse>;

/// How many export items may wait for a slow reader.
const EXPORT_BUFFER: usize = 64;

/// Streams `export`: its checkpoint, then its entries page by page, as the
/// client reads them. A failure mid-way ends the stream with UNAVAILABLE.
fn export_stream(mut export: EntryExport) -> ExportStream {
    let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
    tokio::spawn(async move {
        let first = pb::ExportEntriesResponse {
            item: Some(pb::export_entries_response::Item::Checkpoint(
                convert::checkpoint_out(export.checkpoint().clone()),
            )),
        };
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            match export.next_page().await {
                Ok(page) if page.is_empty() => return,
                Ok(page) => {
                    for (entry, proof) in page {
                        if tx
                            .send(Ok(convert::exported_entry_out(entry, proof)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "an export failed part way");
                    let _ = tx
                        .send(Err(Status::unavailable(
                            "the export could not be completed; start again from the last index received",
                        )))
                        .await;
                    return;
                }
            }
        }
    });
    ServerStream(Box::pin(ReceiverStream::new(rx)))
}

/// The AuditService adapter.
#[derive(Debug, Clone)]
pub struct AuditApi(pub Api);

serve!(AuditService, AuditApi {
    list_entries => ListEntries,
    get_subject_access_report => GetSubjectAccessReport,
    get_checkpoint => GetCheckpoint,
    get_inclusion_proof => GetInclusionProof,
    get_consistency_proof => GetConsistencyProof,
    export_entries => ExportEntries,
    list_alerts => ListAlerts,
    acknowledge_alert => AcknowledgeAlert,
}
    type ExportEntriesStream = ExportStream;
);

operation! {
    ListEntries: "AuditService"/"ListEntries", MemberOrOperator,
    pb::ListEntriesRequest => pb::ListEntriesResponse,
    input(request, call) -> (EntryFilter, PageRequest) {
        let checked = convert::list_entries(request);
        declared(call, checked.map(|(purpose, filter, page)| (purpose, (filter, page))))
    },
    run(services, call, (filter, page)) -> Page<Entry> {
        services.list_entries(call, filter, &page).await
    },
    render(page, _) {
        pb::ListEntriesResponse {
            entries: page.items.into_iter().map(convert::entry_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    GetSubjectAccessReport: "AuditService"/"GetSubjectAccessReport", Member,
    pb::GetSubjectAccessReportRequest => pb::GetSubjectAccessReportResponse,
    input(request, call) -> (SubjectId, convert::TimeRange) {
        let checked = convert::subject_access_report(request);
        declared(call, checked.map(|(purpose, subject, range)| (purpose, (subject, range))))
    },
    run(services, call, (subject, (start, end))) -> AccessReport {
        services.subject_access_report(call, subject, start, end).await
    },
    render(report, _) { convert::access_report_out(report) },
}

operation! {
    GetCheckpoint: "AuditService"/"GetCheckpoint", Member,
    pb::GetCheckpointRequest => pb::GetCheckpointResponse,
    input(request, call) -> bool { declared(call, convert::checkpoint_request(request)) },
    run(services, call, refresh) -> (SignedCheckpoint, Vec<String>) {
        let keys = services.verifier_keys();
        Ok(services.get_checkpoint(call, refresh).await?.map(|c| (c, keys)))
    },
    render((checkpoint, verifier_keys), _) {
        pb::GetCheckpointResponse {
            checkpoint: Some(convert::checkpoint_out(checkpoint)),
            verifier_key: verifier_keys.first().cloned().unwrap_or_default(),
            verifier_keys,
        }
    },
}

operation! {
    GetInclusionProof: "AuditService"/"GetInclusionProof", Member,
    pb::GetInclusionProofRequest => pb::GetInclusionProofResponse,
    input(request, call) -> (EntryRef, Option<u64>) {
        let checked = convert::inclusion_request(request);
        declared(call, checked.map(|(purpose, target, size)| (purpose, (target, size))))
    },
    run(services, call, (target, size)) -> InclusionProof {
        services.inclusion_proof(call, target, size).await
    },
    render(proof, _) { convert::inclusion_out(proof) },
}

operation! {
    GetConsistencyProof: "AuditService"/"GetConsistencyProof", Member,
    pb::GetConsistencyProofRequest => pb::GetConsistencyProofResponse,
    input(request, call) -> (u64, Option<u64>) {
        let checked = convert::consistency_request(request);
        declared(call, checked.map(|(purpose, first, second)| (purpose, (first, second))))
    },
    run(services, call, (first, second)) -> ConsistencyProof {
        services.consistency_proof(call, first, second).await
    },
    render(proof, _) { convert::consistency_out(proof) },
}

operation! {
    ExportEntries: "AuditService"/"ExportEntries", Member,
    pb::ExportEntriesRequest => ExportStream,
    input(request, call) -> u64 { declared(call, convert::export_request(request)) },
    run(services, call, start) -> EntryExport { services.export_entries(call, start).await },
    render(export, _) { export_stream(export) },
}

operation! {
    ListAlerts: "AuditService"/"ListAlerts", MemberOrOperator,
    pb::ListAlertsRequest => pb::ListAlertsResponse,
    input(request, call) -> (bool, PageRequest) {
        let checked = convert::list_alerts_request(request);
        declared(call, checked.map(|(purpose, open, page)| (purpose, (open, page))))
    },
    run(services, call, (open, page)) -> Page<Alert> {
        services.list_alerts(call, open, &page).await
    },
    render(page, _) {
        pb::ListAlertsResponse {
            alerts: page.items.into_iter().map(convert::alert_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    AcknowledgeAlert: "AuditService"/"AcknowledgeAlert", MemberOrOperator,
    pb::AcknowledgeAlertRequest => pb::AcknowledgeAlertResponse,
    input(request, call) -> (AlertId, String) {
        let checked = convert::acknowledge_request(request);
        declared(call, checked.map(|(purpose, id, note)| (purpose, (id, note))))
    },
    run(services, call, (id, note)) -> Alert { services.acknowledge_alert(call, id, note).await },
    render(alert, _) { pb::AcknowledgeAlertResponse { alert: Some(convert::alert_out(alert)) } },
}
