//! Bad input to the real binaries: each is a clear error, never a panic, and
//! leaves everything as it was.

mod common;

use std::path::Path;

use common::{append_load, files_in, fill, run, stderr, stdout, url, verify};

fn assert_clear_failure(out: &std::process::Output, code: i32, message: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{}{err}", stdout(out));
    assert!(err.contains(message), "expected {message:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

fn load(path: &Path) -> std::process::Output {
    run(append_load()
        .arg("--store")
        .arg(url(path))
        .args(["--events", "3"]))
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.txt");
    let text = "meeting notes, not a database\n".repeat(50);
    std::fs::write(&path, &text).expect("write");
    assert_clear_failure(&verify(&path, &[]), 2, "is not a SQLite database");
    assert_clear_failure(&load(&path), 2, "is not a SQLite database");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    assert_eq!(files_in(dir.path()), vec!["notes.txt"]);
}

#[test]
fn a_read_only_store_is_verified_and_exported_but_not_appended_to() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ro.db");
    fill(&path, 5, 1);
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).expect("chmod");
    let before = std::fs::read(&path).expect("read");

    assert_clear_failure(&load(&path), 2, "cannot be written");
    let out = verify(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("intact: 5 events"));
    let out = run(common::syndicate()
        .args(["audit", "export", "--store"])
        .arg(url(&path)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 5);
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn a_directory_is_refused_and_nothing_is_created_in_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_clear_failure(&verify(dir.path(), &[]), 2, "is a directory");
    assert_clear_failure(&load(dir.path()), 2, "is a directory");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn a_missing_folder_or_file_is_refused_and_not_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("no-such-folder").join("audit.db");
    assert_clear_failure(&verify(&nested, &[]), 2, "does not exist");
    assert_clear_failure(&load(&nested), 2, "does not exist; create it first");
    let missing = dir.path().join("missing.db");
    assert_clear_failure(&verify(&missing, &[]), 2, "does not exist");
    let out = run(common::syndicate()
        .args(["audit", "export", "--store"])
        .arg(url(&missing)));
    assert_clear_failure(&out, 2, "does not exist");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn bad_urls_and_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(common::syndicate().args(["audit", "verify", "--store", "mysql://db/x"]));
    assert_clear_failure(&out, 2, "use sqlite:PATH");
    let out = run(common::syndicate().args(["audit", "verify"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let path = dir.path().join("a.db");
    fill(&path, 2, 1);
    assert_clear_failure(&verify(&path, &["--head", "ABC"]), 2, "--head");
    assert_clear_failure(&verify(&path, &["--chain", "no such"]), 2, "--chain");
    let out = run(append_load()
        .arg("--store")
        .arg(url(&path))
        .args(["--events", "3", "--batch", "0"]));
    assert_clear_failure(&out, 2, "--batch must be at least 1");
    let out = run(common::syndicate()
        .args(["audit", "verify", "--jsonl"])
        .arg(dir.path().join("missing.jsonl")));
    assert_clear_failure(&out, 2, "cannot open");
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("newer.db");
    fill(&path, 3, 1);
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("PRAGMA user_version = 99")
        .expect("bump the version");
    let before = std::fs::read(&path).expect("read");
    assert_clear_failure(&verify(&path, &[]), 2, "upgrade syndicate");
    assert_clear_failure(&load(&path), 2, "upgrade syndicate");
    assert_eq!(std::fs::read(&path).expect("read"), before);
}
