//! `accord.v1.AuditService`.

use tonic::{Request, Response, Status};

use super::pb::audit_service_server::AuditService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The AuditService adapter.
#[derive(Debug, Clone)]
pub struct AuditApi(pub Api);

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[tracing::instrument(skip_all, err)]
    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AuditService", "ListEntries"),
                Access::Member,
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

    #[tracing::instrument(skip_all, err)]
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

    #[tracing::instrument(skip_all, err)]
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

    #[tracing::instrument(skip_all, err)]
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

    #[tracing::instrument(skip_all, err)]
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
}
