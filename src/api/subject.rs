//! `accord.v1.SubjectService`.

use tonic::{Request, Response, Status};

use super::pb::subject_service_server::SubjectService;
use super::{Api, convert, input, method, pb};
use crate::service::Access;

/// The SubjectService adapter.
#[derive(Debug, Clone)]
pub struct SubjectApi(pub Api);

#[tonic::async_trait]
impl SubjectService for SubjectApi {
    #[tracing::instrument(skip_all)]
    async fn create_subject(
        &self,
        request: Request<pb::CreateSubjectRequest>,
    ) -> Result<Response<pb::CreateSubjectResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("SubjectService", "CreateSubject"),
                Access::Member,
            )
            .await?;
        let result = async {
            let today = call.time.date_naive();
            let (purpose, new) = input(convert::create_subject(
                request.into_inner(),
                &call.caller.agency,
                today,
            ))?;
            call.set_purpose(purpose);
            api.services.create_subject(&call, new).await
        }
        .await;
        api.finish(&call, result, |s| pb::CreateSubjectResponse {
            subject: Some(convert::subject_out(s)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::GetSubjectResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("SubjectService", "GetSubject"),
                Access::Member,
            )
            .await?;
        let result = async {
            let (purpose, id) = input(convert::get_subject(request.into_inner()))?;
            call.set_purpose(purpose);
            api.services.get_subject(&call, &id).await
        }
        .await;
        api.finish(&call, result, |s| pb::GetSubjectResponse {
            subject: Some(convert::subject_out(s)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn find_subjects(
        &self,
        request: Request<pb::FindSubjectsRequest>,
    ) -> Result<Response<pb::FindSubjectsResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("SubjectService", "FindSubjects"),
                Access::Member,
            )
            .await?;
        let result = async {
            let today = call.time.date_naive();
            let (purpose, query, max) = input(convert::find_subjects(
                request.into_inner(),
                &call.caller.agency,
                today,
            ))?;
            call.set_purpose(purpose);
            api.services.find_subjects(&call, query, max).await
        }
        .await;
        api.finish(&call, result, |matches| pb::FindSubjectsResponse {
            matches: matches
                .into_iter()
                .map(convert::subject_match_out)
                .collect(),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn link_identifier(
        &self,
        request: Request<pb::LinkIdentifierRequest>,
    ) -> Result<Response<pb::LinkIdentifierResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("SubjectService", "LinkIdentifier"),
                Access::Member,
            )
            .await?;
        let result = async {
            let req = request.into_inner();
            let (purpose, subject, identifier) = input(convert::identifier_change(
                &req.subject,
                req.identifier,
                req.purpose,
                &call.caller.agency,
                false,
            ))?;
            call.set_purpose(purpose);
            api.services
                .link_identifier(&call, &subject, identifier)
                .await
        }
        .await;
        api.finish(&call, result, |s| pb::LinkIdentifierResponse {
            subject: Some(convert::subject_out(s)),
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn unlink_identifier(
        &self,
        request: Request<pb::UnlinkIdentifierRequest>,
    ) -> Result<Response<pb::UnlinkIdentifierResponse>, Status> {
        let api = &self.0;
        let call = api
            .begin(
                &request,
                method!("SubjectService", "UnlinkIdentifier"),
                Access::Member,
            )
            .await?;
        let result = async {
            let req = request.into_inner();
            let (purpose, subject, identifier) = input(convert::identifier_change(
                &req.subject,
                req.identifier,
                req.purpose,
                &call.caller.agency,
                true,
            ))?;
            call.set_purpose(purpose);
            api.services
                .unlink_identifier(&call, &subject, identifier)
                .await
        }
        .await;
        api.finish(&call, result, |s| pb::UnlinkIdentifierResponse {
            subject: Some(convert::subject_out(s)),
        })
        .await
    }
}
