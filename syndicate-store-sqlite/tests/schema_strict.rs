//! A store file carries nothing of someone else's: a schema object our
//! migrations did not create (or created differently) is refused on open,
//! with the file left byte for byte as it was, and a schema changed under a
//! running store stops its appends before anything is written.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::Connection;
use serde_json::json;
use syndicate_core::{
    Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, StoreError,
};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

fn chain() -> ChainId {
    ChainId::new("strict").unwrap()
}

fn note(n: u64) -> EventDraft {
    EventDraft::new(
        "s",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "n": n }),
    )
}

/// A closed v1 store file with three events.
async fn store_file(path: &Path) {
    let store = SqliteStore::open(path, chain(), SqliteOptions::default())
        .await
        .unwrap();
    for n in 0..3 {
        store.append_one(note(n)).await.unwrap();
    }
}

fn snapshot(path: &Path) -> (Vec<u8>, SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

/// The objects someone might add to a v1 file, each with a name to find in
/// the refusal.
const FOREIGN: &[(&str, &str)] = &[
    (
        "swallowing trigger",
        "CREATE TRIGGER swallow BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END",
    ),
    (
        "harmless trigger",
        "CREATE TRIGGER audit_copy AFTER INSERT ON events BEGIN SELECT 1; END",
    ),
    ("view", "CREATE VIEW recent AS SELECT * FROM events"),
    ("index", "CREATE INDEX by_hash ON events (hash)"),
    ("table", "CREATE TABLE notes (x TEXT)"),
    (
        "index recreated differently",
        "DROP INDEX events_at; CREATE INDEX events_at ON events (at)",
    ),
    ("index dropped", "DROP INDEX events_session"),
];

fn expected_name(sql: &str) -> &str {
    match sql {
        s if s.contains("swallow") => "swallow",
        s if s.contains("audit_copy") => "audit_copy",
        s if s.contains("recent") => "recent",
        s if s.contains("by_hash") => "by_hash",
        s if s.contains("notes") => "notes",
        s if s.contains("events_session") => "events_session",
        _ => "events_at",
    }
}

#[tokio::test]
async fn a_schema_object_that_is_not_ours_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (what, sql) in FOREIGN {
        let path = dir.path().join(format!("{}.db", what.replace(' ', "_")));
        store_file(&path).await;
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let before = snapshot(&path);
        for options in [
            SqliteOptions::default(),
            SqliteOptions::default().with_create(false),
            SqliteOptions::default().with_read_only(true),
        ] {
            let result = SqliteStore::open(&path, chain(), options.clone()).await;
            match result {
                Err(StoreError::Incompatible { reason, .. }) => assert!(
                    reason.contains(&format!("{:?}", expected_name(sql)))
                        && reason.contains("nothing was changed"),
                    "{what}: the refusal names the object: {reason}"
                ),
                other => panic!("{what} ({options:?}): expected Incompatible, got {other:?}"),
            }
            assert!(
                SqliteStore::chains(&path).is_err(),
                "{what}: listing chains refuses too"
            );
        }
        assert_eq!(snapshot(&path), before, "{what}: the file is unchanged");
    }
}

#[tokio::test]
async fn our_own_schema_opens_after_analyze_statistics() {
    // `ANALYZE` adds SQLite's own statistics table; it only guides the
    // query planner and is not refused.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    store_file(&path).await;
    Connection::open(&path)
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    let store = SqliteStore::open(&path, chain(), SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.append_one(note(3)).await.unwrap().seq, 3);
}

#[tokio::test]
async fn a_trigger_added_under_a_running_store_stops_its_appends_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let store = SqliteStore::open(&path, chain(), SqliteOptions::default())
        .await
        .unwrap();
    store.append_one(note(0)).await.unwrap();
    let head = store.head().await.unwrap();

    // A trigger that silently drops every insert: an append that trusted
    // SQLite's "done" would acknowledge events that are not there.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER swallow BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END",
        )
        .unwrap();
    let result = store.append(&[note(1), note(2)]).await;
    assert!(
        matches!(&result, Err(StoreError::Incompatible { reason, .. }) if reason.contains("swallow")),
        "expected the append refused naming the trigger, got {result:?}"
    );
    assert_eq!(store.head().await.unwrap(), head, "nothing was written");

    // Removed again, appends continue on the same chain.
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER swallow")
        .unwrap();
    assert_eq!(store.append_one(note(1)).await.unwrap().seq, 1);
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.violation);
    assert_eq!(report.summary.events, 2);
}

#[tokio::test]
async fn a_trigger_that_rewrites_other_rows_under_a_running_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let store = SqliteStore::open(&path, chain(), SqliteOptions::default())
        .await
        .unwrap();
    store.append_one(note(0)).await.unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER erase AFTER INSERT ON events \
             BEGIN DELETE FROM events WHERE seq = NEW.seq; END",
        )
        .unwrap();
    let result = store.append_one(note(1)).await;
    assert!(
        matches!(&result, Err(StoreError::Incompatible { .. })),
        "got {result:?}"
    );
    assert_eq!(store.head().await.unwrap().map(|h| h.seq), Some(0));
}
