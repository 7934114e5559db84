//! Signed approvals through the real binary: a key made by `syndicate key
//! new`, a decision signed with `approve --sign-only` in one process (no
//! store access), recorded with `submit` in another; an unsigned approval
//! refused under a policy that declares approvers.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn syndicate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(args)
        .output()
        .expect("run syndicate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A store with a policy declaring `verifier` as the only approver, and one
/// pending request; returns the request id and action digest.
async fn pending(db: &Path, verifier: &str) -> Result<(String, String)> {
    let url: StoreUrl = format!("sqlite://{}", db.display()).parse()?;
    let store = syndicate_stores::open(
        &url,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?;
    let policy = RulePolicy::from_toml(&format!(
        "id = \"signed\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\n[[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{verifier}\"]\n"
    ))?;
    let gate = Gate::open(store, std::sync::Arc::new(policy), GateConfig::default()).await?;
    let action = Action::new("shell.exec", json!({"argv": ["git", "push"]}))?;
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    Ok((p.request_id, action.digest().to_string()))
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_only_then_submit_across_processes_approves() -> Result {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("bob.key");
    let out = syndicate(&[
        "key",
        "new",
        "--id",
        "bob@example.com",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verifier = String::from_utf8(out.stdout)?.trim_end().to_owned();
    let db = dir.path().join("trail.db");
    let (request, digest) = pending(&db, &verifier).await?;
    let url = format!("sqlite://{}", db.display());

    let unsigned = syndicate(&[
        "approve",
        &request,
        "--as",
        "bob@example.com",
        "--digest",
        &digest,
        "--store",
        &url,
    ]);
    assert_eq!(unsigned.status.code(), Some(1), "{}", text(&unsigned));
    assert!(
        text(&unsigned).contains("must be signed"),
        "{}",
        text(&unsigned)
    );

    let decision = dir.path().join("decision.json");
    let signed = syndicate(&[
        "approve",
        &request,
        "--key",
        key.to_str().unwrap(),
        "--digest",
        &digest,
        "--chain",
        "prod",
        "--sign-only",
        "--out",
        decision.to_str().unwrap(),
    ]);
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&decision)?)?;
    assert_eq!(file["statement"]["request_id"], request.as_str());

    // A decision for another chain is refused, and the refusal recorded.
    let mut other = file.clone();
    other["statement"]["chain"] = json!("staging");
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, serde_json::to_vec(&other)?)?;
    let refused = syndicate(&["submit", other_path.to_str().unwrap(), "--store", &url]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    let submitted = syndicate(&["submit", decision.to_str().unwrap(), "--store", &url]);
    assert_eq!(submitted.status.code(), Some(0), "{}", text(&submitted));
    assert!(
        text(&submitted).contains("approved request"),
        "{}",
        text(&submitted)
    );
    Ok(())
}
