//! Sharing agreements over the API: their lifecycle, and reads between
//! agencies that only they make possible.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

async fn approve_by_all(s: &TestServer, draft: &pb::Agreement) -> pb::Agreement {
    s.as_ig_lead(HEALTH).approve(draft).await.unwrap();
    s.as_ig_lead(COUNCIL).approve(draft).await.unwrap()
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
    let draft = s
        .as_ig_lead(HEALTH)
        .propose(safeguarding_terms(
            &["allergies", "long_term_conditions"],
            30,
        ))
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
        .approve_agreement(s.as_staff(COUNCIL, "sw-1", "social_worker").request(
            pb::ApproveAgreementRequest {
                name: draft.name.clone(),
                version: 1,
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&not_ig), "ROLE_NOT_PERMITTED");
    let outsider = s.as_ig_lead(POLICE).approve(&draft).await.unwrap_err();
    assert_eq!(outsider.code(), Code::NotFound);
    let half = s.as_ig_lead(HEALTH).approve(&draft).await.unwrap();
    assert_eq!(half.state, pb::AgreementState::Draft as i32);
    let twice = s.as_ig_lead(HEALTH).approve(&draft).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(reason(&twice), "ALREADY_APPROVED");
    let active = s.as_ig_lead(COUNCIL).approve(&draft).await.unwrap();
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
        .as_staff(POLICE, "pc-1", "officer")
        .get_record(&record, pb::Purpose::CrimePrevention)
        .await
        .unwrap_err();
    assert_unknown(&police, &record);
    let hidden = s
        .agreements()
        .get_agreement(s.as_ig_lead(POLICE).request(pb::GetAgreementRequest {
            name: draft.name.clone(),
            version: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // Suspension by any party stops access on the next request.
    let suspended = s
        .agreements()
        .suspend_agreement(s.as_ig_lead(COUNCIL).request(pb::SuspendAgreementRequest {
            name: draft.name.clone(),
            reason: "records shared beyond the agreement".to_owned(),
            etag: String::new(),
        }))
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
        .reinstate_agreement(s.as_ig_lead(HEALTH).request(pb::ReinstateAgreementRequest {
            name: draft.name.clone(),
            etag: String::new(),
        }))
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
        .revise_agreement(s.as_ig_lead(COUNCIL).request(pb::ReviseAgreementRequest {
            agreement: Some(pb::Agreement {
                name: draft.name.clone(),
                ..safeguarding_terms(
                    &["allergies", "long_term_conditions", "current_medication"],
                    30,
                )
            }),
        }))
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
    let stale = s.as_ig_lead(HEALTH).approve(&draft).await.unwrap_err();
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
        .get_agreement(s.as_ig_lead(COUNCIL).request(pb::GetAgreementRequest {
            name: draft.name.clone(),
            version: 1,
        }))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(v1.state, pb::AgreementState::Superseded as i32);
    let listed = s
        .agreements()
        .list_agreements(
            s.as_ig_lead(COUNCIL)
                .request(pb::ListAgreementsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 2);
    let none = s
        .agreements()
        .list_agreements(
            s.as_ig_lead(POLICE)
                .request(pb::ListAgreementsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert!(none.is_empty());

    // The subject's access report says under which agreement and lawful
    // basis the council saw their record.
    let report = s
        .as_auditor(HEALTH, "dpo-1")
        .access_report(&subject)
        .await
        .unwrap();
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
    let refused = s.as_ig_lead(HEALTH).propose(terms).await.unwrap_err();
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
    let refused = s.as_ig_lead(HEALTH).propose(terms).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["agreement.valid_until", "agreement.consumers[0].agency"]
    );
    let mut terms = safeguarding_terms(&["allergies", "shoe_size"], 30);
    terms.consumers[0].agency = "agencies/nobody-here".to_owned();
    let refused = s.as_ig_lead(HEALTH).propose(terms).await.unwrap_err();
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
    let refused = s
        .as_ig_lead(POLICE)
        .propose(safeguarding_terms(&["allergies"], 30))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_A_PARTY");
    let none = s
        .agreements()
        .list_agreements(
            s.as_ig_lead(HEALTH)
                .request(pb::ListAgreementsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .agreements;
    assert!(none.is_empty(), "a refused proposal left {none:?}");
    s.stop().await;
}

/// GetAgreementUsage: the disclosures under an agreement, by receiver,
/// purpose and role; the provider sees every receiver's, a receiver its
/// own, anyone else nothing.
async fn usage_by_purpose_and_role(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    s.register(&[(HEALTH, pb::AgencyKind::Health)]).await;
    let referral = create_referral(&s, &subject).await;
    let mut offer = terms(&Share {
        provider: COUNCIL,
        consumer: POLICE,
        role: "officer",
        class: "social_care.referral",
        fields: &["reason"],
        purposes: &[
            pb::Purpose::Safeguarding,
            pb::Purpose::CrimePrevention,
            pb::Purpose::DirectCare,
        ],
        consent: pb::ConsentRequirement::NotRequired,
        days: 30,
    });
    offer.consumers.push(pb::ConsumerTerms {
        agency: format!("agencies/{HEALTH}"),
        grants: vec![pb::FieldGrant {
            role: "gp".into(),
            record_class: CLASS.into(),
            fields: vec!["service".into()],
        }],
    });
    let draft = s.as_ig_lead(COUNCIL).propose(offer).await.unwrap();
    for party in [COUNCIL, POLICE, HEALTH] {
        s.as_ig_lead(party).approve(&draft).await.unwrap();
    }
    let officer = s.as_staff(POLICE, "pc-1", "officer");
    officer
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    officer
        .get_record(&referral.name, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    s.as_staff(POLICE, "pc-2", "officer,custody")
        .get_record(&referral.name, pb::Purpose::CrimePrevention)
        .await
        .unwrap();
    s.as_staff(HEALTH, "gp-1", "gp")
        .get_record(&referral.name, pb::Purpose::DirectCare)
        .await
        .unwrap();
    // A refusal discloses nothing, and is not counted.
    officer
        .get_record(&referral.name, pb::Purpose::Research)
        .await
        .unwrap_err();

    let usage =
        |agency: &'static str, roles: &'static str, start: Option<prost_types::Timestamp>| {
            let request = pb::GetAgreementUsageRequest {
                name: draft.name.clone(),
                start_time: start,
                end_time: None,
            };
            let s = &s;
            async move {
                s.agreements()
                    .get_agreement_usage(s.as_staff(agency, "ig-x", roles).request(request))
                    .await
                    .map(|r| r.into_inner())
            }
        };
    let line = |agency: &str, purpose: pb::Purpose, role: &str, n: i64| pb::AgreementUsage {
        agency: format!("agencies/{agency}"),
        purpose: purpose as i32,
        role: role.into(),
        disclosures: n,
    };
    let provider = usage(COUNCIL, "auditor", None).await.unwrap();
    assert_eq!(provider.name, draft.name);
    assert_eq!(provider.total, 4);
    assert_eq!(
        provider.usage,
        [
            line(HEALTH, pb::Purpose::DirectCare, "gp", 1),
            line(POLICE, pb::Purpose::CrimePrevention, "officer", 1),
            line(POLICE, pb::Purpose::Safeguarding, "officer", 2),
        ]
    );
    let police = usage(POLICE, "ig_lead", None).await.unwrap();
    assert_eq!(police.total, 3, "a receiver sees its own disclosures only");
    assert!(police.usage.iter().all(|u| u.agency.ends_with(POLICE)));
    let health = usage(HEALTH, "auditor", None).await.unwrap();
    assert_eq!(health.total, 1);
    assert_eq!(
        health.usage,
        [line(HEALTH, pb::Purpose::DirectCare, "gp", 1)]
    );
    let later = usage(COUNCIL, "auditor", Some(in_days(1))).await.unwrap();
    assert_eq!(later.total, 0);
    assert!(later.usage.is_empty());

    // Someone else's agreement is no agreement; a social worker may not
    // ask; a backwards period is named.
    s.register(&[("leeds-schools", pb::AgencyKind::Education)])
        .await;
    let stranger = usage("leeds-schools", "auditor", None).await.unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    let worker = usage(COUNCIL, "social_worker", None).await.unwrap_err();
    assert_eq!(worker.code(), Code::PermissionDenied);
    let backwards =
        s.agreements()
            .get_agreement_usage(s.as_auditor(COUNCIL, "au-1").request(
                pb::GetAgreementUsageRequest {
                    name: draft.name.clone(),
                    start_time: Some(in_days(1)),
                    end_time: Some(in_days(-1)),
                },
            ))
            .await
            .unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument);
    assert!(
        violations(&backwards)
            .iter()
            .any(|(field, _)| field == "end_time"),
        "{backwards:?}"
    );
    // Each question was recorded, refusals too.
    let asked = s
        .ledger(accord::store::EntryFilter {
            principal: Some("ig-x".into()),
            ..Default::default()
        })
        .await;
    assert!(
        asked
            .iter()
            .all(|e| e.draft.action == "/accord.v1.AgreementService/GetAgreementUsage")
    );
    assert_eq!(asked.len(), 6, "{asked:?}");
}

#[tokio::test]
async fn usage_by_purpose_and_role_sqlite() {
    usage_by_purpose_and_role(Db::Sqlite).await;
}

#[tokio::test]
async fn usage_by_purpose_and_role_postgres() {
    usage_by_purpose_and_role(Db::Postgres).await;
}
