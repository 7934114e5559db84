//! Signed checkpoints through the real binary, on SQLite files: a chain cut
//! short or rewritten with fresh hashes still verifies on its own, and
//! `audit verify --checkpoint` catches each; a witness refuses a fork and a
//! rollback; a receipt verifies after the store is deleted, and not with a
//! byte changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = r#"
id = "cp"
version = "1"
[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
"#;

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

fn ok(args: &[&str]) -> Output {
    let out = syndicate(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    out
}

fn fails(args: &[&str]) -> String {
    let out = syndicate(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
    text(&out)
}

fn url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// A new key file and its verifier key text.
fn key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{}.key", name.replace('/', "_")));
    let out = ok(&["key", "new", "--id", name, "--out", path.to_str().unwrap()]);
    (
        path,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

/// Runs `n` requests through a gate on the store at `db` (created when
/// missing): proposed, approved by bob, started and completed, 4 events
/// each. Returns the request ids.
async fn requests(db: &Path, tag: &str, n: usize) -> Result<Vec<String>> {
    let store = syndicate_stores::open(
        &url(db).parse::<StoreUrl>()?,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?;
    let gate = Gate::open(
        store,
        Arc::new(RulePolicy::from_toml(POLICY)?),
        GateConfig::default(),
    )
    .await?;
    let mut ids = Vec::new();
    for i in 0..n {
        let action = Action::new("shell.exec", json!({ "argv": ["deploy", tag, i] }))?;
        let p = gate
            .propose(
                "s1",
                &Actor::agent("bot"),
                &action,
                &ProposalContext::default(),
            )
            .await?;
        gate.approve(
            &p.request_id,
            &Actor::human("bob@example.com"),
            &action.digest(),
        )
        .await?;
        let permit = gate.authorize(&p.request_id, &action).await?;
        gate.complete(permit, Outcome::succeeded()).await?;
        ids.push(p.request_id);
    }
    Ok(ids)
}

/// Events in the store's chain.
fn count(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// Deletes the events from seq `from` on, behind the store's back.
fn delete_from(db: &Path, from: u64) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute("DELETE FROM events WHERE seq >= ?1", [from as i64])
        .unwrap();
}

/// A chain of 3 requests, a log key and a checkpoint of its head.
struct Checkpointed {
    db: PathBuf,
    cp: PathBuf,
    log_key: PathBuf,
    log: String,
    size: u64,
}

async fn checkpointed(dir: &Path) -> Result<Checkpointed> {
    let db = dir.join("trail.db");
    requests(&db, "v1", 3).await?;
    let (log_key, log) = key(dir, "log.example/prod");
    let cp = dir.join("cp");
    let out = ok(&[
        "audit",
        "checkpoint",
        "--store",
        &url(&db),
        "--key",
        log_key.to_str().unwrap(),
        "--out",
        cp.to_str().unwrap(),
    ]);
    assert!(text(&out).contains("--checkpoint"), "{}", text(&out));
    let size = count(&db);
    assert!(std::fs::read_to_string(&cp)?.starts_with(&format!("syndicate/prod\n{size}\n")));
    Ok(Checkpointed {
        db,
        cp,
        log_key,
        log,
        size,
    })
}

fn verify_against(db: &Path, cp: &Path, log: &str) -> Output {
    syndicate(&[
        "audit",
        "verify",
        "--store",
        &url(db),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--log-key",
        log,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_verifies_a_store_and_its_export_with_the_key_text_or_file() -> Result {
    let dir = tempfile::tempdir()?;
    let Checkpointed {
        db, cp, log, size, ..
    } = checkpointed(dir.path()).await?;
    let out = verify_against(&db, &cp, &log);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("the first {size} events hash to the root")),
        "{}",
        text(&out)
    );

    // The chain grows: the checkpoint still holds for its prefix.
    requests(&db, "v2", 1).await?;
    let keys = dir.path().join("log.pub");
    std::fs::write(&keys, format!("# the log key\n{log}\n"))?;
    let out = verify_against(&db, &cp, keys.to_str().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let export = dir.path().join("trail.jsonl");
    ok(&[
        "audit",
        "export",
        "--store",
        &url(&db),
        "--out",
        export.to_str().unwrap(),
    ]);
    ok(&[
        "audit",
        "verify",
        "--jsonl",
        export.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--log-key",
        &log,
    ]);
    // An export cut short by one line is caught.
    let all = std::fs::read_to_string(&export)?;
    let short: Vec<&str> = all.lines().take(size as usize - 1).collect();
    std::fs::write(&export, format!("{}\n", short.join("\n")))?;
    let message = fails(&[
        "audit",
        "verify",
        "--jsonl",
        export.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--log-key",
        &log,
    ]);
    assert!(message.contains(&format!("covers {size}")), "{message}");

    // Another log key, or an altered checkpoint: refused.
    let (_, impostor) = key(dir.path(), "log.example/prod2");
    let message = fails(&[
        "audit",
        "verify",
        "--store",
        &url(&db),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--log-key",
        &impostor,
    ]);
    assert!(message.contains("no signature"), "{message}");
    let altered = dir.path().join("altered");
    let signed = std::fs::read_to_string(&cp)?;
    std::fs::write(
        &altered,
        signed.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size - 1), 1),
    )?;
    let message = fails(&[
        "audit",
        "verify",
        "--store",
        &url(&db),
        "--checkpoint",
        altered.to_str().unwrap(),
        "--log-key",
        &log,
    ]);
    assert!(message.contains("does not verify"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_by_deleting_the_last_rows_is_caught() -> Result {
    let dir = tempfile::tempdir()?;
    let Checkpointed {
        db, cp, log, size, ..
    } = checkpointed(dir.path()).await?;
    delete_from(&db, size - 2);
    ok(&["audit", "verify", "--store", &url(&db)]);
    let out = verify_against(&db, &cp, &log);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "chain has {} events but a checkpoint covers {size}",
            size - 2
        )),
        "{message}"
    );
    Ok(())
}

/// Deletes the events from `from` on and appends fresh ones through the
/// store (new, correct hashes) until the chain is longer than before.
async fn rewrite_from(db: &Path, from: u64, size: u64) -> Result {
    delete_from(db, from);
    let needed = (size - from).div_ceil(4) as usize + 1;
    requests(db, "rewritten", needed).await?;
    assert!(count(db) > size);
    ok(&["audit", "verify", "--store", &url(db)]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_rewritten_with_recomputed_hashes_is_caught() -> Result {
    let dir = tempfile::tempdir()?;
    let Checkpointed {
        db, cp, log, size, ..
    } = checkpointed(dir.path()).await?;
    rewrite_from(&db, size - 2, size).await?;
    let out = verify_against(&db, &cp, &log);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("root at size {size}")),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_middle_event_rewritten_with_every_later_one_is_caught() -> Result {
    let dir = tempfile::tempdir()?;
    let Checkpointed {
        db, cp, log, size, ..
    } = checkpointed(dir.path()).await?;
    rewrite_from(&db, 3, size).await?;
    let out = verify_against(&db, &cp, &log);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("root at size {size}")),
        "{}",
        text(&out)
    );
    Ok(())
}

/// Copies a closed SQLite store (and its WAL, if any).
fn copy_store(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut f = from.as_os_str().to_owned();
        f.push(suffix);
        let mut t = to.as_os_str().to_owned();
        t.push(suffix);
        if Path::new(&f).exists() {
            std::fs::copy(&f, &t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn witness_cosigns_a_growing_log_and_refuses_a_fork_and_a_rollback() -> Result {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let Checkpointed {
        db,
        cp: cp1,
        log,
        log_key,
        ..
    } = checkpointed(d).await?;
    let (w_key, w) = key(d, "witness.example");
    let state = d.join("witness-state");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let witness = |cp: &Path, proof: Option<&Path>, out: &Path| {
        let mut args = vec![
            "witness".to_owned(),
            "--key".to_owned(),
            s(&w_key),
            "--log-key".to_owned(),
            log.clone(),
            "--state".to_owned(),
            s(&state),
            "--out".to_owned(),
            s(out),
            s(cp),
        ];
        if let Some(proof) = proof {
            args.push(s(proof));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        syndicate(&args)
    };
    let cosigned1 = d.join("cp1.cosigned");
    let out = witness(&cp1, None, &cosigned1);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A copy of the store as it was at cp1 grows another way: a fork.
    let fork_db = d.join("fork.db");
    copy_store(&db, &fork_db);
    requests(&db, "main", 2).await?;
    requests(&fork_db, "fork", 2).await?;
    let sign = |db: &Path, out: &Path| {
        ok(&[
            "audit",
            "checkpoint",
            "--store",
            &url(db),
            "--key",
            log_key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (cp2, cp_fork) = (d.join("cp2"), d.join("cp-fork"));
    sign(&db, &cp2);
    sign(&fork_db, &cp_fork);
    let prove = |db: &Path, to: &Path, out: &Path| {
        ok(&[
            "audit",
            "prove",
            "consistency",
            "--store",
            &url(db),
            "--from",
            cp1.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (proof2, proof_fork) = (d.join("proof2"), d.join("proof-fork"));
    prove(&db, &cp2, &proof2);
    prove(&fork_db, &cp_fork, &proof_fork);
    assert!(std::fs::read_to_string(&proof2)?.starts_with("old "));

    let cosigned2 = d.join("cp2.cosigned");
    let out = witness(&cp2, Some(&proof2), &cosigned2);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The fork has its own valid proof from cp1, and the same size as cp2.
    let out = witness(&cp_fork, Some(&proof_fork), &d.join("never"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let evidence = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text(&out).contains("fork"), "{}", text(&out));
    assert!(evidence.contains(&std::fs::read_to_string(&cp_fork)?));
    assert!(evidence.contains(std::fs::read_to_string(&cp2)?.lines().nth(2).unwrap()));

    let out = witness(&cp1, None, &d.join("never"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("rollback"), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&std::fs::read_to_string(&cp1)?));
    assert!(!d.join("never").exists());

    // Verification with a witness threshold.
    let with_witness = |cp: &Path| {
        syndicate(&[
            "audit",
            "verify",
            "--store",
            &url(&db),
            "--checkpoint",
            cp.to_str().unwrap(),
            "--log-key",
            &log,
            "--witness-key",
            &w,
            "--witnesses-required",
            "1",
        ])
    };
    let out = with_witness(&cosigned2);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("cosigned by witness.example"),
        "{}",
        text(&out)
    );
    let out = with_witness(&cp2);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("1 required"), "{}", text(&out));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_verifies_after_the_store_is_deleted_and_not_with_a_byte_changed() -> Result {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let db = d.join("trail.db");
    let ids = requests(&db, "r", 2).await?;
    let (log_key, log) = key(d, "log.example/prod");
    let cp = d.join("cp");
    ok(&[
        "audit",
        "checkpoint",
        "--store",
        &url(&db),
        "--key",
        log_key.to_str().unwrap(),
        "--out",
        cp.to_str().unwrap(),
    ]);
    let receipt = d.join("receipt.json");
    ok(&[
        "audit",
        "receipt",
        &ids[1],
        "--store",
        &url(&db),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--out",
        receipt.to_str().unwrap(),
    ]);
    for entry in std::fs::read_dir(d)? {
        let path = entry?.path();
        if path.to_string_lossy().contains("trail.db") {
            std::fs::remove_file(path)?;
        }
    }
    assert!(!db.exists());

    let out = ok(&[
        "audit",
        "verify-receipt",
        receipt.to_str().unwrap(),
        "--log-key",
        &log,
    ]);
    let story = text(&out);
    for expected in [
        "receipt verified: 4 event(s)",
        &ids[1],
        "action.proposed",
        "proposed by bot",
        "approved by bob@example.com (unsigned)",
        "(the approved digest)",
        "outcome succeeded",
    ] {
        assert!(
            story.contains(expected),
            "{expected:?} missing from:\n{story}"
        );
    }

    let bytes = std::fs::read(&receipt)?;
    let changed = d.join("changed.json");
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 20] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        std::fs::write(&changed, &b)?;
        let message = fails(&[
            "audit",
            "verify-receipt",
            changed.to_str().unwrap(),
            "--log-key",
            &log,
        ]);
        assert!(message.contains("changed.json"), "{message}");
    }
    Ok(())
}
