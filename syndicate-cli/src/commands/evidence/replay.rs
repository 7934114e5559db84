//! `syndicate audit replay REQUEST_ID`: one change, event by event.

use std::fmt::Write as _;
use std::io::Write;

use clap::Args;
use serde_json::{Value, json};

use super::chain::{self, Change};
use super::{StoreArgs, TextFormat};
use crate::exit::{CommandResult, Failure};
use crate::store_url::Access;
use crate::terminal::escape;

/// `syndicate audit replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The request.
    pub request_id: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextFormat,
}

pub(super) async fn run(args: &ReplayArgs) -> CommandResult {
    let store = args.store.open(Access::ReadOnly).await?;
    let evidence = chain::load(store.as_ref(), "replay").await?;
    let Some(change) = evidence
        .changes
        .iter()
        .find(|c| c.request_id == args.request_id)
    else {
        return Err(Failure::usage(format!(
            "no request {:?} on chain {:?}; list them with `syndicate audit changes`",
            args.request_id, evidence.integrity.chain
        )));
    };
    let text = match args.format {
        TextFormat::Json => {
            let steps: Vec<Value> = change
                .steps
                .iter()
                .map(|s| {
                    json!({"seq": s.seq, "hash": s.hash, "kind": s.kind, "at": s.at,
                           "actor": s.actor, "body": s.body})
                })
                .collect();
            let doc = json!({
                "format": "syndicate-replay/v1",
                "integrity": evidence.integrity,
                "change": change,
                "events": steps,
            });
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            text
        }
        TextFormat::Text => story(change, &evidence.integrity.chain),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))
}

/// A member of a stored body, escaped for a terminal.
fn text_of(body: &Value, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => escape(s).into_owned(),
        Some(v) => escape(&v.to_string()).into_owned(),
        None => "-".into(),
    }
}

/// An optional stored string, escaped.
fn opt(text: Option<&str>) -> String {
    escape(text.unwrap_or("-")).into_owned()
}

fn story(c: &Change, chain: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Request {} on chain {} (verified; outcome: {})",
        escape(&c.request_id),
        escape(chain),
        c.outcome
    );
    if let Some(m) = &c.model {
        let _ = writeln!(
            s,
            "Model: {} {} ({})",
            escape(&m.name),
            escape(m.version.as_deref().unwrap_or("")),
            escape(m.provider.as_deref().unwrap_or("provider not recorded"))
        );
    }
    let _ = writeln!(s, "Trigger: {}", opt(c.trigger.as_deref()));
    let _ = writeln!(s, "Prompt: {}", opt(c.prompt.as_deref()));
    let _ = writeln!(s, "Reasoning: {}", opt(c.reasoning.as_deref()));
    for alt in &c.alternatives {
        let _ = writeln!(s, "Considered instead: {}", escape(alt));
    }
    let _ = writeln!(s, "Controls: {}", escape(&c.controls.join(", ")));
    for k in &c.corrections {
        let _ = writeln!(
            s,
            "Corrected at seq {}: {} of seq {} is {} ({}); the original stays below",
            k.seq,
            escape(&k.detail.field),
            k.refers_to_seq,
            escape(&k.detail.corrected.to_string()),
            escape(&k.detail.reason)
        );
    }
    let _ = writeln!(s);
    for step in &c.steps {
        let b = &step.body;
        let what = match step.kind.as_str() {
            "action.proposed" => format!(
                "{} proposed {} (risk {}, rule {}, decision {}, {} approval(s) needed)\n            action {}\n            digest {}",
                escape(&step.actor),
                escape(&c.tool),
                c.risk,
                escape(c.rule.as_deref().unwrap_or("none")),
                c.decision,
                c.approvals_required,
                escape(&serde_json::to_string(&c.action).unwrap_or_default()),
                c.action_digest
            ),
            "action.approved" => format!(
                "{} approved digest {} ({}), expires {}{}",
                text_of(b, "approver"),
                text_of(b, "action_digest"),
                text_of(b, "method"),
                text_of(b, "expires_at"),
                b.get("comment")
                    .and_then(Value::as_str)
                    .map(|c| format!(": \"{}\"", escape(c)))
                    .unwrap_or_default()
            ),
            "action.denied" => format!("{} denied it: {}", text_of(b, "by"), text_of(b, "reason")),
            "approval.refused" => format!(
                "approval by {} refused: {}",
                text_of(b, "approver"),
                text_of(b, "detail")
            ),
            "execution.digest_mismatch" => format!(
                "DRIFT: tried to run digest {} instead of the approved {}; nothing ran",
                text_of(b, "executed_digest"),
                text_of(b, "approved_digest")
            ),
            "execution.rejected" => format!("execution refused: {}", text_of(b, "detail")),
            "execution.started" => format!("started digest {}", text_of(b, "executed_digest")),
            "execution.completed" => format!(
                "completed: {} (exit {}, result digest {})",
                text_of(b, "outcome"),
                text_of(b, "exit_code"),
                text_of(b, "result_digest")
            ),
            "annotation" => {
                let mut line = format!(
                    "{} by {} about seq {}: {}",
                    text_of(b, "type"),
                    escape(&step.actor),
                    b.pointer("/refers_to/seq")
                        .map_or("-".into(), Value::to_string),
                    annotation_line(b)
                );
                if b.get("type").is_some() && b.get("note").is_some() {
                    let _ = write!(line, "; note: \"{}\"", text_of(b, "note"));
                }
                line
            }
            other => escape(other).into_owned(),
        };
        let _ = writeln!(s, "seq {:>6}  {}  {}", step.seq, step.at, what);
        let _ = writeln!(s, "            hash {}", step.hash);
        if let Some(problem) = &step.problem {
            let _ = writeln!(
                s,
                "            REFERENCE DOES NOT HOLD: {}; not counted as evidence",
                escape(problem)
            );
        }
    }
    s
}

