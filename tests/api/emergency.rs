//! Emergency ("break the glass") access: it overrides a missing consent or
//! an objection, never a missing agreement; it is marked in the ledger and
//! alerts the controller, whose IG lead acknowledges it.

use std::sync::Arc;

use accord::api::pb;

use crate::helpers::*;

const REASON: &str = "found unconscious at home; suspected anaphylaxis";

async fn read(
    s: &TestServer,
    agency: &str,
    record: &str,
    purpose: pb::Purpose,
    reason: &str,
) -> Result<pb::Record, tonic::Status> {
    s.as_staff(agency, "staff-7", "social_worker")
        .get_record_with(record, 0, purpose, reason)
        .await
}

async fn alerts(s: &TestServer, agency: &str) -> Vec<pb::Alert> {
    s.as_ig_lead(agency).alerts(false).await.unwrap()
}

async fn break_the_glass(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, record, subject)) = three_agencies(db, clock).await else {
        return;
    };
    agree(
        &s,
        &Share {
            provider: HEALTH,
            consumer: COUNCIL,
            role: "social_worker",
            class: "health.summary",
            fields: &["allergies", "current_medication"],
            purposes: &[pb::Purpose::DirectCare, pb::Purpose::Emergency],
            consent: pb::ConsentRequirement::Required,
            days: 30,
        },
    )
    .await;
    s.consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::RecordConsentRequest {
                    consent: Some(pb::Consent {
                        subject: subject.clone(),
                        kind: pb::ConsentKind::Objection as i32,
                        channel: pb::ConsentChannel::Post as i32,
                        ..Default::default()
                    }),
                }),
        )
        .await
        .unwrap();

    let refused = read(&s, COUNCIL, &record, pb::Purpose::DirectCare, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "OBJECTION_RECORDED");

    // Emergency access always says why.
    let unexplained = read(&s, COUNCIL, &record, pb::Purpose::Emergency, "")
        .await
        .unwrap_err();
    let unexplained = violations(&unexplained);
    assert_eq!(unexplained[0].0, "break_glass_reason");
    assert!(
        unexplained[0].1.contains("PURPOSE_EMERGENCY"),
        "{unexplained:?}"
    );
    let check = s
        .records()
        .check_access(s.as_staff(COUNCIL, "sw-1", "social_worker").request(
            pb::CheckAccessRequest {
                name: record.clone(),
                purpose: pb::Purpose::Emergency as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&check)[0].0, "break_glass_reason");

    let bad = read(&s, COUNCIL, &record, pb::Purpose::DirectCare, REASON)
        .await
        .unwrap_err();
    assert_eq!(violations(&bad)[0].0, "break_glass_reason");

    // Breaking the glass overrides the objection, within the agreement's
    // field grants, and says so in the ledger.
    let shared = read(&s, COUNCIL, &record, pb::Purpose::Emergency, REASON)
        .await
        .unwrap();
    let mut fields: Vec<&str> = shared.fields.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["allergies", "current_medication"]);
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.grounds.break_glass, REASON);
    assert_eq!(entry.draft.outcome, accord::ledger::Outcome::Permitted);

    // Never without an agreement.
    let police = s
        .as_staff(POLICE, "pc-1", "officer")
        .break_glass(&record, REASON)
        .await
        .unwrap_err();
    // Without an agreement, not even an emergency tells that it exists.
    assert_unknown(&police, &record);

    // Auditors find it with the emergency filter.
    let emergencies = s
        .audit()
        .list_entries(
            s.as_staff(HEALTH, "dpo-1", "auditor")
                .request(pb::ListEntriesRequest {
                    purpose: pb::Purpose::Administration as i32,
                    break_glass_only: true,
                    ..Default::default()
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(emergencies.len(), 1, "{emergencies:?}");
    assert_eq!(emergencies[0].break_glass_reason, REASON);
    assert_eq!(emergencies[0].agency, format!("agencies/{COUNCIL}"));

    // The controller is alerted (not the reader's agency), and its IG lead
    // acknowledges the alert.
    let raised = alerts(&s, HEALTH).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = &raised[0];
    assert_eq!(alert.kind, pb::AlertKind::BreakGlass as i32);
    assert_eq!(alert.subject, subject);
    assert_eq!(alert.entry_index, entry.index);
    assert!(
        alert.summary.contains("over the subject's objection"),
        "{}",
        alert.summary
    );
    assert!(alert.summary.contains(REASON), "{}", alert.summary);
    assert!(alerts(&s, COUNCIL).await.is_empty());
    let acknowledged = s
        .audit()
        .acknowledge_alert(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::AcknowledgeAlertRequest {
                purpose: pb::Purpose::Administration as i32,
                name: alert.name.clone(),
                note: "spoke to the social worker: a genuine emergency".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .alert
        .unwrap();
    assert!(acknowledged.acknowledged);
    assert_eq!(acknowledged.acknowledged_by, "ig-1");
    s.stop().await;
}

#[tokio::test]
async fn break_the_glass_sqlite() {
    break_the_glass(Db::Sqlite).await;
}

#[tokio::test]
async fn break_the_glass_postgres() {
    break_the_glass(Db::Postgres).await;
}
