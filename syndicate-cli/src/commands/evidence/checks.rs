//! `syndicate audit checks`: the compliance questions auditors ask, each a
//! named check over the verified chain.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use syndicate_core::story::StoryRule;

use super::chain::{self, Activation, Change, Evidence};
use super::{StoreArgs, TextFormat};
use crate::exit::{CommandResult, Failure};
use crate::store_url::Access;

/// The named checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// An execution started without enough approvals of the proposed digest
    /// before it that count by the gate's rules (signed where the policy
    /// requires it, by distinct approvers other than the requester), of
    /// another digest, or after a denial.
    ExecutionWithoutApproval,
    /// A person approved their own request.
    SelfApproval,
    /// An execution started after the approvals it relied on stopped being
    /// usable: the earlier of their `expires_at` and their own time plus the
    /// rule's lifetime, by the store's clock (FORMAT.md 5.2).
    ApprovalAfterExpiry,
    /// A change proposed under a policy other than the one last activated.
    SupersededPolicy,
    /// A change whose rule declares `requires = ["test", "review"]` and that
    /// ran without a passing test or an approving review annotation.
    MissingRequiredEvidence,
}

impl CheckName {
    fn as_str(self) -> &'static str {
        match self {
            CheckName::ExecutionWithoutApproval => "execution-without-approval",
            CheckName::SelfApproval => "self-approval",
            CheckName::ApprovalAfterExpiry => "approval-after-expiry",
            CheckName::SupersededPolicy => "superseded-policy",
            CheckName::MissingRequiredEvidence => "missing-required-evidence",
        }
    }
}

const ALL: &[CheckName] = &[
    CheckName::ExecutionWithoutApproval,
    CheckName::SelfApproval,
    CheckName::ApprovalAfterExpiry,
    CheckName::SupersededPolicy,
    CheckName::MissingRequiredEvidence,
];

/// `syndicate audit checks`.
#[derive(Debug, Args)]
pub struct ChecksArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Run only these checks (default: all). Repeatable.
    #[arg(long, value_enum)]
    pub check: Vec<CheckName>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TextFormat,
    /// Judge approval signatures by these approver keys instead of the
    /// chain's own policies (as `audit changes --trusted-keys`).
    #[arg(long = "trusted-keys", value_name = "KEY|FILE")]
    pub trusted_keys: Vec<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check.
    pub check: CheckName,
    /// The request.
    pub request_id: String,
    /// The event that shows it.
    pub seq: u64,
    /// What was found.
    pub detail: String,
}

/// The check that a story rule of the gate's own state machine answers
/// (the rules the gate enforces and `audit verify` reports, one function
/// for both): `None` for rules no named check is about.
pub fn check_of_rule(rule: StoryRule) -> Option<CheckName> {
    match rule {
        StoryRule::StartWithoutApproval | StoryRule::StartDigest | StoryRule::StartAfterDenial => {
            Some(CheckName::ExecutionWithoutApproval)
        }
        StoryRule::SelfApproval => Some(CheckName::SelfApproval),
        StoryRule::StartAfterExpiry => Some(CheckName::ApprovalAfterExpiry),
        _ => None,
    }
}

/// Runs the checks over the evidence. Execution without approval,
/// self-approval and approval after expiry come from the gate's request
/// state machine run over the verified chain (`Evidence::findings`: an
/// approval counts only as the gate counts it, signatures included);
/// superseded policy and missing required evidence from the changes.
/// Findings are in seq order.
pub fn run_checks(evidence: &Evidence, which: &[CheckName]) -> Vec<Finding> {
    let which = if which.is_empty() { ALL } else { which };
    let mut findings = Vec::new();
    for (seq, f) in &evidence.findings {
        if let Some(check) = check_of_rule(f.rule)
            && which.contains(&check)
        {
            findings.push(Finding {
                check,
                request_id: f.request_id.clone().unwrap_or_default(),
                seq: *seq,
                detail: format!("{}: {}", f.rule.as_str(), f.detail),
            });
        }
    }
    for c in &evidence.changes {
        for check in which {
            let mut found = |seq: u64, detail: String| {
                findings.push(Finding {
                    check: *check,
                    request_id: c.request_id.clone(),
                    seq,
                    detail,
                });
            };
            match check {
                CheckName::SupersededPolicy => {
                    if let Some(active) = in_force(&evidence.activations, c.first_seq)
                        && let Some(used) = &c.policy
                        && *used != active.policy
                    {
                        found(
                            c.first_seq,
                            format!(
                                "proposed under {} v{} while {} v{} (seq {}) was in force",
                                used.id,
                                used.version,
                                active.policy.id,
                                active.policy.version,
                                active.seq
                            ),
                        );
                    }
                }
                CheckName::MissingRequiredEvidence => {
                    for missing in missing_evidence(c, &evidence.activations) {
                        found(c.first_seq, missing);
                    }
                }
                _ => {}
            }
        }
    }
    findings.sort_by_key(|f| f.seq);
    findings
}

