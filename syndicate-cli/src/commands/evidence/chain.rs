//! The verified chain, read once, as one [`Change`] per request: the only
//! place where the evidence commands decode event bodies.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use syndicate_core::annotation::{
    Annotation, CommitLink, Correction, Deployment, Detail, ReferenceChecker, Review, Rollback,
    TestRun,
};
use syndicate_core::approvers::Signers;
use syndicate_core::decision::SignedDecision;
use syndicate_core::gate::{
    ApprovalRefusedBody, ApprovedBody, CompletedBody, DeniedBody, MismatchBody, ModelInfo,
    PolicyActivatedBody, ProposedBody, RejectedBody, body_of,
};
use syndicate_core::identity;
use syndicate_core::protocol::{self, Ledger, Lookup, Rules};
use syndicate_core::verify::VERIFY_PAGE;
use syndicate_core::{
    ChainId, Digest, Event, EventKind, EventStore, PolicyRef, StoreError, Timestamp, Verifier,
};

use crate::exit::Failure;

/// What verification found, printed at the top of every report.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// Always `intact`: a chain that does not verify is refused.
    pub verdict: &'static str,
    /// The chain.
    pub chain: String,
    /// Events verified.
    pub events: u64,
    /// Seq of the head, `null` for an empty chain.
    pub head_seq: Option<u64>,
    /// Hash of the head.
    pub head_hash: Option<Digest>,
    /// `at` of the first event.
    pub first_at: Option<String>,
    /// `at` of the head.
    pub last_at: Option<String>,
}

/// An event of a change, for replay and for the seq range.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Seq.
    pub seq: u64,
    /// Hash.
    pub hash: Digest,
    /// Kind.
    pub kind: String,
    /// When it was sealed.
    pub at: String,
    /// Its actor id.
    pub actor: String,
    /// The body, as recorded.
    #[serde(skip)]
    pub body: Value,
    /// For an annotation whose reference does not hold (the story check's
    /// `annotation_reference`): why. Such an annotation is shown in the
    /// replay but is not evidence in any column.
    #[serde(skip)]
    pub problem: Option<String>,
}

/// One approval.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    /// Who.
    pub approver: String,
    /// When (sealed).
    pub at: String,
    /// `human` or `policy`.
    pub method: String,
    /// Whether it approved the proposed digest.
    pub digest_matches: bool,
    /// When it stops being usable.
    pub expires_at: Option<String>,
    /// Approver's comment.
    pub comment: Option<String>,
    /// The signature's status: `unsigned` (no signed decision),
    /// `verified` (it verifies with a key of this approver under the keys
    /// that judge it: the approvers the policy in force declares, or the
    /// auditor's trusted keys), `invalid` (it does not), or `unchecked`
    /// (signed, but no approver keys are known to judge it).
    pub signature: &'static str,
    /// The signing key's id (8 hex), for a signed approval.
    pub key_id: Option<String>,
    /// Why a signature is `invalid` or `unchecked`.
    pub signature_detail: Option<String>,
    /// Seq of the approval.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
}

/// A refusal, denial or drift attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// The event kind.
    pub kind: String,
    /// Reason code or reason text.
    pub reason: String,
    /// Who (denier, approver refused, or `gate`).
    pub by: String,
    /// When.
    pub at: String,
    /// Seq.
    pub seq: u64,
}

/// The completion of a change.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Result digest.
    pub result_digest: Option<Digest>,
    /// Error text.
    pub error: Option<String>,
    /// When.
    pub at: String,
    /// Seq.
    pub seq: u64,
}

/// An annotation of a change.
#[derive(Debug, Clone, Serialize)]
pub struct Note<T> {
    /// Who wrote it.
    pub author: String,
    /// When.
    pub at: String,
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// The seq it refers to.
    pub refers_to_seq: u64,
    /// Free text.
    pub note: Option<String>,
    /// What it says.
    #[serde(flatten)]
    pub detail: T,
}

