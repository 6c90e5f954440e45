//! Dry-run access checks, and lists of a subject's records across
//! controllers.

use std::sync::Arc;

use accord::api::pb;

use crate::helpers::*;

async fn try_check(
    s: &TestServer,
    agency: &str,
    record: &str,
    purpose: pb::Purpose,
) -> Result<pb::CheckAccessResponse, tonic::Status> {
    s.records()
        .check_access(
            s.as_staff(agency, "sw-1", "social_worker")
                .request(pb::CheckAccessRequest {
                    name: record.to_owned(),
                    purpose: purpose as i32,
                    break_glass_reason: String::new(),
                }),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn check(
    s: &TestServer,
    agency: &str,
    record: &str,
    purpose: pb::Purpose,
) -> pb::CheckAccessResponse {
    try_check(s, agency, record, purpose).await.unwrap()
}

async fn list(s: &TestServer, agency: &str, subject: &str) -> Vec<pb::Record> {
    s.records()
        .list_records(
            s.as_staff(agency, "sw-1", "social_worker")
                .request(pb::ListRecordsRequest {
                    subject: subject.to_owned(),
                    purpose: pb::Purpose::Safeguarding as i32,
                    ..Default::default()
                }),
        )
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

    // Without an agreement the record cannot be told from an unknown one.
    let refused = try_check(&s, COUNCIL, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_unknown(&refused, &record);

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
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.action, "/accord.v1.RecordService/CheckAccess");
    assert_eq!(entry.draft.outcome, accord::ledger::Outcome::Permitted);
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
    assert_eq!(summary.shared_under, [format!("{}@1", agreement.name)]);
    let mine = both.iter().find(|r| r.name == referral.name).unwrap();
    assert_eq!(mine.fields.len(), 4);
    assert!(mine.shared_under.is_empty(), "its own record is not shared");
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

async fn find(
    s: &TestServer,
    agency: &str,
    query: pb::find_subjects_request::Query,
    purpose: pb::Purpose,
) -> Vec<pb::SubjectMatch> {
    s.subjects()
        .find_subjects(s.as_staff(agency, "sw-1", "social_worker").request(
            pb::FindSubjectsRequest {
                query: Some(query),
                purpose: purpose as i32,
                max_results: 10,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .matches
}

fn by_nhs_number() -> pb::find_subjects_request::Query {
    pb::find_subjects_request::Query::Identifier(pb::Identifier {
        system: pb::IdentifierSystem::NhsNumber as i32,
        value: nhs_number(11),
        ..Default::default()
    })
}

fn by_demographics() -> pb::find_subjects_request::Query {
    pb::find_subjects_request::Query::Demographics(pb::Demographics {
        family_name: "Lee".into(),
        birth_date: "2014-06-01".into(),
        given_name: "Sam".into(),
        ..Default::default()
    })
}

async fn subject_discovery(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock).await else {
        return;
    };
    let safeguarding = pb::Purpose::Safeguarding;
    // A search by demographics finds only subjects the caller is tied to
    // or may read records of; an exact identifier resolves an identity.
    assert_eq!(
        find(&s, HEALTH, by_demographics(), safeguarding)
            .await
            .len(),
        1
    );
    assert!(
        find(&s, POLICE, by_demographics(), safeguarding)
            .await
            .is_empty()
    );
    assert!(
        find(&s, COUNCIL, by_demographics(), safeguarding)
            .await
            .is_empty()
    );
    assert_eq!(
        find(&s, POLICE, by_nhs_number(), safeguarding).await.len(),
        1
    );

    agree_terms(&s, safeguarding_terms(&["allergies"], 30), HEALTH, COUNCIL).await;
    let found = find(&s, COUNCIL, by_demographics(), safeguarding).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].subject.as_ref().unwrap().name, subject);
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.action, "/accord.v1.SubjectService/FindSubjects");
    assert_eq!(entry.draft.grounds.agreements.len(), 1, "{entry:?}");
    assert!(
        find(&s, COUNCIL, by_demographics(), pb::Purpose::Research)
            .await
            .is_empty()
    );

    // A protected identity: the trust seals its records about the subject.
    s.records()
        .seal_subject_records(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::SealSubjectRecordsRequest {
                subject: subject.clone(),
                reason: "protected identity".to_owned(),
            },
        ))
        .await
        .unwrap();
    assert!(
        find(&s, POLICE, by_nhs_number(), safeguarding)
            .await
            .is_empty()
    );
    assert!(
        find(&s, COUNCIL, by_demographics(), safeguarding)
            .await
            .is_empty()
    );
    assert_eq!(
        find(&s, HEALTH, by_demographics(), safeguarding)
            .await
            .len(),
        1
    );
    let hidden = s
        .subjects()
        .get_subject(
            s.as_staff(POLICE, "pc-1", "officer")
                .request(pb::GetSubjectRequest {
                    name: subject.clone(),
                    purpose: safeguarding as i32,
                }),
        )
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn subject_discovery_sqlite() {
    subject_discovery(Db::Sqlite).await;
}

#[tokio::test]
async fn subject_discovery_postgres() {
    subject_discovery(Db::Postgres).await;
}

/// What the police are told reading `name` (GetRecord, then CheckAccess),
/// with the request ids taken out, and the entries written for the two
/// calls.
async fn police_probe(
    s: &TestServer,
    name: &str,
) -> (
    Vec<(tonic::Code, String, String, Vec<String>)>,
    Vec<accord::ledger::EntryDraft>,
) {
    use tonic_types::StatusExt;
    let read = s
        .as_staff(POLICE, "pc-1", "officer")
        .get_record(name, pb::Purpose::CrimePrevention)
        .await
        .unwrap_err();
    let checked = s
        .records()
        .check_access(
            s.as_staff(POLICE, "pc-1", "officer")
                .request(pb::CheckAccessRequest {
                    name: name.to_owned(),
                    purpose: pb::Purpose::CrimePrevention as i32,
                    break_glass_reason: String::new(),
                }),
        )
        .await
        .unwrap_err();
    let answers = [read, checked]
        .iter()
        .map(|status| {
            let info = status.get_details_error_info().expect("ErrorInfo");
            let mut keys: Vec<String> = info.metadata.keys().cloned().collect();
            keys.sort();
            (
                status.code(),
                status.message().replace(name, "NAME"),
                info.reason,
                keys,
            )
        })
        .collect();
    let entries = s
        .ledger(accord::store::EntryFilter {
            principal: Some("pc-1".into()),
            ..Default::default()
        })
        .await;
    let last_two = entries[entries.len() - 2..]
        .iter()
        .map(|e| {
            let mut d = e.draft.clone();
            d.request_id = String::new();
            d.id = String::new();
            d.time = chrono::DateTime::UNIX_EPOCH;
            d.records = d.records.iter().map(|r| r.replace(name, "NAME")).collect();
            d.reason = d.reason.replace(name, "NAME");
            d
        })
        .collect();
    (answers, last_two)
}

/// An agency with no agreement covering a record's class is answered, by
/// GetRecord and CheckAccess alike, exactly as for an unknown id, and the
/// ledger entries are alike too; a party to an agreement covering the
/// class is told the detailed reason.
#[tokio::test]
async fn without_an_agreement_a_record_cannot_be_told_from_an_unknown_one() {
    let clock = Arc::new(TestClock::default());
    let (s, record, _subject) = three_agencies(Db::Sqlite, clock).await.unwrap();
    let unknown = "records/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69";
    let (unknown_answers, unknown_entries) = police_probe(&s, unknown).await;
    assert_eq!(unknown_answers[0].0, tonic::Code::NotFound);
    let (answers, entries) = police_probe(&s, &record).await;
    assert_eq!(answers, unknown_answers);
    assert_eq!(entries, unknown_entries);
    assert!(
        entries
            .iter()
            .all(|e| e.controller.is_empty() && e.subject.is_empty())
    );

    // An agreement with the trust for another class changes nothing.
    let other_class = Share {
        provider: HEALTH,
        consumer: POLICE,
        role: "officer",
        class: "police.incident",
        fields: &["incident_reference"],
        purposes: &[pb::Purpose::CrimePrevention],
        consent: pb::ConsentRequirement::NotRequired,
        days: 30,
    };
    agree(&s, &other_class).await;
    assert_eq!(police_probe(&s, &record).await.0, unknown_answers);

    // One covering the class, for safeguarding only: now the reason is told.
    agree(
        &s,
        &Share {
            class: "health.summary",
            fields: &["allergies"],
            purposes: &[pb::Purpose::Safeguarding],
            ..other_class
        },
    )
    .await;
    let read = s
        .as_staff(POLICE, "pc-1", "officer")
        .get_record(&record, pb::Purpose::CrimePrevention)
        .await
        .unwrap_err();
    assert_eq!(read.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&read), "PURPOSE_NOT_PERMITTED");
    let checked = check(&s, POLICE, &record, pb::Purpose::CrimePrevention).await;
    assert!(!checked.permitted);
    assert_eq!(checked.reason_code, "PURPOSE_NOT_PERMITTED");
    s.stop().await;
}
