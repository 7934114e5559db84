//! Helpers shared by the integration tests: the real binaries, run as
//! processes, on real SQLite files or PostgreSQL databases.
#![allow(dead_code)]

pub(crate) mod faults;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, EventKind, EventStore, EventStoreExt, Query, check_story};

/// The `append_load` binary of this package.
pub(crate) fn append_load() -> Command {
    Command::new(env!("CARGO_BIN_EXE_append_load"))
}

/// Runs the quickstart in `dir` (which leaves `syndicate-demo.db` there),
/// failing with its output when it does not succeed.
pub(crate) fn run_quickstart(dir: &Path) {
    let out = run(Command::new(env!("CARGO_BIN_EXE_quickstart")).current_dir(dir));
    assert!(
        out.status.success(),
        "quickstart failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The `shell_gate` binary of this package.
pub(crate) fn shell_gate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shell_gate"))
}

/// The `syndicate` binary, next to this test's target folder; built first
/// (`cargo build -p syndicate-cli --bin syndicate`) when this test run did
/// not build it, e.g. under `cargo test -p syndicate-examples`.
pub(crate) fn syndicate() -> Command {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("syndicate{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "syndicate-cli", "--bin", "syndicate"])
            .status()
            .expect("cargo starts");
        assert!(status.success(), "cannot build the syndicate binary");
    }
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p syndicate-cli` \
         (`cargo test --workspace` builds it)",
        bin.display()
    );
    Command::new(bin)
}

/// True when `python3` runs here; otherwise says the test is skipped, or
/// fails it under `CI=true`.
pub(crate) fn python_available() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is required under CI=true"
        );
        println!("skipping: python3 not found");
    }
    found
}

/// Runs a command to its end and returns what it printed.
pub(crate) fn run(command: &mut Command) -> Output {
    command.output().expect("the program starts")
}

/// stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `sqlite:PATH` for a file.
pub(crate) fn url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// Fills a new store at `path` with `events` events on chain `load` from
/// one process, panicking with its output when it fails.
pub(crate) fn fill(path: &Path, events: u64, processes: u32) {
    let out = run(append_load()
        .arg("--store")
        .arg(url(path))
        .arg("--events")
        .arg(events.to_string())
        .arg("--processes")
        .arg(processes.to_string()));
    assert!(
        out.status.success(),
        "append_load failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `syndicate audit verify --store sqlite:PATH` plus extra arguments.
pub(crate) fn verify(path: &Path, extra: &[&str]) -> Output {
    run(syndicate()
        .args(["audit", "verify", "--store"])
        .arg(url(path))
        .args(extra))
}

/// The seqs listed in an ack log.
pub(crate) fn acked(log: &Path) -> Vec<u64> {
    match std::fs::read_to_string(log) {
        Ok(text) => text
            .lines()
            .map(|l| l.parse().unwrap_or_else(|_| panic!("ack line {l:?}")))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls `condition` until it holds, failing after `limit`.
pub(crate) fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every file name in a folder, sorted.
pub(crate) fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A path in a temporary folder.
pub(crate) fn temp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The example policy, `examples/policy.toml`.
pub(crate) fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.toml")
}

/// An action that appends one line to `marker` each time it runs.
pub(crate) fn append_line(dir: &Path, marker: &Path) -> Action {
    Action::new(
        "shell.exec",
        json!({
            "argv": ["sh", "-c", format!("echo ran >> '{}'", marker.display())],
            "cwd": dir.display().to_string(),
        }),
    )
    .expect("a valid action")
}

/// The number of lines in `marker` (0 when it does not exist).
pub(crate) fn lines(marker: &Path) -> usize {
    std::fs::read_to_string(marker).map_or(0, |text| text.lines().count())
}

/// Asserts the chain is intact and its story holds.
pub(crate) async fn assert_verifies<S: EventStore + ?Sized>(store: &S) {
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.violation);
    let story = check_story(store).await.unwrap();
    assert!(story.is_consistent(), "{:?}", story.violations);
}

/// The number of events of one kind on the store's chain.
pub(crate) async fn count<S: EventStore + ?Sized>(store: &S, kind: EventKind) -> usize {
    let query = Query {
        kind: Some(kind),
        ..Query::all()
    };
    store.query(&query).await.unwrap().len()
}

/// Two gates in separate processes on one store, named by `url` (`sqlite://`
/// or `postgres://`): this process proposes and approves an action that
/// appends a line to a marker file in `dir`; two `shell_gate --request ID`
/// processes then race to run it. Exactly one gets the permit and runs the
/// command (exit 0, one line in the marker), the other is refused (exit 3,
/// "already started"), and the chain verifies, story included.
/// Proposes `action` as agent `bot` in session `s1` and approves it as
/// `bob@example.com`; returns the request id.
pub(crate) async fn propose_and_approve(
    gate: &Gate,
    action: &Action,
) -> Result<String, Box<dyn std::error::Error>> {
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            action,
            &ProposalContext::default(),
        )
        .await?;
    gate.approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await?;
    Ok(p.request_id)
}

pub(crate) async fn approve_here_and_race_two_shell_gates(
    url: &str,
    dir: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    const CHAIN: &str = "race";
    let marker = dir.join("marker");
    let store: Arc<dyn EventStore> = syndicate_examples::open_store(url, CHAIN).await?;
    let policy = Arc::new(RulePolicy::from_path(policy_path())?);
    // This process proposes and approves.
    let gate = Gate::open(store.clone(), policy, GateConfig::default()).await?;
    let action = append_line(dir, &marker);
    let request_id = propose_and_approve(&gate, &action).await?;

    // Two other processes race to run it.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            shell_gate()
                .args(["--store", url, "--chain", CHAIN, "--timeout", "60"])
                .args(["--request", &request_id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("shell_gate starts")
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|child| child.wait_with_output().expect("shell_gate ends"))
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
        stderr(loser).contains("already started"),
        "{}",
        stderr(loser)
    );
    assert_eq!(lines(&marker), 1, "the command ran more than once");
    assert_eq!(count(store.as_ref(), EventKind::ExecutionStarted).await, 1);
    assert_eq!(
        count(store.as_ref(), EventKind::ExecutionCompleted).await,
        1
    );
    assert_verifies(store.as_ref()).await;
    Ok(())
}
