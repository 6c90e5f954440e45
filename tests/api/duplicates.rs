//! Duplicates caught at the door: a certain match refused (unless asked
//! to create anyway, which is recorded), a possible one registered and
//! queued for the operator's data-quality staff, who resolve it.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;

use crate::helpers::*;

const DATA_QUALITY: (&str, &str, &str) = ("accord-ops", "dq-1", "data_quality");

/// Sam Lee as another agency registers them: its own reference, no NHS
/// number.
fn sam(reference: &str, family: &str, birth: &str, postcode: &str) -> pb::Subject {
    pb::Subject {
        identifiers: vec![pb::Identifier {
            system: pb::IdentifierSystem::LocalReference as i32,
            value: reference.to_owned(),
            ..Default::default()
        }],
        demographics: Some(pb::Demographics {
            given_name: "Sam".to_owned(),
            family_name: family.to_owned(),
            birth_date: birth.to_owned(),
            gender: pb::AdministrativeGender::Female as i32,
            postcode: postcode.to_owned(),
            uprn: String::new(),
        }),
        ..Default::default()
    }
}

async fn register(
    s: &TestServer,
    agency: &str,
    subject: pb::Subject,
    despite: bool,
) -> Result<pb::Subject, tonic::Status> {
    s.subjects()
        .create_subject(s.as_staff(agency, "officer-1", "social_worker").request(
            pb::CreateSubjectRequest {
                subject: Some(subject),
                purpose: pb::Purpose::Safeguarding as i32,
                create_despite_match: despite,
            },
        ))
        .await
        .map(|r| r.into_inner().subject.unwrap())
}

async fn list(
    s: &TestServer,
    who: (&str, &str, &str),
    state: pb::DuplicateState,
) -> Result<Vec<pb::PossibleDuplicate>, tonic::Status> {
    s.subjects()
        .list_possible_duplicates(as_caller(
            pb::ListPossibleDuplicatesRequest {
                state: state as i32,
                ..Default::default()
            },
            who.0,
            who.1,
            who.2,
        ))
        .await
        .map(|r| r.into_inner().possible_duplicates)
}

async fn resolve(
    s: &TestServer,
    name: &str,
    resolution: pb::DuplicateState,
    note: &str,
) -> Result<pb::PossibleDuplicate, tonic::Status> {
    let (agency, principal, roles) = DATA_QUALITY;
    s.subjects()
        .resolve_possible_duplicate(as_caller(
            pb::ResolvePossibleDuplicateRequest {
                name: name.to_owned(),
                resolution: resolution as i32,
                note: note.to_owned(),
            },
            agency,
            principal,
            roles,
        ))
        .await
        .map(|r| r.into_inner().possible_duplicate.unwrap())
}

async fn duplicates_are_caught_at_the_door(db: Db) {
    let clock = Arc::new(TestClock::default());
    // The trust registered Sam Lee, born 2014-06-01, at LS1 4AP.
    let Some((s, _, sam_name)) = three_agencies(db, clock).await else {
        return;
    };

    // The council registers the same child without the NHS number: refused,
    // naming the subject, with the reasons.
    let err = register(
        &s,
        COUNCIL,
        sam("SC-1", "Lee", "2014-06-01", "LS1 4AP"),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains(&sam_name), "{}", err.message());
    assert!(
        err.message().contains("birth date: same +12.0"),
        "{}",
        err.message()
    );
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(
        entry.draft.action,
        "/accord.v1.SubjectService/CreateSubject"
    );
    assert_eq!(
        entry.draft.subject, sam_name,
        "the refusal names who it matched"
    );

    // Asked to create it all the same, it does, and says so in the entry.
    let again = register(
        &s,
        COUNCIL,
        sam("SC-1", "Lee", "2014-06-01", "LS1 4AP"),
        true,
    )
    .await
    .unwrap();
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.reason_code, "CREATED_DESPITE_MATCH");
    assert!(
        entry.draft.reason.contains(&sam_name),
        "{}",
        entry.draft.reason
    );

    // A possible match (name spelt as it sounds, day and month swapped, a
    // neighbouring postcode) is registered and queued.
    let possible = register(
        &s,
        POLICE,
        sam("WY-9", "Leigh", "2014-01-06", "LS1 4ZZ"),
        false,
    )
    .await
    .unwrap();
    // Someone else entirely raises nothing.
    let other = sam("WY-10", "Okafor", "1990-03-03", "M1 1AE");
    register(&s, POLICE, other, false).await.unwrap();

    // Only the operator's data-quality staff see the queue.
    let refused = list(
        &s,
        (COUNCIL, "officer-1", "social_worker"),
        pb::DuplicateState::Open,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let open = list(&s, DATA_QUALITY, pb::DuplicateState::Unspecified)
        .await
        .unwrap();
    let sides: Vec<(&str, &str, i32)> = open
        .iter()
        .map(|d| {
            (
                d.subject.as_ref().unwrap().name.as_str(),
                d.candidate.as_ref().unwrap().name.as_str(),
                d.cause,
            )
        })
        .collect();
    // The police's registration matches both the trust's subject and the
    // council's second one.
    assert_eq!(sides.len(), 3, "{sides:?}");
    assert!(sides.contains(&(
        possible.name.as_str(),
        again.name.as_str(),
        pb::DuplicateCause::PossibleMatch as i32
    )));
    assert!(sides.contains(&(
        again.name.as_str(),
        sam_name.as_str(),
        pb::DuplicateCause::CreatedDespiteMatch as i32
    )));
    assert!(sides.contains(&(
        possible.name.as_str(),
        sam_name.as_str(),
        pb::DuplicateCause::PossibleMatch as i32
    )));
    // The possible match shows both sides field by field.
    let queued = open
        .iter()
        .find(|d| {
            d.subject.as_ref().unwrap().name == possible.name
                && d.candidate.as_ref().unwrap().name == sam_name
        })
        .unwrap();
    assert_eq!(queued.verdict, pb::MatchVerdict::Possible as i32);
    assert!(
        queued
            .explanation
            .contains("birth date: day and month swapped +6.0"),
        "{}",
        queued.explanation
    );
    assert_eq!(queued.contributions.len(), 9);
    assert_eq!(queued.raised_by, format!("agencies/{POLICE}"));
    let look = last_entry(&s, DATA_QUALITY.0).await;
    assert!(
        look.draft.records.contains(&sam_name),
        "{:?}",
        look.draft.records
    );

    // Resolved as different people, once.
    let bad = resolve(&s, &queued.name, pb::DuplicateState::Open, "")
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["resolution", "note"]);
    let resolved = resolve(
        &s,
        &queued.name,
        pb::DuplicateState::DifferentPeople,
        "different child: school records show two pupils",
    )
    .await
    .unwrap();
    assert_eq!(resolved.state, pb::DuplicateState::DifferentPeople as i32);
    assert_eq!(resolved.resolved_by, DATA_QUALITY.1);
    let twice = resolve(
        &s,
        &queued.name,
        pb::DuplicateState::DifferentPeople,
        "again",
    )
    .await
    .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(reason(&twice), "DUPLICATE_ALREADY_RESOLVED");
    let open = list(&s, DATA_QUALITY, pb::DuplicateState::Open)
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|d| d.name != queued.name));
    let different = list(&s, DATA_QUALITY, pb::DuplicateState::DifferentPeople)
        .await
        .unwrap();
    assert_eq!(different.len(), 1);
    assert_eq!(different[0].resolution_note, resolved.resolution_note);
    s.stop().await;
}

