//! The human sees what they approve: `syndicate show` and `syndicate approve`
//! verify the chain, recompute the digest from the recorded action, and
//! print every stored string escaped, so an action carrying terminal control
//! sequences or bidirectional overrides is shown, not obeyed.

mod cli;

use std::path::Path;
use std::sync::Arc;

use cli::{syndicate, text};
use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId, EventKind, EventStore, Query};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = "id = \"p\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\n";

async fn store(db: &Path) -> Result<Arc<dyn EventStore>> {
    let url: StoreUrl = format!("sqlite://{}", db.display()).parse()?;
    Ok(syndicate_stores::open(
        &url,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?)
}

/// No raw escape, C1 control or bidi override reaches the terminal.
fn assert_inert(out: &[u8]) {
    let s = String::from_utf8_lossy(out);
    for bad in ['\u{1b}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200b}'] {
        assert!(!s.contains(bad), "raw {:?} printed: {s}", bad);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_action_text_is_shown_escaped_and_the_digest_must_match() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let url = format!("sqlite://{}", db.display());
    let action = Action::new(
        "shell.exec",
        json!({"argv": ["echo", "safe\u{1b}[2K\rrm -rf /\u{9b}", "\u{202e}txt.exe", "a\u{200b}b"]}),
    )?;
    let request = {
        let gate = Gate::open(
            store(&db).await?,
            Arc::new(RulePolicy::from_toml(POLICY)?),
            GateConfig::default(),
        )
        .await?;
        gate.propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?
        .request_id
    };
    let digest = action.digest().to_string();

    let show = syndicate(&["show", &request, "--store", &url, "--chain", "prod"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    assert_inert(&show.stdout);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains(&format!("digest:     {digest}")), "{shown}");
    assert!(shown.contains("\\u{202e}txt.exe"), "{shown}");
    assert!(shown.contains("\\u{009b}"), "{shown}");
    assert!(shown.contains("approvals:  0 of 1"), "{shown}");

    // A digest that is not the recomputed one: refused and recorded.
    let wrong = "0".repeat(64);
    let out = syndicate(&[
        "approve",
        &request,
        "--as",
        "bob@example.com",
        "--digest",
        &wrong,
        "--store",
        &url,
        "--chain",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_inert(&out.stdout);
    assert!(
        text(&out).contains("digest_mismatch") || text(&out).contains("not the approved digest"),
        "{}",
        text(&out)
    );

    let out = syndicate(&[
        "approve",
        &request,
        "--as",
        "bob@example.com",
        "--digest",
        &digest,
        "--store",
        &url,
        "--chain",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_inert(&out.stdout);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{202e}txt.exe"));

    let store = store(&db).await?;
    let refused = store
        .query(&Query {
            kind: Some(EventKind::ApprovalRefused),
            ..Query::all()
        })
        .await?;
    assert_eq!(refused.len(), 1, "the wrong digest was recorded as refused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_with_control_characters_is_escaped_in_errors() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let url = format!("sqlite://{}", db.display());
    drop(
        Gate::open(
            store(&db).await?,
            Arc::new(RulePolicy::from_toml(POLICY)?),
            GateConfig::default(),
        )
        .await?,
    );
    let out = syndicate(&[
        "show",
        "req-\u{1b}]0;pwned\u{7}",
        "--store",
        &url,
        "--chain",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_inert(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\\u{001b}"),
        "{}",
        text(&out)
    );
    Ok(())
}
