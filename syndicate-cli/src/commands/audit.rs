//! `syndicate audit verify|export|query`: check a trail, copy it out byte
//! for byte, and read parts of it.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, Subcommand, ValueEnum};
use syndicate_core::scan::scan_verified;
use syndicate_core::seal::EVENT_LIMITS;
use syndicate_core::story::{StoryChecker, StoryReport};
use syndicate_core::{
    ChainId, Check, Columns, Digest, Envelope, Event, EventKind, EventStore, Order, Query, Report,
    StoreError, Summary, Verifier, Violation, tags,
};

use super::checkpoint::PrefixRoot;
use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};
use syndicate_core::tree::VerifiedTree;

/// Read the audit trail.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a chain: every hash, link, seq, time and column. Exit 0 when
    /// intact, 1 naming the first bad seq, 2 when the input cannot be read.
    Verify(VerifyArgs),
    /// Export a chain, one event per line: each line is exactly the
    /// canonical bytes that were hashed.
    Export(ExportArgs),
    /// Print the events matching filters, one canonical event per line.
    Query(QueryArgs),
    /// Summarize a chain for an auditor: integrity, story, policies, who
    /// approved what, what ran, what was refused. Exit 1 when it does not verify.
    Report(super::report::ReportArgs),
    /// Verify the whole chain and sign a checkpoint of its head (C2SP
    /// signed note: origin, size, Merkle root) with the log key.
    Checkpoint(super::checkpoint::CheckpointArgs),
    /// Proofs between checkpoints.
    #[command(subcommand)]
    Prove(super::checkpoint::ProveCommand),
    /// Write a request's events, their inclusion proofs and a signed
    /// checkpoint to one file an auditor verifies offline.
    Receipt(super::checkpoint::ReceiptArgs),
    /// Verify a receipt with no store and tell the request's story. Exit 1
    /// when it does not verify.
    VerifyReceipt(super::checkpoint::VerifyReceiptArgs),
    /// Check a report's detached signature (`--sign-key` of `audit changes`
    /// or `audit report`): exit 0 when it verifies with the key given and
    /// covers exactly the report's bytes, 1 when not.
    VerifyReport(super::signed_report::VerifyReportArgs),
    /// Evidence for auditors: changes, replay, commits, checks.
    #[command(flatten)]
    Evidence(super::evidence::AuditEvidence),
}

/// `syndicate audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "jsonl",
        conflicts_with = "jsonl"
    )]
    pub store: Option<String>,
    /// A JSONL export to verify offline instead of a store.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// Also check that the chain ends at this hash (a head recorded elsewhere).
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
    /// Also check the chain against this signed checkpoint: it has at
    /// least the checkpoint's size, and its first `size` events hash to
    /// the checkpoint's root (needs --log-key).
    #[arg(long, value_name = "FILE", requires = "log_key")]
    pub checkpoint: Option<PathBuf>,
    /// The keys the checkpoint is checked with.
    #[command(flatten)]
    pub trust: super::checkpoint::TrustArgs,
    /// Judge every person's approval by these approver keys (a verifier key,
    /// or a file of them, one a line; repeatable) instead of the approvers
    /// the chain's own `policy.activated` events declare: an approval
    /// without a signature by a trusted key of its approver is a story
    /// violation (`unproven_approval`), exit 1 naming its seq.
    #[arg(long = "trusted-keys", value_name = "KEY|FILE")]
    pub trusted_keys: Vec<String>,
    /// Text for people, or one JSON document (`syndicate-verify/v1`,
    /// FORMAT.md 6.4) for scripts; the exit code is the same.
    #[arg(long, value_enum, default_value = "text")]
    pub format: super::evidence::TextFormat,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One canonical event per line.
    Jsonl,
}

