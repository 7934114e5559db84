//! `syndicate audit replay REQUEST_ID`: one change, event by event.

use std::fmt::Write as _;
use std::io::Write;

use clap::Args;
use serde_json::{Value, json};

use super::chain::{self, Change};
use super::{StoreArgs, TextFormat};
use crate::exit::{CommandResult, Failure};
use crate::store_url::Access;

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

fn text_of(body: &Value, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "-".into(),
    }
}

fn story(c: &Change, chain: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Request {} on chain {chain} (verified; outcome: {})",
        c.request_id, c.outcome
    );
    if let Some(m) = &c.model {
        let _ = writeln!(
            s,
            "Model: {} {} ({})",
            m.name,
            m.version.as_deref().unwrap_or(""),
            m.provider.as_deref().unwrap_or("provider not recorded")
        );
    }
    let _ = writeln!(s, "Trigger: {}", c.trigger.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "Prompt: {}", c.prompt.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "Reasoning: {}", c.reasoning.as_deref().unwrap_or("-"));
    for alt in &c.alternatives {
        let _ = writeln!(s, "Considered instead: {alt}");
    }
    let _ = writeln!(s, "Controls: {}", c.controls.join(", "));
    let _ = writeln!(s);
    for step in &c.steps {
        let b = &step.body;
        let what = match step.kind.as_str() {
            "action.proposed" => format!(
                "{} proposed {} (risk {}, rule {}, decision {}, {} approval(s) needed)\n      action {}\n      digest {}",
                step.actor,
                c.tool,
                c.risk,
                c.rule.as_deref().unwrap_or("none"),
                c.decision,
                c.approvals_required,
                serde_json::to_string(&c.action).unwrap_or_default(),
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
                    .map(|c| format!(": {c:?}"))
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
            "annotation" => format!(
                "{} by {} about seq {}: {}",
                text_of(b, "type"),
                step.actor,
                b.pointer("/refers_to/seq")
                    .map_or("-".into(), Value::to_string),
                annotation_line(b)
            ),
            other => other.to_owned(),
        };
        let _ = writeln!(s, "seq {:>6}  {}  {}", step.seq, step.at, what);
        let _ = writeln!(s, "            hash {}", step.hash);
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
                .map(|c| format!(": {c:?}"))
                .unwrap_or_default()
        ),
        Some("test") => format!(
            "suite {}: {} passed, {} failed, {} skipped",
            text_of(b, "suite"),
            text_of(b, "passed"),
            text_of(b, "failed"),
            text_of(b, "skipped")
        ),
        Some("deployment") => format!(
            "commit {} to {}",
            text_of(b, "commit"),
            text_of(b, "environment")
        ),
        Some("commit") => format!("commit {} {}", text_of(b, "commit"), text_of(b, "subject")),
        Some("rollback") => format!("rolled back: {}", text_of(b, "reason")),
        Some("correction") => format!(
            "{} corrected to {} ({})",
            text_of(b, "field"),
            b.get("corrected").map_or("-".into(), Value::to_string),
            text_of(b, "reason")
        ),
        _ => text_of(b, "note"),
    }
}
