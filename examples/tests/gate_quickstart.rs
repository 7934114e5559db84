//! The quickstart as a newcomer runs it, checked with the real `syndicate`
//! binary; and `syndicate audit verify` refusing an intact chain whose story
//! does not hold.

mod common;

use std::process::Command;

use common::syndicate;
use serde_json::json;
use syndicate_core::{Action, Actor, ChainId, EventDraft, EventKind, EventStoreExt};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn quickstart_runs_and_its_trail_verifies_independently() -> Result {
    let dir = tempfile::tempdir()?;
    let run = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .current_dir(dir.path())
        .output()?;
    let out = text(&run.stdout);
    assert!(run.status.success(), "{out}\n{}", text(&run.stderr));
    assert!(dir.path().join("syndicate-demo.db").exists());
    for scene in [
        "approved automatically",
        "approves it",
        "REFUSED: digest",
        "REFUSED: the approval expired",
        "an unsigned approval \"by bob\" is REFUSED",
        "the signature verifies, executed",
    ] {
        assert!(out.contains(scene), "missing {scene:?} in\n{out}");
    }
    let head = out
        .lines()
        .find_map(|l| l.split("hash ").nth(1).filter(|_| l.starts_with("head")))
        .expect("a head line")
        .trim()
        .to_owned();

    // Export, then verify the export offline against the printed head.
    let export = syndicate()
        .current_dir(dir.path())
        .args(["audit", "export", "--store", "sqlite://syndicate-demo.db"])
        .args(["--chain", "quickstart", "--out", "trail.jsonl"])
        .output()?;
    assert!(export.status.success(), "{}", text(&export.stderr));
    let verify = syndicate()
        .current_dir(dir.path())
        .args(["audit", "verify", "--jsonl", "trail.jsonl", "--head", &head])
        .output()?;
    let verified = text(&verify.stdout);
    assert!(
        verify.status.success(),
        "{verified}\n{}",
        text(&verify.stderr)
    );
    assert!(verified.contains("story holds"), "{verified}");

    // The quickstart ends by signing a checkpoint and printing the command
    // that checks the store against it; that command passes.
    let command = out
        .lines()
        .find(|l| l.contains("--checkpoint"))
        .expect("a verify command with --checkpoint");
    let args: Vec<&str> = command
        .split_whitespace()
        .skip_while(|w| *w != "audit")
        .collect();
    let checked = syndicate().current_dir(dir.path()).args(&args).output()?;
    assert!(
        checked.status.success(),
        "{command}: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    assert!(text(&checked.stdout).contains("checkpoint holds"));

    // A second run continues the same chain, which still verifies.
    let again = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .current_dir(dir.path())
        .output()?;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let verify = syndicate()
        .current_dir(dir.path())
        .args(["audit", "verify", "--store", "sqlite://syndicate-demo.db"])
        .output()?;
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    Ok(())
}

#[tokio::test]
async fn audit_verify_names_the_seq_of_a_start_without_approval() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("forged.db");
    {
        let store =
            SqliteStore::open(&db, ChainId::new("forged")?, SqliteOptions::default()).await?;
        // Written around the gate: intact bytes, a story that does not hold.
        let action = Action::new("shell.exec", json!({"argv": ["rm", "-rf", "/srv"]}))?;
        let proposed = json!({
            "request_id": "req-1", "action": action.to_value(), "action_digest": action.digest(),
            "requester": "bot", "risk_tier": "high", "decision": "human", "rule": "shell",
            "approvals_required": 1, "approval_ttl_seconds": 60, "controls": []
        });
        let started = json!({
            "request_id": "req-1", "approved_digest": action.digest(),
            "executed_digest": action.digest()
        });
        for (kind, body) in [
            (EventKind::ActionProposed, proposed),
            (EventKind::ExecutionStarted, started),
        ] {
            store
                .append_one(EventDraft::new("s", kind, Actor::system("forger"), body))
                .await?;
        }
    }
    let verify = syndicate()
        .args(["audit", "verify", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .output()?;
    let out = text(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    assert!(out.contains("intact"), "{out}");
    assert!(
        out.contains("seq 1: start_without_approval (request req-1)"),
        "{out}"
    );
    // Written by a "forger" without the protocol's single-use keys: the
    // proposal itself breaks the story first.
    assert!(out.contains("seq 0: reused_once_key"), "{out}");
    assert!(out.contains("seq 0: approver_not_actor"), "{out}");
    assert!(text(&verify.stderr).contains("first at seq 0"));
    Ok(())
}
