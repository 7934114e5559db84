//! The gate's store deadline: a store whose calls stop answering degrades
//! the gate within one deadline, refuses every execution meanwhile, and the
//! gate runs again once an operator recovers it. Time is Tokio's paused
//! clock, so the deadlines are exact and the test takes no real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, GateError, ProposalContext, Refusal, RulePolicy};
use syndicate_core::merkle::{Hash, NodeId};
use syndicate_core::{
    Action, Actor, ChainId, Event, EventDraft, EventKind, EventStore, EventStoreExt, Head,
    MemoryStore, Query, StoreError, check_story,
};

/// A memory store whose calls hang (never finish) while `hung` is set: a
/// stopped server, as the gate sees it.
#[derive(Debug)]
struct Hangable {
    inner: MemoryStore,
    hung: AtomicBool,
}

impl Hangable {
    async fn gate(&self) {
        if self.hung.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl EventStore for Hangable {
    fn chain(&self) -> &ChainId {
        self.inner.chain()
    }
    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        self.gate().await;
        self.inner.append(drafts).await
    }
    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.gate().await;
        self.inner.head().await
    }
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.gate().await;
        self.inner.read(from_seq, limit).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.gate().await;
        self.inner.query(query).await
    }
    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        self.inner.put_tree_nodes(nodes).await
    }
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        self.inner.tree_nodes(ids).await
    }
    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        self.inner.tree_leaf_count().await
    }
}

const POLICY: &str = r#"
id = "test"
version = "1"

[[rules]]
id = "deploys"
tool = "deploy.*"
risk = "high"
decision = "human"
"#;

fn deploy(version: u32) -> Action {
    Action::new("deploy.release", json!({"version": version})).unwrap()
}

async fn approved(gate: &Gate, version: u32) -> String {
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &deploy(version),
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await
        .unwrap();
    p.request_id
}

async fn kinds(store: &MemoryStore, kind: EventKind) -> usize {
    store
        .query(&Query {
            kind: Some(kind),
            ..Query::all()
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test(start_paused = true)]
async fn a_hung_store_degrades_the_gate_within_one_deadline() {
    let store = Arc::new(Hangable {
        inner: MemoryStore::new(ChainId::new("deadline").unwrap()),
        hung: AtomicBool::new(false),
    });
    let config = GateConfig {
        store_deadline: Some(Duration::from_secs(3)),
        ..GateConfig::default()
    };
    let policy = Arc::new(RulePolicy::from_toml(POLICY).unwrap());
    let gate = Gate::open(store.clone(), policy, config).await.unwrap();
    let request_id = approved(&gate, 1).await;
    let before: Vec<_> = store.inner.read(0, 1000).await.unwrap();

    store.hung.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let ran = AtomicBool::new(false);
    let result = gate
        .run(&request_id, &deploy(1), |_| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .await;
    // One deadline: the hung read ends it, and the degradation is not
    // written to the hung store (which would wait out a second one).
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(!ran.load(Ordering::SeqCst), "nothing runs on a hung store");
    let err = result.unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Degraded { reason }) if reason.contains("did not finish within 3s")),
        "{err:?}"
    );
    let reason = gate.degraded().expect("the gate degraded");
    assert!(reason.contains("cannot read the chain"), "{reason}");

    // Degraded: refused at once, without waiting on the store.
    let started = tokio::time::Instant::now();
    let again = gate.authorize(&request_id, &deploy(1)).await;
    assert!(matches!(
        again.as_ref().err().and_then(GateError::refusal),
        Some(Refusal::Degraded { .. })
    ));
    assert_eq!(started.elapsed(), Duration::ZERO);

    store.hung.store(false, Ordering::SeqCst);
    assert_eq!(kinds(&store.inner, EventKind::GateDegraded).await, 0);
    gate.recover(&Actor::human("ops@example.com"), "server resumed")
        .await
        .unwrap();
    let after = store.inner.read(0, 1000).await.unwrap();
    assert_eq!(
        after[..before.len()],
        before[..],
        "nothing acknowledged lost"
    );
    let permit = gate.authorize(&request_id, &deploy(1)).await.unwrap();
    gate.complete(permit, syndicate_core::Outcome::succeeded())
        .await
        .unwrap();
    assert!(store.inner.verify().await.unwrap().is_intact());
    assert!(check_story(&store.inner).await.unwrap().is_consistent());
}

#[tokio::test(start_paused = true)]
async fn an_append_that_hangs_degrades_and_says_it_may_have_written() {
    let store = Arc::new(Hangable {
        inner: MemoryStore::new(ChainId::new("deadline").unwrap()),
        hung: AtomicBool::new(false),
    });
    let config = GateConfig {
        store_deadline: Some(Duration::from_secs(2)),
        ..GateConfig::default()
    };
    let policy = Arc::new(RulePolicy::from_toml(POLICY).unwrap());
    let gate = Gate::open(store.clone(), policy, config).await.unwrap();
    // Only appends hang: the gate reads and verifies, then cannot record.
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &deploy(2),
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    let hung_append = HangAppends(store.clone());
    let gate2 = Gate::open(
        Arc::new(hung_append),
        Arc::new(RulePolicy::from_toml(POLICY).unwrap()),
        GateConfig {
            store_deadline: Some(Duration::from_secs(2)),
            ..GateConfig::default()
        },
    )
    .await
    .unwrap();
    store.hung.store(false, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let err = gate2
        .approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let GateError::Store(e) = &err else {
        panic!("{err:?}")
    };
    assert!(syndicate_core::deadline::is_deadline(e), "{e}");
    assert!(e.may_have_written(), "an append cut off may still commit");
    assert!(gate2.degraded().is_some());
    assert_eq!(kinds(&store.inner, EventKind::GateDegraded).await, 0);
    assert_eq!(kinds(&store.inner, EventKind::ActionApproved).await, 0);
}

/// Appends never finish; reads answer.
#[derive(Debug)]
struct HangAppends(Arc<Hangable>);

#[async_trait]
impl EventStore for HangAppends {
    fn chain(&self) -> &ChainId {
        self.0.chain()
    }
    async fn append(&self, _: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        std::future::pending().await
    }
    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.0.head().await
    }
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.0.read(from_seq, limit).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.0.query(query).await
    }
}
