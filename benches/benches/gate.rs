//! The gate round trip on SQLite, beside the raw inserts it cannot avoid.
//!
//! Ours: `propose`, `approve`, `authorize`, `complete` through a
//! [`Gate`] on a [`SqliteStore`] file (WAL, `synchronous=FULL`, the default):
//! four events, four commits, plus the reads the gate needs (the request's
//! events, the incremental chain verification, the re-check of the events a
//! permit relies on).
//!
//! Baseline: four single-row `INSERT`s (four autocommit transactions) of the
//! same canonical bytes into the same table, indexes and pragmas, through
//! rusqlite directly: no sealing, no checks, no reads.
//!
//! For context, `store_append_4_single_events` appends the same four events
//! one by one through the store, without the gate.
//!
//! `gate_round_trip_signed_approval` is the same round trip under a policy
//! that declares approvers: the approval is an Ed25519-signed decision
//! (signed, then verified by `Gate::submit`, and verified again by
//! `authorize` when it counts the approvals). Goal: within 10% of the
//! unsigned round trip.
//!
//! Goal: the gate at ≥ 0.8× the baseline's throughput (baseline time /
//! gate time ≥ 0.8).
//!
//! Run with `cargo bench -p syndicate-benches --bench gate`; set
//! `SYNDICATE_BENCH_DIR` to put the two database files in another folder
//! (default: a temporary folder on the system's temp disk).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, RulePolicy};
use syndicate_core::keys::SigningKey;
use syndicate_core::{Action, Actor, ChainId, EventDraft, EventStore};
use syndicate_store_sqlite::testing::V1;
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

const POLICY: &str = r#"
id = "bench"
version = "1"

[[rules]]
id = "deploys"
tool = "deploy.*"
risk = "high"
decision = "human"
"#;

fn action() -> Action {
    Action::new(
        "deploy.release",
        json!({"service": "checkout", "version": "2.4.1", "canary": true, "regions": ["eu-west-3", "us-east-1"]}),
    )
    .unwrap()
    .with_target("service:checkout")
    .unwrap()
}

async fn round_trip(gate: &Gate, action: &Action) {
    let p = gate
        .propose(
            "bench",
            &Actor::agent("agent:bench"),
            action,
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await
        .unwrap();
    let permit = gate.authorize(&p.request_id, action).await.unwrap();
    gate.complete(permit, Outcome::succeeded().with_exit_code(0))
        .await
        .unwrap();
}

async fn round_trip_signed(gate: &Gate, action: &Action, bob: &SigningKey) {
    let p = gate
        .propose(
            "bench",
            &Actor::agent("agent:bench"),
            action,
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    let statement = Statement {
        chain: gate.store().chain().clone(),
        request_id: p.request_id.clone(),
        action_digest: p.digest(),
        approver: bob.name().to_owned(),
        decision: Decision::Approve,
        expires_at: None,
    };
    gate.submit(SignedDecision::sign(bob, statement).unwrap())
        .await
        .unwrap();
    let permit = gate.authorize(&p.request_id, action).await.unwrap();
    gate.complete(permit, Outcome::succeeded().with_exit_code(0))
        .await
        .unwrap();
}

fn gate_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // SYNDICATE_BENCH_DIR puts both files elsewhere, e.g. on a RAM disk to
    // take fsync out of both sides and compare the CPU and I/O-call cost.
    let dir = match std::env::var_os("SYNDICATE_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let action = action();

    // Ours.
    let store = runtime.block_on(async {
        SqliteStore::open(
            dir.path().join("gate.db"),
            ChainId::new("bench").unwrap(),
            SqliteOptions::default(),
        )
        .await
        .unwrap()
    });
    let store: Arc<dyn EventStore> = Arc::new(store);
    let policy = Arc::new(RulePolicy::from_toml(POLICY).unwrap());
    let gate = runtime.block_on(async {
        Gate::open(store.clone(), policy, GateConfig::default())
            .await
            .unwrap()
    });
    // One round trip to capture the four events' bytes for the baseline.
    runtime.block_on(round_trip(&gate, &action));
    let sample = runtime.block_on(async { store.read(1, 4).await.unwrap() });
    assert_eq!(sample.len(), 4);

    // Baseline: the same table and pragmas, plain inserts.
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    raw.execute_batch("PRAGMA synchronous=FULL;").unwrap();
    raw.execute_batch(V1).unwrap();
    let mut insert = raw
        .prepare(
            "INSERT INTO events (chain, seq, hash, canonical, at, session, kind, actor, request_id, once) \
             VALUES ('bench', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .unwrap();
    let mut next_seq: i64 = 0;

    let mut group = c.benchmark_group("gate_round_trip_sqlite");
    group.throughput(Throughput::Elements(4));
    group.bench_function("raw_insert_4_rows", |b| {
        b.iter(|| {
            for event in &sample {
                let c = &event.columns;
                // A unique once key per row, as the gate's keys are unique.
                let once = c.once.as_ref().map(|o| format!("{o}:{next_seq}"));
                insert
                    .execute(rusqlite::params![
                        next_seq,
                        event.hash.to_string(),
                        black_box(&event.canonical),
                        c.at,
                        c.session,
                        c.kind,
                        c.actor,
                        c.request_id,
                        once,
                    ])
                    .unwrap();
                next_seq += 1;
            }
        });
    });
    // Context: the same four events appended one by one through the store
    // (sealing, the head read and the once check inside each transaction).
    let drafts: Vec<EventDraft> = sample
        .iter()
        .map(|e| {
            let env = e.envelope().unwrap();
            EventDraft {
                session: env.session,
                kind: env.kind,
                actor: env.actor,
                policy: env.policy,
                body: env.body,
                once: None,
            }
        })
        .collect();
    let appender = runtime.block_on(async {
        SqliteStore::open(
            dir.path().join("store.db"),
            ChainId::new("bench").unwrap(),
            SqliteOptions::default(),
        )
        .await
        .unwrap()
    });
    group.bench_function("store_append_4_single_events", |b| {
        b.to_async(&runtime).iter(|| async {
            for draft in &drafts {
                appender.append(std::slice::from_ref(draft)).await.unwrap();
            }
        });
    });
    group.bench_function("gate_propose_approve_authorize_complete", |b| {
        b.to_async(&runtime).iter(|| round_trip(&gate, &action));
    });
    // The same round trip with a signed approval, on its own file.
    let bob = SigningKey::from_seed("bob@example.com", &[7; 32]).unwrap();
    let signed_policy = Arc::new(
        RulePolicy::from_toml(&format!(
            "{POLICY}\n[[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{}\"]\n",
            bob.verifier()
        ))
        .unwrap(),
    );
    let signed_gate = runtime.block_on(async {
        let store = SqliteStore::open(
            dir.path().join("signed.db"),
            ChainId::new("bench").unwrap(),
            SqliteOptions::default(),
        )
        .await
        .unwrap();
        Gate::open(Arc::new(store), signed_policy, GateConfig::default())
            .await
            .unwrap()
    });
    group.bench_function("gate_round_trip_signed_approval", |b| {
        b.to_async(&runtime)
            .iter(|| round_trip_signed(&signed_gate, &action, &bob));
    });
    group.finish();
}

criterion_group!(benches, gate_round_trip);
criterion_main!(benches);
