//! Consent and objection over the API, and the reads they allow or stop.

use std::sync::Arc;

use accord::api::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

async fn gp_reads(s: &TestServer, record: &str) -> Result<pb::Record, tonic::Status> {
    s.as_staff(HEALTH, "gp-1", "gp")
        .get_record(record, pb::Purpose::DirectCare)
        .await
}

fn consent(subject: &str, kind: pb::ConsentKind, recipients: &[&str]) -> pb::Consent {
    pb::Consent {
        subject: subject.to_owned(),
        kind: kind as i32,
        purposes: vec![pb::Purpose::DirectCare as i32],
        recipients: recipients.iter().map(|a| format!("agencies/{a}")).collect(),
        channel: pb::ConsentChannel::FaceToFace as i32,
        note: "discussed at the surgery with their mother present".to_owned(),
        ..Default::default()
    }
}

async fn record(s: &TestServer, agency: &str, c: pb::Consent) -> pb::Consent {
    s.consents()
        .record_consent(
            s.as_staff(agency, "staff-1", "gp")
                .request(pb::RecordConsentRequest { consent: Some(c) }),
        )
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap()
}

async fn withdraw(s: &TestServer, name: &str) -> Result<pb::Consent, tonic::Status> {
    s.consents()
        .withdraw_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::WithdrawConsentRequest {
                    name: name.to_owned(),
                    reason: "the patient changed their mind".to_owned(),
                }),
        )
        .await
        .map(|r| r.into_inner().consent.unwrap())
}

async fn list(s: &TestServer, agency: &str, subject: &str) -> Vec<pb::Consent> {
    s.consents()
        .list_consents(
            s.as_staff(agency, "staff-1", "any")
                .request(pb::ListConsentsRequest {
                    subject: subject.to_owned(),
                    ..Default::default()
                }),
        )
        .await
        .unwrap()
        .into_inner()
        .consents
}

