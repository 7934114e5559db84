//! The SQLite store beside raw rusqlite doing the same work on the same file
//! layout (the table and indexes of `syndicate-store-sqlite`, WAL mode, the
//! same `synchronous` setting).
//!
//! - `sqlite_append_one`: one event per commit: `SqliteStore::append` vs a
//!   raw autocommit `INSERT` of the same sealed row; in `Full` (default) and
//!   `Normal` durability; the store from a current-thread runtime (a hop to
//!   its writer thread and back) and from a multi-threaded one (the append
//!   runs in `block_in_place` on the calling thread).
//! - `sqlite_append_batch_100`: 100 events per commit vs a raw transaction
//!   of 100 `INSERT`s.
//! - `sqlite_append_32_concurrent`: 32 tasks of one process each appending
//!   one event at the same time (`Full`), on a current-thread and on a
//!   multi-threaded runtime, vs a raw transaction of 32 `INSERT`s: group
//!   commit puts the appends waiting together into one transaction and one
//!   fsync, each acknowledged only after it.
//! - `sqlite_verify_100k`: `verify_store` over 100,000 stored events vs a
//!   raw `SELECT canonical, hash ... ORDER BY seq` with SHA-256 of each row;
//!   two lines show where the time goes: `sqlite_store_read_pages` reads
//!   the events as `Event`s (pages of 1000, on the calling thread, no
//!   checks), and `verifier_check_in_memory` runs core's `Verifier::check`
//!   over the same events already in memory. `verify_store` overlaps the
//!   two (it reads the next page on the reader thread while checking this
//!   one), so it costs about the larger of them.
//!
//! Run: `cargo bench -p syndicate-benches --bench sqlite -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use syndicate_core::{
    Actor, ChainId, Event, EventDraft, EventKind, EventStore, Head, Timestamp, seal, tags,
    verify_store,
};
use syndicate_store_sqlite::testing::{Role, open_connection};
use syndicate_store_sqlite::{Durability, SqliteOptions, SqliteStore};

fn draft(n: u64) -> EventDraft {
    EventDraft::new(
        "sess-7f2a",
        EventKind::ExecutionCompleted,
        Actor::system("gate"),
        json!({"request_id": format!("req-{n}"), "outcome": "succeeded", "exit_code": 0,
               "result_digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
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

fn options(durability: Durability) -> SqliteOptions {
    SqliteOptions::default().with_durability(durability)
}

const INSERT: &str = "INSERT INTO events \
    (chain, seq, hash, canonical, at, session, kind, actor, request_id, once) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

fn insert(conn: &Connection, event: &Event) {
    let c = &event.columns;
    conn.prepare_cached(INSERT)
        .unwrap()
        .execute(params![
            "bench",
            event.seq as i64,
            event.hash.to_string(),
            event.canonical,
            c.at,
            c.session,
            c.kind,
            c.actor,
            c.request_id,
            c.once
        ])
        .unwrap();
}

/// A raw connection on a new file with the store's schema and settings,
/// and a sealer that produces the rows the store would write.
struct Raw {
    conn: Connection,
    head: Option<Head>,
    next: u64,
}

impl Raw {
    fn new(path: &Path, durability: Durability) -> Raw {
        let conn = open_connection(path, &options(durability), Role::Writer).unwrap();
        Raw {
            conn,
            head: None,
            next: 0,
        }
    }

    /// Seals `n` events after the head, outside the timed part.
    fn sealed(&mut self, n: u64) -> Vec<Event> {
        let drafts: Vec<_> = (self.next..self.next + n).map(draft).collect();
        let events = seal(&chain(), self.head.as_ref(), &drafts, Timestamp::now()).unwrap();
        let last = events.last().unwrap();
        self.head = Some(Head {
            seq: last.seq,
            hash: last.hash,
            at: last.columns.at.parse().unwrap(),
        });
        self.next += n;
        events
    }
}

fn append_one(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sqlite_append_one");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        let mut raw = Raw::new(&dir.path().join(format!("raw-{name}.db")), durability);
        group.bench_function(format!("raw_insert_{name}"), |b| {
            b.iter_custom(|iters| {
                let events = raw.sealed(iters);
                let start = Instant::now();
                for event in &events {
                    insert(&raw.conn, event);
                }
                start.elapsed()
            })
        });
        let store = rt
            .block_on(SqliteStore::open(
                dir.path().join(format!("store-{name}.db")),
                chain(),
                options(durability),
            ))
            .unwrap();
        let mut n = 0;
        group.bench_function(format!("sqlite_store_{name}"), |b| {
            b.iter(|| {
                n += 1;
                let events = rt.block_on(store.append(&[draft(n)])).unwrap();
                black_box(events);
            })
        });
        // On a multi-threaded runtime the append skips the hop to the
        // writer thread (block_in_place).
        group.bench_function(format!("sqlite_store_{name}_multi_thread"), |b| {
            b.iter(|| {
                n += 1;
                let events = mt.block_on(store.append(&[draft(n)])).unwrap();
                black_box(events);
            })
        });
    }
    group.finish();
}

fn append_batch(c: &mut Criterion) {
    const BATCH: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut group = c.benchmark_group("sqlite_append_batch_100");
    group.throughput(Throughput::Elements(BATCH));
    let durability = Durability::Full;
    let mut raw = Raw::new(&dir.path().join("raw.db"), durability);
    group.bench_function("raw_transaction_full", |b| {
        b.iter_custom(|iters| {
            let events = raw.sealed(iters * BATCH);
            let start = Instant::now();
            for batch in events.chunks(BATCH as usize) {
                let tx = raw.conn.unchecked_transaction().unwrap();
                for event in batch {
                    insert(&tx, event);
                }
                tx.commit().unwrap();
            }
            start.elapsed()
        })
    });
    let store = rt
        .block_on(SqliteStore::open(
            dir.path().join("store.db"),
            chain(),
            options(durability),
        ))
        .unwrap();
    let mut n = 0;
    group.bench_function("sqlite_store_full", |b| {
        b.iter(|| {
            let drafts: Vec<_> = (n..n + BATCH).map(draft).collect();
            n += BATCH;
            black_box(rt.block_on(store.append(&drafts)).unwrap());
        })
    });
    group.finish();
}

fn append_concurrent(c: &mut Criterion) {
    const APPENDERS: u64 = 32;
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sqlite_append_32_concurrent");
    group.throughput(Throughput::Elements(APPENDERS));
    let durability = Durability::Full;
    let mut raw = Raw::new(&dir.path().join("raw.db"), durability);
    group.bench_function("raw_transaction_of_32_inserts", |b| {
        b.iter_custom(|iters| {
            let events = raw.sealed(iters * APPENDERS);
            let start = Instant::now();
            for batch in events.chunks(APPENDERS as usize) {
                let tx = raw.conn.unchecked_transaction().unwrap();
                for event in batch {
                    insert(&tx, event);
                }
                tx.commit().unwrap();
            }
            start.elapsed()
        })
    });
    let current = runtime();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, rt) in [("current_thread", &current), ("multi_thread", &multi)] {
        let store = std::sync::Arc::new(
            rt.block_on(SqliteStore::open(
                dir.path().join(format!("store-{name}.db")),
                chain(),
                options(durability),
            ))
            .unwrap(),
        );
        let mut n = 0;
        group.bench_function(format!("sqlite_store_32_appenders_{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for i in n..n + APPENDERS {
                        let store = std::sync::Arc::clone(&store);
                        tasks.spawn(async move { store.append(&[draft(i)]).await.unwrap() });
                    }
                    n += APPENDERS;
                    while let Some(done) = tasks.join_next().await {
                        black_box(done.unwrap());
                    }
                })
            })
        });
    }
    group.finish();
}

