//! Signed checkpoints and Merkle proofs, checked the way an outside auditor
//! would: the key from the data directory, the proofs with the RFC 9162
//! verification algorithms, the leaves recomputed from the stored entries.

use accord::api::pb;
use accord::ledger::checkpoint::{SigningKey, open_checkpoint};
use accord::ledger::merkle::{verify_consistency, verify_inclusion};
use accord::store::EntryFilter;
use tonic::Code;

use crate::helpers::*;

fn auditor<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "leeds-cc", "ig-1", "auditor")
}

const ADMIN: i32 = pb::Purpose::Administration as i32;

async fn checkpoint(s: &TestServer, refresh: bool) -> (pb::Checkpoint, String) {
    let r = s
        .audit()
        .get_checkpoint(auditor(pb::GetCheckpointRequest {
            purpose: ADMIN,
            refresh,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.verifier_keys, vec![r.verifier_key.clone()]);
    let checkpoint = r.checkpoint.unwrap();
    // The service says which published key signed it.
    assert_eq!(checkpoint.signed_by, vec![r.verifier_key.clone()]);
    (checkpoint, r.verifier_key)
}

/// Makes `n` audited calls by the council.
async fn some_calls(s: &TestServer, n: usize) {
    for _ in 0..n {
        s.agencies()
            .list_agencies(
                s.as_staff("leeds-cc", "sw-1", "social_worker")
                    .request(pb::ListAgenciesRequest::default()),
            )
            .await
            .unwrap();
    }
}

async fn proofs_verify(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    s.register(&[
        ("leeds-cc", pb::AgencyKind::Council),
        ("wy-police", pb::AgencyKind::Police),
    ])
    .await;
    some_calls(&s, 5).await;

    // The key handed out matches the one in the data directory, and the
    // checkpoint's note verifies with it.
    let (first, vkey) = checkpoint(&s, true).await;
    let on_disk =
        std::fs::read_to_string(s.data_dir().join("ledger-signing.key")).expect("the key file");
    assert_eq!(SigningKey::parse(&on_disk).unwrap().verifier_key(), vkey);
    let opened = open_checkpoint(&first.note, &[&vkey]).expect("the checkpoint verifies");
    assert_eq!(opened.signed_by, vec![vkey.clone()]);
    let opened = opened.content;
    assert_eq!(opened.origin, "accord.local/ledger");
    assert_eq!(opened.head.size as i64, first.size);
    assert_eq!(opened.head.root.to_vec(), first.root_hash);
    // It covers every entry before this call's own.
    let mut ledger = s.ledger(EntryFilter::default()).await;
    assert_eq!(
        ledger.pop().unwrap().draft.action,
        "/accord.v1.AuditService/GetCheckpoint"
    );
    assert_eq!(first.size as usize, ledger.len());

    // Every entry's inclusion proof verifies against the signed root, and
    // the leaf hash is the one recomputed from the stored entry.
    for entry in ledger.iter().filter(|e| e.draft.agency == "leeds-cc") {
        let p = s
            .audit()
            .get_inclusion_proof(auditor(pb::GetInclusionProofRequest {
                purpose: ADMIN,
                entry: Some(pb::get_inclusion_proof_request::Entry::LeafIndex(
                    entry.index,
                )),
                tree_size: first.size,
            }))
            .await
            .unwrap()
            .into_inner();
        let leaf = entry.leaf_hash();
        assert_eq!(p.entry.as_ref().unwrap().leaf_hash, leaf.to_vec());
        verify_inclusion(
            entry.index as u64,
            first.size as u64,
            &leaf,
            &p.hashes,
            &opened.head.root,
        )
        .expect("the inclusion proof verifies");
        assert_eq!(p.checkpoint.unwrap().note, first.note);
    }

    // By id, against the latest checkpoint, which covers the entry.
    let target = &ledger[ledger.len() - 1];
    let p = s
        .audit()
        .get_inclusion_proof(auditor(pb::GetInclusionProofRequest {
            purpose: ADMIN,
            entry: Some(pb::get_inclusion_proof_request::Entry::EntryId(
                target.draft.id.clone(),
            )),
            tree_size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let covering = p.checkpoint.unwrap();
    assert_eq!(covering.signed_by, vec![vkey.clone()]);
    let covering = open_checkpoint(&covering.note, &[&vkey]).unwrap().content;
    assert!(covering.head.size > target.index as u64);
    assert_eq!(covering.head.size as i64, p.tree_size);
    verify_inclusion(
        target.index as u64,
        covering.head.size,
        &target.leaf_hash(),
        &p.hashes,
        &covering.head.root,
    )
    .unwrap();

    // The ledger grows; the new checkpoint extends the first one.
    some_calls(&s, 7).await;
    let (second, _) = checkpoint(&s, true).await;
    assert!(second.size > first.size + 7);
    let second_head = open_checkpoint(&second.note, &[&vkey])
        .unwrap()
        .content
        .head;
    let c = s
        .audit()
        .get_consistency_proof(auditor(pb::GetConsistencyProofRequest {
            purpose: ADMIN,
            first_size: first.size,
            second_size: second.size,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.first_checkpoint.unwrap().note, first.note);
    assert_eq!(c.second_checkpoint.unwrap().note, second.note);
    verify_consistency(
        first.size as u64,
        second.size as u64,
        &c.hashes,
        &opened.head.root,
        &second_head.root,
    )
    .expect("the consistency proof verifies");
    // The same proof does not tie the first root to a different one.
    assert!(
        verify_consistency(
            first.size as u64,
            second.size as u64,
            &c.hashes,
            &opened.head.root,
            &opened.head.root,
        )
        .is_err()
    );

    // The background publisher signs checkpoints as the ledger grows.
    some_calls(&s, 3).await;
    let grown = s.ledger(EntryFilter::default()).await.len() as i64;
    let mut latest = 0;
    for _ in 0..100 {
        latest = checkpoint(&s, false).await.0.size;
        if latest >= grown {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(latest >= grown, "no checkpoint covers {grown} entries");

    // An export: the checkpoint first, then every entry the council may
    // see, each proved against it; nothing of the police's own calls.
    s.agencies()
        .list_agencies(
            s.as_staff("wy-police", "pc-1", "officer")
                .request(pb::ListAgenciesRequest::default()),
        )
        .await
        .unwrap();
    let exported = export(&s, 0).await;
    let signed = match &exported[0].item {
        Some(pb::export_entries_response::Item::Checkpoint(c)) => {
            open_checkpoint(&c.note, &[&vkey]).unwrap().content.head
        }
        other => panic!("the export starts with {other:?}"),
    };
    let visible: Vec<_> = s
        .ledger(EntryFilter {
            visible_to: Some("leeds-cc".into()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| (e.index as u64) < signed.size)
        .collect();
    assert_eq!(exported.len() - 1, visible.len());
    for (item, stored) in exported[1..].iter().zip(&visible) {
        let Some(pb::export_entries_response::Item::Entry(e)) = &item.item else {
            panic!("{item:?}");
        };
        let entry = e.entry.as_ref().unwrap();
        assert_eq!(entry.index, stored.index);
        assert_ne!(entry.agency, "agencies/wy-police");
        assert_eq!(entry.leaf_hash, stored.leaf_hash().to_vec());
        verify_inclusion(
            stored.index as u64,
            signed.size,
            &stored.leaf_hash(),
            &e.inclusion_proof,
            &signed.root,
        )
        .expect("the exported proof verifies");
    }
    // Resuming from an index skips what came before.
    let tail = export(&s, visible[3].index).await;
    let Some(pb::export_entries_response::Item::Entry(e)) = &tail[1].item else {
        panic!("{:?}", tail[1]);
    };
    assert_eq!(e.entry.as_ref().unwrap().index, visible[3].index);

    s.stop().await;
}

/// Every item of an export by the council's auditor from `start`.
async fn export(s: &TestServer, start: i64) -> Vec<pb::ExportEntriesResponse> {
    let mut stream = s
        .audit()
        .export_entries(auditor(pb::ExportEntriesRequest {
            purpose: ADMIN,
            start_index: start,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        items.push(item);
    }
    items
}

#[tokio::test]
async fn proofs_verify_against_signed_checkpoints_sqlite() {
    proofs_verify(Db::Sqlite).await;
}

#[tokio::test]
async fn proofs_verify_against_signed_checkpoints_postgres() {
    proofs_verify(Db::Postgres).await;
}

#[tokio::test]
async fn bad_proof_requests_are_refused_and_audited() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    s.register(&[
        ("leeds-cc", pb::AgencyKind::Council),
        ("wy-police", pb::AgencyKind::Police),
    ])
    .await;
    some_calls(&s, 3).await;
    s.agencies()
        .list_agencies(
            s.as_staff("wy-police", "pc-1", "officer")
                .request(pb::ListAgenciesRequest::default()),
        )
        .await
        .unwrap();
    let police_entry = s
        .ledger(EntryFilter {
            agency: Some("wy-police".into()),
            ..Default::default()
        })
        .await
        .pop()
        .unwrap();
    let mut audit = s.audit();
    let asked = |entry, tree_size| {
        auditor(pb::GetInclusionProofRequest {
            purpose: ADMIN,
            entry,
            tree_size,
        })
    };
    use pb::get_inclusion_proof_request::Entry;

    let e = audit
        .get_inclusion_proof(asked(Some(Entry::LeafIndex(3)), 2))
        .await
        .unwrap_err();
    assert_eq!(violations(&e)[0].0, "tree_size");
    let e = audit
        .get_inclusion_proof(asked(Some(Entry::LeafIndex(1)), 10_000))
        .await
        .unwrap_err();
    assert_eq!(violations(&e)[0].0, "tree_size");
    let e = audit.get_inclusion_proof(asked(None, 0)).await.unwrap_err();
    assert_eq!(violations(&e)[0].0, "entry");
    let e = audit
        .get_inclusion_proof(asked(Some(Entry::LeafIndex(-1)), 0))
        .await
        .unwrap_err();
    assert_eq!(violations(&e)[0].0, "leaf_index");
    // Another agency's entry cannot be proved (nor learnt of).
    let e = audit
        .get_inclusion_proof(asked(Some(Entry::LeafIndex(police_entry.index)), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    for (first_size, second_size, field) in [(0, 3, "first_size"), (4, 3, "second_size")] {
        let e = audit
            .get_consistency_proof(auditor(pb::GetConsistencyProofRequest {
                purpose: ADMIN,
                first_size,
                second_size,
            }))
            .await
            .unwrap_err();
        assert_eq!(violations(&e)[0].0, field);
    }
    // Only auditors.
    let e = audit
        .get_checkpoint(s.as_staff("leeds-cc", "sw-1", "social_worker").request(
            pb::GetCheckpointRequest {
                purpose: ADMIN,
                refresh: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Each refusal has its entry.
    let refusals = s
        .ledger(EntryFilter {
            agency: Some("leeds-cc".into()),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.draft.action.contains("AuditService"))
        .map(|e| e.draft.reason_code)
        .collect::<Vec<_>>();
    assert_eq!(
        refusals,
        [
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "NOT_FOUND",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "ROLE_NOT_PERMITTED"
        ]
    );
    s.stop().await;
}
