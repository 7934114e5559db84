//! `syndicate key new|show`: Ed25519 approver and operator keys.
//!
//! Private keys are read from a file (refused when group or others may read
//! it), from standard input (`-`) or from an environment variable, so a CI
//! approver never needs a key on disk.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use syndicate_core::keys::SigningKey;

use crate::exit::{CommandResult, Failure};

/// `syndicate key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a private key file (mode 0600) and print its public verifier key.
    New(NewArgs),
    /// Print the public verifier key of a private key.
    Show(ShowArgs),
}

/// `syndicate key new --id NAME --out FILE`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The identity the key signs as, e.g. `bob@example.com` (no `+`, no spaces).
    #[arg(long, value_name = "NAME")]
    pub id: String,
    /// The private key file to create; an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `syndicate key show FILE`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Where the private key is.
    #[command(flatten)]
    pub key: KeySource,
}

/// Where a private key comes from: a file, `-` for stdin, or a variable.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct KeySource {
    /// A private key file (must not be readable by group or others), or `-`
    /// to read the key from standard input.
    #[arg(value_name = "FILE", id = "key_file")]
    pub file: Option<PathBuf>,
    /// An environment variable holding the private key line `PRIVATE+KEY+...`.
    #[arg(long = "key-env", value_name = "VAR")]
    pub env: Option<String>,
}

/// Loads a private key from a file path, `-` (stdin) or an environment variable.
///
/// # Errors
/// A usage failure (exit 2) naming what was wrong with the key.
pub fn load_key(file: Option<&Path>, env: Option<&str>) -> Result<SigningKey, Failure> {
    let key = match (file, env) {
        (_, Some(var)) => SigningKey::from_env(var),
        (Some(path), None) if path == Path::new("-") => {
            SigningKey::from_reader(std::io::stdin().lock())
        }
        (Some(path), None) => SigningKey::load_file(path),
        (None, None) => {
            return Err(Failure::usage(
                "no key given; pass a key file, `-` for stdin, or --key-env VAR",
            ));
        }
    };
    key.map_err(Failure::usage)
}

/// Runs a `syndicate key` command.
///
/// # Errors
/// A usage failure (exit 2) for a bad name, an existing output file or an
/// unreadable or open key file.
pub fn run(command: &KeyCommand) -> CommandResult {
    match command {
        KeyCommand::New(args) => {
            let key = SigningKey::generate(&args.id).map_err(Failure::usage)?;
            key.write_new_file(&args.out).map_err(Failure::usage)?;
            println!("{}", key.verifier());
            Ok(())
        }
        KeyCommand::Show(args) => {
            let key = load_key(args.key.file.as_deref(), args.key.env.as_deref())?;
            println!("{}", key.verifier());
            Ok(())
        }
    }
}
