//! The PostgreSQL store, each beside a raw-SQL baseline on the same server,
//! the same table shape (indexes included) and the same bytes.
//!
//! - `postgres_append_one`: one event per commit through
//!   `PostgresStore::append` (lock the head row, seal, insert, commit) vs one
//!   autocommitted single-row INSERT of the same sealed bytes. Goal ≥ 0.6×.
//! - `postgres_append_8_concurrent`: 8 concurrent appenders on one store vs
//!   8 raw connections inserting at once. Goal ≥ 0.5×. Also through
//!   `BatchingStore`, which coalesces the concurrent appends of one process
//!   into one transaction.
//! - `postgres_verify_100k`: `verify_store` over 100,000 events vs a raw
//!   streamed read of the same rows and columns. Goal ≥ 0.9×.
//!
//! Needs a server: `scripts/test.sh cargo bench -p syndicate-benches --bench
//! postgres` starts one (or set SYNDICATE_TEST_POSTGRES_URL). Without one the
//! bench prints why and measures nothing.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use syndicate_core::{
    Actor, ChainId, Event, EventDraft, EventKind, EventStore, Timestamp, seal, verify_store,
};
use syndicate_store_postgres::testing::fresh_database;
use syndicate_store_postgres::{BatchingStore, PostgresStore};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A realistic proposal without a single-use key, so every append is
/// independent.
fn draft() -> EventDraft {
    EventDraft::new(
        "sess-7f2a",
        EventKind::ActionProposed,
        Actor::agent("agent:deploy-bot"),
        json!({"request_id": "req-0001",
               "action": {"tool": "shell.exec", "target": "cluster:prod-eu",
                          "args": {"argv": ["kubectl", "rollout", "restart", "deploy/payments"],
                                   "cwd": "/srv/app"}},
               "requester": "agent:deploy-bot", "risk_tier": "high",
               "context": {"prompt": "restart the payments deployment",
                           "trigger": "pagerduty:INC-42"}}),
    )
}

struct Setup {
    url: String,
    pool: PgPool,
    event: Event,
    next_raw_seq: AtomicI64,
}

async fn setup() -> Option<Arc<Setup>> {
    let url = fresh_database("postgres benches").await?;
    // Creates the schema; the baseline table copies the events table's
    // columns, constraints and indexes (not its triggers, which never fire
    // on INSERT anyway).
    let store = PostgresStore::open(&url, ChainId::new("schema").unwrap())
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await
        .unwrap();
    store.close().await;
    let chain = ChainId::new("raw").unwrap();
    let event = seal(&chain, None, &[draft()], Timestamp::now())
        .unwrap()
        .remove(0);
    Some(Arc::new(Setup {
        url,
        pool,
        event,
        next_raw_seq: AtomicI64::new(0),
    }))
}

async fn raw_insert(setup: &Setup) {
    let e = &setup.event;
    let seq = setup.next_raw_seq.fetch_add(1, Ordering::Relaxed);
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(Timestamp::now().unix_micros()) * 1000,
    )
    .unwrap();
    sqlx::query(
        "INSERT INTO raw_events
            (chain, seq, hash, canonical, at, session, kind, actor, request_id, once)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind("raw")
    .bind(seq)
    .bind(e.hash.to_string())
    .bind(e.canonical.as_slice())
    .bind(at)
    .bind(e.columns.session.as_str())
    .bind(e.columns.kind.as_str())
    .bind(e.columns.actor.as_str())
    .bind(e.columns.request_id.as_deref())
    .bind(e.columns.once.as_deref())
    .execute(&setup.pool)
    .await
    .unwrap();
}

fn append_one(c: &mut Criterion) {
    let rt = runtime();
    let Some(setup) = rt.block_on(setup()) else {
        return;
    };
    let store = rt
        .block_on(PostgresStore::open(
            &setup.url,
            ChainId::new("append-one").unwrap(),
        ))
        .unwrap();
    let draft = draft();
    let mut group = c.benchmark_group("postgres_append_one");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_raw_single_row_insert", |b| {
        b.to_async(&rt).iter(|| raw_insert(&setup))
    });
    group.bench_function("syndicate_append_1_per_commit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.append(std::slice::from_ref(&draft)).await.unwrap()) })
    });
    group.finish();
}

