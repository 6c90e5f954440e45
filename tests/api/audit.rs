use accord::api::pb;
use accord::ledger::Outcome;
use accord::store::EntryFilter;
use tonic::Code;

use crate::helpers::*;

async fn ledger_records_every_call(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    let record = create_referral(&s, &subject).await;
    // A read by the police for crime prevention is refused with its reason.
    council_shares_referrals_for_safeguarding(&s).await;
    // A refusal (another agency's read), an invalid input and an
    // unauthenticated call.
    let denied = s
        .as_staff("wy-police", "pc-9", "officer")
        .get_record(&record.name, pb::Purpose::CrimePrevention)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let invalid =
        s.records()
            .get_record(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
                pb::GetRecordRequest {
                    name: "records/x".into(),
                    version: -1,
                    purpose: 0,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let anonymous = s
        .records()
        .get_record(pb::GetRecordRequest {
            name: record.name.clone(),
            version: 0,
            purpose: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // The council's auditor sees the police refusal (it touched council data)
    // and the council's own calls, in ledger order.
    let entries =
        s.audit()
            .list_entries(s.as_staff("leeds-cc", "ig-1", "auditor").request(
                pb::ListEntriesRequest {
                    subject: subject.clone(),
                    purpose: pb::Purpose::Administration as i32,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .entries;
    let summary: Vec<(String, i32, String)> = entries
        .iter()
        .map(|e| (e.action.clone(), e.outcome, e.agency.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "/accord.v1.SubjectService/CreateSubject".to_owned(),
                pb::Outcome::Permitted as i32,
                "agencies/leeds-cc".to_owned()
            ),
            (
                "/accord.v1.RecordService/CreateRecord".to_owned(),
                pb::Outcome::Permitted as i32,
                "agencies/leeds-cc".to_owned()
            ),
            (
                "/accord.v1.RecordService/GetRecord".to_owned(),
                pb::Outcome::Denied as i32,
                "agencies/wy-police".to_owned()
            ),
        ]
    );
    let created = &entries[1];
    assert_eq!(created.records, [format!("{}@1", record.name)]);
    assert_eq!(
        created.fields,
        ["reason", "referral_date", "referral_source", "service"]
    );
    assert_eq!(created.purpose, pb::Purpose::Safeguarding as i32);
    assert_eq!(entries[2].reason_code, "PURPOSE_NOT_PERMITTED");

    // Filters by principal and by declared purpose.
    let by_principal =
        s.audit()
            .list_entries(s.as_staff("leeds-cc", "ig-1", "auditor").request(
                pb::ListEntriesRequest {
                    principal: "pc-9".into(),
                    entry_purpose: pb::Purpose::CrimePrevention as i32,
                    purpose: pb::Purpose::Administration as i32,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .entries;
    assert_eq!(by_principal.len(), 1);
    assert_eq!(by_principal[0].principal, "pc-9");
    assert_eq!(by_principal[0].purpose, pb::Purpose::CrimePrevention as i32);

    // The subject access report says, in plain words, who did what.
    let report = s
        .as_auditor("leeds-cc", "ig-1")
        .access_report(&subject)
        .await
        .unwrap();
    assert_eq!(report.subject, subject);
    assert!(!report.truncated);
    let lines: Vec<(&str, &str, i32)> = report
        .accesses
        .iter()
        .map(|a| (a.agency.as_str(), a.activity.as_str(), a.outcome))
        .collect();
    assert_eq!(
        lines[..3],
        [
            (
                "agencies/leeds-cc",
                "registered the person",
                pb::Outcome::Permitted as i32
            ),
            (
                "agencies/leeds-cc",
                "created a record",
                pb::Outcome::Permitted as i32
            ),
            (
                "agencies/wy-police",
                "viewed a record",
                pb::Outcome::Denied as i32
            ),
        ]
    );
    let refused = &report.accesses[2];
    assert_eq!(refused.purpose, pb::Purpose::CrimePrevention as i32);
    assert!(
        refused.reason.contains("but not for crime_prevention"),
        "{}",
        refused.reason
    );
    // The police, who control nothing about this subject, see only their own access.
    let police_view = s
        .as_auditor("wy-police", "ig-9")
        .access_report(&subject)
        .await
        .unwrap();
    assert!(
        police_view
            .accesses
            .iter()
            .all(|a| a.agency == "agencies/wy-police")
    );
    assert!(!police_view.accesses.is_empty());

    // Invalid input and the unauthenticated call are in the ledger too.
    let invalid = s
        .ledger(EntryFilter {
            outcome: Some(Outcome::Invalid),
            ..Default::default()
        })
        .await;
    assert!(invalid.iter().any(
        |e| e.draft.action.ends_with("/GetRecord") && e.draft.reason_code == "INVALID_ARGUMENT"
    ));
    let unauthenticated = s
        .ledger(EntryFilter {
            agency: Some(String::new()),
            ..Default::default()
        })
        .await;
    assert!(
        unauthenticated
            .iter()
            .any(|e| e.draft.reason_code == "MISSING_IDENTITY")
    );

    // Only auditors may read the ledger, and that refusal is audited too.
    let not_auditor = s
        .audit()
        .list_entries(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::ListEntriesRequest {
                purpose: 5,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(not_auditor.code(), Code::PermissionDenied);

    // The whole tree verifies and matches its recorded head.
    let store = s.store().await;
    let head = accord::store::verify_ledger(&store).await.unwrap();
    assert!(head.size >= 8, "{}", head.size);
    store.close().await;
    s.stop().await;
}

#[tokio::test]
async fn the_ledger_records_every_call_and_its_tree_verifies_sqlite() {
    ledger_records_every_call(Db::Sqlite).await;
}

#[tokio::test]
async fn the_ledger_records_every_call_and_its_tree_verifies_postgres() {
    ledger_records_every_call(Db::Postgres).await;
}

#[tokio::test]
async fn ledger_pages_are_complete_and_disjoint() {
    let (s, _subject) = server_with_subject(Db::Sqlite).await.unwrap();
    for _ in 0..5 {
        s.agencies()
            .list_agencies(
                s.as_staff("leeds-cc", "ig-1", "auditor")
                    .request(pb::ListAgenciesRequest::default()),
            )
            .await
            .unwrap();
    }
    let mut seen = vec![];
    let mut token = String::new();
    for _ in 0..50 {
        let page = s
            .audit()
            .list_entries(s.as_staff("leeds-cc", "ig-1", "auditor").request(
                pb::ListEntriesRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    purpose: 5,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.index));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(seen, sorted, "no entry twice, in order");
    assert!(seen.len() >= 7, "{seen:?}");
    s.stop().await;
}

/// Renames `ledger_head` away (or back), so that ledger appends fail.
async fn break_ledger(s: &TestServer, broken: bool) {
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    let sql = if broken {
        "ALTER TABLE ledger_head RENAME TO ledger_head_away"
    } else {
        "ALTER TABLE ledger_head_away RENAME TO ledger_head"
    };
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn no_audit_no_data() {
    let (s, subject) = server_with_subject(Db::Sqlite).await.unwrap();
    let record = create_referral(&s, &subject).await;
    break_ledger(&s, true).await;

    // A read whose entry cannot be written discloses nothing.
    let sw = s.as_staff("leeds-cc", "sw-1", "social_worker");
    let read = sw
        .get_record(&record.name, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    assert!(!read.message().contains("bruising"), "{read:?}");

    // A write whose entry cannot be written does not happen.
    let write = sw
        .create_record(
            &subject,
            CLASS,
            referral_fields("second referral"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::Unavailable, "{write:?}");

    break_ledger(&s, false).await;
    let listed = s
        .records()
        .list_records(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::ListRecordsRequest {
                subject,
                purpose: 2,
                page_size: 10,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.records.len(),
        1,
        "the failed write left nothing behind"
    );
    let store = s.store().await;
    assert!(
        accord::store::verify_ledger(&store).await.is_ok(),
        "the tree still verifies"
    );
    store.close().await;
    s.stop().await;
}

/// A search that disclosed several people is in each person's report.
async fn searches_reach_every_report(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    s.register(&[("leeds-cc", pb::AgencyKind::Council)]).await;
    let mut people = Vec::new();
    for (n, given) in [(31, "Amira"), (32, "Aisha")] {
        let created = s
            .subjects()
            .create_subject(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
                pb::CreateSubjectRequest {
                    subject: Some(subject(&nhs_number(n), given, "Khan", "2012-05-04")),
                    purpose: pb::Purpose::DirectCare as i32,
                    create_despite_match: false,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .subject
            .unwrap();
        people.push(created.name);
    }
    let found = s
        .subjects()
        .find_subjects(s.as_staff("leeds-cc", "sw-2", "social_worker").request(
            pb::FindSubjectsRequest {
                query: Some(pb::find_subjects_request::Query::Demographics(
                    pb::Demographics {
                        family_name: "Khan".into(),
                        birth_date: "2012-05-04".into(),
                        ..Default::default()
                    },
                )),
                purpose: pb::Purpose::DirectCare as i32,
                max_results: 5,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches.len(), 2);
    for person in &people {
        let report = s
            .as_auditor("leeds-cc", "ig-1")
            .access_report(person)
            .await
            .unwrap();
        let searches: Vec<&str> = report
            .accesses
            .iter()
            .filter(|a| a.activity == "searched for the person")
            .map(|a| a.principal.as_str())
            .collect();
        assert_eq!(searches, ["sw-2"], "{person}: {:?}", report.accesses);
    }
    s.stop().await;
}

#[tokio::test]
async fn searches_reach_every_report_sqlite() {
    searches_reach_every_report(Db::Sqlite).await;
}

#[tokio::test]
async fn searches_reach_every_report_postgres() {
    searches_reach_every_report(Db::Postgres).await;
}