fn verify_100k(c: &mut Criterion) {
    const EVENTS: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verify.db");
    let rt = runtime();
    rt.block_on(async {
        let store = SqliteStore::open(&path, chain(), options(Durability::Normal))
            .await
            .unwrap();
        for start in (0..EVENTS).step_by(1000) {
            let drafts: Vec<_> = (start..start + 1000).map(draft).collect();
            store.append(&drafts).await.unwrap();
        }
    });
    let reader = rt
        .block_on(SqliteStore::open(
            &path,
            chain(),
            SqliteOptions::default().with_read_only(true),
        ))
        .unwrap();
    let raw = open_connection(
        &path,
        &SqliteOptions::default().with_read_only(true),
        Role::Reader,
    )
    .unwrap();

    let mut group = c.benchmark_group("sqlite_verify_100k");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("raw_read_and_sha256", |b| {
        b.iter(|| {
            let mut stmt = raw
                .prepare_cached("SELECT canonical, hash FROM events WHERE chain = ?1 ORDER BY seq")
                .unwrap();
            let mut rows = stmt.query(["bench"]).unwrap();
            let mut count = 0u64;
            while let Some(row) = rows.next().unwrap() {
                let canonical = row.get_ref(0).unwrap().as_blob().unwrap();
                let hash = row.get_ref(1).unwrap().as_str().unwrap();
                let mut hasher = Sha256::new();
                hasher.update(tags::EVENT.as_bytes());
                hasher.update([0u8]);
                hasher.update(canonical);
                black_box((hasher.finalize(), hash));
                count += 1;
            }
            assert_eq!(count, EVENTS);
        })
    });
    group.bench_function("sqlite_store_read_pages", |b| {
        b.iter(|| {
            let mut next = 0;
            loop {
                let page = syndicate_store_sqlite::testing::read_page(
                    &raw,
                    &path,
                    &chain(),
                    next,
                    1000,
                    usize::MAX,
                )
                .unwrap();
                let Some(last) = page.last() else { break };
                next = last.seq + 1;
                black_box(page);
            }
        })
    });
    group.bench_function("verifier_check_in_memory", |b| {
        let events: Vec<Event> = rt.block_on(async {
            let mut all = Vec::new();
            loop {
                let page = reader.read(all.len() as u64, 1000).await.unwrap();
                if page.is_empty() {
                    break all;
                }
                all.extend(page);
            }
        });
        b.iter(|| {
            let mut verifier = syndicate_core::Verifier::new(chain());
            for e in &events {
                verifier.check(e).unwrap();
            }
        })
    });
    group.bench_function("sqlite_store_verify", |b| {
        b.iter(|| {
            let report = rt.block_on(verify_store(&reader, None)).unwrap();
            assert!(report.is_intact());
            assert_eq!(report.summary.events, EVENTS);
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    append_one,
    append_batch,
    append_concurrent,
    verify_100k
);
criterion_main!(benches);
