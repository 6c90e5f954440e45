//! `accord.v1.CatalogService`.

use tonic::{Request, Response, Status};

use super::operation::Operation;
use super::pb::catalog_service_server::CatalogService;
use super::{Api, convert, method, pb};
use crate::domain::{RecordClass, RecordClassId, Violations};
use crate::service::{Access, Call, Page, PageRequest, ServiceError, Services};

/// The CatalogService adapter.
#[derive(Debug, Clone)]
pub struct CatalogApi(pub Api);

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn create_record_class(
        &self,
        request: Request<pb::CreateRecordClassRequest>,
    ) -> Result<Response<pb::CreateRecordClassResponse>, Status> {
        self.0.serve::<CreateRecordClass>(request).await
    }

    async fn get_record_class(
        &self,
        request: Request<pb::GetRecordClassRequest>,
    ) -> Result<Response<pb::GetRecordClassResponse>, Status> {
        self.0.serve::<GetRecordClass>(request).await
    }

    async fn list_record_classes(
        &self,
        request: Request<pb::ListRecordClassesRequest>,
    ) -> Result<Response<pb::ListRecordClassesResponse>, Status> {
        self.0.serve::<ListRecordClasses>(request).await
    }
}

struct CreateRecordClass;

impl Operation for CreateRecordClass {
    type Request = pb::CreateRecordClassRequest;
    type Input = RecordClass;
    type Output = RecordClass;
    type Response = pb::CreateRecordClassResponse;
    const METHOD: &'static str = method!("CatalogService", "CreateRecordClass");
    const ACCESS: Access = Access::Operator;

    fn input(request: Self::Request, call: &Call) -> Result<RecordClass, Violations> {
        convert::create_record_class(request, call.time)
    }

    async fn run(
        services: &Services,
        call: &Call,
        class: RecordClass,
    ) -> Result<RecordClass, ServiceError> {
        services.create_record_class(call, class).await
    }

    fn render(class: RecordClass, _: &Call) -> Self::Response {
        pb::CreateRecordClassResponse {
            record_class: Some(convert::record_class_out(class)),
        }
    }
}

struct GetRecordClass;

impl Operation for GetRecordClass {
    type Request = pb::GetRecordClassRequest;
    type Input = RecordClassId;
    type Output = RecordClass;
    type Response = pb::GetRecordClassResponse;
    const METHOD: &'static str = method!("CatalogService", "GetRecordClass");
    const ACCESS: Access = Access::MemberOrOperator;

    fn input(request: Self::Request, _: &Call) -> Result<RecordClassId, Violations> {
        convert::record_class_name(&request.name, "name")
    }

    async fn run(
        services: &Services,
        call: &Call,
        id: RecordClassId,
    ) -> Result<RecordClass, ServiceError> {
        services.get_record_class(call, &id).await
    }

    fn render(class: RecordClass, _: &Call) -> Self::Response {
        pb::GetRecordClassResponse {
            record_class: Some(convert::record_class_out(class)),
        }
    }
}

struct ListRecordClasses;

impl Operation for ListRecordClasses {
    type Request = pb::ListRecordClassesRequest;
    type Input = PageRequest;
    type Output = Page<RecordClass>;
    type Response = pb::ListRecordClassesResponse;
    const METHOD: &'static str = method!("CatalogService", "ListRecordClasses");
    const ACCESS: Access = Access::MemberOrOperator;

    fn input(request: Self::Request, _: &Call) -> Result<PageRequest, Violations> {
        convert::list_page(request.page_size, request.page_token)
    }

    async fn run(
        services: &Services,
        call: &Call,
        page: PageRequest,
    ) -> Result<Page<RecordClass>, ServiceError> {
        services.list_record_classes(call, &page).await
    }

    fn render(page: Page<RecordClass>, _: &Call) -> Self::Response {
        pb::ListRecordClassesResponse {
            record_classes: page
                .items
                .into_iter()
                .map(convert::record_class_out)
                .collect(),
            next_page_token: page.next_token,
        }
    }
}
