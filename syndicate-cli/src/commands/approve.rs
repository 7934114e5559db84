//! `syndicate approve|deny|show`: decide on a pending request from another
//! terminal, with the policy in force on the chain.

use std::sync::Arc;

use clap::Args;
use syndicate_core::gate::{Gate, GateConfig, GateError, ProposedBody, active_policy, body_of};
use syndicate_core::{Actor, ChainId, Digest, EventStore};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{self, StoreUrl};

/// Where the chain is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store URL, e.g. `sqlite://syndicate-demo.db`.
    #[arg(long)]
    pub store: String,
    /// The chain; may be left out when the store holds only one.
    #[arg(long)]
    pub chain: Option<String>,
}

/// `syndicate approve REQUEST_ID --as NAME --digest HEX`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request to approve (printed by the agent's gate).
    pub request_id: String,
    /// Your identity, recorded as the approver.
    #[arg(long = "as", value_name = "NAME")]
    pub approver: String,
    /// The action digest you reviewed (see `syndicate show REQUEST_ID`).
    #[arg(long, value_name = "HEX")]
    pub digest: String,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `syndicate deny REQUEST_ID --as NAME --reason TEXT`.
#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request to deny.
    pub request_id: String,
    /// Your identity, recorded on the denial.
    #[arg(long = "as", value_name = "NAME")]
    pub who: String,
    /// Why.
    #[arg(long, default_value = "denied by a reviewer")]
    pub reason: String,
    /// Where the chain is.
    #[command(flatten)]
    pub store: StoreArgs,
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
    let url: StoreUrl = args.store.parse().map_err(Failure::usage)?;
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
    if args.approver.is_empty() {
        return Err(Failure::usage("--as must name the approver"));
    }
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        let approval = gate
            .approve(&args.request_id, &Actor::human(&args.approver), &digest)
            .await
            .map_err(outcome)?;
        if approval.is_complete() {
            println!(
                "approved request {} (digest {digest}) as {}; usable until {}",
                args.request_id, args.approver, approval.expires_at
            );
        } else {
            println!(
                "approval {} of {} recorded for request {}; another approver is needed",
                approval.approvals, approval.required, args.request_id
            );
        }
        Ok(())
    })
}

/// Denies a request.
///
/// # Errors
/// As [`approve`].
pub fn deny(args: &DenyArgs) -> CommandResult {
    if args.who.is_empty() {
        return Err(Failure::usage("--as must name who denies"));
    }
    runtime()?.block_on(async {
        let gate = open_gate(&args.store).await?;
        gate.deny(&args.request_id, &Actor::human(&args.who), &args.reason)
            .await
            .map_err(outcome)?;
        println!("denied request {}", args.request_id);
        Ok(())
    })
}

/// Shows what an approver needs to see: the canonical action, its digest,
/// risk tier, requester, controls and current state.
///
/// # Errors
/// Exit 2 for an unknown request or an unusable store.
pub fn show(args: &ShowArgs) -> CommandResult {
    runtime()?.block_on(async {
        let store = open_store(&args.store).await?;
        let events = store
            .query(&syndicate_core::Query::request(args.request_id.as_str()))
            .await
            .map_err(Failure::usage)?;
        let Some(proposed) = events.iter().find(|e| e.columns.kind == "action.proposed") else {
            return Err(Failure::usage(format!(
                "no request {:?} on chain {}; check the id and --chain",
                args.request_id,
                store.chain()
            )));
        };
        let body: ProposedBody = body_of(proposed).map_err(Failure::usage)?;
        let canonical =
            syndicate_core::jcs::to_canonical_vec(&body.action).map_err(Failure::usage)?;
        println!("request:    {}", body.request_id);
        println!("session:    {}", proposed.columns.session);
        println!("requester:  {}", body.requester);
        println!("risk tier:  {}", body.risk_tier);
        println!(
            "policy:     {} (rule {}), {} approval(s) needed",
            body.decision.as_str(),
            body.rule.as_deref().unwrap_or("none"),
            body.approvals_required
        );
        if !body.controls.is_empty() {
            println!("controls:   {}", body.controls.join(", "));
        }
        println!("action:     {}", String::from_utf8_lossy(&canonical));
        println!("digest:     {}", body.action_digest);
        println!("history:");
        for event in &events {
            println!(
                "  seq {:>6}  {}  {}  by {}",
                event.seq, event.columns.at, event.columns.kind, event.columns.actor
            );
        }
        Ok(())
    })
}
