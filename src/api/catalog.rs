//! `accord.v1.CatalogService`.

use super::operation::{operation, serve};
use super::pb::catalog_service_server::CatalogService;
use super::{Api, convert, pb};
use crate::domain::{RecordClass, RecordClassId};
use crate::service::{Page, PageRequest};

/// The CatalogService adapter.
#[derive(Debug, Clone)]
pub struct CatalogApi(pub Api);

serve!(CatalogService, CatalogApi {
    create_record_class => CreateRecordClass,
    get_record_class => GetRecordClass,
    list_record_classes => ListRecordClasses,
});

operation! {
    CreateRecordClass: "CatalogService"/"CreateRecordClass", Operator,
    pb::CreateRecordClassRequest => pb::CreateRecordClassResponse,
    input(request, call) -> RecordClass { convert::create_record_class(request, call.time) },
    run(services, call, class) -> RecordClass { services.create_record_class(call, class).await },
    render(class, _) {
        pb::CreateRecordClassResponse { record_class: Some(convert::record_class_out(class)) }
    },
}

operation! {
    GetRecordClass: "CatalogService"/"GetRecordClass", MemberOrOperator,
    pb::GetRecordClassRequest => pb::GetRecordClassResponse,
    input(request, _) -> RecordClassId { convert::record_class_name(&request.name, "name") },
    run(services, call, id) -> RecordClass { services.get_record_class(call, &id).await },
    render(class, _) {
        pb::GetRecordClassResponse { record_class: Some(convert::record_class_out(class)) }
    },
}

operation! {
    ListRecordClasses: "CatalogService"/"ListRecordClasses", MemberOrOperator,
    pb::ListRecordClassesRequest => pb::ListRecordClassesResponse,
    input(request, _) -> PageRequest { convert::list_page(request.page_size, request.page_token) },
    run(services, call, page) -> Page<RecordClass> {
        services.list_record_classes(call, &page).await
    },
    render(page, _) {
        pb::ListRecordClassesResponse {
            record_classes: page.items.into_iter().map(convert::record_class_out).collect(),
            next_page_token: page.next_token,
        }
    },
}
