//! `accord.v1.AgencyService`.

use tonic::{Request, Response, Status};

use super::pb::agency_service_server::AgencyService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The AgencyService adapter.
#[derive(Debug, Clone)]
pub struct AgencyApi(pub Api);

#[tonic::async_trait]
impl AgencyService for AgencyApi {
    #[tracing::instrument(skip_all)]
    async fn create_agency(
        &self,
        request: Request<pb::CreateAgencyRequest>,
    ) -> Result<Response<pb::CreateAgencyResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "CreateAgency"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (code, display_name, kind) = input(convert::create_agency(request.into_inner()))?;
            api.services
                .create_agency(&call, code, display_name, kind)
                .await
        }
        .await;
        api.finish(&call, result, |a| pb::CreateAgencyResponse {
            agency: Some(convert::agency_out(a)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_agency(
        &self,
        request: Request<pb::GetAgencyRequest>,
    ) -> Result<Response<pb::GetAgencyResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "GetAgency"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let code = input(convert::agency_name(&request.get_ref().name))?;
            api.services.get_agency(&call, &code).await
        }
        .await;
        api.finish(&call, result, |a| pb::GetAgencyResponse {
            agency: Some(convert::agency_out(a)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_agencies(
        &self,
        request: Request<pb::ListAgenciesRequest>,
    ) -> Result<Response<pb::ListAgenciesResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "ListAgencies"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let req = request.into_inner();
            let page = input(convert::list_page(req.page_size, req.page_token))?;
            api.services.list_agencies(&call, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListAgenciesResponse {
            agencies: p.items.into_iter().map(convert::agency_out).collect(),
            next_page_token: p.next_token,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn update_agency(
        &self,
        request: Request<pb::UpdateAgencyRequest>,
    ) -> Result<Response<pb::UpdateAgencyResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "UpdateAgency"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (code, change) = input(convert::update_agency(request.into_inner()))?;
            api.services.update_agency(&call, &code, change).await
        }
        .await;
        api.finish(&call, result, |a| pb::UpdateAgencyResponse {
            agency: Some(convert::agency_out(a)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn add_certificate_identity(
        &self,
        request: Request<pb::AddCertificateIdentityRequest>,
    ) -> Result<Response<pb::AddCertificateIdentityResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "AddCertificateIdentity"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (agency, matcher, note) =
                input(convert::add_certificate_identity(request.into_inner()))?;
            api.services
                .add_certificate_identity(&call, &agency, matcher, note)
                .await
        }
        .await;
        api.finish(&call, result, |c| pb::AddCertificateIdentityResponse {
            certificate_identity: Some(convert::certificate_identity_out(c)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_certificate_identity(
        &self,
        request: Request<pb::RevokeCertificateIdentityRequest>,
    ) -> Result<Response<pb::RevokeCertificateIdentityResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "RevokeCertificateIdentity"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (agency, id) = input(convert::certificate_identity_name(&request.get_ref().name))?;
            api.services
                .revoke_certificate_identity(&call, &agency, &id)
                .await
        }
        .await;
        api.finish(&call, result, |c| pb::RevokeCertificateIdentityResponse {
            certificate_identity: Some(convert::certificate_identity_out(c)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_certificate_identities(
        &self,
        request: Request<pb::ListCertificateIdentitiesRequest>,
    ) -> Result<Response<pb::ListCertificateIdentitiesResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "ListCertificateIdentities"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let agency = input(convert::parent_agency(&request.get_ref().parent))?;
            api.services
                .list_certificate_identities(&call, &agency)
                .await
        }
        .await;
        api.finish(&call, result, |list| {
            pb::ListCertificateIdentitiesResponse {
                certificate_identities: list
                    .into_iter()
                    .map(convert::certificate_identity_out)
                    .collect(),
            }
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn add_token_issuer(
        &self,
        request: Request<pb::AddTokenIssuerRequest>,
    ) -> Result<Response<pb::AddTokenIssuerResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "AddTokenIssuer"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (agency, issuer) = input(convert::add_token_issuer(request.into_inner()))?;
            api.services.add_token_issuer(&call, &agency, issuer).await
        }
        .await;
        api.finish(&call, result, |t| pb::AddTokenIssuerResponse {
            token_issuer: Some(convert::token_issuer_out(t)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn remove_token_issuer(
        &self,
        request: Request<pb::RemoveTokenIssuerRequest>,
    ) -> Result<Response<pb::RemoveTokenIssuerResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "RemoveTokenIssuer"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let (agency, id) = input(convert::token_issuer_name(&request.get_ref().name))?;
            api.services.remove_token_issuer(&call, &agency, &id).await
        }
        .await;
        api.finish(&call, result, |()| pb::RemoveTokenIssuerResponse {})
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_token_issuers(
        &self,
        request: Request<pb::ListTokenIssuersRequest>,
    ) -> Result<Response<pb::ListTokenIssuersResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("AgencyService", "ListTokenIssuers"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let agency = input(convert::parent_agency(&request.get_ref().parent))?;
            api.services.list_token_issuers(&call, &agency).await
        }
        .await;
        api.finish(&call, result, |list| pb::ListTokenIssuersResponse {
            token_issuers: list.into_iter().map(convert::token_issuer_out).collect(),
        })
        .await
    }
}
