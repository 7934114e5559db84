//! `syndicate audit report`: what an auditor asks first — is the record
//! intact, who approved what, what ran, what was refused, under which policy.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use syndicate_core::scan::scan_verified;
use syndicate_core::story::StoryChecker;
use syndicate_core::{ChainId, EventKind, EventStore, Verifier};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};

/// `syndicate audit report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// Text for people, or JSON for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Where the report goes, and its signature.
    #[command(flatten)]
    pub output: super::signed_report::OutputArgs,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Readable text.
    Text,
    /// One JSON object.
    Json,
}

/// The report: integrity, the story, and counts an auditor asks for.
#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    /// `syndicate-report/v1`.
    pub format: &'static str,
    /// The chain reported on.
    pub chain: String,
    /// Events read.
    pub events: u64,
    /// `at` of the first and last event: `[first, last]`, `null` when empty.
    pub span: Option<(String, String)>,
    /// Hash of the last event.
    pub head: Option<String>,
    /// `null` when every hash, link and column holds; otherwise the first violation.
    pub integrity_violation: Option<String>,
    /// The story violations (execution without approval, and so on).
    pub story_violations: Vec<String>,
    /// Events per kind.
    pub kinds: BTreeMap<String, u64>,
    /// Proposals per risk tier.
    pub proposals_by_risk: BTreeMap<String, u64>,
    /// Approvals per approver (policy rules appear as `policy:<rule>`).
    pub approvals_by_approver: BTreeMap<String, u64>,
    /// Persons' approvals per signing key (`<approver>+<key id>`), and
    /// `unsigned` for those without a signed decision.
    pub approvals_by_key: BTreeMap<String, u64>,
    /// Executions that completed, per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Refused executions, per reason (`digest_mismatch` included).
    pub refused_executions: BTreeMap<String, u64>,
    /// Refused approval attempts, per reason.
    pub refused_approvals: BTreeMap<String, u64>,
    /// Compliance controls named on proposals, with counts.
    pub controls: BTreeMap<String, u64>,
    /// Every policy activation: seq, id, version, digest, at.
    pub policies: Vec<PolicyLine>,
    /// Every `gate.degraded` and `gate.recovered`: seq, kind, at, operator, reason.
    pub gate_status: Vec<StatusLine>,
}

/// One policy activation.
#[derive(Debug, Serialize)]
pub struct PolicyLine {
    /// Its seq.
    pub seq: u64,
    /// Policy id.
    pub id: String,
    /// Policy version.
    pub version: String,
    /// Policy digest.
    pub digest: String,
    /// When.
    pub at: String,
}

/// One change of the gate's state.
#[derive(Debug, Serialize)]
pub struct StatusLine {
    /// Its seq.
    pub seq: u64,
    /// `gate.degraded` or `gate.recovered`.
    pub kind: String,
    /// When.
    pub at: String,
    /// Who.
    pub operator: String,
    /// Why.
    pub reason: String,
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

fn bump(map: &mut BTreeMap<String, u64>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

/// Reads the whole chain once to build the report (integrity is checked by
/// its own streaming pass first).
///
/// # Errors
/// A usage [`Failure`] when the store cannot be read.
pub async fn build(store: &dyn EventStore) -> Result<AuditReport, Failure> {
    let unreadable =
        |e: syndicate_core::StoreError| Failure::usage(format!("cannot read the store: {e}"));
    let mut report = AuditReport {
        format: "syndicate-report/v1",
        chain: store.chain().to_string(),
        ..AuditReport::default()
    };
    let mut story = StoryChecker::new();
    let mut first_at = None;
    // Integrity and story in one pass over the same bytes: only events that
    // verified are counted.
    let verifier = Verifier::new(store.chain().clone());
    let len = match store.head().await {
        Ok(head) => head.map_or(0, |h| h.seq + 1),
        // An unreadable head row: the scan reports it.
        Err(_) => 0,
    };
    let bar = crate::progress::bar(len, "verifying");
    let end = scan_verified(store, verifier, None, |event| {
        bar.inc(1);
        story.check(event);
        report.events += 1;
        first_at.get_or_insert_with(|| event.columns.at.clone());
        report.span = Some((
            first_at.clone().unwrap_or_default(),
            event.columns.at.clone(),
        ));
        report.head = Some(event.hash.to_string());
        bump(&mut report.kinds, event.columns.kind.clone());
        tally(&mut report, event);
    })
    .await
    .map_err(unreadable)?;
    bar.finish_and_clear();
    report.integrity_violation = end.violation.as_ref().map(ToString::to_string);
    report.story_violations = story
        .report()
        .violations
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(report)
}

/// Counts one verified event into the report's tables.
fn tally(report: &mut AuditReport, event: &syndicate_core::Event) {
    let Ok(envelope) = event.envelope() else {
        return;
    };
    let body = &envelope.body;
    match envelope.kind {
        EventKind::ActionProposed => {
            bump(&mut report.proposals_by_risk, text(body, "risk_tier"));
            for control in body
                .get("controls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(control) = control.as_str() {
                    bump(&mut report.controls, control);
                }
            }
        }
        EventKind::ActionApproved => {
            let who = match body.get("method").and_then(Value::as_str) {
                Some("policy") => format!("policy:{}", text(body, "rule")),
                _ => text(body, "approver"),
            };
            if body.get("method").and_then(Value::as_str) != Some("policy") {
                let key = match body.pointer("/signed/key_id").and_then(Value::as_str) {
                    Some(key) => format!("{}+{key}", text(body, "approver")),
                    None => "unsigned".to_owned(),
                };
                bump(&mut report.approvals_by_key, key);
            }
            bump(&mut report.approvals_by_approver, who);
        }
        EventKind::ExecutionCompleted => bump(&mut report.outcomes, text(body, "outcome")),
        EventKind::ExecutionRejected => bump(&mut report.refused_executions, text(body, "reason")),
        EventKind::ExecutionDigestMismatch => {
            bump(&mut report.refused_executions, "digest_mismatch")
        }
        EventKind::ApprovalRefused => bump(&mut report.refused_approvals, text(body, "reason")),
        EventKind::PolicyActivated => {
            let policy = body.get("policy").cloned().unwrap_or(Value::Null);
            report.policies.push(PolicyLine {
                seq: event.seq,
                id: text(&policy, "id"),
                version: text(&policy, "version"),
                digest: text(&policy, "digest"),
                at: event.columns.at.clone(),
            });
        }
        EventKind::GateDegraded | EventKind::GateRecovered => report.gate_status.push(StatusLine {
            seq: event.seq,
            kind: envelope.kind.to_string(),
            at: event.columns.at.clone(),
            operator: text(body, "operator"),
            reason: text(body, "reason"),
        }),
        _ => {}
    }
}

fn write_counts(out: &mut String, title: &str, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        out.push_str(&format!("{title}: none\n"));
        return;
    }
    out.push_str(&format!("{title}:\n"));
    for (key, count) in counts {
        out.push_str(&format!("  {count:>8}  {key}\n"));
    }
}

