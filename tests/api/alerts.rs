//! Alerts: repeated refusals of one staff member reach the IG leads of
//! their agency and of the data's controller, who can acknowledge them.

use accord::api::pb;
use accord::store::EntryFilter;
use tonic::Code;

use crate::helpers::*;

const ADMIN: i32 = pb::Purpose::Administration as i32;

async fn alerts(s: &TestServer, agency: &str, unacknowledged_only: bool) -> Vec<pb::Alert> {
    s.as_auditor(agency, "ig-1")
        .alerts(unacknowledged_only)
        .await
        .unwrap()
}

async fn refused_reads(s: &TestServer, record: &str, principal: &str, times: usize) {
    for _ in 0..times {
        let e = s
            .as_staff("wy-police", principal, "officer")
            .get_record(record, pb::Purpose::CrimePrevention)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
}

async fn repeated_refusals_alert(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    let record = create_referral(&s, &subject).await;
    // A read by the police for crime prevention is refused with its reason.
    council_shares_referrals_for_safeguarding(&s).await;

    // Four refusals raise nothing; the fifth raises one alert to each side.
    refused_reads(&s, &record.name, "pc-9", 4).await;
    assert!(alerts(&s, "leeds-cc", false).await.is_empty());
    refused_reads(&s, &record.name, "pc-9", 1).await;
    let council = alerts(&s, "leeds-cc", false).await;
    assert_eq!(council.len(), 1, "{council:?}");
    let alert = &council[0];
    assert_eq!(alert.kind, pb::AlertKind::RepeatedRefusals as i32);
    assert_eq!(alert.recipient, "agencies/leeds-cc");
    assert_eq!(alert.agency, "agencies/wy-police");
    assert_eq!(alert.principal, "pc-9");
    assert_eq!(alert.subject, subject);
    assert!(
        alert.summary.contains("refused 5 times"),
        "{}",
        alert.summary
    );
    assert!(!alert.acknowledged);
    // It points at the fifth refusal's entry.
    let refusals = s
        .ledger(EntryFilter {
            principal: Some("pc-9".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(alert.entry_index, refusals[4].index);
    let police = alerts(&s, "wy-police", false).await;
    assert_eq!(police.len(), 1);
    assert_eq!(police[0].recipient, "agencies/wy-police");

    // More refusals in the window, or fewer by someone else: no new alert.
    refused_reads(&s, &record.name, "pc-9", 2).await;
    refused_reads(&s, &record.name, "pc-10", 4).await;
    assert_eq!(alerts(&s, "leeds-cc", false).await.len(), 1);

    // The council's IG lead acknowledges it; the police's stays open.
    let acknowledge = |agency: &str, name: &str| {
        s.as_staff(agency, "ig-1", "auditor")
            .request(pb::AcknowledgeAlertRequest {
                purpose: ADMIN,
                name: name.to_owned(),
                note: "spoke to the officer: wrong record number".to_owned(),
            })
    };
    let acked = s
        .audit()
        .acknowledge_alert(acknowledge("leeds-cc", &alert.name))
        .await
        .unwrap()
        .into_inner()
        .alert
        .unwrap();
    assert!(acked.acknowledged);
    assert_eq!(acked.acknowledged_by, "ig-1");
    assert!(acked.acknowledge_note.starts_with("spoke to the officer"));
    assert!(alerts(&s, "leeds-cc", true).await.is_empty());
    assert_eq!(alerts(&s, "wy-police", true).await.len(), 1);

    // Another agency's alert cannot be acknowledged, nor learnt of.
    let e = s
        .audit()
        .acknowledge_alert(acknowledge("wy-police", &alert.name))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = s
        .audit()
        .acknowledge_alert(acknowledge("leeds-cc", "alerts/nope"))
        .await
        .unwrap_err();
    assert_eq!(violations(&e)[0].0, "name");
    // Only auditors read alerts.
    let e = s
        .audit()
        .list_alerts(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::ListAlertsRequest {
                purpose: ADMIN,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    s.stop().await;
}

#[tokio::test]
async fn repeated_refusals_raise_alerts_sqlite() {
    repeated_refusals_alert(Db::Sqlite).await;
}

#[tokio::test]
async fn repeated_refusals_raise_alerts_postgres() {
    repeated_refusals_alert(Db::Postgres).await;
}
