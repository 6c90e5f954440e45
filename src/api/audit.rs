//! `accord.v1.AuditService`.

use std::pin::Pin;

use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb::audit_service_server::AuditService;
use super::{Api, convert, input, method, pb};
use crate::service::{Access, EntryExport};

/// The stream of an export.
type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportEntriesResponse, Status>> + Send>>;

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
    Box::pin(ReceiverStream::new(rx))
}

/// The AuditService adapter.
#[derive(Debug, Clone)]
pub struct AuditApi(pub Api);

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[tracing::instrument(skip_all)]
    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "ListEntries"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let (purpose, filter, page) = input(convert::list_entries(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.list_entries(&call, filter, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListEntriesResponse {
            entries: p.items.into_iter().map(convert::entry_out).collect(),
            next_page_token: p.next_token,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_subject_access_report(
        &self,
        request: Request<pb::GetSubjectAccessReportRequest>,
    ) -> Result<Response<pb::GetSubjectAccessReportResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "GetSubjectAccessReport"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, subject, (start, end)) =
                input(convert::subject_access_report(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services
                .subject_access_report(&call, subject, start, end)
                .await
        }
        .await;
        api.finish(&call, result, convert::access_report_out).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "GetCheckpoint"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, refresh) = input(convert::checkpoint_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.get_checkpoint(&call, refresh).await
        }
        .await;
        let verifier_key = api.services.verifier_key().to_owned();
        api.finish(&call, result, |c| pb::GetCheckpointResponse {
            checkpoint: Some(convert::checkpoint_out(c)),
            verifier_key,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::GetInclusionProofResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "GetInclusionProof"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, target, size) = input(convert::inclusion_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.inclusion_proof(&call, target, size).await
        }
        .await;
        api.finish(&call, result, convert::inclusion_out).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::GetConsistencyProofResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "GetConsistencyProof"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, first, second) =
                input(convert::consistency_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.consistency_proof(&call, first, second).await
        }
        .await;
        api.finish(&call, result, convert::consistency_out).await
    }

    type ExportEntriesStream = ExportStream;

    #[tracing::instrument(skip_all)]
    async fn export_entries(
        &self,
        request: Request<pb::ExportEntriesRequest>,
    ) -> Result<Response<Self::ExportEntriesStream>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "ExportEntries"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, start) = input(convert::export_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.export_entries(&call, start).await
        }
        .await;
        api.finish(&call, result, export_stream).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "ListAlerts"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let (purpose, open, page) = input(convert::list_alerts_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.list_alerts(&call, open, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListAlertsResponse {
            alerts: p.items.into_iter().map(convert::alert_out).collect(),
            next_page_token: p.next_token,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "AcknowledgeAlert"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let (purpose, id, note) = input(convert::acknowledge_request(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.acknowledge_alert(&call, id, note).await
        }
        .await;
        api.finish(&call, result, |a| pb::AcknowledgeAlertResponse {
            alert: Some(convert::alert_out(a)),
        })
        .await
    }
}
