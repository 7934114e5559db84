//! `syndicate audit report` on the database the quickstart writes: what an
//! auditor asks first, read back from the real binary.

mod common;

use serde_json::Value;

fn report(dir: &std::path::Path, format: &str) -> std::process::Output {
    common::run(
        common::syndicate()
            .current_dir(dir)
            .args([
                "audit",
                "report",
                "--store",
                "sqlite:syndicate-demo.db",
                "--chain",
                "quickstart",
            ])
            .args(["--format", format]),
    )
}

#[test]
fn report_counts_approvals_refusals_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    common::run_quickstart(dir.path());

    let out = report(dir.path(), "json");
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["chain"], "quickstart");
    assert_eq!(json["integrity_violation"], Value::Null);
    assert_eq!(json["story_violations"], serde_json::json!([]));
    assert_eq!(json["approvals_by_approver"]["bob@example.com"], 3);
    assert_eq!(json["approvals_by_approver"]["policy:reads"], 1);
    assert_eq!(json["refused_executions"]["digest_mismatch"], 1);
    assert_eq!(json["refused_executions"]["expired"], 1);
    assert_eq!(json["outcomes"]["succeeded"], 2);
    assert_eq!(json["policies"].as_array().unwrap().len(), 1);
    let events = json["events"].as_u64().unwrap();
    let by_kind: u64 = json["kinds"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_kind, events, "kind counts add up to the events");

    let text = common::stdout(&report(dir.path(), "text"));
    assert!(text.contains("integrity: intact"), "{text}");
    assert!(text.contains("3  bob@example.com"), "{text}");
}

#[test]
fn report_on_a_tampered_trail_names_the_seq_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    common::run_quickstart(dir.path());
    // An approver's name rewritten underneath the library.
    let db = rusqlite::Connection::open(dir.path().join("syndicate-demo.db")).unwrap();
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM events WHERE kind = 'action.approved' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE events SET canonical = CAST(replace(CAST(canonical AS TEXT), 'bob@example.com', 'eve@example.com') AS BLOB) WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    drop(db);

    let out = report(dir.path(), "json");
    assert_eq!(out.status.code(), Some(1), "{}", common::stdout(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let violation = json["integrity_violation"].as_str().unwrap();
    assert!(
        violation.starts_with(&format!("seq {seq}: hash check failed")),
        "{violation}"
    );
}
