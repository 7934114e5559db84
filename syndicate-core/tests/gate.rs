//! Behaviour of the gate on the in-memory store: each protocol rule, the
//! events it records, and state shared through the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use syndicate_core::gate::{
    Decision, Gate, GateConfig, GateError, Outcome, Policy, ProposalContext, Refusal, RulePolicy,
    active_policy,
};
use syndicate_core::{
    Action, Actor, ChainId, EventKind, EventStore, EventStoreExt, MemoryStore, Query, Timestamp,
    check_story,
};

const POLICY: &str = r#"
id = "test"
version = "1"

[[rules]]
id = "reads"
tool = "fs.read"
risk = "low"
decision = "auto_approve"
controls = ["SOC2:CC8.1"]

[[rules]]
id = "payments"
tool = "shell.*"
target = "repo:payments-*"
risk = "critical"
decision = "human"
controls = ["PCI-DSS-4.0:6.2.3"]

[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
approval_ttl_seconds = 60

[[rules]]
id = "no-deletes"
tool = "fs.delete"
risk = "high"
decision = "deny"
"#;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn policy() -> Arc<RulePolicy> {
    Arc::new(RulePolicy::from_toml(POLICY).unwrap())
}

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(ChainId::new("gate-test").unwrap()))
}

/// A clock the test advances by hand.
fn manual_clock() -> (GateConfig, Arc<AtomicI64>) {
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let base = Timestamp::now().unix_micros();
    let config = GateConfig {
        clock: Arc::new(move || {
            Timestamp::from_unix_micros(base + o.load(Ordering::SeqCst)).unwrap()
        }),
        ..GateConfig::default()
    };
    (config, offset)
}

async fn gate_on(store: &Arc<MemoryStore>) -> Gate {
    Gate::open(store.clone(), policy(), GateConfig::default())
        .await
        .unwrap()
}

fn agent() -> Actor {
    Actor::agent("agent:deploy-bot")
}

fn bob() -> Actor {
    Actor::human("bob@example.com")
}

fn shell(argv: &[&str]) -> Action {
    Action::new("shell.exec", json!({ "argv": argv })).unwrap()
}

async fn kinds(store: &MemoryStore) -> Vec<String> {
    store
        .read(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.columns.kind)
        .collect()
}

async fn last_body(store: &MemoryStore, kind: EventKind) -> Value {
    let events = store
        .query(&Query {
            kind: Some(kind),
            order: syndicate_core::Order::Descending,
            limit: 1,
            ..Query::all()
        })
        .await
        .unwrap();
    events[0].envelope().unwrap().body
}

async fn assert_chain_and_story_hold(store: &MemoryStore) {
    assert!(store.verify().await.unwrap().is_intact());
    let story = check_story(store).await.unwrap();
    assert!(story.is_consistent(), "{:?}", story.violations);
}