async fn consent_based_access(db: Db) {
    let clock = Arc::new(TestClock::default());
    let Some((s, _, subject)) = three_agencies(db, clock).await else {
        return;
    };
    let referral = create_referral(&s, &subject).await;
    agree(&s, &GP_SHARE).await;

    let refused = gp_reads(&s, &referral.name).await.unwrap_err();
    assert_eq!(reason(&refused), "CONSENT_REQUIRED");

    let given = record(
        &s,
        HEALTH,
        consent(&subject, pb::ConsentKind::Consent, &[HEALTH]),
    )
    .await;
    assert_eq!(given.state, pb::ConsentState::Effective as i32);
    assert_eq!(given.recorded_by, format!("agencies/{HEALTH}"));
    let read = gp_reads(&s, &referral.name).await.unwrap();
    assert_eq!(
        last_entry(&s, HEALTH).await.draft.grounds.consent,
        given.name
    );
    let mut fields: Vec<&str> = read.fields.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["referral_date", "service"]);

    // Withdrawal stops access on the very next request.
    let withdrawn = withdraw(&s, &given.name).await.unwrap();
    assert_eq!(withdrawn.state, pb::ConsentState::Withdrawn as i32);
    let refused = gp_reads(&s, &referral.name).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "CONSENT_WITHDRAWN");
    let info = refused.get_details_error_info().unwrap();
    assert_eq!(info.metadata.get("consent"), Some(&given.name));
    let entry = last_entry(&s, HEALTH).await;
    assert_eq!(entry.draft.reason_code, "CONSENT_WITHDRAWN");
    assert_eq!(entry.draft.grounds.consent, given.name);
    let again = withdraw(&s, &given.name).await.unwrap_err();
    assert_eq!(reason(&again), "CONSENT_ALREADY_WITHDRAWN");
    // History is kept: the withdrawn consent is still listed, as withdrawn.
    let history = list(&s, HEALTH, &subject).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, pb::ConsentState::Withdrawn as i32);
    assert_eq!(
        history[0].withdrawal.as_ref().unwrap().reason,
        "the patient changed their mind"
    );

    // An objection beats a fresh consent.
    record(
        &s,
        HEALTH,
        consent(&subject, pb::ConsentKind::Consent, &[HEALTH]),
    )
    .await;
    assert!(gp_reads(&s, &referral.name).await.is_ok());
    let objection = record(
        &s,
        COUNCIL,
        consent(&subject, pb::ConsentKind::Objection, &[]),
    )
    .await;
    let refused = gp_reads(&s, &referral.name).await.unwrap_err();
    assert_eq!(reason(&refused), "OBJECTION_RECORDED");
    assert!(
        refused.message().contains(&objection.name),
        "{}",
        refused.message()
    );

    // The police see only what concerns them: the objection names every
    // recipient, the consents name only the trust.
    let seen = list(&s, POLICE, &subject).await;
    let names: Vec<&str> = seen.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [objection.name.as_str()]);
    assert_eq!(list(&s, HEALTH, &subject).await.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn consent_based_access_sqlite() {
    consent_based_access(Db::Sqlite).await;
}

#[tokio::test]
async fn consent_based_access_postgres() {
    consent_based_access(Db::Postgres).await;
}

#[tokio::test]
async fn bad_consents_are_named() {
    let clock = Arc::new(TestClock::default());
    let (s, _, subject) = three_agencies(Db::Sqlite, clock).await.unwrap();
    let mut bad = consent(
        "subjects/nobody",
        pb::ConsentKind::Unspecified,
        &["no-such"],
    );
    bad.channel = 0;
    bad.record_classes = vec!["health.summary".to_owned()];
    let refused = s
        .consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::RecordConsentRequest { consent: Some(bad) }),
        )
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "consent.subject",
            "consent.kind",
            "consent.channel",
            "consent.record_classes[0]"
        ]
    );
    let mut unknown = consent(&subject, pb::ConsentKind::Consent, &["no-such"]);
    unknown.record_classes = vec!["recordClasses/health.teeth".to_owned()];
    let refused = s
        .consents()
        .record_consent(
            s.as_staff(HEALTH, "gp-1", "gp")
                .request(pb::RecordConsentRequest {
                    consent: Some(unknown),
                }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        violations(&refused),
        [
            (
                "consent.record_classes[0]".to_owned(),
                "recordClasses/health.teeth is not in the catalogue".to_owned()
            ),
            (
                "consent.recipients[0]".to_owned(),
                "agencies/no-such is not registered".to_owned()
            ),
        ]
    );
    assert!(list(&s, HEALTH, &subject).await.is_empty());
    s.stop().await;
}

