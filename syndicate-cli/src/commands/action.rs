//! `syndicate action canon|digest`: the canonical bytes and digest of an action.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use syndicate_core::Action;

use super::input::read_input;
use crate::exit::{CommandResult, Failure};

/// Work on one action given as JSON.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Print the RFC 8785 canonical bytes of an action (no trailing newline).
    Canon {
        /// The action as JSON; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Print the action digest: 64 lower-case hex characters.
    Digest {
        /// The action as JSON; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
}

/// Runs an action command.
///
/// # Errors
/// A usage [`Failure`] (exit 2) when the input is not a strict JSON action.
pub fn run(command: &ActionCommand) -> CommandResult {
    let (file, digest) = match command {
        ActionCommand::Canon { file } => (file, false),
        ActionCommand::Digest { file } => (file, true),
    };
    let text = read_input(file.as_deref())?;
    let action = Action::from_json(&text).map_err(Failure::usage)?;
    let mut out = std::io::stdout().lock();
    let written = if digest {
        writeln!(out, "{}", action.digest())
    } else {
        out.write_all(action.canonical_bytes())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))
}
