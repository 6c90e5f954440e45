//! `accord.v1.CatalogService`.

use tonic::{Request, Response, Status};

use super::pb::catalog_service_server::CatalogService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The CatalogService adapter.
#[derive(Debug, Clone)]
pub struct CatalogApi(pub Api);

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn create_record_class(
        &self,
        request: Request<pb::CreateRecordClassRequest>,
    ) -> Result<Response<pb::CreateRecordClassResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("CatalogService", "CreateRecordClass"),
                Access::Operator,
            )
            .await?;
        let result = async {
            let class = input(convert::create_record_class(
                request.into_inner(),
                call.time,
            ))?;
            api.services.create_record_class(&call, class).await
        }
        .await;
        api.finish(&call, result, |c| pb::CreateRecordClassResponse {
            record_class: Some(convert::record_class_out(c)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_record_class(
        &self,
        request: Request<pb::GetRecordClassRequest>,
    ) -> Result<Response<pb::GetRecordClassResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("CatalogService", "GetRecordClass"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let id = input(convert::record_class_name(&request.get_ref().name, "name"))?;
            api.services.get_record_class(&call, &id).await
        }
        .await;
        api.finish(&call, result, |c| pb::GetRecordClassResponse {
            record_class: Some(convert::record_class_out(c)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_record_classes(
        &self,
        request: Request<pb::ListRecordClassesRequest>,
    ) -> Result<Response<pb::ListRecordClassesResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("CatalogService", "ListRecordClasses"),
                Access::MemberOrOperator,
            )
            .await?;
        let result = async {
            let req = request.into_inner();
            let page = input(convert::list_page(req.page_size, req.page_token))?;
            api.services.list_record_classes(&call, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListRecordClassesResponse {
            record_classes: p.items.into_iter().map(convert::record_class_out).collect(),
            next_page_token: p.next_token,
        })
        .await
    }
}
