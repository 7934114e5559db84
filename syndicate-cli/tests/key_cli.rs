//! `syndicate key new|show` through the real binary: key files, their
//! permissions and the public verifier key line.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use syndicate_core::keys::VerifierKey;

fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syndicate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn key_new_writes_a_0600_file_and_prints_only_the_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.key");
    let out = run(
        &[
            "key",
            "new",
            "--id",
            "bob@example.com",
            "--out",
            path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    let verifier: VerifierKey = text.trim_end().parse().unwrap();
    assert_eq!(verifier.name(), "bob@example.com");

    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.starts_with("PRIVATE+KEY+bob@example.com+"));
    assert!(!text.contains("PRIVATE"));

    let shown = run(&["key", "show", path.to_str().unwrap()], b"", &[]);
    assert_eq!(shown.status.code(), Some(0));
    assert_eq!(stdout(&shown), text);

    let from_stdin = run(&["key", "show", "-"], file.as_bytes(), &[]);
    assert_eq!(stdout(&from_stdin), text);
    let from_env = run(
        &["key", "show", "--key-env", "SYNDICATE_TEST_KEY"],
        b"",
        &[("SYNDICATE_TEST_KEY", file.trim_end())],
    );
    assert_eq!(stdout(&from_env), text);
}

#[test]
fn key_new_never_replaces_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.key");
    std::fs::write(&path, "precious\n").unwrap();
    let out = run(
        &["key", "new", "--id", "bob", "--out", path.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
}

#[test]
fn group_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.key");
    let new = run(
        &["key", "new", "--id", "bob", "--out", path.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(new.status.code(), Some(0));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&["key", "show", path.to_str().unwrap()], b"", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("0640") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

#[test]
fn invalid_key_name_and_damaged_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let out = run(
        &[
            "key",
            "new",
            "--id",
            "bob+eve",
            "--out",
            path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!path.exists());
    let out = run(
        &["key", "show", "-"],
        b"PRIVATE+KEY+bob+00000000+AAAA\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
