//! Signed checkpoints through the real binary: a chain cut short or
//! rewritten with fresh hashes still verifies on its own, and `audit verify
//! --checkpoint` catches each, on SQLite and on PostgreSQL (skipped, saying
//! why, when `SYNDICATE_TEST_POSTGRES_URL` is unset; failing instead when
//! `CI=true`); a witness refuses a fork and a rollback; a receipt verifies
//! after the store is deleted, and not with a byte changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::json;
use sqlx::Connection as _;
use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, RulePolicy};
use syndicate_core::keys::SigningKey;
use syndicate_core::{Action, Actor, ChainId, Decision, SignedDecision, Statement};
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

/// A store the tests tamper with behind its back, as its owner could.
enum Trail {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Trail {
    /// A SQLite file in `dir`, or a fresh PostgreSQL database (`None` when
    /// the test skips).
    async fn new(postgres: bool, dir: &Path, test: &str) -> Option<Trail> {
        if postgres {
            syndicate_store_postgres::testing::fresh_database(test)
                .await
                .map(Trail::Postgres)
        } else {
            Some(Trail::Sqlite(dir.join("trail.db")))
        }
    }

    fn url(&self) -> String {
        match self {
            Trail::Sqlite(db) => url(db),
            Trail::Postgres(url) => url.clone(),
        }
    }

    /// Events in the chain.
    async fn count(&self) -> u64 {
        match self {
            Trail::Sqlite(db) => rusqlite::Connection::open(db)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
                .unwrap() as u64,
            Trail::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                n as u64
            }
        }
    }