/// `syndicate audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Write here instead of standard output (replaced only when complete).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Verify the events while exporting them and write a checkpoint of
    /// the export, signed with this log key file, to `<FILE>.checkpoint`
    /// (needs --out): `audit verify --jsonl FILE --checkpoint
    /// FILE.checkpoint` then proves the export complete and unaltered.
    #[arg(long, value_name = "LOG.KEY", requires = "out")]
    pub checkpoint_key: Option<PathBuf>,
    /// The checkpoint's origin (default `syndicate/<chain>`).
    #[arg(long, requires = "checkpoint_key")]
    pub origin: Option<String>,
}

/// `syndicate audit query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// Events of this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Events of this kind, e.g. `action.approved`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Events whose actor id is this.
    #[arg(long)]
    pub actor: Option<String>,
    /// Events about this request.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Events at or after this instant (`2026-11-23T10:00:00.000000Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Events strictly before this instant.
    #[arg(long)]
    pub until: Option<String>,
    /// Newest first.
    #[arg(long)]
    pub desc: bool,
    /// At most this many events.
    #[arg(long, default_value_t = Query::DEFAULT_LIMIT)]
    pub limit: usize,
    /// Only events of changes with this outcome (as `audit changes
    /// --outcome`). Repeatable: any. This and the filters below read and
    /// verify the whole chain first, and select events of the changes that
    /// pass them (their proposal, decisions, execution and annotations).
    #[arg(long)]
    pub outcome: Vec<String>,
    /// Only events of changes in this control's scope (as `audit changes
    /// --control`). Repeatable: any.
    #[arg(long)]
    pub control: Vec<String>,
    /// Only events of changes of this risk tier. Repeatable: any.
    #[arg(long)]
    pub risk: Vec<String>,
    /// Only events of changes proposed by this model (name or provider).
    #[arg(long)]
    pub model: Option<String>,
    /// Only events of changes a named compliance check finds (as `audit
    /// checks --check`). Repeatable: any.
    #[arg(long, value_enum)]
    pub check: Vec<super::evidence::checks::CheckName>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: QueryFormat,
}

/// Output formats of `audit query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    /// One canonical event per line, exactly the bytes that were hashed.
    Jsonl,
    /// One JSON document, `syndicate-query/v1` (FORMAT.md 11.4).
    Json,
    /// Aligned columns for a terminal.
    Table,
}

impl QueryArgs {
    /// The change filters given, as `audit changes` reads them; `None` when
    /// none is given (then only the store's index is queried).
    fn change_filters(&self) -> Option<super::evidence::changes::Filters> {
        let any = !self.outcome.is_empty()
            || !self.control.is_empty()
            || !self.risk.is_empty()
            || self.model.is_some()
            || !self.check.is_empty();
        any.then(|| super::evidence::changes::Filters {
            outcome: self.outcome.clone(),
            control: self.control.clone(),
            risk: self.risk.clone(),
            model: self.model.clone(),
            ..super::evidence::changes::Filters::default()
        })
    }
}

/// Runs an audit command.
///
/// # Errors
/// A broken [`Failure`] (exit 1) when the chain does not verify or a row is
/// unreadable; a usage [`Failure`] (exit 2) for bad arguments or a store or
/// file that cannot be opened or read.
pub fn run(command: &AuditCommand) -> CommandResult {
    if let AuditCommand::Evidence(command) = command {
        return super::evidence::run_audit(command);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))?;
    if let AuditCommand::VerifyReceipt(args) = command {
        return super::checkpoint::verify_receipt(args);
    }
    if let AuditCommand::VerifyReport(args) = command {
        return super::signed_report::verify_report(args);
    }
    runtime.block_on(async {
        match command {
            AuditCommand::Verify(args) => verify(args).await,
            AuditCommand::Checkpoint(args) => super::checkpoint::sign(args).await,
            AuditCommand::Prove(super::checkpoint::ProveCommand::Consistency(args)) => {
                super::checkpoint::prove_consistency(args).await
            }
            AuditCommand::Receipt(args) => super::checkpoint::make_receipt(args).await,
            AuditCommand::Export(args) => export(args).await,
            AuditCommand::Query(args) => query(args).await,
            AuditCommand::Report(args) => super::report::run(args).await,
            AuditCommand::Evidence(_)
            | AuditCommand::VerifyReceipt(_)
            | AuditCommand::VerifyReport(_) => Ok(()),
        }
    })
}

