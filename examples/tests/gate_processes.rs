//! Several real processes sharing one SQLite file behave as one gate: an
//! approval given in one process is used in another, two processes racing
//! to start one request get exactly one permit, and `shell_gate` runs a
//! command approved with the real `syndicate approve` exactly once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{
    Action, Actor, ChainId, EventKind, EventStore, EventStoreExt, Query, check_story,
};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const SHELL_GATE: &str = env!("CARGO_BIN_EXE_shell_gate");

fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.toml")
}

/// The `syndicate` binary beside this test's target folder, built first if
/// this test run did not build it.
fn syndicate_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/syndicate
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join(format!("syndicate{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "syndicate-cli", "--bin", "syndicate"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the syndicate binary");
    }
    assert!(bin.exists(), "no syndicate binary at {}", bin.display());
    bin
}

async fn open(path: &Path, chain: &str) -> Result<Arc<SqliteStore>> {
    Ok(Arc::new(
        SqliteStore::open(path, ChainId::new(chain)?, SqliteOptions::default()).await?,
    ))
}

/// An action that appends one line to `marker` each time it runs.
fn append_line(dir: &Path, marker: &Path) -> Action {
    Action::new(
        "shell.exec",
        json!({
            "argv": ["sh", "-c", format!("echo ran >> '{}'", marker.display())],
            "cwd": dir.display().to_string(),
        }),
    )
    .unwrap()
}

fn lines(marker: &Path) -> usize {
    std::fs::read_to_string(marker).map_or(0, |text| text.lines().count())
}

async fn assert_verifies(store: &SqliteStore) {
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.violation);
    let story = check_story(store).await.unwrap();
    assert!(story.is_consistent(), "{:?}", story.violations);
}

async fn count(store: &SqliteStore, kind: EventKind) -> usize {
    let query = Query {
        kind: Some(kind),
        ..Query::all()
    };
    store.query(&query).await.unwrap().len()
}

#[tokio::test]
async fn approval_in_one_process_is_used_in_another_and_one_racer_wins() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let marker = dir.path().join("marker");
    let store = open(&db, "race").await?;
    let policy = Arc::new(RulePolicy::from_path(policy_path())?);
    // This process proposes and approves.
    let gate = Gate::open(store.clone(), policy, GateConfig::default()).await?;
    let action = append_line(dir.path(), &marker);
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await?;

    // Two other processes race to run it.
    let url = format!("sqlite://{}", db.display());
    let racers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(SHELL_GATE)
                .args(["--store", &url, "--chain", "race", "--timeout", "60"])
                .args(["--request", &p.request_id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let winners = codes.iter().filter(|c| **c == Some(0)).count();
    let losers = codes.iter().filter(|c| **c == Some(3)).count();
    assert_eq!(
        (winners, losers),
        (1, 1),
        "exit codes {codes:?}: {outputs:?}"
    );
    let loser = outputs.iter().find(|o| o.status.code() == Some(3)).unwrap();
    assert!(
        String::from_utf8_lossy(&loser.stderr).contains("already started"),
        "{}",
        String::from_utf8_lossy(&loser.stderr)
    );
    assert_eq!(lines(&marker), 1, "the command ran more than once");
    assert_eq!(count(&store, EventKind::ExecutionStarted).await, 1);
    assert_eq!(count(&store, EventKind::ExecutionCompleted).await, 1);
    assert_verifies(&store).await;
    Ok(())
}

#[tokio::test]
async fn shell_gate_runs_a_command_approved_from_another_terminal_once() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let marker = dir.path().join("marker");
    let url = format!("sqlite://{}", db.display());
    let mut child = Command::new(SHELL_GATE)
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
    let refused = Command::new(syndicate_bin())
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
    let show = Command::new(syndicate_bin())
        .args(["show", &request_id, "--store", &url, "--chain", "shell"])
        .output()?;
    assert!(show.status.success(), "{show:?}");
    let shown = String::from_utf8(show.stdout)?;
    assert!(shown.contains(&digest), "{shown}");
    assert!(shown.contains(r#""tool":"shell.exec""#), "{shown}");

    let approved = Command::new(syndicate_bin())
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
