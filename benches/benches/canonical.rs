//! Canonicalizing a ~1 KiB action, beside plain serde_json.
//!
//! Baseline: `serde_json::from_slice::<Value>` + `serde_json::to_vec`, which
//! neither checks duplicates nor sorts keys by UTF-16 nor renders numbers the
//! ECMAScript way. Ours: the strict `jcs::parse` + `jcs::to_canonical_vec`,
//! and the same followed by the SHA-256 digest the gate computes for every
//! action; and `jcs::canonicalize` (text straight to canonical bytes, no
//! `Value`) followed by SHA-256. Goal: the direct strict path with its
//! digest at least as fast as the baseline (ratio >= 1.0).
//!
//! Run with `cargo bench -p syndicate-benches --bench canonical`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use sha2::{Digest, Sha256};
use syndicate_core::jcs;

/// An action as an agent framework would send it: members in the agent's
/// order, a few numbers, non-ASCII text.
const ACTION: &str = r#"{"tool":"shell.exec","target":"repo:payments-svc","args":{"argv":["git","push","--force-with-lease","origin","release/2026.11"],"cwd":"/srv/app/payments-svc","env":{"PATH":"/usr/local/bin:/usr/bin:/bin","LANG":"fr_FR.UTF-8","GIT_AUTHOR_NAME":"Agent Smith","GIT_AUTHOR_EMAIL":"agent@example.com","GIT_TERMINAL_PROMPT":"0","CI":"false"},"options":{"timeout_ms":30000,"retries":2,"backoff":1.5,"dry_run":false,"limits":{"cpu":0.5,"memory_mb":512,"pids":64,"nofile":1024},"sandbox":{"network":"egress-only","allow_hosts":["github.com","registry.example.com"],"read_only_paths":["/etc","/usr","/srv/app/shared"],"uid":1000}},"stdin":null,"reason":"Déployer la correction « paiement en double » — ticket PAY-4821 ✅","labels":{"team":"paiements","env":"prod","région":"eu-west-3","priorité":"haute"}},"requested_by":{"agent":"release-bot","model":"gpt-x","session":"sess-7f2a","turn":17},"estimate":{"files_changed":3,"lines":142,"confidence":0.87,"risk":"medium"},"note":"Rebased onto main after review by Zoë; see https://git.example.com/pay/pull/4821 for the diff ⟶ CI run #99812"}"#;

fn canonical_1kib_action(c: &mut Criterion) {
    let input = ACTION.as_bytes();
    let mut group = c.benchmark_group("canonical_1KiB_action");
    group.throughput(Throughput::Bytes(input.len() as u64));

    group.bench_function("serde_json_parse_and_to_vec", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(input)).unwrap();
            serde_json::to_vec(&value).unwrap()
        });
    });

    group.bench_function("jcs_parse_and_canonical", |b| {
        b.iter(|| {
            let value = jcs::parse(black_box(input)).unwrap();
            jcs::to_canonical_vec(&value).unwrap()
        });
    });

    group.bench_function("jcs_parse_canonical_and_sha256", |b| {
        b.iter(|| {
            let value = jcs::parse(black_box(input)).unwrap();
            let bytes = jcs::to_canonical_vec(&value).unwrap();
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            digest
        });
    });

    // The direct path: text to canonical bytes without a `Value`, what
    // `jcs::canonicalize` (the CLI, the hooks, `audit verify --jsonl`) runs.
    group.bench_function("jcs_canonicalize_and_sha256", |b| {
        b.iter(|| {
            let bytes = jcs::canonicalize(black_box(input)).unwrap();
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            digest
        });
    });

    group.finish();
}

criterion_group!(benches, canonical_1kib_action);
criterion_main!(benches);
