//! Every call this crate makes into the gate, in one place.
//!
//! The engine asks two questions: "may this action run now?" ([`Gatekeeper::decide`])
//! and "record how it ended" ([`Gatekeeper::finish`] for a permit held in this
//! process, [`Gatekeeper::finish_started`] for one started by another
//! process, as a hook's `PreToolUse` and `PostToolUse` are).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use syndicate_core::gate::{DecisionContext, ProposalContext, RequestState};
use syndicate_core::{
    Action, Actor, Digest, EventStore, Gate, GateConfig, GateError, Outcome, Permit, Query,
    RulePolicy, Timestamp,
};

use crate::error::AgentError;

/// What the gate says about a tool call.
#[derive(Debug)]
pub enum Verdict {
    /// Approved (by policy or a person) and started: run it.
    Allowed {
        /// The request.
        request_id: String,
        /// The single-use permit (execution.started is recorded).
        permit: Permit,
    },
    /// Waiting for a person.
    Pending {
        /// The request.
        request_id: String,
        /// The digest to approve.
        digest: Digest,
        /// Whether this call reused an earlier pending request.
        reused: bool,
    },
    /// Denied, by policy or a person, or refused (drift, expiry, degraded).
    Refused {
        /// The request.
        request_id: String,
        /// Why.
        reason: String,
    },
}

/// The gate and the store it writes to.
#[derive(Debug)]
pub struct Gatekeeper {
    gate: Gate,
}