fn parse_url(text: &str) -> Result<StoreUrl, Failure> {
    text.parse().map_err(Failure::usage)
}

fn parse_chain(text: Option<&str>) -> Result<Option<ChainId>, Failure> {
    text.map(ChainId::new)
        .transpose()
        .map_err(|e| Failure::usage(format!("--chain: {e}")))
}

async fn verify(args: &VerifyArgs) -> CommandResult {
    let chain = parse_chain(args.chain.as_deref())?;
    let head = args
        .head
        .as_deref()
        .map(str::parse::<Digest>)
        .transpose()
        .map_err(|e| Failure::usage(format!("--head: {e}")))?;
    let checkpoint = args
        .checkpoint
        .as_deref()
        .map(|path| super::checkpoint::open_checkpoint(path, &args.trust))
        .transpose()?;
    let mut prefix = PrefixRoot::new(checkpoint.as_ref().map_or(0, |c| c.checkpoint().size));
    let story = story_checker(&args.trusted_keys)?;
    // Integrity, story and the checkpointed root in one pass over the same
    // bytes.
    let (chain, report, story) = match (&args.store, &args.jsonl) {
        (Some(url), _) => verify_url(&parse_url(url)?, chain.as_ref(), &mut prefix, story).await?,
        (None, Some(path)) => verify_jsonl(path, chain, &mut prefix, story)?,
        (None, None) => return Err(Failure::usage("give --store URL or --jsonl FILE")),
    };
    let report = match &head {
        Some(expected) => report.expect_head(expected),
        None => report,
    };
    if args.format == super::evidence::TextFormat::Json {
        let checkpoint = checkpoint
            .as_ref()
            .filter(|_| report.violation.is_none())
            .map(|opened| (opened, prefix.judge(opened, report.summary.events)));
        return print_json(chain.as_ref(), &report, &story, checkpoint);
    }
    print_report(chain.as_ref(), &report)?;
    if let Some(opened) = &checkpoint {
        prefix.check(opened, report.summary.events)?;
    }
    // The chain is intact; now the story it tells.
    super::story::print_for(&report, &story)
}

/// The story checker of `audit verify`: under the chain's own declared
/// approvers, or under the keys the auditor trusts.
fn story_checker(trusted_keys: &[String]) -> Result<StoryChecker, Failure> {
    let judge = super::evidence::chain::Judge::from_args(trusted_keys)?;
    Ok(StoryChecker::with_rules(judge.rules()))
}

/// Verifies a store up to the head it had when verification started, so
/// appends by other processes meanwhile neither break nor prolong the run,
/// and checks the story of the same events in the same pass.
async fn verify_url(
    url: &StoreUrl,
    chain: Option<&ChainId>,
    prefix: &mut PrefixRoot,
    mut story: StoryChecker,
) -> Result<(Option<ChainId>, Report, StoryReport), Failure> {
    let store = open(url, chain, Access::ReadOnly).await?;
    let upto = match store.head().await {
        Ok(Some(head)) => Some(head.seq),
        Ok(None) => {
            return Ok((
                Some(store.chain().clone()),
                Verifier::new(store.chain().clone()).report(None),
                StoryReport::default(),
            ));
        }
        // An unreadable head row: verify everything; the verifier reports it.
        Err(StoreError::Corrupt { .. }) => None,
        Err(e) => return Err(Failure::usage(format!("cannot read {url}: {e}"))),
    };
    let progress = Progress::events(upto.map_or(0, |s| s + 1), "verifying");
    let verifier = Verifier::new(store.chain().clone());
    let end = scan_verified(store.as_ref(), verifier, upto, |event| {
        story.check(event);
        prefix.see(event);
        progress.add(1, 0);
    })
    .await
    .map_err(|e| Failure::usage(format!("cannot read {url}: {e}")))?;
    progress.finish();
    Ok((
        Some(store.chain().clone()),
        end.verifier.report(end.violation),
        story.report(),
    ))
}

