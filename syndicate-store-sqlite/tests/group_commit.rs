//! Group commit: appends made at the same time share one transaction and
//! one commit, and each is still answered as if it had been made alone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;
use syndicate_core::{
    Actor, ChainId, Event, EventDraft, EventKind, EventStore, EventStoreExt, StoreError,
    verify_store,
};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

fn chain() -> ChainId {
    ChainId::new("group").unwrap()
}

fn note(n: u64) -> EventDraft {
    EventDraft::new(
        "s",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "n": n, "request_id": format!("r-{n}") }),
    )
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Frames in the write-ahead log: every commit writes at least one.
fn wal_frames(conn: &Connection) -> i64 {
    let (busy, frames): (i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not run");
    frames
}

/// Empties the write-ahead log, so that the next commit starts it afresh.
fn truncate_wal(conn: &Connection) {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the log could not be truncated");
    assert_eq!(wal_frames(conn), 0);
}

async fn open(path: &Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(path, chain(), SqliteOptions::default())
            .await
            .unwrap(),
    )
}

async fn assert_verifies(store: &SqliteStore, events: u64) {
    let report = verify_store(store, None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.summary.events, events);
}

/// Each answer's events follow each other, and together the answers cover
/// seq 0..n once each.
fn assert_one_linear_chain(answers: &[Vec<Event>]) {
    let mut seqs: Vec<u64> = Vec::new();
    for events in answers {
        for pair in events.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "a batch was split");
        }
        seqs.extend(events.iter().map(|e| e.seq));
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected);
}

#[test]
fn appends_waiting_together_on_one_runtime_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    current_thread().block_on(async {
        let store = open(&path).await;
        store.append_one(note(0)).await.unwrap();
        let raw = Connection::open(&path).unwrap();
        truncate_wal(&raw);

        let mut tasks = tokio::task::JoinSet::new();
        for n in 1..=32 {
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.append(&[note(n)]).await });
        }
        let mut answers = vec![store.read(0, 1).await.unwrap()];
        while let Some(answer) = tasks.join_next().await {
            answers.push(answer.unwrap().unwrap());
        }
        assert_one_linear_chain(&answers);

        // 32 commits would write at least 32 frames.
        let frames = wal_frames(&raw);
        assert!(
            frames < 32,
            "32 appends wrote {frames} log frames: they did not share a commit"
        );
        assert_verifies(&store, 33).await;
    });
}

#[test]
fn a_batch_refused_in_a_group_leaves_the_others_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    current_thread().block_on(async {
        let store = open(&path).await;
        let plain = note(1);
        let first = note(2).with_once("key-k");
        let second = note(3).with_once("key-k");
        let invalid = EventDraft::new(
            "bad\u{0}session",
            EventKind::Annotation,
            Actor::human("tester"),
            json!({}),
        );
        let more = [note(4), note(5)];
        let (plain, first, invalid, second, after) = tokio::join!(
            store.append(std::slice::from_ref(&plain)),
            store.append(std::slice::from_ref(&first)),
            store.append(std::slice::from_ref(&invalid)),
            store.append(std::slice::from_ref(&second)),
            store.append(&more),
        );
        let plain = plain.unwrap();
        let first = first.unwrap();
        assert!(
            matches!(invalid, Err(StoreError::InvalidDraft(_))),
            "{invalid:?}"
        );
        assert!(
            matches!(&second, Err(StoreError::AlreadyUsed { key }) if key == "key-k"),
            "{second:?}"
        );
        let after = after.unwrap();
        assert_eq!(after.len(), 2);
        assert_one_linear_chain(&[plain, first.clone(), after]);
        assert_eq!(first[0].columns.once.as_deref(), Some("key-k"));
        assert_verifies(&store, 4).await;
    });
}

#[test]
fn appends_from_many_threads_form_one_linear_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = open(&path).await;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..48u64 {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let mut answers = Vec::new();
                for round in 0..4u64 {
                    let size = 1 + (task + round) % 3;
                    let drafts: Vec<_> = (0..size)
                        .map(|i| note(task * 100 + round * 10 + i))
                        .collect();
                    let events = store.append(&drafts).await.unwrap();
                    assert_eq!(events.len() as u64, size);
                    answers.push(events);
                }
                answers
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = tasks.join_next().await {
            answers.extend(done.unwrap());
        }
        let total: usize = answers.iter().map(Vec::len).sum();
        assert_one_linear_chain(&answers);
        // What each caller was answered is what the file holds.
        let stored = store.read(0, total + 1).await.unwrap();
        assert_eq!(stored.len(), total);
        for events in &answers {
            for event in events {
                assert_eq!(stored[event.seq as usize], *event);
            }
        }
        assert_verifies(&store, total as u64).await;
    });
}

#[test]
fn a_current_thread_runtime_keeps_running_while_another_connection_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    current_thread().block_on(async {
        let store = Arc::new(
            SqliteStore::open(
                &path,
                chain(),
                SqliteOptions::default().with_busy_timeout(Duration::from_secs(2)),
            )
            .await
            .unwrap(),
        );
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("BEGIN IMMEDIATE").unwrap();

        let appending = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append(&[note(1)]).await })
        };
        // Let the append try; on this one thread, an append that waited for
        // the lock in place would keep this task from running until its
        // busy timeout had passed and the append had failed.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!appending.is_finished(), "appended while the lock was held");
        raw.execute_batch("COMMIT").unwrap();

        let events = appending.await.unwrap().unwrap();
        assert_eq!(events[0].seq, 0);
        assert_verifies(&store, 1).await;
    });
}