/// The policy last activated before `seq`.
fn in_force(activations: &[Activation], seq: u64) -> Option<&Activation> {
    activations.iter().rev().find(|a| a.seq < seq)
}

/// The `requires` list of a change's rule, read from the document of the
/// policy it was proposed under (the last activation of that policy before
/// the proposal).
pub fn requires(c: &Change, activations: &[Activation]) -> Vec<String> {
    let (Some(rule), Some(policy)) = (&c.rule, &c.policy) else {
        return Vec::new();
    };
    let Some(activation) = activations
        .iter()
        .rev()
        .find(|a| a.seq < c.first_seq && a.policy == *policy)
    else {
        return Vec::new();
    };
    rule_requires(&activation.document, rule)
}

/// `rules[id == rule].requires` of a policy document, as strings.
pub fn rule_requires(document: &Value, rule: &str) -> Vec<String> {
    document
        .get("rules")
        .and_then(Value::as_array)
        .and_then(|rules| {
            rules
                .iter()
                .find(|r| r.get("id").and_then(Value::as_str) == Some(rule))
        })
        .and_then(|r| r.get("requires"))
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn missing_evidence(c: &Change, activations: &[Activation]) -> Vec<String> {
    if c.started_seq.is_none() {
        return Vec::new();
    }
    let mut missing = Vec::new();
    for need in requires(c, activations) {
        let ok = match need.as_str() {
            "test" => c.tests.iter().any(|t| t.detail.is_green()),
            "review" => c
                .reviews
                .iter()
                .any(|r| r.detail.verdict == syndicate_core::annotation::Verdict::Approved),
            _ => true,
        };
        if !ok {
            missing.push(format!(
                "rule {} requires a {need} and none {} is recorded",
                c.rule.as_deref().unwrap_or("-"),
                if need == "test" {
                    "passing"
                } else {
                    "approving"
                }
            ));
        }
    }
    missing
}

pub(super) async fn run(args: &ChecksArgs) -> CommandResult {
    let judge = chain::Judge::from_args(&args.trusted_keys)?;
    let store = args.store.open(Access::ReadOnly).await?;
    let evidence = chain::load_judged(store.as_ref(), "checks", &judge).await?;
    let which = if args.check.is_empty() {
        ALL.to_vec()
    } else {
        args.check.clone()
    };
    let findings = run_checks(&evidence, &which);
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Failure::usage(format!("cannot write standard output: {e}"));
    match args.format {
        TextFormat::Json => {
            let doc = serde_json::json!({
                "format": "syndicate-checks/v1",
                "integrity": evidence.integrity,
                "checks": which,
                "findings": findings,
            });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
            .map_err(io)?;
        }
        TextFormat::Text => {
            for check in &which {
                let n = findings.iter().filter(|f| f.check == *check).count();
                let verdict = if n == 0 { "ok" } else { "FOUND" };
                writeln!(out, "{:<28} {verdict} ({n})", check.as_str()).map_err(io)?;
            }
            for f in &findings {
                writeln!(
                    out,
                    "{} at seq {} (request {}): {}",
                    f.check.as_str(),
                    f.seq,
                    f.request_id,
                    f.detail
                )
                .map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)?;
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Failure::broken(format!(
            "{} finding(s); see above",
            findings.len()
        )))
    }
}
