//! `syndicate annotate REQUEST_ID review|test|deploy|rollback|correct`:
//! record what happened to a change after the gate, as new events.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use quick_xml::events::Event as XmlEvent;
use serde_json::Value;
use syndicate_core::annotation::{
    Annotation, Correction, Deployment, EventRef, REPORT_TAG, Review, Rollback, TestRun, Verdict,
};
use syndicate_core::{Actor, Digest, Event, EventKind, EventStore, Query};

use super::StoreArgs;
use crate::exit::{CommandResult, Failure};
use crate::store_url::Access;

/// `syndicate annotate`.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The request the annotation is about.
    pub request_id: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Who is writing it (the event's actor).
    #[arg(long, value_name = "ID")]
    pub author: String,
    /// A free-text note.
    #[arg(long)]
    pub note: Option<String>,
    /// What to record.
    #[command(subcommand)]
    pub what: AnnotateCommand,
}

/// Review verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    /// Fine.
    Approved,
    /// Needs work.
    ChangesRequested,
    /// Should not have happened.
    Rejected,
}

/// What an annotation records.
#[derive(Debug, Subcommand)]
pub enum AnnotateCommand {
    /// A review of the change.
    Review {
        /// The verdict.
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        /// The reviewer (default: the author).
        #[arg(long)]
        reviewer: Option<String>,
        /// What they said.
        #[arg(long)]
        comments: Option<String>,
        /// They read the agent's reasoning.
        #[arg(long)]
        read_reasoning: bool,
    },
    /// A test run: counts given, or read from a JUnit XML report.
    Test {
        /// A JUnit XML report to import (counts, suite name and digest).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["passed", "failed", "skipped"])]
        junit: Option<PathBuf>,
        /// The suite's name (default: the report's).
        #[arg(long)]
        suite: Option<String>,
        /// Tests passed.
        #[arg(long, required_unless_present = "junit")]
        passed: Option<u64>,
        /// Tests failed.
        #[arg(long, default_value_t = 0)]
        failed: u64,
        /// Tests skipped.
        #[arg(long, default_value_t = 0)]
        skipped: u64,
        /// Line coverage in percent.
        #[arg(long)]
        coverage: Option<f64>,
        /// Where the report is kept (path or URL; default: the --junit path).
        #[arg(long)]
        report: Option<String>,
    },
    /// A deployment.
    Deploy {
        /// The git commit deployed.
        #[arg(long)]
        commit: Option<String>,
        /// Its branch.
        #[arg(long)]
        branch: Option<String>,
        /// The environment.
        #[arg(long, default_value = "production")]
        environment: String,
        /// When, by the deployer's clock (default: not recorded; the event's
        /// own time is the store's).
        #[arg(long)]
        at: Option<String>,
    },
    /// A rollback.
    Rollback {
        /// Why.
        #[arg(long)]
        reason: String,
        /// The commit rolled back to.
        #[arg(long)]
        commit: Option<String>,
        /// Where.
        #[arg(long)]
        environment: Option<String>,
    },
    /// A correction of an earlier event of the request (which stays).
    Correct {
        /// The seq of the event corrected (default: the proposal).
        #[arg(long)]
        event: Option<u64>,
        /// What was wrong, e.g. `context.trigger`.
        #[arg(long)]
        field: String,
        /// The corrected value, as JSON (a bare word is taken as a string).
        #[arg(long)]
        value: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Runs `syndicate annotate`.
///
/// # Errors
/// Exit 2 for bad input, an unknown request or event, or an unusable store.
pub fn run(args: &AnnotateArgs) -> CommandResult {
    super::block_on(annotate(args))
}

async fn request_events(store: &dyn EventStore, request_id: &str) -> Result<Vec<Event>, Failure> {
    let mut events = Vec::new();
    let mut query = Query::request(request_id);
    loop {
        let page = store
            .query(&query)
            .await
            .map_err(|e| Failure::usage(format!("cannot read the store: {e}")))?;
        let Some(last) = page.last() else { break };
        query.after_seq = Some(last.seq);
        let full = page.len() == query.limit;
        events.extend(page);
        if !full {
            break;
        }
    }
    Ok(events)
}

fn last_of(events: &[Event], kind: EventKind) -> Option<&Event> {
    events
        .iter()
        .rev()
        .find(|e| e.columns.kind == kind.as_str())
}

async fn annotate(args: &AnnotateArgs) -> CommandResult {
    // The author is the event's actor: a visible identity, like any other.
    syndicate_core::identity::check(&args.author)
        .map_err(|e| Failure::usage(format!("--author: {e}")))?;
    let store = args.store.open(Access::Existing).await?;
    let events = request_events(store.as_ref(), &args.request_id).await?;
    let Some(proposed) = last_of(&events, EventKind::ActionProposed) else {
        return Err(Failure::usage(format!(
            "no request {:?} on this chain; list them with `syndicate audit changes`",
            args.request_id
        )));
    };
    let session = proposed.columns.session.clone();
    // What ran, if it ran; else the proposal.
    let outcome = last_of(&events, EventKind::ExecutionCompleted).unwrap_or(proposed);
    let id = args.request_id.clone();
    let annotation = match &args.what {
        AnnotateCommand::Review {
            verdict,
            reviewer,
            comments,
            read_reasoning,
        } => Annotation::review(
            id,
            EventRef::to(proposed),
            Review {
                reviewer: reviewer.clone().unwrap_or_else(|| args.author.clone()),
                verdict: match verdict {
                    VerdictArg::Approved => Verdict::Approved,
                    VerdictArg::ChangesRequested => Verdict::ChangesRequested,
                    VerdictArg::Rejected => Verdict::Rejected,
                },
                comments: comments.clone(),
                read_reasoning: *read_reasoning,
            },
        ),
        AnnotateCommand::Test {
            junit,
            suite,
            passed,
            failed,
            skipped,
            coverage,
            report,
        } => {
            if let Some(c) = coverage
                && !(0.0..=100.0).contains(c)
            {
                return Err(Failure::usage(format!(
                    "--coverage {c} must be a percentage from 0 to 100"
                )));
            }
            let run = match junit {
                Some(path) => {
                    let mut run = import_junit(path)?;
                    if let Some(s) = suite {
                        run.suite = s.clone();
                    }
                    run.coverage_percent = *coverage;
                    run.report = Some(report.clone().unwrap_or_else(|| path.display().to_string()));
                    run
                }
                None => TestRun {
                    suite: suite.clone().unwrap_or_else(|| "tests".into()),
                    passed: passed.unwrap_or(0),
                    failed: *failed,
                    skipped: *skipped,
                    coverage_percent: *coverage,
                    report_digest: None,
                    report: report.clone(),
                },
            };
            Annotation::test(id, EventRef::to(outcome), run)
        }
        AnnotateCommand::Deploy {
            commit,
            branch,
            environment,
            at,
        } => {
            let deployed_at = at
                .as_deref()
                .map(|t| super::parse_time("--at", t))
                .transpose()?;
            Annotation::deployment(
                id,
                EventRef::to(outcome),
                Deployment {
                    commit: commit.clone(),
                    branch: branch.clone(),
                    environment: environment.clone(),
                    deployed_at,
                },
            )
        }
        AnnotateCommand::Rollback {
            reason,
            commit,
            environment,
        } => {
            // A rollback is about the last deployment, when there was one.
            let deployed = events.iter().rev().find(|e| {
                e.columns.kind == EventKind::Annotation.as_str()
                    && Annotation::of_event(e).is_ok_and(|a| a.detail.type_name() == "deployment")
            });
            Annotation::rollback(
                id,
                EventRef::to(deployed.unwrap_or(outcome)),
                Rollback {
                    reason: reason.clone(),
                    commit: commit.clone(),
                    environment: environment.clone(),
                },
            )
        }
        AnnotateCommand::Correct {
            event,
            field,
            value,
            reason,
        } => {
            let target = match event {
                None => proposed,
                Some(seq) => events.iter().find(|e| e.seq == *seq).ok_or_else(|| {
                    Failure::usage(format!(
                        "event {seq} is not an event of request {}; see `syndicate audit replay {}`",
                        args.request_id, args.request_id
                    ))
                })?,
            };
            let corrected = serde_json::from_str::<Value>(value)
                .unwrap_or_else(|_| Value::String(value.clone()));
            Annotation::correction(
                Some(id),
                EventRef::to(target),
                Correction {
                    field: field.clone(),
                    corrected,
                    reason: reason.clone(),
                },
            )
        }
    };
    let annotation = match &args.note {
        Some(note) => annotation.with_note(note.clone()),
        None => annotation,
    };
    let author = Actor::human(args.author.clone());
    let written = store
        .append(&[annotation.draft(session, author)])
        .await
        .map_err(|e| Failure::usage(format!("cannot record the annotation: {e}")))?;
    if let Some(event) = written.first() {
        println!(
            "recorded {} annotation for {} at seq {} (hash {}), about seq {}",
            annotation.detail.type_name(),
            args.request_id,
            event.seq,
            event.hash,
            annotation.refers_to.seq
        );
    }
    Ok(())
}

/// Reads a JUnit XML report: one run, summed over its `<testcase>`s (a
/// case with `<failure>` or `<error>` failed, with `<skipped>` was skipped,
/// else passed); the suite is the first `<testsuite>`'s (or
/// `<testsuites>`'s) `name`; the digest is over the file's bytes.
///
/// # Errors
/// A usage failure when the file cannot be read or is not JUnit XML.
pub fn import_junit(path: &Path) -> Result<TestRun, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    parse_junit(&bytes).map_err(|reason| {
        Failure::usage(format!(
            "{} is not a JUnit XML report: {reason}",
            path.display()
        ))
    })
}

/// [`import_junit`] over bytes.
///
/// # Errors
/// Why the bytes are not a JUnit XML report.
pub fn parse_junit(bytes: &[u8]) -> Result<TestRun, String> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let mut suite: Option<String> = None;
    let mut seen_root = false;
    // State of the open <testcase>: Some(verdict) while inside one.
    let mut case: Option<u8> = None;
    let close_case = |case: u8, passed: &mut u64, failed: &mut u64, skipped: &mut u64| match case {
        1 => *failed += 1,
        2 => *skipped += 1,
        _ => *passed += 1,
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            XmlEvent::Start(ref e) | XmlEvent::Empty(ref e) => {
                let empty = matches!(event, XmlEvent::Empty(_));
                let name = e.name();
                let name = name.as_ref();
                if !seen_root {
                    if name != b"testsuites" && name != b"testsuite" {
                        return Err(format!(
                            "the root element is <{}>, not <testsuites> or <testsuite>",
                            String::from_utf8_lossy(name)
                        ));
                    }
                    seen_root = true;
                }
                match name {
                    b"testsuite" | b"testsuites" if suite.is_none() => {
                        for attr in e.attributes().flatten() {
                            if attr.key.as_ref() == b"name" {
                                let value = attr
                                    .unescape_value()
                                    .map_err(|e| format!("bad name attribute: {e}"))?;
                                suite = Some(value.into_owned());
                            }
                        }
                    }
                    b"testcase" => {
                        if empty {
                            passed += 1;
                        } else {
                            case = Some(0);
                        }
                    }
                    b"failure" | b"error" => {
                        if let Some(c) = case.as_mut() {
                            *c = 1;
                        }
                    }
                    b"skipped" => {
                        if let Some(c) = case.as_mut()
                            && *c == 0
                        {
                            *c = 2;
                        }
                    }
                    _ => {}
                }
            }
            XmlEvent::End(ref e) if e.name().as_ref() == b"testcase" => {
                if let Some(c) = case.take() {
                    close_case(c, &mut passed, &mut failed, &mut skipped);
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err("no <testsuites> or <testsuite> element".into());
    }
    Ok(TestRun {
        suite: suite.unwrap_or_else(|| "junit".into()),
        passed,
        failed,
        skipped,
        coverage_percent: None,
        report_digest: Some(Digest::of_canonical(REPORT_TAG, bytes)),
        report: None,
    })
}
