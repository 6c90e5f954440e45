//! `accord.v1.AgreementService`.

use tonic::{Request, Response, Status};

use super::pb::agreement_service_server::AgreementService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The AgreementService adapter.
#[derive(Debug, Clone)]
pub struct AgreementApi(pub Api);

#[tonic::async_trait]
impl AgreementService for AgreementApi {
    #[tracing::instrument(skip_all)]
    async fn create_agreement(
        &self,
        request: Request<pb::CreateAgreementRequest>,
    ) -> Result<Response<pb::CreateAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "CreateAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let terms = input(convert::create_agreement(request.into_inner()))?;
            api.services.create_agreement(&call, terms).await
        }
        .await;
        api.finish(&call, result, |a| pb::CreateAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn revise_agreement(
        &self,
        request: Request<pb::ReviseAgreementRequest>,
    ) -> Result<Response<pb::ReviseAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "ReviseAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, terms) = input(convert::revise_agreement(request.into_inner()))?;
            api.services.revise_agreement(&call, &id, terms).await
        }
        .await;
        api.finish(&call, result, |a| pb::ReviseAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn approve_agreement(
        &self,
        request: Request<pb::ApproveAgreementRequest>,
    ) -> Result<Response<pb::ApproveAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "ApproveAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, version, etag) = input(convert::approve_agreement(request.into_inner()))?;
            api.services
                .approve_agreement(&call, &id, version, &etag)
                .await
        }
        .await;
        api.finish(&call, result, |a| pb::ApproveAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn suspend_agreement(
        &self,
        request: Request<pb::SuspendAgreementRequest>,
    ) -> Result<Response<pb::SuspendAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "SuspendAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, reason, etag) = input(convert::suspend_agreement(request.into_inner()))?;
            api.services
                .suspend_agreement(&call, &id, &reason, &etag)
                .await
        }
        .await;
        api.finish(&call, result, |a| pb::SuspendAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn reinstate_agreement(
        &self,
        request: Request<pb::ReinstateAgreementRequest>,
    ) -> Result<Response<pb::ReinstateAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "ReinstateAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, etag) = input(convert::reinstate_agreement(request.into_inner()))?;
            api.services.reinstate_agreement(&call, &id, &etag).await
        }
        .await;
        api.finish(&call, result, |a| pb::ReinstateAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_agreement(
        &self,
        request: Request<pb::GetAgreementRequest>,
    ) -> Result<Response<pb::GetAgreementResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "GetAgreement"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, version) = input(convert::get_agreement(request.get_ref()))?;
            api.services.get_agreement(&call, &id, version).await
        }
        .await;
        api.finish(&call, result, |a| pb::GetAgreementResponse {
            agreement: Some(convert::agreement_out(a, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgreementService", "ListAgreements"),
                Access::Member,
            )
            .await?;
        let result = async {
            let req = request.into_inner();
            let page = input(convert::list_page(req.page_size, req.page_token))?;
            api.services.list_agreements(&call, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListAgreementsResponse {
            agreements: p
                .items
                .into_iter()
                .map(|a| convert::agreement_out(a, call.time))
                .collect(),
            next_page_token: p.next_token,
        })
        .await
    }
}
