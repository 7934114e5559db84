//! Sealing and verification, each beside its baseline.
//!
//! - `seal_one_event`: sealing one event (canonical envelope + SHA-256) vs
//!   the baseline `serde_json::to_vec` of the same envelope plus SHA-256 of
//!   those bytes.
//! - `verify_100k_memory`: verifying 100,000 events vs the baseline SHA-256
//!   of the same canonical bytes: once on events already in hand (the cost
//!   of the checks alone), once through `verify_store` reading a
//!   `MemoryStore` page by page (which clones every event it returns).
//!
//! Run: `cargo bench -p syndicate-benches --bench chain`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use syndicate_core::{
    Action, Actor, ChainId, EventDraft, EventKind, EventStore, Head, MemoryStore, PolicyRef,
    Timestamp, Verifier, digest, seal, tags, verify_store,
};

fn proposal() -> EventDraft {
    let action = Action::new(
        "shell.exec",
        json!({"argv": ["kubectl", "rollout", "restart", "deploy/payments"], "cwd": "/srv/app",
               "env": {"KUBECONFIG": "/etc/kube/prod", "LANG": "C.UTF-8"}, "timeout_s": 300}),
    )
    .unwrap()
    .with_target("cluster:prod-eu")
    .unwrap();
    let policy = PolicyRef {
        id: "default".into(),
        version: "7".into(),
        digest: digest(tags::POLICY, &json!({"rules": []})).unwrap(),
    };
    EventDraft::new(
        "sess-7f2a",
        EventKind::ActionProposed,
        Actor::agent("agent:deploy-bot"),
        json!({"request_id": "req-0001", "action": action.to_value(), "action_digest": action.digest(),
               "requester": "agent:deploy-bot", "risk_tier": "high", "controls": ["SOC2:CC8.1"],
               "context": {"prompt": "restart the payments deployment", "trigger": "pagerduty:INC-42"}}),
    )
    .with_policy(policy)
    .with_once("action.proposed:req-0001")
}

fn seal_one_event(c: &mut Criterion) {
    let chain = ChainId::new("bench").unwrap();
    let draft = proposal();
    let head = Head {
        seq: 41,
        hash: syndicate_core::Digest::ZERO,
        at: Timestamp::now(),
    };
    let sealed = seal(
        &chain,
        Some(&head),
        std::slice::from_ref(&draft),
        Timestamp::now(),
    )
    .unwrap();
    let envelope = sealed[0].envelope().unwrap();
    let mut group = c.benchmark_group("seal_one_event");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_serde_json_to_vec_plus_sha256", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&envelope)).unwrap();
            black_box(Sha256::digest(&bytes))
        })
    });
    group.bench_function("syndicate_seal", |b| {
        b.iter(|| {
            seal(
                &chain,
                Some(&head),
                std::slice::from_ref(black_box(&draft)),
                Timestamp::now(),
            )
            .unwrap()
        })
    });
    group.finish();
}

fn verify_100k(c: &mut Criterion) {
    const EVENTS: usize = 100_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = MemoryStore::new(ChainId::new("bench").unwrap());
    let draft = proposal();
    runtime.block_on(async {
        for start in (0..EVENTS).step_by(1000) {
            let batch: Vec<_> = (start..start + 1000)
                .map(|i| {
                    let mut d = draft.clone();
                    d.body["request_id"] = json!(format!("req-{i}"));
                    d.once = Some(format!("action.proposed:req-{i}"));
                    d
                })
                .collect();
            store.append(&batch).await.unwrap();
        }
    });
    let events = runtime.block_on(store.read(0, EVENTS)).unwrap();
    let bytes: Vec<Vec<u8>> = events.iter().map(|e| e.canonical.clone()).collect();
    let total: usize = bytes.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("verify_100k_memory");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("baseline_sha256_of_same_bytes", |b| {
        b.iter(|| {
            for event in &bytes {
                let mut h = Sha256::new();
                h.update(tags::EVENT.as_bytes());
                h.update([0u8]);
                h.update(event);
                black_box(h.finalize());
            }
        })
    });
    group.bench_function("syndicate_verifier_on_events_in_hand", |b| {
        b.iter(|| {
            let mut verifier = Verifier::new(store.chain().clone());
            for event in &events {
                verifier.check(event).unwrap();
            }
            black_box(verifier.summary().events)
        })
    });
    group.bench_function("syndicate_verify_store", |b| {
        b.iter_batched(
            || (),
            |()| {
                let report = runtime.block_on(verify_store(&store, None)).unwrap();
                assert!(report.is_intact());
                black_box(report)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, seal_one_event, verify_100k);
criterion_main!(benches);
