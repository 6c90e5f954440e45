//! Change notifications over the API: agencies' subscriptions, and the
//! events delivered to them, each decided and audited when delivered.

use std::collections::HashMap;

use accord::api::pb;
use accord::ledger::Outcome;
use accord::store::EntryFilter;
use tonic::Code;

use crate::helpers::*;

/// The police's officers' subscription to new referrals about the
/// subjects the force holds, for safeguarding.
fn referrals_for_officers() -> pb::Subscription {
    pb::Subscription {
        kinds: vec![pb::EventKind::RecordCreated as i32],
        record_classes: vec![CLASS.to_owned()],
        purpose: pb::Purpose::Safeguarding as i32,
        role: "officer".to_owned(),
        cohort: pb::SubscriptionCohort::Held as i32,
        ..Default::default()
    }
}

async fn subscribe(
    s: &TestServer,
    agency: &str,
    roles: &str,
    subscription: pb::Subscription,
) -> Result<pb::Subscription, tonic::Status> {
    s.events()
        .create_subscription(s.as_staff(agency, "staff-1", roles).request(
            pb::CreateSubscriptionRequest {
                subscription: Some(subscription),
            },
        ))
        .await
        .map(|r| r.into_inner().subscription.unwrap())
}

async fn get(s: &TestServer, agency: &str, name: &str) -> Result<pb::Subscription, tonic::Status> {
    s.events()
        .get_subscription(s.as_staff(agency, "staff-2", "clerk").request(
            pb::GetSubscriptionRequest {
                name: name.to_owned(),
            },
        ))
        .await
        .map(|r| r.into_inner().subscription.unwrap())
}

async fn delete(
    s: &TestServer,
    agency: &str,
    roles: &str,
    name: &str,
) -> Result<pb::Subscription, tonic::Status> {
    s.events()
        .delete_subscription(s.as_staff(agency, "staff-3", roles).request(
            pb::DeleteSubscriptionRequest {
                name: name.to_owned(),
            },
        ))
        .await
        .map(|r| r.into_inner().subscription.unwrap())
}