/// Two server processes on one PostgreSQL database: an approval, a
/// suspension, a consent and its withdrawal made through one apply to the
/// very next read through the other.
#[tokio::test]
async fn changes_apply_at_once_in_every_process() {
    let clock = Arc::new(TestClock::default());
    let Some((a, _, subject)) = three_agencies(Db::Postgres, clock).await else {
        return;
    };
    let b = a.start_beside().await;
    let referral = create_referral(&a, &subject).await;
    assert_unknown(
        &gp_reads(&b, &referral.name).await.unwrap_err(),
        &referral.name,
    );

    let agreement = agree(&a, &GP_SHARE).await;
    assert_eq!(
        reason(&gp_reads(&b, &referral.name).await.unwrap_err()),
        "CONSENT_REQUIRED"
    );
    let given = record(&a, HEALTH, consent(&subject, pb::ConsentKind::Consent, &[])).await;
    assert!(gp_reads(&b, &referral.name).await.is_ok());

    b.agreements()
        .suspend_agreement(b.as_staff(COUNCIL, "ig-1", "ig_lead").request(
            pb::SuspendAgreementRequest {
                name: agreement.name.clone(),
                reason: "investigating a complaint".to_owned(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        reason(&gp_reads(&a, &referral.name).await.unwrap_err()),
        "AGREEMENT_NOT_ACTIVE"
    );
    a.agreements()
        .reinstate_agreement(a.as_staff(HEALTH, "ig-1", "ig_lead").request(
            pb::ReinstateAgreementRequest {
                name: agreement.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    assert!(gp_reads(&b, &referral.name).await.is_ok());

    withdraw(&b, &given.name).await.unwrap();
    assert_eq!(
        reason(&gp_reads(&a, &referral.name).await.unwrap_err()),
        "CONSENT_WITHDRAWN"
    );
    b.stop().await;
    a.stop().await;
}

/// Withdrawals made through this server race reads made through another
/// `accord serve` process on the same PostgreSQL database, which decides
/// on the consents it holds in memory and has them checked when each
/// read's entry commits. A read started after a withdrawal was answered is
/// refused; in the ledger, no read permitted on a consent comes after that
/// consent's withdrawal; and every read answered has its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawals_race_reads_in_another_process() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const ROUNDS: usize = 5;
    const READERS: usize = 4;
    const MAX_READS: usize = 400;

    let clock = Arc::new(TestClock::default());
    let Some((a, _, subject)) = three_agencies(Db::Postgres, clock).await else {
        return;
    };
    let referral = create_referral(&a, &subject).await;
    agree(&a, &GP_SHARE).await;
    let data = tempfile::tempdir().unwrap();
    let key = a.ledger_key_file();
    let (other, address) = process::serve_with(
        &[
            "--database-url",
            &a.database_url,
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        &[("ACCORD_LEDGER_KEY_FILE", key.to_str().unwrap())],
    );
    let other = process::Reaped(other);
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let read = |channel: tonic::transport::Channel, name: String| async move {
        pb::record_service_client::RecordServiceClient::new(channel)
            .get_record(as_caller(
                pb::GetRecordRequest {
                    name,
                    purpose: pb::Purpose::DirectCare as i32,
                    ..Default::default()
                },
                HEALTH,
                "gp-1",
                "gp",
            ))
            .await
    };

    let mut answered_ok = 0;
    let mut consents = Vec::new();
    for _ in 0..ROUNDS {
        let given = record(&a, HEALTH, consent(&subject, pb::ConsentKind::Consent, &[])).await;
        consents.push(given.name.clone());
        let (stop, oks) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (channel, name) = (channel.clone(), referral.name.clone());
                let (stop, oks) = (Arc::clone(&stop), Arc::clone(&oks));
                tokio::spawn(async move {
                    for _ in 0..MAX_READS {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        match read(channel.clone(), name.clone()).await {
                            Ok(_) => {
                                oks.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => assert_eq!(reason(&e), "CONSENT_WITHDRAWN", "{e:?}"),
                        }
                    }
                })
            })
            .collect();
        // Withdraw while the reads are going.
        for _ in 0..500 {
            if oks.load(Ordering::SeqCst) >= READERS {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            oks.load(Ordering::SeqCst) >= READERS,
            "the reads did not get going"
        );
        withdraw(&a, &given.name).await.unwrap();
        // Answered: from now on no read is permitted.
        for _ in 0..5 {
            let refused = read(channel.clone(), referral.name.clone())
                .await
                .unwrap_err();
            assert_eq!(reason(&refused), "CONSENT_WITHDRAWN");
        }
        stop.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.await.unwrap();
        }
        answered_ok += oks.load(Ordering::SeqCst);
    }

    let entries = accord::store::Store::entries(
        &a.served_store,
        &Default::default(),
        accord::store::After::Start,
        100_000,
    )
    .await
    .unwrap();
    let reads: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.draft.action.ends_with("/GetRecord")
                && e.draft.outcome == accord::ledger::Outcome::Permitted
        })
        .collect();
    assert_eq!(
        reads.len(),
        answered_ok,
        "every read answered has its entry"
    );
    for name in &consents {
        let withdrawn = entries
            .iter()
            .find(|e| {
                e.draft.action.ends_with("/WithdrawConsent") && e.draft.records == [name.clone()]
            })
            .expect("the withdrawal's entry")
            .index;
        let on_it: Vec<i64> = reads
            .iter()
            .filter(|e| &e.draft.grounds.consent == name)
            .map(|e| e.index)
            .collect();
        assert!(!on_it.is_empty(), "reads were permitted on {name}");
        assert!(
            on_it.iter().all(|i| *i < withdrawn),
            "a read permitted on {name} committed after its withdrawal (entry {withdrawn}): {on_it:?}"
        );
    }
    drop(other);
    a.stop().await;
}
