//! Fail closed, on a real SQLite file: a row corrupted under a running gate,
//! and a store that cannot be written, both stop every execution; only a
//! recorded recovery resumes them.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, GateError, ProposalContext, Refusal, RulePolicy};
use syndicate_core::{
    Action, Actor, ChainId, Digest, EventKind, EventStore, EventStoreExt, Query, check_story, tags,
};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn policy() -> Arc<RulePolicy> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.toml");
    Arc::new(RulePolicy::from_path(path).unwrap())
}

async fn open(path: &Path, busy: Duration) -> Result<Arc<SqliteStore>> {
    let options = SqliteOptions::default().with_busy_timeout(busy);
    Ok(Arc::new(
        SqliteStore::open(path, ChainId::new("fail-closed")?, options).await?,
    ))
}

fn deploy() -> Action {
    Action::new("deploy.release", json!({"version": "1.0.0"}))
        .unwrap()
        .with_target("service:checkout")
        .unwrap()
}

/// A gate, and a request for `deploy()` approved by bob.
async fn approved_request(store: Arc<SqliteStore>) -> Result<(Gate, String)> {
    let gate = Gate::open(store, policy(), GateConfig::default()).await?;
    let request_id = common::propose_and_approve(&gate, &deploy()).await?;
    Ok((gate, request_id))
}

/// Runs an unrelated auto-approved action through the gate, so the gate has
/// verified every event written so far.
async fn unrelated_run(gate: &Gate) -> Result {
    let read = Action::new("fs.read", json!({"path": "README.md"}))?;
    let p = gate
        .propose(
            "s2",
            &Actor::agent("bot"),
            &read,
            &ProposalContext::default(),
        )
        .await?;
    gate.authorize(&p.request_id, &read).await?;
    Ok(())
}

/// Runs the approved action through `Gate::run`; returns the gate's answer
/// and whether the closure ran.
async fn try_run(gate: &Gate, request_id: &str) -> (std::result::Result<(), GateError>, bool) {
    let ran = AtomicBool::new(false);
    let result = gate
        .run(request_id, &deploy(), |_| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .await
        .map(|_| ());
    (result, ran.load(Ordering::SeqCst))
}

async fn count(store: &SqliteStore, kind: EventKind) -> usize {
    store
        .query(&Query {
            kind: Some(kind),
            ..Query::all()
        })
        .await
        .unwrap()
        .len()
}

fn assert_degraded(result: &std::result::Result<(), GateError>) {
    assert!(
        matches!(
            result.as_ref().err().and_then(GateError::refusal),
            Some(Refusal::Degraded { .. })
        ),
        "expected a degraded refusal, got {result:?}"
    );
}

#[tokio::test]
async fn row_corrupted_under_a_running_gate_stops_execution() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path, Duration::from_secs(5)).await?;
    let (gate, request_id) = approved_request(store.clone()).await?;
    unrelated_run(&gate).await?;

    // Someone edits the approved action in the file, behind the gate's back,
    // after the gate verified it.
    let conn = rusqlite::Connection::open(&path)?;
    let changed = conn.execute(
        "UPDATE events SET canonical = CAST(replace(CAST(canonical AS TEXT), '1.0.0', '6.6.6') AS BLOB) \
         WHERE kind = 'action.proposed' AND request_id = ?1",
        [&request_id],
    )?;
    assert_eq!(changed, 1);

    let (result, ran) = try_run(&gate, &request_id).await;
    assert_degraded(&result);
    assert!(!ran, "the closure ran on a corrupted chain");
    assert!(gate.degraded().is_some());
    assert_eq!(count(&store, EventKind::GateDegraded).await, 1);
    // Only the unrelated action started.
    assert_eq!(count(&store, EventKind::ExecutionStarted).await, 1);

    // Still refused, without degrading again; recovery cannot hide the damage.
    let (result, ran) = try_run(&gate, &request_id).await;
    assert_degraded(&result);
    assert!(!ran);
    assert_eq!(count(&store, EventKind::GateDegraded).await, 1);
    assert!(matches!(
        gate.recover(&Actor::human("ops@example.com"), "looks fine")
            .await,
        Err(GateError::StillBroken(_))
    ));

    // A gate opened afterwards, in this or another process, starts degraded.
    let other = Gate::open(store.clone(), policy(), GateConfig::default()).await?;
    assert!(other.degraded().is_some());
    let (result, ran) = try_run(&other, &request_id).await;
    assert_degraded(&result);
    assert!(!ran);
    Ok(())
}

#[tokio::test]
async fn row_rewritten_with_a_fresh_hash_is_caught_by_the_next_link() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path, Duration::from_secs(5)).await?;
    let (gate, request_id) = approved_request(store.clone()).await?;
    unrelated_run(&gate).await?;

    // Rewrite the approval's bytes and recompute its hash: only the next
    // event's prev link still remembers the original.
    let conn = rusqlite::Connection::open(&path)?;
    let (seq, canonical): (i64, Vec<u8>) = conn.query_row(
        "SELECT seq, canonical FROM events WHERE kind = 'action.approved'",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let forged = String::from_utf8(canonical)?.replace("bob@example.com", "eve@example.com");
    let hash = Digest::of_canonical(tags::EVENT, forged.as_bytes()).to_string();
    conn.execute(
        "UPDATE events SET canonical = ?1, hash = ?2, actor = 'eve@example.com' WHERE seq = ?3",
        rusqlite::params![forged.as_bytes(), hash, seq],
    )?;

    let (result, ran) = try_run(&gate, &request_id).await;
    assert_degraded(&result);
    assert!(!ran);
    assert_eq!(count(&store, EventKind::ExecutionStarted).await, 1);
    assert_eq!(count(&store, EventKind::GateDegraded).await, 1);
    Ok(())
}

#[tokio::test]
async fn unwritable_store_refuses_and_nothing_executes_until_recovery() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path, Duration::from_millis(200)).await?;
    let (gate, request_id) = approved_request(store.clone()).await?;

    // Another connection holds the write lock: the gate cannot record.
    let blocker = rusqlite::Connection::open(&path)?;
    blocker.execute_batch("BEGIN EXCLUSIVE")?;
    let (result, ran) = try_run(&gate, &request_id).await;
    assert_degraded(&result);
    assert!(!ran, "the closure ran although nothing could be recorded");
    blocker.execute_batch("ROLLBACK")?;

    // Writable again, but the gate stays closed until an operator recovers.
    let (result, ran) = try_run(&gate, &request_id).await;
    assert_degraded(&result);
    assert!(!ran);
    let rejected = store
        .query(&Query {
            kind: Some(EventKind::ExecutionRejected),
            ..Query::all()
        })
        .await?;
    assert_eq!(
        rejected.last().unwrap().envelope()?.body["reason"],
        "degraded"
    );

    gate.recover(&Actor::human("ops@example.com"), "disk space freed")
        .await?;
    let (result, ran) = try_run(&gate, &request_id).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(ran);
    assert_eq!(count(&store, EventKind::ExecutionStarted).await, 1);
    assert_eq!(count(&store, EventKind::GateRecovered).await, 1);
    assert!(store.verify().await?.is_intact());
    assert!(check_story(store.as_ref()).await?.is_consistent());
    Ok(())
}
