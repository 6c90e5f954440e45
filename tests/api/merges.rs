//! Merging two registrations of one person, and undoing it exactly: what
//! moves, how the merged name resolves, who is told, what the access
//! reports show, and that an unmerge restores every identifier, record,
//! consent and seal where it was.

use std::sync::Arc;

use accord::api::pb;
use accord::domain::SubjectId;
use accord::domain::consent::ConsentId;
use accord::domain::event::{EventKind, EventPosition};
use accord::store::{After, Store};
use tonic::Code;

use crate::helpers::*;

const DATA_QUALITY: (&str, &str, &str) = ("accord-ops", "dq-1", "data_quality");

fn dq<T>(message: T) -> tonic::Request<T> {
    as_caller(message, DATA_QUALITY.0, DATA_QUALITY.1, DATA_QUALITY.2)
}

async fn merge(
    s: &TestServer,
    survivor: &str,
    merged: &str,
    note: &str,
) -> Result<pb::SubjectMerge, tonic::Status> {
    s.subjects()
        .merge_subjects(dq(pb::MergeSubjectsRequest {
            survivor: survivor.to_owned(),
            merged: merged.to_owned(),
            note: note.to_owned(),
        }))
        .await
        .map(|r| r.into_inner().merge.unwrap())
}

async fn unmerge(
    s: &TestServer,
    name: &str,
    note: &str,
) -> Result<pb::SubjectMerge, tonic::Status> {
    s.subjects()
        .unmerge_subjects(dq(pb::UnmergeSubjectsRequest {
            name: name.to_owned(),
            note: note.to_owned(),
        }))
        .await
        .map(|r| r.into_inner().merge.unwrap())
}

async fn get_subject(
    s: &TestServer,
    agency: &str,
    name: &str,
) -> Result<pb::Subject, tonic::Status> {
    s.subjects()
        .get_subject(s.as_staff(agency, "staff-1", "social_worker").request(
            pb::GetSubjectRequest {
                name: name.to_owned(),
                purpose: pb::Purpose::DirectCare as i32,
            },
        ))
        .await
        .map(|r| r.into_inner().subject.unwrap())
}

async fn seal(s: &TestServer, agency: &str, subject: &str, reason: &str) {
    s.records()
        .seal_subject_records(s.as_staff(agency, "ig-1", "ig_lead").request(
            pb::SealSubjectRecordsRequest {
                subject: subject.to_owned(),
                reason: reason.to_owned(),
            },
        ))
        .await
        .unwrap();
}