/// The report as readable text.
pub fn render_text(report: &AuditReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("audit report for chain \"{}\"\n", report.chain));
    out.push_str(&format!("events: {}\n", report.events));
    match &report.span {
        Some((first, last)) => out.push_str(&format!(
            "time span: {first} .. {last} (first and last event; nothing before or after is in this chain)\n"
        )),
        None => out.push_str("time span: none (no events)\n"),
    }
    if let Some(head) = &report.head {
        out.push_str(&format!("head: {head}\n"));
    }
    match &report.integrity_violation {
        None => out.push_str("integrity: intact (every hash, link, seq, time and column holds)\n"),
        Some(v) => out.push_str(&format!("integrity: BROKEN at {v}\n")),
    }
    if report.story_violations.is_empty() {
        out.push_str("story: consistent (every execution follows an approval of its digest)\n");
    } else {
        out.push_str(&format!(
            "story: {} violation(s)\n",
            report.story_violations.len()
        ));
        for v in &report.story_violations {
            out.push_str(&format!("  {v}\n"));
        }
    }
    if report.policies.is_empty() {
        out.push_str("policies: none activated\n");
    } else {
        out.push_str("policies activated:\n");
        for p in &report.policies {
            out.push_str(&format!(
                "  seq {:>6}  {} version {}  digest {}  at {}\n",
                p.seq, p.id, p.version, p.digest, p.at
            ));
        }
    }
    write_counts(&mut out, "events by kind", &report.kinds);
    write_counts(
        &mut out,
        "proposals by risk tier",
        &report.proposals_by_risk,
    );
    write_counts(
        &mut out,
        "approvals by approver",
        &report.approvals_by_approver,
    );
    write_counts(
        &mut out,
        "approvals by persons, by signing key",
        &report.approvals_by_key,
    );
    if let Some(n) = report.approvals_by_key.get("unsigned") {
        out.push_str(&format!(
            "note: {n} approval(s) by persons are UNSIGNED: nothing but the store vouches for who \
             gave them (declare approvers and keys in the policy to require signatures)\n"
        ));
    }
    write_counts(
        &mut out,
        "completed executions by outcome",
        &report.outcomes,
    );
    write_counts(
        &mut out,
        "refused executions by reason",
        &report.refused_executions,
    );
    write_counts(
        &mut out,
        "refused approvals by reason",
        &report.refused_approvals,
    );
    write_counts(
        &mut out,
        "compliance controls on proposals",
        &report.controls,
    );
    if report.gate_status.is_empty() {
        out.push_str("gate: never degraded\n");
    } else {
        out.push_str("gate state changes:\n");
        for s in &report.gate_status {
            out.push_str(&format!(
                "  seq {:>6}  {}  at {}  by {}: {}\n",
                s.seq, s.kind, s.at, s.operator, s.reason
            ));
        }
    }
    out
}

/// Runs `syndicate audit report`.
///
/// # Errors
/// A usage [`Failure`] (exit 2) when the store cannot be opened or read; a
/// broken [`Failure`] (exit 1) after printing when the chain does not verify
/// or its story does not hold.
pub async fn run(args: &ReportArgs) -> CommandResult {
    let url: StoreUrl = args.store.parse().map_err(Failure::usage)?;
    let chain = args
        .chain
        .as_deref()
        .map(ChainId::new)
        .transpose()
        .map_err(|e| Failure::usage(format!("--chain: {e}")))?;
    let output = super::signed_report::Output::new(&args.output)?;
    let store = open(&url, chain.as_ref(), Access::ReadOnly).await?;
    let report = build(store.as_ref()).await?;
    let rendered = match args.format {
        ReportFormat::Text => render_text(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::usage(format!("cannot render the report: {e}")))?;
            json.push('\n');
            json
        }
    };
    output.emit(rendered.as_bytes())?;
    match (
        &report.integrity_violation,
        report.story_violations.is_empty(),
    ) {
        (Some(v), _) => Err(Failure::broken(format!("the chain does not verify: {v}"))),
        (None, false) => Err(Failure::broken(
            "the chain verifies but its story does not hold",
        )),
        (None, true) => Ok(()),
    }
}