/// Everything the chain says about one request.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The request.
    pub request_id: String,
    /// When it was proposed.
    pub proposed_at: String,
    /// Who proposed it.
    pub requester: String,
    /// Its session.
    pub session: String,
    /// The model.
    pub model: Option<ModelInfo>,
    /// The prompt.
    pub prompt: Option<String>,
    /// The trigger.
    pub trigger: Option<String>,
    /// The agent's reasoning.
    pub reasoning: Option<String>,
    /// Alternatives it considered.
    pub alternatives: Vec<String>,
    /// The tool.
    pub tool: String,
    /// The target.
    pub target: Option<String>,
    /// The canonical action.
    pub action: Value,
    /// Its digest.
    pub action_digest: Digest,
    /// Risk tier.
    pub risk: String,
    /// Policy decision.
    pub decision: String,
    /// Roles every counted approver must hold (from the proposal).
    #[serde(skip)]
    pub approver_roles: Vec<String>,
    /// Rule.
    pub rule: Option<String>,
    /// Approvals required.
    pub approvals_required: u32,
    /// Control tags.
    pub controls: Vec<String>,
    /// The policy in force when proposed.
    pub policy: Option<PolicyRef>,
    /// Outcome (see FORMAT.md).
    pub outcome: String,
    /// Approvals, in order.
    pub approvals: Vec<ApprovalRow>,
    /// Denial, refused approvals, refused executions and drift attempts.
    pub refusals: Vec<Refusal>,
    /// Number of `execution.digest_mismatch` events.
    pub drift_attempts: u32,
    /// Seq of `execution.started`.
    pub started_seq: Option<u64>,
    /// When it started.
    pub started_at: Option<String>,
    /// The completion.
    pub completion: Option<Completion>,
    /// Test runs.
    pub tests: Vec<Note<TestRun>>,
    /// Reviews.
    pub reviews: Vec<Note<Review>>,
    /// Deployments.
    pub deployments: Vec<Note<Deployment>>,
    /// Commits linked.
    pub commits: Vec<Note<CommitLink>>,
    /// Rollbacks.
    pub rollbacks: Vec<Note<Rollback>>,
    /// Corrections.
    pub corrections: Vec<Note<Correction>>,
    /// Seq of the first event of the request.
    pub first_seq: u64,
    /// Seq of the last.
    pub last_seq: u64,
    /// Every event about it, in order (for replay).
    #[serde(skip)]
    pub steps: Vec<Step>,
}

/// A `policy.activated` event.
#[derive(Debug, Clone)]
pub struct Activation {
    /// Its seq.
    pub seq: u64,
    /// The policy.
    pub policy: PolicyRef,
    /// The document.
    pub document: Value,
}

/// The verified chain as changes.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The verdict.
    pub integrity: Integrity,
    /// Changes in proposal order.
    pub changes: Vec<Change>,
    /// Policies activated, in order.
    pub activations: Vec<Activation>,
    /// Every typed annotation with the request it is about, for `audit commits`.
    pub annotation_count: u64,
    /// What the gate's own request state machine finds in the chain (the
    /// story rules), with the seq of the event that breaks each.
    pub findings: Vec<(u64, protocol::Finding)>,
    /// Every verified event, in seq order.
    pub events: Vec<Event>,
    /// Whose keys judged approval signatures.
    pub judged_by: &'static str,
}

/// Whose keys judge the signatures of approvals.
#[derive(Debug, Clone, Default)]
pub enum Judge {
    /// The approvers declared by the policy in force at each approval (the
    /// chain's own `policy.activated` events).
    #[default]
    ChainPolicy,
    /// The keys an auditor trusts (`--trusted-keys`), one approver per key
    /// name, whatever the chain's policies declare.
    Trusted(Signers),
}

impl Judge {
    /// From `--trusted-keys` arguments (verifier keys or files of them):
    /// none means the chain's own policies.
    ///
    /// # Errors
    /// A usage failure for a key or file that cannot be read.
    pub fn from_args(trusted_keys: &[String]) -> Result<Judge, Failure> {
        if trusted_keys.is_empty() {
            return Ok(Judge::ChainPolicy);
        }
        let mut keys = Vec::new();
        for arg in trusted_keys {
            keys.extend(crate::commands::checkpoint::verifier_keys(
                "trusted-keys",
                arg,
            )?);
        }
        Ok(Judge::Trusted(Signers::from_keys(keys)))
    }

    fn name(&self) -> &'static str {
        match self {
            Judge::ChainPolicy => "policy",
            Judge::Trusted(_) => "trusted_keys",
        }
    }

    /// The rules the gate's request state machine counts approvals by:
    /// the same for the story check, the outcomes and the checks.
    pub fn rules(&self) -> Rules {
        match self {
            Judge::ChainPolicy => Rules {
                signers_from_chain: true,
                ..Rules::default()
            },
            Judge::Trusted(signers) => Rules {
                signers: Some(signers.clone()),
                ..Rules::default()
            },
        }
    }
}

/// Reads and verifies the whole chain in one pass (up to the head it had
/// when reading started), then builds the changes.
///
/// # Errors
/// A broken [`Failure`] (exit 1) naming the first bad seq when the chain
/// does not verify: nothing is reported from a chain that does not verify.
/// A usage failure when it cannot be read.
pub async fn load(store: &dyn EventStore, what: &str) -> Result<Evidence, Failure> {
    load_judged(store, what, &Judge::ChainPolicy).await
}

