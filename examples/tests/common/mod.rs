//! Helpers shared by the integration tests: the real binaries, run as
//! processes, on real SQLite files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The `append_load` binary of this package.
pub(crate) fn append_load() -> Command {
    Command::new(env!("CARGO_BIN_EXE_append_load"))
}

/// The `syndicate` binary, built next to this test's target folder.
pub(crate) fn syndicate() -> Command {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("syndicate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p syndicate-cli` \
         (`cargo test --workspace` builds it)",
        bin.display()
    );
    Command::new(bin)
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
