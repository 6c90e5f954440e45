//! Page tokens reveal nothing and cannot be forged or reused: pages pass
//! over what the caller may not see without a trace.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

fn list_request(subject: &str, size: i32, token: &str) -> pb::ListRecordsRequest {
    pb::ListRecordsRequest {
        subject: subject.to_owned(),
        purpose: pb::Purpose::Safeguarding as i32,
        page_size: size,
        page_token: token.to_owned(),
    }
}

async fn list_page(
    s: &TestServer,
    principal: &str,
    request: pb::ListRecordsRequest,
) -> Result<pb::ListRecordsResponse, tonic::Status> {
    s.records()
        .list_records(
            s.as_staff(COUNCIL, principal, "social_worker")
                .request(request),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// The council walks a subject's records one per page while the health
/// trust's record among them is sealed: no page is empty, the walk finds
/// exactly the council's own records, and no token carries the sealed
/// record's identity.
#[tokio::test]
async fn pages_pass_over_hidden_records_without_a_trace() {
    let clock = Arc::new(TestClock::default());
    let (s, sealed, subject) = three_agencies(Db::Sqlite, clock).await.unwrap();
    agree_terms(&s, safeguarding_terms(&["allergies"], 30), HEALTH, COUNCIL).await;
    let older = create_referral(&s, &subject).await.name;
    s.records()
        .seal_record(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::SealRecordRequest {
                    name: sealed.clone(),
                    reason: "subject at risk from a family member".to_owned(),
                }),
        )
        .await
        .unwrap();
    let newer = create_referral(&s, &subject).await.name;
    let newest = create_referral(&s, &subject).await.name;

    let sealed_id = sealed.trim_start_matches("records/");
    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = list_page(&s, "sw-1", list_request(&subject, 1, &token))
            .await
            .unwrap();
        assert_eq!(page.records.len(), 1, "no page is empty: {seen:?}");
        seen.push(page.records[0].name.clone());
        token = page.next_page_token;
        assert!(!token.contains(sealed_id));
        assert!(!token.contains(&hex_of(sealed_id)), "{token}");
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, [newest, newer, older]);
    s.stop().await;
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A token altered, made up, or used by another caller or for another
/// listing is refused as INVALID_ARGUMENT naming `page_token`.
#[tokio::test]
async fn page_tokens_are_sealed_to_their_caller_and_listing() {
    let clock = Arc::new(TestClock::default());
    let (s, _record, subject) = three_agencies(Db::Sqlite, clock).await.unwrap();
    for _ in 0..3 {
        create_referral(&s, &subject).await;
    }
    let first = list_page(&s, "sw-1", list_request(&subject, 1, ""))
        .await
        .unwrap();
    let token = first.next_page_token;
    assert!(!token.is_empty());
    // The token works for its caller and listing.
    let second = list_page(&s, "sw-1", list_request(&subject, 1, &token))
        .await
        .unwrap();
    assert_eq!(second.records.len(), 1);
    assert_ne!(second.records[0].name, first.records[0].name);

    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let mut other_purpose = list_request(&subject, 1, &token);
    other_purpose.purpose = pb::Purpose::DirectCare as i32;
    let other_subject = s
        .subjects()
        .create_subject(s.as_staff(COUNCIL, "sw-1", "social_worker").request(
            pb::CreateSubjectRequest {
                subject: Some(crate::helpers::subject(
                    &nhs_number(8),
                    "Sam",
                    "Other",
                    "2014-01-02",
                )),
                purpose: pb::Purpose::DirectCare as i32,
                create_despite_match: false,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap()
        .name;
    let refusals = [
        ("altered", "sw-1", list_request(&subject, 1, &altered)),
        (
            "made up",
            "sw-1",
            list_request(&subject, 1, "MTcwMDAwMDAwMDAwMC94"),
        ),
        (
            "another staff member",
            "sw-2",
            list_request(&subject, 1, &token),
        ),
        ("another purpose", "sw-1", other_purpose),
        (
            "another subject",
            "sw-1",
            list_request(&other_subject, 1, &token),
        ),
    ];
    for (what, principal, request) in refusals {
        let refused = list_page(&s, principal, request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert_eq!(
            violations(&refused),
            [(
                "page_token".to_owned(),
                "is not a token issued to this caller for this listing".to_owned()
            )],
            "{what}"
        );
    }

    // Nor does a token of one listing open another.
    let agencies = s
        .agencies()
        .list_agencies(s.as_operator().request(pb::ListAgenciesRequest {
            page_size: 1,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!agencies.next_page_token.is_empty());
    let refused = s
        .catalog()
        .list_record_classes(s.as_operator().request(pb::ListRecordClassesRequest {
            page_size: 1,
            page_token: agencies.next_page_token,
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    s.stop().await;
}
