//! `syndicate hook claude|codex` fails closed through the real binary: a
//! malformed payload, a missing config and an unreachable store each exit 2
//! (the only code both harnesses treat as "block") with a one-line reason on
//! stderr and nothing on stdout. Exit 1 or a timeout would let the call run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BASH_PAYLOAD: &str = r#"{"session_id":"abc123","transcript_path":"/home/user/.claude/projects/x/transcript.jsonl","cwd":"CWD","permission_mode":"default","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"npm test","description":"Run test suite","timeout":120000,"run_in_background":false},"tool_use_id":"toolu_01ABC123"}"#;

fn hook(harness: &str, dir: &Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(["hook", harness])
        .current_dir(dir)
        .env_remove("SYNDICATE_CONFIG")
        .env_remove("CLAUDE_PROJECT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syndicate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_blocked(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty: {:?}",
        out.stdout
    );
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} lacks {needle:?}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
}

fn payload(dir: &Path) -> String {
    BASH_PAYLOAD.replace("CWD", dir.to_str().unwrap())
}

#[test]
fn malformed_payload_blocks_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for harness in ["claude", "codex"] {
        assert_blocked(&hook(harness, dir.path(), "not json"), "malformed");
        assert_blocked(&hook(harness, dir.path(), "{\"tool_name\":"), "malformed");
    }
}

#[test]
fn missing_config_blocks_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for harness in ["claude", "codex"] {
        assert_blocked(&hook(harness, dir.path(), &payload(dir.path())), "config");
    }
}

#[test]
fn unreachable_store_blocks_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".syndicate");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("policy.toml"),
        "id = \"p\"\nversion = \"1\"\n[[rules]]\nid = \"all\"\ntool = \"*\"\nrisk = \"low\"\ndecision = \"auto\"\n",
    )
    .unwrap();
    // Port 1 on the loopback address: nothing listens there.
    std::fs::write(
        config.join("config.toml"),
        "store = \"postgres://nobody@127.0.0.1:1/none\"\nchain = \"claude\"\npolicy = \"policy.toml\"\n",
    )
    .unwrap();
    for harness in ["claude", "codex"] {
        let out = hook(harness, dir.path(), &payload(dir.path()));
        assert_blocked(&out, "store");
    }
}