    /// Deletes the events from seq `from` on. On PostgreSQL the owner
    /// bypasses the append-only triggers and moves the head row back to the
    /// last event left, so the store appends after it again.
    async fn delete_from(&self, from: u64) {
        match self {
            Trail::Sqlite(db) => {
                rusqlite::Connection::open(db)
                    .unwrap()
                    .execute("DELETE FROM events WHERE seq >= ?1", [from as i64])
                    .unwrap();
            }
            Trail::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                for sql in [
                    "SET LOCAL session_replication_role = replica",
                    "DELETE FROM events WHERE seq >= $1",
                    "UPDATE heads SET seq = e.seq, hash = e.hash, at = e.at \
                     FROM (SELECT seq, hash, at FROM events ORDER BY seq DESC LIMIT 1) e",
                ] {
                    let query = sqlx::query(sql);
                    let query = if sql.contains("$1") {
                        query.bind(from as i64)
                    } else {
                        query
                    };
                    query.execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
    }
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
async fn requests(url: &str, tag: &str, n: usize) -> Result<Vec<String>> {
    let store = syndicate_stores::open(
        &url.parse::<StoreUrl>()?,
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

/// A chain of 3 requests, a log key and a checkpoint of its head.
struct Checkpointed {
    trail: Trail,
    cp: PathBuf,
    log_key: PathBuf,
    log: String,
    size: u64,
}

async fn checkpointed(trail: Trail, dir: &Path) -> Result<Checkpointed> {
    requests(&trail.url(), "v1", 3).await?;
    let (log_key, log) = key(dir, "log.example/prod");
    let cp = dir.join("cp");
    let out = ok(&[
        "audit",
        "checkpoint",
        "--store",
        &trail.url(),
        "--key",
        log_key.to_str().unwrap(),
        "--out",
        cp.to_str().unwrap(),
    ]);
    assert!(text(&out).contains("--checkpoint"), "{}", text(&out));
    let size = trail.count().await;
    assert!(std::fs::read_to_string(&cp)?.starts_with(&format!("syndicate/prod\n{size}\n")));
    Ok(Checkpointed {
        trail,
        cp,
        log_key,
        log,
        size,
    })
}

fn verify_against(trail: &Trail, cp: &Path, log: &str) -> Output {
    syndicate(&[
        "audit",
        "verify",
        "--store",
        &trail.url(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--log-key",
        log,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_verifies_a_store_and_its_export_with_the_key_text_or_file() -> Result {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trail.db");
    let Checkpointed {
        trail,
        cp,
        log,
        size,
        ..
    } = checkpointed(Trail::Sqlite(db.clone()), dir.path()).await?;
    let out = verify_against(&trail, &cp, &log);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("the first {size} events hash to the root")),
        "{}",
        text(&out)
    );

    // The chain grows: the checkpoint still holds for its prefix.
    requests(&url(&db), "v2", 1).await?;
    let keys = dir.path().join("log.pub");
    std::fs::write(&keys, format!("# the log key\n{log}\n"))?;
    let out = verify_against(&trail, &cp, keys.to_str().unwrap());
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

async fn truncation_by_deleting_the_last_rows(postgres: bool, test: &str) -> Result {
    let dir = tempfile::tempdir()?;
    let Some(trail) = Trail::new(postgres, dir.path(), test).await else {
        return Ok(());
    };
    let Checkpointed {
        trail,
        cp,
        log,
        size,
        ..
    } = checkpointed(trail, dir.path()).await?;
    trail.delete_from(size - 2).await;
    ok(&["audit", "verify", "--store", &trail.url()]);
    let out = verify_against(&trail, &cp, &log);
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

/// Checkpoints a chain, deletes the events from `from` on and appends fresh
/// ones through the store (new, correct hashes) until the chain is longer
/// than before: it verifies on its own, and not against the checkpoint.
async fn rewrite_from(postgres: bool, test: &str, from: impl Fn(u64) -> u64) -> Result {
    let dir = tempfile::tempdir()?;
    let Some(trail) = Trail::new(postgres, dir.path(), test).await else {
        return Ok(());
    };
    let Checkpointed {
        trail,
        cp,
        log,
        size,
        ..
    } = checkpointed(trail, dir.path()).await?;
    let from = from(size);
    trail.delete_from(from).await;
    let needed = (size - from).div_ceil(4) as usize + 1;
    requests(&trail.url(), "rewritten", needed).await?;
    assert!(trail.count().await > size);
    ok(&["audit", "verify", "--store", &trail.url()]);
    let out = verify_against(&trail, &cp, &log);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("root at size {size}")),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_by_deleting_the_last_rows_is_caught_on_sqlite() -> Result {
    truncation_by_deleting_the_last_rows(false, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_by_deleting_the_last_rows_is_caught_on_postgres() -> Result {
    truncation_by_deleting_the_last_rows(
        true,
        "truncation_by_deleting_the_last_rows_is_caught_on_postgres",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_rewritten_with_recomputed_hashes_is_caught_on_sqlite() -> Result {
    rewrite_from(false, "", |size| size - 2).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_rewritten_with_recomputed_hashes_is_caught_on_postgres() -> Result {
    rewrite_from(
        true,
        "a_tail_rewritten_with_recomputed_hashes_is_caught_on_postgres",
        |size| size - 2,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_middle_event_rewritten_with_every_later_one_is_caught_on_sqlite() -> Result {
    rewrite_from(false, "", |_| 3).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_middle_event_rewritten_with_every_later_one_is_caught_on_postgres() -> Result {
    rewrite_from(
        true,
        "a_middle_event_rewritten_with_every_later_one_is_caught_on_postgres",
        |_| 3,
    )
    .await
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
    let db = d.join("trail.db");
    let Checkpointed {
        cp: cp1,
        log,
        log_key,
        ..
    } = checkpointed(Trail::Sqlite(db.clone()), d).await?;
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
    requests(&url(&db), "main", 2).await?;
    requests(&url(&fork_db), "fork", 2).await?;
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
    let ids = requests(&url(&db), "r", 2).await?;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_shows_a_signed_approval_checked_against_the_approver_key() -> Result {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let (bob_key, bob) = key(d, "bob@example.com");
    let db = d.join("trail.db");
    let store = syndicate_stores::open(
        &url(&db).parse::<StoreUrl>()?,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("prod")?),
    )
    .await?;
    let policy = RulePolicy::from_toml(&format!(
        "{POLICY}[[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{bob}\"]\n"
    ))?;
    let gate = Gate::open(store, Arc::new(policy), GateConfig::default()).await?;
    let action = Action::new("shell.exec", json!({ "argv": ["git", "push"] }))?;
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    let statement = Statement {
        chain: ChainId::new("prod")?,
        request_id: p.request_id.clone(),
        action_digest: action.digest(),
        approver: "bob@example.com".to_owned(),
        decision: Decision::Approve,
        expires_at: None,
    };
    gate.submit(SignedDecision::sign(
        &SigningKey::load_file(&bob_key)?,
        statement,
    )?)
    .await?;
    let permit = gate.authorize(&p.request_id, &action).await?;
    gate.complete(permit, Outcome::succeeded()).await?;
    drop(gate);

    let (log_key, log) = key(d, "log.example/prod");
    let (cp, receipt) = (d.join("cp"), d.join("receipt.json"));
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
    ok(&[
        "audit",
        "receipt",
        &p.request_id,
        "--store",
        &url(&db),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--out",
        receipt.to_str().unwrap(),
    ]);
    let r = receipt.to_str().unwrap();
    let unchecked = text(&ok(&["audit", "verify-receipt", r, "--log-key", &log]));
    assert!(unchecked.contains("signature not checked"), "{unchecked}");
    let checked = text(&ok(&[
        "audit",
        "verify-receipt",
        r,
        "--log-key",
        &log,
        "--trusted-keys",
        &bob,
    ]));
    assert!(
        checked.contains(&format!(
            "signature by bob@example.com+{} verified",
            bob.split('+').nth(1).unwrap()
        )),
        "{checked}"
    );
    // A key of the same name that did not sign: the approval is refused.
    let other = d.join("other");
    std::fs::create_dir(&other)?;
    let (_, impostor) = key(&other, "bob@example.com");
    let refused = fails(&[
        "audit",
        "verify-receipt",
        r,
        "--log-key",
        &log,
        "--trusted-keys",
        &impostor,
    ]);
    assert!(refused.contains("SIGNATURE REFUSED"), "{refused}");
    assert!(refused.contains("do not verify"), "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_signed_with_its_checkpoint_verifies_and_a_cut_copy_does_not() -> Result {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let db = d.join("trail.db");
    requests(&url(&db), "x", 2).await?;
    let (log_key, log) = key(d, "log.example/prod");
    let export = d.join("trail.jsonl");
    let out = ok(&[
        "audit",
        "export",
        "--store",
        &url(&db),
        "--out",
        export.to_str().unwrap(),
        "--checkpoint-key",
        log_key.to_str().unwrap(),
    ]);
    let cp = d.join("trail.jsonl.checkpoint");
    assert!(
        text(&out).contains("trail.jsonl.checkpoint"),
        "{}",
        text(&out)
    );
    let lines = std::fs::read_to_string(&export)?.lines().count();
    assert!(std::fs::read_to_string(&cp)?.starts_with(&format!("syndicate/prod\n{lines}\n")));
    let verify = |jsonl: &Path| {
        syndicate(&[
            "audit",
            "verify",
            "--jsonl",
            jsonl.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
            "--log-key",
            &log,
        ])
    };
    let out = verify(&export);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The export without its last line still verifies as a chain, not
    // against its checkpoint.
    let all = std::fs::read_to_string(&export)?;
    let cut = d.join("cut.jsonl");
    let kept: Vec<&str> = all.lines().take(lines - 1).collect();
    std::fs::write(&cut, format!("{}\n", kept.join("\n")))?;
    ok(&["audit", "verify", "--jsonl", cut.to_str().unwrap()]);
    let out = verify(&cut);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("covers {lines}")),
        "{}",
        text(&out)
    );
    Ok(())
}
