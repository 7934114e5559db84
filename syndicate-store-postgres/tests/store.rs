//! Behaviour specific to the PostgreSQL store, against a real server: schema
//! versions, several chains in one database, lock waits, lost connections.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, PgConnection};
use syndicate_core::{
    Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, StoreError,
};
use syndicate_store_postgres::testing::fresh_database;
use syndicate_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};

fn note(n: u64) -> EventDraft {
    EventDraft::new(
        "s",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "n": n }),
    )
}

fn chain(name: &str) -> ChainId {
    ChainId::new(name).unwrap()
}

async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

#[tokio::test]
async fn concurrent_openers_migrate_once() {
    let Some(url) = fresh_database("concurrent_openers_migrate_once").await else {
        return;
    };
    let opens: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(&url, chain(&format!("c{i}"))).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every opener succeeds");
    }
    let mut conn = admin(&url).await;
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM syndicate_schema_version ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let report = syndicate_store_postgres::migrate_url(&url).await.unwrap();
    assert_eq!((report.from, report.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(
        report.applied().count(),
        0,
        "a current schema is left alone"
    );
}

#[tokio::test]
async fn refuses_a_newer_schema_and_changes_nothing() {
    let Some(url) = fresh_database("refuses_a_newer_schema_and_changes_nothing").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    store.append_one(note(0)).await.unwrap();
    let mut conn = admin(&url).await;
    sqlx::query("INSERT INTO syndicate_schema_version (version, description) VALUES (99, 'x')")
        .execute(&mut conn)
        .await
        .unwrap();
    for create in [true, false] {
        let options = PostgresOptions::default().with_create(create);
        let result = PostgresStore::open_with(&url, chain("c"), &options).await;
        match result {
            Err(StoreError::Incompatible { reason, .. }) => {
                assert!(reason.contains("99"), "{reason}");
                assert!(reason.contains("newer"), "{reason}");
            }
            other => panic!("a newer schema must be Incompatible, got {other:?}"),
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 1, "nothing changed");
}

#[tokio::test]
async fn refuses_a_foreign_events_table() {
    let Some(url) = fresh_database("refuses_a_foreign_events_table").await else {
        return;
    };
    let mut conn = admin(&url).await;
    sqlx::query("CREATE TABLE events (id serial primary key, payload text)")
        .execute(&mut conn)
        .await
        .unwrap();
    let result = PostgresStore::open(&url, chain("c")).await;
    assert!(
        matches!(&result, Err(StoreError::Incompatible { reason, .. }) if reason.contains("not a syndicate store")),
        "{result:?}"
    );
    let ours: bool = sqlx::query_scalar("SELECT to_regclass('syndicate_schema_version') IS NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ours, "no table was created");
}

#[tokio::test]
async fn opening_without_create_refuses_an_empty_database_and_creates_nothing() {
    let Some(url) = fresh_database("opening_without_create_refuses_an_empty_database").await else {
        return;
    };
    let options = PostgresOptions::default().with_create(false);
    let result = PostgresStore::open_with(&url, chain("c"), &options).await;
    assert!(
        matches!(&result, Err(StoreError::Incompatible { reason, .. }) if reason.contains("syndicate store migrate")),
        "{result:?}"
    );
    let mut conn = admin(&url).await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn chains_in_one_database_are_independent() {
    let Some(url) = fresh_database("chains_in_one_database_are_independent").await else {
        return;
    };
    let a = PostgresStore::open(&url, chain("alpha")).await.unwrap();
    let b = PostgresStore::from_pool(a.pool().clone(), chain("beta"), true)
        .await
        .unwrap();
    a.append_one(note(0).with_once("k")).await.unwrap();
    for n in 1..5 {
        a.append_one(note(n)).await.unwrap();
        b.append_one(note(n)).await.unwrap();
    }
    b.append_one(note(5)).await.unwrap();
    // One key per chain: the same key is free on another chain.
    assert!(matches!(
        a.append_one(note(9).with_once("k")).await,
        Err(StoreError::AlreadyUsed { .. })
    ));
    b.append_one(note(9).with_once("k")).await.unwrap();
    let ra = a.verify().await.unwrap();
    let rb = b.verify().await.unwrap();
    assert!(ra.is_intact() && rb.is_intact());
    assert_eq!((ra.summary.events, rb.summary.events), (5, 6));
    assert_eq!(
        a.chains().await.unwrap(),
        vec![chain("alpha"), chain("beta")]
    );
}

#[tokio::test]
async fn stored_at_is_the_sealed_instant_to_the_microsecond() {
    let Some(url) = fresh_database("stored_at_is_the_sealed_instant").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    let written = store.append(&[note(0), note(1)]).await.unwrap();
    let mut conn = admin(&url).await;
    let rendered: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
         FROM events ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let columns: Vec<String> = written.iter().map(|e| e.columns.at.clone()).collect();
    assert_eq!(rendered, columns);
    let envelope_at = written[0].envelope().unwrap().at.to_string();
    assert_eq!(columns[0], envelope_at);
}

#[tokio::test]
async fn a_writer_waiting_past_the_lock_timeout_gets_a_retryable_error_and_writes_nothing() {
    let Some(url) = fresh_database("lock_timeout_is_retryable").await else {
        return;
    };
    let options = PostgresOptions::default().with_lock_timeout(Duration::from_millis(200));
    let store = PostgresStore::open_with(&url, chain("c"), &options)
        .await
        .unwrap();
    store.append_one(note(0)).await.unwrap();
    let mut holder = admin(&url).await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM heads WHERE chain = 'c' FOR UPDATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let result = store.append(&[note(1), note(2)]).await;
    match &result {
        Err(e @ StoreError::Unavailable { maybe_written, .. }) => {
            assert!(e.is_retryable());
            assert!(!maybe_written, "failed before commit");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(
        store.head().await.unwrap().unwrap().seq,
        0,
        "nothing written"
    );
    let next = store.append_one(note(3)).await.unwrap();
    assert_eq!(next.seq, 1, "the same store carries on");
    assert!(store.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_connection_killed_mid_append_is_unavailable_and_the_store_recovers() {
    let Some(url) = fresh_database("connection_killed_mid_append").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    store.append_one(note(0)).await.unwrap();
    // Hold the chain lock so the append stops inside its transaction.
    let mut holder = admin(&url).await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM heads WHERE chain = 'c' FOR UPDATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move { store.append(&[note(1), note(2)]).await })
    };
    let mut killer = admin(&url).await;
    let waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'syndicate' \
                   AND wait_event_type = 'Lock' AND datname = current_database()";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiters: Vec<i32> = sqlx::query_scalar(waiting)
            .fetch_all(&mut killer)
            .await
            .unwrap();
        if !waiters.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the append to wait for the chain lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'syndicate' AND wait_event_type = 'Lock' \
         AND datname = current_database()",
    )
    .execute(&mut killer)
    .await
    .unwrap();
    let result = appender.await.unwrap();
    match &result {
        Err(e @ StoreError::Unavailable { maybe_written, .. }) => {
            assert!(e.is_retryable());
            assert!(!maybe_written);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(
        store.head().await.unwrap().unwrap().seq,
        0,
        "nothing written"
    );
    let next = store.append(&[note(3), note(4)]).await.unwrap();
    assert_eq!(next[0].seq, 1);
    assert!(store.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Bind a port, then close it, so nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let options = PostgresOptions::default().with_acquire_timeout(Duration::from_millis(500));
    let result = PostgresStore::open_with(&url, chain("c"), &options).await;
    assert!(
        matches!(&result, Err(e @ StoreError::Unavailable { maybe_written: false, .. }) if e.is_retryable()),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_a_clear_error() {
    let result = PostgresStore::open("postgres://u@h:notaport/db", chain("c")).await;
    match result {
        Err(e @ StoreError::Other { .. }) => {
            assert!(e.to_string().contains("invalid postgres url"), "{e}");
            assert!(!e.is_retryable());
        }
        other => panic!("expected Other, got {other:?}"),
    }
}

#[tokio::test]
async fn a_head_row_behind_its_events_is_refused_without_forking() {
    let Some(url) = fresh_database("head_row_behind_its_events").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    let written = store.append(&[note(0), note(1), note(2)]).await.unwrap();
    let mut conn = admin(&url).await;
    sqlx::query("UPDATE heads SET seq = 0, hash = $1 WHERE chain = 'c'")
        .bind(written[0].hash.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let result = store.append_one(note(3)).await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt { reason, .. }) if reason.contains("heads row")),
        "{result:?}"
    );
    let report = store.verify().await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.summary.events, 3, "no fork, nothing written");
}

#[tokio::test]
async fn events_refuse_update_and_delete() {
    let Some(url) = fresh_database("events_refuse_update_and_delete").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    store.append_one(note(0)).await.unwrap();
    let mut conn = admin(&url).await;
    for sql in [
        "UPDATE events SET session = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    assert!(store.verify().await.unwrap().is_intact());
    assert_eq!(store.head().await.unwrap().unwrap().seq, 0);
}

/// Issue class: a store file (database) carries nothing of someone else's.
/// A trigger that swallows inserts, a rule that rewrites them, or a
/// row-level security policy that hides rows is refused on open, and the
/// events already there are left as they were.
#[tokio::test]
async fn refuses_foreign_triggers_rules_and_policies_on_open() {
    let foreign = [
        (
            "swallow",
            "CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
             CREATE TRIGGER swallow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION swallow()",
            "trigger swallow on events",
        ),
        (
            "rewrite",
            "CREATE RULE rewrite AS ON INSERT TO events DO INSTEAD NOTHING",
            "rule rewrite on events",
        ),
        (
            "hide",
            "ALTER TABLE events ENABLE ROW LEVEL SECURITY;
             CREATE POLICY hide ON events USING (seq < 1)",
            "row-level security",
        ),
    ];
    for (name, ddl, expected) in foreign {
        let db = format!("refuses_foreign_{name}");
        let Some(url) = fresh_database(&db).await else {
            return;
        };
        let store = PostgresStore::open(&url, chain("c")).await.unwrap();
        store.append_one(note(0)).await.unwrap();
        drop(store);
        let mut conn = admin(&url).await;
        sqlx::raw_sql(ddl).execute(&mut conn).await.unwrap();

        let result = PostgresStore::open(&url, chain("c")).await;
        assert!(
            matches!(&result, Err(StoreError::Incompatible { reason, .. }) if reason.contains(expected)),
            "{name}: {result:?}"
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, 1, "{name}: the events already there are untouched");
    }
}

#[tokio::test]
async fn appends_in_flight_together_share_one_transaction() {
    let Some(url) = fresh_database("appends_in_flight_together_share_one_transaction").await else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::open(&url, chain("grouped")).await.unwrap());
    let appends: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append(&[note(n), note(100 + n)]).await })
        })
        .collect();
    for append in appends {
        let events = append.await.unwrap().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].seq,
            events[0].seq + 1,
            "a caller's events are contiguous"
        );
    }
    assert!(store.verify().await.unwrap().is_intact());
    // Rows written by one transaction share its id (xmin); 16 appends each
    // committed alone would show 16.
    let mut conn = admin(&url).await;
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM events WHERE chain = 'grouped'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        transactions < 16,
        "16 concurrent appends took {transactions} transactions"
    );
}

