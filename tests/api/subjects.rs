use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

async fn server() -> TestServer {
    let s = TestServer::start(Db::Sqlite).await.expect("sqlite server");
    s.register(&[
        ("leeds-cc", pb::AgencyKind::Council),
        ("leeds-th", pb::AgencyKind::Health),
    ])
    .await;
    s
}

#[tokio::test]
async fn subjects_are_created_found_and_linked_across_agencies() {
    let s = server().await;
    let created = s
        .as_staff("leeds-th", "gp-1", "clinician")
        .create_subject(
            subject("943 476 5919", "Amira", "Khan", "2012-05-04"),
            pb::Purpose::DirectCare,
        )
        .await
        .unwrap();
    assert_eq!(
        created.identifiers[0].value, "9434765919",
        "NHS number stored without spaces"
    );
    assert_eq!(created.demographics.as_ref().unwrap().postcode, "LS1 4AP");
    assert_eq!(created.registered_by, "agencies/leeds-th");

    // The council finds the same citizen by NHS number and links its own reference.
    let found = s
        .subjects()
        .find_subjects(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::FindSubjectsRequest {
                query: Some(pb::find_subjects_request::Query::Identifier(
                    pb::Identifier {
                        system: pb::IdentifierSystem::NhsNumber as i32,
                        value: "9434765919".into(),
                        ..Default::default()
                    },
                )),
                purpose: pb::Purpose::Safeguarding as i32,
                max_results: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(
        found.matches[0].subject.as_ref().unwrap().name,
        created.name
    );

    let linked = s
        .subjects()
        .link_identifier(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::LinkIdentifierRequest {
                subject: created.name.clone(),
                identifier: Some(pb::Identifier {
                    system: pb::IdentifierSystem::LocalReference as i32,
                    value: "sc-2024/77".into(),
                    ..Default::default()
                }),
                purpose: pb::Purpose::Safeguarding as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(linked.identifiers.len(), 2);
    assert_eq!(linked.identifiers[1].value, "SC-2024/77");
    assert_eq!(linked.identifiers[1].assigner, "agencies/leeds-cc");

    // The health trust cannot unlink the council's reference.
    let err = s
        .subjects()
        .unlink_identifier(s.as_staff("leeds-th", "gp-1", "clinician").request(
            pb::UnlinkIdentifierRequest {
                subject: created.name.clone(),
                identifier: Some(pb::Identifier {
                    system: pb::IdentifierSystem::LocalReference as i32,
                    value: "SC-2024/77".into(),
                    assigner: "agencies/leeds-cc".into(),
                }),
                purpose: pb::Purpose::Administration as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(reason(&err), "NOT_LINKING_AGENCY");

    // Demographic search scores the match.
    let by_demographics = s
        .subjects()
        .find_subjects(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::FindSubjectsRequest {
                query: Some(pb::find_subjects_request::Query::Demographics(
                    pb::Demographics {
                        family_name: "KHAN".into(),
                        birth_date: "2012-05-04".into(),
                        given_name: "amira".into(),
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
    assert_eq!(by_demographics.matches.len(), 1);
    // Family name, given name and birth date agree: 25.5 bits, 13.5 above
    // the possible-match threshold.
    let expected = 1.0 / (1.0 + (-13.5f64).exp2());
    assert!((by_demographics.matches[0].score - expected).abs() < 1e-9);
    assert_eq!(
        by_demographics.matches[0].matched_fields,
        ["family_name", "given_name", "birth_date"]
    );
    s.stop().await;
}

#[tokio::test]
async fn nhs_number_check_digits_are_enforced() {
    let s = server().await;
    let mut unknown = subject("9434765919", "A", "B", "1990-01-01");
    unknown.identifiers[0].system = 99;
    let err = s
        .as_staff("leeds-th", "gp-1", "clinician")
        .create_subject(unknown, pb::Purpose::DirectCare)
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "subject.identifiers[0].system");
    for (value, ok) in [
        ("9434765919", true),
        ("401 023 2137", true),
        ("9434765918", false),
        ("0000000060", false),
        ("12345", false),
    ] {
        let result = s
            .as_staff("leeds-th", "gp-1", "clinician")
            .create_subject(
                subject(value, "A", "B", "1990-01-01"),
                pb::Purpose::DirectCare,
            )
            .await;
        match (ok, result) {
            (true, Ok(_)) => {}
            (false, Err(status)) => {
                let v = violations(&status);
                assert_eq!(v[0].0, "subject.identifiers[0].value", "{value}: {v:?}");
            }
            (ok, other) => panic!("{value}: expected ok={ok}, got {other:?}"),
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn one_identifier_belongs_to_one_subject_and_bad_demographics_are_all_reported() {
    let s = server().await;
    let nhs = nhs_number(1);
    s.as_staff("leeds-th", "gp-1", "clinician")
        .create_subject(
            subject(&nhs, "A", "B", "1990-01-01"),
            pb::Purpose::DirectCare,
        )
        .await
        .unwrap();
    let dup = s
        .as_staff("leeds-cc", "sw-1", "social_worker")
        .create_subject(
            subject(&nhs, "C", "D", "1991-01-01"),
            pb::Purpose::DirectCare,
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let mut bad = subject(&nhs_number(2), "", "Khan", "2099-01-01");
    let d = bad.demographics.as_mut().unwrap();
    d.gender = 0;
    d.postcode = "not a postcode".into();
    d.uprn = "12345678901234".into();
    let err = s
        .subjects()
        .create_subject(s.as_staff("leeds-th", "gp-1", "clinician").request(
            pb::CreateSubjectRequest {
                subject: Some(bad),
                purpose: 0,
                create_despite_match: false,
            },
        ))
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "purpose",
            "subject.demographics.given_name",
            "subject.demographics.birth_date",
            "subject.demographics.gender",
            "subject.demographics.postcode",
            "subject.demographics.uprn",
        ]
    );

    // A number the enum does not define is called unknown, not missing,
    // and the valid values are listed.
    for gender in [7, 99] {
        let mut odd = subject(&nhs_number(3), "Amir", "Khan", "1990-01-01");
        odd.demographics.as_mut().unwrap().gender = gender;
        let err = s
            .as_staff("leeds-th", "gp-1", "clinician")
            .create_subject(odd, pb::Purpose::DirectCare)
            .await
            .unwrap_err();
        let v = violations(&err);
        assert_eq!(v[0].0, "subject.demographics.gender");
        assert!(
            v[0].1
                .starts_with(&format!("{gender} is not a known value")),
            "{v:?}"
        );
        assert!(v[0].1.contains("ADMINISTRATIVE_GENDER_FEMALE"), "{v:?}");
    }
    s.stop().await;
}
