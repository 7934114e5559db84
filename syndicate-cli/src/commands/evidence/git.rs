//! Git linkage: `syndicate git link` records the requests named by
//! `Syndicate-Request:` commit trailers; `syndicate audit commits` lists a
//! range's commits with their requests and those without a trail.
//!
//! The repository is read with the `git` binary (`git log` with a format of
//! separators that cannot occur in its fields), so trailers are parsed by git
//! itself exactly as `git interpret-trailers` does.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use serde::Serialize;
use syndicate_core::annotation::{Annotation, CommitLink, EventRef};
use syndicate_core::{Actor, EventKind, Query, StoreError};

use super::chain::{self, Evidence};
use super::{StoreArgs, TextFormat};
use crate::exit::{CommandResult, Failure};
use crate::store_url::Access;
use crate::terminal::escape;

/// The trailer naming a request.
pub const TRAILER: &str = "Syndicate-Request";

/// `syndicate git`.
#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Record a `commit` annotation for every `Syndicate-Request: req-…`
    /// trailer in a range (once per commit and request).
    Link(LinkArgs),
}

/// A repository and a range.
#[derive(Debug, Clone, Args)]
pub struct RangeArgs {
    /// The repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The range, `A..B` (as `git log` takes it).
    #[arg(long, value_name = "A..B")]
    pub range: String,
}

/// `syndicate git link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Repository and range.
    #[command(flatten)]
    pub range: RangeArgs,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Who records the links.
    #[arg(long, default_value = "git-link")]
    pub author: String,
}

/// `syndicate audit commits`.
#[derive(Debug, Args)]
pub struct CommitsArgs {
    /// Repository and range.
    #[command(flatten)]
    pub range: RangeArgs,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextFormat,
}

/// One commit of a range.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    /// Full object name.
    pub commit: String,
    /// Subject line.
    pub subject: String,
    /// Request ids named by its trailers.
    pub trailers: Vec<String>,
}

