//! `syndicate`: canonicalize actions, and verify, export and query audit trails.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use syndicate_cli::commands::action::{self, ActionCommand};
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
}

fn run(cli: &Cli) -> CommandResult {
    match &cli.command {
        Command::Action(command) => action::run(command),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("syndicate: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
