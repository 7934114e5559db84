//! `docs/verify_jsonl.py`, a verifier written in Python from `docs/FORMAT.md`
//! alone, agrees with `syndicate audit verify --jsonl` on the quickstart's
//! export, intact and tampered.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn python_verifier() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify_jsonl.py")
}

/// The seq named by a `BROKEN at seq N` line.
fn broken_seq(text: &str) -> Option<u64> {
    let rest = text.split("at seq ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn python_verifier_agrees_with_the_rust_one() {
    if !common::python_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::run_quickstart(dir.path());
    let export = common::run(common::syndicate().current_dir(dir.path()).args([
        "audit",
        "export",
        "--store",
        "sqlite:syndicate-demo.db",
        "--out",
        "trail.jsonl",
    ]));
    assert!(export.status.success(), "{}", common::stderr(&export));
    let trail = dir.path().join("trail.jsonl");
    let rust = common::run(
        common::syndicate()
            .args(["audit", "verify", "--jsonl"])
            .arg(&trail),
    );
    assert!(rust.status.success(), "{}", common::stdout(&rust));
    let head = common::stdout(&rust)
        .split("head ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .expect("a head hash")
        .to_owned();

    let python = common::run(
        Command::new("python3")
            .arg(python_verifier())
            .arg(&trail)
            .args(["--head", &head]),
    );
    let said = common::stdout(&python);
    assert_eq!(
        python.status.code(),
        Some(0),
        "{said}{}",
        common::stderr(&python)
    );
    assert!(said.contains(&format!("head {head}")), "{said}");

    // Tamper with each line in turn: both verifiers refuse, at the same seq.
    let original = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    for i in 0..lines.len() {
        let mut changed = lines.clone();
        let edited = lines[i].replacen("\"session\":\"", "\"session\":\"x", 1);
        changed[i] = &edited;
        let path = dir.path().join(format!("tampered-{i}.jsonl"));
        std::fs::write(&path, changed.join("\n") + "\n").unwrap();
        let rust = common::run(
            common::syndicate()
                .args(["audit", "verify", "--jsonl"])
                .arg(&path)
                .args(["--head", &head]),
        );
        let python = common::run(
            Command::new("python3")
                .arg(python_verifier())
                .arg(&path)
                .args(["--head", &head]),
        );
        assert_eq!(
            rust.status.code(),
            Some(1),
            "line {i}: {}",
            common::stdout(&rust)
        );
        assert_eq!(
            python.status.code(),
            Some(1),
            "line {i}: {}",
            common::stdout(&python)
        );
        assert_eq!(
            broken_seq(&common::stdout(&python)),
            broken_seq(&common::stdout(&rust)),
            "line {i}: python {:?} vs rust {:?}",
            common::stdout(&python),
            common::stdout(&rust)
        );
    }
}

/// The interpreter with the `cryptography` package (`scripts/test.sh` makes
/// a throwaway virtualenv and names it), or `None` after saying why.
fn crypto_python() -> Option<String> {
    match std::env::var("SYNDICATE_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SYNDICATE_TEST_PYTHON is required under CI=true (scripts/test.sh sets it)"
            );
            println!(
                "skipping: SYNDICATE_TEST_PYTHON is not set (scripts/test.sh makes a virtualenv \
                 with the cryptography package)"
            );
            None
        }
    }
}

#[test]
fn python_verifier_checks_every_approval_signature_against_trusted_keys() {
    let Some(python) = crypto_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = common::run(Command::new(env!("CARGO_BIN_EXE_quickstart")).current_dir(dir.path()));
    assert!(run.status.success(), "{}", common::stderr(&run));
    let out = common::stdout(&run);
    let bob = out
        .lines()
        .find_map(|l| l.split("the policy lists bob's key ").nth(1))
        .expect("the quickstart names bob's key")
        .trim()
        .to_owned();
    let export = |db: &str, file: &str| {
        let out = common::run(
            common::syndicate()
                .current_dir(dir.path())
                .args(["audit", "export", "--store", db, "--out", file]),
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
    };
    export("sqlite:syndicate-demo-signed.db", "signed.jsonl");
    export("sqlite:syndicate-demo.db", "unsigned.jsonl");
    let keys = |name: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("# trusted approvers\n{key}\n")).unwrap();
        path
    };
    let verify = |file: &str, keys: &Path| {
        let out = common::run(
            Command::new(&python)
                .current_dir(dir.path())
                .arg(python_verifier())
                .arg(file)
                .arg("--trusted-keys")
                .arg(keys),
        );
        (out.status.code(), common::stdout(&out))
    };
    let trusted = keys("bob.txt", &bob);
    let (code, text) = verify("signed.jsonl", &trusted);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("every approval by a person signed"), "{text}");

    // Another key of the same name: the approval no longer verifies.
    let other = common::run(common::syndicate().current_dir(dir.path()).args([
        "key",
        "new",
        "--id",
        "bob@example.com",
        "--out",
        "other.key",
    ]));
    assert!(other.status.success(), "{}", common::stderr(&other));
    let impostor = keys("other.txt", common::stdout(&other).trim());
    let (code, text) = verify("signed.jsonl", &impostor);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(": signature: no trusted key of bob@example.com"),
        "{text}"
    );

    // Unsigned approvals are named, by seq.
    let (code, text) = verify("unsigned.jsonl", &trusted);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("BROKEN at seq ") && text.contains("is not signed"),
        "{text}"
    );
}
