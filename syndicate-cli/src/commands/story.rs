//! The story check run by `syndicate audit verify` once the integrity check
//! passed: every execution follows an approval of the same digest, no
//! request starts twice, and so on (see `syndicate_core::story`).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use syndicate_core::story::{StoryChecker, StoryReport};
use syndicate_core::verify::VERIFY_PAGE;
use syndicate_core::{ChainId, Columns, Envelope, Event, Report, tags};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};

/// Checks the story of what `report` verified (up to its head) in a store
/// or a JSONL export, prints the outcome, and fails with exit 1 naming the
/// first violation's seq.
///
/// # Errors
/// A broken [`Failure`] (exit 1) for a story violation, a usage one (exit 2)
/// when the source cannot be read again.
pub async fn check(
    store: Option<&str>,
    jsonl: Option<&Path>,
    chain: Option<&ChainId>,
    report: &Report,
) -> CommandResult {
    let Some(head) = report.summary.head else {
        return Ok(());
    };
    if report.violation.is_some() {
        return Ok(());
    }
    let mut checker = StoryChecker::new();
    match (store, jsonl) {
        (Some(url), _) => {
            let url: StoreUrl = url.parse().map_err(Failure::usage)?;
            let store = open(&url, chain, Access::ReadOnly).await?;
            let mut next = 0;
            'pages: while next <= head.seq {
                let page = store
                    .read(next, VERIFY_PAGE)
                    .await
                    .map_err(|e| Failure::usage(format!("cannot read {url}: {e}")))?;
                let Some(last) = page.last() else { break };
                next = last.seq + 1;
                for event in &page {
                    if event.seq > head.seq {
                        break 'pages;
                    }
                    checker.check(event);
                }
            }
        }
        (None, Some(path)) => {
            let cannot =
                |e: std::io::Error| Failure::usage(format!("cannot read {}: {e}", path.display()));
            let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(cannot)?);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).map_err(cannot)? > 0 {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                // The integrity check already read every line as an envelope.
                let envelope: Envelope = serde_json::from_slice(&line)
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                checker.check(&Event {
                    seq: envelope.seq,
                    hash: syndicate_core::Digest::of_canonical(tags::EVENT, &line),
                    canonical: std::mem::take(&mut line),
                    columns: Columns::of(&envelope),
                });
            }
        }
        (None, None) => return Ok(()),
    }
    print(&checker.report())
}

fn print(story: &StoryReport) -> CommandResult {
    let mut out = std::io::stdout().lock();
    let written = if story.is_consistent() {
        writeln!(
            out,
            "story holds: {} requests ({} open); every execution follows an approval of its digest",
            story.requests, story.open_requests
        )
    } else {
        story
            .violations
            .iter()
            .try_for_each(|v| writeln!(out, "STORY VIOLATION at {v}"))
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))?;
    match story.violations.first() {
        None => Ok(()),
        Some(v) => Err(Failure::broken(format!(
            "the chain's story does not hold: {} violation(s), first at seq {} ({})",
            story.violations.len(),
            v.seq,
            v.rule.as_str()
        ))),
    }
}
