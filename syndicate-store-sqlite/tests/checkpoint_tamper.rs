//! A chain cut short or rewritten with recomputed hashes verifies "intact"
//! on its own; against a checkpoint (size + root of verified events) each
//! is caught, on a real SQLite file.

use rusqlite::Connection;
use serde_json::json;
use syndicate_core::tree::{Mismatch, VerifiedTree, check_against_checkpoint, sync_nodes};
use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

fn note(text: &str, n: u64) -> EventDraft {
    EventDraft::new(
        "s",
        EventKind::Annotation,
        Actor::human("bob@example.com"),
        json!({ "note": text, "n": n }),
    )
}

const SIZE: u64 = 20;

/// A store of SIZE events with its node cache synced, and the checkpoint
/// (size, root) of those events.
async fn checkpointed(path: &std::path::Path) -> (SqliteStore, [u8; 32]) {
    let store = SqliteStore::open(path, ChainId::new("c").unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    for n in 0..SIZE {
        store.append_one(note("original", n)).await.unwrap();
    }
    assert_eq!(sync_nodes(&store).await.unwrap(), SIZE);
    let mut tree = VerifiedTree::new(store.chain().clone());
    tree.catch_up(&store, None).await.unwrap();
    assert_eq!(tree.size(), SIZE);
    let root = tree.root();
    assert_eq!(
        check_against_checkpoint(&store, SIZE, &root).await.unwrap(),
        Ok(())
    );
    (store, root)
}

/// Deletes rows from `from` on, behind the store's back.
fn delete_from(path: &std::path::Path, from: u64) {
    Connection::open(path)
        .unwrap()
        .execute("DELETE FROM events WHERE seq >= ?1", [from as i64])
        .unwrap();
}

async fn rewritten_from(from: u64) -> Mismatch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (store, root) = checkpointed(&path).await;
    delete_from(&path, from);
    for n in from..SIZE {
        store.append_one(note("rewritten", n)).await.unwrap();
    }
    assert!(
        store.verify().await.unwrap().is_intact(),
        "the rewritten chain verifies on its own"
    );
    check_against_checkpoint(&store, SIZE, &root)
        .await
        .unwrap()
        .expect_err("a rewrite must not match the checkpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_is_caught_against_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (store, root) = checkpointed(&path).await;
    delete_from(&path, SIZE - 3);
    assert!(store.verify().await.unwrap().is_intact());
    let mismatch = check_against_checkpoint(&store, SIZE, &root)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        mismatch,
        Mismatch::Shorter {
            size: SIZE,
            found: SIZE - 3
        }
    );
    assert!(mismatch.to_string().contains("cut short"), "{mismatch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_rewritten_with_fresh_hashes_is_caught() {
    let mismatch = rewritten_from(SIZE - 2).await;
    assert!(
        matches!(&mismatch, Mismatch::Root { size, .. } if *size == SIZE),
        "{mismatch}"
    );
    assert!(
        mismatch.to_string().contains("root at size 20"),
        "{mismatch}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_event_rewritten_with_every_later_one_is_caught() {
    let mismatch = rewritten_from(5).await;
    assert!(
        matches!(&mismatch, Mismatch::Root { size, .. } if *size == SIZE),
        "{mismatch}"
    );
}

/// A gate given the checkpoint refuses to run on the truncated or rewritten
/// store, and says why; on the intact store it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_given_a_checkpoint_degrades_on_a_cut_or_rewritten_store() {
    use std::sync::Arc;
    use syndicate_core::checkpoint::Checkpoint;
    use syndicate_core::gate::{Gate, GateConfig, RulePolicy};

    let policy = Arc::new(
        RulePolicy::from_toml(
            "id = \"p\"\nversion = \"1\"\n[[rules]]\nid = \"r\"\ntool = \"t\"\nrisk = \"low\"\ndecision = \"auto_approve\"\n",
        )
        .unwrap(),
    );
    for cut in [None, Some(SIZE - 3), Some(4)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (store, root) = checkpointed(&path).await;
        if let Some(from) = cut {
            delete_from(&path, from);
            if from == 4 {
                for n in from..SIZE + 2 {
                    store.append_one(note("rewritten", n)).await.unwrap();
                }
            }
        }
        let config = GateConfig {
            checkpoints: vec![Checkpoint::new("syndicate/c", SIZE, root)],
            ..GateConfig::default()
        };
        let gate = Gate::open(Arc::new(store), policy.clone(), config)
            .await
            .unwrap();
        match (cut, gate.degraded()) {
            (None, None) => {}
            (Some(4), Some(reason)) => {
                assert!(reason.contains("root at size 20"), "{reason}");
            }
            (Some(_), Some(reason)) => {
                assert!(reason.contains("cut short"), "{reason}");
                assert!(
                    reason.contains("checkpoint \"syndicate/c\" of size 20"),
                    "{reason}"
                );
            }
            (cut, degraded) => panic!("cut {cut:?}: degraded {degraded:?}"),
        }
    }
}
