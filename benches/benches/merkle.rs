//! The Merkle tree and signed checkpoints, each beside its baseline.
//!
//! - `checkpoint_sign`: `checkpoint::sign` (body text, signed note) vs a
//!   bare Ed25519 signature of the same body bytes.
//! - `inclusion_proof_1m`: `tree::inclusion_proof` for a random leaf of a
//!   1,000,000-event chain with its node cache synced (in memory, so the
//!   line measures the algorithm, not a disk) vs checking that proof, and
//!   vs recomputing the root from all 1,000,000 leaf hashes (what a proof
//!   spares). Goal: milliseconds, not a scan.
//! - `sqlite_append_tree`: one event per commit on SQLite with
//!   `synchronous=FULL`, plain vs followed by `tree::sync_nodes` (the node
//!   cache brought to the head, a second write), and with `sync_nodes`
//!   once every 100 appends. Goal: tree maintenance within 10% of the
//!   append (met only when nodes are synced in batches: each sync is a
//!   commit of its own).
//! - `verify_100k`: `verify_store` vs `VerifiedTree::catch_up` (the same
//!   checks plus the root) over 100,000 events in memory.
//!
//! Run: `cargo bench -p syndicate-benches --bench merkle -- --warm-up-time 1 --measurement-time 5`
//! (`SYNDICATE_BENCH_TREE_EVENTS` changes the 1,000,000.)

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use syndicate_core::checkpoint::{self, Checkpoint};
use syndicate_core::keys::SigningKey;
use syndicate_core::merkle::{self, Hash};
use syndicate_core::tree::{self, VerifiedTree};
use syndicate_core::{
    Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, MemoryStore, verify_store,
};
use syndicate_store_sqlite::{Durability, SqliteOptions, SqliteStore};

fn draft(n: u64) -> EventDraft {
    EventDraft::new(
        "sess-7f2a",
        EventKind::ExecutionCompleted,
        Actor::system("gate"),
        json!({"request_id": format!("req-{n}"), "outcome": "succeeded", "exit_code": 0}),
    )
}

fn chain() -> ChainId {
    ChainId::new("bench").unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A memory store of `n` events, appended in batches of 1000.
fn memory_store(rt: &tokio::runtime::Runtime, n: u64) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new(chain()));
    rt.block_on(async {
        let mut next = 0;
        while next < n {
            let end = (next + 1000).min(n);
            let drafts: Vec<EventDraft> = (next..end).map(draft).collect();
            store.append(&drafts).await.unwrap();
            next = end;
        }
    });
    store
}

/// A small deterministic generator for leaf indexes (no `rand` dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn checkpoint_sign(c: &mut Criterion) {
    let key = SigningKey::from_seed("audit.example.com/prod", &[7; 32]).unwrap();
    let body = Checkpoint::new("audit.example.com/prod", 1_000_000, [9; 32]);
    let text = body.body();
    let mut group = c.benchmark_group("checkpoint_sign");
    group.bench_function("ed25519_sign_of_the_body", |b| {
        b.iter(|| key.sign(black_box(text.as_bytes())))
    });
    group.bench_function("checkpoint_sign_note", |b| {
        b.iter(|| checkpoint::sign(black_box(&body), &key).unwrap())
    });
    let signed = checkpoint::sign(&body, &key).unwrap();
    let trust = checkpoint::Trust::log(key.verifier().clone());
    group.bench_function("checkpoint_open_verify", |b| {
        b.iter(|| checkpoint::open(black_box(&signed), &trust).unwrap())
    });
    group.finish();
}

fn inclusion_proof_1m(c: &mut Criterion) {
    let n: u64 = std::env::var("SYNDICATE_BENCH_TREE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let store = memory_store(&rt, n);
    let started = Instant::now();
    assert_eq!(rt.block_on(tree::sync_nodes(store.as_ref())).unwrap(), n);
    eprintln!("node cache of {n} events synced in {:?}", started.elapsed());
    let leaves: Vec<Hash> = rt.block_on(async {
        let mut leaves = Vec::with_capacity(n as usize);
        let mut next = 0;
        while next < n {
            let page = store.read(next, 10_000).await.unwrap();
            next += page.len() as u64;
            leaves.extend(page.iter().map(|e| tree::event_leaf(&e.hash)));
        }
        leaves
    });
    let root = merkle::root(&leaves);

    let mut group = c.benchmark_group("inclusion_proof_1m");
    let mut rng = Lcg(1);
    group.bench_function("tree_inclusion_proof", |b| {
        b.iter(|| {
            let index = rng.below(n);
            rt.block_on(tree::inclusion_proof(store.as_ref(), index, n))
                .unwrap()
        })
    });
    let index = n / 3;
    let proof = rt
        .block_on(tree::inclusion_proof(store.as_ref(), index, n))
        .unwrap();
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| {
            merkle::verify_inclusion(index, n, &leaves[index as usize], black_box(&proof), &root)
                .unwrap()
        })
    });
    group.sample_size(10);
    group.bench_function("root_from_all_leaves_baseline", |b| {
        b.iter(|| merkle::root(black_box(&leaves)))
    });
    group.finish();
}

fn sqlite_append_tree(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let open = |name: &str| {
        rt.block_on(SqliteStore::open(
            dir.path().join(name),
            chain(),
            SqliteOptions::default().with_durability(Durability::Full),
        ))
        .unwrap()
    };
    let mut group = c.benchmark_group("sqlite_append_tree");
    let plain = open("plain.db");
    let mut n = 0;
    group.bench_function("append_one_full", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(plain.append_one(draft(n))).unwrap()
        })
    });
    let each = open("each.db");
    group.bench_function("append_one_full_then_sync_nodes", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(async {
                each.append_one(draft(n)).await.unwrap();
                tree::sync_nodes(&each).await.unwrap()
            })
        })
    });
    let batched = open("batched.db");
    let mut since_sync = 0;
    group.bench_function("append_one_full_sync_nodes_every_100", |b| {
        b.iter(|| {
            n += 1;
            since_sync += 1;
            rt.block_on(async {
                batched.append_one(draft(n)).await.unwrap();
                if since_sync == 100 {
                    since_sync = 0;
                    tree::sync_nodes(&batched).await.unwrap();
                }
            })
        })
    });
    group.finish();
}

fn verify_100k(c: &mut Criterion) {
    let rt = runtime();
    let store = memory_store(&rt, 100_000);
    let mut group = c.benchmark_group("verify_100k");
    group.sample_size(10);
    group.bench_function("verify_store", |b| {
        b.iter(|| {
            let report = rt.block_on(verify_store(store.as_ref(), None)).unwrap();
            assert!(report.violation.is_none());
        })
    });
    group.bench_function("verified_tree_catch_up_with_root", |b| {
        b.iter(|| {
            let mut tree = VerifiedTree::new(chain());
            rt.block_on(tree.catch_up(store.as_ref(), None)).unwrap();
            tree.root()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    checkpoint_sign,
    inclusion_proof_1m,
    sqlite_append_tree,
    verify_100k
);
criterion_main!(benches);
