//! Running the real `syndicate` binary from a test, shared by the CLI tests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `syndicate ARGS` and waits for it.
pub fn syndicate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(args)
        .output()
        .expect("run syndicate")
}

/// Standard output followed by standard error, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `syndicate key new --id ID` into `DIR/FILE`: the key file and the
/// verifier key it printed.
pub fn new_key(dir: &Path, file: &str, id: &str) -> (PathBuf, String) {
    let path = dir.join(file);
    let out = syndicate(&["key", "new", "--id", id, "--out", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verifier = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    (path, verifier)
}