#[tokio::test]
async fn duplicates_are_caught_at_the_door_sqlite() {
    duplicates_are_caught_at_the_door(Db::Sqlite).await;
}

#[tokio::test]
async fn duplicates_are_caught_at_the_door_postgres() {
    duplicates_are_caught_at_the_door(Db::Postgres).await;
}

/// A sealed subject (a protected identity) is never revealed by a
/// registration that matches it: the subject is registered, and the pair
/// goes to the data-quality staff.
#[tokio::test]
async fn a_sealed_subject_is_not_revealed_by_registering_it_again() {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, sam_name)) = three_agencies(Db::Sqlite, clock).await else {
        return;
    };
    s.records()
        .seal_subject_records(s.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::SealSubjectRecordsRequest {
                subject: sam_name.clone(),
                reason: "protected identity".to_owned(),
            },
        ))
        .await
        .unwrap();
    let created = register(
        &s,
        POLICE,
        sam("WY-1", "Lee", "2014-06-01", "LS1 4AP"),
        false,
    )
    .await
    .unwrap();
    assert_ne!(created.name, sam_name);
    let entry = last_entry(&s, POLICE).await;
    assert_eq!(entry.draft.subject, created.name);
    assert!(entry.draft.reason_code.is_empty(), "{entry:?}");
    assert!(entry.draft.records.is_empty(), "{entry:?}");
    let open = list(&s, DATA_QUALITY, pb::DuplicateState::Open)
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].cause, pb::DuplicateCause::CertainButHidden as i32);
    assert_eq!(open[0].candidate.as_ref().unwrap().name, sam_name);
    s.stop().await;
}

/// Eight registrations of one child, decided side by side (on PostgreSQL
/// by two server processes on one database): exactly one is made, and
/// every other is told of it, however the calls interleave — none passes
/// the door unseen by the others.
async fn registrations_side_by_side_cannot_both_pass_the_door(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    s.register(&[(COUNCIL, pb::AgencyKind::Council)]).await;
    let beside = match db {
        Db::Postgres => Some(s.start_beside().await),
        Db::Sqlite => None,
    };
    let answers = futures_util::future::join_all((0..8).map(|i| {
        let server = match &beside {
            Some(other) if i % 2 == 1 => other,
            _ => &s,
        };
        register(
            server,
            COUNCIL,
            sam(&format!("SC-{i}"), "Lee", "2014-06-01", "LS1 4AP"),
            false,
        )
    }))
    .await;
    let made: Vec<&pb::Subject> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
        assert!(refused.message().contains(&made[0].name), "{refused:?}");
    }
    // The store holds the one subject.
    let council = s
        .ledger(accord::store::EntryFilter {
            agency: Some(COUNCIL.to_owned()),
            outcome: Some(accord::ledger::Outcome::Permitted),
            ..Default::default()
        })
        .await;
    let created = council
        .iter()
        .filter(|e| e.draft.action == "/accord.v1.SubjectService/CreateSubject")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn registrations_side_by_side_cannot_both_pass_the_door_sqlite() {
    registrations_side_by_side_cannot_both_pass_the_door(Db::Sqlite).await;
}

#[tokio::test]
async fn registrations_side_by_side_cannot_both_pass_the_door_postgres() {
    registrations_side_by_side_cannot_both_pass_the_door(Db::Postgres).await;
}