const WRITERS: u64 = 8;

fn append_concurrent(c: &mut Criterion) {
    let rt = runtime();
    let Some(setup) = rt.block_on(setup()) else {
        return;
    };
    let store = Arc::new(
        rt.block_on(PostgresStore::open(
            &setup.url,
            ChainId::new("append-8").unwrap(),
        ))
        .unwrap(),
    );
    let mut group = c.benchmark_group("postgres_append_8_concurrent");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_8_raw_connections_inserting", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let setup = setup.clone();
            async move {
                let per_writer = iters.div_ceil(WRITERS);
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let setup = setup.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_writer {
                                raw_insert(&setup).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                scale(start.elapsed(), iters, per_writer * WRITERS)
            }
        })
    });
    group.bench_function("syndicate_8_concurrent_appenders", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            async move {
                let per_writer = iters.div_ceil(WRITERS);
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let draft = draft();
                            for _ in 0..per_writer {
                                store.append(std::slice::from_ref(&draft)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                scale(start.elapsed(), iters, per_writer * WRITERS)
            }
        })
    });
    let batching = Arc::new(BatchingStore::new(
        rt.block_on(PostgresStore::open(
            &setup.url,
            ChainId::new("append-8-batching").unwrap(),
        ))
        .unwrap(),
    ));
    group.bench_function("syndicate_8_concurrent_appenders_batching", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = batching.clone();
            async move {
                let per_writer = iters.div_ceil(WRITERS);
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let draft = draft();
                            for _ in 0..per_writer {
                                store.append(std::slice::from_ref(&draft)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                scale(start.elapsed(), iters, per_writer * WRITERS)
            }
        })
    });
    group.finish();
}

/// The time `iters` operations took, from the time `done` operations took.
fn scale(elapsed: Duration, iters: u64, done: u64) -> Duration {
    elapsed.mul_f64(iters as f64 / done.max(1) as f64)
}

fn verify_100k(c: &mut Criterion) {
    const EVENTS: usize = 100_000;
    let rt = runtime();
    let Some(setup) = rt.block_on(setup()) else {
        return;
    };
    let store = rt
        .block_on(PostgresStore::open(
            &setup.url,
            ChainId::new("verify").unwrap(),
        ))
        .unwrap();
    let draft = draft();
    rt.block_on(async {
        for start in (0..EVENTS).step_by(1000) {
            let batch: Vec<_> = (start..start + 1000)
                .map(|i| {
                    let mut d = draft.clone();
                    d.body["request_id"] = json!(format!("req-{i}"));
                    d
                })
                .collect();
            store.append(&batch).await.unwrap();
        }
        sqlx::query("VACUUM ANALYZE events")
            .execute(&setup.pool)
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group("postgres_verify_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("baseline_raw_streamed_read", |b| {
        b.to_async(&rt).iter(|| async {
            use futures_util::TryStreamExt;
            use sqlx::Row;
            let mut rows = sqlx::query(
                "SELECT seq, hash, canonical, at, session, kind, actor, request_id, once
                 FROM events WHERE chain = $1 ORDER BY seq",
            )
            .bind("verify")
            .fetch(&setup.pool);
            let mut n = 0usize;
            while let Some(row) = rows.try_next().await.unwrap() {
                let seq: i64 = row.get("seq");
                let hash: String = row.get("hash");
                let canonical: Vec<u8> = row.get("canonical");
                let at: time::OffsetDateTime = row.get("at");
                let session: String = row.get("session");
                let kind: String = row.get("kind");
                let actor: String = row.get("actor");
                let request_id: Option<String> = row.get("request_id");
                let once: Option<String> = row.get("once");
                black_box((
                    seq, hash, canonical, at, session, kind, actor, request_id, once,
                ));
                n += 1;
            }
            assert_eq!(n, EVENTS);
        })
    });
    group.bench_function("syndicate_verify_store", |b| {
        b.to_async(&rt).iter(|| async {
            let report = verify_store(&store, None).await.unwrap();
            assert!(report.is_intact());
            assert_eq!(report.summary.events, EVENTS as u64);
        })
    });
    group.finish();
}

criterion_group!(benches, append_one, append_concurrent, verify_100k);
criterion_main!(benches);
