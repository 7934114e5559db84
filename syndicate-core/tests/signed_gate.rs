//! The gate under a policy that declares approvers: only approvals signed by
//! a declared key count; anything else is refused and recorded.

use std::sync::Arc;

use serde_json::json;
use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::gate::{Gate, GateConfig, GateError, ProposalContext, Refusal, RulePolicy};
use syndicate_core::keys::SigningKey;
use syndicate_core::{
    Action, Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, MemoryStore, Query,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn key(name: &str, seed: u8) -> SigningKey {
    SigningKey::from_seed(name, &[seed; 32]).unwrap()
}

fn policy(approvals: u32, approvers: &[&SigningKey]) -> RulePolicy {
    let mut text = format!(
        "id = \"signed\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\napprovers = {approvals}\n"
    );
    for key in approvers {
        text.push_str(&format!(
            "[[approvers]]\nid = \"{}\"\nkeys = [\"{}\"]\n",
            key.name(),
            key.verifier()
        ));
    }
    RulePolicy::from_toml(&text).unwrap()
}

async fn setup(
    approvals: u32,
    approvers: &[&SigningKey],
) -> Result<(Arc<MemoryStore>, Gate, Action, String)> {
    let store = Arc::new(MemoryStore::new(ChainId::new("prod")?));
    let gate = Gate::open(
        store.clone(),
        Arc::new(policy(approvals, approvers)),
        GateConfig::default(),
    )
    .await?;
    let action = Action::new("shell.exec", json!({"argv": ["git", "push"]}))?;
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    Ok((store, gate, action, p.request_id))
}

fn approval(key: &SigningKey, chain: &str, request_id: &str, action: &Action) -> SignedDecision {
    SignedDecision::sign(
        key,
        Statement {
            chain: ChainId::new(chain).unwrap(),
            request_id: request_id.into(),
            action_digest: action.digest(),
            approver: key.name().into(),
            decision: Decision::Approve,
            expires_at: None,
        },
    )
    .unwrap()
}

fn refusal(result: std::result::Result<impl std::fmt::Debug, GateError>) -> Refusal {
    match result {
        Err(GateError::Refused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn refused_reasons(store: &MemoryStore) -> Vec<String> {
    bodies(store, EventKind::ApprovalRefused)
        .await
        .into_iter()
        .map(|b| b["reason"].as_str().unwrap().to_owned())
        .collect()
}

async fn bodies(store: &MemoryStore, kind: EventKind) -> Vec<serde_json::Value> {
    store
        .query(&Query {
            kind: Some(kind),
            ..Query::all()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.envelope().unwrap().body)
        .collect()
}

#[tokio::test]
async fn signed_approval_by_a_declared_key_authorizes() -> Result {
    let bob = key("bob@example.com", 1);
    let (store, gate, action, request) = setup(1, &[&bob]).await?;
    let unsigned = gate
        .approve(&request, &Actor::human("bob@example.com"), &action.digest())
        .await;
    assert_eq!(refusal(unsigned), Refusal::Unsigned);
    gate.submit(approval(&bob, "prod", &request, &action))
        .await?;
    gate.authorize(&request, &action).await?;
    let approved = bodies(&store, EventKind::ActionApproved).await;
    assert_eq!(approved[0]["signed"]["key_id"], bob.key_id().to_string());
    assert_eq!(refused_reasons(&store).await, ["unsigned"]);
    Ok(())
}

#[tokio::test]
async fn forged_or_misdirected_signatures_are_refused_and_recorded() -> Result {
    let bob = key("bob@example.com", 1);
    let (store, gate, action, request) = setup(1, &[&bob]).await?;
    let impostor = key("bob@example.com", 9);
    for decision in [
        approval(&impostor, "prod", &request, &action),
        approval(&bob, "staging", &request, &action),
        approval(&key("eve@example.com", 3), "prod", &request, &action),
    ] {
        assert!(matches!(
            refusal(gate.submit(decision).await),
            Refusal::BadSignature { .. }
        ));
    }
    assert_eq!(refused_reasons(&store).await.len(), 3);
    assert!(gate.authorize(&request, &action).await.is_err());
    Ok(())
}

#[tokio::test]
async fn two_person_rule_needs_two_declared_approvers() -> Result {
    let (bob, carol) = (key("bob@example.com", 1), key("carol@example.com", 2));
    let (_store, gate, action, request) = setup(2, &[&bob, &carol]).await?;
    gate.submit(approval(&bob, "prod", &request, &action))
        .await?;
    assert_eq!(
        refusal(gate.submit(approval(&bob, "prod", &request, &action)).await),
        Refusal::DuplicateApprover
    );
    assert!(gate.authorize(&request, &action).await.is_err());
    gate.submit(approval(&carol, "prod", &request, &action))
        .await?;
    gate.authorize(&request, &action).await?;
    Ok(())
}

#[tokio::test]
async fn approval_appended_directly_to_the_store_does_not_count() -> Result {
    let bob = key("bob@example.com", 1);
    let (store, gate, action, request) = setup(1, &[&bob]).await?;
    let forged_by = key("bob@example.com", 9);
    let unsigned = json!({
        "request_id": request, "action_digest": action.digest().to_string(),
        "approver": "bob@example.com", "method": "human",
    });
    let mut bad = unsigned.clone();
    bad["signed"] = serde_json::to_value(approval(&forged_by, "prod", &request, &action))?;
    let mut relabelled = unsigned.clone();
    relabelled["signed"] = serde_json::to_value(approval(
        &key("eve@example.com", 3),
        "prod",
        &request,
        &action,
    ))?;
    let policy_forged = json!({
        "request_id": request, "action_digest": action.digest().to_string(),
        "approver": "policy:deploys", "method": "policy",
    });
    for body in [unsigned, bad, relabelled, policy_forged] {
        store
            .append_one(EventDraft::new(
                "s1",
                EventKind::ActionApproved,
                Actor::human("bob@example.com"),
                body,
            ))
            .await?;
        let status = gate.request(&request).await?;
        assert_eq!(status.open().unwrap().approval_count(), 0);
        assert!(matches!(
            refusal(gate.authorize(&request, &action).await),
            Refusal::NotApproved { .. }
        ));
    }
    gate.submit(approval(&bob, "prod", &request, &action))
        .await?;
    gate.authorize(&request, &action).await?;
    Ok(())
}

#[tokio::test]
async fn a_rule_that_requires_a_role_counts_only_approvers_who_hold_it() -> Result {
    let bob = key("bob@example.com", 1);
    let carol = key("carol@example.com", 2);
    let text = format!(
        "id = \"roles\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\napprover_roles = [\"sre\"]\n\
         [[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{}\"]\nroles = [\"sre\"]\n\
         [[approvers]]\nid = \"carol@example.com\"\nkeys = [\"{}\"]\nroles = [\"dev\"]\n",
        bob.verifier(),
        carol.verifier()
    );
    let store = Arc::new(MemoryStore::new(ChainId::new("prod")?));
    let gate = Gate::open(
        store.clone(),
        Arc::new(RulePolicy::from_toml(&text)?),
        GateConfig::default(),
    )
    .await?;
    let action = Action::new("shell.exec", json!({"argv": ["deploy"]}))?;
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    // The proposal records the roles it needs.
    let proposed = bodies(&store, EventKind::ActionProposed).await;
    assert_eq!(proposed[0]["approver_roles"], json!(["sre"]));

    // Carol signs correctly but is not an SRE: refused, recorded, not counted.
    let r = refusal(
        gate.submit(approval(&carol, "prod", &p.request_id, &action))
            .await,
    );
    assert!(
        matches!(&r, Refusal::BadSignature { detail } if detail.contains("sre")),
        "{r:?}"
    );
    assert!(matches!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::NotApproved { .. }
    ));
    // Her signed decision appended around the gate counts for nothing either.
    let signed = approval(&carol, "prod", &p.request_id, &action);
    store
        .append_one(
            EventDraft::new(
                "s1",
                EventKind::ActionApproved,
                Actor::human("carol@example.com"),
                json!({
                    "request_id": p.request_id, "action_digest": action.digest(),
                    "approver": "carol@example.com", "method": "human", "signed": signed
                }),
            )
            .with_once(format!("approval:{}:carol@example.com", p.request_id)),
        )
        .await?;
    assert!(matches!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::NotApproved { .. }
    ));
    let story = syndicate_core::check_story(store.as_ref()).await?;
    assert!(
        story
            .violations
            .iter()
            .any(|v| v.rule == syndicate_core::story::StoryRule::UnprovenApproval),
        "{:?}",
        story.violations
    );

    // Bob holds the role: counted, and the request runs.
    gate.submit(approval(&bob, "prod", &p.request_id, &action))
        .await?;
    gate.authorize(&p.request_id, &action).await?;
    Ok(())
}

#[test]
fn roles_without_declared_approvers_are_refused() {
    let text = "id = \"roles\"\nversion = \"1\"\n[[rules]]\nid = \"d\"\ntool = \"*\"\nrisk = \"high\"\ndecision = \"human\"\napprover_roles = [\"sre\"]\n";
    let err = RulePolicy::from_toml(text).unwrap_err().to_string();
    assert!(err.contains("approver_roles needs declared"), "{err}");
}

fn recovery(key: &SigningKey, subject: (String, syndicate_core::Digest)) -> SignedDecision {
    SignedDecision::sign(
        key,
        Statement {
            chain: ChainId::new("prod").unwrap(),
            request_id: subject.0,
            action_digest: subject.1,
            approver: key.name().into(),
            decision: Decision::Recover,
            expires_at: None,
        },
    )
    .unwrap()
}

async fn degraded_mark(store: &MemoryStore) -> Result {
    store
        .append_one(EventDraft::new(
            "gate",
            EventKind::GateDegraded,
            Actor::system("gate"),
            json!({"reason": "append failed", "operator": "gate"}),
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn under_declared_operators_only_a_signed_recovery_ends_a_degradation() -> Result {
    let bob = key("bob@example.com", 1);
    let ops = key("ops@example.com", 9);
    let text = format!(
        "id = \"ops\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\n\
         [[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{}\"]\n\
         [[operators]]\nid = \"ops@example.com\"\nkeys = [\"{}\"]\n",
        bob.verifier(),
        ops.verifier()
    );
    let policy = Arc::new(RulePolicy::from_toml(&text)?);
    let store = Arc::new(MemoryStore::new(ChainId::new("prod")?));
    drop(Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?);
    degraded_mark(&store).await?;
    let gate = Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?;
    assert!(gate.degraded().is_some());

    // An unsigned recovery is refused by the gate...
    assert_eq!(
        refusal(
            gate.recover(&Actor::human("ops@example.com"), "fixed")
                .await
        ),
        Refusal::Unsigned
    );
    // ...and one appended around it ends nothing.
    store
        .append_one(EventDraft::new(
            "gate",
            EventKind::GateRecovered,
            Actor::human("ops@example.com"),
            json!({"reason": "trust me", "operator": "ops@example.com"}),
        ))
        .await?;
    let reopened = Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?;
    assert!(reopened.degraded().is_some(), "a forged recovery ended it");
    let story = syndicate_core::check_story(store.as_ref()).await?;
    assert!(
        story
            .violations
            .iter()
            .any(|v| v.rule == syndicate_core::story::StoryRule::UnprovenRecovery),
        "{:?}",
        story.violations
    );

    // Bob is an approver, not an operator: refused.
    let subject = reopened.recovery_subject().await?;
    assert!(matches!(
        refusal(
            reopened
                .recover_signed(recovery(&bob, subject.clone()), "x")
                .await
        ),
        Refusal::BadSignature { .. }
    ));
    // The operator's signature over this degradation recovers, for every gate.
    let signed = recovery(&ops, subject);
    reopened
        .recover_signed(signed.clone(), "disk replaced")
        .await?;
    assert!(reopened.degraded().is_none());
    let fresh = Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?;
    assert!(fresh.degraded().is_none(), "{:?}", fresh.degraded());

    // The same signature cannot end the next degradation.
    degraded_mark(&store).await?;
    let again = Gate::open(store.clone(), policy, GateConfig::default()).await?;
    assert!(again.degraded().is_some());
    assert!(matches!(
        refusal(again.recover_signed(signed, "replayed").await),
        Refusal::BadSignature { .. }
    ));
    assert!(again.degraded().is_some());
    Ok(())
}

#[tokio::test]
async fn under_declared_approvers_a_denial_is_signed_and_an_unsigned_one_is_reported() -> Result {
    let bob = key("bob@example.com", 1);
    let (store, gate, action, request) = setup(1, &[&bob]).await?;
    assert_eq!(
        refusal(
            gate.deny(&request, &Actor::human("bob@example.com"), "no")
                .await
        ),
        Refusal::Unsigned
    );
    let denial = SignedDecision::sign(
        &bob,
        Statement {
            chain: ChainId::new("prod")?,
            request_id: request.clone(),
            action_digest: action.digest(),
            approver: "bob@example.com".into(),
            decision: Decision::Deny,
            expires_at: None,
        },
    )?;
    // A denial signed for another request is refused.
    let p2 = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    let mut misdirected = denial.clone();
    misdirected.statement.request_id = p2.request_id.clone();
    assert!(matches!(
        refusal(gate.deny_signed(misdirected, "replayed").await),
        Refusal::BadSignature { .. }
    ));
    gate.deny_signed(denial, "not this week").await?;
    assert_eq!(
        refusal(gate.authorize(&request, &action).await),
        Refusal::Denied
    );
    // An unsigned denial appended around the gate still stops the request,
    // and the story reports it.
    store
        .append_one(
            EventDraft::new(
                "s1",
                EventKind::ActionDenied,
                Actor::human("mallory@example.com"),
                json!({"request_id": p2.request_id, "reason": "x", "by": "mallory@example.com", "method": "human"}),
            )
            .with_once(format!("decision:{}", p2.request_id)),
        )
        .await?;
    assert_eq!(
        refusal(gate.authorize(&p2.request_id, &action).await),
        Refusal::Denied
    );
    let story = syndicate_core::check_story(store.as_ref()).await?;
    let rules: Vec<_> = story.violations.iter().map(|v| v.rule).collect();
    assert_eq!(
        rules,
        [syndicate_core::story::StoryRule::UnprovenDenial],
        "{rules:?}"
    );
    Ok(())
}