fn refusal(result: std::result::Result<impl std::fmt::Debug, GateError>) -> Refusal {
    match result {
        Err(GateError::Refused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn auto_approved_action_runs_without_a_person() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = Action::new("fs.read", json!({"path": "/etc/hosts"}))?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    assert_eq!(p.decision(), Decision::AutoApprove);
    let permit = gate.authorize(&p.request_id, &action).await?;
    assert_eq!(permit.controls(), ["SOC2:CC8.1".to_owned()]);
    gate.complete(permit, Outcome::succeeded()).await?;
    assert_eq!(
        kinds(&store).await,
        [
            "policy.activated",
            "action.proposed",
            "action.approved",
            "execution.started",
            "execution.completed"
        ]
    );
    let approval = last_body(&store, EventKind::ActionApproved).await;
    assert_eq!(approval["method"], "policy");
    assert_eq!(approval["rule"], "reads");
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn proposal_records_action_digest_requester_model_and_context() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["git", "push"]);
    let context = ProposalContext {
        model: Some(syndicate_core::gate::ModelInfo {
            name: "m".into(),
            version: Some("2".into()),
            provider: Some("p".into()),
        }),
        context: Some(syndicate_core::gate::DecisionContext {
            prompt: Some("ship it".into()),
            trigger: Some("ticket-1".into()),
            reasoning: Some("tests pass".into()),
            alternatives: vec!["wait".into()],
        }),
    };
    let p = gate.propose("s1", &agent(), &action, &context).await?;
    assert_eq!(p.decision(), Decision::Human);
    let body = last_body(&store, EventKind::ActionProposed).await;
    assert_eq!(body["request_id"], p.request_id.as_str());
    assert_eq!(body["action"], action.to_value());
    assert_eq!(body["action_digest"], action.digest().to_string());
    assert_eq!(body["requester"], "agent:deploy-bot");
    assert_eq!(body["risk_tier"], "high");
    assert_eq!(body["model"]["provider"], "p");
    assert_eq!(body["context"]["alternatives"][0], "wait");
    Ok(())
}

#[tokio::test]
async fn approval_binds_the_digest_the_approver_saw() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["git", "push"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let other = shell(&["rm", "-rf", "/"]).digest();
    assert!(matches!(
        refusal(gate.approve(&p.request_id, &bob(), &other).await),
        Refusal::DigestMismatch { .. }
    ));
    let refused = last_body(&store, EventKind::ApprovalRefused).await;
    assert_eq!(refused["reason"], "digest_mismatch");
    assert_eq!(refused["digest_seen"], other.to_string());
    // The refused approval does not count.
    assert!(matches!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::NotApproved {
            approvals: 0,
            required: 1
        }
    ));
    let approval = gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    assert!(approval.is_complete());
    assert!(gate.authorize(&p.request_id, &action).await.is_ok());
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn requester_cannot_approve_own_request_unless_configured() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["ls"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    assert_eq!(
        refusal(gate.approve(&p.request_id, &agent(), &p.digest()).await),
        Refusal::SelfApproval
    );
    assert_eq!(
        last_body(&store, EventKind::ApprovalRefused).await["reason"],
        "self_approval"
    );

    let lenient = Gate::open(
        store.clone(),
        policy(),
        GateConfig {
            allow_self_approval: true,
            ..GateConfig::default()
        },
    )
    .await?;
    assert!(
        lenient
            .approve(&p.request_id, &agent(), &p.digest())
            .await?
            .is_complete()
    );
    Ok(())
}

#[tokio::test]
async fn drifted_action_is_refused_and_recorded_with_both_digests() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["git", "push"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    let drifted = shell(&["git", "push", "--force"]);
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &drifted).await),
        Refusal::DigestMismatch {
            expected: action.digest(),
            found: drifted.digest()
        }
    );
    let body = last_body(&store, EventKind::ExecutionDigestMismatch).await;
    assert_eq!(body["approved_digest"], action.digest().to_string());
    assert_eq!(body["executed_digest"], drifted.digest().to_string());
    assert_eq!(body["action"], drifted.to_value());
    // The approval is still usable for what was approved.
    let permit = gate.authorize(&p.request_id, &action).await?;
    assert_eq!(permit.action().canonical_bytes(), action.canonical_bytes());
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn another_spelling_of_the_approved_action_runs_the_recorded_form() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = Action::from_json(br#"{"tool":"shell.exec","args":{"n":1.0,"argv":["ls"]}}"#)?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    let respelled =
        Action::from_json(br#"{ "args": {"argv": ["ls"], "n": 1}, "tool": "shell.exec" }"#)?;
    let permit = gate.authorize(&p.request_id, &respelled).await?;
    assert_eq!(
        permit.action().canonical_bytes(),
        br#"{"args":{"argv":["ls"],"n":1},"tool":"shell.exec"}"#
    );
    Ok(())
}

#[tokio::test]
async fn permit_is_single_use() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["make", "deploy"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    let permit = gate.authorize(&p.request_id, &action).await?;
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::AlreadyUsed
    );
    gate.complete(permit, Outcome::succeeded()).await?;
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::AlreadyUsed
    );
    assert_eq!(
        last_body(&store, EventKind::ExecutionRejected).await["reason"],
        "already_used"
    );
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn expired_approval_is_refused() -> Result {
    let store = store();
    let (config, offset) = manual_clock();
    let gate = Gate::open(store.clone(), policy(), config).await?;
    let action = shell(&["make", "deploy"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let approval = gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    // The "shell" rule gives approvals 60 seconds.
    offset.store(60_000_000, Ordering::SeqCst);
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::Expired {
            expired_at: approval.expires_at
        }
    );
    assert_eq!(
        last_body(&store, EventKind::ExecutionRejected).await["reason"],
        "expired"
    );
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn critical_action_needs_two_distinct_approvers() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action =
        Action::new("shell.exec", json!({"argv": ["deploy"]}))?.with_target("repo:payments-svc")?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    assert_eq!(p.classification.approvers, 2);
    let first = gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    assert!(!first.is_complete());
    assert_eq!(
        refusal(gate.approve(&p.request_id, &bob(), &p.digest()).await),
        Refusal::DuplicateApprover
    );
    assert!(matches!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::NotApproved {
            approvals: 1,
            required: 2
        }
    ));
    let second = gate
        .approve(
            &p.request_id,
            &Actor::human("carol@example.com"),
            &p.digest(),
        )
        .await?;
    assert!(second.is_complete());
    let permit = gate.authorize(&p.request_id, &action).await?;
    assert_eq!(permit.controls(), ["PCI-DSS-4.0:6.2.3".to_owned()]);
    let started = last_body(&store, EventKind::ExecutionStarted).await;
    assert_eq!(started["controls"][0], "PCI-DSS-4.0:6.2.3");
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn denied_requests_never_run() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    // Denied by rule.
    let delete = Action::new("fs.delete", json!({"path": "/"}))?;
    let p = gate
        .propose("s1", &agent(), &delete, &ProposalContext::default())
        .await?;
    assert_eq!(p.decision(), Decision::Deny);
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &delete).await),
        Refusal::Denied
    );
    // No rule matches: denied.
    let unknown = Action::new("http.post", json!({}))?;
    let p = gate
        .propose("s1", &agent(), &unknown, &ProposalContext::default())
        .await?;
    assert_eq!(p.decision(), Decision::Deny);
    assert!(p.classification.rule.is_none());
    assert_eq!(
        refusal(gate.approve(&p.request_id, &bob(), &p.digest()).await),
        Refusal::AlreadyDecided
    );
    // Denied by a person after approval, before it started: revoked.
    let action = shell(&["ls"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    gate.deny(&p.request_id, &bob(), "changed my mind").await?;
    assert_eq!(
        refusal(gate.authorize(&p.request_id, &action).await),
        Refusal::Denied
    );
    assert_eq!(
        refusal(gate.deny(&p.request_id, &bob(), "again").await),
        Refusal::AlreadyDecided
    );
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn unknown_request_is_refused_and_recorded() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["ls"]);
    assert_eq!(
        refusal(gate.authorize("req-nope", &action).await),
        Refusal::UnknownRequest
    );
    assert_eq!(
        refusal(gate.approve("req-nope", &bob(), &action.digest()).await),
        Refusal::UnknownRequest
    );
    let rejected = last_body(&store, EventKind::ExecutionRejected).await;
    assert_eq!(rejected["request_id"], "req-nope");
    assert_eq!(rejected["reason"], "unknown_request");
    assert_eq!(
        last_body(&store, EventKind::ApprovalRefused).await["reason"],
        "unknown_request"
    );
    Ok(())
}

