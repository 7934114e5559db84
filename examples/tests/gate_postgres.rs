//! The gate on a real PostgreSQL server behaves as on SQLite: approvals bind
//! digests, drift is refused, gates with separate connection pools racing to
//! start one request get exactly one permit, an approval given in one
//! process is used in another while two real `shell_gate` processes race for
//! its one permit, and the chain verifies, story included. Skips with a
//! message when SYNDICATE_TEST_POSTGRES_URL is unset (fails under CI=true).

mod common;

use std::sync::Arc;

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, Refusal, RulePolicy};
use syndicate_core::{Action, Actor, ChainId, EventStoreExt, check_story};
use syndicate_store_postgres::PostgresStore;
use syndicate_store_postgres::testing::fresh_database;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn policy() -> Arc<RulePolicy> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.toml");
    Arc::new(RulePolicy::from_path(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_protocol_holds_on_postgres() -> Result {
    let Some(url) = fresh_database("gate_protocol_holds_on_postgres").await else {
        return Ok(());
    };
    let chain = ChainId::new("gate")?;
    let store = Arc::new(PostgresStore::open(&url, chain.clone()).await?);
    let gate = Gate::open(store.clone(), policy(), GateConfig::default()).await?;
    let action = Action::new("deploy.release", json!({"version": "3.0.0"}))?
        .with_target("service:checkout")?;
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    let wrong = Action::new("deploy.release", json!({"version": "3.0.1"}))?;
    let refused = gate
        .approve(
            &p.request_id,
            &Actor::human("bob@example.com"),
            &wrong.digest(),
        )
        .await;
    assert!(matches!(
        refused.err().and_then(|e| e.refusal().cloned()),
        Some(Refusal::DigestMismatch { .. })
    ));
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await?;
    let drifted = Action::new("deploy.release", json!({"version": "3.0.0", "force": true}))?
        .with_target("service:checkout")?;
    assert!(gate.authorize(&p.request_id, &drifted).await.is_err());

    // Gates on separate connection pools race for the one permit.
    let mut racers = Vec::new();
    for _ in 0..4 {
        let store = Arc::new(PostgresStore::open(&url, chain.clone()).await?);
        let gate = Gate::open(store, policy(), GateConfig::default()).await?;
        let (id, action) = (p.request_id.clone(), action.clone());
        racers.push(tokio::spawn(async move {
            match gate.authorize(&id, &action).await {
                Ok(permit) => {
                    gate.complete(permit, Outcome::succeeded()).await.unwrap();
                    true
                }
                Err(e) => {
                    assert_eq!(e.refusal(), Some(&Refusal::AlreadyUsed), "{e}");
                    false
                }
            }
        }));
    }
    let mut wins = 0;
    for racer in racers {
        wins += usize::from(racer.await?);
    }
    assert_eq!(wins, 1);

    let report = store.verify().await?;
    assert!(report.is_intact(), "{:?}", report.violation);
    let story = check_story(store.as_ref()).await?;
    assert!(story.is_consistent(), "{:?}", story.violations);
    Ok(())
}

/// The multi-process race of `gate_processes.rs`, on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_in_one_process_is_used_in_another_and_one_racer_wins_on_postgres() -> Result {
    let Some(url) =
        fresh_database("approval_in_one_process_is_used_in_another_and_one_racer_wins_on_postgres")
            .await
    else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    common::approve_here_and_race_two_shell_gates(&url, dir.path()).await
}
