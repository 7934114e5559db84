//! Typed bodies of the events of format v1: one struct per body, each
//! naming its [`EventKind`] through [`Body::KIND`].
//!
//! Every body about a request has `request_id` as a string at its top level,
//! so stores index it. Digests are 64 lower-case hex characters, timestamps
//! in the [`Timestamp`] text form. Readers ignore members they do not know,
//! so later versions may add members.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::event::{Event, EventKind, PolicyRef};
use crate::gate::{Decision, GateError, RiskTier};
use crate::timestamp::Timestamp;

/// A typed event body: the kind of event it is the body of.
pub trait Body: Serialize + for<'de> Deserialize<'de> {
    /// The kind of event whose body this is.
    const KIND: EventKind;
}

macro_rules! bodies {
    ($($body:ty => $kind:ident),* $(,)?) => {
        $(impl Body for $body {
            const KIND: EventKind = EventKind::$kind;
        })*
    };
}

bodies! {
    ProposedBody => ActionProposed,
    ApprovedBody => ActionApproved,
    DeniedBody => ActionDenied,
    ApprovalRefusedBody => ApprovalRefused,
    StartedBody => ExecutionStarted,
    MismatchBody => ExecutionDigestMismatch,
    RejectedBody => ExecutionRejected,
    CompletedBody => ExecutionCompleted,
    PolicyActivatedBody => PolicyActivated,
}

/// The model that proposed an action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name, e.g. `claude-sonnet`.
    pub name: String,
    /// Model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Who serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// Why the agent proposed the action: what a reviewer needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DecisionContext {
    /// The prompt or instruction the agent acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// What triggered it (a ticket, an alert, a schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The agent's stated reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Other actions the agent considered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

/// Optional context recorded with a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProposalContext {
    /// The model that proposed the action.
    pub model: Option<ModelInfo>,
    /// Why it proposed it.
    pub context: Option<DecisionContext>,
}

/// Body of `action.proposed`.
///
/// Besides the members of the format table it records the policy's
/// classification (`decision`, `rule`, `approvals_required`,
/// `approval_ttl_seconds`), so any gate or verifier reading the chain later
/// applies the rule that was in force when the action was proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedBody {
    /// The request.
    pub request_id: String,
    /// The action object.
    pub action: Value,
    /// Its digest.
    pub action_digest: Digest,
    /// Who proposed it (its `actor.id`).
    pub requester: String,
    /// The risk tier the policy gave it.
    pub risk_tier: RiskTier,
    /// The policy's decision.
    pub decision: Decision,
    /// The rule that matched, `null` when none did.
    pub rule: Option<String>,
    /// Distinct approvals needed before it may run.
    pub approvals_required: u32,
    /// Lifetime of an approval, in seconds.
    pub approval_ttl_seconds: u64,
    /// Compliance control tags.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Roles every counted approver must hold (signed approvals only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approver_roles: Vec<String>,
    /// The model that proposed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<DecisionContext>,
}

/// How an approval or denial was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Method {
    /// By a person.
    Human,
    /// By a policy rule.
    Policy,
}

/// Body of `action.approved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovedBody {
    /// The request.
    pub request_id: String,
    /// The digest the approver saw and approved.
    pub action_digest: Digest,
    /// Who approved (`policy:<rule>` for a policy approval).
    pub approver: String,
    /// Human or policy.
    pub method: Method,
    /// The rule, for a policy approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When the approval stops being usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// A note from the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Compliance control tags of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// The approver's signed decision, when the policy declares approvers
    /// (docs/FORMAT.md section 9): its statement names this event's chain,
    /// `request_id`, `action_digest` and `approver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::decision::SignedDecision>,
}

/// Body of `action.denied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeniedBody {
    /// The request.
    pub request_id: String,
    /// Why.
    pub reason: String,
    /// Who denied (`policy:<rule>` for a policy denial).
    pub by: String,
    /// Human or policy.
    pub method: Method,
    /// The rule, for a policy denial (`null` when no rule matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The denier's signed decision (`deny`), when the policy declares
    /// approvers (docs/FORMAT.md section 9.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::decision::SignedDecision>,
}

