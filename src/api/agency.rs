//! `accord.v1.AgencyService`.

use super::operation::{operation, serve};
use super::pb::agency_service_server::AgencyService;
use super::{Api, convert, pb};
use crate::domain::credential::{
    CertificateIdentity, CertificateIdentityId, CertificateMatch, TokenIssuer, TokenIssuerId,
};
use crate::domain::{Agency, AgencyCode, AgencyKind};
use crate::service::{AgencyChange, NewTokenIssuer, Page, PageRequest};

/// The AgencyService adapter.
#[derive(Debug, Clone)]
pub struct AgencyApi(pub Api);

serve!(AgencyService, AgencyApi {
    create_agency => CreateAgency,
    get_agency => GetAgency,
    list_agencies => ListAgencies,
    update_agency => UpdateAgency,
    add_certificate_identity => AddCertificateIdentity,
    revoke_certificate_identity => RevokeCertificateIdentity,
    list_certificate_identities => ListCertificateIdentities,
    add_token_issuer => AddTokenIssuer,
    remove_token_issuer => RemoveTokenIssuer,
    list_token_issuers => ListTokenIssuers,
});

operation! {
    CreateAgency: "AgencyService"/"CreateAgency", Operator,
    pb::CreateAgencyRequest => pb::CreateAgencyResponse,
    input(request, _) -> (AgencyCode, String, AgencyKind) { convert::create_agency(request) },
    run(services, call, (code, display_name, kind)) -> Agency {
        services.create_agency(call, code, display_name, kind).await
    },
    render(a, _) { pb::CreateAgencyResponse { agency: Some(convert::agency_out(a)) } },
}

operation! {
    GetAgency: "AgencyService"/"GetAgency", MemberOrOperator,
    pb::GetAgencyRequest => pb::GetAgencyResponse,
    input(request, _) -> AgencyCode { convert::agency_name(&request.name) },
    run(services, call, code) -> Agency { services.get_agency(call, &code).await },
    render(a, _) { pb::GetAgencyResponse { agency: Some(convert::agency_out(a)) } },
}

operation! {
    ListAgencies: "AgencyService"/"ListAgencies", MemberOrOperator,
    pb::ListAgenciesRequest => pb::ListAgenciesResponse,
    input(request, _) -> PageRequest { convert::list_page(request.page_size, request.page_token) },
    run(services, call, page) -> Page<Agency> { services.list_agencies(call, &page).await },
    render(page, _) {
        pb::ListAgenciesResponse {
            agencies: page.items.into_iter().map(convert::agency_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    UpdateAgency: "AgencyService"/"UpdateAgency", Operator,
    pb::UpdateAgencyRequest => pb::UpdateAgencyResponse,
    input(request, _) -> (AgencyCode, AgencyChange) { convert::update_agency(request) },
    run(services, call, (code, change)) -> Agency {
        services.update_agency(call, &code, change).await
    },
    render(a, _) { pb::UpdateAgencyResponse { agency: Some(convert::agency_out(a)) } },
}

operation! {
    AddCertificateIdentity: "AgencyService"/"AddCertificateIdentity", Operator,
    pb::AddCertificateIdentityRequest => pb::AddCertificateIdentityResponse,
    input(request, _) -> (AgencyCode, CertificateMatch, String) {
        convert::add_certificate_identity(request)
    },
    run(services, call, (agency, matcher, note)) -> CertificateIdentity {
        services.add_certificate_identity(call, &agency, matcher, note).await
    },
    render(c, _) {
        pb::AddCertificateIdentityResponse {
            certificate_identity: Some(convert::certificate_identity_out(c)),
        }
    },
}

operation! {
    RevokeCertificateIdentity: "AgencyService"/"RevokeCertificateIdentity", Operator,
    pb::RevokeCertificateIdentityRequest => pb::RevokeCertificateIdentityResponse,
    input(request, _) -> (AgencyCode, CertificateIdentityId) {
        convert::certificate_identity_name(&request.name)
    },
    run(services, call, (agency, id)) -> CertificateIdentity {
        services.revoke_certificate_identity(call, &agency, &id).await
    },
    render(c, _) {
        pb::RevokeCertificateIdentityResponse {
            certificate_identity: Some(convert::certificate_identity_out(c)),
        }
    },
}

operation! {
    ListCertificateIdentities: "AgencyService"/"ListCertificateIdentities", MemberOrOperator,
    pb::ListCertificateIdentitiesRequest => pb::ListCertificateIdentitiesResponse,
    input(request, _) -> AgencyCode { convert::parent_agency(&request.parent) },
    run(services, call, agency) -> Vec<CertificateIdentity> {
        services.list_certificate_identities(call, &agency).await
    },
    render(list, _) {
        pb::ListCertificateIdentitiesResponse {
            certificate_identities: list.into_iter().map(convert::certificate_identity_out).collect(),
        }
    },
}

operation! {
    AddTokenIssuer: "AgencyService"/"AddTokenIssuer", Operator,
    pb::AddTokenIssuerRequest => pb::AddTokenIssuerResponse,
    input(request, _) -> (AgencyCode, NewTokenIssuer) { convert::add_token_issuer(request) },
    run(services, call, (agency, issuer)) -> TokenIssuer {
        services.add_token_issuer(call, &agency, issuer).await
    },
    render(t, _) { pb::AddTokenIssuerResponse { token_issuer: Some(convert::token_issuer_out(t)) } },
}

operation! {
    RemoveTokenIssuer: "AgencyService"/"RemoveTokenIssuer", Operator,
    pb::RemoveTokenIssuerRequest => pb::RemoveTokenIssuerResponse,
    input(request, _) -> (AgencyCode, TokenIssuerId) { convert::token_issuer_name(&request.name) },
    run(services, call, (agency, id)) -> () {
        services.remove_token_issuer(call, &agency, &id).await
    },
    render((), _) { pb::RemoveTokenIssuerResponse {} },
}

operation! {
    ListTokenIssuers: "AgencyService"/"ListTokenIssuers", MemberOrOperator,
    pb::ListTokenIssuersRequest => pb::ListTokenIssuersResponse,
    input(request, _) -> AgencyCode { convert::parent_agency(&request.parent) },
    run(services, call, agency) -> Vec<TokenIssuer> {
        services.list_token_issuers(call, &agency).await
    },
    render(list, _) {
        pb::ListTokenIssuersResponse {
            token_issuers: list.into_iter().map(convert::token_issuer_out).collect(),
        }
    },
}