/// [`load`], with approval signatures judged by `judge`.
///
/// # Errors
/// As [`load`].
pub async fn load_judged(
    store: &dyn EventStore,
    what: &str,
    judge: &Judge,
) -> Result<Evidence, Failure> {
    let chain = store.chain().clone();
    let cannot = |e: StoreError| match e {
        StoreError::Corrupt { seq, reason, .. } => Failure::broken(format!(
            "the chain does not verify: row {seq} is unreadable ({reason}); no {what} from a chain that does not verify"
        )),
        e => Failure::usage(format!("cannot read the store: {e}")),
    };
    let head = store.head().await.map_err(cannot)?;
    let mut verifier = Verifier::new(chain.clone());
    let mut references = ReferenceChecker::allowing_free_notes();
    // The gate's own request state machine, run over the same events: it
    // says which approvals count (FORMAT.md 5.2).
    let mut ledger = Ledger::new(judge.rules());
    let mut events = Vec::new();
    let mut findings = Vec::new();
    let bar = crate::progress::bar(head.as_ref().map_or(0, |h| h.seq + 1), "verifying");
    if let Some(head) = &head {
        let mut next = 0;
        while next <= head.seq {
            let limit = usize::try_from(head.seq - next + 1)
                .unwrap_or(usize::MAX)
                .min(VERIFY_PAGE);
            let page = store.read(next, limit).await.map_err(cannot)?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for event in page {
                if let Err(v) = verifier.check(&event) {
                    bar.finish_and_clear();
                    return Err(Failure::broken(format!(
                        "the chain does not verify: first bad seq {}, {} check; no {what} from a chain that does not verify (run `syndicate audit verify`)",
                        v.seq, v.check
                    )));
                }
                references.observe(&event);
                findings.extend(ledger.apply(&event).into_iter().map(|f| (event.seq, f)));
                events.push(event);
            }
            bar.set_position(next);
        }
    }
    bar.finish_and_clear();
    let summary = verifier.report(None).summary;
    let integrity = Integrity {
        verdict: "intact",
        chain: chain.as_str().to_owned(),
        events: summary.events,
        head_seq: summary.head.as_ref().map(|h| h.seq),
        head_hash: summary.head.as_ref().map(|h| h.hash),
        first_at: summary.first_at.map(|t| t.to_string()),
        last_at: summary.head.as_ref().map(|h| h.at.to_string()),
    };
    let problems = references
        .into_issues()
        .into_iter()
        .map(|i| (i.seq, i.to_string()))
        .collect();
    let mut evidence = build(integrity, &events, &problems, &ledger, judge)?;
    evidence.findings = findings;
    evidence.events = events;
    Ok(evidence)
}

/// The signature status of a person's approval: `unsigned`, `verified`,
/// `invalid` or `unchecked`, the key id, and why when it is not verified.
/// Checked with [`Signers::check_approval`], the function the gate and the
/// story check use.
fn judge_signature(
    signed: Option<&SignedDecision>,
    approver: &str,
    signers: Option<&Signers>,
    chain: Option<&ChainId>,
    change: &Change,
) -> (&'static str, Option<String>, Option<String>) {
    let Some(signed) = signed else {
        return ("unsigned", None, None);
    };
    let key_id = Some(signed.key_id.to_string());
    if !identity::same(&signed.statement.approver, approver) {
        return (
            "invalid",
            key_id,
            Some(format!(
                "the signed statement names {:?}, not the approver",
                signed.statement.approver
            )),
        );
    }
    match (signers.filter(|s| s.requires_signatures()), chain) {
        (Some(signers), Some(chain)) => match signers.check_approval(
            signed,
            chain,
            &change.request_id,
            &change.action_digest,
            &change.approver_roles,
        ) {
            Ok(_) => ("verified", key_id, None),
            Err(e) => ("invalid", key_id, Some(e.to_string())),
        },
        _ => (
            "unchecked",
            key_id,
            Some(
                "no approver keys to check it with: the policy in force declares none (judge with --trusted-keys)"
                    .to_owned(),
            ),
        ),
    }
}

fn malformed(event: &Event, e: impl std::fmt::Display) -> Failure {
    Failure::broken(format!(
        "event {} ({}) has a body that cannot be read: {e}; run `syndicate audit verify`",
        event.seq, event.columns.kind
    ))
}

fn step(event: &Event, body: Value) -> Step {
    Step {
        problem: None,
        seq: event.seq,
        hash: event.hash,
        kind: event.columns.kind.clone(),
        at: event.columns.at.clone(),
        actor: event.columns.actor.clone(),
        body,
    }
}

