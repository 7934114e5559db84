//! The story check names each event that breaks the protocol, by seq, even
//! when the chain's integrity is intact (events written by something other
//! than the gate).

use serde_json::{Value, json};
use syndicate_core::story::StoryRule;
use syndicate_core::{
    Action, Actor, ChainId, EventDraft, EventKind, EventStoreExt, MemoryStore, check_story,
};

fn action() -> Action {
    Action::new("shell.exec", json!({"argv": ["ls"]})).unwrap()
}

fn proposed(id: &str, required: u32) -> Value {
    let a = action();
    json!({
        "request_id": id, "action": a.to_value(), "action_digest": a.digest(),
        "requester": "bot", "risk_tier": "high", "decision": "human", "rule": "r",
        "approvals_required": required, "approval_ttl_seconds": 60, "controls": []
    })
}

fn approved(id: &str, approver: &str, digest: &str) -> Value {
    json!({"request_id": id, "action_digest": digest, "approver": approver, "method": "human"})
}

fn started(id: &str) -> Value {
    let d = action().digest();
    json!({"request_id": id, "approved_digest": d, "executed_digest": d})
}

fn completed(id: &str) -> Value {
    json!({"request_id": id, "outcome": "succeeded"})
}

async fn chain(events: Vec<(EventKind, Value)>) -> MemoryStore {
    let store = MemoryStore::new(ChainId::new("story").unwrap());
    for (kind, body) in events {
        store
            .append_one(EventDraft::new("s", kind, Actor::system("test"), body))
            .await
            .unwrap();
    }
    assert!(store.verify().await.unwrap().is_intact());
    store
}

async fn rules(events: Vec<(EventKind, Value)>) -> Vec<(u64, StoryRule)> {
    let store = chain(events).await;
    check_story(&store)
        .await
        .unwrap()
        .violations
        .into_iter()
        .map(|v| (v.seq, v.rule))
        .collect()
}

use EventKind::*;

#[tokio::test]
async fn a_proper_story_is_consistent() {
    let d = action().digest().to_string();
    let store = chain(vec![
        (ActionProposed, proposed("r1", 1)),
        (ActionApproved, approved("r1", "bob", &d)),
        (ExecutionStarted, started("r1")),
        (ExecutionCompleted, completed("r1")),
    ])
    .await;
    let report = check_story(&store).await.unwrap();
    assert!(report.is_consistent(), "{:?}", report.violations);
    assert_eq!(
        (report.events, report.requests, report.open_requests),
        (4, 1, 0)
    );
}

#[tokio::test]
async fn start_without_approval_is_named_by_seq() {
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ExecutionStarted, started("r1"))
        ])
        .await,
        [(1, StoryRule::StartWithoutApproval)]
    );
    // Approval after the start does not make it right.
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ExecutionStarted, started("r1")),
            (ActionApproved, approved("r1", "bob", &d)),
        ])
        .await,
        [(1, StoryRule::StartWithoutApproval)]
    );
}

#[tokio::test]
async fn two_person_rule_needs_two_distinct_approvers() {
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 2)),
            (ActionApproved, approved("r1", "bob", &d)),
            (ActionApproved, approved("r1", "bob", &d)),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [(3, StoryRule::StartWithoutApproval)]
    );
}

#[tokio::test]
async fn approval_of_another_digest_does_not_count() {
    let other = Action::new("shell.exec", json!({"argv": ["rm"]}))
        .unwrap()
        .digest()
        .to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "bob", &other)),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [
            (1, StoryRule::ApprovalDigest),
            (2, StoryRule::StartWithoutApproval)
        ]
    );
}

#[tokio::test]
async fn double_start_and_orphan_completion_are_reported() {
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "bob", &d)),
            (ExecutionStarted, started("r1")),
            (ExecutionStarted, started("r1")),
            (ExecutionCompleted, completed("r2")),
        ])
        .await,
        [
            (3, StoryRule::DoubleStart),
            (4, StoryRule::CompletionWithoutStart)
        ]
    );
}

#[tokio::test]
async fn proposed_digest_must_be_the_digest_of_the_action() {
    let mut body = proposed("r1", 1);
    body["action"]["args"]["argv"][0] = json!("rm");
    assert_eq!(
        rules(vec![(ActionProposed, body)]).await,
        [(0, StoryRule::ProposedDigest)]
    );
}

#[tokio::test]
async fn start_of_a_denied_request_and_drifted_start_are_reported() {
    let d = action().digest().to_string();
    let mut drifted = started("r2");
    drifted["executed_digest"] = json!("0".repeat(64));
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "bob", &d)),
            (
                ActionDenied,
                json!({"request_id": "r1", "reason": "no", "by": "x", "method": "human"})
            ),
            (ExecutionStarted, started("r1")),
            (ActionProposed, proposed("r2", 1)),
            (ActionApproved, approved("r2", "bob", &d)),
            (ExecutionStarted, drifted),
        ])
        .await,
        [
            (3, StoryRule::StartAfterDenial),
            (6, StoryRule::StartDigest)
        ]
    );
}

#[tokio::test]
async fn completed_requests_are_forgotten() {
    let d = action().digest().to_string();
    let store = chain(vec![
        (ActionProposed, proposed("r1", 1)),
        (ActionProposed, proposed("r2", 1)),
        (ActionApproved, approved("r1", "bob", &d)),
        (ExecutionStarted, started("r1")),
        (ExecutionCompleted, completed("r1")),
    ])
    .await;
    let report = check_story(&store).await.unwrap();
    assert!(report.is_consistent());
    assert_eq!(report.open_requests, 1);
}
