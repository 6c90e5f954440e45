//! Explainable person matching (MatchSubjects): candidates scored field by
//! field, governed as searches are.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

fn probe(family: &str, given: &str, birth: &str, postcode: &str) -> pb::Demographics {
    pb::Demographics {
        family_name: family.to_owned(),
        given_name: given.to_owned(),
        birth_date: birth.to_owned(),
        gender: pb::AdministrativeGender::Female as i32,
        postcode: postcode.to_owned(),
        uprn: String::new(),
    }
}

fn nhs(n: u32) -> pb::Identifier {
    pb::Identifier {
        system: pb::IdentifierSystem::NhsNumber as i32,
        value: nhs_number(n),
        ..Default::default()
    }
}

async fn try_match(
    s: &TestServer,
    agency: &str,
    demographics: pb::Demographics,
    identifiers: Vec<pb::Identifier>,
) -> Result<Vec<pb::MatchCandidate>, tonic::Status> {
    s.subjects()
        .match_subjects(s.as_staff(agency, "officer-1", "social_worker").request(
            pb::MatchSubjectsRequest {
                demographics: Some(demographics),
                identifiers,
                purpose: pb::Purpose::Safeguarding as i32,
                max_results: 0,
            },
        ))
        .await
        .map(|r| r.into_inner().candidates)
}

async fn match_subjects(
    s: &TestServer,
    agency: &str,
    demographics: pb::Demographics,
    identifiers: Vec<pb::Identifier>,
) -> Vec<pb::MatchCandidate> {
    try_match(s, agency, demographics, identifiers)
        .await
        .unwrap()
}

fn contribution<'a>(c: &'a pb::MatchCandidate, field: &str) -> &'a pb::FieldContribution {
    c.contributions
        .iter()
        .find(|f| f.field == field)
        .unwrap_or_else(|| panic!("no {field} in {c:?}"))
}

async fn matches_are_explained_and_governed(db: Db) {
    let clock = Arc::new(TestClock::default());
    // The trust registered Sam Lee, born 2014-06-01, at LS1 4AP, with a
    // health summary; nobody shares it yet.
    let Some((s, _, sam_name)) = three_agencies(db, clock).await else {
        return;
    };
    // Another child born the same day at the same postcode.
    s.as_staff(HEALTH, "gp-1", "gp")
        .create_subject(
            subject(&nhs_number(12), "Priya", "Patel", "2014-06-01"),
            pb::Purpose::DirectCare,
        )
        .await
        .unwrap();

    // The trust describes Sam as another system holds them: the family
    // name spelt as it sounds, day and month swapped, a neighbouring
    // postcode.
    let found = match_subjects(
        &s,
        HEALTH,
        probe("Leigh", "sam", "2014-01-06", "LS1 4ZZ"),
        vec![],
    )
    .await;
    assert_eq!(
        found.len(),
        1,
        "the neighbour is not a candidate: {found:?}"
    );
    let sam = &found[0];
    assert_eq!(sam.subject.as_ref().unwrap().name, sam_name);
    assert_eq!(sam.verdict, pb::MatchVerdict::Possible as i32);
    assert_eq!(
        sam.explanation,
        "family name: sounds alike +4.0; given name: same +6.0; \
         birth date: day and month swapped +6.0; gender: same +1.0; \
         postcode: same sector +5.0; UPRN: absent; NHS number: absent; \
         PNC ID: absent; local reference: absent"
    );
    assert!((sam.score - 22.0).abs() < 1e-9, "{}", sam.score);
    let birth = contribution(sam, "birth_date");
    assert_eq!(birth.level, pb::MatchLevel::Transposed as i32);
    assert_eq!(birth.weight, 6.0);
    assert_eq!(
        contribution(sam, "nhs_number").level,
        pb::MatchLevel::Absent as i32
    );
    let entry = last_entry(&s, HEALTH).await;
    assert_eq!(
        entry.draft.action,
        "/accord.v1.SubjectService/MatchSubjects"
    );
    assert_eq!(
        entry.draft.subject, sam_name,
        "the match disclosed is named"
    );

    // With the NHS number the same person is certain.
    let certain = match_subjects(
        &s,
        HEALTH,
        probe("Lee", "Sam", "2014-06-01", "ls14ap"),
        vec![nhs(11)],
    )
    .await;
    assert_eq!(certain[0].verdict, pb::MatchVerdict::SamePerson as i32);
    assert_eq!(
        contribution(&certain[0], "nhs_number").explanation,
        "NHS number: same +15.0"
    );

    // The police hold nothing on Sam and no agreement lets them read the
    // trust's records: a search cannot find Sam, however close, and the
    // answer is the same as for nobody at all.
    let exact = probe("Lee", "Sam", "2014-06-01", "LS1 4AP");
    assert!(
        match_subjects(&s, POLICE, exact.clone(), vec![])
            .await
            .is_empty()
    );
    let entry = last_entry(&s, POLICE).await;
    assert_eq!(
        entry.draft.action,
        "/accord.v1.SubjectService/MatchSubjects"
    );
    assert!(entry.draft.subject.is_empty() && entry.draft.fields.is_empty());
    let nobody = probe("Nobody", "Sam", "2014-06-01", "LS1 4AP");
    assert!(match_subjects(&s, POLICE, nobody, vec![]).await.is_empty());
    // An NHS number the police hold still resolves, as FindSubjects does;
    // one that disagrees counts against.
    let resolved = match_subjects(&s, POLICE, exact.clone(), vec![nhs(11)]).await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].subject.as_ref().unwrap().name, sam_name);
    assert!(
        match_subjects(&s, POLICE, exact.clone(), vec![nhs(13)])
            .await
            .is_empty()
    );
    let disagreeing = match_subjects(&s, HEALTH, exact.clone(), vec![nhs(13)]).await;
    assert_eq!(disagreeing[0].verdict, pb::MatchVerdict::Possible as i32);
    assert!((disagreeing[0].score - certain[0].score + 30.0).abs() < 1e-9);

    // Bad input names the fields.
    let mut bad = exact.clone();
    bad.birth_date = "2014-13-01".into();
    bad.postcode = "nowhere".into();
    let err = try_match(&s, HEALTH, bad, vec![]).await.unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["demographics.birth_date", "demographics.postcode"]);
    let err = try_match(&s, HEALTH, exact, (1..=11).map(nhs).collect())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err)[0].0, "identifiers");
    s.stop().await;
}

#[tokio::test]
async fn matches_are_explained_and_governed_sqlite() {
    matches_are_explained_and_governed(Db::Sqlite).await;
}

#[tokio::test]
async fn matches_are_explained_and_governed_postgres() {
    matches_are_explained_and_governed(Db::Postgres).await;
}
