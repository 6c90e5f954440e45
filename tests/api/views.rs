//! The joined-up view of a person (GetSubjectView): what the caller may
//! see across agencies in one audited call, minimised as GetRecord.

use std::collections::HashMap;
use std::sync::Arc;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

const CONTACT: &str = "recordClasses/contact.record";

fn contact(channel: &str, topic: &str, days_ago: i64) -> HashMap<String, pb::FieldValue> {
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    HashMap::from([
        ("channel".to_owned(), code_value(channel)),
        ("direction".to_owned(), code_value("inbound")),
        ("topic".to_owned(), string_value(topic)),
        ("officer".to_owned(), string_value("J. Bloggs")),
        (
            "contact_time".to_owned(),
            pb::FieldValue {
                kind: Some(pb::field_value::Kind::TimestampValue(
                    prost_types::Timestamp {
                        seconds: at.timestamp(),
                        nanos: 0,
                    },
                )),
            },
        ),
    ])
}

async fn view(
    s: &TestServer,
    agency: &str,
    role: &str,
    subject: &str,
) -> Result<pb::SubjectView, tonic::Status> {
    s.subjects()
        .get_subject_view(
            s.as_staff(agency, "staff-1", role)
                .request(pb::GetSubjectViewRequest {
                    subject: subject.to_owned(),
                    purpose: pb::Purpose::Safeguarding as i32,
                }),
        )
        .await
        .map(|r| r.into_inner().view.unwrap())
}

fn topics(records: &[pb::Record]) -> Vec<String> {
    records
        .iter()
        .map(
            |r| match r.fields.get("topic").and_then(|v| v.kind.clone()) {
                Some(pb::field_value::Kind::StringValue(t)) => t,
                other => panic!("no topic: {other:?}"),
            },
        )
        .collect()
}

async fn one_view_shows_what_the_caller_may_see(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, summary, sam)) = three_agencies(db, clock).await else {
        return;
    };
    let gp = s.as_staff(HEALTH, "gp-1", "gp");
    // The trust logs two contacts, the later one first.
    gp.create_record(
        &sam,
        CONTACT,
        contact("telephone", "repeat prescription", 2),
        pb::Purpose::DirectCare,
    )
    .await
    .unwrap();
    gp.create_record(
        &sam,
        CONTACT,
        contact("face_to_face", "asthma review", 9),
        pb::Purpose::DirectCare,
    )
    .await
    .unwrap();
    let worker = s.as_staff(COUNCIL, "sw-1", "social_worker");
    let council_contact = worker
        .create_record(
            &sam,
            CONTACT,
            contact("letter", "school attendance", 5),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    let referral = create_referral(&s, &sam).await;
    let agreement = agree_terms(&s, safeguarding_terms(&["allergies"], 30), HEALTH, COUNCIL).await;

    // The council sees the trust's demographics (with their source), its
    // own records in full, the trust's summary minimised to what the
    // agreement shares, and only its own contact.
    let council = view(&s, COUNCIL, "social_worker", &sam).await.unwrap();
    assert_eq!(council.subject, sam);
    let fields: Vec<&str> = council
        .demographics
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "given_name",
            "family_name",
            "birth_date",
            "gender",
            "postcode"
        ]
    );
    assert!(
        council
            .demographics
            .iter()
            .all(|d| d.source == format!("agencies/{HEALTH}") && !d.conflicting)
    );
    assert_eq!(council.identifiers.len(), 1);
    assert_eq!(
        council.identifiers[0].linked_by,
        format!("agencies/{HEALTH}")
    );
    let mut names: Vec<&str> = council.records.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = [summary.as_str(), referral.name.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected);
    let shared = council.records.iter().find(|r| r.name == summary).unwrap();
    assert_eq!(shared.fields.keys().collect::<Vec<_>>(), ["allergies"]);
    assert_eq!(shared.shared_under, [format!("{}@1", agreement.name)]);
    assert_eq!(topics(&council.contacts), ["school attendance"]);
    assert!(!council.records_truncated);

    // One entry records it all: the subject, each record at its version,
    // the fields, and the agreement relied on.
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(
        entry.draft.action,
        "/accord.v1.SubjectService/GetSubjectView"
    );
    assert_eq!(entry.draft.subject, sam);
    for record in [&summary, &referral.name, &council_contact.name] {
        assert!(
            entry.draft.records.contains(&format!("{record}@1")),
            "{record} missing from {:?}",
            entry.draft.records
        );
    }
    assert!(entry.draft.fields.contains(&"allergies".to_owned()));
    assert!(entry.draft.fields.contains(&"family_name".to_owned()));
    assert!(
        !entry
            .draft
            .fields
            .contains(&"current_medication".to_owned())
    );
    assert_eq!(
        entry.draft.grounds.agreements,
        [format!("{}@1", agreement.name)]
    );
    assert_eq!(entry.draft.controller, HEALTH);

    // The trust sees its own contacts in the order they happened.
    let trust = view(&s, HEALTH, "gp", &sam).await.unwrap();
    assert_eq!(
        topics(&trust.contacts),
        ["asthma review", "repeat prescription"]
    );
    assert_eq!(
        trust.records.len(),
        1,
        "its summary; not the council's referral"
    );

    // The police may resolve the person but read nothing of theirs.
    let police = view(&s, POLICE, "officer", &sam).await.unwrap();
    assert!(police.records.is_empty() && police.contacts.is_empty());
    let entry = last_entry(&s, POLICE).await;
    assert!(entry.draft.records.is_empty(), "{entry:?}");
    assert_eq!(
        entry.draft.controller, HEALTH,
        "the trust's auditors see its demographics disclosed"
    );

    // A protected identity is not found at all.
    s.records()
        .seal_subject_records(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::SealSubjectRecordsRequest {
                subject: sam.clone(),
                reason: "protected identity".to_owned(),
            },
        ))
        .await
        .unwrap();
    let hidden = view(&s, POLICE, "officer", &sam).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let bad = view(&s, POLICE, "officer", "subjects/nope")
        .await
        .unwrap_err();
    assert_eq!(violations(&bad)[0].0, "subject");
    s.stop().await;
}

#[tokio::test]
async fn one_view_shows_what_the_caller_may_see_sqlite() {
    one_view_shows_what_the_caller_may_see(Db::Sqlite).await;
}

#[tokio::test]
async fn one_view_shows_what_the_caller_may_see_postgres() {
    one_view_shows_what_the_caller_may_see(Db::Postgres).await;
}
