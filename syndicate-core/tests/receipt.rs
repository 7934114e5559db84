//! Receipts made from a gate's real events: verified with no store, and
//! refused when any single byte of the file changes.

use std::sync::Arc;

use serde_json::json;
use syndicate_core::checkpoint::Trust;
use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, RulePolicy};
use syndicate_core::keys::SigningKey;
use syndicate_core::receipt::{self, ReceiptError};
use syndicate_core::{
    Action, Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, MemoryStore, Query,
    tree,
};

const POLICY: &str = r#"
id = "test"
version = "1"

[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
"#;

/// A store with noise, one request run to completion, more noise; the
/// request id.
async fn store_with_request() -> (Arc<MemoryStore>, String) {
    let store = Arc::new(MemoryStore::new(ChainId::new("receipts").unwrap()));
    let note = |n: u64| {
        EventDraft::new(
            "s",
            EventKind::Annotation,
            Actor::human("carol@example.com"),
            json!({ "note": "noise", "n": n }),
        )
    };
    for n in 0..5 {
        store.append_one(note(n)).await.unwrap();
    }
    let policy = Arc::new(RulePolicy::from_toml(POLICY).unwrap());
    let gate = Gate::open(store.clone(), policy, GateConfig::default())
        .await
        .unwrap();
    let action = Action::new("shell.exec", json!({ "argv": ["git", "push"] })).unwrap();
    let proposal = gate
        .propose(
            "s",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    let id = proposal.request_id.clone();
    store.append_one(note(5)).await.unwrap();
    gate.approve(&id, &Actor::human("bob@example.com"), &action.digest())
        .await
        .unwrap();
    let permit = gate.authorize(&id, &action).await.unwrap();
    gate.complete(permit, Outcome::succeeded()).await.unwrap();
    for n in 6..9 {
        store.append_one(note(n)).await.unwrap();
    }
    (store, id)
}

#[tokio::test]
async fn receipt_verifies_offline_and_refuses_every_changed_byte() {
    let (store, id) = store_with_request().await;
    let log = SigningKey::from_seed("log.example/receipts", &[3; 32]).unwrap();
    let (cp, signed) = tree::sign_head(store.as_ref(), "log.example/receipts", &log)
        .await
        .unwrap();
    let (made, later) = receipt::make(store.as_ref(), &id, &signed).await.unwrap();
    assert_eq!(later, 0);
    let bytes = made.to_bytes().unwrap();
    drop(store);

    let trust = Trust::log(log.verifier().clone());
    let verified = receipt::verify(&bytes, &trust).unwrap();
    assert_eq!(verified.checkpoint.checkpoint(), &cp);
    let kinds: Vec<EventKind> = verified.events.iter().map(|(e, _)| e.kind).collect();
    assert!(kinds.starts_with(&[EventKind::ActionProposed, EventKind::ActionApproved]));
    assert_eq!(kinds.last(), Some(&EventKind::ExecutionCompleted));
    assert!(
        verified
            .events
            .iter()
            .all(|(e, _)| e.request_id() == Some(id.as_str()))
    );

    let other_log = SigningKey::from_seed("log.example/receipts", &[4; 32]).unwrap();
    assert!(matches!(
        receipt::verify(&bytes, &Trust::log(other_log.verifier().clone())),
        Err(ReceiptError::Checkpoint(_))
    ));

    for i in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[i] ^= 0x01;
        assert!(
            receipt::verify(&changed, &trust).is_err(),
            "byte {i} ({:?}) changed and the receipt still verifies",
            char::from(bytes[i])
        );
    }
}

#[tokio::test]
async fn events_after_the_checkpoint_are_left_out_and_counted() {
    let (store, id) = store_with_request().await;
    let log = SigningKey::from_seed("log", &[3; 32]).unwrap();
    let proposed = store.query(&Query::request(&id)).await.unwrap()[0].seq;
    // A checkpoint covering the proposal and the note after it, nothing later.
    let mut tree = tree::VerifiedTree::new(store.chain().clone());
    tree.catch_up(store.as_ref(), Some(proposed + 2))
        .await
        .unwrap();
    let signed = tree.sign("o", &log).unwrap();
    let (made, later) = receipt::make(store.as_ref(), &id, &signed).await.unwrap();
    assert_eq!(made.events.len(), 1);
    assert_eq!(made.events[0].index, proposed);
    assert!(later >= 3, "{later}");
    let bytes = made.to_bytes().unwrap();
    receipt::verify(&bytes, &Trust::log(log.verifier().clone())).unwrap();

    let early = tree::VerifiedTree::new(store.chain().clone());
    let empty = early.sign("o", &log).unwrap();
    assert!(matches!(
        receipt::make(store.as_ref(), &id, &empty).await,
        Err(ReceiptError::NoEvents { size: 0, .. })
    ));
}
