//! `syndicate`: canonicalize actions, and verify, export and query audit trails.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use syndicate_cli::commands::action::{self, ActionCommand};
use syndicate_cli::commands::agents::{self, HookCommand, ProxyArgs};
use syndicate_cli::commands::approve::{
    self, ApproveArgs, DenyArgs, RecoverArgs, ShowArgs, SubmitArgs,
};
use syndicate_cli::commands::audit::{self, AuditCommand};
use syndicate_cli::commands::checkpoint;
use syndicate_cli::commands::evidence::annotate::{self, AnnotateArgs};
use syndicate_cli::commands::evidence::git::{self, GitCommand};
use syndicate_cli::commands::key::{self, KeyCommand};
use syndicate_cli::commands::store::{self, StoreCommand};
use syndicate_cli::exit::CommandResult;

/// Approval-bound, hash-chained audit trails for AI agent actions.
#[derive(Debug, Parser)]
#[command(name = "syndicate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Canonical bytes and digests of actions.
    #[command(subcommand)]
    Action(ActionCommand),
    /// Approve the digest of a pending request (exit 1 when refused).
    Approve(ApproveArgs),
    /// Record a signed decision written by `approve --sign-only` (exit 1 when refused).
    Submit(SubmitArgs),
    /// Deny a pending request (exit 1 when refused).
    Deny(DenyArgs),
    /// Recover a degraded gate after re-verifying the chain (signed by an
    /// operator's key when the policy declares operators).
    Recover(RecoverArgs),
    /// Show a request: canonical action, digest, risk, requester, history.
    Show(ShowArgs),
    /// Verify, export and query audit trails.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Cosign a log's checkpoint only if it is consistent with the last one
    /// this witness cosigned for its origin (exit 1 on a fork or rollback,
    /// printing both checkpoints).
    Witness(checkpoint::WitnessArgs),
    /// Ed25519 keys for approvers and operators.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Store administration: create or upgrade a store's schema.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Record a review, test run, deployment, rollback or correction of a
    /// change, as a new event.
    Annotate(AnnotateArgs),
    /// Link commits to requests through their `Syndicate-Request:` trailers.
    #[command(subcommand)]
    Git(GitCommand),
    /// Claude Code and Codex hooks (exit 2 blocks the call), and installing them.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Gate an MCP server's tools/call: `syndicate mcp-proxy -- SERVER_COMMAND [ARGS...]`.
    McpProxy(ProxyArgs),
}

fn run(cli: &Cli) -> CommandResult {
    match &cli.command {
        Command::Action(command) => action::run(command),
        Command::Approve(args) => approve::approve(args),
        Command::Deny(args) => approve::deny(args),
        Command::Recover(args) => approve::recover(args),
        Command::Submit(args) => approve::submit(args),
        Command::Show(args) => approve::show(args),
        Command::Audit(command) => audit::run(command),
        Command::Key(command) => key::run(command),
        Command::Witness(args) => checkpoint::witness(args),
        Command::Store(command) => store::run(command),
        Command::Annotate(args) => annotate::run(args),
        Command::Git(command) => git::run(command),
        Command::McpProxy(args) => agents::mcp_proxy(args),
        Command::Hook(_) => unreachable!("hooks exit through agents::hook"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Hook(command) = &cli.command {
        return agents::hook(command);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // The reason may quote stored or agent-chosen text: escaped.
            let reason = failure.to_string();
            eprintln!("syndicate: {}", syndicate_cli::terminal::escape(&reason));
            ExitCode::from(failure.code)
        }
    }
}
