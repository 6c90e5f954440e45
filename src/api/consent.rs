//! `accord.v1.ConsentService`.

use tonic::{Request, Response, Status};

use super::operation::Operation;
use super::pb::consent_service_server::ConsentService;
use super::{Api, convert, method, pb};
use crate::domain::consent::{Consent, ConsentId};
use crate::domain::{SubjectId, Violations};
use crate::service::{Access, Call, NewConsent, Page, PageRequest, ServiceError, Services};

/// The ConsentService adapter.
#[derive(Debug, Clone)]
pub struct ConsentApi(pub Api);

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::RecordConsentResponse>, Status> {
        self.0.serve::<RecordConsent>(request).await
    }

    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        self.0.serve::<WithdrawConsent>(request).await
    }

    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        self.0.serve::<ListConsents>(request).await
    }
}

struct RecordConsent;

impl Operation for RecordConsent {
    type Request = pb::RecordConsentRequest;
    type Input = NewConsent;
    type Output = Consent;
    type Response = pb::RecordConsentResponse;
    const METHOD: &'static str = method!("ConsentService", "RecordConsent");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, _: &Call) -> Result<NewConsent, Violations> {
        convert::record_consent(request)
    }

    async fn run(
        services: &Services,
        call: &Call,
        new: NewConsent,
    ) -> Result<Consent, ServiceError> {
        services.record_consent(call, new).await
    }

    fn render(consent: Consent, call: &Call) -> Self::Response {
        pb::RecordConsentResponse {
            consent: Some(convert::consent_out(consent, call.time)),
        }
    }
}

struct WithdrawConsent;

impl Operation for WithdrawConsent {
    type Request = pb::WithdrawConsentRequest;
    type Input = (ConsentId, String);
    type Output = Consent;
    type Response = pb::WithdrawConsentResponse;
    const METHOD: &'static str = method!("ConsentService", "WithdrawConsent");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, _: &Call) -> Result<(ConsentId, String), Violations> {
        convert::withdraw_consent(request)
    }

    async fn run(
        services: &Services,
        call: &Call,
        (id, reason): (ConsentId, String),
    ) -> Result<Consent, ServiceError> {
        services.withdraw_consent(call, &id, &reason).await
    }

    fn render(consent: Consent, call: &Call) -> Self::Response {
        pb::WithdrawConsentResponse {
            consent: Some(convert::consent_out(consent, call.time)),
        }
    }
}

struct ListConsents;

impl Operation for ListConsents {
    type Request = pb::ListConsentsRequest;
    type Input = (SubjectId, PageRequest);
    type Output = Page<Consent>;
    type Response = pb::ListConsentsResponse;
    const METHOD: &'static str = method!("ConsentService", "ListConsents");
    const ACCESS: Access = Access::Member;

    fn input(request: Self::Request, _: &Call) -> Result<(SubjectId, PageRequest), Violations> {
        convert::list_consents(request)
    }

    async fn run(
        services: &Services,
        call: &Call,
        (subject, page): (SubjectId, PageRequest),
    ) -> Result<Page<Consent>, ServiceError> {
        services.list_consents(call, &subject, &page).await
    }

    fn render(page: Page<Consent>, call: &Call) -> Self::Response {
        pb::ListConsentsResponse {
            consents: page
                .items
                .into_iter()
                .map(|c| convert::consent_out(c, call.time))
                .collect(),
            next_page_token: page.next_token,
        }
    }
}
