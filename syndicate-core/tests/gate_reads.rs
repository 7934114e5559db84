//! What the gate reads around its own start: `authorize` folds the
//! `execution.started` it just appended into what it verified without
//! reading it back when it directly follows the verified head, and reads
//! and verifies the chain when anything came between.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use syndicate_core::gate::{
    DeniedBody, Gate, GateConfig, GateError, Method, Outcome, ProposalContext, Refusal, RulePolicy,
    StartedBody, Status,
};
use syndicate_core::{
    Action, Actor, ChainId, Event, EventDraft, EventKind, EventStore, EventStoreExt, Head,
    MemoryStore, Query, StoreError, check_story,
};

const POLICY: &str = r#"
id = "reads"
version = "1"

[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
"#;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A memory store that logs its calls and, when armed, appends a given
/// draft of someone else's just before the next batch that starts an
/// execution.
#[derive(Debug)]
struct Logged {
    inner: MemoryStore,
    log: Mutex<Vec<String>>,
    sneak: Mutex<Option<EventDraft>>,
}

impl Logged {
    fn note(&self, what: impl Into<String>) {
        self.log.lock().unwrap().push(what.into());
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.log.lock().unwrap())
    }
}

#[async_trait]
impl EventStore for Logged {
    fn chain(&self) -> &ChainId {
        self.inner.chain()
    }
    async fn append(&self, drafts: &[EventDraft]) -> std::result::Result<Vec<Event>, StoreError> {
        let sneak = if drafts.iter().any(|d| d.kind == EventKind::ExecutionStarted) {
            self.sneak.lock().unwrap().take()
        } else {
            None
        };
        if let Some(sneak) = sneak {
            self.inner.append(&[sneak]).await?;
        }
        let kinds: Vec<&str> = drafts.iter().map(|d| d.kind.as_str()).collect();
        self.note(format!("append {}", kinds.join(",")));
        self.inner.append(drafts).await
    }
    async fn head(&self) -> std::result::Result<Option<Head>, StoreError> {
        self.note("head");
        self.inner.head().await
    }
    async fn read(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> std::result::Result<Vec<Event>, StoreError> {
        self.note(format!("read {from_seq}"));
        self.inner.read(from_seq, limit).await
    }
    async fn query(&self, query: &Query) -> std::result::Result<Vec<Event>, StoreError> {
        self.note("query");
        self.inner.query(query).await
    }
}

fn shell(argv: &[&str]) -> Action {
    Action::new("shell.exec", json!({ "argv": argv })).unwrap()
}

async fn setup() -> Result<(Arc<Logged>, Gate)> {
    let store = Arc::new(Logged {
        inner: MemoryStore::new(ChainId::new("reads")?),
        log: Mutex::new(Vec::new()),
        sneak: Mutex::new(None),
    });
    let policy = Arc::new(RulePolicy::from_toml(POLICY)?);
    let gate = Gate::open(store.clone(), policy, GateConfig::default()).await?;
    Ok((store, gate))
}

async fn proposed_and_approved(gate: &Gate, action: &Action) -> Result<String> {
    let p = gate
        .propose(
            "s",
            &Actor::agent("agent:bot"),
            action,
            &ProposalContext::default(),
        )
        .await?;
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await?;
    Ok(p.request_id)
}

/// The calls after the append of `execution.started`.
fn after_start(log: &[String]) -> &[String] {
    let at = log
        .iter()
        .position(|c| c == "append execution.started")
        .expect("authorize appended the start");
    &log[at + 1..]
}

#[tokio::test]
async fn authorize_folds_its_own_start_in_without_reading_it_back() -> Result {
    let (store, gate) = setup().await?;
    let action = shell(&["make", "deploy"]);
    let request_id = proposed_and_approved(&gate, &action).await?;
    store.take_log();

    let permit = gate.authorize(&request_id, &action).await?;
    let log = store.take_log();
    assert!(
        log.first().is_some_and(|c| c.starts_with("read")),
        "the chain is read and verified before deciding: {log:?}"
    );
    assert_eq!(
        after_start(&log),
        &[] as &[String],
        "nothing read back: {log:?}"
    );

    // The start is part of what the gate verified: a second authorize of
    // the same request is refused as used, and the chain holds.
    assert!(gate.authorize(&request_id, &action).await.is_err());
    gate.complete(permit, Outcome::succeeded()).await?;
    assert!(store.verify().await?.is_intact());
    assert!(check_story(store.as_ref()).await?.is_consistent());
    Ok(())
}

#[tokio::test]
async fn an_event_between_the_verified_head_and_the_start_is_read_and_verified() -> Result {
    let (store, gate) = setup().await?;
    // Someone else's event to slip in: another agent's proposal, recorded
    // through a second gate on a copy of the chain, replayed as a draft.
    let other = {
        let (scratch, scratch_gate) = setup().await?;
        let p = scratch_gate
            .propose(
                "other",
                &Actor::agent("agent:other"),
                &shell(&["ls"]),
                &ProposalContext::default(),
            )
            .await?;
        let event = scratch.inner.read(p.seq, 1).await?.remove(0);
        let envelope = event.envelope()?;
        let mut draft = EventDraft::new(
            envelope.session,
            envelope.kind,
            envelope.actor,
            envelope.body,
        );
        draft.policy = envelope.policy;
        draft.once = event.columns.once.clone();
        (draft, p.request_id)
    };
    let action = shell(&["make", "deploy"]);
    let request_id = proposed_and_approved(&gate, &action).await?;
    *store.sneak.lock().unwrap() = Some(other.0);
    store.take_log();

    let permit = gate.authorize(&request_id, &action).await?;
    let log = store.take_log();
    assert!(
        after_start(&log).iter().any(|c| c.starts_with("read")),
        "the start did not follow the verified head, so the chain was read: {log:?}"
    );
    // The event that came between was verified and folded in.
    assert!(
        matches!(gate.request(&other.1).await?, Status::Open(_)),
        "the other agent's proposal is known to the gate"
    );
    gate.complete(permit, Outcome::succeeded()).await?;
    assert!(store.verify().await?.is_intact());
    Ok(())
}

#[tokio::test]
async fn a_denial_that_wins_the_key_just_before_the_start_is_named_as_such() -> Result {
    let (store, gate) = setup().await?;
    let action = shell(&["make", "deploy"]);
    let request_id = proposed_and_approved(&gate, &action).await?;
    // A revocation recorded by someone else between the gate's check of
    // the chain and its start: it takes the request's decision key.
    let denial = DeniedBody {
        request_id: request_id.clone(),
        reason: "revoked".into(),
        by: "carol@example.com".into(),
        method: Method::Human,
        rule: None,
        signed: None,
    };
    let mut draft = EventDraft::new(
        "s",
        EventKind::ActionDenied,
        Actor::human("carol@example.com"),
        serde_json::to_value(&denial)?,
    );
    draft.once = Some(
        syndicate_core::protocol::once_keys(EventKind::ActionDenied, &request_id, None).remove(0),
    );
    *store.sneak.lock().unwrap() = Some(draft);

    let result = gate.authorize(&request_id, &action).await;
    assert!(
        matches!(
            result,
            Err(GateError::Refused {
                refusal: Refusal::Denied,
                ..
            })
        ),
        "the start lost its key to the denial, and the refusal says so: {result:?}"
    );
    let started = store
        .query(&Query {
            kind: Some(EventKind::ExecutionStarted),
            ..Query::request(request_id.clone())
        })
        .await?;
    assert!(started.is_empty(), "nothing started");
    assert!(store.verify().await?.is_intact());
    Ok(())
}

/// A store whose single-use keys do not hold (here: someone else's start
/// written without the key, just before the gate's own): the gate's start
/// lands too, but it is not the request's first start on the verified
/// chain, so the gate refuses the permit and degrades instead of running
/// the action a second time.
#[tokio::test]
async fn a_start_that_is_not_the_first_on_the_verified_chain_gets_no_permit() -> Result {
    let (store, gate) = setup().await?;
    let action = shell(&["make", "deploy"]);
    let request_id = proposed_and_approved(&gate, &action).await?;
    let other_start = StartedBody {
        request_id: request_id.clone(),
        approved_digest: action.digest(),
        executed_digest: action.digest(),
        controls: Vec::new(),
        call_id: None,
    };
    *store.sneak.lock().unwrap() = Some(EventDraft::new(
        "s",
        EventKind::ExecutionStarted,
        Actor::system("gate"),
        serde_json::to_value(&other_start)?,
    ));

    let result = gate.authorize(&request_id, &action).await;
    assert!(
        matches!(
            result,
            Err(GateError::Refused {
                refusal: Refusal::Degraded { .. },
                ..
            })
        ),
        "a second start got a permit: {result:?}"
    );
    assert!(gate.degraded().is_some(), "the gate degraded");
    Ok(())
}