/// `audit verify --format json`: one `syndicate-verify/v1` document, and
/// the exit code of the text form.
fn print_json(
    chain: Option<&ChainId>,
    report: &Report,
    story: &StoryReport,
    checkpoint: Option<(&syndicate_core::checkpoint::Opened, Result<String, Failure>)>,
) -> CommandResult {
    let s = &report.summary;
    let intact = report.violation.is_none();
    // The story is judged only over an intact, non-empty chain.
    let story_judged = intact && s.head.is_some();
    let doc = serde_json::json!({
        "format": "syndicate-verify/v1",
        "chain": chain.map(ChainId::as_str),
        "intact": intact,
        "events": s.events,
        "first_seq": s.head.as_ref().map(|h| h.seq + 1 - s.events),
        "head_seq": s.head.as_ref().map(|h| h.seq),
        "head_hash": s.head.as_ref().map(|h| h.hash.to_string()),
        "first_at": s.first_at.map(|t| t.to_string()),
        "last_at": s.head.as_ref().map(|h| h.at.to_string()),
        "violation": report.violation.as_ref().map(|v| serde_json::json!({
            "seq": v.seq,
            "check": v.check.to_string(),
            "expected": v.expected,
            "found": v.found,
        })),
        "story": story_judged.then(|| serde_json::json!({
            "holds": story.is_consistent(),
            "requests": story.requests,
            "open_requests": story.open_requests,
            "violations": story.violations.iter().map(|v| serde_json::json!({
                "seq": v.seq,
                "rule": v.rule.as_str(),
                "request_id": v.request_id,
                "detail": v.detail,
            })).collect::<Vec<_>>(),
        })),
        "checkpoint": checkpoint.as_ref().map(|(opened, verdict)| serde_json::json!({
            "origin": opened.checkpoint().origin,
            "size": opened.checkpoint().size,
            "holds": verdict.is_ok(),
            "detail": match verdict {
                Ok(line) => line.clone(),
                Err(e) => e.to_string(),
            },
        })),
    });
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
    .and_then(|()| out.flush())
    .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))?;
    if let Some(v) = &report.violation {
        return Err(Failure::broken(format!(
            "the chain does not verify: first bad seq {}, {} check",
            v.seq, v.check
        )));
    }
    if let Some((_, Err(e))) = checkpoint {
        return Err(e);
    }
    match story.violations.first().filter(|_| story_judged) {
        None => Ok(()),
        Some(v) => Err(Failure::broken(format!(
            "the chain's story does not hold: {} violation(s), first at seq {} ({})",
            story.violations.len(),
            v.seq,
            v.rule.as_str()
        ))),
    }
}

fn print_report(chain: Option<&ChainId>, report: &Report) -> CommandResult {
    let s = &report.summary;
    let on_chain = chain.map_or_else(String::new, |c| format!(" on chain {:?}", c.as_str()));
    let mut out = std::io::stdout().lock();
    let written = match &report.violation {
        None => match (&s.head, &s.first_at) {
            (Some(head), Some(first_at)) => writeln!(
                out,
                "intact: {} events{on_chain}, seq {}..{}, head {}, {first_at} .. {}",
                s.events,
                head.seq + 1 - s.events,
                head.seq,
                head.hash,
                head.at
            ),
            _ => writeln!(out, "intact: 0 events{on_chain}"),
        },
        Some(violation) => writeln!(
            out,
            "BROKEN at {}\nverified before it: {} events{on_chain}",
            crate::terminal::escape(&violation.to_string()),
            s.events
        ),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))?;
    match &report.violation {
        None => Ok(()),
        Some(v) => Err(Failure::broken(format!(
            "the chain does not verify: first bad seq {}, {} check",
            v.seq, v.check
        ))),
    }
}

