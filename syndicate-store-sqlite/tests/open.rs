//! Opening files: the schema, durability settings, and refusals of bad
//! input that must leave everything as it was.

use std::path::Path;

use rusqlite::Connection;
use serde_json::json;
use syndicate_core::{
    Actor, ChainId, Check, EventDraft, EventKind, EventStore, EventStoreExt, StoreError,
};
use syndicate_store_sqlite::testing::{Role, open_connection};
use syndicate_store_sqlite::{
    APPLICATION_ID, Durability, SCHEMA_VERSION, SqliteError, SqliteOptions, SqliteStore,
};

fn chain(name: &str) -> ChainId {
    ChainId::new(name).unwrap()
}

fn note(n: u64) -> EventDraft {
    EventDraft::new(
        "s",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "n": n, "request_id": format!("r-{n}") }),
    )
}

async fn store_with(path: &Path, name: &str, events: u64) -> SqliteStore {
    let store = SqliteStore::open(path, chain(name), SqliteOptions::default())
        .await
        .unwrap();
    for n in 0..events {
        store.append_one(note(n)).await.unwrap();
    }
    store
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sqlite_source(err: &StoreError) -> Option<&SqliteError> {
    match err {
        StoreError::Other { source, .. } | StoreError::Unavailable { source, .. } => {
            source.downcast_ref::<SqliteError>()
        }
        _ => None,
    }
}

#[tokio::test]
async fn events_and_chains_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let head = {
        let store = store_with(&path, "one", 3).await;
        store_with(&path, "two", 2).await;
        store.head().await.unwrap().unwrap()
    };
    assert_eq!(
        SqliteStore::chains(&path).unwrap(),
        vec![chain("one"), chain("two")]
    );
    let store = SqliteStore::open(&path, chain("one"), SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.head().await.unwrap(), Some(head));
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.violation);
    assert_eq!(report.summary.events, 3);
    assert_eq!(store.append_one(note(9)).await.unwrap().seq, 3);
}

#[tokio::test]
async fn writer_uses_wal_and_the_chosen_durability() {
    let dir = tempfile::tempdir().unwrap();
    for (durability, level) in [(Durability::Full, 2), (Durability::Normal, 1)] {
        let path = dir.path().join(format!("{level}.db"));
        let options = SqliteOptions::default().with_durability(durability);
        let conn = open_connection(&path, &options, Role::Writer).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, level, "{durability:?}");
        assert_eq!((version, app), (SCHEMA_VERSION, APPLICATION_ID));
    }
}

#[tokio::test]
async fn refuses_a_newer_schema_without_changing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(store_with(&path, "c", 2).await);
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    for options in [
        SqliteOptions::default(),
        SqliteOptions::default().with_read_only(true),
    ] {
        let err = SqliteStore::open(&path, chain("c"), options)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Incompatible { reason, .. }
                if reason.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                    && reason.contains("upgrade syndicate")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn refuses_another_applications_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep me');")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(&path, chain("c"), SqliteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Incompatible { reason, .. } if reason.contains("another application")),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(
        files_in(dir.path()),
        vec!["other.db"],
        "no -wal or -shm left"
    );
}

#[tokio::test]
async fn refuses_a_file_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "this is a text file, not a database\n".repeat(40);
    std::fs::write(&path, &text).unwrap();
    for options in [
        SqliteOptions::default(),
        SqliteOptions::default().with_read_only(true),
    ] {
        let err = SqliteStore::open(&path, chain("c"), options)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Incompatible { reason, .. } if reason.contains("not a SQLite database")),
            "{err}"
        );
    }
    assert!(SqliteStore::chains(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(files_in(dir.path()), vec!["notes.txt"]);
}

#[tokio::test]
async fn missing_file_folder_or_a_directory_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let err = SqliteStore::open(
        &missing,
        chain("c"),
        SqliteOptions::default().with_create(false),
    )
    .await
    .unwrap_err();
    assert_eq!(
        sqlite_source(&err),
        Some(&SqliteError::NotFound(missing.clone()))
    );
    assert!(err.to_string().contains("does not exist"), "{err}");

    let no_folder = dir.path().join("nope").join("x.db");
    let err = SqliteStore::open(&no_folder, chain("c"), SqliteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        sqlite_source(&err),
        Some(&SqliteError::MissingFolder(dir.path().join("nope")))
    );

    let err = SqliteStore::open(dir.path(), chain("c"), SqliteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        sqlite_source(&err),
        Some(&SqliteError::IsDirectory(dir.path().to_owned()))
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn a_read_only_file_is_verified_but_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    drop(store_with(&path, "c", 4).await);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = SqliteStore::open(&path, chain("c"), SqliteOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        sqlite_source(&err),
        Some(&SqliteError::ReadOnly(path.clone()))
    );

    let store = SqliteStore::open(
        &path,
        chain("c"),
        SqliteOptions::default().with_read_only(true),
    )
    .await
    .unwrap();
    assert_eq!(store.verify().await.unwrap().summary.events, 4);
    let err = store.append_one(note(5)).await.unwrap_err();
    assert!(
        matches!(sqlite_source(&err), Some(SqliteError::OpenedReadOnly(_))),
        "{err:?}"
    );
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn unreadable_rows_are_corrupt_at_their_seq_never_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = store_with(&path, "c", 6).await;
    let raw = Connection::open(&path).unwrap();
    raw.execute("UPDATE events SET hash = 'XYZ' WHERE seq = 3", [])
        .unwrap();
    let err = store.read(0, 10).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { seq: 3, reason, .. } if reason.contains("hash column")),
        "{err:?}"
    );
    let report = store.verify().await.unwrap();
    let violation = report.violation.unwrap();
    assert_eq!((violation.seq, violation.check), (3, Check::Row));
    assert_eq!(report.summary.events, 3, "rows before it verified");
    // Nothing was repaired behind the caller's back.
    let hash: String = raw
        .query_row("SELECT hash FROM events WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hash, "XYZ");
}

#[tokio::test]
async fn a_key_used_through_another_connection_is_already_used() {
    // Two stores on one file behave as two processes would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let a = store_with(&path, "c", 0).await;
    let b = store_with(&path, "c", 0).await;
    a.append_one(note(0).with_once("start:r-0")).await.unwrap();
    let err = b
        .append_one(note(1).with_once("start:r-0"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::AlreadyUsed { key } if key == "start:r-0"),
        "{err:?}"
    );
    assert_eq!(b.append_one(note(2)).await.unwrap().seq, 1);
}
