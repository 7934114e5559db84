//! `syndicate audit export`, offline JSONL verification and queries, on
//! stores written by `append_load`.

mod common;

use common::{append_load, fill, run, stderr, stdout, url, verify};
use rusqlite::Connection;

fn head_of(path: &std::path::Path) -> String {
    Connection::open(path)
        .expect("open")
        .query_row(
            "SELECT hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("head")
}

fn verify_jsonl(path: &std::path::Path, extra: &[&str]) -> std::process::Output {
    run(common::syndicate()
        .args(["audit", "verify", "--jsonl"])
        .arg(path)
        .args(extra))
}

#[test]
fn export_is_the_canonical_bytes_and_verifies_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("a.db");
    fill(&db, 30, 2);
    let export = dir.path().join("trail.jsonl");
    let out = run(common::syndicate()
        .args(["audit", "export", "--format", "jsonl", "--store"])
        .arg(url(&db))
        .arg("--out")
        .arg(&export));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let bytes = std::fs::read(&export).expect("export");
    let conn = Connection::open(&db).expect("open");
    let mut stmt = conn
        .prepare("SELECT canonical FROM events ORDER BY seq")
        .expect("prepare");
    let mut expected = Vec::new();
    for row in stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("rows")
    {
        expected.extend(row.expect("row"));
        expected.push(b'\n');
    }
    assert_eq!(bytes, expected, "each line is exactly the stored bytes");

    let head = head_of(&db);
    let out = verify_jsonl(&export, &["--head", &head]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("intact: 60 events on chain \"load\", seq 0..59"),
        "{}",
        stdout(&out)
    );
    let stdout_export = run(common::syndicate()
        .args(["audit", "export", "--store"])
        .arg(url(&db)));
    assert_eq!(stdout_export.stdout, bytes, "stdout export is the same");

    let other = "0".repeat(64);
    let out = verify_jsonl(&export, &["--head", &other]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("BROKEN at seq 59: head check failed"));
}

#[test]
fn offline_verify_refuses_edited_or_respelled_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("a.db");
    fill(&db, 12, 1);
    let export = dir.path().join("trail.jsonl");
    let out = run(common::syndicate()
        .args(["audit", "export", "--store"])
        .arg(url(&db))
        .arg("--out")
        .arg(&export));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&export).expect("export");
    let lines: Vec<&str> = text.lines().collect();

    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        path
    };
    let owned = || lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();

    // Same JSON, other spelling: not byte-exact, so refused.
    let mut respelled = owned();
    respelled[4] = respelled[4].replacen(",\"at\"", ", \"at\"", 1);
    let out = verify_jsonl(&write("respelled.jsonl", &respelled), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("BROKEN at seq 4: format check failed"),
        "{}",
        stdout(&out)
    );

    // Content edited in canonical form: the next line's link breaks.
    let mut edited = owned();
    edited[6] = edited[6].replacen("load test event", "load test EVENT", 1);
    let out = verify_jsonl(&write("edited.jsonl", &edited), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("BROKEN at seq 7: prev link check failed"),
        "{}",
        stdout(&out)
    );

    // A line dropped.
    let mut dropped = owned();
    dropped.remove(3);
    let out = verify_jsonl(&write("dropped.jsonl", &dropped), &[]);
    assert!(stdout(&out).starts_with("BROKEN at seq 3: sequence check failed"));

    // Another chain name asked for.
    let out = verify_jsonl(&export, &["--chain", "prod"]);
    assert!(stdout(&out).starts_with("BROKEN at seq 0: chain check failed"));
}

#[test]
fn several_chains_need_a_choice_and_queries_read_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("two.db");
    fill(&db, 4, 1);
    let out = run(append_load()
        .arg("--store")
        .arg(url(&db))
        .args(["--chain", "second", "--events", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = verify(&db, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("holds 2 chains (load, second); choose one with --chain"),
        "{}",
        stderr(&out)
    );
    let out = verify(&db, &["--chain", "second"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("intact: 2 events on chain \"second\""));

    let out = run(common::syndicate()
        .args([
            "audit",
            "query",
            "--chain",
            "load",
            "--request-id",
            "load-0-2",
            "--store",
        ])
        .arg(url(&db)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"request_id\":\"load-0-2\"") && text.contains("\"seq\":2,"));

    let out = run(common::syndicate()
        .args([
            "audit", "query", "--chain", "load", "--desc", "--limit", "2", "--store",
        ])
        .arg(url(&db)));
    let seqs: Vec<bool> = stdout(&out)
        .lines()
        .zip(["\"seq\":3,", "\"seq\":2,"])
        .map(|(line, seq)| line.contains(seq))
        .collect();
    assert_eq!(seqs, vec![true, true], "{}", stdout(&out));
}
