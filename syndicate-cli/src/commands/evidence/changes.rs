//! `syndicate audit changes`: one row per request, filtered and sampled,
//! as an aligned table, RFC 4180 CSV, JSON or Markdown.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;
use syndicate_core::Digest;
use syndicate_core::gate::glob_match;

use super::chain::{ApprovalRow, Change, Evidence, Integrity};
use super::parse_time;
use crate::exit::Failure;
use crate::terminal::escape;

/// Output formats of `audit changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangesFormat {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180 CSV, one row per change, safe to open in a spreadsheet.
    Csv,
    /// The documented JSON form (FORMAT.md, `syndicate-changes/v1`).
    Json,
    /// A Markdown report with the integrity verdict at the top.
    Md,
}

/// Which changes to report.
#[derive(Debug, Clone, Default, Args)]
pub struct Filters {
    /// Changes proposed at or after this instant (`2026-11-23T10:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Changes proposed strictly before this instant.
    #[arg(long)]
    pub until: Option<String>,
    /// Changes in this control's scope: a tag equal to it, or under it
    /// (`PCI-DSS-4.0:6.2` takes `PCI-DSS-4.0:6.2.3`). Repeatable: any.
    #[arg(long)]
    pub control: Vec<String>,
    /// Changes of this risk tier. Repeatable: any.
    #[arg(long)]
    pub risk: Vec<String>,
    /// Changes with this outcome (succeeded, failed, running, denied,
    /// expired, refused, approved, pending). Repeatable: any.
    #[arg(long)]
    pub outcome: Vec<String>,
    /// Changes proposed by this requester.
    #[arg(long)]
    pub requester: Option<String>,
    /// Changes approved by this approver.
    #[arg(long)]
    pub approver: Option<String>,
    /// Changes proposed by this model (its name or provider).
    #[arg(long)]
    pub model: Option<String>,
    /// Changes whose tool matches this glob (`*` any run, `?` one character).
    #[arg(long)]
    pub tool: Option<String>,
    /// Changes whose target matches this glob.
    #[arg(long)]
    pub target: Option<String>,
    /// Changes of this session.
    #[arg(long)]
    pub session: Option<String>,
}

/// Whether a control tag is in the scope of the control asked for.
pub fn in_scope(tag: &str, control: &str) -> bool {
    tag == control
        || tag
            .strip_prefix(control)
            .is_some_and(|rest| rest.starts_with(['.', ':', '-']))
}

const OUTCOMES: &[&str] = &[
    "succeeded",
    "failed",
    "running",
    "denied",
    "expired",
    "refused",
    "approved",
    "pending",
];
const RISKS: &[&str] = &["low", "medium", "high", "critical"];

impl Filters {
    /// Checks the filters' values.
    ///
    /// # Errors
    /// A usage failure naming the flag and what it accepts.
    pub fn validate(&self) -> Result<(), Failure> {
        for (flag, t) in [("--since", &self.since), ("--until", &self.until)] {
            if let Some(t) = t {
                parse_time(flag, t)?;
            }
        }
        if let Some(bad) = self
            .outcome
            .iter()
            .find(|o| !OUTCOMES.contains(&o.as_str()))
        {
            return Err(Failure::usage(format!(
                "--outcome {bad:?} is not one of {}",
                OUTCOMES.join(", ")
            )));
        }
        if let Some(bad) = self.risk.iter().find(|r| !RISKS.contains(&r.as_str())) {
            return Err(Failure::usage(format!(
                "--risk {bad:?} is not one of {}",
                RISKS.join(", ")
            )));
        }
        Ok(())
    }

    /// Whether a change passes every filter given.
    pub fn keep(&self, c: &Change) -> bool {
        let time_ok = |bound: &Option<String>, before: bool| {
            bound
                .as_deref()
                .and_then(|t| parse_time("", t).ok())
                .is_none_or(|t| {
                    let t = t.to_string();
                    if before {
                        c.proposed_at < t
                    } else {
                        c.proposed_at >= t
                    }
                })
        };
        time_ok(&self.since, false)
            && time_ok(&self.until, true)
            && (self.control.is_empty()
                || c.controls
                    .iter()
                    .any(|tag| self.control.iter().any(|want| in_scope(tag, want))))
            && (self.risk.is_empty() || self.risk.contains(&c.risk))
            && (self.outcome.is_empty() || self.outcome.contains(&c.outcome))
            && self.requester.as_ref().is_none_or(|r| *r == c.requester)
            && self
                .approver
                .as_ref()
                .is_none_or(|a| c.approvals.iter().any(|x| x.approver == *a))
            && self.model.as_ref().is_none_or(|m| {
                c.model
                    .as_ref()
                    .is_some_and(|info| info.name == *m || info.provider.as_deref() == Some(m))
            })
            && self.tool.as_ref().is_none_or(|g| glob_match(g, &c.tool))
            && self
                .target
                .as_ref()
                .is_none_or(|g| glob_match(g, c.target.as_deref().unwrap_or("")))
            && self.session.as_ref().is_none_or(|s| *s == c.session)
    }
}

