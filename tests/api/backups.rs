//! `accord backup` under write load: the copy is consistent, a server
//! starts on it, `ledger verify` passes, and its tree is a prefix of the
//! original's (a consistency proof from the original server says so).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use accord::api::pb;
use accord::api::pb::audit_service_client::AuditServiceClient;
use accord::api::pb::record_service_client::RecordServiceClient;
use accord::api::pb::subject_service_client::SubjectServiceClient;
use accord::store::Store;

use crate::helpers::process::{Reaped, accord, channel_to, register_council, start};
use crate::helpers::*;

/// The most records the background load writes.
const MAX_WRITES: u64 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_a_prefix_of_the_ledger() {
    let original = tempfile::tempdir().unwrap();
    let data = original.path().to_str().unwrap().to_owned();
    let (child, address) = start(
        &[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
        ],
        &[("ACCORD_CHECKPOINT_INTERVAL_MS", "50")],
    );
    let server = Reaped(child);
    let channel = channel_to(&address).await;
    register_council(&channel).await;
    let subject = SubjectServiceClient::new(channel.clone())
        .create_subject(as_caller(
            pb::CreateSubjectRequest {
                subject: Some(subject(&nhs_number(5), "Jo", "Bloggs", "2015-03-02")),
                purpose: pb::Purpose::DirectCare as i32,
                create_despite_match: false,
            },
            COUNCIL,
            "sw-1",
            "social_worker",
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap()
        .name;

    // Write records until told to stop (bounded).
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn({
        let (stop, written, channel) = (stop.clone(), written.clone(), channel.clone());
        async move {
            let mut records = RecordServiceClient::new(channel);
            while !stop.load(Ordering::SeqCst) && written.load(Ordering::SeqCst) < MAX_WRITES {
                records
                    .create_record(as_caller(
                        pb::CreateRecordRequest {
                            record: Some(pb::Record {
                                subject: subject.clone(),
                                record_class: CLASS.to_owned(),
                                fields: referral_fields("noted at school"),
                                ..Default::default()
                            }),
                            purpose: pb::Purpose::Safeguarding as i32,
                        },
                        COUNCIL,
                        "sw-1",
                        "social_worker",
                    ))
                    .await
                    .expect("a write under load");
                written.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    while written.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The backup, by another process, while the writes go on.
    let copy = tempfile::tempdir().unwrap();
    let restored_dir = copy.path().join("restored");
    let restored = restored_dir.to_str().unwrap().to_owned();
    let backup = accord()
        .args([
            "backup",
            "--data-dir",
            &data,
            "--to",
            &restored,
            "--with-key",
        ])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{backup:?}");
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(said.contains("backed up the ledger at tree size"), "{said}");
    let during = written.load(Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    assert!(
        written.load(Ordering::SeqCst) > during,
        "the writes went on after the backup"
    );
    // A second backup into the same place is refused.
    let again = accord()
        .args(["backup", "--data-dir", &data, "--to", &restored])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // The copy verifies, and a server starts on it.
    let verified = accord()
        .args(["ledger", "verify", "--data-dir", &restored])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let restored_store = accord::store::connect(&accord::store::sqlite_url(&restored_dir), true)
        .await
        .unwrap();
    let restored_head = restored_store.tree_head().await.unwrap();
    restored_store.close().await;
    let (child, restored_address) = start(
        &[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &restored,
        ],
        &[],
    );
    let restored_server = Reaped(child);
    let checkpoint = AuditServiceClient::new(channel_to(&restored_address).await)
        .get_checkpoint(as_caller(
            pb::GetCheckpointRequest {
                purpose: pb::Purpose::Administration as i32,
                refresh: true,
            },
            COUNCIL,
            "aud-1",
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert!(checkpoint.size as u64 >= restored_head.size);
    drop(restored_server);

    // The restored tree is a prefix of the original's.
    let proof = AuditServiceClient::new(channel)
        .get_consistency_proof(as_caller(
            pb::GetConsistencyProofRequest {
                purpose: pb::Purpose::Administration as i32,
                first_size: restored_head.size as i64,
                second_size: 0,
            },
            COUNCIL,
            "aud-1",
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let latest = proof.second_checkpoint.unwrap();
    assert!(latest.size as u64 > restored_head.size);
    accord::ledger::merkle::verify_consistency(
        restored_head.size,
        latest.size as u64,
        &proof.hashes,
        &restored_head.root,
        &latest.root_hash,
    )
    .expect("the restored tree is a prefix of the original");
    drop(server);
}
