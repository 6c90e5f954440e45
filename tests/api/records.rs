use std::collections::HashMap;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

fn update(record: &pb::Record, etag: &str, reason: &str) -> pb::UpdateRecordRequest {
    pb::UpdateRecordRequest {
        record: Some(pb::Record {
            name: record.name.clone(),
            etag: etag.to_owned(),
            fields: referral_fields(reason),
            ..Default::default()
        }),
        purpose: pb::Purpose::Safeguarding as i32,
    }
}

async fn versions_and_conflicts(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    let v1 = create_referral(&s, &subject).await;
    assert_eq!(v1.version, 1);
    assert_eq!(v1.controller, "agencies/leeds-cc");

    // Two writers race from the same version: exactly one wins.
    let (mut ca, mut cb) = (s.records(), s.records());
    let (a, b) = tokio::join!(
        ca.update_record(
            s.as_staff("leeds-cc", "sw-1", "social_worker")
                .request(update(&v1, &v1.etag, "writer A"))
        ),
        cb.update_record(
            s.as_staff("leeds-cc", "sw-2", "social_worker")
                .request(update(&v1, &v1.etag, "writer B"))
        ),
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w.into_inner().record.unwrap(), l),
        other => panic!("expected one winner and one conflict, got {other:?}"),
    };
    assert_eq!(loser.code(), Code::Aborted, "{loser:?}");
    assert_eq!(reason(&loser), "STALE_ETAG");
    assert_eq!(winner.version, 2);

    // History is kept: version 1 still reads as it was.
    let sw = s.as_staff(COUNCIL, "sw-1", "social_worker");
    let get = |version: i64| sw.get_record_version(&v1.name, version, pb::Purpose::Safeguarding);
    let old = get(1).await.unwrap();
    assert_eq!(
        old.fields["reason"],
        string_value("bruising noticed at school")
    );
    let latest = get(0).await.unwrap();
    assert_eq!(latest.version, 2);
    assert_eq!(latest.etag, winner.etag);
    assert_eq!(get(3).await.unwrap_err().code(), Code::NotFound);

    // The stale etag still fails after the race.
    let stale = s
        .records()
        .update_record(
            s.as_staff("leeds-cc", "sw-1", "social_worker")
                .request(update(&v1, &v1.etag, "late")),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Another agency can neither change nor read it.
    let foreign = s
        .records()
        .update_record(s.as_staff("wy-police", "pc-1", "officer").request(update(
            &v1,
            &winner.etag,
            "police edit",
        )))
        .await
        .unwrap_err();
    // Without an agreement covering referrals, the police cannot tell it
    // from an unknown record.
    assert_unknown(&foreign, &v1.name);
    let read = s
        .as_staff("wy-police", "pc-1", "officer")
        .get_record(&v1.name, pb::Purpose::CrimePrevention)
        .await
        .unwrap_err();
    assert_unknown(&read, &v1.name);

    // ListRecords shows the controller its records and the police none.
    let list = |agency: &'static str| {
        let mut c = s.records();
        let request = s
            .as_staff(agency, "u-1", "staff")
            .request(pb::ListRecordsRequest {
                subject: subject.clone(),
                purpose: pb::Purpose::DirectCare as i32,
                page_size: 0,
                page_token: String::new(),
            });
        async move { c.list_records(request).await.unwrap().into_inner() }
    };
    assert_eq!(list("leeds-cc").await.records.len(), 1);
    assert_eq!(list("wy-police").await.records.len(), 0);

    // A record about a subject nobody registered is refused as invalid,
    // with one entry for the call, and nothing is written.
    let size = s.ledger(Default::default()).await.len();
    let unknown = accord::domain::SubjectId::generate().resource_name();
    let err = s
        .records()
        .create_record(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::CreateRecordRequest {
                record: Some(pb::Record {
                    subject: unknown.clone(),
                    record_class: CLASS.to_owned(),
                    fields: referral_fields("no such person"),
                    ..Default::default()
                }),
                purpose: pb::Purpose::Safeguarding as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        violations(&err),
        [(
            "record.subject".to_owned(),
            format!("{unknown} does not exist")
        )]
    );
    let entries = s.ledger(Default::default()).await;
    assert_eq!(entries.len(), size + 1, "one entry for the refused call");
    let refused = entries.last().unwrap();
    assert_eq!(
        refused.draft.action,
        "/accord.v1.RecordService/CreateRecord"
    );
    assert_eq!(refused.draft.outcome, accord::ledger::Outcome::Invalid);
    assert!(refused.draft.records.is_empty(), "{:?}", refused.draft);
    s.stop().await;
}