/// The accesses in the council auditor's access report about `subject`:
/// their ledger indexes, and the records each names.
async fn report(s: &TestServer, subject: &str) -> Vec<(i64, Vec<String>)> {
    s.audit()
        .get_subject_access_report(s.as_auditor(COUNCIL, "aud-1").request(
            pb::GetSubjectAccessReportRequest {
                subject: subject.to_owned(),
                purpose: pb::Purpose::Administration as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .accesses
        .into_iter()
        .map(|a| (a.entry_index, a.records))
        .collect()
}

/// Where everything about the two subjects is, as the store holds it:
/// identifiers of each, records of each, the subject of the consent and
/// the agencies that sealed all their records about each.
#[derive(Debug, PartialEq)]
struct Placement {
    identifiers: Vec<Vec<String>>,
    records: Vec<Vec<String>>,
    consent_subject: String,
    sealed: Vec<Vec<String>>,
}

async fn placement(s: &TestServer, subjects: [&str; 2], consent: &str) -> Placement {
    let store = s.store().await;
    let mut identifiers = vec![];
    let mut records = vec![];
    let mut sealed = vec![];
    for name in subjects {
        let id = SubjectId::parse_name(name).unwrap();
        let subject = store.subject(&id).await.unwrap().unwrap();
        let mut ids: Vec<String> = subject
            .identifiers
            .iter()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        identifiers.push(ids);
        let mut held: Vec<String> = store
            .records_of_subject(&id, After::Start, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id.resource_name())
            .collect();
        held.sort();
        records.push(held);
        let ties = store.subject_ties(&id).await.unwrap();
        sealed.push(
            ties.sealed_by
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
        );
    }
    let consent = store
        .consent(&ConsentId::parse_name(consent).unwrap())
        .await
        .unwrap()
        .unwrap();
    Placement {
        identifiers,
        records,
        consent_subject: consent.subject.resource_name(),
        sealed,
    }
}

/// The council registers Sam Lee again, under its own reference, despite
/// the match with the trust's registration; returns the new name.
async fn register_again(s: &TestServer) -> String {
    let council = s.as_staff(COUNCIL, "sw-1", "social_worker");
    s.subjects()
        .create_subject(council.request(pb::CreateSubjectRequest {
            subject: Some(pb::Subject {
                identifiers: vec![pb::Identifier {
                    system: pb::IdentifierSystem::LocalReference as i32,
                    value: "SC-1".to_owned(),
                    ..Default::default()
                }],
                demographics: Some(pb::Demographics {
                    given_name: "Sam".to_owned(),
                    family_name: "Lee".to_owned(),
                    birth_date: "2014-06-01".to_owned(),
                    gender: pb::AdministrativeGender::Female as i32,
                    postcode: "LS2 7EW".to_owned(),
                    uprn: String::new(),
                }),
                ..Default::default()
            }),
            purpose: pb::Purpose::Safeguarding as i32,
            create_despite_match: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap()
        .name
}

async fn merge_and_unmerge(db: Db) {
    let clock = Arc::new(TestClock::default());
    // The trust registered Sam Lee (NHS number) and holds a health summary.
    let Some((s, summary, sam)) = three_agencies(db, clock).await else {
        return;
    };
    // The council registers Sam again under its own reference, despite the
    // match, writes a referral, records a consent and seals its records:
    // about both registrations, for different reasons.
    let council = s.as_staff(COUNCIL, "sw-1", "social_worker");
    let again = register_again(&s).await;
    let referral = create_referral(&s, &again).await;
    let consent = s
        .consents()
        .record_consent(council.request(pb::RecordConsentRequest {
            consent: Some(pb::Consent {
                subject: again.clone(),
                kind: pb::ConsentKind::Consent as i32,
                purposes: vec![pb::Purpose::DirectCare as i32],
                channel: pb::ConsentChannel::FaceToFace as i32,
                note: "agreed at the family meeting".to_owned(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap()
        .name;
    seal(&s, COUNCIL, &sam, "first: a protected address").await;
    seal(&s, COUNCIL, &again, "second: a court order").await;
    // The council follows the subjects it holds.
    let subscription = s
        .events()
        .create_subscription(council.request(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                kinds: vec![pb::EventKind::SubjectMerged as i32],
                purpose: pb::Purpose::Safeguarding as i32,
                role: "social_worker".to_owned(),
                cohort: pb::SubscriptionCohort::Held as i32,
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap()
        .name;
    let before = placement(&s, [&sam, &again], &consent).await;
    let again_report = report(&s, &again).await;
    assert!(
        again_report
            .iter()
            .any(|(_, records)| records.iter().any(|r| r.starts_with(&referral.name))),
        "{again_report:?}"
    );
    let sam_report = report(&s, &sam).await;
    assert!(!again_report.iter().any(|a| sam_report.contains(a)));

    // Only the operator's data-quality staff merge.
    let refused = s
        .subjects()
        .merge_subjects(council.request(pb::MergeSubjectsRequest {
            survivor: sam.clone(),
            merged: again.clone(),
            note: "same child".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bad = merge(&s, &sam, &sam, "").await.unwrap_err();
    let fields: Vec<String> = violations(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["note"]);
    let same = merge(&s, &sam, &sam, "the same").await.unwrap_err();
    assert_eq!(violations(&same)[0].0, "merged");

    // The merge moves everything, and says exactly what.
    let merged = merge(&s, &sam, &again, "same child: school and GP records agree")
        .await
        .unwrap();
    assert!(merged.standing);
    let moved = merged.moved.clone().unwrap();
    assert_eq!(moved.records, std::slice::from_ref(&referral.name));
    assert_eq!(moved.consents, std::slice::from_ref(&consent));
    assert_eq!(moved.identifiers.len(), 1);
    assert_eq!(moved.identifiers[0].value, "SC-1");
    assert!(moved.seals.is_empty(), "{moved:?}");
    assert_eq!(moved.set_aside_seals.len(), 1, "{moved:?}");
    assert_eq!(moved.set_aside_seals[0].reason, "second: a court order");
    let entry = last_entry(&s, DATA_QUALITY.0).await;
    assert_eq!(entry.draft.subject, sam);
    assert!(entry.draft.records.contains(&again), "{entry:?}");
    assert!(entry.draft.records.contains(&referral.name), "{entry:?}");
    let during = placement(&s, [&sam, &again], &consent).await;
    assert!(during.identifiers[1].is_empty(), "{during:?}");
    assert!(during.sealed[1].is_empty(), "{during:?}");
    assert_eq!(during.sealed[0], [COUNCIL], "{during:?}");
    assert_eq!(during.identifiers[0].len(), 2, "{during:?}");
    assert!(during.records[1].is_empty());
    assert!(during.records[0].contains(&referral.name));
    assert!(during.records[0].contains(&summary));
    assert_eq!(during.consent_subject, sam);

    // The merged name resolves to the survivor.
    let resolved = get_subject(&s, COUNCIL, &again).await.unwrap();
    assert_eq!(resolved.name, sam);
    assert_eq!(resolved.merged_into, sam);
    let entry = last_entry(&s, COUNCIL).await;
    assert_eq!(entry.draft.subject, sam);
    assert_eq!(entry.draft.records, std::slice::from_ref(&again));
    assert!(
        get_subject(&s, COUNCIL, &sam)
            .await
            .unwrap()
            .merged_into
            .is_empty()
    );
    // So do lists by it: the records and consents are the survivor's.
    let listed = s
        .records()
        .list_records(council.request(pb::ListRecordsRequest {
            subject: again.clone(),
            purpose: pb::Purpose::Safeguarding as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .records;
    assert!(listed.iter().any(|r| r.name == referral.name), "{listed:?}");
    let consents = s
        .consents()
        .list_consents(council.request(pb::ListConsentsRequest {
            subject: again.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .consents;
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].subject, sam);
    // Changes naming it are refused, pointing the way.
    let link = s
        .subjects()
        .link_identifier(council.request(pb::LinkIdentifierRequest {
            subject: again.clone(),
            identifier: Some(pb::Identifier {
                system: pb::IdentifierSystem::LocalReference as i32,
                value: "SC-2".to_owned(),
                ..Default::default()
            }),
            purpose: pb::Purpose::DirectCare as i32,
        }))
        .await
        .unwrap_err();
    assert_eq!(link.code(), Code::FailedPrecondition, "{link:?}");
    assert_eq!(reason(&link), "SUBJECT_MERGED");
    let record = council
        .create_record(
            &again,
            CLASS,
            referral_fields("a second referral"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&record), "SUBJECT_MERGED", "{record:?}");
    let twice = merge(&s, &sam, &again, "again").await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    // The survivor's access report holds the merged subject's accesses.
    let sam_report = report(&s, &sam).await;
    for access in &again_report {
        assert!(sam_report.contains(access), "{access:?} in {sam_report:?}");
    }
    // One view, with both registrations as sources.
    let view = s
        .subjects()
        .get_subject_view(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::GetSubjectViewRequest {
                    subject: again.clone(),
                    purpose: pb::Purpose::DirectCare as i32,
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .view
        .unwrap();
    let postcodes: Vec<(String, String, bool)> = view
        .demographics
        .iter()
        .filter(|d| d.field == "postcode")
        .map(|d| (d.source.clone(), d.value.clone(), d.conflicting))
        .collect();
    assert_eq!(postcodes.len(), 2, "{postcodes:?}");
    assert!(
        postcodes.contains(&(format!("agencies/{COUNCIL}"), "LS2 7EW".to_owned(), true)),
        "the council's registration is a source, in disagreement: {postcodes:?}"
    );
    // The council is told, about both subjects.
    let events = s
        .events()
        .list_events(council.request(pb::ListEventsRequest {
            subscription: subscription.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let told: Vec<(i32, String)> = events
        .iter()
        .map(|e| (e.kind, e.resource.clone()))
        .collect();
    assert!(
        told.contains(&(pb::EventKind::SubjectMerged as i32, sam.clone())),
        "{told:?}"
    );

    // The unmerge puts everything back exactly.
    let undone = unmerge(&s, &merged.name, "wrong merge: two children of one family")
        .await
        .unwrap();
    assert!(!undone.standing);
    let restored = undone.restored.clone().unwrap();
    assert_eq!(restored.identifiers, moved.identifiers);
    assert_eq!(restored.records, moved.records);
    assert_eq!(restored.consents, moved.consents);
    assert_eq!(restored.set_aside_seals, moved.set_aside_seals);
    assert!(undone.copied_seals.is_empty());
    let after = placement(&s, [&sam, &again], &consent).await;
    assert_eq!(after, before);
    assert_eq!(get_subject(&s, COUNCIL, &again).await.unwrap().name, again);
    let sam_report = report(&s, &sam).await;
    assert!(
        !again_report.iter().any(|a| sam_report.contains(a)),
        "the merged subject's accesses are its own again"
    );
    let store = s.store().await;
    let kept = store
        .merges_of(&SubjectId::parse_name(&again).unwrap())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].is_open());
    let unmerged_events = store
        .events(EventPosition::START, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::SubjectUnmerged)
        .count();
    assert_eq!(unmerged_events, 2, "one about each subject");
    let again_undone = unmerge(&s, &merged.name, "again").await.unwrap_err();
    assert_eq!(reason(&again_undone), "MERGE_ALREADY_UNDONE");
    // The subject can be changed again.
    council
        .create_record(
            &again,
            CLASS,
            referral_fields("a second referral"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn merge_and_unmerge_sqlite() {
    merge_and_unmerge(Db::Sqlite).await;
}

#[tokio::test]
async fn merge_and_unmerge_postgres() {
    merge_and_unmerge(Db::Postgres).await;
}

/// A council registration of a child as another system describes them:
/// its own reference, the family name spelt as it sounds, day and month
/// swapped, a neighbouring postcode.
fn leigh(reference: &str) -> pb::Subject {
    pb::Subject {
        identifiers: vec![pb::Identifier {
            system: pb::IdentifierSystem::LocalReference as i32,
            value: reference.to_owned(),
            ..Default::default()
        }],
        demographics: Some(pb::Demographics {
            given_name: "Sam".to_owned(),
            family_name: "Leigh".to_owned(),
            birth_date: "2014-01-06".to_owned(),
            gender: pb::AdministrativeGender::Female as i32,
            postcode: "LS1 4ZZ".to_owned(),
            uprn: String::new(),
        }),
        ..Default::default()
    }
}

async fn merges_of(s: &TestServer, subject: &str) -> Vec<pb::SubjectMerge> {
    s.subjects()
        .list_subject_merges(dq(pb::ListSubjectMergesRequest {
            subject: subject.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .merges
}

async fn same_person_merges_and_merges_undo_in_order(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, sam)) = three_agencies(db, clock).await else {
        return;
    };
    let council = s.as_staff(COUNCIL, "sw-1", "social_worker");
    let possible = council
        .create_subject(leigh("SC-9"), pb::Purpose::Safeguarding)
        .await
        .unwrap()
        .name;
    let open = s
        .subjects()
        .list_possible_duplicates(dq(pb::ListPossibleDuplicatesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .possible_duplicates;
    assert_eq!(open.len(), 1);

    // Resolved as the same person: the later registration is merged into
    // the earlier one.
    let resolved = s
        .subjects()
        .resolve_possible_duplicate(dq(pb::ResolvePossibleDuplicateRequest {
            name: open[0].name.clone(),
            resolution: pb::DuplicateState::SamePerson as i32,
            note: "same child: the school confirms the date of birth".to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .possible_duplicate
        .unwrap();
    assert_eq!(resolved.state, pb::DuplicateState::SamePerson as i32);
    assert!(resolved.merge.starts_with("subjectMerges/"), "{resolved:?}");
    let first = merges_of(&s, &sam).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].name, resolved.merge);
    assert_eq!(
        (first[0].survivor.as_str(), first[0].merged.as_str()),
        (sam.as_str(), possible.as_str())
    );
    assert_eq!(first[0].possible_duplicate, resolved.name);
    let listed = s
        .subjects()
        .list_possible_duplicates(dq(pb::ListPossibleDuplicatesRequest {
            state: pb::DuplicateState::SamePerson as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .possible_duplicates;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].merge, resolved.merge);
    assert_eq!(
        get_subject(&s, COUNCIL, &possible)
            .await
            .unwrap()
            .merged_into,
        sam
    );

    // A merged subject is no longer a candidate of a match.
    let candidates = s
        .subjects()
        .match_subjects(council.request(pb::MatchSubjectsRequest {
            demographics: leigh("SC-10").demographics,
            purpose: pb::Purpose::Safeguarding as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .candidates;
    let names: Vec<&str> = candidates
        .iter()
        .map(|c| c.subject.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, [sam.as_str()]);

    // The survivor merged in turn: the first merge is undone only after
    // the second.
    let other = s
        .as_staff(POLICE, "pc-1", "officer")
        .create_subject(
            subject(&nhs_number(12), "Alex", "Okafor", "1990-03-03"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap()
        .name;
    let second = merge(&s, &other, &sam, "entered in error").await.unwrap();
    let resolved_twice = get_subject(&s, COUNCIL, &possible).await.unwrap();
    assert_eq!(resolved_twice.name, other, "a name resolves through merges");
    let blocked = unmerge(&s, &resolved.merge, "wrong").await.unwrap_err();
    assert_eq!(blocked.code(), Code::FailedPrecondition);
    assert_eq!(reason(&blocked), "SURVIVOR_MERGED");
    unmerge(&s, &second.name, "wrong: a different person")
        .await
        .unwrap();
    let undone = unmerge(&s, &resolved.merge, "wrong: twins").await.unwrap();
    assert!(!undone.standing);
    let all = merges_of(&s, &sam).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|m| !m.standing));
    assert_eq!(
        get_subject(&s, COUNCIL, &possible).await.unwrap().name,
        possible
    );
    let gp = s.as_staff(HEALTH, "gp-1", "gp");
    let sam_again = s
        .subjects()
        .get_subject(gp.request(pb::GetSubjectRequest {
            name: sam.clone(),
            purpose: pb::Purpose::DirectCare as i32,
        }))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(sam_again.identifiers.len(), 1, "{sam_again:?}");
    assert_eq!(sam_again.identifiers[0].value, nhs_number(11));
    s.stop().await;
}

#[tokio::test]
async fn same_person_merges_and_merges_undo_in_order_sqlite() {
    same_person_merges_and_merges_undo_in_order(Db::Sqlite).await;
}

#[tokio::test]
async fn same_person_merges_and_merges_undo_in_order_postgres() {
    same_person_merges_and_merges_undo_in_order(Db::Postgres).await;
}

/// A subscription that lists a person follows them through a merge: once
/// the council's second registration is merged into the trust's, what is
/// written about the survivor reaches a subscriber that listed the merged
/// one (and the other way round); after the unmerge it no longer does.
async fn a_listed_person_is_followed_through_a_merge(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _summary, sam)) = three_agencies(db, clock).await else {
        return;
    };
    let again = register_again(&s).await;
    let council = s.as_staff(COUNCIL, "sw-1", "social_worker");
    let follow = |listed: &str| {
        let request = council.request(pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                kinds: vec![pb::EventKind::RecordCreated as i32],
                purpose: pb::Purpose::Safeguarding as i32,
                role: "social_worker".to_owned(),
                cohort: pb::SubscriptionCohort::Listed as i32,
                subjects: vec![listed.to_owned()],
                ..Default::default()
            }),
        });
        let s = &s;
        async move {
            s.events()
                .create_subscription(request)
                .await
                .unwrap()
                .into_inner()
                .subscription
                .unwrap()
                .name
        }
    };
    let listing_again = follow(&again).await;
    let listing_sam = follow(&sam).await;
    let told = |subscription: String| {
        let request = council.request(pb::ListEventsRequest {
            subscription,
            ..Default::default()
        });
        let s = &s;
        async move {
            s.events()
                .list_events(request)
                .await
                .unwrap()
                .into_inner()
                .events
                .into_iter()
                .map(|e| e.resource)
                .collect::<Vec<String>>()
        }
    };
    // Before any merge, a referral about Sam reaches only the subscription
    // listing Sam.
    let before = create_referral(&s, &sam).await;
    let about_again = create_referral(&s, &again).await;
    assert!(told(listing_sam.clone()).await.contains(&before.name));
    assert!(!told(listing_again.clone()).await.contains(&before.name));
    assert!(!told(listing_sam.clone()).await.contains(&about_again.name));

    let merged = merge(&s, &sam, &again, "one child registered twice")
        .await
        .unwrap();
    // Merged: one person. The survivor's referrals reach the subscription
    // listing the merged name, and the merged name's earlier referral the
    // one listing the survivor.
    let after = create_referral(&s, &sam).await;
    let listed_again = told(listing_again.clone()).await;
    assert!(listed_again.contains(&after.name), "{listed_again:?}");
    assert!(listed_again.contains(&before.name), "{listed_again:?}");
    let listed_sam = told(listing_sam.clone()).await;
    assert!(listed_sam.contains(&after.name), "{listed_sam:?}");

    // Unmerged: two people again.
    unmerge(&s, &merged.name, "two children of one family")
        .await
        .unwrap();
    let later = create_referral(&s, &sam).await;
    let listed_again = told(listing_again).await;
    assert!(!listed_again.contains(&later.name), "{listed_again:?}");
    assert!(told(listing_sam).await.contains(&later.name));
}

#[tokio::test]
async fn a_listed_person_is_followed_through_a_merge_sqlite() {
    a_listed_person_is_followed_through_a_merge(Db::Sqlite).await;
}

#[tokio::test]
async fn a_listed_person_is_followed_through_a_merge_postgres() {
    a_listed_person_is_followed_through_a_merge(Db::Postgres).await;
}