#[tokio::test]
async fn policy_is_activated_once_and_every_event_carries_it() -> Result {
    let store = store();
    let policy = policy();
    let gate = Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?;
    let _again = Gate::open(store.clone(), policy.clone(), GateConfig::default()).await?;
    gate.propose("s1", &agent(), &shell(&["ls"]), &ProposalContext::default())
        .await?;
    let events = store.read(0, 100).await?;
    let activations = events
        .iter()
        .filter(|e| e.columns.kind == "policy.activated")
        .count();
    assert_eq!(activations, 1);
    for event in &events {
        assert_eq!(event.envelope()?.policy.as_ref(), Some(policy.reference()));
    }
    let activated = last_body(&store, EventKind::PolicyActivated).await;
    assert_eq!(&activated["document"], policy.document());
    // The policy in force can be read back from the chain.
    let back = active_policy(store.as_ref()).await?.unwrap();
    assert_eq!(back.reference(), policy.reference());

    // A new version is activated when a gate opens with it.
    let v2 = RulePolicy::from_toml(&POLICY.replace("version = \"1\"", "version = \"2\""))?;
    Gate::open(store.clone(), Arc::new(v2), GateConfig::default()).await?;
    assert_eq!(
        last_body(&store, EventKind::PolicyActivated).await["policy"]["version"],
        "2"
    );
    Ok(())
}

