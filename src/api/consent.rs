//! `accord.v1.ConsentService`.

use tonic::{Request, Response, Status};

use super::pb::consent_service_server::ConsentService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The ConsentService adapter.
#[derive(Debug, Clone)]
pub struct ConsentApi(pub Api);

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    #[tracing::instrument(skip_all)]
    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::RecordConsentResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("ConsentService", "RecordConsent"),
                Access::Member,
            )
            .await?;
        let result = async {
            let new = input(convert::record_consent(request.into_inner()))?;
            api.services.record_consent(&call, new).await
        }
        .await;
        api.finish(&call, result, |c| pb::RecordConsentResponse {
            consent: Some(convert::consent_out(c, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("ConsentService", "WithdrawConsent"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, reason) = input(convert::withdraw_consent(request.into_inner()))?;
            api.services.withdraw_consent(&call, &id, &reason).await
        }
        .await;
        api.finish(&call, result, |c| pb::WithdrawConsentResponse {
            consent: Some(convert::consent_out(c, call.time)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("ConsentService", "ListConsents"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (subject, page) = input(convert::list_consents(request.into_inner()))?;
            api.services.list_consents(&call, &subject, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListConsentsResponse {
            consents: p
                .items
                .into_iter()
                .map(|c| convert::consent_out(c, call.time))
                .collect(),
            next_page_token: p.next_token,
        })
        .await
    }
}
