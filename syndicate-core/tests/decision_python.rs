//! `docs/verify_jsonl.py --decision`, written from `docs/FORMAT.md` with the
//! Python `cryptography` package, accepts the decisions our code signs and
//! refuses altered ones and unknown keys.
//!
//! The Python comes from `SYNDICATE_TEST_PYTHON` (a virtualenv with
//! `cryptography`, made by `scripts/test.sh`); without it the test prints a
//! skip line, and under `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::keys::SigningKey;
use syndicate_core::{ChainId, Digest, Timestamp};

fn python() -> Option<PathBuf> {
    match std::env::var_os("SYNDICATE_TEST_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SYNDICATE_TEST_PYTHON (a python with `cryptography`) is required under CI=true"
            );
            println!("skipping: SYNDICATE_TEST_PYTHON not set");
            None
        }
    }
}

fn check(python: &Path, dir: &Path, decision: &SignedDecision, keys: &[&SigningKey]) -> Output {
    let decision_path = dir.join("decision.json");
    let keys_path = dir.join("keys.txt");
    std::fs::write(&decision_path, serde_json::to_vec_pretty(decision).unwrap()).unwrap();
    let lines: String = keys.iter().map(|k| format!("{}\n", k.verifier())).collect();
    std::fs::write(&keys_path, lines).unwrap();
    Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify_jsonl.py"))
        .arg("--decision")
        .arg(&decision_path)
        .arg("--trusted-keys")
        .arg(&keys_path)
        .output()
        .unwrap()
}

#[test]
fn python_verifier_checks_decision_signatures() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bob = SigningKey::generate("bob@example.com").unwrap();
    let eve = SigningKey::generate("eve@example.com").unwrap();
    let statement = Statement {
        chain: ChainId::new("prod").unwrap(),
        // Non-ASCII and an escaped character, so the canonical bytes matter.
        request_id: "req-\u{e9}\"1\u{7f}".into(),
        action_digest: Digest::of_canonical("t", b"x"),
        approver: "bob@example.com".into(),
        decision: Decision::Approve,
        expires_at: Some(Timestamp::from_unix_micros(1_800_000_000_123_456).unwrap()),
    };
    let signed = SignedDecision::sign(&bob, statement.clone()).unwrap();

    let out = check(&python, dir.path(), &signed, &[&eve, &bob]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("signed: approve"), "{stdout}");

    let mut no_expiry = statement.clone();
    no_expiry.expires_at = None;
    let unexpiring = SignedDecision::sign(&bob, no_expiry).unwrap();
    assert_eq!(
        check(&python, dir.path(), &unexpiring, &[&bob])
            .status
            .code(),
        Some(0)
    );

    let mut altered = signed.clone();
    altered.statement.request_id = "req-2".into();
    let out = check(&python, dir.path(), &altered, &[&bob]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not verify"));

    let out = check(&python, dir.path(), &signed, &[&eve]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no trusted key"));
}
