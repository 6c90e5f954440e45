//! Revocation fan-out: when the ground on which agencies received data
//! ends, exactly those agencies are asked to review what they hold, told
//! from the ledger what they received, and acknowledge them with what they
//! did; unacknowledged reviews are
//! alerted to both IG leads.

use std::sync::Arc;
use std::time::Duration;

use accord::api::pb;
use accord::store::EntryFilter;
use tonic::Code;

use crate::helpers::*;

/// The council's referrals, shared with police officers for safeguarding,
/// without consent.
const POLICE_SHARE: Share<'static> = Share {
    provider: COUNCIL,
    consumer: POLICE,
    role: "officer",
    class: "social_care.referral",
    fields: &["reason"],
    purposes: &[pb::Purpose::Safeguarding],
    consent: pb::ConsentRequirement::NotRequired,
    days: 30,
};

async fn reviews(s: &TestServer, agency: &str) -> Vec<pb::Review> {
    s.events()
        .list_reviews(
            s.as_ig_lead(agency)
                .request(pb::ListReviewsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .reviews
}

/// The reviews asked of `agency` once there are `n` (waiting at most 20
/// seconds for the fan-out).
async fn reviews_when(s: &TestServer, agency: &str, n: usize) -> Vec<pb::Review> {
    for _ in 0..200 {
        let found = reviews(s, agency).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{agency} was not asked for {n} reviews within 20 seconds");
}

async fn acknowledge(
    s: &TestServer,
    agency: &str,
    roles: &str,
    name: &str,
) -> Result<pb::Review, tonic::Status> {
    s.events()
        .acknowledge_review(s.as_staff(agency, "ig-1", roles).request(
            pb::AcknowledgeReviewRequest {
                name: name.to_owned(),
                outcome: pb::ReviewOutcome::Deleted as i32,
                note: "removed from the case file".to_owned(),
            },
        ))
        .await
        .map(|r| r.into_inner().review.unwrap())
}

/// A consent withdrawn: the health trust, whose GPs read the referral
/// under it, is asked to review, with each read from the ledger (who,
/// when, which version, which fields); the police, who read it under an
/// agreement that needs no consent, are not. The trust's IG lead hears of
/// it on the trust's default subscription, and acknowledges it once; the
/// council, whose data it is, can read the review and the acknowledgement.
async fn a_withdrawal_asks_exactly_its_recipients(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;
    agree(&s, &GP_SHARE).await;
    agree(&s, &POLICE_SHARE).await;
    let given = s
        .consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::RecordConsentRequest {
                    consent: Some(pb::Consent {
                        subject: subject.clone(),
                        kind: pb::ConsentKind::Consent as i32,
                        purposes: vec![pb::Purpose::DirectCare as i32],
                        recipients: vec![format!("agencies/{HEALTH}")],
                        channel: pb::ConsentChannel::FaceToFace as i32,
                        ..Default::default()
                    }),
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap();
    for gp in ["gp-1", "gp-2"] {
        s.as_staff(HEALTH, gp, "gp")
            .get_record(&referral.name, pb::Purpose::DirectCare)
            .await
            .unwrap();
    }
    s.as_staff(POLICE, "pc-1", "officer")
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    s.consents()
        .withdraw_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::WithdrawConsentRequest {
                    name: given.name.clone(),
                    reason: "the patient changed their mind".to_owned(),
                }),
        )
        .await
        .unwrap();

    let asked = reviews_when(&s, HEALTH, 1).await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    let review = &asked[0];
    assert_eq!(review.recipient, format!("agencies/{HEALTH}"));
    assert_eq!(review.controller, format!("agencies/{COUNCIL}"));
    assert_eq!(review.subject, subject);
    assert_eq!(review.cause, pb::ReviewCause::ConsentWithdrawn as i32);
    assert_eq!(review.ground, given.name);
    assert!(!review.acknowledged);
    let reads = s
        .ledger(EntryFilter {
            agency: Some(HEALTH.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action == "/accord.v1.RecordService/GetRecord")
        .collect::<Vec<_>>();
    let received: Vec<(i64, &str, Vec<String>, Vec<String>)> = review
        .received
        .iter()
        .map(|r| {
            let mut fields = r.fields.clone();
            fields.sort();
            (
                r.entry_index,
                r.principal.as_str(),
                r.records.clone(),
                fields,
            )
        })
        .collect();
    let version = format!("{}@1", referral.name);
    let fields = vec!["referral_date".to_owned(), "service".to_owned()];
    assert_eq!(
        received,
        vec![
            (
                reads[0].index,
                "gp-1",
                vec![version.clone()],
                fields.clone()
            ),
            (
                reads[1].index,
                "gp-2",
                vec![version.clone()],
                fields.clone()
            ),
        ]
    );
    assert!(
        review
            .received
            .iter()
            .all(|r| r.purpose == pb::Purpose::DirectCare as i32)
    );
    // Nobody else was asked.
    assert!(reviews(&s, POLICE).await.is_empty());
    assert!(reviews(&s, COUNCIL).await.is_empty());
    // The fan-out is in the ledger, naming the review.
    let fanout = s
        .ledger(EntryFilter {
            subject: Some(subject.clone()),
            ..Default::default()
        })
        .await
        .into_iter()
        .find(|e| e.draft.action == accord::service::FANOUT_ACTION)
        .expect("the fan-out's entry");
    assert_eq!(fanout.draft.records, vec![review.name.clone()]);

    // The trust hears of it on its default subscription, for its IG lead;
    // the police's stays quiet.
    let default_of = |agency: &'static str| {
        let s = &s;
        async move {
            s.events()
                .list_subscriptions(
                    s.as_ig_lead(agency)
                        .request(pb::ListSubscriptionsRequest::default()),
                )
                .await
                .unwrap()
                .into_inner()
                .default_subscription
                .unwrap()
        }
    };
    let default = default_of(HEALTH).await;
    assert_eq!(default.kinds, vec![pb::EventKind::ReviewRequired as i32]);
    assert_eq!(default.role, "ig_lead");
    let told = s
        .events()
        .list_events(s.as_ig_lead(HEALTH).request(pb::ListEventsRequest {
            subscription: default.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let told: Vec<(i32, &str)> = told.iter().map(|e| (e.kind, e.resource.as_str())).collect();
    assert_eq!(
        told,
        vec![(pb::EventKind::ReviewRequired as i32, review.name.as_str())]
    );
    let police_default = default_of(POLICE).await;
    let quiet = s
        .events()
        .list_events(s.as_ig_lead(POLICE).request(pb::ListEventsRequest {
            subscription: police_default.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(quiet.events.is_empty());
    let undeletable = s
        .events()
        .delete_subscription(s.as_ig_lead(HEALTH).request(pb::DeleteSubscriptionRequest {
            name: default.name.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(undeletable.code(), Code::FailedPrecondition);

    // Answered once, by the trust's IG lead; seen by the council too.
    let not_lead = acknowledge(&s, HEALTH, "gp", &review.name)
        .await
        .unwrap_err();
    assert_eq!(not_lead.code(), Code::PermissionDenied);
    let not_theirs = acknowledge(&s, POLICE, "ig_lead", &review.name)
        .await
        .unwrap_err();
    assert_eq!(not_theirs.code(), Code::NotFound);
    let acknowledged = acknowledge(&s, HEALTH, "ig_lead", &review.name)
        .await
        .unwrap();
    assert!(acknowledged.acknowledged);
    assert_eq!(acknowledged.outcome, pb::ReviewOutcome::Deleted as i32);
    assert_eq!(acknowledged.acknowledged_by, "ig-1");
    let twice = acknowledge(&s, HEALTH, "ig_lead", &review.name)
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let seen = s
        .events()
        .get_review(s.as_ig_lead(COUNCIL).request(pb::GetReviewRequest {
            name: review.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .review
        .unwrap();
    assert_eq!(seen, acknowledged);
    let hidden = s
        .events()
        .get_review(s.as_ig_lead(POLICE).request(pb::GetReviewRequest {
            name: review.name.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    s.stop().await;
}

/// An agreement suspended: the police, who read under it, are asked to
/// review; left unacknowledged past the period, both IG leads are alerted,
/// once.
async fn an_unacknowledged_review_is_alerted_to_both_sides(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock.clone()).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;
    let agreement = agree(&s, &POLICE_SHARE).await;
    s.as_staff(POLICE, "pc-1", "officer")
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    s.agreements()
        .suspend_agreement(s.as_ig_lead(COUNCIL).request(pb::SuspendAgreementRequest {
            name: agreement.name.clone(),
            reason: "a data breach is being investigated".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let asked = reviews_when(&s, POLICE, 1).await;
    assert_eq!(asked[0].cause, pb::ReviewCause::AgreementSuspended as i32);
    assert_eq!(asked[0].ground, format!("{}@1", agreement.name));
    assert!(reviews(&s, HEALTH).await.is_empty());

    clock.advance(chrono::Duration::days(15));
    let overdue = |agency: &'static str| {
        let s = &s;
        async move {
            s.as_ig_lead(agency)
                .alerts(false)
                .await
                .unwrap()
                .into_iter()
                .filter(|a| a.kind == pb::AlertKind::ReviewOverdue as i32)
                .count()
        }
    };
    let mut alerted = (0, 0);
    for _ in 0..300 {
        alerted = (overdue(POLICE).await, overdue(COUNCIL).await);
        if alerted == (1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerted, (1, 1), "both IG leads are alerted, once");
    assert_eq!(overdue(HEALTH).await, 0);
    s.stop().await;
}

/// A record corrected asks those who received an earlier version; sealed,
/// it asks everyone who received it; an objection asks those who read on
/// consent, within its scope.
async fn corrections_seals_and_objections_ask_their_recipients(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;
    agree(&s, &POLICE_SHARE).await;
    agree(&s, &GP_SHARE).await;
    let officer = s.as_staff(POLICE, "pc-1", "officer");
    officer
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    let corrected = s
        .records()
        .update_record(s.as_staff(COUNCIL, "sw-1", "social_worker").request(
            pb::UpdateRecordRequest {
                record: Some(pb::Record {
                    name: referral.name.clone(),
                    etag: referral.etag.clone(),
                    fields: referral_fields("bruising noticed at school; seen by the nurse"),
                    ..Default::default()
                }),
                purpose: pb::Purpose::Safeguarding as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let first = reviews_when(&s, POLICE, 1).await;
    assert_eq!(first[0].cause, pb::ReviewCause::RecordCorrected as i32);
    assert_eq!(first[0].ground, referral.name);
    assert_eq!(
        first[0].received[0].records,
        vec![format!("{}@1", referral.name)]
    );
    officer
        .get_record(&corrected.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    s.records()
        .seal_record(
            s.as_staff(COUNCIL, "sw-1", "social_worker")
                .request(pb::SealRecordRequest {
                    name: referral.name.clone(),
                    reason: "the family has moved to a refuge".to_owned(),
                }),
        )
        .await
        .unwrap();
    let both = reviews_when(&s, POLICE, 2).await;
    let sealed = &both[1];
    assert_eq!(sealed.cause, pb::ReviewCause::RecordSealed as i32);
    let versions: Vec<&str> = sealed
        .received
        .iter()
        .flat_map(|r| r.records.iter().map(String::as_str))
        .collect();
    let expected = [
        format!("{}@1", referral.name),
        format!("{}@2", referral.name),
    ];
    assert_eq!(
        versions,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        reviews(&s, HEALTH).await.is_empty(),
        "the trust never read it"
    );

    // On consent: a GP reads the referral; the subject then objects to
    // the trust receiving anything for direct care.
    s.records()
        .unseal_record(s.as_staff(COUNCIL, "sw-1", "social_worker").request(
            pb::UnsealRecordRequest {
                name: referral.name.clone(),
            },
        ))
        .await
        .unwrap();
    let consent = |kind: pb::ConsentKind| pb::RecordConsentRequest {
        consent: Some(pb::Consent {
            subject: subject.clone(),
            kind: kind as i32,
            purposes: vec![pb::Purpose::DirectCare as i32],
            recipients: vec![format!("agencies/{HEALTH}")],
            channel: pb::ConsentChannel::FaceToFace as i32,
            ..Default::default()
        }),
    };
    s.consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(consent(pb::ConsentKind::Consent)),
        )
        .await
        .unwrap();
    s.as_staff(HEALTH, "gp-1", "gp")
        .get_record(&referral.name, pb::Purpose::DirectCare)
        .await
        .unwrap();
    s.consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(consent(pb::ConsentKind::Objection)),
        )
        .await
        .unwrap();
    let objected = reviews_when(&s, HEALTH, 1).await;
    assert_eq!(objected.len(), 1);
    assert_eq!(objected[0].cause, pb::ReviewCause::ObjectionRecorded as i32);
    assert_eq!(objected[0].received.len(), 1);
    assert_eq!(objected[0].received[0].principal, "gp-1");
    // The police read without consent: the objection asks nothing of them.
    assert_eq!(reviews(&s, POLICE).await.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn corrections_seals_and_objections_ask_their_recipients_sqlite() {
    corrections_seals_and_objections_ask_their_recipients(Db::Sqlite).await;
}

#[tokio::test]
async fn corrections_seals_and_objections_ask_their_recipients_postgres() {
    corrections_seals_and_objections_ask_their_recipients(Db::Postgres).await;
}

#[tokio::test]
async fn a_withdrawal_asks_exactly_its_recipients_sqlite() {
    a_withdrawal_asks_exactly_its_recipients(Db::Sqlite).await;
}

#[tokio::test]
async fn a_withdrawal_asks_exactly_its_recipients_postgres() {
    a_withdrawal_asks_exactly_its_recipients(Db::Postgres).await;
}

/// An agreement's period ends: the expiry is noticed and told (once) to its
/// parties' subscriptions, and those who read under it are asked to review.
async fn an_expired_agreement_is_told_and_reviewed(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock.clone()).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;
    let agreement = agree(&s, &POLICE_SHARE).await;
    s.as_staff(POLICE, "pc-1", "officer")
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    let subscription = s
        .events()
        .create_subscription(s.as_staff(POLICE, "pc-1", "officer").request(
            pb::CreateSubscriptionRequest {
                subscription: Some(pb::Subscription {
                    kinds: vec![pb::EventKind::AgreementExpired as i32],
                    purpose: pb::Purpose::Safeguarding as i32,
                    role: "officer".to_owned(),
                    cohort: pb::SubscriptionCohort::All as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    clock.advance(chrono::Duration::days(31));
    let asked = reviews_when(&s, POLICE, 1).await;
    assert_eq!(asked[0].cause, pb::ReviewCause::AgreementExpired as i32);
    assert_eq!(asked[0].ground, format!("{}@1", agreement.name));
    let told = s
        .events()
        .list_events(
            s.as_staff(POLICE, "pc-1", "officer")
                .request(pb::ListEventsRequest {
                    subscription: subscription.name.clone(),
                    ..Default::default()
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .events;
    let told: Vec<(i32, &str, i64)> = told
        .iter()
        .map(|e| (e.kind, e.resource.as_str(), e.version))
        .collect();
    assert_eq!(
        told,
        vec![(
            pb::EventKind::AgreementExpired as i32,
            agreement.name.as_str(),
            1
        )]
    );
    let noted = s
        .ledger(EntryFilter::default())
        .await
        .into_iter()
        .filter(|e| e.draft.action == accord::service::EXPIRY_ACTION)
        .count();
    assert_eq!(noted, 1);
    s.stop().await;
}

#[tokio::test]
async fn an_expired_agreement_is_told_and_reviewed_sqlite() {
    an_expired_agreement_is_told_and_reviewed(Db::Sqlite).await;
}

#[tokio::test]
async fn an_expired_agreement_is_told_and_reviewed_postgres() {
    an_expired_agreement_is_told_and_reviewed(Db::Postgres).await;
}

#[tokio::test]
async fn an_unacknowledged_review_is_alerted_to_both_sides_sqlite() {
    an_unacknowledged_review_is_alerted_to_both_sides(Db::Sqlite).await;
}

#[tokio::test]
async fn an_unacknowledged_review_is_alerted_to_both_sides_postgres() {
    an_unacknowledged_review_is_alerted_to_both_sides(Db::Postgres).await;
}