fn note<T>(event: &Event, a: &Annotation, detail: T) -> Note<T> {
    Note {
        author: event.columns.actor.clone(),
        at: event.columns.at.clone(),
        seq: event.seq,
        hash: event.hash,
        refers_to_seq: a.refers_to.seq,
        note: a.note.clone(),
        detail,
    }
}

/// Builds the changes; `problems` holds the annotations whose references
/// do not hold, by seq.
fn build(
    integrity: Integrity,
    events: &[Event],
    problems: &HashMap<u64, String>,
    ledger: &Ledger,
    judge: &Judge,
) -> Result<Evidence, Failure> {
    let chain = ChainId::new(&integrity.chain).ok();
    // The keys that judge approval signatures, as of the event being read.
    let mut signers = match judge {
        Judge::ChainPolicy => None,
        Judge::Trusted(signers) => Some(signers.clone()),
    };
    let mut changes: Vec<Change> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Seq of every event about a request -> that change.
    let mut of_seq: HashMap<u64, usize> = HashMap::new();
    let mut activations = Vec::new();
    let mut annotation_count = 0;
    for event in events {
        let envelope = event.envelope().map_err(|e| malformed(event, e))?;
        let kind = envelope.kind;
        if kind == EventKind::PolicyActivated {
            let body: PolicyActivatedBody = body_of(event).map_err(|e| malformed(event, e))?;
            if let Judge::ChainPolicy = judge {
                signers = Signers::from_policy(&body.document).ok();
            }
            activations.push(Activation {
                seq: event.seq,
                policy: body.policy,
                document: body.document,
            });
            continue;
        }
        if kind == EventKind::ActionProposed {
            let p: ProposedBody = body_of(event).map_err(|e| malformed(event, e))?;
            let context = p.context.clone().unwrap_or_default();
            let tool = p
                .action
                .get("tool")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let target = p
                .action
                .get("target")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let change = Change {
                request_id: p.request_id.clone(),
                proposed_at: event.columns.at.clone(),
                requester: p.requester.clone(),
                session: event.columns.session.clone(),
                model: p.model.clone(),
                prompt: context.prompt,
                trigger: context.trigger,
                reasoning: context.reasoning,
                alternatives: context.alternatives,
                tool,
                target,
                action: p.action.clone(),
                action_digest: p.action_digest,
                risk: p.risk_tier.as_str().to_owned(),
                decision: serde_json::to_value(p.decision)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                rule: p.rule.clone(),
                approver_roles: p.approver_roles.clone(),
                approvals_required: p.approvals_required.max(1),
                controls: p.controls.clone(),
                policy: envelope.policy.clone(),
                outcome: String::new(),
                approvals: Vec::new(),
                refusals: Vec::new(),
                drift_attempts: 0,
                started_seq: None,
                started_at: None,
                completion: None,
                tests: Vec::new(),
                reviews: Vec::new(),
                deployments: Vec::new(),
                commits: Vec::new(),
                rollbacks: Vec::new(),
                corrections: Vec::new(),
                first_seq: event.seq,
                last_seq: event.seq,
                steps: vec![step(event, envelope.body.clone())],
            };
            index.entry(p.request_id).or_insert(changes.len());
            of_seq.insert(event.seq, changes.len());
            changes.push(change);
            continue;
        }
        let request = if kind == EventKind::Annotation {
            annotation_count += 1;
            // A correction may name no request: it is about the event it refers to.
            let a = Annotation::of_event(event).ok();
            let by_ref = a
                .as_ref()
                .and_then(|a| of_seq.get(&a.refers_to.seq).copied());
            envelope
                .request_id()
                .and_then(|id| index.get(id).copied())
                .or(by_ref)
        } else {
            envelope.request_id().and_then(|id| index.get(id).copied())
        };
        let Some(i) = request else { continue };
        of_seq.insert(event.seq, i);
        let c = &mut changes[i];
        c.last_seq = event.seq;
        let problem = problems.get(&event.seq).cloned();
        c.steps.push(Step {
            problem: problem.clone(),
            ..step(event, envelope.body.clone())
        });
        let at = event.columns.at.clone();
        match kind {
            EventKind::ActionApproved => {
                let b: ApprovedBody = body_of(event).map_err(|e| malformed(event, e))?;
                let (signature, key_id, signature_detail) = judge_signature(
                    b.signed.as_ref(),
                    &b.approver,
                    signers.as_ref(),
                    chain.as_ref(),
                    c,
                );
                c.approvals.push(ApprovalRow {
                    digest_matches: b.action_digest == c.action_digest,
                    approver: b.approver,
                    at,
                    method: serde_json::to_value(b.method)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    expires_at: b.expires_at.map(|t: Timestamp| t.to_string()),
                    comment: b.comment,
                    signature,
                    key_id,
                    signature_detail,
                    seq: event.seq,
                    hash: event.hash,
                });
            }
            EventKind::ActionDenied => {
                let b: DeniedBody = body_of(event).map_err(|e| malformed(event, e))?;
                c.refusals.push(Refusal {
                    kind: event.columns.kind.clone(),
                    reason: b.reason,
                    by: b.by,
                    at,
                    seq: event.seq,
                });
            }
            EventKind::ApprovalRefused => {
                let b: ApprovalRefusedBody = body_of(event).map_err(|e| malformed(event, e))?;
                c.refusals.push(Refusal {
                    kind: event.columns.kind.clone(),
                    reason: b.reason,
                    by: b.approver,
                    at,
                    seq: event.seq,
                });
            }
            EventKind::ExecutionRejected => {
                let b: RejectedBody = body_of(event).map_err(|e| malformed(event, e))?;
                c.refusals.push(Refusal {
                    kind: event.columns.kind.clone(),
                    reason: b.reason,
                    by: event.columns.actor.clone(),
                    at,
                    seq: event.seq,
                });
            }
            EventKind::ExecutionDigestMismatch => {
                let b: MismatchBody = body_of(event).map_err(|e| malformed(event, e))?;
                c.drift_attempts += 1;
                c.refusals.push(Refusal {
                    kind: event.columns.kind.clone(),
                    reason: format!("digest_mismatch: tried {}", b.executed_digest),
                    by: event.columns.actor.clone(),
                    at,
                    seq: event.seq,
                });
            }
            EventKind::ExecutionStarted => {
                c.started_seq.get_or_insert(event.seq);
                c.started_at.get_or_insert(at);
            }
            EventKind::ExecutionCompleted => {
                let b: CompletedBody = body_of(event).map_err(|e| malformed(event, e))?;
                c.completion = Some(Completion {
                    outcome: serde_json::to_value(b.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    exit_code: b.exit_code,
                    result_digest: b.result_digest,
                    error: b.error,
                    at,
                    seq: event.seq,
                });
            }
            EventKind::Annotation => {
                // Untyped annotations, and those whose reference does not
                // hold, stay in the replay only.
                if problem.is_some() {
                    continue;
                }
                let Ok(a) = Annotation::of_event(event) else {
                    continue;
                };
                match &a.detail {
                    Detail::Review(d) => c.reviews.push(note(event, &a, d.clone())),
                    Detail::Test(d) => c.tests.push(note(event, &a, d.clone())),
                    Detail::Deployment(d) => c.deployments.push(note(event, &a, d.clone())),
                    Detail::Commit(d) => c.commits.push(note(event, &a, d.clone())),
                    Detail::Rollback(d) => c.rollbacks.push(note(event, &a, d.clone())),
                    Detail::Correction(d) => c.corrections.push(note(event, &a, d.clone())),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for c in &mut changes {
        let approved = match ledger.lookup(&c.request_id) {
            Lookup::Open(r) => r.is_approved(),
            _ => false,
        };
        c.outcome = outcome(c, approved).to_owned();
    }
    Ok(Evidence {
        integrity,
        changes,
        activations,
        annotation_count,
        findings: Vec::new(),
        events: Vec::new(),
        judged_by: judge.name(),
    })
}

/// The outcome of a change, from its events (first that applies):
/// `succeeded`/`failed` (completed), `running` (started, not completed),
/// `denied`, `expired` (an execution refused as expired), `refused` (another
/// refused execution or a drift attempt, not run), `approved` (enough
/// approvals count, by the gate's rules: `approved` from the [`Ledger`];
/// not run), `pending`.
fn outcome(c: &Change, approved: bool) -> &'static str {
    if let Some(done) = &c.completion {
        return if done.outcome == "succeeded" {
            "succeeded"
        } else {
            "failed"
        };
    }
    if c.started_seq.is_some() {
        return "running";
    }
    if c.refusals.iter().any(|r| r.kind == "action.denied") {
        return "denied";
    }
    let rejected = |code: &str| {
        c.refusals
            .iter()
            .any(|r| r.kind == "execution.rejected" && r.reason == code)
    };
    if rejected("expired") {
        return "expired";
    }
    if c.refusals
        .iter()
        .any(|r| r.kind == "execution.rejected" || r.kind == "execution.digest_mismatch")
    {
        return "refused";
    }
    if approved { "approved" } else { "pending" }
}
