//! The quickstart: an agent's actions going through the gate, on a SQLite file.
//!
//! ```text
//! cargo run -p syndicate-examples --bin quickstart [-- --store sqlite://syndicate-demo.db --chain quickstart]
//! ```
//!
//! Walks through four scenes: a low-risk action auto-approved by policy; a
//! high-risk action approved by a person; the agent changing its arguments
//! after approval (refused); an approval that expired (refused). Then it
//! verifies the chain and prints the command that checks it independently.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;
use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::gate::{
    Gate, GateConfig, GateError, Outcome, Policy, ProposalContext, RulePolicy,
};
use syndicate_core::keys::SigningKey;
use syndicate_core::tree;
use syndicate_core::{Action, Actor, EventStore, EventStoreExt, Timestamp, check_story};

const DEFAULT_POLICY: &str = include_str!("../../policy.toml");

struct Options {
    store: String,
    chain: String,
    policy: Option<String>,
    log_key: String,
    checkpoint: String,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        store: "sqlite://syndicate-demo.db".into(),
        chain: "quickstart".into(),
        policy: None,
        log_key: "syndicate-demo-log.key".into(),
        checkpoint: "syndicate-demo.checkpoint".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => options.store = value("--store")?,
            "--chain" => options.chain = value("--chain")?,
            "--policy" => options.policy = Some(value("--policy")?),
            "--log-key" => options.log_key = value("--log-key")?,
            "--checkpoint" => options.checkpoint = value("--checkpoint")?,
            "-h" | "--help" => {
                println!(
                    "usage: quickstart [--store URL] [--chain NAME] [--policy FILE] [--log-key FILE] [--checkpoint FILE]\n\
                     default store sqlite://syndicate-demo.db, chain quickstart, the bundled examples/policy.toml,\n\
                     log key syndicate-demo-log.key (created when missing), checkpoint syndicate-demo.checkpoint"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(options)
}

fn show(action: &Action) -> String {
    String::from_utf8_lossy(action.canonical_bytes()).into_owned()
}

fn short(digest: &syndicate_core::Digest) -> String {
    digest.to_string()[..16].to_owned()
}

/// The demo's executors: stand-ins for real tools, so the quickstart changes
/// nothing on your machine.
fn execute(action: &Action) -> String {
    match action.tool() {
        "fs.read" => format!("read {}", action.args()["path"].as_str().unwrap_or("?")),
        "deploy.release" => format!(
            "released {} version {}",
            action.target().unwrap_or("?"),
            action.args()["version"].as_str().unwrap_or("?")
        ),
        other => format!("ran {other}"),
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let policy = match &options.policy {
        Some(path) => RulePolicy::from_path(path)?,
        None => RulePolicy::from_toml(DEFAULT_POLICY)?,
    };
    let store: Arc<dyn EventStore> =
        syndicate_examples::open_store(&options.store, &options.chain).await?;

    // A clock the demo can move forward, to show an approval expiring
    // without waiting for it.
    let skew = Arc::new(AtomicI64::new(0));
    let clock_skew = skew.clone();
    let config = GateConfig {
        clock: Arc::new(move || {
            let now = Timestamp::now().unix_micros() + clock_skew.load(Ordering::SeqCst);
            Timestamp::from_unix_micros(now).unwrap_or(Timestamp::MAX)
        }),
        ..GateConfig::default()
    };

    println!("syndicate quickstart: every action an agent takes goes through a gate.");
    println!("store {}  chain {}", options.store, options.chain);
    let policy_ref = policy.reference().clone();
    let gate = Gate::open(store.clone(), Arc::new(policy), config).await?;
    println!(
        "policy {:?} version {} (digest {}...) is in force; the chain verified on open.\n",
        policy_ref.id,
        policy_ref.version,
        short(&policy_ref.digest)
    );
    let agent = Actor::agent("agent:release-bot");
    let bob = Actor::human("bob@example.com");
    let session = format!("quickstart-{}", std::process::id());
    let context = ProposalContext::default();

    // 1. Auto-approved by policy.
    println!("1. A low-risk action, approved by policy");
    let read = Action::new("fs.read", json!({"path": "CHANGELOG.md"}))?;
    println!("   the agent proposes  {}", show(&read));
    let p = gate.propose(&session, &agent, &read, &context).await?;
    println!(
        "   policy: rule {:?}, risk {}: approved automatically",
        p.classification.rule.as_deref().unwrap_or("-"),
        p.classification.risk
    );
    let permit = gate.authorize(&p.request_id, &read).await?;
    let output = execute(permit.action());
    gate.complete(permit, Outcome::succeeded().with_result(output.as_bytes()))
        .await?;
    println!("   permit issued, executed ({output}), completion recorded\n");

    // 2. Approved by a person.
    println!("2. A high-risk action, approved by a person");
    let deploy = Action::new(
        "deploy.release",
        json!({"version": "2.4.1", "canary": true}),
    )?
    .with_target("service:checkout")?;
    println!("   the agent proposes  {}", show(&deploy));
    let p = gate.propose(&session, &agent, &deploy, &context).await?;
    println!(
        "   policy: rule {:?}, risk {}: needs {} human approval, request {}",
        p.classification.rule.as_deref().unwrap_or("-"),
        p.classification.risk,
        p.classification.approvers,
        p.request_id
    );
    println!(
        "   {} reviews digest {} and approves it",
        bob.id,
        p.digest()
    );
    gate.approve(&p.request_id, &bob, &p.digest()).await?;
    let permit = gate.authorize(&p.request_id, &deploy).await?;
    let output = execute(permit.action());
    gate.complete(permit, Outcome::succeeded().with_result(output.as_bytes()))
        .await?;
    println!("   the digest about to run equals the approved one: executed ({output})\n");

    // 3. Parameter drift.
    println!("3. The agent changes its arguments after approval");
    let careful = Action::new(
        "deploy.release",
        json!({"version": "2.4.2", "canary": true}),
    )?
    .with_target("service:checkout")?;
    let p = gate.propose(&session, &agent, &careful, &context).await?;
    gate.approve(&p.request_id, &bob, &p.digest()).await?;
    println!("   approved by {:<17} {}", bob.id, show(&careful));
    let drifted = Action::new(
        "deploy.release",
        json!({"version": "2.4.2", "canary": false}),
    )?
    .with_target("service:checkout")?;
    println!("   {:<29} {}", "then the agent runs", show(&drifted));
    match gate.authorize(&p.request_id, &drifted).await {
        Err(GateError::Refused { refusal, .. }) => println!(
            "   REFUSED: {refusal}\n   recorded as execution.digest_mismatch; nothing ran\n"
        ),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("the drifted action got a permit".into()),
    }

    // 4. Expired approval.
    println!("4. An approval that expired");
    let migrate = Action::new("db.migrate", json!({"database": "orders", "to": "0042"}))?;
    let p = gate.propose(&session, &agent, &migrate, &context).await?;
    let approval = gate.approve(&p.request_id, &bob, &p.digest()).await?;
    println!(
        "   {} approved {} (rule {:?}: approvals last {} s, until {})",
        bob.id,
        show(&migrate),
        p.classification.rule.as_deref().unwrap_or("-"),
        p.classification.approval_ttl_seconds,
        approval.expires_at
    );
    let jump = i64::try_from(p.classification.approval_ttl_seconds)? + 1;
    skew.fetch_add(jump * 1_000_000, Ordering::SeqCst);
    println!("   the agent comes back {jump} s later (the demo moves its clock)");
    match gate.authorize(&p.request_id, &migrate).await {
        Err(GateError::Refused { refusal, .. }) => {
            println!("   REFUSED: {refusal}\n   recorded as execution.rejected; nothing ran\n")
        }
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("the expired approval gave a permit".into()),
    }

    // 5. A signed approval.
    println!("5. An approval signed with the approver's key");
    signed_approval(&options, &session, &agent).await?;

    // Verify.
    let report = store.verify().await?;
    let story = check_story(store.as_ref()).await?;
    let Some(head) = report.summary.head else {
        return Err("the chain is empty".into());
    };
    if let Some(violation) = &report.violation {
        return Err(format!("the chain does not verify: {violation}").into());
    }
    if let Some(violation) = story.violations.first() {
        return Err(format!("the chain's story does not hold: {violation}").into());
    }
    println!(
        "Verified {} events: every hash and link holds, and every execution follows an approval of the same digest.",
        report.summary.events
    );
    println!("head  seq {}  hash {}", head.seq, head.hash);

    // Sign a checkpoint of the head with the log key: whoever holds it can
    // later tell whether the chain was cut short or rewritten.
    let log_key = if Path::new(&options.log_key).exists() {
        SigningKey::load_file(Path::new(&options.log_key))?
    } else {
        let key = SigningKey::generate(&format!("syndicate-demo/{}", options.chain))?;
        key.write_new_file(Path::new(&options.log_key))?;
        key
    };
    let origin = syndicate_core::checkpoint::default_origin(store.chain());
    let (checkpoint, signed) = tree::sign_head(store.as_ref(), &origin, &log_key).await?;
    std::fs::write(&options.checkpoint, signed)?;
    println!(
        "Signed checkpoint {} (size {}) with the log key {}.",
        options.checkpoint, checkpoint.size, options.log_key
    );
    println!(
        "\nCheck it yourself, independently of this program (publish the checkpoint elsewhere first):"
    );
    println!(
        "  cargo run -p syndicate-cli -- audit verify --store {} --chain {} --checkpoint {} --log-key {}",
        options.store,
        options.chain,
        options.checkpoint,
        log_key.verifier()
    );
    Ok(())
}

/// Step 5, on a chain of its own whose policy declares bob and his key: an
/// unsigned approval is refused; bob's signed decision counts.
async fn signed_approval(
    options: &Options,
    session: &str,
    agent: &Actor,
) -> Result<(), Box<dyn std::error::Error>> {
    let chain = format!("{}-signed", options.chain);
    // A SQLite demo file keeps one chain, so `audit verify` needs no --chain:
    // the signed chain goes to a sibling file.
    let url = match options.store.strip_suffix(".db") {
        Some(stem) => format!("{stem}-signed.db"),
        None => options.store.clone(),
    };
    let store: Arc<dyn EventStore> = syndicate_examples::open_store(&url, &chain).await?;
    // In real use bob keeps this key on his own machine (`syndicate key new`)
    // and only its public form is in the policy.
    let bob_key = SigningKey::generate("bob@example.com")?;
    let policy = RulePolicy::from_toml(&format!(
        "id = \"quickstart-signed\"\nversion = \"1\"\n[[rules]]\nid = \"deploys\"\ntool = \"deploy.*\"\nrisk = \"high\"\ndecision = \"human\"\n\
         [[approvers]]\nid = \"bob@example.com\"\nkeys = [\"{}\"]\n",
        bob_key.verifier()
    ))?;
    let gate = Gate::open(store, Arc::new(policy), GateConfig::default()).await?;
    let deploy = Action::new("deploy.release", json!({"version": "2.5.0"}))?;
    let p = gate
        .propose(session, agent, &deploy, &ProposalContext::default())
        .await?;
    println!(
        "   store {url} chain {chain:?}: the policy lists bob's key {}",
        bob_key.verifier()
    );
    match gate
        .approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await
    {
        Err(GateError::Refused { refusal, .. }) => {
            println!("   an unsigned approval \"by bob\" is REFUSED: {refusal}")
        }
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("an unsigned approval counted under a signing policy".into()),
    }
    let statement = Statement {
        chain: gate.store().chain().clone(),
        request_id: p.request_id.clone(),
        action_digest: p.digest(),
        approver: bob_key.name().to_owned(),
        decision: Decision::Approve,
        expires_at: None,
    };
    gate.submit(SignedDecision::sign(&bob_key, statement)?)
        .await?;
    let permit = gate.authorize(&p.request_id, &deploy).await?;
    let output = execute(permit.action());
    gate.complete(permit, Outcome::succeeded().with_result(output.as_bytes()))
        .await?;
    println!(
        "   bob signs {} with his key: the signature verifies, executed ({output})",
        short(&p.digest())
    );
    println!(
        "   check every signature on that chain yourself, with only bob's public key:\n     \
         cargo run -p syndicate-cli -- audit verify --store {url} --chain {chain} --trusted-keys {}\n",
        bob_key.verifier()
    );
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("quickstart: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quickstart: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::from(1)
        }
    }
}
