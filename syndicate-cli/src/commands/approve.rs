//! `syndicate approve|deny|show`: decide on a pending request from another
//! terminal, with the policy in force on the chain.

use std::sync::Arc;

use clap::Args;
use std::path::Path;
use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::gate::{
    Closed, Gate, GateConfig, GateError, ProposedBody, Status, active_policy,
};
use syndicate_core::{Actor, ChainId, Digest, EventStore};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{self, StoreUrl};
use crate::terminal::escape;
use std::io::Write;

/// Where the chain is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store URL, e.g. `sqlite://syndicate-demo.db`.
    #[arg(long)]
    pub store: Option<String>,
    /// The chain; may be left out when the store holds only one.
    #[arg(long)]
    pub chain: Option<String>,
}

/// `syndicate approve REQUEST_ID --as NAME --digest HEX`, or signed:
/// `syndicate approve REQUEST_ID --key bob.key --digest HEX [--sign-only --out FILE]`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request to approve (printed by the agent's gate).
    pub request_id: String,
    /// Your identity, recorded as the approver (unsigned approvals); with
    /// --key the key's name is the identity.
    #[arg(long = "as", value_name = "NAME", required_unless_present_any = ["key", "key_env"])]
    pub approver: Option<String>,
    /// The action digest you reviewed (see `syndicate show REQUEST_ID`).
    #[arg(long, value_name = "HEX")]
    pub digest: String,
    /// Sign the approval with this private key file (`-` reads it from stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "approver")]
    pub key: Option<std::path::PathBuf>,
    /// Sign with the private key held in this environment variable.
    #[arg(long = "key-env", value_name = "VAR", conflicts_with_all = ["approver", "key"])]
    pub key_env: Option<String>,
    /// Only sign: write the signed decision to --out, without store access
    /// (needs --chain); `syndicate submit FILE` records it.
    #[arg(long, requires = "out", requires = "chain")]
    pub sign_only: bool,
    /// Where --sign-only writes the signed decision (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `syndicate deny REQUEST_ID --as NAME --reason TEXT`.
#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request to deny.
    pub request_id: String,
    /// Your identity, recorded on the denial (unsigned denials).
    #[arg(long = "as", value_name = "NAME", required_unless_present_any = ["key", "key_env"])]
    pub who: Option<String>,
    /// Sign the denial with this approver or operator key file (`-` reads
    /// stdin); needed when the policy declares approvers.
    #[arg(long, value_name = "FILE", conflicts_with = "who")]
    pub key: Option<std::path::PathBuf>,
    /// Sign with the key held in this environment variable.
    #[arg(long = "key-env", value_name = "VAR", conflicts_with_all = ["who", "key"])]
    pub key_env: Option<String>,
    /// Why.
    #[arg(long, default_value = "denied by a reviewer")]
    pub reason: String,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `syndicate recover --reason TEXT (--as NAME | --key FILE | --key-env VAR)`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Why the gate may run again (recorded).
    #[arg(long)]
    pub reason: String,
    /// Your identity, recorded as the operator (policies without operators).
    #[arg(long = "as", value_name = "NAME", required_unless_present_any = ["key", "key_env"])]
    pub operator: Option<String>,
    /// Sign the recovery with this operator key file (`-` reads stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "operator")]
    pub key: Option<std::path::PathBuf>,
    /// Sign with the operator key held in this environment variable.
    #[arg(long = "key-env", value_name = "VAR", conflicts_with_all = ["operator", "key"])]
    pub key_env: Option<String>,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Recovers a degraded gate: the whole chain is re-verified first; under a
/// policy that declares operators the recovery is signed with an operator
/// key over the degradation it ends.
///
/// # Errors
/// Exit 1 when the chain still does not verify or the gate refuses the
/// recovery, exit 2 for bad input or an unusable store.
pub fn recover(args: &RecoverArgs) -> CommandResult {
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        let before = gate.degraded();
        let event = if args.key.is_some() || args.key_env.is_some() {
            let key = super::key::load_key(args.key.as_deref(), args.key_env.as_deref())?;
            let (subject, digest) = gate.recovery_subject().await.map_err(Failure::usage)?;
            let statement = Statement {
                chain: gate.store().chain().clone(),
                request_id: subject,
                action_digest: digest,
                approver: key.name().to_owned(),
                decision: Decision::Recover,
                expires_at: None,
            };
            let signed = SignedDecision::sign(&key, statement).map_err(Failure::usage)?;
            gate.recover_signed(signed, &args.reason).await
        } else {
            let operator = args.operator.clone().unwrap_or_default();
            gate.recover(&Actor::human(operator), &args.reason).await
        }
        .map_err(|e| match e {
            GateError::StillBroken(_) => Failure::broken(e),
            other => outcome(other),
        })?;
        println!(
            "recovered at seq {} ({}); the gate runs again",
            event.seq,
            before.map_or_else(
                || "it was not degraded".to_owned(),
                |why| format!("it was degraded: {}", escape(&why))
            )
        );
        Ok(())
    })
}

