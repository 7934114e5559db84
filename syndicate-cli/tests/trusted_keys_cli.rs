//! `syndicate audit verify --trusted-keys`: an auditor who does not trust
//! the store's own `policy.activated` events judges every approval by the
//! approver keys they hold. Whoever can write the store can append a policy
//! that declares no approvers and an unsigned approval after it: the chain
//! verifies and its own story holds, but not under the auditor's keys.

mod cli;

use std::sync::Arc;

use cli::{syndicate, text};
use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, Policy, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId, EventDraft, EventKind, EventStoreExt};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn policy(approvers: &str) -> String {
    format!(
        "id = \"prod\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\n{approvers}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_policy_and_unsigned_approval_fail_under_trusted_keys() -> Result {
    let dir = tempfile::tempdir()?;
    let (key, verifier) = cli::new_key(dir.path(), "bob.key", "bob@example.com");
    let keys_file = dir.path().join("trusted.txt");
    std::fs::write(&keys_file, format!("# approvers we trust\n{verifier}\n"))?;
    let db = dir.path().join("trail.db");
    let url = format!("sqlite://{}", db.display());
    let store = syndicate_stores::open(
        &url.parse::<StoreUrl>()?,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?;

    // The real policy declares bob and his key; bob signs his approval.
    let signed = RulePolicy::from_toml(&policy(&format!(
        "[[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{verifier}\"]\n"
    )))?;
    let gate = Gate::open(store.clone(), Arc::new(signed), GateConfig::default()).await?;
    let first = Action::new("shell.exec", json!({"argv": ["deploy", "1"]}))?;
    let second = Action::new("shell.exec", json!({"argv": ["deploy", "2"]}))?;
    let ctx = ProposalContext::default();
    let p1 = gate
        .propose("s", &Actor::agent("bot"), &first, &ctx)
        .await?;
    let p2 = gate
        .propose("s", &Actor::agent("bot"), &second, &ctx)
        .await?;
    drop(gate);
    let digest = first.digest().to_string();
    let out = syndicate(&[
        "approve",
        &p1.request_id,
        "--key",
        key.to_str().unwrap(),
        "--digest",
        &digest,
        "--store",
        &url,
        "--chain",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--store", &url, "--chain", "prod"];
        args.extend_from_slice(extra);
        syndicate(&args)
    };
    let trusted = ["--trusted-keys", keys_file.to_str().unwrap()];
    let out = verify(&trusted);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the signed approval verifies: {}",
        text(&out)
    );

    // Someone with write access appends a policy declaring no approvers and
    // an unsigned approval of the second request by a name of their choice.
    let lax = RulePolicy::from_toml(&policy(""))?;
    store
        .append_one(EventDraft::new(
            "gate",
            EventKind::PolicyActivated,
            Actor::system("gate"),
            json!({"policy": lax.reference(), "document": lax.document()}),
        ))
        .await?;
    let forged = store
        .append_one(
            EventDraft::new(
                "s",
                EventKind::ActionApproved,
                Actor::human("mallory@example.com"),
                json!({
                    "request_id": p2.request_id, "action_digest": second.digest(),
                    "approver": "mallory@example.com", "method": "human"
                }),
            )
            .with_once(format!("approval:{}:mallory@example.com", p2.request_id)),
        )
        .await?;

    // The chain verifies and, under its own (forged) policy, its story holds.
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("story holds"), "{}", text(&out));

    // Under the auditor's keys it does not, and the forged seq is named.
    let out = verify(&trusted);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let expected = format!("seq {}: unproven_approval", forged.seq);
    assert!(text(&out).contains(&expected), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("first at seq {}", forged.seq)),
        "{}",
        text(&out)
    );
    // The report counts persons' approvals per signing key and says plainly
    // how many are unsigned.
    let out = syndicate(&["audit", "report", "--store", &url, "--chain", "prod"]);
    let report = text(&out);
    let key_id = verifier.split('+').nth(1).unwrap();
    assert!(
        report.contains(&format!("bob@example.com+{key_id}")),
        "{report}"
    );
    assert!(
        report.contains("1 approval(s) by persons are UNSIGNED"),
        "{report}"
    );
    // A key given inline works the same as a file of keys.
    let out = verify(&["--trusted-keys", &verifier]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    Ok(())
}