/// A reproducible sample of `n` changes for `seed`: the `n` whose
/// `SHA-256("syndicate:sample:v1" || 0x00 || seed || 0x00 || request_id)`
/// are smallest, returned in proposal order. Any implementation draws the
/// same sample; adding changes outside it never reorders it.
pub fn sample(changes: Vec<Change>, n: usize, seed: &str) -> Vec<Change> {
    let mut keyed: Vec<(Digest, usize, Change)> = changes
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut input = seed.as_bytes().to_vec();
            input.push(0);
            input.extend_from_slice(c.request_id.as_bytes());
            (Digest::of_canonical(SAMPLE_TAG, &input), i, c)
        })
        .collect();
    keyed.sort_by_key(|k| k.0);
    keyed.truncate(n);
    keyed.sort_by_key(|k| k.1);
    keyed.into_iter().map(|k| k.2).collect()
}

/// Domain-separation tag of the sampling digest.
pub const SAMPLE_TAG: &str = "syndicate:sample:v1";

/// The JSON document of `audit changes --format json`.
#[derive(Debug, Serialize)]
pub struct ChangesDoc<'a> {
    /// `syndicate-changes/v1`.
    pub format: &'static str,
    /// The verdict over the whole chain.
    pub integrity: &'a Integrity,
    /// Whose keys judged approval signatures: `policy` (the approvers of
    /// the policy in force at each approval) or `trusted_keys`.
    pub signatures_judged_by: &'static str,
    /// The filters given.
    pub filters: FiltersDoc<'a>,
    /// The sample drawn, if any.
    pub sample: Option<SampleDoc<'a>>,
    /// Changes matching the filters, before sampling.
    pub matched: usize,
    /// The rows.
    pub changes: &'a [Change],
}

/// The filters as given.
#[derive(Debug, Serialize)]
pub struct FiltersDoc<'a> {
    since: Option<&'a str>,
    until: Option<&'a str>,
    control: &'a [String],
    risk: &'a [String],
    outcome: &'a [String],
    requester: Option<&'a str>,
    approver: Option<&'a str>,
    model: Option<&'a str>,
    tool: Option<&'a str>,
    target: Option<&'a str>,
    session: Option<&'a str>,
}

impl<'a> FiltersDoc<'a> {
    /// The filters.
    pub fn of(f: &'a Filters) -> Self {
        FiltersDoc {
            since: f.since.as_deref(),
            until: f.until.as_deref(),
            control: &f.control,
            risk: &f.risk,
            outcome: &f.outcome,
            requester: f.requester.as_deref(),
            approver: f.approver.as_deref(),
            model: f.model.as_deref(),
            tool: f.tool.as_deref(),
            target: f.target.as_deref(),
            session: f.session.as_deref(),
        }
    }
}

/// The sample drawn.
#[derive(Debug, Serialize)]
pub struct SampleDoc<'a> {
    /// How many were asked for.
    pub n: usize,
    /// The seed.
    pub seed: &'a str,
}

/// CSV header and table columns.
pub const COLUMNS: &[&str] = &[
    "request_id",
    "proposed_at",
    "requester",
    "session",
    "model",
    "model_version",
    "model_provider",
    "trigger",
    "prompt",
    "tool",
    "target",
    "action_digest",
    "risk",
    "rule",
    "controls",
    "approvers",
    "outcome",
    "refusals",
    "drift_attempts",
    "result_digest",
    "tests",
    "review",
    "deployment",
    "rollback",
    "corrections",
    "first_seq",
    "last_seq",
];