#[tokio::test]
async fn records_are_versioned_and_stale_etags_conflict_sqlite() {
    versions_and_conflicts(Db::Sqlite).await;
}

#[tokio::test]
async fn records_are_versioned_and_stale_etags_conflict_postgres() {
    versions_and_conflicts(Db::Postgres).await;
}

#[tokio::test]
async fn every_kind_of_field_violation_is_reported_at_once() {
    let (s, subject) = server_with_subject(Db::Sqlite).await.unwrap();
    let fields = HashMap::from([
        // wrong type
        ("referral_date".to_owned(), string_value("2026-11-20")),
        // code not in the list
        ("referral_source".to_owned(), code_value("neighbour")),
        // string too long (max 4000)
        ("reason".to_owned(), string_value(&"x".repeat(4001))),
        // unknown field
        ("colour".to_owned(), string_value("red")),
        // invalid date
        ("decision_date".to_owned(), date_value("2026-02-30")),
        // no value set
        ("decision".to_owned(), pb::FieldValue { kind: None }),
        // "service" (required) is missing
    ]);
    let err = s
        .records()
        .create_record(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::CreateRecordRequest {
                record: Some(pb::Record {
                    subject: subject.clone(),
                    record_class: CLASS.to_owned(),
                    fields,
                    ..Default::default()
                }),
                purpose: pb::Purpose::Safeguarding as i32,
            },
        ))
        .await
        .unwrap_err();
    let v = violations(&err);
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "record.fields[colour]",
            "record.fields[decision]",
            "record.fields[decision_date]",
            "record.fields[reason]",
            "record.fields[referral_date]",
            "record.fields[referral_source]",
            "record.fields[service]",
        ],
        "{v:?}"
    );
    assert!(v[0].1.contains("not a field"), "{v:?}");
    assert!(v[3].1.contains("at most 4000"), "{v:?}");
    assert!(v[5].1.contains("not in the code list"), "{v:?}");
    assert_eq!(v[6].1, "is required");

    // Nothing was written: the subject still has no records.
    let list = s
        .records()
        .list_records(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::ListRecordsRequest {
                subject,
                purpose: 1,
                page_size: 10,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(list.records.is_empty());

    // Unknown record class and oversized messages are refused clearly.
    let err = s
        .records()
        .create_record(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::CreateRecordRequest {
                record: Some(pb::Record {
                    subject: "subjects/nope".into(),
                    record_class: "recordClasses/no.such".into(),
                    fields: HashMap::from([(
                        "reason".to_owned(),
                        string_value(&"y".repeat(100 * 1024)),
                    )]),
                    ..Default::default()
                }),
                purpose: 1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::ResourceExhausted,
        "oversized message: {err:?}"
    );
    assert!(err.message().contains("too large"), "{}", err.message());

    // Refused before any handler saw it, it is still in the ledger.
    let entries = s
        .ledger(accord::store::EntryFilter {
            outcome: Some(accord::ledger::Outcome::Invalid),
            ..Default::default()
        })
        .await;
    let oversized = entries
        .iter()
        .find(|e| e.draft.reason_code == "MESSAGE_TOO_LARGE")
        .expect("an entry for the oversized message");
    assert_eq!(
        oversized.draft.action,
        "/accord.v1.RecordService/CreateRecord"
    );
    assert_eq!(oversized.draft.agency, "leeds-cc");
    s.stop().await;
}
