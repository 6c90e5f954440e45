//! `accord.v1.ConsentService`.

use super::operation::{operation, serve};
use super::pb::consent_service_server::ConsentService;
use super::{Api, convert, pb};
use crate::domain::SubjectId;
use crate::domain::consent::{Consent, ConsentId};
use crate::service::{NewConsent, Page, PageRequest};

/// The ConsentService adapter.
#[derive(Debug, Clone)]
pub struct ConsentApi(pub Api);

serve!(ConsentService, ConsentApi {
    record_consent => RecordConsent,
    withdraw_consent => WithdrawConsent,
    list_consents => ListConsents,
});

operation! {
    RecordConsent: "ConsentService"/"RecordConsent", Member,
    pb::RecordConsentRequest => pb::RecordConsentResponse,
    input(request, _) -> NewConsent { convert::record_consent(request) },
    run(services, call, new) -> Consent { services.record_consent(call, new).await },
    render(consent, call) {
        pb::RecordConsentResponse { consent: Some(convert::consent_out(consent, call.time)) }
    },
}

operation! {
    WithdrawConsent: "ConsentService"/"WithdrawConsent", Member,
    pb::WithdrawConsentRequest => pb::WithdrawConsentResponse,
    input(request, _) -> (ConsentId, String) { convert::withdraw_consent(request) },
    run(services, call, (id, reason)) -> Consent {
        services.withdraw_consent(call, &id, &reason).await
    },
    render(consent, call) {
        pb::WithdrawConsentResponse { consent: Some(convert::consent_out(consent, call.time)) }
    },
}

operation! {
    ListConsents: "ConsentService"/"ListConsents", Member,
    pb::ListConsentsRequest => pb::ListConsentsResponse,
    input(request, _) -> (SubjectId, PageRequest) { convert::list_consents(request) },
    run(services, call, (subject, page)) -> Page<Consent> {
        services.list_consents(call, &subject, &page).await
    },
    render(page, call) {
        pb::ListConsentsResponse {
            consents: page.items.into_iter().map(|c| convert::consent_out(c, call.time)).collect(),
            next_page_token: page.next_token,
        }
    },
}