/// Body of `approval.refused`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRefusedBody {
    /// The request.
    pub request_id: String,
    /// Who tried to approve or deny.
    pub approver: String,
    /// The digest they presented, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_seen: Option<Digest>,
    /// [`Refusal::code`](crate::gate::Refusal::code).
    pub reason: String,
    /// The refusal in words.
    pub detail: String,
}

/// Body of `execution.started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedBody {
    /// The request.
    pub request_id: String,
    /// The approved digest.
    pub approved_digest: Digest,
    /// The digest of what is about to run (equal).
    pub executed_digest: Digest,
    /// Compliance control tags of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// The harness's id of the tool call this start lets run (Claude
    /// Code's `tool_use_id`, an MCP request id), when the caller gave one;
    /// at most [`MAX_CALL_ID_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

/// The longest `call_id` an `execution.started` records, in bytes.
pub const MAX_CALL_ID_BYTES: usize = 256;

/// Body of `execution.digest_mismatch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchBody {
    /// The request.
    pub request_id: String,
    /// The approved digest.
    pub approved_digest: Digest,
    /// The digest of what tried to run.
    pub executed_digest: Digest,
    /// The action that tried to run; `null` when it was too large to
    /// record whole (then `action_prefix` holds its first bytes).
    pub action: Value,
    /// The first bytes of the canonical action text, when `action` is
    /// `null` because the action was too large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_prefix: Option<String>,
    /// The size of the canonical action, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_bytes: Option<u64>,
}

/// Body of `execution.rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedBody {
    /// The request.
    pub request_id: String,
    /// [`Refusal::code`](crate::gate::Refusal::code).
    pub reason: String,
    /// The refusal in words.
    pub detail: String,
}

/// Outcome of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutcomeKind {
    /// It did what it was meant to.
    Succeeded,
    /// It failed (non-zero exit, error, panic of the executor).
    Failed,
}

/// Body of `execution.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedBody {
    /// The request.
    pub request_id: String,
    /// Succeeded or failed.
    pub outcome: OutcomeKind,
    /// The process exit code, for commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// `SHA-256("syndicate:result:v1" || 0x00 || result bytes)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<Digest>,
    /// An error message, when it failed (its first bytes when it was too
    /// long to record whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The full length of the error text in bytes, when `error` holds only
    /// its first bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_bytes: Option<u64>,
    /// Compliance control tags of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
}

/// Body of `policy.activated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyActivatedBody {
    /// Id, version and digest of the document.
    pub policy: PolicyRef,
    /// The document, in its JSON form.
    pub document: Value,
}

/// Body of `gate.degraded` and `gate.recovered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateStatusBody {
    /// Why.
    pub reason: String,
    /// Who: `gate` when the gate degraded itself, the operator's identity
    /// for a recovery.
    pub operator: String,
    /// The operator's signed decision (`recover`), when the policy declares
    /// operators (docs/FORMAT.md section 9.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::decision::SignedDecision>,
}

/// Reads the body of an event as `T`.
///
/// # Errors
/// [`GateError::Malformed`] when the bytes are not an envelope or the body
/// is not a `T`.
pub fn body_of<T: for<'de> Deserialize<'de>>(event: &Event) -> Result<T, GateError> {
    let envelope = event.envelope().map_err(|e| GateError::Malformed {
        seq: event.seq,
        reason: e.to_string(),
    })?;
    serde_json::from_value(envelope.body).map_err(|e| GateError::Malformed {
        seq: event.seq,
        reason: format!("{} body: {e}", event.columns.kind),
    })
}

pub(crate) fn to_body<T: Serialize>(body: &T) -> Value {
    // Bodies are plain structs of strings, numbers, digests and JSON values:
    // serializing them cannot fail.
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// The kind of an event, from its `kind` column (which the verifier checks
/// against the hashed bytes); `None` for a kind format v1 does not know.
pub fn kind_of(event: &Event) -> Option<EventKind> {
    event.columns.kind.parse().ok()
}
