//! `syndicate recover` through the real binary: under a policy that declares
//! operators, an unsigned recovery is refused and one signed with the
//! operator's key ends the degradation.

mod cli;

use std::sync::Arc;

use cli::{syndicate, text};
use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, RulePolicy};
use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStoreExt};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread")]
async fn only_an_operator_signed_recovery_resumes_the_gate() -> Result {
    let dir = tempfile::tempdir()?;
    let (key, verifier) = cli::new_key(dir.path(), "ops.key", "ops@example.com");
    let db = dir.path().join("trail.db");
    let url = format!("sqlite://{}", db.display());
    let store = syndicate_stores::open(
        &url.parse::<StoreUrl>()?,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?;
    let policy = RulePolicy::from_toml(&format!(
        "id = \"p\"\nversion = \"1\"\n[[rules]]\nid = \"r\"\ntool = \"*\"\nrisk = \"low\"\ndecision = \"auto_approve\"\n\
         [[operators]]\nid = \"ops@example.com\"\nkeys = [\"{verifier}\"]\n"
    ))?;
    drop(Gate::open(store.clone(), Arc::new(policy), GateConfig::default()).await?);
    store
        .append_one(EventDraft::new(
            "gate",
            EventKind::GateDegraded,
            Actor::system("gate"),
            json!({"reason": "append failed: disk full", "operator": "gate"}),
        ))
        .await?;
    let common = [
        "--store",
        url.as_str(),
        "--chain",
        "prod",
        "--reason",
        "disk replaced",
    ];
    let mut unsigned = vec!["recover", "--as", "ops@example.com"];
    unsigned.extend_from_slice(&common);
    let out = syndicate(&unsigned);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("must be signed"), "{}", text(&out));

    let mut signed = vec!["recover", "--key", key.to_str().unwrap()];
    signed.extend_from_slice(&common);
    let out = syndicate(&signed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("disk full"), "{}", text(&out));

    let out = syndicate(&["audit", "verify", "--store", &url, "--chain", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}
