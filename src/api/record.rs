//! `accord.v1.RecordService`.

use tonic::{Request, Response, Status};

use super::pb::record_service_server::RecordService;
use super::{Api, convert, input, method, pb};
use crate::domain::{RecordId, SubjectId, Violations};
use crate::service::{Access, SealTarget};

/// The RecordService adapter.
#[derive(Debug, Clone)]
pub struct RecordApi(pub Api);

#[tonic::async_trait]
impl RecordService for RecordApi {
    #[tracing::instrument(skip_all)]
    async fn create_record(
        &self,
        request: Request<pb::CreateRecordRequest>,
    ) -> Result<Response<pb::CreateRecordResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "CreateRecord"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, new) = input(convert::create_record(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.create_record(&call, new).await
        }
        .await;
        api.finish(&call, result, |r| pb::CreateRecordResponse {
            record: Some(convert::record_out(r)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn update_record(
        &self,
        request: Request<pb::UpdateRecordRequest>,
    ) -> Result<Response<pb::UpdateRecordResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "UpdateRecord"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, change) = input(convert::update_record(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.update_record(&call, change).await
        }
        .await;
        api.finish(&call, result, |r| pb::UpdateRecordResponse {
            record: Some(convert::record_out(r)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_record(
        &self,
        request: Request<pb::GetRecordRequest>,
    ) -> Result<Response<pb::GetRecordResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "GetRecord"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, break_glass, id, version) =
                input(convert::get_record(request.into_inner()))?;
            call.set_purpose(purpose);
            if let Some(reason) = break_glass {
                call.set_break_glass(reason);
            }
            api.services.get_record(&call, &id, version).await
        }
        .await;
        api.finish(&call, result, |r| pb::GetRecordResponse {
            record: Some(convert::shared_record_out(r)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "ListRecords"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, subject, page) = input(convert::list_records(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.list_records(&call, &subject, &page).await
        }
        .await;
        api.finish(&call, result, |p| pb::ListRecordsResponse {
            records: p
                .items
                .into_iter()
                .map(convert::shared_record_out)
                .collect(),
            next_page_token: p.next_token,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn seal_record(
        &self,
        request: Request<pb::SealRecordRequest>,
    ) -> Result<Response<pb::SealRecordResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "SealRecord"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (id, reason) = input(convert::seal_record(request.into_inner()))?;
            api.services
                .set_seal(&call, SealTarget::Record(id), Some(reason))
                .await
        }
        .await;
        api.finish(&call, result, |r| pb::SealRecordResponse {
            record: r.map(convert::record_out),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn unseal_record(
        &self,
        request: Request<pb::UnsealRecordRequest>,
    ) -> Result<Response<pb::UnsealRecordResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "UnsealRecord"),
                Access::Member,
            )
            .await?;
        let result = async {
            let id = input(
                RecordId::parse_name(&request.get_ref().name)
                    .map_err(|e| Violations::one("name", e)),
            )?;
            api.services
                .set_seal(&call, SealTarget::Record(id), None)
                .await
        }
        .await;
        api.finish(&call, result, |r| pb::UnsealRecordResponse {
            record: r.map(convert::record_out),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn seal_subject_records(
        &self,
        request: Request<pb::SealSubjectRecordsRequest>,
    ) -> Result<Response<pb::SealSubjectRecordsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "SealSubjectRecords"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (subject, reason) = input(convert::seal_subject_records(request.into_inner()))?;
            api.services
                .set_seal(&call, SealTarget::SubjectRecords(subject), Some(reason))
                .await
        }
        .await;
        api.finish(&call, result, |_| pb::SealSubjectRecordsResponse {})
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn unseal_subject_records(
        &self,
        request: Request<pb::UnsealSubjectRecordsRequest>,
    ) -> Result<Response<pb::UnsealSubjectRecordsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "UnsealSubjectRecords"),
                Access::Member,
            )
            .await?;
        let result = async {
            let subject = input(
                SubjectId::parse_name(&request.get_ref().subject)
                    .map_err(|e| Violations::one("subject", e)),
            )?;
            api.services
                .set_seal(&call, SealTarget::SubjectRecords(subject), None)
                .await
        }
        .await;
        api.finish(&call, result, |_| pb::UnsealSubjectRecordsResponse {})
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("RecordService", "CheckAccess"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, break_glass, id) = input(convert::check_access(request.into_inner()))?;
            call.set_purpose(purpose);
            if let Some(reason) = break_glass {
                call.set_break_glass(reason);
            }
            api.services.check_access(&call, &id).await
        }
        .await;
        api.finish(&call, result, convert::access_check_out).await
    }
}