fn annotation_line(b: &Value) -> String {
    match b.get("type").and_then(Value::as_str) {
        Some("review") => format!(
            "{} by {}{}{}",
            text_of(b, "verdict"),
            text_of(b, "reviewer"),
            if b.get("read_reasoning") == Some(&Value::Bool(true)) {
                " (read the reasoning)"
            } else {
                " (did not read the reasoning)"
            },
            b.get("comments")
                .and_then(Value::as_str)
                .map(|c| format!(": \"{}\"", escape(c)))
                .unwrap_or_default()
        ),
        Some("test") => {
            let mut line = format!(
                "suite {}: {} passed, {} failed, {} skipped",
                text_of(b, "suite"),
                text_of(b, "passed"),
                text_of(b, "failed"),
                text_of(b, "skipped")
            );
            if b.get("coverage_percent").is_some() {
                let _ = write!(line, ", coverage {}%", text_of(b, "coverage_percent"));
            }
            if b.get("report_digest").is_some() {
                let _ = write!(line, ", report digest {}", text_of(b, "report_digest"));
            }
            if b.get("report").is_some() {
                let _ = write!(line, " ({})", text_of(b, "report"));
            }
            line
        }
        Some("deployment") => {
            let mut line = format!(
                "commit {} to {}",
                text_of(b, "commit"),
                text_of(b, "environment")
            );
            if b.get("branch").is_some() {
                let _ = write!(line, " from branch {}", text_of(b, "branch"));
            }
            if b.get("deployed_at").is_some() {
                let _ = write!(line, ", deployed at {}", text_of(b, "deployed_at"));
            }
            line
        }
        Some("commit") => format!("commit {} {}", text_of(b, "commit"), text_of(b, "subject")),
        Some("rollback") => format!("rolled back: {}", text_of(b, "reason")),
        Some("correction") => format!(
            "{} corrected to {} ({})",
            text_of(b, "field"),
            b.get("corrected")
                .map_or("-".into(), |v| escape(&v.to_string()).into_owned()),
            text_of(b, "reason")
        ),
        _ => text_of(b, "note"),
    }
}
