//! Sharing agreements over the API: their lifecycle, and reads between
//! agencies that only they make possible.

use std::collections::HashMap;
use std::sync::Arc;

use accord::api::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::audit::access_report;
use crate::helpers::*;

pub const HEALTH: &str = "leeds-health";
pub const COUNCIL: &str = "leeds-cc";
pub const POLICE: &str = "wy-police";

/// A request by `agency`'s IG lead.
pub fn as_ig<T>(message: T, agency: &str) -> tonic::Request<T> {
    as_caller(message, agency, &format!("ig-{agency}"), "ig_lead")
}

/// A server with a health trust, a council and a police force, a subject
/// and the trust's health summary about them; returns the record's name
/// and the subject's.
pub async fn three_agencies(db: Db, clock: Arc<TestClock>) -> Option<(TestServer, String, String)> {
    let s = TestServer::start_with_clock(db, clock).await?;
    s.register(&[
        (HEALTH, pb::AgencyKind::Health),
        (COUNCIL, pb::AgencyKind::Council),
        (POLICE, pb::AgencyKind::Police),
    ])
    .await;
    let subject = s
        .subjects()
        .create_subject(as_caller(
            pb::CreateSubjectRequest {
                subject: Some(subject(&nhs_number(11), "Sam", "Lee", "2014-06-01")),
                purpose: pb::Purpose::DirectCare as i32,
            },
            HEALTH,
            "gp-1",
            "gp",
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    let record = s
        .records()
        .create_record(as_caller(
            pb::CreateRecordRequest {
                record: Some(pb::Record {
                    subject: subject.name.clone(),
                    record_class: "recordClasses/health.summary".to_owned(),
                    fields: HashMap::from([
                        ("registered_gp_practice".to_owned(), string_value("B86001")),
                        ("allergies".to_owned(), string_value("penicillin")),
                        ("current_medication".to_owned(), string_value("salbutamol")),
                        ("long_term_conditions".to_owned(), string_value("asthma")),
                    ]),
                    ..Default::default()
                }),
                purpose: pb::Purpose::DirectCare as i32,
            },
            HEALTH,
            "gp-1",
            "gp",
        ))
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    Some((s, record.name, subject.name))
}

fn in_days(days: i64) -> prost_types::Timestamp {
    let t = chrono::Utc::now() + chrono::Duration::days(days);
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// What one agreement shares: `provider`'s `class` records, the `fields`
/// holders of `role` at `consumer` may see, for `purposes`, for `days` days.
pub struct Share<'a> {
    pub provider: &'a str,
    pub consumer: &'a str,
    pub role: &'a str,
    pub class: &'a str,
    pub fields: &'a [&'a str],
    pub purposes: &'a [pb::Purpose],
    pub consent: pb::ConsentRequirement,
    pub days: i64,
}

/// The terms of `share`.
pub fn terms(share: &Share<'_>) -> pb::Agreement {
    let class = format!("recordClasses/{}", share.class);
    pb::Agreement {
        title: format!(
            "{} shares {} with {}",
            share.provider, share.class, share.consumer
        ),
        provider: format!("agencies/{}", share.provider),
        consumers: vec![pb::ConsumerTerms {
            agency: format!("agencies/{}", share.consumer),
            grants: vec![pb::FieldGrant {
                role: share.role.to_owned(),
                record_class: class.clone(),
                fields: share.fields.iter().map(|f| (*f).to_owned()).collect(),
            }],
        }],
        record_classes: vec![class],
        purposes: share.purposes.iter().map(|p| *p as i32).collect(),
        lawful_bases: vec![
            pb::LawfulBasis {
                code: pb::LawfulBasisCode::UkGdprArt61E as i32,
                reference: "UK GDPR Art 6(1)(e); Children Act 2004 s11".to_owned(),
            },
            pb::LawfulBasis {
                code: pb::LawfulBasisCode::Dpa2018Sch1Para18 as i32,
                reference: "DPA 2018 Sch 1 para 18".to_owned(),
            },
        ],
        consent: share.consent as i32,
        valid_from: Some(in_days(-1)),
        valid_until: Some(in_days(share.days)),
        review_date: (chrono::Utc::now() + chrono::Duration::days(180))
            .format("%Y-%m-%d")
            .to_string(),
        ..Default::default()
    }
}

/// Health's safeguarding agreement with the council: social workers see
/// `fields` of health summaries, for safeguarding, without consent, for
/// `days` days.
pub fn safeguarding_terms(fields: &[&str], days: i64) -> pb::Agreement {
    terms(&Share {
        provider: HEALTH,
        consumer: COUNCIL,
        role: "social_worker",
        class: "health.summary",
        fields,
        purposes: &[pb::Purpose::Safeguarding],
        consent: pb::ConsentRequirement::NotRequired,
        days,
    })
}

/// The council shares its referrals' reason with police officers, for
/// safeguarding only (on a server with the council and the police).
pub async fn council_shares_referrals_for_safeguarding(s: &TestServer) -> pb::Agreement {
    agree(
        s,
        &Share {
            provider: COUNCIL,
            consumer: POLICE,
            role: "officer",
            class: "social_care.referral",
            fields: &["reason"],
            purposes: &[pb::Purpose::Safeguarding],
            consent: pb::ConsentRequirement::NotRequired,
            days: 30,
        },
    )
    .await
}

/// Proposes `terms` as `agency`'s IG lead.
pub async fn propose(
    s: &TestServer,
    terms: pb::Agreement,
    agency: &str,
) -> Result<pb::Agreement, tonic::Status> {
    s.agreements()
        .create_agreement(as_ig(
            pb::CreateAgreementRequest {
                agreement: Some(terms),
            },
            agency,
        ))
        .await
        .map(|r| r.into_inner().agreement.unwrap())
}

/// Proposes `share` as its provider and has both parties approve it.
pub async fn agree(s: &TestServer, share: &Share<'_>) -> pb::Agreement {
    agree_terms(s, terms(share), share.provider, share.consumer).await
}

/// Proposes `terms` as `provider` and has it and `consumer` approve them.
pub async fn agree_terms(
    s: &TestServer,
    terms: pb::Agreement,
    provider: &str,
    consumer: &str,
) -> pb::Agreement {
    let draft = propose(s, terms, provider).await.unwrap();
    approve(s, &draft, provider).await.unwrap();
    approve(s, &draft, consumer).await.unwrap()
}

async fn approve(
    s: &TestServer,
    a: &pb::Agreement,
    agency: &str,
) -> Result<pb::Agreement, tonic::Status> {
    s.agreements()
        .approve_agreement(as_ig(
            pb::ApproveAgreementRequest {
                name: a.name.clone(),
                version: a.version,
                etag: String::new(),
            },
            agency,
        ))
        .await
        .map(|r| r.into_inner().agreement.unwrap())
}

async fn approve_by_all(s: &TestServer, draft: &pb::Agreement) -> pb::Agreement {
    approve(s, draft, HEALTH).await.unwrap();
    approve(s, draft, COUNCIL).await.unwrap()
}

/// Reads `record` as a council social worker for `purpose`.
pub async fn council_reads(
    s: &TestServer,
    record: &str,
    purpose: pb::Purpose,
) -> Result<pb::Record, tonic::Status> {
    s.records()
        .get_record(as_caller(
            pb::GetRecordRequest {
                name: record.to_owned(),
                version: 0,
                purpose: purpose as i32,
                ..Default::default()
            },
            COUNCIL,
            "sw-1",
            "social_worker",
        ))
        .await
        .map(|r| r.into_inner().record.unwrap())
}

/// The last ledger entry of a call by `agency`.
pub async fn last_entry(s: &TestServer, agency: &str) -> accord::ledger::Entry {
    s.ledger(accord::store::EntryFilter {
        agency: Some(agency.to_owned()),
        ..Default::default()
    })
    .await
    .pop()
    .expect("an entry")
}

fn field_names(r: &pb::Record) -> Vec<&str> {
    let mut names: Vec<&str> = r.fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

fn error_agreement(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .expect("an ErrorInfo detail")
        .metadata
        .get("agreement")
        .cloned()
        .unwrap_or_default()
}

async fn lifecycle_and_minimised_reads(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, record, subject)) = three_agencies(db, clock.clone()).await else {
        return;
    };
    // Without an agreement the council cannot tell the record from an
    // unknown one.
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(refused.message(), format!("{record} not found"));

    // A draft grants nothing, and says whose approval it awaits.
    let draft = propose(
        &s,
        safeguarding_terms(&["allergies", "long_term_conditions"], 30),
        HEALTH,
    )
    .await
    .unwrap();
    assert_eq!(draft.state, pb::AgreementState::Draft as i32);
    assert_eq!(draft.version, 1);
    assert_eq!(
        draft.awaiting_approval,
        [format!("agencies/{HEALTH}"), format!("agencies/{COUNCIL}")]
    );
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "AGREEMENT_NOT_ACTIVE");
    assert_eq!(error_agreement(&refused), format!("{}@1", draft.name));
    assert!(
        refused.message().contains("awaiting approval"),
        "{}",
        refused.message()
    );

    // Approval needs the IG lead of a party, once each.
    let not_ig = s
        .agreements()
        .approve_agreement(as_caller(
            pb::ApproveAgreementRequest {
                name: draft.name.clone(),
                version: 1,
                etag: String::new(),
            },
            COUNCIL,
            "sw-1",
            "social_worker",
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&not_ig), "ROLE_NOT_PERMITTED");
    let outsider = approve(&s, &draft, POLICE).await.unwrap_err();
    assert_eq!(outsider.code(), Code::NotFound);
    let half = approve(&s, &draft, HEALTH).await.unwrap();
    assert_eq!(half.state, pb::AgreementState::Draft as i32);
    let twice = approve(&s, &draft, HEALTH).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(reason(&twice), "ALREADY_APPROVED");
    let active = approve(&s, &draft, COUNCIL).await.unwrap();
    assert_eq!(active.state, pb::AgreementState::Active as i32);
    assert!(active.awaiting_approval.is_empty());
    assert_eq!(active.approvals.len(), 2);

    // Active: the council sees only the granted fields, for the purpose.
    let shared = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    assert_eq!(field_names(&shared), ["allergies", "long_term_conditions"]);
    assert_eq!(shared.shared_under, [format!("{}@1", draft.name)]);
    // Its entry names the agreement, the lawful bases and the fields.
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.action, "/accord.v1.RecordService/GetRecord");
    assert_eq!(
        entry.draft.grounds.agreements,
        [format!("{}@1", draft.name)]
    );
    assert_eq!(
        entry.draft.grounds.lawful_bases,
        ["uk_gdpr_art_6_1_e", "dpa_2018_sch_1_para_18"]
    );
    assert_eq!(entry.draft.fields, ["allergies", "long_term_conditions"]);
    let refused = council_reads(&s, &record, pb::Purpose::DirectCare)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "PURPOSE_NOT_PERMITTED");
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.reason_code, "PURPOSE_NOT_PERMITTED");
    assert_eq!(
        entry.draft.grounds.agreements,
        [format!("{}@1", draft.name)]
    );
    assert!(entry.draft.fields.is_empty());
    let police = s
        .records()
        .get_record(as_caller(
            pb::GetRecordRequest {
                name: record.clone(),
                version: 0,
                purpose: pb::Purpose::CrimePrevention as i32,
                ..Default::default()
            },
            POLICE,
            "pc-1",
            "officer",
        ))
        .await
        .unwrap_err();
    assert_unknown(&police, &record);
    let hidden = s
        .agreements()
        .get_agreement(as_ig(
            pb::GetAgreementRequest {
                name: draft.name.clone(),
                version: 0,
            },
            POLICE,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // Suspension by any party stops access on the next request.
    let suspended = s
        .agreements()
        .suspend_agreement(as_ig(
            pb::SuspendAgreementRequest {
                name: draft.name.clone(),
                reason: "records shared beyond the agreement".to_owned(),
                etag: String::new(),
            },
            COUNCIL,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(suspended.state, pb::AgreementState::Suspended as i32);
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "AGREEMENT_NOT_ACTIVE");
    assert!(
        refused
            .message()
            .contains("records shared beyond the agreement"),
        "{}",
        refused.message()
    );
    s.agreements()
        .reinstate_agreement(as_ig(
            pb::ReinstateAgreementRequest {
                name: draft.name.clone(),
                etag: String::new(),
            },
            HEALTH,
        ))
        .await
        .unwrap();
    assert!(
        council_reads(&s, &record, pb::Purpose::Safeguarding)
            .await
            .is_ok()
    );

    // New terms are a new version; the old one holds until it is approved.
    let v2 = s
        .agreements()
        .revise_agreement(as_ig(
            pb::ReviseAgreementRequest {
                agreement: Some(pb::Agreement {
                    name: draft.name.clone(),
                    ..safeguarding_terms(
                        &["allergies", "long_term_conditions", "current_medication"],
                        30,
                    )
                }),
            },
            COUNCIL,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(
        (v2.version, v2.state),
        (2, pb::AgreementState::Draft as i32)
    );
    let still_v1 = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    assert_eq!(field_names(&still_v1).len(), 2);
    let stale = approve(&s, &draft, HEALTH).await.unwrap_err();
    assert_eq!(reason(&stale), "NOT_LATEST_VERSION");
    approve_by_all(&s, &v2).await;
    let with_v2 = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    assert_eq!(
        field_names(&with_v2),
        ["allergies", "current_medication", "long_term_conditions"]
    );
    let v1 = s
        .agreements()
        .get_agreement(as_ig(
            pb::GetAgreementRequest {
                name: draft.name.clone(),
                version: 1,
            },
            COUNCIL,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(v1.state, pb::AgreementState::Superseded as i32);
    let listed = s
        .agreements()
        .list_agreements(as_ig(pb::ListAgreementsRequest::default(), COUNCIL))
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 2);
    let none = s
        .agreements()
        .list_agreements(as_ig(pb::ListAgreementsRequest::default(), POLICE))
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert!(none.is_empty());

    // The subject's access report says under which agreement and lawful
    // basis the council saw their record.
    let report = access_report(&s, &subject, HEALTH, "dpo-1").await;
    let council_views: Vec<&pb::SubjectAccess> = report
        .accesses
        .iter()
        .filter(|a| {
            a.agency == format!("agencies/{COUNCIL}") && a.outcome == pb::Outcome::Permitted as i32
        })
        .collect();
    assert_eq!(council_views.len(), 4, "{council_views:?}");
    for view in council_views {
        assert!(view.agreements[0].starts_with(&draft.name), "{view:?}");
        assert!(
            view.lawful_bases
                .contains(&"dpa_2018_sch_1_para_18".to_owned())
        );
    }

    // Its end passes: it expires and grants nothing, with no change made.
    clock.advance(chrono::Duration::days(31));
    let refused = council_reads(&s, &record, pb::Purpose::Safeguarding)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "AGREEMENT_EXPIRED");
    s.stop().await;
}

#[tokio::test]
async fn lifecycle_and_minimised_reads_sqlite() {
    lifecycle_and_minimised_reads(Db::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_and_minimised_reads_postgres() {
    lifecycle_and_minimised_reads(Db::Postgres).await;
}

#[tokio::test]
async fn bad_terms_are_named_and_nothing_is_written() {
    let clock = Arc::new(TestClock::default());
    let (s, _, _) = three_agencies(Db::Sqlite, clock).await.unwrap();
    let mut terms = safeguarding_terms(&["allergies", "shoe_size"], 30);
    terms.consumers[0].agency = format!("agencies/{HEALTH}");
    terms.consumers.push(pb::ConsumerTerms {
        agency: "agencies/nobody-here".to_owned(),
        grants: vec![pb::FieldGrant {
            role: "Social Worker".to_owned(),
            record_class: "recordClasses/health.summary".to_owned(),
            fields: vec!["allergies".to_owned()],
        }],
    });
    terms.lawful_bases[0].code = 0;
    terms.consent = 0;
    terms.valid_until = Some(in_days(-2));
    let refused = propose(&s, terms, HEALTH).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "agreement.consumers[1].grants[0].role",
            "agreement.lawful_bases[0].code",
            "agreement.consent",
        ]
    );
    // Each value valid on its own, the terms as a whole are checked next.
    let mut terms = safeguarding_terms(&["allergies", "shoe_size"], 30);
    terms.consumers[0].agency = format!("agencies/{HEALTH}");
    terms.valid_until = Some(in_days(-2));
    let refused = propose(&s, terms, HEALTH).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["agreement.valid_until", "agreement.consumers[0].agency"]
    );
    let mut terms = safeguarding_terms(&["allergies", "shoe_size"], 30);
    terms.consumers[0].agency = "agencies/nobody-here".to_owned();
    let refused = propose(&s, terms, HEALTH).await.unwrap_err();
    assert_eq!(
        violations(&refused),
        [
            (
                "agreement.consumers[0].agency".to_owned(),
                "agencies/nobody-here is not registered".to_owned()
            ),
            (
                "agreement.consumers[0].grants[0].fields".to_owned(),
                "\"shoe_size\" is not a field of health.summary".to_owned()
            ),
        ]
    );
    // An agency cannot make agreements between others.
    let refused = propose(&s, safeguarding_terms(&["allergies"], 30), POLICE)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_A_PARTY");
    let none = s
        .agreements()
        .list_agreements(as_ig(pb::ListAgreementsRequest::default(), HEALTH))
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert!(none.is_empty(), "a refused proposal left {none:?}");
    s.stop().await;
}