/// `syndicate show REQUEST_ID`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The request to show.
    pub request_id: String,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

async fn open_store(args: &StoreArgs) -> Result<Arc<dyn EventStore>, Failure> {
    let Some(store) = &args.store else {
        return Err(Failure::usage("--store URL is required"));
    };
    let url: StoreUrl = store.parse().map_err(Failure::usage)?;
    let chain = match &args.chain {
        Some(chain) => Some(ChainId::new(chain.as_str()).map_err(Failure::usage)?),
        None => None,
    };
    store_url::open_store(&url, chain.as_ref(), false).await
}

/// Opens a gate with the policy last activated on the chain.
async fn open_gate(args: &StoreArgs) -> Result<Gate, Failure> {
    let store = open_store(args).await?;
    let gate_chain = store.chain().clone();
    let policy = active_policy(store.as_ref())
        .await
        .map_err(Failure::usage)?
        .ok_or_else(|| {
            Failure::usage(format!(
                "no policy was ever activated on chain {}; is this the chain the agent uses? (--chain)",
                gate_chain
            ))
        })?;
    Gate::open(store, Arc::new(policy), GateConfig::default())
        .await
        .map_err(Failure::usage)
}

fn outcome(error: GateError) -> Failure {
    match error {
        GateError::Refused { .. } => Failure::broken(error),
        other => Failure::usage(other),
    }
}

/// Approves a request.
///
/// # Errors
/// Exit 1 when the gate refuses the approval (recorded on the chain), exit 2
/// for bad input or an unusable store.
pub fn approve(args: &ApproveArgs) -> CommandResult {
    let digest: Digest = args
        .digest
        .parse()
        .map_err(|e| Failure::usage(format!("--digest: {e}")))?;
    if args.key.is_some() || args.key_env.is_some() {
        return approve_signed(args, digest);
    }
    let approver = args.approver.clone().unwrap_or_default();
    if approver.is_empty() {
        return Err(Failure::usage("--as must name the approver"));
    }
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        present(&gate, &args.request_id).await?;
        let approval = gate
            .approve(&args.request_id, &Actor::human(&approver), &digest)
            .await
            .map_err(outcome)?;
        report(&approval, &args.request_id, &digest, &approver);
        Ok(())
    })
}

/// Shows the person the verified, escaped proposal, whose digest was
/// recomputed from its action ([`Gate::proposal`] refuses one whose recorded
/// digest differs). The gate then approves only when the digest the person
/// typed equals it, and records a refused attempt otherwise. An unknown or
/// closed request has nothing to show: the gate refuses and records the
/// attempt.
async fn present(gate: &Gate, request_id: &str) -> CommandResult {
    match gate.proposal(request_id).await {
        Ok(Some((body, action))) => print_proposal(&mut std::io::stdout().lock(), &body, &action),
        Ok(None) | Err(GateError::Refused { .. }) => Ok(()),
        Err(e) => Err(Failure::usage(e)),
    }
}

fn report(
    approval: &syndicate_core::gate::Approval,
    request_id: &str,
    digest: &Digest,
    approver: &str,
) {
    if approval.is_complete() {
        println!(
            "approved request {request_id} (digest {digest}) as {approver}; usable until {}",
            approval.expires_at
        );
    } else {
        println!(
            "approval {} of {} recorded for request {request_id}; another approver is needed",
            approval.approvals, approval.required
        );
    }
}

/// Signs an approval; submits it, or with --sign-only writes it to --out.
fn approve_signed(args: &ApproveArgs, digest: Digest) -> CommandResult {
    let key = super::key::load_key(args.key.as_deref(), args.key_env.as_deref())?;
    let statement = |chain: ChainId| Statement {
        chain,
        request_id: args.request_id.clone(),
        action_digest: digest,
        approver: key.name().to_owned(),
        decision: Decision::Approve,
        expires_at: None,
    };
    if args.sign_only {
        let chain = args.store.chain.as_deref().unwrap_or_default();
        let chain = ChainId::new(chain).map_err(Failure::usage)?;
        let signed = SignedDecision::sign(&key, statement(chain)).map_err(Failure::usage)?;
        let out = args.out.as_deref().unwrap_or(Path::new("decision.json"));
        write_new(out, &signed)?;
        println!(
            "signed approval of request {} (digest {digest}) by {} written to {}",
            args.request_id,
            key.verifier(),
            out.display()
        );
        return Ok(());
    }
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        present(&gate, &args.request_id).await?;
        let chain = gate.store().chain().clone();
        let signed = SignedDecision::sign(&key, statement(chain)).map_err(Failure::usage)?;
        let approval = gate.submit(signed).await.map_err(outcome)?;
        report(&approval, &args.request_id, &digest, key.name());
        Ok(())
    })
}

fn write_new(path: &Path, signed: &SignedDecision) -> CommandResult {
    let mut text = serde_json::to_string_pretty(signed).map_err(Failure::usage)?;
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
}

/// `syndicate submit FILE --store URL`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// A signed decision written by `syndicate approve --sign-only`.
    pub file: std::path::PathBuf,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Records a signed decision signed elsewhere; the gate checks it as if
