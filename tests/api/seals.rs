//! Sealed records: only the controller sees them, unless an agreement
//! explicitly covers sealed records.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

async fn seal(s: &TestServer, agency: &str, record: &str) -> Result<pb::Record, tonic::Status> {
    s.records()
        .seal_record(
            s.as_staff(agency, "gp-1", "gp")
                .request(pb::SealRecordRequest {
                    name: record.to_owned(),
                    reason: "subject at risk from a family member".to_owned(),
                }),
        )
        .await
        .map(|r| r.into_inner().record.unwrap())
}

async fn sealed_records(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, record, subject)) = three_agencies(db, clock).await else {
        return;
    };
    agree_terms(&s, safeguarding_terms(&["allergies"], 30), HEALTH, COUNCIL).await;
    assert!(
        council_reads(&s, &record, pb::Purpose::Safeguarding)
            .await
            .is_ok()
    );

    // The police, with no agreement with the trust, cannot tell the record
    // from an unknown one; the council, a party to an agreement covering
    // it, is told it is not the controller.
    assert_unknown(&seal(&s, POLICE, &record).await.unwrap_err(), &record);
    let foreign = seal(&s, COUNCIL, &record).await.unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    assert_eq!(reason(&foreign), "NOT_CONTROLLER");
    let sealed = seal(&s, HEALTH, &record).await.unwrap();
    assert!(sealed.sealed);
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "RECORD_SEALED");
    assert_eq!(
        reason(&seal(&s, HEALTH, &record).await.unwrap_err()),
        "ALREADY_SEALED"
    );
    let unsealed = s
        .records()
        .unseal_record(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::UnsealRecordRequest {
                    name: record.clone(),
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert!(!unsealed.sealed);
    assert!(
        council_reads(&s, &record, pb::Purpose::Safeguarding)
            .await
            .is_ok()
    );

    // Sealing all of the trust's records about the subject; only an
    // agreement that covers sealed records still shares them.
    s.records()
        .seal_subject_records(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::SealSubjectRecordsRequest {
                subject: subject.clone(),
                reason: "protected identity".to_owned(),
            },
        ))
        .await
        .unwrap();
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "RECORD_SEALED");
    let mut covering = safeguarding_terms(&["allergies", "long_term_conditions"], 30);
    covering.covers_sealed = true;
    covering.consumers[0].grants[0].role = "safeguarding_lead".to_owned();
    agree_terms(&s, covering, HEALTH, COUNCIL).await;
    let lead = s
        .as_staff(COUNCIL, "lead-1", "safeguarding_lead")
        .get_record(&record, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    assert!(lead.sealed);
    assert_eq!(lead.fields.len(), 2);
    let own = s
        .as_staff(HEALTH, "gp-1", "gp")
        .get_record(&record, pb::Purpose::DirectCare)
        .await
        .unwrap();
    assert_eq!(
        own.fields.len(),
        4,
        "the controller sees its sealed record in full"
    );
    let unseal = || async {
        s.records()
            .unseal_subject_records(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
                pb::UnsealSubjectRecordsRequest {
                    subject: subject.clone(),
                },
            ))
            .await
    };
    unseal().await.unwrap();
    assert_eq!(reason(&unseal().await.unwrap_err()), "NOT_SEALED");
    assert!(
        council_reads(&s, &record, pb::Purpose::Safeguarding)
            .await
            .is_ok()
    );
    s.stop().await;
}

#[tokio::test]
async fn sealed_records_sqlite() {
    sealed_records(Db::Sqlite).await;
}

#[tokio::test]
async fn sealed_records_postgres() {
    sealed_records(Db::Postgres).await;
}