/// The one-statement append: a trigger added under a running store that
/// swallows inserts makes the statement fail whole; neither the head row
/// nor the events move, and appends go on once it is removed.
#[tokio::test]
async fn a_trigger_added_under_a_running_store_moves_nothing() {
    let Some(url) = fresh_database("a_trigger_added_under_a_running_store").await else {
        return;
    };
    let store = PostgresStore::open(&url, chain("c")).await.unwrap();
    store.append_one(note(0)).await.unwrap();
    store.append_one(note(1)).await.unwrap();
    let mut conn = admin(&url).await;
    sqlx::raw_sql(
        "CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER swallow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION swallow()",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let heads = "SELECT seq FROM heads WHERE chain = 'c'";
    let result = store.append(&[note(2), note(3)]).await;
    assert!(
        matches!(&result, Err(StoreError::Incompatible { reason, .. }) if reason.contains("trigger")),
        "{result:?}"
    );
    let head: Option<i64> = sqlx::query_scalar(heads)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(head, Some(1), "the head row did not move");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 2);

    sqlx::raw_sql("DROP TRIGGER swallow ON events")
        .execute(&mut conn)
        .await
        .unwrap();
    let events = store.append(&[note(2), note(3)]).await.unwrap();
    assert_eq!(events[0].seq, 2);
    assert!(store.verify().await.unwrap().is_intact());
}

/// Another process's appends move the head under this one: its next
/// append, sealed against the head it saw, is refused by the server and
/// retried against the real head, never forking the chain.
#[tokio::test]
async fn appends_from_two_stores_interleave_without_forking() {
    let Some(url) = fresh_database("appends_from_two_stores_interleave").await else {
        return;
    };
    let first = PostgresStore::open(&url, chain("c")).await.unwrap();
    let second = PostgresStore::open(&url, chain("c")).await.unwrap();
    for n in 0..10 {
        let by_first = first.append_one(note(2 * n)).await.unwrap();
        let by_second = second.append_one(note(2 * n + 1)).await.unwrap();
        assert_eq!(by_first.seq, 2 * n);
        assert_eq!(by_second.seq, 2 * n + 1);
    }
    let report = first.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.summary.events, 20);
}