/// signed in place.
///
/// # Errors
/// Exit 1 when the gate refuses it (recorded on the chain), exit 2 for an
/// unreadable file or an unusable store.
pub fn submit(args: &SubmitArgs) -> CommandResult {
    let text = std::fs::read(&args.file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.file.display())))?;
    let signed: SignedDecision = serde_json::from_slice(&text).map_err(|e| {
        Failure::usage(format!(
            "{} is not a signed decision: {e}",
            args.file.display()
        ))
    })?;
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        let approval = gate.submit(signed.clone()).await.map_err(outcome)?;
        report(
            &approval,
            &signed.statement.request_id,
            &signed.statement.action_digest,
            &signed.statement.approver,
        );
        Ok(())
    })
}

/// Denies a request.
///
/// # Errors
/// As [`approve`].
pub fn deny(args: &DenyArgs) -> CommandResult {
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        if args.key.is_some() || args.key_env.is_some() {
            let key = super::key::load_key(args.key.as_deref(), args.key_env.as_deref())?;
            let digest = match gate.request(&args.request_id).await {
                Ok(Status::Open(r)) => r.digest,
                _ => Digest::ZERO,
            };
            let statement = Statement {
                chain: gate.store().chain().clone(),
                request_id: args.request_id.clone(),
                action_digest: digest,
                approver: key.name().to_owned(),
                decision: Decision::Deny,
                expires_at: None,
            };
            let signed = SignedDecision::sign(&key, statement).map_err(Failure::usage)?;
            gate.deny_signed(signed, &args.reason)
                .await
                .map_err(outcome)?;
        } else {
            let who = args.who.clone().unwrap_or_default();
            if who.is_empty() {
                return Err(Failure::usage("--as must name who denies"));
            }
            gate.deny(&args.request_id, &Actor::human(&who), &args.reason)
                .await
                .map_err(outcome)?;
        }
        println!("denied request {}", args.request_id);
        Ok(())
    })
}

/// Shows what an approver needs to see: the canonical action, its digest
/// (recomputed from the verified proposal), risk tier, requester, controls
/// and where the request stands. The chain is verified first; every string
/// read from it is escaped for the terminal.
///
/// # Errors
/// Exit 2 for an unknown or closed request or an unusable store.
pub fn show(args: &ShowArgs) -> CommandResult {
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        let Some((body, action)) = gate
            .proposal(&args.request_id)
            .await
            .map_err(Failure::usage)?
        else {
            return Err(unknown(&gate, &args.request_id).await);
        };
        let status = gate
            .request(&args.request_id)
            .await
            .map_err(Failure::usage)?;
        let mut out = std::io::stdout().lock();
        print_proposal(&mut out, &body, &action)?;
        if let Some(request) = status.open() {
            let line = |out: &mut dyn Write, text: String| {
                writeln!(out, "{text}").map_err(|e| Failure::usage(format!("stdout: {e}")))
            };
            line(
                &mut out,
                format!(
                    "approvals:  {} of {}",
                    request.approval_count(),
                    request.required
                ),
            )?;
            for a in &request.approvals {
                line(
                    &mut out,
                    format!(
                        "  {} at {} (seq {}), usable until {}{}",
                        escape(&a.approver),
                        a.at,
                        a.seq,
                        a.usable_until,
                        if a.signed { ", signed" } else { "" }
                    ),
                )?;
            }
            if let Some(seq) = request.started {
                line(&mut out, format!("started:    seq {seq}"))?;
            }
        }
        Ok(())
    })
}

/// The refusal for a request `show` or `approve` cannot present: never
/// proposed, or already closed.
async fn unknown(gate: &Gate, request_id: &str) -> Failure {
    let why = match gate.request(request_id).await {
        Ok(Status::Closed(Closed::Completed)) => "it already ran and completed",
        Ok(Status::Closed(_)) => "it was denied",
        _ => "no such request on this chain; check the id and --chain",
    };
    Failure::usage(format!(
        "request {:?} cannot be shown or approved: {why}",
        escape(request_id)
    ))
}

/// Prints a proposal, every string escaped.
fn print_proposal(
    out: &mut dyn Write,
    body: &ProposedBody,
    action: &syndicate_core::Action,
) -> CommandResult {
    let canonical = String::from_utf8_lossy(action.canonical_bytes());
    let mut text = format!(
        "request:    {}\nrequester:  {}\nrisk tier:  {}\npolicy:     {} (rule {}), {} approval(s) needed\n",
        escape(&body.request_id),
        escape(&body.requester),
        body.risk_tier,
        body.decision.as_str(),
        escape(body.rule.as_deref().unwrap_or("none")),
        body.approvals_required
    );
    if !body.controls.is_empty() {
        text.push_str(&format!(
            "controls:   {}\n",
            escape(&body.controls.join(", "))
        ));
    }
    text.push_str(&format!(
        "action:     {}\ndigest:     {}\n",
        escape(&canonical),
        action.digest()
    ));
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))
}
