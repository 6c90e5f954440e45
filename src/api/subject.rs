//! `accord.v1.SubjectService`.

use tonic::{Request, Response, Status};

use super::operation::{Operation, declared};
use super::pb::subject_service_server::SubjectService;
use super::{Api, convert, method, pb};
use crate::domain::{Identifier, Subject, SubjectId, Violations};
use crate::service::{
    Access, Call, NewSubject, ServiceError, Services, SubjectMatch, SubjectQuery,
};

/// The SubjectService adapter.
#[derive(Debug, Clone)]
pub struct SubjectApi(pub Api);

#[tonic::async_trait]
impl SubjectService for SubjectApi {
    async fn create_subject(
        &self,
        request: Request<pb::CreateSubjectRequest>,
    ) -> Result<Response<pb::CreateSubjectResponse>, Status> {
        self.0.serve::<CreateSubject>(request).await
    }

    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::GetSubjectResponse>, Status> {
        self.0.serve::<GetSubject>(request).await
    }

    async fn find_subjects(
        &self,
        request: Request<pb::FindSubjectsRequest>,
    ) -> Result<Response<pb::FindSubjectsResponse>, Status> {
        self.0.serve::<FindSubjects>(request).await
    }

    async fn link_identifier(
        &self,
        request: Request<pb::LinkIdentifierRequest>,
    ) -> Result<Response<pb::LinkIdentifierResponse>, Status> {
        self.0.serve::<LinkIdentifier>(request).await
    }

    async fn unlink_identifier(
        &self,
        request: Request<pb::UnlinkIdentifierRequest>,
    ) -> Result<Response<pb::UnlinkIdentifierResponse>, Status> {
        self.0.serve::<UnlinkIdentifier>(request).await
    }
}

struct CreateSubject;

impl Operation for CreateSubject {
    type Request = pb::CreateSubjectRequest;
    type Input = NewSubject;
    type Output = Subject;
    type Response = pb::CreateSubjectResponse;
    const METHOD: &'static str = method!("SubjectService", "CreateSubject");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, call: &Call) -> Result<NewSubject, Violations> {
        let today = call.time.date_naive();
        declared(
            call,
            convert::create_subject(request, &call.caller.agency, today),
        )
    }

    async fn run(
        services: &Services,
        call: &Call,
        new: NewSubject,
    ) -> Result<Subject, ServiceError> {
        services.create_subject(call, new).await
    }

    fn render(subject: Subject, _: &Call) -> Self::Response {
        pb::CreateSubjectResponse {
            subject: Some(convert::subject_out(subject)),
        }
    }
}

struct GetSubject;

impl Operation for GetSubject {
    type Request = pb::GetSubjectRequest;
    type Input = SubjectId;
    type Output = Subject;
    type Response = pb::GetSubjectResponse;
    const METHOD: &'static str = method!("SubjectService", "GetSubject");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, call: &Call) -> Result<SubjectId, Violations> {
        declared(call, convert::get_subject(request))
    }

    async fn run(services: &Services, call: &Call, id: SubjectId) -> Result<Subject, ServiceError> {
        services.get_subject(call, &id).await
    }

    fn render(subject: Subject, _: &Call) -> Self::Response {
        pb::GetSubjectResponse {
            subject: Some(convert::subject_out(subject)),
        }
    }
}

struct FindSubjects;

impl Operation for FindSubjects {
    type Request = pb::FindSubjectsRequest;
    type Input = (SubjectQuery, usize);
    type Output = Vec<SubjectMatch>;
    type Response = pb::FindSubjectsResponse;
    const METHOD: &'static str = method!("SubjectService", "FindSubjects");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, call: &Call) -> Result<(SubjectQuery, usize), Violations> {
        let today = call.time.date_naive();
        let checked = convert::find_subjects(request, &call.caller.agency, today);
        declared(
            call,
            checked.map(|(purpose, query, max)| (purpose, (query, max))),
        )
    }

    async fn run(
        services: &Services,
        call: &Call,
        (query, max): (SubjectQuery, usize),
    ) -> Result<Vec<SubjectMatch>, ServiceError> {
        services.find_subjects(call, query, max).await
    }

    fn render(matches: Vec<SubjectMatch>, _: &Call) -> Self::Response {
        pb::FindSubjectsResponse {
            matches: matches
                .into_iter()
                .map(convert::subject_match_out)
                .collect(),
        }
    }
}

/// The input of LinkIdentifier and UnlinkIdentifier.
fn identifier_change(
    call: &Call,
    subject: &str,
    identifier: Option<pb::Identifier>,
    purpose: i32,
    unlink: bool,
) -> Result<(SubjectId, Identifier), Violations> {
    let checked =
        convert::identifier_change(subject, identifier, purpose, &call.caller.agency, unlink);
    declared(call, checked.map(|(purpose, s, i)| (purpose, (s, i))))
}

struct LinkIdentifier;

impl Operation for LinkIdentifier {
    type Request = pb::LinkIdentifierRequest;
    type Input = (SubjectId, Identifier);
    type Output = Subject;
    type Response = pb::LinkIdentifierResponse;
    const METHOD: &'static str = method!("SubjectService", "LinkIdentifier");
    const ACCESS: Access = Access::Member;

    fn input(r: Self::Request, call: &Call) -> Result<(SubjectId, Identifier), Violations> {
        identifier_change(call, &r.subject, r.identifier, r.purpose, false)
    }

    async fn run(
        services: &Services,
        call: &Call,
        (subject, identifier): (SubjectId, Identifier),
    ) -> Result<Subject, ServiceError> {
        services.link_identifier(call, &subject, identifier).await
    }

    fn render(subject: Subject, _: &Call) -> Self::Response {
        pb::LinkIdentifierResponse {
            subject: Some(convert::subject_out(subject)),
        }
    }
}

struct UnlinkIdentifier;

impl Operation for UnlinkIdentifier {
    type Request = pb::UnlinkIdentifierRequest;
    type Input = (SubjectId, Identifier);
    type Output = Subject;
    type Response = pb::UnlinkIdentifierResponse;
    const METHOD: &'static str = method!("SubjectService", "UnlinkIdentifier");
    const ACCESS: Access = Access::Member;

    fn input(r: Self::Request, call: &Call) -> Result<(SubjectId, Identifier), Violations> {
        identifier_change(call, &r.subject, r.identifier, r.purpose, true)
    }

    async fn run(
        services: &Services,
        call: &Call,
        (subject, identifier): (SubjectId, Identifier),
    ) -> Result<Subject, ServiceError> {
        services.unlink_identifier(call, &subject, identifier).await
    }

    fn render(subject: Subject, _: &Call) -> Self::Response {
        pb::UnlinkIdentifierResponse {
            subject: Some(convert::subject_out(subject)),
        }
    }
}
