//! `accord.v1.AgreementService`.

use super::operation::{operation, serve};
use super::pb::agreement_service_server::AgreementService;
use super::{Api, convert, pb};
use crate::domain::agreement::{Agreement, AgreementId, AgreementTerms};
use crate::service::{AgreementUsage, Call, Page, PageRequest};

/// The AgreementService adapter.
#[derive(Debug, Clone)]
pub struct AgreementApi(pub Api);

serve!(AgreementService, AgreementApi {
    create_agreement => CreateAgreement,
    revise_agreement => ReviseAgreement,
    approve_agreement => ApproveAgreement,
    suspend_agreement => SuspendAgreement,
    reinstate_agreement => ReinstateAgreement,
    get_agreement => GetAgreement,
    list_agreements => ListAgreements,
    get_agreement_usage => GetAgreementUsage,
});

/// An agreement as answered to `call`.
fn out(agreement: Agreement, call: &Call) -> Option<pb::Agreement> {
    Some(convert::agreement_out(agreement, call.time))
}

operation! {
    CreateAgreement: "AgreementService"/"CreateAgreement", Member,
    pb::CreateAgreementRequest => pb::CreateAgreementResponse,
    input(request, _) -> AgreementTerms { convert::create_agreement(request) },
    run(services, call, terms) -> Agreement { services.create_agreement(call, terms).await },
    render(a, call) { pb::CreateAgreementResponse { agreement: out(a, call) } },
}

operation! {
    ReviseAgreement: "AgreementService"/"ReviseAgreement", Member,
    pb::ReviseAgreementRequest => pb::ReviseAgreementResponse,
    input(request, _) -> (AgreementId, AgreementTerms) { convert::revise_agreement(request) },
    run(services, call, (id, terms)) -> Agreement {
        services.revise_agreement(call, &id, terms).await
    },
    render(a, call) { pb::ReviseAgreementResponse { agreement: out(a, call) } },
}

operation! {
    ApproveAgreement: "AgreementService"/"ApproveAgreement", Member,
    pb::ApproveAgreementRequest => pb::ApproveAgreementResponse,
    input(request, _) -> (AgreementId, i64, String) { convert::approve_agreement(request) },
    run(services, call, (id, version, etag)) -> Agreement {
        services.approve_agreement(call, &id, version, &etag).await
    },
    render(a, call) { pb::ApproveAgreementResponse { agreement: out(a, call) } },
}

operation! {
    SuspendAgreement: "AgreementService"/"SuspendAgreement", Member,
    pb::SuspendAgreementRequest => pb::SuspendAgreementResponse,
    input(request, _) -> (AgreementId, String, String) { convert::suspend_agreement(request) },
    run(services, call, (id, reason, etag)) -> Agreement {
        services.suspend_agreement(call, &id, &reason, &etag).await
    },
    render(a, call) { pb::SuspendAgreementResponse { agreement: out(a, call) } },
}

operation! {
    ReinstateAgreement: "AgreementService"/"ReinstateAgreement", Member,
    pb::ReinstateAgreementRequest => pb::ReinstateAgreementResponse,
    input(request, _) -> (AgreementId, String) { convert::reinstate_agreement(request) },
    run(services, call, (id, etag)) -> Agreement {
        services.reinstate_agreement(call, &id, &etag).await
    },
    render(a, call) { pb::ReinstateAgreementResponse { agreement: out(a, call) } },
}

operation! {
    GetAgreement: "AgreementService"/"GetAgreement", Member,
    pb::GetAgreementRequest => pb::GetAgreementResponse,
    input(request, _) -> (AgreementId, Option<i64>) { convert::get_agreement(&request) },
    run(services, call, (id, version)) -> Agreement {
        services.get_agreement(call, &id, version).await
    },
    render(a, call) { pb::GetAgreementResponse { agreement: out(a, call) } },
}

operation! {
    ListAgreements: "AgreementService"/"ListAgreements", Member,
    pb::ListAgreementsRequest => pb::ListAgreementsResponse,
    input(request, _) -> PageRequest { convert::list_page(request.page_size, request.page_token) },
    run(services, call, page) -> Page<Agreement> { services.list_agreements(call, &page).await },
    render(page, call) {
        pb::ListAgreementsResponse {
            agreements: page.items.into_iter().map(|a| convert::agreement_out(a, call.time)).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    GetAgreementUsage: "AgreementService"/"GetAgreementUsage", Member,
    pb::GetAgreementUsageRequest => pb::GetAgreementUsageResponse,
    input(request, _) -> (AgreementId, convert::TimeRange) { convert::agreement_usage(&request) },
    run(services, call, (id, (start, end))) -> AgreementUsage {
        services.agreement_usage(call, &id, start, end).await
    },
    render(usage, _call) { convert::agreement_usage_out(usage) },
}
