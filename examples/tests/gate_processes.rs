//! Several real processes sharing one SQLite file behave as one gate: an
//! approval given in one process is used in another, two processes racing
//! to start one request get exactly one permit, and `shell_gate` runs a
//! command approved with the real `syndicate approve` exactly once, and a
//! `syndicate deny` from another process racing a start lets exactly one of
//! them be recorded. The same
//! race runs on PostgreSQL in `gate_postgres.rs` (the body is shared, in
//! `common`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use common::{
    approve_here_and_race_two_shell_gates, assert_verifies, count, lines, policy_path, shell_gate,
    syndicate,
};
use syndicate_core::gate::{Gate, GateConfig, Refusal, RulePolicy};
use syndicate_core::{Action, ChainId, EventKind, EventStore, Query};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn open(path: &Path, chain: &str) -> Result<Arc<SqliteStore>> {
    Ok(Arc::new(
        SqliteStore::open(path, ChainId::new(chain)?, SqliteOptions::default()).await?,
    ))
}

#[tokio::test]
async fn approval_in_one_process_is_used_in_another_and_one_racer_wins() -> Result {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("trail.db").display());
    approve_here_and_race_two_shell_gates(&url, dir.path()).await
}

#[tokio::test]
async fn shell_gate_runs_a_command_approved_from_another_terminal_once() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let marker = dir.path().join("marker");
    let url = format!("sqlite://{}", db.display());
    let mut child = shell_gate()
        .current_dir(dir.path())
        .args(["--store", &url, "--chain", "shell", "--timeout", "120"])
        .arg("--policy")
        .arg(policy_path())
        .args(["--", "sh", "-c", "echo ran >> marker; echo done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    // Synchronize on the lines it prints.
    let mut request_id = None;
    let mut digest = None;
    let mut line = String::new();
    while stdout.read_line(&mut line)? > 0 {
        if let Some(id) = line.trim().strip_prefix("request ") {
            request_id = Some(id.to_owned());
        }
        if let Some(d) = line.trim().strip_prefix("digest ") {
            digest = Some(d.to_owned());
        }
        if line.starts_with("waiting for approval") {
            break;
        }
        line.clear();
    }
    let (request_id, digest) = (request_id.unwrap(), digest.unwrap());
    assert_eq!(lines(&marker), 0, "ran before approval");

    // The wrong digest is refused (exit 1) and changes nothing.
    let wrong = "0".repeat(64);
    let refused = syndicate()
        .args([
            "approve",
            &request_id,
            "--as",
            "bob@example.com",
            "--digest",
            &wrong,
        ])
        .args(["--store", &url, "--chain", "shell"])
        .output()?;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(lines(&marker), 0);

    // `syndicate show` gives the approver the canonical action and digest.
    let show = syndicate()
        .args(["show", &request_id, "--store", &url, "--chain", "shell"])
        .output()?;
    assert!(show.status.success(), "{show:?}");
    let shown = String::from_utf8(show.stdout)?;
    assert!(shown.contains(&digest), "{shown}");
    assert!(shown.contains(r#""tool":"shell.exec""#), "{shown}");

    let approved = syndicate()
        .args([
            "approve",
            &request_id,
            "--as",
            "bob@example.com",
            "--digest",
            &digest,
        ])
        .args(["--store", &url, "--chain", "shell"])
        .output()?;
    assert!(approved.status.success(), "{approved:?}");

    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    let status = child.wait()?;
    assert!(status.success(), "shell_gate failed: {rest}");
    assert!(rest.contains("done"), "{rest}");
    assert_eq!(lines(&marker), 1);

    let store = open(&db, "shell").await?;
    let completed = store
        .query(&Query {
            kind: Some(EventKind::ExecutionCompleted),
            ..Query::all()
        })
        .await?;
    assert_eq!(completed.len(), 1);
    let body = completed[0].envelope()?.body;
    assert_eq!(body["exit_code"], 0);
    assert_eq!(
        body["result_digest"],
        syndicate_core::gate::result_digest(b"done\n").to_string()
    );
    assert_eq!(count(&store, EventKind::ApprovalRefused).await, 1);
    assert_verifies(&store).await;
    Ok(())
}

#[tokio::test]
async fn a_denial_from_another_process_racing_a_start_lets_exactly_one_win() -> Result {
    const ROUNDS: u64 = 8;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let url = format!("sqlite://{}", db.display());
    let store = open(&db, "revoke").await?;
    let policy = Arc::new(RulePolicy::from_path(policy_path())?);
    let gate = Gate::open(store.clone(), policy, GateConfig::default()).await?;
    let (mut starts, mut denials) = (0, 0);
    for n in 0..ROUNDS {
        let action = Action::new("deploy.release", serde_json::json!({"version": n}))?
            .with_target("service:checkout")?;
        let id = common::propose_and_approve(&gate, &action).await?;
        // The denial runs in another process while this one starts the
        // request; each round starts a little later than the one before,
        // so the two land in both orders across the rounds. Whichever
        // lands first, exactly one may be recorded.
        let deny = syndicate()
            .args([
                "deny",
                &id,
                "--as",
                "bob@example.com",
                "--reason",
                "revoked",
            ])
            .args(["--store", &url, "--chain", "revoke"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        tokio::time::sleep(std::time::Duration::from_millis(n * 4)).await;
        let start = gate.authorize(&id, &action).await;
        let out = deny.wait_with_output()?;
        let denied = out.status.success();
        match (&start, denied) {
            (Ok(_), false) => starts += 1,
            (Err(e), true) => {
                assert_eq!(e.refusal(), Some(&Refusal::Denied), "{e}");
                denials += 1;
            }
            _ => panic!(
                "round {n}: exactly one must win: start {start:?}, deny exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    println!("{starts} starts won, {denials} denials won");
    assert_eq!(
        count(store.as_ref(), EventKind::ExecutionStarted).await,
        starts
    );
    assert_eq!(
        count(store.as_ref(), EventKind::ActionDenied).await,
        denials
    );
    assert!(gate.degraded().is_none());
    assert_verifies(store.as_ref()).await;
    Ok(())
}