/// Verifies a JSONL export offline: every line must be exactly the RFC 8785
/// form of a v1 envelope, and the lines one unbroken chain.
fn verify_jsonl(
    path: &Path,
    chain: Option<ChainId>,
    prefix: &mut PrefixRoot,
    mut story: StoryChecker,
) -> Result<(Option<ChainId>, Report, StoryReport), Failure> {
    let file = File::open(path)
        .map_err(|e| Failure::usage(format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata().map_or(0, |m| m.len());
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut verifier = chain.clone().map(Verifier::new);
    let mut chain = chain;
    let progress = Progress::file_bytes(len, "verifying");
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let expected_seq = verifier.as_ref().map_or(0, Verifier::next_seq);
        let event = match event_of_line(&line, number) {
            Ok((envelope, event)) => {
                if verifier.is_none() {
                    chain = Some(envelope.chain.clone());
                    verifier = Some(Verifier::new(envelope.chain));
                }
                event
            }
            Err((expected, found)) => {
                let violation = Violation {
                    seq: expected_seq,
                    check: Check::Format,
                    expected,
                    found,
                };
                return Ok(finish(chain, verifier, Some(violation), &progress, &story));
            }
        };
        let Some(v) = verifier.as_mut() else {
            continue;
        };
        if let Err(violation) = v.check(&event) {
            return Ok(finish(chain, verifier, Some(violation), &progress, &story));
        }
        story.check(&event);
        prefix.see(&event);
        progress.add(1, n as u64);
    }
    Ok(finish(chain, verifier, None, &progress, &story))
}

fn finish(
    chain: Option<ChainId>,
    verifier: Option<Verifier>,
    violation: Option<Violation>,
    progress: &Progress,
    story: &StoryChecker,
) -> (Option<ChainId>, Report, StoryReport) {
    progress.finish();
    let report = match verifier {
        Some(v) => v.report(violation),
        None => Report {
            summary: Summary::default(),
            violation,
        },
    };
    (chain, report, story.report())
}

/// One export line as an event: its hash is the hash of the line itself.
fn event_of_line(line: &[u8], number: u64) -> Result<(Envelope, Event), (String, String)> {
    match syndicate_core::jcs::canonicalize_with(line, &EVENT_LIMITS) {
        Ok(canonical) if canonical == line => {}
        Ok(canonical) => {
            let at = canonical
                .iter()
                .zip(line)
                .position(|(a, b)| a != b)
                .unwrap_or(canonical.len().min(line.len()));
            return Err((
                format!("line {number} in RFC 8785 canonical form"),
                format!("a line that differs from its canonical form at byte {at}"),
            ));
        }
        Err(e) => {
            return Err((
                format!("line {number} holding one JSON event"),
                format!("text that is not: {e}"),
            ));
        }
    }
    let envelope: Envelope = serde_json::from_slice(line).map_err(|e| {
        (
            format!("line {number} holding a v1 event envelope"),
            format!("json that is not one: {e}"),
        )
    })?;
    let event = Event {
        seq: envelope.seq,
        hash: Digest::of_canonical(tags::EVENT, line),
        canonical: line.to_vec(),
        columns: Columns::of(&envelope),
    };
    Ok((envelope, event))
}

async fn export(args: &ExportArgs) -> CommandResult {
    let url = parse_url(&args.store)?;
    let chain = parse_chain(args.chain.as_deref())?;
    let Format::Jsonl = args.format;
    let store = open(&url, chain.as_ref(), Access::ReadOnly).await?;
    let unreadable = |e: StoreError| match e {
        StoreError::Corrupt { seq, reason, .. } => Failure::broken(format!(
            "row {seq} of {url} is unreadable ({reason}); run `syndicate audit verify --store {url}`"
        )),
        e => Failure::usage(format!("cannot read {url}: {e}")),
    };
    let head = store.head().await.map_err(unreadable)?;
    let log_key = args
        .checkpoint_key
        .as_deref()
        .map(|path| super::key::load_key(Some(path), None))
        .transpose()?;
    let mut tree = log_key
        .as_ref()
        .map(|_| VerifiedTree::new(store.chain().clone()));
    let write_error = |e: std::io::Error| Failure::usage(format!("cannot write the export: {e}"));
    let (partial, sink): (Option<PathBuf>, Box<dyn Write>) = match &args.out {
        Some(out) => {
            let mut name = out.file_name().unwrap_or_default().to_owned();
            name.push(".partial");
            let partial = out.with_file_name(name);
            let file = File::create(&partial)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", partial.display())))?;
            (Some(partial), Box::new(file))
        }
        None => (None, Box::new(std::io::stdout().lock())),
    };
    let mut sink = BufWriter::with_capacity(1 << 20, sink);
    let progress = Progress::events(head.as_ref().map_or(0, |h| h.seq + 1), "exporting");
    let result: CommandResult = async {
        let Some(head) = head else { return Ok(()) };
        let mut next = 0;
        while next <= head.seq {
            let limit = usize::try_from(head.seq - next + 1)
                .unwrap_or(usize::MAX)
                .min(1000);
            let page = store.read(next, limit).await.map_err(unreadable)?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for event in &page {
                if let Some(tree) = tree.as_mut() {
                    tree.add(event).map_err(|e| {
                        Failure::broken(format!(
                            "{e}; no checkpoint is signed for a chain that does not verify"
                        ))
                    })?;
                }
                sink.write_all(&event.canonical).map_err(write_error)?;
                sink.write_all(b"\n").map_err(write_error)?;
            }
            progress.add(page.len() as u64, 0);
        }
        sink.flush().map_err(write_error)
    }
    .await;
    progress.finish();
    drop(sink);
    match (result, &partial, &args.out) {
        (Ok(()), Some(partial), Some(out)) => {
            std::fs::rename(partial, out).map_err(|e| {
                Failure::usage(format!("cannot move the export to {}: {e}", out.display()))
            })?;
            eprintln!(
                "exported {} events of chain {:?} to {}",
                progress.count(),
                store.chain().as_str(),
                out.display()
            );
            if let (Some(tree), Some(key)) = (&tree, &log_key) {
                let origin = args
                    .origin
                    .clone()
                    .unwrap_or_else(|| syndicate_core::checkpoint::default_origin(store.chain()));
                let signed = tree
                    .sign(&origin, key)
                    .map_err(|e| Failure::usage(format!("--origin: {e}")))?;
                let mut name = out.file_name().unwrap_or_default().to_owned();
                name.push(".checkpoint");
                let path = out.with_file_name(name);
                std::fs::write(&path, signed)
                    .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
                eprintln!(
                    "signed checkpoint of the export (size {}) written to {}; check with:\n  syndicate audit verify --jsonl {} --checkpoint {} --log-key {}",
                    tree.size(),
                    path.display(),
                    out.display(),
                    path.display(),
                    key.verifier()
                );
            }
            Ok(())
        }
        (Ok(()), _, _) => Ok(()),
        (Err(e), partial, _) => {
            if let Some(partial) = partial {
                let _ = std::fs::remove_file(partial);
            }
            Err(e)
        }
    }
}

async fn query(args: &QueryArgs) -> CommandResult {
    let url = parse_url(&args.store)?;
    let chain = parse_chain(args.chain.as_deref())?;
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| super::evidence::parse_time(&format!("--{flag}"), t))
            .transpose()
    };
    let query = Query {
        session: args.session.clone(),
        kind: args
            .kind
            .as_deref()
            .map(str::parse::<EventKind>)
            .transpose()
            .map_err(|e| Failure::usage(format!("--kind: {e}")))?,
        actor: args.actor.clone(),
        request_id: args.request_id.clone(),
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
        order: if args.desc {
            Order::Descending
        } else {
            Order::Ascending
        },
        limit: args.limit,
        ..Query::all()
    };
    let filters = args.change_filters();
    if let Some(filters) = &filters {
        filters.validate()?;
    }
    let store = open(&url, chain.as_ref(), Access::ReadOnly).await?;
    let (events, integrity) = match &filters {
        None => {
            let events = store.query(&query).await.map_err(|e| match e {
                StoreError::Corrupt { seq, reason, .. } => Failure::broken(format!(
                    "row {seq} of {url} is unreadable ({reason}); run `syndicate audit verify --store {url}`"
                )),
                e => Failure::usage(format!("cannot read {url}: {e}")),
            })?;
            (events, None)
        }
        Some(filters) => {
            let evidence = super::evidence::chain::load(store.as_ref(), "query").await?;
            let findings = super::evidence::checks::run_checks(&evidence, &args.check);
            let mut seqs = std::collections::HashSet::new();
            for c in &evidence.changes {
                let found =
                    args.check.is_empty() || findings.iter().any(|f| f.request_id == c.request_id);
                if found && filters.keep(c) {
                    seqs.extend(c.steps.iter().map(|s| s.seq));
                }
            }
            let mut events: Vec<Event> = evidence
                .events
                .into_iter()
                .filter(|e| seqs.contains(&e.seq) && query.matches(e))
                .collect();
            if args.desc {
                events.reverse();
            }
            events.truncate(args.limit);
            (events, Some(evidence.integrity))
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let io = |e: std::io::Error| Failure::usage(format!("cannot write standard output: {e}"));
    match args.format {
        QueryFormat::Jsonl => {
            for event in &events {
                out.write_all(&event.canonical)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(io)?;
            }
        }
        QueryFormat::Json => {
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "seq": e.seq,
                        "hash": e.hash,
                        "kind": e.columns.kind,
                        "at": e.columns.at,
                        "session": e.columns.session,
                        "actor": e.columns.actor,
                        "request_id": e.columns.request_id,
                        "event": serde_json::from_slice::<serde_json::Value>(&e.canonical)
                            .unwrap_or(serde_json::Value::Null),
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "format": "syndicate-query/v1",
                "verified": integrity.is_some(),
                "integrity": integrity,
                "events": rows,
            });
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))?;
            out.write_all(b"\n").map_err(io)?;
        }
        QueryFormat::Table => {
            let esc = |t: &str| crate::terminal::escape(t).into_owned();
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        esc(&e.columns.at),
                        esc(&e.columns.kind),
                        esc(&e.columns.actor),
                        esc(e.columns.request_id.as_deref().unwrap_or("-")),
                        esc(&e.columns.session),
                    ]
                })
                .collect();
            let text = crate::terminal::table(
                &["SEQ", "AT", "KIND", "ACTOR", "REQUEST", "SESSION"],
                &rows,
            );
            out.write_all(text.as_bytes()).map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

/// A count of events, with a progress bar on standard error when it is a
/// terminal and the run is long (`crate::progress`).
struct Progress {
    count: AtomicU64,
    bar: indicatif::ProgressBar,
    /// Whether the bar counts bytes (a JSONL file) rather than events.
    bytes: bool,
}

impl Progress {
    fn events(len: u64, message: &'static str) -> Self {
        Progress {
            count: AtomicU64::new(0),
            bar: crate::progress::bar(len, message),
            bytes: false,
        }
    }

    fn file_bytes(len: u64, message: &'static str) -> Self {
        Progress {
            count: AtomicU64::new(0),
            bar: crate::progress::bytes(len, message),
            bytes: true,
        }
    }

    /// Counts `n` events of `bytes` bytes.
    fn add(&self, n: u64, bytes: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
        self.bar.inc(if self.bytes { bytes } else { n });
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
