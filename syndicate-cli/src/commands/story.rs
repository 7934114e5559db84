//! The story `syndicate audit verify` reports once the integrity check
//! passed: every execution follows an approval of the same digest, no
//! request starts twice, and so on (see `syndicate_core::story`).

use std::io::Write;

use syndicate_core::Report;
use syndicate_core::story::StoryReport;

use crate::exit::{CommandResult, Failure};

/// Prints the story of what `report` verified (checked in the same pass)
/// and fails with exit 1 naming the first violation's seq; nothing when the
/// chain is empty or its integrity already failed.
///
/// # Errors
/// A broken [`Failure`] (exit 1) for a story violation.
pub fn print_for(report: &Report, story: &StoryReport) -> CommandResult {
    if report.summary.head.is_none() || report.violation.is_some() {
        return Ok(());
    }
    print(story)
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
        story.violations.iter().try_for_each(|v| {
            writeln!(
                out,
                "STORY VIOLATION at {}",
                crate::terminal::escape(&v.to_string())
            )
        })
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
