//! `syndicate action canon|digest` through the real binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syndicate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn refused(stdin: &[u8], needle: &str) {
    let out = run(&["action", "digest"], stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2 for {stdin:?}, stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert_eq!(stderr.lines().count(), 1, "one-line reason: {stderr}");
    assert!(stderr.contains(needle), "{stderr:?} names {needle:?}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn canon_prints_exact_canonical_bytes() {
    let out = run(
        &["action", "canon"],
        br#"{ "tool": "t", "args": {"b": 1.50, "a": "\u00e9"} }"#,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stdout,
        "{\"args\":{\"a\":\"\u{e9}\",\"b\":1.5},\"tool\":\"t\"}".as_bytes()
    );
}

#[test]
fn digest_is_the_same_for_every_spelling() {
    let a = run(&["action", "digest"], br#"{"tool":"t","args":{"x":[1,2]}}"#);
    let b = run(
        &["action", "digest", "-"],
        b" {\"args\" : {\"x\":[1.0, 2e0]},\n\"tool\":\"t\"}",
    );
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert_eq!(text.trim_end().len(), 64);
    assert!(
        text.trim_end()
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    );
}

#[test]
fn reads_a_file_argument() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("action.json");
    std::fs::write(&path, br#"{"tool":"t","args":{}}"#).unwrap();
    let from_file = run(&["action", "digest", path.to_str().unwrap()], b"");
    let from_stdin = run(&["action", "digest"], br#"{"tool":"t","args":{}}"#);
    assert_eq!(from_file.status.code(), Some(0));
    assert_eq!(from_file.stdout, from_stdin.stdout);
    let missing = run(
        &[
            "action",
            "digest",
            dir.path().join("nope.json").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
}

#[test]
fn refuses_duplicate_keys_naming_the_key() {
    refused(
        br#"{"tool":"t","args":{"a":1,"a":2}}"#,
        "duplicate key \"a\"",
    );
}

#[test]
fn refuses_inexact_integers_and_says_to_use_a_string() {
    refused(
        br#"{"tool":"t","args":{"id":9007199254740993}}"#,
        "9007199254740993",
    );
    refused(
        br#"{"tool":"t","args":{"id":1152921504606846976}}"#,
        "string",
    );
}

#[test]
fn refuses_bad_text_and_non_actions() {
    refused(b"{\"tool\":\"t\",\"args\":\"\xff\"}", "UTF-8");
    refused(br#"{"tool":"t","args":["\ud800"]}"#, "surrogate");
    refused(br#"{"tool":"t","args":1} x"#, "after the JSON value");
    refused(b"", "");
    refused(br#"{"args":{}}"#, "tool");
    refused(br#"{"tool":"t","args":{},"extra":1}"#, "extra");
    refused(br#"{"tool":"t","args":1e400}"#, "1e400");
    let deep = format!(
        "{{\"tool\":\"t\",\"args\":{}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    refused(deep.as_bytes(), "deep");
}
