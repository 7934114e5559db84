//! Random sequences of gate calls against a model of the protocol: no
//! unapproved, denied, expired, reused or drifted action ever gets a permit,
//! a degraded gate issues none, every allowed start gets one, and the chain
//! always verifies, semantically too.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use proptest::prelude::*;
use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, Outcome, Permit, ProposalContext, RulePolicy};
use syndicate_core::{
    Action, Actor, ChainId, Event, EventDraft, EventStore, EventStoreExt, Head, MemoryStore, Query,
    StoreError, Timestamp, check_story,
};

const POLICY: &str = r#"
id = "props"
version = "1"

[[rules]]
id = "reads"
tool = "fs.read"
risk = "low"
decision = "auto_approve"
approval_ttl_seconds = 100

[[rules]]
id = "payments"
tool = "shell.exec"
target = "repo:payments-*"
risk = "critical"
decision = "human"
approval_ttl_seconds = 100

[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
approval_ttl_seconds = 60

[[rules]]
id = "deletes"
tool = "fs.delete"
risk = "high"
decision = "deny"
"#;

/// A memory store whose appends can be switched off, as if the disk were
/// full: reads keep working, appends fail with `Unavailable`.
#[derive(Debug)]
struct Switchable {
    inner: MemoryStore,
    broken: AtomicBool,
}

#[async_trait]
impl EventStore for Switchable {
    fn chain(&self) -> &ChainId {
        self.inner.chain()
    }
    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                store: "switchable",
                maybe_written: false,
                source: "switched off".into(),
            });
        }
        self.inner.append(drafts).await
    }
    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.inner.head().await
    }
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.inner.read(from_seq, limit).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.inner.query(query).await
    }
}

#[derive(Debug, Clone)]
enum Op {
    Propose {
        template: u8,
        variant: u8,
    },
    Approve {
        req: usize,
        approver: u8,
        right_digest: bool,
    },
    Deny {
        req: usize,
    },
    Authorize {
        req: usize,
        drifted: bool,
    },
    Complete,
    Advance {
        seconds: u8,
    },
    Break,
    Heal,
    Recover,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::sample::select(vec![0u8, 1, 1, 2, 2, 3]), 0u8..3)
            .prop_map(|(template, variant)| Op::Propose { template, variant }),
        6 => (0usize..8, 0u8..3, prop::bool::weighted(0.85))
            .prop_map(|(req, approver, right_digest)| Op::Approve { req, approver, right_digest }),
        1 => (0usize..8).prop_map(|req| Op::Deny { req }),
        4 => (0usize..8, prop::bool::weighted(0.3))
            .prop_map(|(req, drifted)| Op::Authorize { req, drifted }),
        2 => Just(Op::Complete),
        2 => prop::sample::select(vec![1u8, 30, 59, 60, 61, 99, 100])
            .prop_map(|seconds| Op::Advance { seconds }),
        1 => (0u8..6).prop_filter_map("rare", |n| (n == 0).then_some(Op::Break)),
        3 => Just(Op::Heal),
        3 => Just(Op::Recover),
    ]
}

const APPROVERS: [&str; 3] = ["agent:bot", "bob@example.com", "carol@example.com"];

fn action(template: u8, variant: u8, drifted: bool) -> Action {
    let mut argv = vec![json!("run"), json!(variant)];
    if drifted {
        argv.push(json!("--force"));
    }
    let args = json!({ "argv": argv });
    match template {
        0 => Action::new("fs.read", args).unwrap(),
        1 => Action::new("shell.exec", args).unwrap(),
        2 => Action::new("shell.exec", args)
            .unwrap()
            .with_target("repo:payments-svc")
            .unwrap(),
        _ => Action::new("fs.delete", args).unwrap(),
    }
}

/// What the model knows about a request.
#[derive(Debug)]
struct Req {
    id: String,
    template: u8,
    variant: u8,
    required: usize,
    ttl: i64,
    approvers: BTreeSet<String>,
    /// Model-clock time (µs offset) of each approval.
    expiry: Option<i64>,
    denied: bool,
    started: bool,
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Arc::new(Switchable {
        inner: MemoryStore::new(ChainId::new("props").unwrap()),
        broken: AtomicBool::new(false),
    });
    let offset = Arc::new(AtomicI64::new(0));
    let base = Timestamp::now().unix_micros();
    let o = offset.clone();
    let config = GateConfig {
        clock: Arc::new(move || {
            Timestamp::from_unix_micros(base + o.load(Ordering::SeqCst)).unwrap()
        }),
        ..GateConfig::default()
    };
    let policy = Arc::new(RulePolicy::from_toml(POLICY).unwrap());
    let gate = Gate::open(store.clone(), policy, config).await.unwrap();
    let requester = Actor::agent(APPROVERS[0]);

    let mut reqs: Vec<Req> = Vec::new();
    let mut permits: Vec<Permit> = Vec::new();
    let mut broken = false;
    let mut degraded = false;
    let now = |offset: &AtomicI64| offset.load(Ordering::SeqCst);
    // The store's clock, on the model's scale: an approval is usable until
    // the earlier of the gate's clock and the store's time of the approval
    // event, plus the rule's lifetime.
    let store_now = || Timestamp::now().unix_micros() - base;

