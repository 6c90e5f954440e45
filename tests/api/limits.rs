//! Rate limits per agency: refusals are RESOURCE_EXHAUSTED with when to
//! try again, audited, counted in the metrics, and an agency's own limit
//! in the registry replaces the default.

use accord::api::pb;
use accord::ledger::Outcome;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

async fn get(s: &TestServer, name: &str) -> Result<pb::Subject, tonic::Status> {
    s.subjects()
        .get_subject(
            s.as_staff(COUNCIL, "sw-1", "social_worker")
                .request(pb::GetSubjectRequest {
                    name: name.to_owned(),
                    purpose: pb::Purpose::DirectCare as i32,
                }),
        )
        .await
        .map(|r| r.into_inner().subject.unwrap())
}

async fn set_limit(
    s: &TestServer,
    limit: Option<pb::RateLimit>,
) -> Result<pb::Agency, tonic::Status> {
    s.agencies()
        .update_agency(s.as_operator().request(pb::UpdateAgencyRequest {
            agency: Some(pb::Agency {
                name: format!("agencies/{COUNCIL}"),
                rate_limit: limit,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["rate_limit".to_owned()],
            }),
        }))
        .await
        .map(|r| r.into_inner().agency.unwrap())
}

#[tokio::test]
async fn an_agency_over_its_limit_is_refused_and_told_when_to_try_again() {
    let Some(s) = TestServer::start_tuned(Db::Sqlite, |c| {
        c.agency_calls_per_second = 1;
        c.agency_burst = 4;
    })
    .await
    else {
        return;
    };
    let subject = register_subject(&s).await;
    // The registration above took one call of the burst; three more pass.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = get(&s, &subject).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the limit refuses a call");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "RATE_LIMITED");
    let retry = refused.get_details_retry_info().expect("RetryInfo");
    let delay = retry.retry_delay.expect("a delay");
    assert!(delay > std::time::Duration::ZERO && delay <= std::time::Duration::from_secs(1));
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.outcome, Outcome::Denied);
    assert_eq!(entry.draft.reason_code, "RATE_LIMITED");
    let (_, metrics) = http_get(s.metrics, "/metrics").await;
    assert!(
        metrics.contains("accord_rate_limited_total{agency=\"leeds-cc\",scope=\"agency\"}"),
        "{metrics}"
    );

    // The operator raises the agency's own limit: calls pass again.
    let bad = set_limit(
        &s,
        Some(pb::RateLimit {
            calls_per_second: 10,
            burst: 5,
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(violations(&bad)[0].0, "agency.rate_limit");
    let raised = set_limit(
        &s,
        Some(pb::RateLimit {
            calls_per_second: 1000,
            burst: 1000,
        }),
    )
    .await
    .unwrap();
    assert_eq!(raised.rate_limit.unwrap().calls_per_second, 1000);
    for _ in 0..20 {
        get(&s, &subject).await.unwrap();
    }
    // Back to the default.
    let reset = set_limit(&s, None).await.unwrap();
    assert!(reset.rate_limit.is_none());
    let mut limited = false;
    for _ in 0..10 {
        if get(&s, &subject).await.is_err() {
            limited = true;
            break;
        }
    }
    assert!(limited, "the default applies again");
    s.stop().await;
}