async fn list(
    s: &TestServer,
    agency: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListSubscriptionsResponse, tonic::Status> {
    s.events()
        .list_subscriptions(s.as_staff(agency, "staff-2", "clerk").request(
            pb::ListSubscriptionsRequest {
                page_size,
                page_token: page_token.to_owned(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// An agency's subscriptions are its own: created for a role the creator
/// holds, read and listed by its staff, ended by a holder of the role;
/// to another agency they do not exist, as one never made does not. Each
/// call is audited, and a subscription naming subjects is in their
/// access history.
async fn subscriptions_belong_to_their_agency(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    let created = subscribe(&s, POLICE, "officer", referrals_for_officers())
        .await
        .unwrap();
    assert!(created.name.starts_with("subscriptions/"), "{created:?}");
    assert_eq!(created.agency, format!("agencies/{POLICE}"));
    assert_eq!(created.created_by, "staff-1");
    assert!(created.create_time.is_some());
    assert_eq!(
        pb::Subscription {
            name: String::new(),
            agency: String::new(),
            created_by: String::new(),
            create_time: None,
            ..created.clone()
        },
        referrals_for_officers()
    );
    assert_eq!(get(&s, POLICE, &created.name).await.unwrap(), created);

    // Another agency cannot tell it from one that never existed.
    let theirs = get(&s, COUNCIL, &created.name).await.unwrap_err();
    let made_up = get(
        &s,
        COUNCIL,
        "subscriptions/00000000-0000-4000-8000-000000000000",
    )
    .await
    .unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);
    assert_eq!(made_up.code(), Code::NotFound);
    assert_eq!(
        theirs.message().replace(&created.name, "NAME"),
        made_up
            .message()
            .replace("subscriptions/00000000-0000-4000-8000-000000000000", "NAME")
    );
    assert!(
        list(&s, COUNCIL, 0, "")
            .await
            .unwrap()
            .subscriptions
            .is_empty()
    );
    let council_delete = delete(&s, COUNCIL, "officer", &created.name)
        .await
        .unwrap_err();
    assert_eq!(council_delete.code(), Code::NotFound);

    // A listed cohort: its subjects' access history shows who subscribed.
    let listed = subscribe(
        &s,
        POLICE,
        "officer,analyst",
        pb::Subscription {
            cohort: pb::SubscriptionCohort::Listed as i32,
            subjects: vec![subject.clone()],
            kinds: vec![],
            record_classes: vec![],
            ..referrals_for_officers()
        },
    )
    .await
    .unwrap();
    let about = s
        .ledger(EntryFilter {
            subject: Some(subject.clone()),
            ..Default::default()
        })
        .await;
    let subscribed = about
        .iter()
        .find(|e| e.draft.action == "/accord.v1.EventService/CreateSubscription")
        .expect("the subscription is in the subject's history");
    assert!(subscribed.draft.records.contains(&listed.name));
    assert_eq!(subscribed.draft.agency, POLICE);

    // Listed oldest first, in pages; a page token is the police's alone.
    let mut names = vec![created.name.clone(), listed.name.clone()];
    for _ in 0..3 {
        names.push(
            subscribe(&s, POLICE, "officer", referrals_for_officers())
                .await
                .unwrap()
                .name,
        );
    }
    let mut listed_names = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        assert!(page < 5, "the listing never ended");
        let answer = list(&s, POLICE, 2, &token).await.unwrap();
        assert!(answer.subscriptions.len() <= 2);
        listed_names.extend(answer.subscriptions.into_iter().map(|s| s.name));
        if answer.next_page_token.is_empty() {
            break;
        }
        if page == 0 {
            let stolen = list(&s, COUNCIL, 2, &answer.next_page_token)
                .await
                .unwrap_err();
            assert_eq!(stolen.code(), Code::InvalidArgument);
        }
        token = answer.next_page_token;
    }
    assert_eq!(listed_names, names);

    // Only a holder of the subscription's role ends it; then it is gone.
    let refused = delete(&s, POLICE, "clerk", &created.name)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("officer"),
        "{}",
        refused.message()
    );
    let ended = delete(&s, POLICE, "officer", &created.name).await.unwrap();
    assert_eq!(ended, created);
    assert_eq!(
        get(&s, POLICE, &created.name).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        delete(&s, POLICE, "officer", &created.name)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        list(&s, POLICE, 0, "").await.unwrap().subscriptions.len(),
        4
    );

    let deletes = s
        .ledger(EntryFilter {
            agency: Some(POLICE.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action == "/accord.v1.EventService/DeleteSubscription")
        .map(|e| (e.draft.outcome, e.draft.reason_code))
        .collect::<Vec<_>>();
    assert_eq!(
        deletes,
        vec![
            (Outcome::Denied, "ROLE_NOT_PERMITTED".to_owned()),
            (Outcome::Permitted, String::new()),
            (Outcome::Denied, "NOT_FOUND".to_owned()),
        ]
    );
    s.stop().await;
}

/// A subscription that is not well formed is refused with every problem
/// named by its field, and so is one for a role the creator does not hold;
/// nothing is created.
async fn bad_subscriptions_are_refused(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    let missing = s
        .events()
        .create_subscription(
            s.as_staff(POLICE, "staff-1", "officer")
                .request(pb::CreateSubscriptionRequest { subscription: None }),
        )
        .await
        .unwrap_err();
    assert_eq!(violations(&missing)[0].0, "subscription");

    let bad = subscribe(
        &s,
        POLICE,
        "officer",
        pb::Subscription {
            kinds: vec![
                pb::EventKind::RecordCreated as i32,
                0,
                pb::EventKind::RecordCreated as i32,
                999,
            ],
            record_classes: vec![
                "recordClasses/no.such_class".to_owned(),
                "classes/x".to_owned(),
            ],
            purpose: 0,
            role: "Not A Role".to_owned(),
            cohort: pb::SubscriptionCohort::All as i32,
            subjects: vec![subject.clone()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        vec![
            "subscription.kinds[1]",
            "subscription.kinds[2]",
            "subscription.kinds[3]",
            "subscription.record_classes[1]",
            "subscription.purpose",
            "subscription.role",
            "subscription.subjects",
        ]
    );
    let listed = subscribe(
        &s,
        POLICE,
        "officer",
        pb::Subscription {
            cohort: pb::SubscriptionCohort::Listed as i32,
            subjects: vec![subject.clone(), subject.clone(), "subjects/nope".to_owned()],
            ..referrals_for_officers()
        },
    )
    .await
    .unwrap_err();
    let fields: Vec<String> = violations(&listed).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        vec!["subscription.subjects[1]", "subscription.subjects[2]"]
    );
    let empty = subscribe(
        &s,
        POLICE,
        "officer",
        pb::Subscription {
            cohort: pb::SubscriptionCohort::Listed as i32,
            ..referrals_for_officers()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violations(&empty)[0].0, "subscription.subjects");
    let unknown_class = subscribe(
        &s,
        POLICE,
        "officer",
        pb::Subscription {
            record_classes: vec!["recordClasses/no.such_class".to_owned()],
            ..referrals_for_officers()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        violations(&unknown_class),
        vec![(
            "subscription.record_classes[0]".to_owned(),
            "recordClasses/no.such_class is not in the catalogue".to_owned()
        )]
    );
    let not_held = subscribe(&s, POLICE, "analyst", referrals_for_officers())
        .await
        .unwrap_err();
    assert_eq!(not_held.code(), Code::PermissionDenied);
    assert!(
        list(&s, POLICE, 0, "")
            .await
            .unwrap()
            .subscriptions
            .is_empty()
    );

    let outcomes: Vec<Outcome> = s
        .ledger(EntryFilter {
            agency: Some(POLICE.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action == "/accord.v1.EventService/CreateSubscription")
        .map(|e| e.draft.outcome)
        .collect();
    assert_eq!(outcomes.len(), 6, "every refusal is audited: {outcomes:?}");
    assert!(outcomes.iter().all(|o| *o != Outcome::Permitted));
    s.stop().await;
}

/// The police's concerns are shared with council social workers for
/// safeguarding: the category and the risk level only.
const CONCERNS_TO_COUNCIL: Share<'static> = Share {
    provider: POLICE,
    consumer: COUNCIL,
    role: "social_worker",
    class: "safeguarding.concern",
    fields: &["category", "risk_level"],
    purposes: &[pb::Purpose::Safeguarding],
    consent: pb::ConsentRequirement::NotRequired,
    days: 30,
};

const CONCERN: &str = "recordClasses/safeguarding.concern";

fn concern_fields(summary: &str) -> HashMap<String, pb::FieldValue> {
    HashMap::from([
        (
            "raised_at".to_owned(),
            pb::FieldValue {
                kind: Some(pb::field_value::Kind::TimestampValue(in_days(0))),
            },
        ),
        ("category".to_owned(), code_value("physical")),
        ("risk_level".to_owned(), code_value("high")),
        ("summary".to_owned(), string_value(summary)),
    ])
}

async fn events(
    s: &TestServer,
    agency: &str,
    roles: &str,
    subscription: &str,
    cursor: &str,
) -> Result<pb::ListEventsResponse, tonic::Status> {
    s.events()
        .list_events(
            s.as_staff(agency, "system-1", roles)
                .request(pb::ListEventsRequest {
                    subscription: subscription.to_owned(),
                    cursor: cursor.to_owned(),
                    page_size: 0,
                }),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn update_concern(s: &TestServer, concern: &pb::Record, summary: &str) -> pb::Record {
    s.records()
        .update_record(
            s.as_staff(POLICE, "pc-1", "officer")
                .request(pb::UpdateRecordRequest {
                    record: Some(pb::Record {
                        name: concern.name.clone(),
                        etag: concern.etag.clone(),
                        fields: concern_fields(summary),
                        ..Default::default()
                    }),
                    purpose: pb::Purpose::Safeguarding as i32,
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap()
}

/// A council subscribed to safeguarding concerns about the subjects it
/// holds hears of the police's new concern, with the agreement it may read
/// it under, and reads its content only through an audited GetRecord; the
/// delivery is a ledger entry of its own. A health trust with no agreement
/// subscribed to everything is told nothing, and its answers are the same
/// as when nothing happened. A sealed concern is no longer told of. Cursors
/// resume exactly after the event they came with, and are the
/// subscription's alone.
async fn events_are_decided_and_audited_when_delivered(db: Db) {
    let Some((s, subject)) = server_with_subject(db).await else {
        return;
    };
    s.register(&[(HEALTH, pb::AgencyKind::Health)]).await;
    let agreement = agree(&s, &CONCERNS_TO_COUNCIL).await;
    let council = subscribe(
        &s,
        COUNCIL,
        "social_worker",
        pb::Subscription {
            kinds: vec![
                pb::EventKind::RecordCreated as i32,
                pb::EventKind::RecordUpdated as i32,
                pb::EventKind::RecordSealed as i32,
            ],
            record_classes: vec![CONCERN.to_owned()],
            purpose: pb::Purpose::Safeguarding as i32,
            role: "social_worker".to_owned(),
            cohort: pb::SubscriptionCohort::Held as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let health = subscribe(
        &s,
        HEALTH,
        "gp",
        pb::Subscription {
            purpose: pb::Purpose::DirectCare as i32,
            role: "gp".to_owned(),
            cohort: pb::SubscriptionCohort::All as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Before anything happens: nothing, and a cursor.
    let quiet = events(&s, HEALTH, "gp", &health.name, "").await.unwrap();
    assert!(quiet.events.is_empty());
    assert!(!quiet.next_cursor.is_empty());

    let concern = s
        .as_staff(POLICE, "pc-1", "officer")
        .create_record(
            &subject,
            CONCERN,
            concern_fields("disclosed at interview"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    let page = events(&s, COUNCIL, "social_worker", &council.name, "")
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");
    let told = &page.events[0];
    assert_eq!(told.kind, pb::EventKind::RecordCreated as i32);
    assert_eq!(told.resource, concern.name);
    assert_eq!(told.version, 1);
    assert_eq!(told.controller, format!("agencies/{POLICE}"));
    assert_eq!(told.subject, subject);
    assert_eq!(told.record_class, CONCERN);
    assert_eq!(told.agreements, vec![format!("{}@1", agreement.name)]);
    assert_eq!(told.time, concern.create_time);

    // The delivery is an entry of the council's, naming the record version,
    // its controller and the grounds; the police's auditors see it too.
    let delivery = s
        .ledger(EntryFilter {
            agency: Some(COUNCIL.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action == "/accord.v1.EventService/ListEvents")
        .find(|e| !e.draft.records.is_empty() && e.draft.records[0].starts_with("records/"))
        .expect("the delivery's entry");
    assert_eq!(delivery.draft.records, vec![format!("{}@1", concern.name)]);
    assert_eq!(delivery.draft.subject, subject);
    assert_eq!(delivery.draft.controller, POLICE);
    assert_eq!(delivery.draft.outcome, Outcome::Permitted);
    assert_eq!(delivery.draft.roles, vec!["social_worker".to_owned()]);
    assert_eq!(
        delivery.draft.purpose,
        Some(accord::domain::Purpose::Safeguarding)
    );
    assert_eq!(delivery.draft.reason, "notified: record created");
    assert!(delivery.draft.fields.is_empty(), "no content is disclosed");
    assert_eq!(
        delivery.draft.grounds.agreements,
        vec![format!("{}@1", agreement.name)]
    );

    // The content comes only from a read, decided and audited as always.
    let read = s
        .as_staff(COUNCIL, "sw-1", "social_worker")
        .get_record(&told.resource, pb::Purpose::Safeguarding)
        .await
        .unwrap();
    let mut fields: Vec<&str> = read.fields.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["category", "risk_level"]);

    // The trust, with no agreement, is told nothing and left no trace.
    let nothing = events(&s, HEALTH, "gp", &health.name, "").await.unwrap();
    assert!(nothing.events.is_empty());
    let again = events(&s, HEALTH, "gp", &health.name, &quiet.next_cursor)
        .await
        .unwrap();
    assert!(again.events.is_empty());
    assert_ne!(
        again.next_cursor, quiet.next_cursor,
        "cursors are sealed afresh"
    );
    let traces = s
        .ledger(EntryFilter {
            agency: Some(HEALTH.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| {
            e.draft.controller == POLICE
                || e.draft.records.iter().any(|r| r.contains(&concern.name))
        })
        .count();
    assert_eq!(traces, 0);

    // Resuming after the event: nothing more until the concern changes.
    let after = events(&s, COUNCIL, "social_worker", &council.name, &told.cursor)
        .await
        .unwrap();
    assert!(after.events.is_empty());
    let v2 = update_concern(&s, &concern, "further disclosure").await;
    for cursor in [&told.cursor, &page.next_cursor, &after.next_cursor] {
        let next = events(&s, COUNCIL, "social_worker", &council.name, cursor)
            .await
            .unwrap();
        let seen: Vec<(i32, i64)> = next.events.iter().map(|e| (e.kind, e.version)).collect();
        assert_eq!(seen, vec![(pb::EventKind::RecordUpdated as i32, 2)]);
    }
    let from_start = events(&s, COUNCIL, "social_worker", &council.name, "")
        .await
        .unwrap();
    assert_eq!(from_start.events.len(), 2);

    // Sealed, the concern is told of no more to those who may not see
    // sealed records: neither its seal nor its later versions.
    let resume = from_start.next_cursor;
    s.records()
        .seal_record(
            s.as_staff(POLICE, "pc-1", "officer")
                .request(pb::SealRecordRequest {
                    name: concern.name.clone(),
                    reason: "covert investigation".to_owned(),
                }),
        )
        .await
        .unwrap();
    update_concern(&s, &v2, "third").await;
    let sealed = events(&s, COUNCIL, "social_worker", &council.name, &resume)
        .await
        .unwrap();
    assert!(sealed.events.is_empty(), "{sealed:?}");

    // Cursors are the subscription's own, and cannot be altered.
    let foreign = events(&s, HEALTH, "gp", &health.name, &told.cursor)
        .await
        .unwrap_err();
    assert_eq!(violations(&foreign)[0].0, "cursor");
    let mut altered = told.cursor.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = events(
        &s,
        COUNCIL,
        "social_worker",
        &council.name,
        &String::from_utf8(altered).unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(violations(&altered)[0].0, "cursor");
    // Following a subscription needs its role.
    let clerk = events(&s, COUNCIL, "clerk", &council.name, "")
        .await
        .unwrap_err();
    assert_eq!(clerk.code(), Code::PermissionDenied);
    s.stop().await;
}

/// A council social worker's subscription to concerns about the subjects
/// the council holds.
async fn council_follows_concerns(s: &TestServer) -> pb::Subscription {
    subscribe(
        s,
        COUNCIL,
        "social_worker",
        pb::Subscription {
            kinds: vec![
                pb::EventKind::RecordCreated as i32,
                pb::EventKind::RecordUpdated as i32,
            ],
            record_classes: vec![CONCERN.to_owned()],
            purpose: pb::Purpose::Safeguarding as i32,
            role: "social_worker".to_owned(),
            cohort: pb::SubscriptionCohort::Held as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn watch(
    s: &TestServer,
    subscription: &str,
    cursor: &str,
) -> tonic::Streaming<pb::WatchEventsResponse> {
    s.events()
        .watch_events(s.as_staff(COUNCIL, "system-1", "social_worker").request(
            pb::WatchEventsRequest {
                subscription: subscription.to_owned(),
                cursor: cursor.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The next message of a stream, waiting at most 30 seconds.
async fn next_message(
    stream: &mut tonic::Streaming<pb::WatchEventsResponse>,
) -> pb::watch_events_response::Item {
    tokio::time::timeout(std::time::Duration::from_secs(30), stream.message())
        .await
        .expect("a message within 30 seconds")
        .expect("the stream goes on")
        .expect("a message")
        .item
        .expect("an item")
}

/// The next event of a stream, heartbeats passed over (at most 100).
async fn next_event(stream: &mut tonic::Streaming<pb::WatchEventsResponse>) -> pb::Event {
    for _ in 0..100 {
        if let pb::watch_events_response::Item::Event(e) = next_message(stream).await {
            return e;
        }
    }
    panic!("no event among 100 heartbeats");
}

/// A stream sends a heartbeat while there is nothing to tell, then each
/// event as it commits; a client that disconnects and comes back with the
/// last cursor it processed (even after the server restarted) gets what
/// it missed, once, in order. Each event streamed has its delivery entry.
async fn watching_follows_live_and_resumes(db: Db) {
    let Some(s) = TestServer::start_tuned(db, |c| c.event_heartbeat_ms = 200).await else {
        return;
    };
    let subject = register_subject(&s).await;
    agree(&s, &CONCERNS_TO_COUNCIL).await;
    let council = council_follows_concerns(&s).await;
    let mut stream = watch(&s, &council.name, "").await;
    let pb::watch_events_response::Item::Heartbeat(beat) = next_message(&mut stream).await else {
        panic!("nothing has happened yet: a heartbeat comes first");
    };
    assert!(!beat.cursor.is_empty() && beat.time.is_some());

    let concern = s
        .as_staff(POLICE, "pc-1", "officer")
        .create_record(
            &subject,
            CONCERN,
            concern_fields("disclosed at interview"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    let first = next_event(&mut stream).await;
    assert_eq!(
        (first.kind, first.resource.as_str(), first.version),
        (
            pb::EventKind::RecordCreated as i32,
            concern.name.as_str(),
            1
        )
    );
    drop(stream);

    // Missed while away: both versions, in order, and not the first again.
    let v2 = update_concern(&s, &concern, "second").await;
    let v3 = update_concern(&s, &v2, "third").await;
    let mut stream = watch(&s, &council.name, &first.cursor).await;
    let seen = [next_event(&mut stream).await, next_event(&mut stream).await];
    assert_eq!(
        seen.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let resume = seen[1].cursor.clone();
    drop(stream);

    // After a restart, the cursor still holds; only what is new comes.
    let s = s.restart().await;
    let mut stream = watch(&s, &council.name, &resume).await;
    update_concern(&s, &v3, "fourth").await;
    let fourth = next_event(&mut stream).await;
    assert_eq!(fourth.version, 4);
    drop(stream);

    // Every event streamed was delivered with an entry of its own.
    let delivered: Vec<String> = s
        .ledger(EntryFilter {
            agency: Some(COUNCIL.to_owned()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action == "/accord.v1.EventService/WatchEvents")
        .flat_map(|e| e.draft.records)
        .filter(|r| r.starts_with("records/"))
        .collect();
    let expected: Vec<String> = (1..=4).map(|v| format!("{}@{v}", concern.name)).collect();
    assert_eq!(delivered, expected);
    s.stop().await;
}

/// With two servers on one PostgreSQL database, a stream on one is woken
/// by a change committed through the other (LISTEN/NOTIFY): long before
/// the stream would have looked again by itself (its heartbeat, a minute).
#[tokio::test]
async fn a_stream_on_one_server_hears_of_changes_through_another() {
    let Some(s) = TestServer::start(Db::Postgres).await else {
        return;
    };
    let subject = register_subject(&s).await;
    agree(&s, &CONCERNS_TO_COUNCIL).await;
    let council = council_follows_concerns(&s).await;
    let other = s
        .start_beside_tuned(|c| c.event_heartbeat_ms = 60_000)
        .await;
    let mut stream = watch(&other, &council.name, "").await;
    // The stream is open once its call has been answered; give its first
    // look at storage a moment, then change through the first server.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let concern = s
        .as_staff(POLICE, "pc-1", "officer")
        .create_record(
            &subject,
            CONCERN,
            concern_fields("disclosed at interview"),
            pb::Purpose::Safeguarding,
        )
        .await
        .unwrap();
    let item = next_message(&mut stream).await;
    let pb::watch_events_response::Item::Event(told) = item else {
        panic!("the first message is the event, not a heartbeat: {item:?}");
    };
    assert_eq!(told.resource, concern.name);
    drop(stream);
    other.stop().await;
    s.stop().await;
}

/// A server process killed with SIGKILL while it streams events and takes
/// writes loses no committed event: a stream resumed through a new process
/// from the last cursor received gets every change that was answered OK,
/// once, and nothing that was not committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_no_committed_event() {
    const WRITES: usize = 2000;
    let Some(a) = TestServer::start(Db::Postgres).await else {
        return;
    };
    let subject = register_subject(&a).await;
    agree(&a, &CONCERNS_TO_COUNCIL).await;
    let council = council_follows_concerns(&a).await;
    let data = tempfile::tempdir().unwrap();
    let key = a.ledger_key_file();
    let serve = || {
        let (child, address) = process::serve_with(
            &[
                "--database-url",
                &a.database_url,
                "--data-dir",
                data.path().to_str().unwrap(),
            ],
            &[
                ("ACCORD_LEDGER_KEY_FILE", key.to_str().unwrap()),
                ("ACCORD_EVENT_HEARTBEAT_MS", "200"),
            ],
        );
        (process::Reaped(child), address)
    };
    let connect = |address: String| async move {
        tonic::transport::Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let watch_on = |channel: tonic::transport::Channel, cursor: String| {
        let name = council.name.clone();
        async move {
            pb::event_service_client::EventServiceClient::new(channel)
                .watch_events(as_caller(
                    pb::WatchEventsRequest {
                        subscription: name,
                        cursor,
                    },
                    COUNCIL,
                    "system-1",
                    "social_worker",
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };

    let (mut server, address) = serve();
    let channel = connect(address).await;
    let mut stream = watch_on(channel.clone(), String::new()).await;
    // The police write through the process until it dies.
    let writer = {
        let (channel, subject) = (channel.clone(), subject.clone());
        tokio::spawn(async move {
            let mut answered = Vec::new();
            for n in 0..WRITES {
                let created = pb::record_service_client::RecordServiceClient::new(channel.clone())
                    .create_record(as_caller(
                        pb::CreateRecordRequest {
                            record: Some(pb::Record {
                                subject: subject.clone(),
                                record_class: CONCERN.to_owned(),
                                fields: concern_fields(&format!("concern {n}")),
                                ..Default::default()
                            }),
                            purpose: pb::Purpose::Safeguarding as i32,
                        },
                        POLICE,
                        "pc-1",
                        "officer",
                    ))
                    .await;
                match created {
                    Ok(r) => answered.push(r.into_inner().record.unwrap().name),
                    Err(_) => break,
                }
            }
            answered
        })
    };
    // Receive until a few events have come, then kill the server.
    let mut received: Vec<String> = Vec::new();
    let mut cursor = String::new();
    while received.len() < 20 {
        match next_message(&mut stream).await {
            pb::watch_events_response::Item::Event(e) => {
                received.push(e.resource);
                cursor = e.cursor;
            }
            pb::watch_events_response::Item::Heartbeat(h) => cursor = h.cursor,
        }
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    // What was already on its way is taken, up to the break.
    for _ in 0..WRITES {
        match tokio::time::timeout(std::time::Duration::from_secs(10), stream.message()).await {
            Ok(Ok(Some(pb::WatchEventsResponse {
                item: Some(pb::watch_events_response::Item::Event(e)),
            }))) => {
                received.push(e.resource);
                cursor = e.cursor;
            }
            Ok(Ok(Some(_))) => {}
            _ => break,
        }
    }
    let answered = writer.await.unwrap();
    assert!(answered.len() < WRITES, "the kill interrupted no write");

    // A new process; the stream resumes from the last cursor and catches
    // up: the first heartbeat says everything before it was considered.
    let (_server, address) = serve();
    let mut stream = watch_on(connect(address).await, cursor).await;
    for _ in 0..WRITES + 100 {
        match next_message(&mut stream).await {
            pb::watch_events_response::Item::Event(e) => received.push(e.resource),
            pb::watch_events_response::Item::Heartbeat(_) => break,
        }
    }
    let unique: std::collections::BTreeSet<&String> = received.iter().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "an event came twice: {received:?}"
    );
    for name in &answered {
        assert!(
            received.contains(name),
            "{name} was answered but never told of"
        );
    }
    // Nothing was told of that was not committed.
    let store = a.store().await;
    for name in &received {
        let id = accord::domain::RecordId::parse_name(name).unwrap();
        assert!(
            accord::store::Store::record(&store, &id, None)
                .await
                .unwrap()
                .is_some(),
            "{name} was told of but not committed"
        );
    }
    store.close().await;
    a.stop().await;
}

#[tokio::test]
async fn watching_follows_live_and_resumes_sqlite() {
    watching_follows_live_and_resumes(Db::Sqlite).await;
}

#[tokio::test]
async fn watching_follows_live_and_resumes_postgres() {
    watching_follows_live_and_resumes(Db::Postgres).await;
}

#[tokio::test]
async fn events_are_decided_and_audited_when_delivered_sqlite() {
    events_are_decided_and_audited_when_delivered(Db::Sqlite).await;
}

#[tokio::test]
async fn events_are_decided_and_audited_when_delivered_postgres() {
    events_are_decided_and_audited_when_delivered(Db::Postgres).await;
}

#[tokio::test]
async fn subscriptions_belong_to_their_agency_sqlite() {
    subscriptions_belong_to_their_agency(Db::Sqlite).await;
}

#[tokio::test]
async fn subscriptions_belong_to_their_agency_postgres() {
    subscriptions_belong_to_their_agency(Db::Postgres).await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_sqlite() {
    bad_subscriptions_are_refused(Db::Sqlite).await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_postgres() {
    bad_subscriptions_are_refused(Db::Postgres).await;
}