    for op in ops {
        match op {
            Op::Propose { template, variant } => {
                let a = action(template, variant, false);
                let result = gate
                    .propose("sess", &requester, &a, &ProposalContext::default())
                    .await;
                if broken {
                    prop_assert!(result.is_err());
                    degraded = true;
                    continue;
                }
                let p = result.unwrap();
                let (required, ttl) = match template {
                    0 => (1, 100),
                    1 => (1, 60),
                    2 => (2, 100),
                    _ => (1, 0),
                };
                reqs.push(Req {
                    id: p.request_id,
                    template,
                    variant,
                    required,
                    ttl: ttl * 1_000_000,
                    approvers: if template == 0 {
                        BTreeSet::from(["policy:reads".to_owned()])
                    } else {
                        BTreeSet::new()
                    },
                    expiry: (template == 0)
                        .then(|| now(&offset).min(store_now()) + 100 * 1_000_000),
                    denied: template == 3,
                    started: false,
                });
            }
            Op::Approve {
                req,
                approver,
                right_digest,
            } => {
                let len = reqs.len();
                let Some(r) = reqs.get_mut(req % len.max(1)) else {
                    continue;
                };
                let who = APPROVERS[usize::from(approver)];
                let digest = action(r.template, r.variant, !right_digest).digest();
                let result = gate.approve(&r.id, &Actor::human(who), &digest).await;
                let allowed = !broken
                    && !degraded
                    && right_digest
                    && approver != 0
                    && !r.denied
                    && !r.started
                    && r.approvers.len() < r.required
                    && !r.approvers.contains(who);
                prop_assert_eq!(
                    result.is_ok(),
                    allowed,
                    "approve {:?} by {} -> {:?}",
                    r,
                    who,
                    result
                );
                if broken {
                    degraded = true;
                }
                if allowed {
                    r.approvers.insert(who.to_owned());
                    let expires = now(&offset).min(store_now()) + r.ttl;
                    r.expiry = Some(r.expiry.map_or(expires, |e| e.min(expires)));
                }
            }
            Op::Deny { req } => {
                let len = reqs.len();
                let Some(r) = reqs.get_mut(req % len.max(1)) else {
                    continue;
                };
                let result = gate.deny(&r.id, &Actor::human(APPROVERS[1]), "no").await;
                let allowed = !broken && !degraded && !r.denied && !r.started;
                prop_assert_eq!(result.is_ok(), allowed, "deny {:?} -> {:?}", r, result);
                if broken {
                    degraded = true;
                }
                if allowed {
                    r.denied = true;
                }
            }
            Op::Authorize { req, drifted } => {
                let len = reqs.len();
                let Some(r) = reqs.get_mut(req % len.max(1)) else {
                    continue;
                };
                let presented = action(r.template, r.variant, drifted);
                let approved = action(r.template, r.variant, false);
                let result = gate.authorize(&r.id, &presented).await;
                if broken {
                    degraded = true;
                }
                let unexpired = r.expiry.is_some_and(|e| now(&offset) < e);
                let allowed = !degraded
                    && !drifted
                    && !r.denied
                    && !r.started
                    && r.approvers.len() >= r.required
                    && unexpired;
                prop_assert_eq!(
                    result.is_ok(),
                    allowed,
                    "authorize {:?} drifted={} degraded={} -> {:?}",
                    r,
                    drifted,
                    degraded,
                    result
                );
                if let Ok(permit) = result {
                    prop_assert_eq!(permit.digest(), approved.digest());
                    prop_assert_eq!(
                        permit.action().canonical_bytes(),
                        approved.canonical_bytes()
                    );
                    r.started = true;
                    permits.push(permit);
                }
            }
            Op::Complete => {
                if let Some(permit) = permits.pop() {
                    let result = gate.complete(permit, Outcome::succeeded()).await;
                    prop_assert_eq!(result.is_ok(), !broken);
                    if broken {
                        degraded = true;
                    }
                }
            }
            Op::Advance { seconds } => {
                offset.fetch_add(i64::from(seconds) * 1_000_000, Ordering::SeqCst);
            }
            Op::Break => {
                broken = true;
                store.broken.store(true, Ordering::SeqCst);
            }
            Op::Heal => {
                broken = false;
                store.broken.store(false, Ordering::SeqCst);
            }
            Op::Recover => {
                let result = gate.recover(&Actor::human("ops@example.com"), "test").await;
                prop_assert_eq!(result.is_ok(), !broken);
                if !broken {
                    degraded = false;
                }
            }
        }
        prop_assert_eq!(gate.degraded().is_some(), degraded);
        let report = store.verify().await.unwrap();
        prop_assert!(report.is_intact(), "{:?}", report.violation);
        let story = check_story(store.as_ref()).await.unwrap();
        prop_assert!(story.is_consistent(), "{:?}", story.violations);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_unapproved_or_drifted_action_gets_a_permit(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