/// Opens the gate on `store` with the policy file at `policy_path`.
///
/// # Errors
/// [`AgentError::BadConfig`] for an unreadable policy, [`AgentError::Gate`]
/// when the store fails, [`AgentError::Degraded`] when the chain does not
/// verify.
pub async fn open(
    store: Arc<dyn EventStore>,
    policy_path: &std::path::Path,
) -> Result<Gatekeeper, AgentError> {
    let policy = RulePolicy::from_path(policy_path).map_err(|e| AgentError::BadConfig {
        path: policy_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let gate = Gate::open(store, Arc::new(policy), GateConfig::default()).await?;
    if let Some(reason) = gate.degraded() {
        return Err(AgentError::Degraded(reason));
    }
    Ok(Gatekeeper { gate })
}

/// The proposal context: the harness's identifiers, as one JSON text in
/// `context.trigger`.
pub fn context(facts: &BTreeMap<&str, Value>) -> ProposalContext {
    let facts: serde_json::Map<String, Value> = facts
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    ProposalContext {
        model: None,
        context: Some(DecisionContext {
            trigger: Some(Value::Object(facts).to_string()),
            ..DecisionContext::default()
        }),
    }
}

impl Gatekeeper {
    /// The store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        self.gate.store()
    }

    /// Every request of a session, oldest first.
    async fn session_requests(&self, session: &str) -> Result<Vec<RequestState>, AgentError> {
        let mut by_request: BTreeMap<String, (u64, Vec<syndicate_core::Event>)> = BTreeMap::new();
        let mut query = Query {
            session: Some(session.to_owned()),
            ..Query::all()
        };
        loop {
            let page = self.store().query(&query).await?;
            let full = page.len() >= query.limit;
            query.after_seq = page.last().map(|e| e.seq);
            for event in page {
                if let Some(id) = event.columns.request_id.clone() {
                    let entry = by_request.entry(id).or_insert((event.seq, Vec::new()));
                    entry.1.push(event);
                }
            }
            if !full {
                break;
            }
        }
        let mut groups: Vec<_> = by_request.into_values().collect();
        groups.sort_by_key(|(first, _)| *first);
        let mut states = Vec::new();
        for (_, events) in groups {
            if let Some(state) = RequestState::of_events(events)? {
                states.push(state);
            }
        }
        Ok(states)
    }

    /// Decides on an action: reuses this session's request for the same
    /// digest when there is one (approved → authorize, pending → still
    /// pending, denied → refused), else proposes it. A start records
    /// `call_id`, the harness's id of the call, so its completion finds it.
    ///
    /// # Errors
    /// [`AgentError::Gate`] when the store fails; [`AgentError::Degraded`]
    /// when the gate is degraded.
    pub async fn decide(
        &self,
        session: &str,
        requester: &Actor,
        action: &Action,
        context: &ProposalContext,
        call_id: Option<&str>,
    ) -> Result<Verdict, AgentError> {
        let digest = action.digest();
        let now = Timestamp::now();
        let mut reuse = None;
        for state in self.session_requests(session).await? {
            let p = &state.proposed;
            if p.action_digest != digest || state.started || state.completed {
                continue;
            }
            if state.denied {
                reuse = Some((state, true));
                continue;
            }
            if state.is_approved() && state.expires_at().is_some_and(|at| now >= at) {
                continue;
            }
            reuse = Some((state, false));
        }
        let (request_id, decision) = match reuse {
            Some((state, true)) => {
                return Ok(Verdict::Refused {
                    reason: format!(
                        "request {} for this exact action was denied",
                        state.proposed.request_id
                    ),
                    request_id: state.proposed.request_id,
                });
            }
            Some((state, false)) => {
                let approved = state.is_approved();
                (
                    state.proposed.request_id,
                    if approved { None } else { Some(true) },
                )
            }
            None => {
                let proposal = self
                    .gate
                    .propose(session, requester, action, context)
                    .await?;
                tracing::info!(request_id = %proposal.request_id, %digest, decision = proposal.decision().as_str(), "proposed");
                match proposal.decision() {
                    syndicate_core::gate::Decision::AutoApprove => (proposal.request_id, None),
                    syndicate_core::gate::Decision::Human => (proposal.request_id, Some(false)),
                    _ => {
                        let reason = match &proposal.classification.rule {
                            Some(rule) => format!("denied by policy rule {rule:?}"),
                            None => "no policy rule matches this action".to_owned(),
                        };
                        return Ok(Verdict::Refused {
                            request_id: proposal.request_id,
                            reason,
                        });
                    }
                }
            }
        };
        if let Some(reused) = decision {
            return Ok(Verdict::Pending {
                request_id,
                digest,
                reused,
            });
        }
        let authorized = match call_id {
            Some(id) => self.gate.authorize_call(&request_id, action, id).await,
            None => self.gate.authorize(&request_id, action).await,
        };
        match authorized {
            Ok(permit) => Ok(Verdict::Allowed { request_id, permit }),
            Err(GateError::Refused { refusal, .. }) => Ok(Verdict::Refused {
                reason: refusal.to_string(),
                request_id,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Records how a permit held in this process ended.
    ///
    /// # Errors
    /// [`AgentError::Gate`] when it cannot be recorded.
    pub async fn finish(&self, permit: Permit, outcome: Outcome) -> Result<(), AgentError> {
        self.gate.complete(permit, outcome).await?;
        Ok(())
    }

    /// Records how an execution another process started ended: the
    /// session's started, uncompleted request for this digest whose start
    /// recorded the call `call_id`, else the oldest, as the verified chain
    /// shows them ([`Gate::started_request`]). Returns its id, or `None`
    /// when there is none (the call was not allowed by this gate).
    ///
    /// # Errors
    /// [`AgentError::Gate`] when the store fails or the chain does not
    /// verify.
    pub async fn finish_started(
        &self,
        session: &str,
        digest: &Digest,
        call_id: Option<&str>,
        outcome: Outcome,
    ) -> Result<Option<String>, AgentError> {
        let Some(request_id) = self.gate.started_request(session, digest, call_id).await? else {
            return Ok(None);
        };
        let event = self.gate.complete_started(&request_id, outcome).await?;
        tracing::info!(request_id = %request_id, seq = event.seq, "completed");
        Ok(Some(request_id))
    }
}

/// A failed outcome.
pub fn failed(error: impl Into<String>) -> Outcome {
    Outcome::failed(error)
}

/// The outcome of a result value: its canonical JSON digested, failed when
/// `is_error`.
pub fn outcome_of(result: &Value, is_error: bool) -> Outcome {
    let bytes = syndicate_core::jcs::to_canonical_vec(result)
        .unwrap_or_else(|_| result.to_string().into_bytes());
    let outcome = if is_error {
        Outcome::failed("the tool reported an error")
    } else {
        Outcome::succeeded()
    };
    outcome.with_result(&bytes)
}