/// The commits of a range, oldest first.
///
/// # Errors
/// A usage failure when git cannot be run or refuses the range.
pub fn commits_in(repo: &Path, range: &str) -> Result<Vec<Commit>, Failure> {
    if range.starts_with('-') {
        return Err(Failure::usage(format!(
            "--range {range:?} must be a revision range like A..B"
        )));
    }
    let format =
        format!("--format=%H%x1f%s%x1f%(trailers:key={TRAILER},valueonly,separator=%x1e)%x1d");
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["log", "--reverse", "--no-color", &format, range, "--"])
        .output()
        .map_err(|e| Failure::usage(format!("cannot run git: {e}; install git")))?;
    if !output.status.success() {
        return Err(Failure::usage(format!(
            "git log {range} in {} failed: {}",
            repo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut commits = Vec::new();
    for record in text.split('\u{1d}') {
        let record = record.trim_start_matches('\n');
        if record.trim().is_empty() {
            continue;
        }
        let mut fields = record.split('\u{1f}');
        let (Some(commit), Some(subject), trailers) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let trailers = trailers
            .unwrap_or("")
            .split('\u{1e}')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        commits.push(Commit {
            commit: commit.trim().to_owned(),
            subject: subject.to_owned(),
            trailers,
        });
    }
    Ok(commits)
}

/// Runs `syndicate git`.
///
/// # Errors
/// Exit 1 when a trailer names a request the chain does not hold; exit 2
/// for bad input, git failing, or an unusable store.
pub fn run(command: &GitCommand) -> CommandResult {
    match command {
        GitCommand::Link(args) => super::block_on(link(args)),
    }
}

async fn link(args: &LinkArgs) -> CommandResult {
    let commits = commits_in(&args.range.repo, &args.range.range)?;
    let store = args.store.open(Access::Existing).await?;
    let mut unknown = Vec::new();
    let (mut linked, mut already) = (0, 0);
    for commit in &commits {
        for request in &commit.trailers {
            let proposed = store
                .query(&Query {
                    kind: Some(EventKind::ActionProposed),
                    limit: 1,
                    ..Query::request(request.clone())
                })
                .await
                .map_err(|e| Failure::usage(format!("cannot read the store: {e}")))?;
            let Some(proposed) = proposed.first() else {
                unknown.push(format!("{} names {request}", short(&commit.commit)));
                continue;
            };
            let annotation = Annotation::commit(
                request.clone(),
                EventRef::to(proposed),
                CommitLink {
                    commit: commit.commit.clone(),
                    subject: Some(commit.subject.clone()),
                },
            );
            let draft = annotation
                .draft(
                    proposed.columns.session.clone(),
                    Actor::system(args.author.clone()),
                )
                .with_once(format!("commit:{request}:{}", commit.commit));
            match store.append(&[draft]).await {
                Ok(_) => linked += 1,
                Err(StoreError::AlreadyUsed { .. }) => already += 1,
                Err(e) => return Err(Failure::usage(format!("cannot record a link: {e}"))),
            }
        }
    }
    println!(
        "{} commits read; {linked} links recorded, {already} already recorded",
        commits.len()
    );
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Failure::broken(format!(
            "trailers name requests this chain does not hold: {}",
            unknown.join(", ")
        )))
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[derive(Debug, Serialize)]
struct CommitRow {
    commit: String,
    subject: String,
    /// Requests on the verified chain this commit carries.
    requests: Vec<String>,
    /// Trailers naming requests the chain does not hold.
    unknown_trailers: Vec<String>,
}

/// Requests whose commit or deployment annotations name each commit.
fn annotated(evidence: &Evidence) -> HashMap<String, BTreeSet<String>> {
    let mut map: HashMap<String, BTreeSet<String>> = HashMap::new();
    for c in &evidence.changes {
        let named = c
            .commits
            .iter()
            .map(|n| n.detail.commit.clone())
            .chain(c.deployments.iter().filter_map(|n| n.detail.commit.clone()));
        for commit in named {
            map.entry(commit.to_lowercase())
                .or_default()
                .insert(c.request_id.clone());
        }
    }
    map
}

pub(super) async fn commits(args: &CommitsArgs) -> CommandResult {
    let commits = commits_in(&args.range.repo, &args.range.range)?;
    let store = args.store.open(Access::ReadOnly).await?;
    let evidence = chain::load(store.as_ref(), "commit report").await?;
    let known: BTreeSet<&str> = evidence
        .changes
        .iter()
        .map(|c| c.request_id.as_str())
        .collect();
    let by_commit = annotated(&evidence);
    let rows: Vec<CommitRow> = commits
        .iter()
        .map(|commit| {
            let mut requests: BTreeSet<String> = commit
                .trailers
                .iter()
                .filter(|t| known.contains(t.as_str()))
                .cloned()
                .collect();
            for (named, ids) in &by_commit {
                // Deployments may name an abbreviated commit (7+ characters).
                if named.len() >= 7 && commit.commit.starts_with(named.as_str()) {
                    requests.extend(ids.iter().cloned());
                }
            }
            CommitRow {
                commit: commit.commit.clone(),
                subject: commit.subject.clone(),
                requests: requests.into_iter().collect(),
                unknown_trailers: commit
                    .trailers
                    .iter()
                    .filter(|t| !known.contains(t.as_str()))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    let without: Vec<&CommitRow> = rows.iter().filter(|r| r.requests.is_empty()).collect();
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Failure::usage(format!("cannot write standard output: {e}"));
    match args.format {
        TextFormat::Json => {
            let doc = serde_json::json!({
                "format": "syndicate-commits/v1",
                "integrity": evidence.integrity,
                "range": args.range.range,
                "commits": rows,
                "without_trail": without.iter().map(|r| &r.commit).collect::<Vec<_>>(),
            });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
            .map_err(io)?;
        }
        TextFormat::Text => {
            writeln!(
                out,
                "chain {} intact, head {}; {} commits in {}",
                evidence.integrity.chain,
                evidence
                    .integrity
                    .head_hash
                    .map_or_else(|| "-".into(), |h| h.to_string()),
                rows.len(),
                args.range.range
            )
            .map_err(io)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let requests = if r.requests.is_empty() {
                        "NO TRAIL".to_owned()
                    } else {
                        escape(&r.requests.join(", ")).into_owned()
                    };
                    let subject: String = escape(&r.subject).chars().take(50).collect();
                    vec![short(&r.commit).to_string(), subject, requests]
                })
                .collect();
            out.write_all(
                crate::terminal::table(&["COMMIT", "SUBJECT", "REQUESTS"], &cells).as_bytes(),
            )
            .map_err(io)?;
            if !without.is_empty() {
                writeln!(out, "\ncommits without a trail: {}", without.len()).map_err(io)?;
                for r in &without {
                    writeln!(out, "  {}  {}", r.commit, escape(&r.subject)).map_err(io)?;
                }
            }
        }
    }
    out.flush().map_err(io)?;
    if without.is_empty() {
        Ok(())
    } else {
        Err(Failure::broken(format!(
            "{} of {} commits have no trail (no Syndicate-Request trailer or link to a request on the chain)",
            without.len(),
            rows.len()
        )))
    }
}
