//! The auditor's evidence: `syndicate audit changes|replay|commits|checks`,
//! `syndicate annotate` and `syndicate git link`.
//!
//! Every report is built from the verified chain only: the chain is read
//! and verified in one pass, and a chain that does not verify is refused
//! (exit 1, naming the first bad seq) rather than reported on.

pub mod annotate;
pub mod chain;
pub mod changes;
pub mod checks;
pub mod git;
pub mod replay;

use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use syndicate_core::{ChainId, EventStore, Timestamp};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};

/// The evidence subcommands of `syndicate audit`.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AuditEvidence {
    /// One row per change (request) from the verified chain, filtered and
    /// sampled, as a table, CSV, JSON or Markdown. Exit 1 when the chain
    /// does not verify.
    Changes(Box<ChangesArgs>),
    /// One change event by event, for a person, with every seq and hash.
    Replay(replay::ReplayArgs),
    /// The commits of a git range with their requests; exit 1 when any
    /// commit has no trail.
    Commits(git::CommitsArgs),
    /// Named compliance checks; exit 1 when any finds something.
    Checks(checks::ChecksArgs),
}

/// Where the chain is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
}

impl StoreArgs {
    /// Opens the store.
    ///
    /// # Errors
    /// A usage failure for a bad URL or chain, or a store that cannot be opened.
    pub async fn open(&self, access: Access) -> Result<Arc<dyn EventStore>, Failure> {
        let url: StoreUrl = self.store.parse().map_err(Failure::usage)?;
        let chain = self
            .chain
            .as_deref()
            .map(ChainId::new)
            .transpose()
            .map_err(|e| Failure::usage(format!("--chain: {e}")))?;
        open(&url, chain.as_ref(), access).await
    }
}

/// Text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    /// For a person.
    Text,
    /// For a script.
    Json,
}

/// `syndicate audit changes`.
#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Which changes.
    #[command(flatten)]
    pub filters: changes::Filters,
    /// Draw a reproducible random sample of this many changes.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// The sample's seed (any text); required with --sample.
    #[arg(long, value_name = "S", requires = "sample")]
    pub seed: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: changes::ChangesFormat,
    /// Judge approval signatures by these approver keys (a verifier key,
    /// or a file of them, one a line; repeatable) instead of the approvers
    /// the chain's own `policy.activated` events declare.
    #[arg(long = "trusted-keys", value_name = "KEY|FILE")]
    pub trusted_keys: Vec<String>,
    /// Where the report goes, and its signature.
    #[command(flatten)]
    pub output: crate::commands::signed_report::OutputArgs,
}

/// Runs an evidence subcommand of `syndicate audit`.
///
/// # Errors
/// Exit 1 when the chain does not verify or a check fails; exit 2 for bad
/// input or an unusable store.
pub fn run_audit(command: &AuditEvidence) -> CommandResult {
    block_on(async {
        match command {
            AuditEvidence::Changes(args) => run_changes(args).await,
            AuditEvidence::Replay(args) => replay::run(args).await,
            AuditEvidence::Commits(args) => git::commits(args).await,
            AuditEvidence::Checks(args) => checks::run(args).await,
        }
    })
}

/// Reads a time a person typed: RFC 3339 in UTC with zero to six
/// fractional digits (`2026-11-23T10:00:00Z`, `…:00.5Z`), as well as the
/// stored form with exactly six.
///
/// # Errors
/// A usage failure naming the flag and the form it takes.
pub fn parse_time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    let padded = match text.strip_suffix('Z').map(|t| t.split_once('.')) {
        Some(None) => format!("{}.000000Z", &text[..text.len() - 1]),
        Some(Some((whole, fraction)))
            if fraction.len() < 6 && fraction.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{whole}.{fraction:0<6}Z")
        }
        _ => text.to_owned(),
    };
    padded.parse::<Timestamp>().map_err(|_| {
        Failure::usage(format!(
            "{flag} {text:?} is not a UTC time like 2026-11-23T10:00:00Z (up to six fractional digits)"
        ))
    })
}

/// Runs a future on a fresh current-thread runtime.
///
/// # Errors
/// What the future returns; a usage failure when no runtime can start.
pub fn block_on<F: Future<Output = CommandResult>>(future: F) -> CommandResult {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

async fn run_changes(args: &ChangesArgs) -> CommandResult {
    args.filters.validate()?;
    if args.sample.is_some() && args.seed.is_none() {
        return Err(Failure::usage(
            "--sample needs --seed S so the sample can be drawn again",
        ));
    }
    let judge = chain::Judge::from_args(&args.trusted_keys)?;
    let output = crate::commands::signed_report::Output::new(&args.output)?;
    let store = args.store.open(Access::ReadOnly).await?;
    let evidence = chain::load_judged(store.as_ref(), "report", &judge).await?;
    let rows: Vec<_> = evidence
        .changes
        .iter()
        .filter(|c| args.filters.keep(c))
        .cloned()
        .collect();
    let matched = rows.len();
    let (rows, sample) = match (args.sample, &args.seed) {
        (Some(n), Some(seed)) => (
            changes::sample(rows, n, seed),
            Some(changes::SampleDoc { n, seed }),
        ),
        _ => (rows, None),
    };
    let mut out = Vec::new();
    changes::render(
        &mut out,
        args.format,
        &evidence,
        &args.filters,
        sample,
        matched,
        &rows,
    )?;
    output.emit(&out)
}