#[tokio::test]
async fn state_is_shared_through_the_store() -> Result {
    let store = store();
    let agent_gate = gate_on(&store).await;
    let approver_gate = gate_on(&store).await;
    let action = shell(&["make", "release"]);
    let p = agent_gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    approver_gate
        .approve(&p.request_id, &bob(), &p.digest())
        .await?;
    // A gate opened later ("a restarted process") continues the request.
    let restarted = gate_on(&store).await;
    let permit = restarted.authorize(&p.request_id, &action).await?;
    assert_eq!(
        refusal(agent_gate.authorize(&p.request_id, &action).await),
        Refusal::AlreadyUsed
    );
    restarted.complete(permit, Outcome::succeeded()).await?;
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gates_racing_to_start_one_request_get_one_permit() -> Result {
    for _ in 0..20 {
        let store = store();
        let setup = gate_on(&store).await;
        let action = shell(&["deploy"]);
        let p = setup
            .propose("s1", &agent(), &action, &ProposalContext::default())
            .await?;
        setup.approve(&p.request_id, &bob(), &p.digest()).await?;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let gate = gate_on(&store).await;
            let (id, action) = (p.request_id.clone(), action.clone());
            tasks.push(tokio::spawn(async move {
                gate.authorize(&id, &action).await.is_ok()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await?);
        }
        assert_eq!(wins, 1);
        assert_chain_and_story_hold(&store).await;
    }
    Ok(())
}

#[tokio::test]
async fn run_records_completion_even_when_the_closure_fails() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = Action::new("fs.read", json!({"path": "/missing"}))?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let result = gate
        .run(&p.request_id, &action, |approved| async move {
            assert_eq!(approved.tool(), "fs.read");
            Err::<(), _>("no such file")
        })
        .await?;
    assert_eq!(result, Err("no such file"));
    let completed = last_body(&store, EventKind::ExecutionCompleted).await;
    assert_eq!(completed["outcome"], "failed");
    assert_eq!(completed["error"], "no such file");
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn run_never_calls_the_closure_without_a_permit() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = shell(&["ls"]);
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let mut ran = false;
    let result = gate
        .run(&p.request_id, &action, |_| {
            ran = true;
            async { Ok::<(), String>(()) }
        })
        .await;
    assert!(!ran);
    assert!(matches!(
        result.err().and_then(|e| e.refusal().cloned()),
        Some(Refusal::NotApproved { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn outcome_records_exit_code_and_result_digest() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = Action::new("fs.read", json!({"path": "/x"}))?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let permit = gate.authorize(&p.request_id, &action).await?;
    gate.complete(
        permit,
        Outcome::succeeded().with_exit_code(0).with_result(b"hello"),
    )
    .await?;
    let completed = last_body(&store, EventKind::ExecutionCompleted).await;
    assert_eq!(completed["exit_code"], 0);
    assert_eq!(
        completed["result_digest"],
        syndicate_core::gate::result_digest(b"hello").to_string()
    );
    Ok(())
}

#[tokio::test]
async fn recover_records_the_operator_and_reason() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    gate.recover(&Actor::human("ops@example.com"), "drill")
        .await?;
    let body = last_body(&store, EventKind::GateRecovered).await;
    assert_eq!(body["operator"], "ops@example.com");
    assert_eq!(body["reason"], "drill");
    assert!(gate.degraded().is_none());
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_without_recording_or_degrading() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let before = kinds(&store).await.len();
    let result = gate
        .propose("", &agent(), &shell(&["ls"]), &ProposalContext::default())
        .await;
    assert!(matches!(result, Err(GateError::Input { .. })), "{result:?}");
    assert_eq!(kinds(&store).await.len(), before);
    assert!(gate.degraded().is_none());
    Ok(())
}

#[tokio::test]
async fn a_start_in_one_process_is_completed_from_another_by_its_call_id() -> Result {
    let store = store();
    let starter = gate_on(&store).await;
    let action = Action::new("fs.read", json!({"path": "/etc/hosts"}))?;
    let mut requests = Vec::new();
    for call in ["call-1", "call-2"] {
        let p = starter
            .propose("s1", &agent(), &action, &ProposalContext::default())
            .await?;
        let permit = starter.authorize_call(&p.request_id, &action, call).await?;
        assert_eq!(
            last_body(&store, EventKind::ExecutionStarted).await["call_id"],
            call
        );
        drop(permit);
        requests.push(p.request_id);
    }
    // Another process (another gate on the same store) sees both started.
    let finisher = gate_on(&store).await;
    let digest = action.digest();
    assert_eq!(
        finisher
            .started_request("s1", &digest, Some("call-2"))
            .await?,
        Some(requests[1].clone())
    );
    assert_eq!(
        finisher
            .started_request("s1", &digest, Some("no-such-call"))
            .await?,
        Some(requests[0].clone()),
        "an unknown call id falls back to the oldest"
    );
    assert_eq!(finisher.started_request("s2", &digest, None).await?, None);
    finisher
        .complete_started(&requests[1], Outcome::succeeded())
        .await?;
    assert_eq!(
        finisher
            .started_request("s1", &digest, Some("call-2"))
            .await?,
        Some(requests[0].clone()),
        "a completed request is no longer open"
    );
    assert_eq!(
        refusal(
            finisher
                .complete_started(&requests[1], Outcome::succeeded())
                .await
        ),
        Refusal::AlreadyUsed
    );
    assert_eq!(
        refusal(
            finisher
                .complete_started("req-unknown", Outcome::succeeded())
                .await
        ),
        Refusal::UnknownRequest
    );
    // A request that never started cannot be completed.
    let pending = finisher
        .propose("s1", &agent(), &shell(&["ls"]), &ProposalContext::default())
        .await?;
    assert!(matches!(
        refusal(
            finisher
                .complete_started(&pending.request_id, Outcome::succeeded())
                .await
        ),
        Refusal::NotApproved { .. }
    ));
    assert_chain_and_story_hold(&store).await;
    Ok(())
}

#[tokio::test]
async fn an_oversized_call_id_is_refused_without_recording_or_degrading() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let action = Action::new("fs.read", json!({"path": "/etc/hosts"}))?;
    let p = gate
        .propose("s1", &agent(), &action, &ProposalContext::default())
        .await?;
    let before = kinds(&store).await;
    let long = "x".repeat(syndicate_core::gate::MAX_CALL_ID_BYTES + 1);
    let err = gate
        .authorize_call(&p.request_id, &action, &long)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GateError::Input {
                what: "call id",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(kinds(&store).await, before);
    assert!(gate.degraded().is_none());
    let fits = "x".repeat(syndicate_core::gate::MAX_CALL_ID_BYTES);
    gate.authorize_call(&p.request_id, &action, &fits).await?;
    Ok(())
}

#[tokio::test]
async fn a_gate_with_a_checkpointer_publishes_signed_checkpoints_as_it_appends() -> Result {
    use syndicate_core::checkpoint::{self, Trust};
    use syndicate_core::checkpointer::{Checkpointer, DirectorySink};
    use syndicate_core::keys::SigningKey;

    let store = store();
    let dir = tempfile::tempdir()?;
    let key = SigningKey::from_seed("log.example/gate-test", &[7; 32])?;
    let trust = Trust::log(key.verifier().clone());
    let checkpointer = Checkpointer::new(
        store.chain().clone(),
        key,
        "log.example/gate-test",
        Box::new(DirectorySink::new(dir.path())),
    )
    .every_events(4);
    let config = GateConfig {
        checkpointer: Some(Arc::new(tokio::sync::Mutex::new(checkpointer))),
        ..GateConfig::default()
    };
    let gate = Gate::open(store.clone(), policy(), config).await?;
    let action = Action::new("fs.read", json!({"path": "/etc/hosts"}))?;
    for _ in 0..3 {
        let p = gate
            .propose("s1", &agent(), &action, &ProposalContext::default())
            .await?;
        let permit = gate.authorize(&p.request_id, &action).await?;
        gate.complete(permit, Outcome::succeeded()).await?;
    }
    let latest = std::fs::read_to_string(dir.path().join("latest.checkpoint"))?;
    let opened = checkpoint::open(&latest, &trust)?;
    let size = opened.checkpoint().size;
    let events = store.read(0, 10_000).await?.len() as u64;
    assert!(
        size + 4 > events && size >= 4,
        "the latest checkpoint ({size}) is within 4 events of the head ({events})"
    );
    let matches = syndicate_core::tree::check_against_checkpoint(
        store.as_ref(),
        size,
        &opened.checkpoint().root,
    )
    .await?;
    assert!(matches.is_ok(), "{matches:?}");
    assert!(dir.path().join(format!("{size}.checkpoint")).exists());
    Ok(())
}

/// Someone who can write the store appends a proposal whose recorded
/// action is not the one its digest names, and an approval of that digest:
/// the agent asks to run the approved action (the digest matches), but the
/// action the permit would carry is the recorded one. The gate re-reads the
/// recorded action before a permit and refuses when its digest is not the
/// approved one; nothing starts.
#[tokio::test]
async fn a_recorded_action_that_is_not_its_digest_never_gets_a_permit() -> Result {
    let store = store();
    let gate = gate_on(&store).await;
    let approved_action = shell(&["git", "status"]);
    let recorded_action = shell(&["rm", "-rf", "/srv"]);
    // Templates: a real proposal and approval of the approved action.
    let p = gate
        .propose("s", &agent(), &approved_action, &ProposalContext::default())
        .await?;
    gate.approve(&p.request_id, &bob(), &p.digest()).await?;
    let forged_id = "req-forged";
    let mut forged = Vec::new();
    for kind in [EventKind::ActionProposed, EventKind::ActionApproved] {
        let event = store
            .query(&Query {
                kind: Some(kind),
                limit: 1,
                ..Query::request(p.request_id.clone())
            })
            .await?
            .remove(0);
        let envelope = event.envelope()?;
        let mut body = envelope.body;
        body["request_id"] = json!(forged_id);
        if kind == EventKind::ActionProposed {
            // The recorded action is another one; the digest stays.
            body["action"] = recorded_action.to_value();
        }
        let mut draft =
            syndicate_core::EventDraft::new(envelope.session, kind, envelope.actor, body);
        draft.policy = envelope.policy;
        draft.once = event
            .columns
            .once
            .map(|once| once.replace(&p.request_id, forged_id));
        forged.push(draft);
    }
    store.append(&forged).await?;

    let result = gate.authorize(forged_id, &approved_action).await;
    assert!(
        matches!(result, Err(GateError::Refused { .. })),
        "a permit for a recorded action that is not the approved one: {result:?}"
    );
    let started = store
        .query(&Query {
            kind: Some(EventKind::ExecutionStarted),
            ..Query::request(forged_id)
        })
        .await?;
    assert!(started.is_empty(), "nothing started");
    assert!(gate.degraded().is_some(), "the gate degraded");
    Ok(())
}
