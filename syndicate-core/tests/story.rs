//! The story check names each event that breaks the protocol, by seq, even
//! when the chain's integrity is intact (events written by something other
//! than the gate).

use serde_json::{Value, json};
use syndicate_core::protocol;
use syndicate_core::story::StoryRule;
use syndicate_core::{
    Action, Actor, ChainId, EventDraft, EventKind, EventStoreExt, MemoryStore, Timestamp,
    check_story,
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

/// A draft as the gate writes it: the actor is the requester, approver or
/// denier the body names (the gate for the rest), the single-use key the
/// protocol's (the legacy `execution.started:` form for starts, so a test
/// can record a start after a denial). A body member `"once"` overrides the
/// key and `"actor"` the actor (both removed from the body).
fn draft(kind: EventKind, mut body: Value) -> EventDraft {
    let id = body["request_id"].as_str().unwrap_or_default().to_owned();
    let named = |m: &str| body[m].as_str().map(str::to_owned);
    let policy = body["method"] == "policy";
    let mut actor = match (kind, named("requester"), named("approver"), named("by")) {
        (ActionProposed, Some(r), _, _) => Actor::agent(r),
        (ActionApproved, _, Some(a), _) if policy => Actor::policy(a),
        (ActionApproved, _, Some(a), _) => Actor::human(a),
        (ActionDenied, _, _, Some(b)) => Actor::human(b),
        _ => Actor::system("gate"),
    };
    let approver = named("approver");
    let mut once = protocol::once_keys(kind, &id, approver.as_deref()).pop();
    let object = body.as_object_mut().unwrap();
    if let Some(o) = object.remove("once") {
        once = o.as_str().map(str::to_owned);
    }
    if let Some(a) = object.remove("actor") {
        actor = Actor::human(a.as_str().unwrap());
    }
    let mut draft = EventDraft::new("s", kind, actor, body);
    draft.once = once;
    draft
}

async fn chain(events: Vec<(EventKind, Value)>) -> MemoryStore {
    let store = MemoryStore::new(ChainId::new("story").unwrap());
    for (kind, body) in events {
        store.append_one(draft(kind, body)).await.unwrap();
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

fn with_once(mut body: Value, once: &str) -> Value {
    body["once"] = json!(once);
    body
}

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
            // One identity in another case, under another key: still one.
            (ActionApproved, approved("r1", "Bob", &d)),
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
            (ExecutionStarted, with_once(started("r1"), "decision:r1")),
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

#[tokio::test]
async fn self_approval_and_an_approver_who_is_not_the_actor_do_not_count() {
    let d = action().digest().to_string();
    let mut forged = approved("r1", "bob", &d);
    forged["actor"] = json!("mallory");
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            // The requester "bot", in another case.
            (ActionApproved, approved("r1", "BOT", &d)),
            (ActionApproved, forged),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [
            (1, StoryRule::SelfApproval),
            (2, StoryRule::ApproverNotActor),
            (3, StoryRule::StartWithoutApproval)
        ]
    );
}

#[tokio::test]
async fn a_policy_approval_of_a_request_that_needed_a_person_does_not_count() {
    let d = action().digest().to_string();
    let mut by_policy = approved("r1", "policy:r", &d);
    by_policy["method"] = json!("policy");
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, by_policy),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [
            (1, StoryRule::PolicyApprovalOfHumanRequest),
            (2, StoryRule::StartWithoutApproval)
        ]
    );
}

#[tokio::test]
async fn reserved_and_invisible_identities_cannot_approve() {
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "gate", &d)),
            (ActionApproved, approved("r1", "bob\u{200b}", &d)),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [
            (1, StoryRule::InvalidIdentity),
            (2, StoryRule::InvalidIdentity),
            (3, StoryRule::StartWithoutApproval)
        ]
    );
}

#[tokio::test]
async fn a_start_while_degraded_is_reported_until_recovery() {
    let d = action().digest().to_string();
    let status = json!({"reason": "test", "operator": "gate"});
    assert_eq!(
        rules(vec![
            (GateDegraded, status.clone()),
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "bob", &d)),
            (ExecutionStarted, started("r1")),
            (GateRecovered, status),
            (ActionProposed, proposed("r2", 1)),
            (ActionApproved, approved("r2", "bob", &d)),
            (ExecutionStarted, started("r2")),
        ])
        .await,
        [(3, StoryRule::StartWhileDegraded)]
    );
}

#[tokio::test]
async fn a_once_key_that_is_not_the_protocols_is_reported() {
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, with_once(proposed("r1", 1), "decision:r1")),
            (ActionApproved, with_once(approved("r1", "bob", &d), "x")),
            (
                ExecutionStarted,
                with_once(started("r1"), "execution.completed:r1")
            ),
        ])
        .await,
        [
            (0, StoryRule::ReusedOnceKey),
            (1, StoryRule::ReusedOnceKey),
            (2, StoryRule::ReusedOnceKey)
        ]
    );
}

#[tokio::test]
async fn a_completed_request_proposed_again_is_a_replay() {
    let d = action().digest().to_string();
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, approved("r1", "bob", &d)),
            (ExecutionStarted, started("r1")),
            (ExecutionCompleted, completed("r1")),
            (
                ActionProposed,
                with_once(proposed("r1", 1), "action.proposed:r1 ")
            ),
            (
                ActionApproved,
                with_once(approved("r1", "bob", &d), "approval:r1:bob ")
            ),
            (ExecutionStarted, with_once(started("r1"), "decision:r1")),
        ])
        .await,
        [
            (4, StoryRule::ReusedOnceKey),
            (4, StoryRule::ReProposal),
            (5, StoryRule::ReusedOnceKey),
            (5, StoryRule::UnknownRequest),
            (6, StoryRule::DoubleStart)
        ]
    );
}

#[tokio::test]
async fn a_start_after_the_approvals_expired_is_reported() {
    let d = action().digest().to_string();
    let mut stale = approved("r1", "bob", &d);
    stale["expires_at"] = json!(Timestamp::from_unix_micros(1_000_000).unwrap().to_string());
    assert_eq!(
        rules(vec![
            (ActionProposed, proposed("r1", 1)),
            (ActionApproved, stale),
            (ExecutionStarted, started("r1")),
        ])
        .await,
        [(2, StoryRule::StartAfterExpiry)]
    );
}