/// One change as the cells of [`COLUMNS`], not yet neutralized.
pub fn cells(c: &Change) -> Vec<String> {
    let join = |v: Vec<String>| v.join("; ");
    let model = c.model.as_ref();
    vec![
        c.request_id.clone(),
        c.proposed_at.clone(),
        c.requester.clone(),
        c.session.clone(),
        model.map(|m| m.name.clone()).unwrap_or_default(),
        model.and_then(|m| m.version.clone()).unwrap_or_default(),
        model.and_then(|m| m.provider.clone()).unwrap_or_default(),
        c.trigger.clone().unwrap_or_default(),
        c.prompt.clone().unwrap_or_default(),
        c.tool.clone(),
        c.target.clone().unwrap_or_default(),
        c.action_digest.to_string(),
        c.risk.clone(),
        c.rule.clone().unwrap_or_default(),
        c.controls.join("; "),
        join(
            c.approvals
                .iter()
                .map(|a| {
                    let other = if a.digest_matches {
                        ""
                    } else {
                        " (other digest)"
                    };
                    format!("{} at {} [{}]{other}", a.approver, a.at, signature_label(a))
                })
                .collect(),
        ),
        c.outcome.clone(),
        join(
            c.refusals
                .iter()
                .map(|r| format!("{}: {} (seq {})", r.kind, r.reason, r.seq))
                .collect(),
        ),
        c.drift_attempts.to_string(),
        c.completion
            .as_ref()
            .and_then(|d| d.result_digest)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        join(
            c.tests
                .iter()
                .map(|t| {
                    format!(
                        "{}: {} passed, {} failed, {} skipped",
                        t.detail.suite, t.detail.passed, t.detail.failed, t.detail.skipped
                    )
                })
                .collect(),
        ),
        join(
            c.reviews
                .iter()
                .map(|r| format!("{} by {}", r.detail.verdict.as_str(), r.detail.reviewer))
                .collect(),
        ),
        join(
            c.deployments
                .iter()
                .map(|d| {
                    let commit = d.detail.commit.as_deref().unwrap_or("?");
                    format!("{} to {}", short(commit, 12), d.detail.environment)
                })
                .collect(),
        ),
        join(
            c.rollbacks
                .iter()
                .map(|r| r.detail.reason.clone())
                .collect(),
        ),
        join(
            c.corrections
                .iter()
                .map(|r| {
                    format!(
                        "{} corrected to {} (seq {})",
                        r.detail.field, r.detail.corrected, r.refers_to_seq
                    )
                })
                .collect(),
        ),
        c.first_seq.to_string(),
        c.last_seq.to_string(),
    ]
}

