//! Dry-run access checks, and lists of a subject's records across
//! controllers.

use std::sync::Arc;

use accord::api::pb;

use crate::agreements::{
    COUNCIL, HEALTH, POLICE, agree_terms, last_entry, safeguarding_terms, three_agencies,
};
use crate::helpers::*;
use crate::records::create_referral;

async fn check(
    s: &TestServer,
    agency: &str,
    record: &str,
    purpose: pb::Purpose,
) -> pb::CheckAccessResponse {
    s.records()
        .check_access(as_caller(
            pb::CheckAccessRequest {
                name: record.to_owned(),
                purpose: purpose as i32,
                break_glass_reason: String::new(),
            },
            agency,
            "sw-1",
            "social_worker",
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn list(s: &TestServer, agency: &str, subject: &str) -> Vec<pb::Record> {
    s.records()
        .list_records(as_caller(
            pb::ListRecordsRequest {
                subject: subject.to_owned(),
                purpose: pb::Purpose::Safeguarding as i32,
                ..Default::default()
            },
            agency,
            "sw-1",
            "social_worker",
        ))
        .await
        .unwrap()
        .into_inner()
        .records
}

async fn checks_and_lists(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, record, subject)) = three_agencies(db, clock).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;

    // Without an agreement: the check says why, and is audited as a check.
    let refused = check(&s, COUNCIL, &record, pb::Purpose::Safeguarding).await;
    assert!(!refused.permitted);
    assert_eq!(refused.reason_code, "NO_AGREEMENT");
    assert!(refused.fields.is_empty());
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.action, "/accord.v1.RecordService/CheckAccess");
    assert_eq!(entry.draft.outcome, accord::ledger::Outcome::Permitted);
    assert_eq!(entry.draft.reason_code, "NO_AGREEMENT");
    assert!(entry.draft.fields.is_empty(), "a check discloses nothing");

    // The council lists only its own referral; the police nothing.
    let own = list(&s, COUNCIL, &subject).await;
    let names: Vec<&str> = own.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [referral.name.as_str()]);
    assert!(list(&s, POLICE, &subject).await.is_empty());

    let agreement = agree_terms(
        &s,
        safeguarding_terms(&["allergies", "long_term_conditions"], 30),
        HEALTH,
        COUNCIL,
    )
    .await;
    let permitted = check(&s, COUNCIL, &record, pb::Purpose::Safeguarding).await;
    assert!(permitted.permitted, "{permitted:?}");
    assert_eq!(permitted.fields, ["allergies", "long_term_conditions"]);
    assert_eq!(permitted.agreements, [format!("{}@1", agreement.name)]);
    assert!(
        permitted
            .lawful_bases
            .contains(&"dpa_2018_sch_1_para_18".to_owned())
    );
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.grounds.agreements, permitted.agreements);
    assert!(entry.draft.fields.is_empty());
    let wrong_purpose = check(&s, COUNCIL, &record, pb::Purpose::Research).await;
    assert_eq!(wrong_purpose.reason_code, "PURPOSE_NOT_PERMITTED");
    let own_check = check(&s, HEALTH, &record, pb::Purpose::DirectCare).await;
    assert!(own_check.permitted);
    assert_eq!(own_check.fields.len(), 4);
    assert!(own_check.agreements.is_empty());

    // Now the council's list holds the trust's summary too, minimised, and
    // the entry names the agreement and the trust as controller.
    let both = list(&s, COUNCIL, &subject).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let summary = both.iter().find(|r| r.name == record).unwrap();
    let mut fields: Vec<&str> = summary.fields.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["allergies", "long_term_conditions"]);
    let mine = both.iter().find(|r| r.name == referral.name).unwrap();
    assert_eq!(mine.fields.len(), 4);
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.controller, HEALTH);
    assert_eq!(
        entry.draft.grounds.agreements,
        [format!("{}@1", agreement.name)]
    );
    assert!(list(&s, POLICE, &subject).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn checks_and_lists_sqlite() {
    checks_and_lists(Db::Sqlite).await;
}

#[tokio::test]
async fn checks_and_lists_postgres() {
    checks_and_lists(Db::Postgres).await;
}