/// The signature status of an approval for a cell: `unsigned`,
/// `signed <key id>, verified`, `signed <key id>, INVALID: why`, or
/// `signed <key id>, unchecked: why`.
pub fn signature_label(a: &ApprovalRow) -> String {
    let key = a.key_id.as_deref().unwrap_or("?");
    match (a.signature, &a.signature_detail) {
        ("unsigned", _) => "unsigned".to_owned(),
        ("verified", _) => format!("signed {key}, verified"),
        ("invalid", Some(why)) => format!("signed {key}, INVALID: {why}"),
        (status, Some(why)) => format!("signed {key}, {status}: {why}"),
        (status, None) => format!("signed {key}, {status}"),
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Neutralizes a cell a spreadsheet would run as a formula: one starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`.
pub fn neutralize(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// Writes the report.
///
/// # Errors
/// A usage failure when the output cannot be written.
pub fn render(
    out: &mut dyn Write,
    format: ChangesFormat,
    evidence: &Evidence,
    filters: &Filters,
    sample: Option<SampleDoc<'_>>,
    matched: usize,
    rows: &[Change],
) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::usage(format!("cannot write the report: {e}"));
    match format {
        ChangesFormat::Json => {
            let doc = ChangesDoc {
                format: "syndicate-changes/v1",
                integrity: &evidence.integrity,
                signatures_judged_by: evidence.judged_by,
                filters: FiltersDoc::of(filters),
                sample,
                matched,
                changes: rows,
            };
            serde_json::to_writer_pretty(&mut *out, &doc)
                .map_err(|e| Failure::usage(format!("cannot write the report: {e}")))?;
            writeln!(out).map_err(io)
        }
        ChangesFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(&mut *out);
            let csv_err = |e: csv::Error| Failure::usage(format!("cannot write the report: {e}"));
            writer.write_record(COLUMNS).map_err(csv_err)?;
            for c in rows {
                let record: Vec<String> = cells(c).iter().map(|s| neutralize(s)).collect();
                writer.write_record(&record).map_err(csv_err)?;
            }
            writer.flush().map_err(io)
        }
        ChangesFormat::Table => table(out, rows).map_err(io),
        ChangesFormat::Md => {
            markdown(out, evidence, filters, sample.as_ref(), matched, rows).map_err(io)
        }
    }
}

const TABLE: &[(&str, usize)] = &[
    ("REQUEST", 0),
    ("PROPOSED", 1),
    ("REQUESTER", 2),
    ("TRIGGER", 7),
    ("TOOL", 9),
    ("TARGET", 10),
    ("RISK", 12),
    ("APPROVERS", 15),
    ("OUTCOME", 16),
    ("TESTS", 20),
    ("REVIEW", 21),
    ("DEPLOY", 22),
    ("SEQ", 25),
];

fn table(out: &mut dyn Write, rows: &[Change]) -> std::io::Result<()> {
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let all = cells(c);
            TABLE
                .iter()
                .map(|(name, i)| match *name {
                    "SEQ" => format!("{}..{}", c.first_seq, c.last_seq),
                    // Never shortened: an auditor copies them into `audit replay`.
                    "REQUEST" | "PROPOSED" => escape(&all[*i]).into_owned(),
                    "APPROVERS" => c
                        .approvals
                        .iter()
                        .map(|a| {
                            let key = a.key_id.as_deref().unwrap_or("?");
                            let mark = match a.signature {
                                "unsigned" => "unsigned".to_owned(),
                                "invalid" => format!("INVALID {key}"),
                                other => format!("{other} {key}"),
                            };
                            format!("{} ({mark})", escape(&a.approver))
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    // Stored text, chosen by agents and people: escaped.
                    _ => short(&escape(&all[*i].replace(['\n', '\r', '\t'], " ")), 32),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = TABLE
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            grid.iter()
                .map(|r| r[i].chars().count())
                .chain([name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, TABLE.iter().map(|(n, _)| *n).collect())?;
    for row in &grid {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// A Markdown table cell: `\\` and `|` escaped, line breaks as spaces, and
/// `<`, `>` and `&` as entities so stored text cannot become HTML in a
/// renderer.
fn md_cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn markdown(
    out: &mut dyn Write,
    evidence: &Evidence,
    filters: &Filters,
    sample: Option<&SampleDoc<'_>>,
    matched: usize,
    rows: &[Change],
) -> std::io::Result<()> {
    let i = &evidence.integrity;
    writeln!(out, "# Changes on chain `{}`\n", i.chain)?;
    writeln!(
        out,
        "**Integrity: {}** — {} events verified, head seq {}, head hash `{}`, {} .. {}\n",
        i.verdict.to_uppercase(),
        i.events,
        i.head_seq.map_or_else(|| "-".into(), |s| s.to_string()),
        i.head_hash.map_or_else(|| "-".into(), |h| h.to_string()),
        i.first_at.as_deref().unwrap_or("-"),
        i.last_at.as_deref().unwrap_or("-"),
    )?;
    let filters_json = serde_json::to_string(&FiltersDoc::of(filters)).unwrap_or_default();
    writeln!(out, "Filters: `{filters_json}`; {matched} changes matched.")?;
    if let Some(s) = sample {
        writeln!(
            out,
            "Sample: {} drawn with seed `{}` (`syndicate audit changes --sample {} --seed {}` draws it again).",
            rows.len(),
            s.seed,
            s.n,
            s.seed
        )?;
    }
    writeln!(out)?;
    let md_columns = [
        0usize, 1, 2, 4, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24,
    ];
    let header: Vec<&str> = md_columns.iter().map(|i| COLUMNS[*i]).collect();
    writeln!(out, "| {} | seq |", header.join(" | "))?;
    writeln!(out, "|{}---|", "---|".repeat(header.len()))?;
    for c in rows {
        let all = cells(c);
        let row: Vec<String> = md_columns.iter().map(|i| md_cell(&all[*i])).collect();
        writeln!(
            out,
            "| {} | {}..{} |",
            row.join(" | "),
            c.first_seq,
            c.last_seq
        )?;
    }
    writeln!(
        out,
        "\nEvery value above is read from the verified chain; `syndicate audit replay REQUEST_ID` shows each change event by event with its seq and hash."
    )
}
