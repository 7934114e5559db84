//! The gate an agent framework puts in front of every action an agent takes.
//!
//! ```text
//! propose ──policy──► auto-approved ─┐
//!    │                needs people ──► approve (digest seen) ─┐
//!    │                denied          ▼                       ▼
//!    └──────────────────────────► authorize (digest about to run) ──► Permit ──► complete
//! ```
//!
//! Every step appends events to the [`EventStore`]; the gate's state is read
//! back from the store, so several gates in several processes sharing one
//! store behave as one. An approval binds one digest; [`Gate::authorize`]
//! recomputes the digest of what is about to run and refuses drift; the
//! `execution.started` event carries the single-use key
//! `execution.started:<request_id>`, so of two gates racing to start one
//! request, the store lets exactly one win.
//!
//! Fail closed: the gate verifies the chain when it opens (in full) and
//! before every `authorize` (the events appended since). A broken chain or
//! an append that fails puts it in a degraded state, recorded as
//! `gate.degraded` where the store can still be written, in which every
//! `authorize` is refused until [`Gate::recover`] re-verifies the chain and
//! records `gate.recovered`.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use syndicate_core::gate::{Gate, GateConfig, Outcome, ProposalContext, Refusal, RulePolicy};
//! use syndicate_core::{Action, Actor, ChainId, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let policy = RulePolicy::from_toml(r#"
//!     id = "demo"
//!     version = "1"
//!     [[rules]]
//!     id = "deploys"
//!     tool = "shell.exec"
//!     risk = "high"
//!     decision = "human"
//! "#)?;
//! let store = Arc::new(MemoryStore::new(ChainId::new("demo")?));
//! let gate = Gate::open(store, Arc::new(policy), GateConfig::default()).await?;
//!
//! let agent = Actor::agent("deploy-bot");
//! let action = Action::new("shell.exec", json!({"argv": ["git", "push"]}))?;
//! let proposal = gate.propose("sess-1", &agent, &action, &ProposalContext::default()).await?;
//!
//! // The approver approves the digest they were shown.
//! gate.approve(&proposal.request_id, &Actor::human("bob@example.com"), &action.digest()).await?;
//!
//! // The agent changed its arguments after approval: refused and recorded.
//! let drifted = Action::new("shell.exec", json!({"argv": ["git", "push", "--force"]}))?;
//! let err = gate.authorize(&proposal.request_id, &drifted).await.unwrap_err();
//! assert!(matches!(err.refusal(), Some(Refusal::DigestMismatch { .. })));
//!
//! // What was approved runs, once.
//! let permit = gate.authorize(&proposal.request_id, &action).await?;
//! assert_eq!(permit.action(), &action);
//! gate.complete(permit, Outcome::succeeded().with_exit_code(0)).await?;
//! assert!(gate.authorize(&proposal.request_id, &action).await.is_err());
//!
//! // The chain verifies, and so does the story it tells.
//! let story = syndicate_core::story::check_store(gate.store().as_ref()).await?;
//! assert!(story.is_consistent());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod bodies;
mod error;
mod permit;
mod policy;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use bodies::{
    ApprovalRefusedBody, ApprovedBody, CompletedBody, DecisionContext, DeniedBody, GateStatusBody,
    Method, MismatchBody, ModelInfo, OutcomeKind, PolicyActivatedBody, ProposalContext,
    ProposedBody, RejectedBody, StartedBody, body_of,
};
pub use error::{GateError, Refusal};
pub use permit::{Outcome, Permit, result_digest};
pub use policy::{
    Classification, DEFAULT_APPROVAL_TTL_SECONDS, Decision, Policy, PolicyError, RiskTier, Rule,
    RulePolicy, glob_match,
};

use crate::action::Action;
use crate::digest::{Digest, tags};
use crate::event::{Actor, Event, EventDraft, EventKind};
use crate::seal::Head;
use crate::store::{EventStore, Order, Query, StoreError};
use crate::timestamp::Timestamp;
use crate::verify::{Check, VERIFY_PAGE, Verifier, Violation};

use bodies::to_body;

/// The gate's clock: used for approval lifetimes (`expires_at`) and expiry
/// checks. Event `at` stamps come from the store, not from this clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How a [`Gate`] behaves.
#[derive(Clone)]
pub struct GateConfig {
    /// The clock for approval lifetimes; [`Timestamp::now`] by default.
    /// Tests and demos pass one they can advance.
    pub clock: Clock,
    /// Whether the requester may approve their own request (default
    /// `false`: another identity must approve).
    pub allow_self_approval: bool,
    /// Session of the gate's own events (`policy.activated`,
    /// `gate.degraded`, `gate.recovered`, refusals about unknown requests);
    /// default `gate`.
    pub session: String,
    /// Actor id of the gate's own events; default `gate`.
    pub operator: String,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            clock: Arc::new(Timestamp::now),
            allow_self_approval: false,
            session: "gate".into(),
            operator: "gate".into(),
        }
    }
}

impl fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateConfig")
            .field("allow_self_approval", &self.allow_self_approval)
            .field("session", &self.session)
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

/// The result of [`Gate::propose`].
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The new request's id.
    pub request_id: String,
    /// The action, as recorded (canonical).
    pub action: Action,
    /// What the policy decided.
    pub classification: Classification,
    /// Seq of the `action.proposed` event.
    pub seq: u64,
}

impl Proposal {
    /// The digest an approver must approve.
    pub fn digest(&self) -> Digest {
        self.action.digest()
    }

    /// The policy's decision.
    pub fn decision(&self) -> Decision {
        self.classification.decision
    }
}

/// The result of a successful [`Gate::approve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The request.
    pub request_id: String,
    /// Distinct approvals of the proposed digest, this one included.
    pub approvals: u32,
    /// Approvals needed.
    pub required: u32,
    /// When this approval stops being usable.
    pub expires_at: Timestamp,
    /// Seq of the `action.approved` event.
    pub seq: u64,
}

impl Approval {
    /// True when the request now has all the approvals it needs.
    pub fn is_complete(&self) -> bool {
        self.approvals >= self.required
    }
}

/// What the chain says about one request.
#[derive(Debug, Clone)]
pub struct RequestState {
    /// The `action.proposed` event.
    pub proposed_event: Event,
    /// Its body.
    pub proposed: ProposedBody,
    /// The session the request belongs to.
    pub session: String,
    /// Approvals of the proposed digest, one per approver, oldest first.
    pub approvals: Vec<(Event, ApprovedBody)>,
    /// Whether it was denied.
    pub denied: bool,
    /// Whether it started.
    pub started: bool,
    /// Whether it completed.
    pub completed: bool,
}

impl RequestState {
    /// Approvals counted towards [`ProposedBody::approvals_required`].
    pub fn approval_count(&self) -> u32 {
        u32::try_from(self.approvals.len()).unwrap_or(u32::MAX)
    }

    /// True when enough distinct approvers approved the proposed digest.
    pub fn is_approved(&self) -> bool {
        self.approval_count() >= self.proposed.approvals_required.max(1)
    }

    /// The state of a request from its events in seq order; `None` when
    /// they hold no `action.proposed`.
    ///
    /// # Errors
    /// [`GateError::Malformed`] when the `action.proposed` body is not one.
    pub fn of_events(events: Vec<Event>) -> Result<Option<RequestState>, GateError> {
        let Some(proposed_event) = events
            .iter()
            .find(|e| e.columns.kind == EventKind::ActionProposed.as_str())
            .cloned()
        else {
            return Ok(None);
        };
        let proposed: ProposedBody = body_of(&proposed_event)?;
        let mut state = RequestState {
            session: proposed_event.columns.session.clone(),
            proposed_event,
            proposed,
            approvals: Vec::new(),
            denied: false,
            started: false,
            completed: false,
        };
        for event in events {
            match event.columns.kind.as_str() {
                "action.approved" => {
                    let Ok(body) = body_of::<ApprovedBody>(&event) else {
                        continue;
                    };
                    if body.action_digest == state.proposed.action_digest
                        && !state
                            .approvals
                            .iter()
                            .any(|(_, a)| a.approver == body.approver)
                    {
                        state.approvals.push((event, body));
                    }
                }
                "action.denied" => state.denied = true,
                "execution.started" => state.started = true,
                "execution.completed" => state.completed = true,
                _ => {}
            }
        }
        Ok(Some(state))
    }

    /// The earliest `expires_at` among the counted approvals.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.approvals
            .iter()
            .map(|(_, a)| a.expires_at.unwrap_or(Timestamp::MAX))
            .min()
    }
}

#[derive(Debug, Default)]
struct Cursor {
    /// The last head verified.
    verified: Option<Head>,
    /// Degraded according to the chain (the last gate.degraded not followed
    /// by a gate.recovered).
    chain_degraded: Option<String>,
    /// Degraded but not recorded (the store could not be written).
    local_degraded: Option<String>,
}

impl Cursor {
    fn degraded(&self) -> Option<String> {
        self.local_degraded
            .clone()
            .or_else(|| self.chain_degraded.clone())
    }
}

/// The gate. See the [module docs](self).
pub struct Gate {
    store: Arc<dyn EventStore>,
    policy: Arc<dyn Policy>,
    config: GateConfig,
    cursor: Mutex<Cursor>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("store", &self.store)
            .field("policy", self.policy.reference())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a verification pass found.
struct Pass {
    head: Option<Head>,
    /// The last degraded/recovered mark seen: `Some(Some(reason))` for
    /// degraded, `Some(None)` for recovered.
    mark: Option<Option<String>>,
    violation: Option<Violation>,
    /// The events of the wanted request this pass verified.
    matched: Vec<Event>,
}

impl Gate {
    /// Opens a gate on a store: verifies the whole chain, records
    /// `policy.activated` if this policy is not the one last activated, and
    /// returns the gate (degraded if the chain does not verify).
    ///
    /// # Errors
    /// [`GateError::Store`] when the store cannot be read or written.
    pub async fn open(
        store: Arc<dyn EventStore>,
        policy: Arc<dyn Policy>,
        config: GateConfig,
    ) -> Result<Self, GateError> {
        let gate = Gate {
            store,
            policy,
            config,
            cursor: Mutex::new(Cursor::default()),
        };
        let pass = gate.verify_pass(None, None).await?;
        {
            let mut cursor = gate.lock();
            cursor.verified = pass.head;
            if let Some(mark) = pass.mark {
                cursor.chain_degraded = mark;
            }
        }
        if let Some(violation) = pass.violation {
            gate.degrade(format!("chain does not verify: {violation}"))
                .await;
        }
        gate.activate_policy().await?;
        Ok(gate)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<dyn Policy> {
        &self.policy
    }

    /// Why the gate is degraded, or `None` when it is not (as of its last
    /// verification).
    pub fn degraded(&self) -> Option<String> {
        self.lock().degraded()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.cursor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn draft(&self, session: &str, kind: EventKind, actor: Actor, body: Value) -> EventDraft {
        EventDraft::new(session, kind, actor, body).with_policy(self.policy.reference().clone())
    }

    fn system_actor(&self) -> Actor {
        Actor::system(self.config.operator.clone())
    }

    async fn activate_policy(&self) -> Result<(), GateError> {
        let latest = self
            .store
            .query(&Query {
                kind: Some(EventKind::PolicyActivated),
                order: Order::Descending,
                limit: 1,
                ..Query::all()
            })
            .await?;
        let active = latest
            .first()
            .and_then(|e| body_of::<PolicyActivatedBody>(e).ok())
            .map(|b| b.policy);
        if active.as_ref() == Some(self.policy.reference()) {
            return Ok(());
        }
        let body = PolicyActivatedBody {
            policy: self.policy.reference().clone(),
            document: self.policy.document().clone(),
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::PolicyActivated,
            self.system_actor(),
            to_body(&body),
        );
        self.append(vec![draft]).await?;
        Ok(())
    }

    /// Appends; any failure but a refused draft or a used key degrades the
    /// gate (a gate that cannot record does not execute).
    async fn append(&self, drafts: Vec<EventDraft>) -> Result<Vec<Event>, StoreError> {
        match self.store.append(&drafts).await {
            Ok(events) => Ok(events),
            Err(e @ (StoreError::InvalidDraft(_) | StoreError::AlreadyUsed { .. })) => Err(e),
            Err(e) => {
                self.degrade(format!("append failed: {e}")).await;
                Err(e)
            }
        }
    }

    /// Enters the degraded state and records `gate.degraded` if possible.
    async fn degrade(&self, reason: String) -> Refusal {
        self.lock().local_degraded = Some(reason.clone());
        let body = GateStatusBody {
            reason: reason.clone(),
            operator: self.config.operator.clone(),
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::GateDegraded,
            self.system_actor(),
            to_body(&body),
        );
        if self.store.append(&[draft]).await.is_ok() {
            let mut cursor = self.lock();
            cursor.chain_degraded = Some(reason.clone());
            cursor.local_degraded = None;
        }
        Refusal::Degraded { reason }
    }

    /// Verifies from `from` (genesis when `None`) to the current end.
    async fn verify_pass(
        &self,
        from: Option<Head>,
        want: Option<&str>,
    ) -> Result<Pass, StoreError> {
        let chain = self.store.chain().clone();
        let mut verifier = match &from {
            Some(head) => Verifier::resume(chain, head),
            None => Verifier::new(chain),
        };
        let mut mark = None;
        let mut matched = Vec::new();
        loop {
            let page = match self.store.read(verifier.next_seq(), VERIFY_PAGE).await {
                Ok(page) => page,
                Err(StoreError::Corrupt { seq, reason, .. }) => {
                    return Ok(Pass {
                        head: verifier.summary().head,
                        mark,
                        matched,
                        violation: Some(Violation {
                            seq,
                            check: Check::Row,
                            expected: "a readable row".into(),
                            found: reason,
                        }),
                    });
                }
                Err(e) => return Err(e),
            };
            for event in &page {
                if let Err(violation) = verifier.check(event) {
                    return Ok(Pass {
                        head: verifier.summary().head,
                        mark,
                        matched,
                        violation: Some(violation),
                    });
                }
                if want.is_some() && event.columns.request_id.as_deref() == want {
                    matched.push(event.clone());
                }
                match event.columns.kind.as_str() {
                    "gate.degraded" => {
                        let reason = body_of::<GateStatusBody>(event)
                            .map_or_else(|e| e.to_string(), |b| b.reason);
                        mark = Some(Some(reason));
                    }
                    "gate.recovered" => mark = Some(None),
                    _ => {}
                }
            }
            if page.len() < VERIFY_PAGE {
                return Ok(Pass {
                    head: verifier.summary().head,
                    mark,
                    matched,
                    violation: None,
                });
            }
        }
    }

    /// Verifies the events appended since the last verified head; degrades
    /// on a violation. Returns the refusal when the gate is (now) degraded,
    /// else the events of request `want` that this pass verified.
    async fn check_chain(&self, want: &str) -> Result<Vec<Event>, Refusal> {
        if let Some(reason) = self.degraded() {
            return Err(Refusal::Degraded { reason });
        }
        let from = self.lock().verified;
        let pass = match self.verify_pass(from, Some(want)).await {
            Ok(pass) => pass,
            Err(e) => return Err(self.degrade(format!("cannot read the chain: {e}")).await),
        };
        {
            let mut cursor = self.lock();
            let newer = match (pass.head, cursor.verified) {
                (Some(new), Some(old)) => new.seq > old.seq,
                (Some(_), None) => true,
                _ => false,
            };
            if newer {
                cursor.verified = pass.head;
                if let Some(mark) = pass.mark {
                    cursor.chain_degraded = mark;
                }
            }
        }
        if let Some(violation) = pass.violation {
            return Err(self
                .degrade(format!("chain does not verify: {violation}"))
                .await);
        }
        match self.degraded() {
            Some(reason) => Err(Refusal::Degraded { reason }),
            None => Ok(pass.matched),
        }
    }

    /// Proposes an action: records `action.proposed` with the canonical
    /// action, its digest, the requester, the policy's classification and
    /// the given context; for an auto-approving rule also `action.approved`
    /// (method `policy`), for a denying rule (or no matching rule)
    /// `action.denied`, in the same atomic batch.
    ///
    /// # Errors
    /// [`GateError::Store`] when the events cannot be recorded (the gate
    /// then degrades) or the session or requester is empty or too long.
    pub async fn propose(
        &self,
        session: &str,
        requester: &Actor,
        action: &Action,
        context: &ProposalContext,
    ) -> Result<Proposal, GateError> {
        let classification = self.policy.classify(action);
        let request_id = new_request_id(self.store.chain().as_str(), session);
        let proposed = ProposedBody {
            request_id: request_id.clone(),
            action: action.to_value(),
            action_digest: action.digest(),
            requester: requester.id.clone(),
            risk_tier: classification.risk,
            decision: classification.decision,
            rule: classification.rule.clone(),
            approvals_required: classification.approvers.max(1),
            approval_ttl_seconds: classification.approval_ttl_seconds,
            controls: classification.controls.clone(),
            model: context.model.clone(),
            context: context.context.clone(),
        };
        let mut drafts = vec![
            self.draft(
                session,
                EventKind::ActionProposed,
                requester.clone(),
                to_body(&proposed),
            )
            .with_once(format!("action.proposed:{request_id}")),
        ];
        let rule_actor = || {
            Actor::policy(format!(
                "policy:{}",
                classification.rule.as_deref().unwrap_or("no-match")
            ))
        };
        match classification.decision {
            Decision::AutoApprove => {
                let approval = ApprovedBody {
                    request_id: request_id.clone(),
                    action_digest: action.digest(),
                    approver: rule_actor().id,
                    method: Method::Policy,
                    rule: classification.rule.clone(),
                    expires_at: Some(
                        (self.config.clock)().plus_seconds(classification.approval_ttl_seconds),
                    ),
                    comment: None,
                    controls: classification.controls.clone(),
                };
                let approver = rule_actor().id;
                drafts.push(
                    self.draft(
                        session,
                        EventKind::ActionApproved,
                        rule_actor(),
                        to_body(&approval),
                    )
                    .with_once(format!("approval:{request_id}:{approver}")),
                );
            }
            Decision::Deny => {
                let reason = match &classification.rule {
                    Some(rule) => format!("denied by policy rule {rule:?}"),
                    None => "no policy rule matches this action".to_owned(),
                };
                let denial = DeniedBody {
                    request_id: request_id.clone(),
                    reason,
                    by: rule_actor().id,
                    method: Method::Policy,
                    rule: classification.rule.clone(),
                };
                drafts.push(
                    self.draft(
                        session,
                        EventKind::ActionDenied,
                        rule_actor(),
                        to_body(&denial),
                    )
                    .with_once(format!("decision:{request_id}")),
                );
            }
            Decision::Human => {}
        }
        let events = self.append(drafts).await?;
        Ok(Proposal {
            request_id,
            action: action.clone(),
            classification,
            seq: events.first().map_or(0, |e| e.seq),
        })
    }

    /// Reads what the chain says about a request; `None` when it was never
    /// proposed.
    ///
    /// # Errors
    /// [`GateError::Store`] when the store cannot be read,
    /// [`GateError::Malformed`] when its `action.proposed` body is not one.
    pub async fn request(&self, request_id: &str) -> Result<Option<RequestState>, GateError> {
        let mut events = Vec::new();
        let mut query = Query::request(request_id);
        loop {
            let page = self.store.query(&query).await?;
            let full = page.len() >= query.limit;
            query.after_seq = page.last().map(|e| e.seq);
            events.extend(page);
            if !full {
                break;
            }
        }
        RequestState::of_events(events)
    }

    /// Records a refusal of an approval or denial attempt and returns it as
    /// an error.
    async fn refuse_approval(
        &self,
        session: &str,
        request_id: &str,
        who: &Actor,
        digest_seen: Option<Digest>,
        refusal: Refusal,
    ) -> GateError {
        let body = ApprovalRefusedBody {
            request_id: request_id.to_owned(),
            approver: who.id.clone(),
            digest_seen,
            reason: refusal.code().to_owned(),
            detail: refusal.to_string(),
        };
        let draft = self.draft(
            session,
            EventKind::ApprovalRefused,
            who.clone(),
            to_body(&body),
        );
        if let Err(e) = self.append(vec![draft]).await
            && !matches!(e, StoreError::InvalidDraft(_))
        {
            return GateError::Store(e);
        }
        GateError::Refused {
            request_id: request_id.to_owned(),
            refusal,
        }
    }

    /// Approves the digest the approver was shown. Refused (and the refusal
    /// recorded as `approval.refused`) when the request is unknown, already
    /// denied, started or fully approved, the digest is not the proposed
    /// one, the approver is the requester (unless
    /// [`GateConfig::allow_self_approval`]) or already approved it.
    ///
    /// The approval expires after the rule's `approval_ttl_seconds`.
    ///
    /// # Errors
    /// [`GateError::Refused`] as above; [`GateError::Store`] when the store
    /// fails.
    pub async fn approve(
        &self,
        request_id: &str,
        approver: &Actor,
        digest_seen: &Digest,
    ) -> Result<Approval, GateError> {
        let Some(state) = self.request(request_id).await? else {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    approver,
                    Some(*digest_seen),
                    Refusal::UnknownRequest,
                )
                .await);
        };
        let p = &state.proposed;
        let refusal = if state.denied || state.started || state.is_approved() {
            Some(Refusal::AlreadyDecided)
        } else if *digest_seen != p.action_digest {
            Some(Refusal::DigestMismatch {
                expected: p.action_digest,
                found: *digest_seen,
            })
        } else if approver.id == p.requester && !self.config.allow_self_approval {
            Some(Refusal::SelfApproval)
        } else if state
            .approvals
            .iter()
            .any(|(_, a)| a.approver == approver.id)
        {
            Some(Refusal::DuplicateApprover)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    approver,
                    Some(*digest_seen),
                    refusal,
                )
                .await);
        }
        let expires_at = (self.config.clock)().plus_seconds(p.approval_ttl_seconds);
        let body = ApprovedBody {
            request_id: request_id.to_owned(),
            action_digest: *digest_seen,
            approver: approver.id.clone(),
            method: Method::Human,
            rule: None,
            expires_at: Some(expires_at),
            comment: None,
            controls: p.controls.clone(),
        };
        let draft = self
            .draft(
                &state.session,
                EventKind::ActionApproved,
                approver.clone(),
                to_body(&body),
            )
            .with_once(format!("approval:{request_id}:{}", approver.id));
        let event = match self.append(vec![draft]).await {
            Ok(mut events) => events.pop(),
            Err(StoreError::AlreadyUsed { .. }) => {
                return Err(self
                    .refuse_approval(
                        &state.session,
                        request_id,
                        approver,
                        Some(*digest_seen),
                        Refusal::DuplicateApprover,
                    )
                    .await);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Approval {
            request_id: request_id.to_owned(),
            approvals: state.approval_count() + 1,
            required: p.approvals_required.max(1),
            expires_at,
            seq: event.map_or(0, |e| e.seq),
        })
    }

    /// Denies a request that has not started (an approved request may still
    /// be denied before it starts: a revocation). Refused and recorded as
    /// `approval.refused` when the request is unknown, denied or started.
    ///
    /// # Errors
    /// [`GateError::Refused`] as above; [`GateError::Store`] when the store
    /// fails.
    pub async fn deny(
        &self,
        request_id: &str,
        who: &Actor,
        reason: &str,
    ) -> Result<Event, GateError> {
        let Some(state) = self.request(request_id).await? else {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    who,
                    None,
                    Refusal::UnknownRequest,
                )
                .await);
        };
        if state.denied || state.started {
            return Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    who,
                    None,
                    Refusal::AlreadyDecided,
                )
                .await);
        }
        let body = DeniedBody {
            request_id: request_id.to_owned(),
            reason: reason.to_owned(),
            by: who.id.clone(),
            method: Method::Human,
            rule: None,
        };
        let draft = self
            .draft(
                &state.session,
                EventKind::ActionDenied,
                who.clone(),
                to_body(&body),
            )
            .with_once(format!("decision:{request_id}"));
        match self.append(vec![draft]).await {
            Ok(mut events) => events.pop().ok_or_else(|| {
                GateError::Store(StoreError::Other {
                    store: "unknown",
                    source: "append returned no event".into(),
                })
            }),
            Err(StoreError::AlreadyUsed { .. }) => Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    who,
                    None,
                    Refusal::AlreadyDecided,
                )
                .await),
            Err(e) => Err(e.into()),
        }
    }

    /// Records `execution.rejected` (best effort) and returns the refusal.
    async fn reject(&self, session: &str, request_id: &str, refusal: Refusal) -> GateError {
        let body = RejectedBody {
            request_id: request_id.to_owned(),
            reason: refusal.code().to_owned(),
            detail: refusal.to_string(),
        };
        let draft = self.draft(
            session,
            EventKind::ExecutionRejected,
            self.system_actor(),
            to_body(&body),
        );
        if !matches!(refusal, Refusal::Degraded { .. }) {
            let _ = self.append(vec![draft]).await;
        } else {
            // Already degraded: record if possible, without degrading again.
            let _ = self.store.append(&[draft]).await;
        }
        GateError::Refused {
            request_id: request_id.to_owned(),
            refusal,
        }
    }

    /// Re-checks events a permit relies on: each re-hashes to its stored
    /// hash; one verified by the pass just made must have the hash verified
    /// there; one verified earlier must still be linked to by the event
    /// after it (so a row rewritten with a recomputed hash is caught).
    async fn recheck(&self, events: &[&Event], fresh: &[Event]) -> Result<(), String> {
        for event in events {
            let hash = Digest::of_canonical(tags::EVENT, &event.canonical);
            if hash != event.hash {
                return Err(format!(
                    "event {} no longer hashes to its stored hash",
                    event.seq
                ));
            }
            if let Some(verified) = fresh.iter().find(|e| e.seq == event.seq) {
                if verified.hash != hash || verified.canonical != event.canonical {
                    return Err(format!(
                        "event {} changed while it was being verified",
                        event.seq
                    ));
                }
                continue;
            }
            let next = self
                .store
                .read(event.seq + 1, 1)
                .await
                .map_err(|e| format!("cannot read event {}: {e}", event.seq + 1))?;
            if let Some(next) = next.first() {
                let prev = next
                    .envelope()
                    .map_err(|e| format!("event {} is not an envelope: {e}", next.seq))?
                    .prev;
                if prev != hash {
                    return Err(format!(
                        "event {} does not link to event {}",
                        next.seq, event.seq
                    ));
                }
            }
        }
        Ok(())
    }

    /// Authorizes the action about to run. When its digest equals the
    /// approved digest and the approval is complete, unused and unexpired,
    /// records `execution.started` (single-use key
    /// `execution.started:<request_id>`) and returns the [`Permit`]: run
    /// from [`Permit::action`].
    ///
    /// Otherwise records `execution.digest_mismatch` or `execution.rejected`
    /// and refuses. Before anything, verifies the events appended since the
    /// last verification and re-checks the events the permit relies on; a
    /// failure degrades the gate.
    ///
    /// # Errors
    /// [`GateError::Refused`] with [`Refusal::UnknownRequest`],
    /// [`Refusal::Denied`], [`Refusal::AlreadyUsed`],
    /// [`Refusal::NotApproved`], [`Refusal::Expired`],
    /// [`Refusal::DigestMismatch`] or [`Refusal::Degraded`].
    pub async fn authorize(&self, request_id: &str, action: &Action) -> Result<Permit, GateError> {
        let fallback_session = self.config.session.clone();
        // Verify first: the pass also yields this request's events when they
        // are all new since the last pass (the common case of a request
        // proposed and approved moments ago), saving a query.
        let fresh = match self.check_chain(request_id).await {
            Ok(fresh) => fresh,
            Err(refusal) => {
                let session = match self.request(request_id).await {
                    Ok(Some(state)) => state.session,
                    _ => fallback_session,
                };
                return Err(self.reject(&session, request_id, refusal).await);
            }
        };
        let from_pass = fresh
            .iter()
            .any(|e| e.columns.kind == EventKind::ActionProposed.as_str());
        let state = if from_pass {
            RequestState::of_events(fresh.clone())
        } else {
            self.request(request_id).await
        };
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                let refusal = self.degrade(format!("cannot read request: {e}")).await;
                return Err(self.reject(&fallback_session, request_id, refusal).await);
            }
        };
        let session = state
            .as_ref()
            .map_or(fallback_session, |s| s.session.clone());
        let Some(state) = state else {
            return Err(self
                .reject(&session, request_id, Refusal::UnknownRequest)
                .await);
        };
        let p = &state.proposed;
        let refusal = if state.denied {
            Some(Refusal::Denied)
        } else if state.started {
            Some(Refusal::AlreadyUsed)
        } else if !state.is_approved() {
            Some(Refusal::NotApproved {
                approvals: state.approval_count(),
                required: p.approvals_required.max(1),
            })
        } else {
            match state.expires_at() {
                Some(expired_at) if (self.config.clock)() >= expired_at => {
                    Some(Refusal::Expired { expired_at })
                }
                _ => None,
            }
        };
        if let Some(refusal) = refusal {
            return Err(self.reject(&session, request_id, refusal).await);
        }
        if action.digest() != p.action_digest {
            let body = MismatchBody {
                request_id: request_id.to_owned(),
                approved_digest: p.action_digest,
                executed_digest: action.digest(),
                action: action.to_value(),
            };
            let draft = self.draft(
                &session,
                EventKind::ExecutionDigestMismatch,
                self.system_actor(),
                to_body(&body),
            );
            let _ = self.append(vec![draft]).await;
            return Err(GateError::Refused {
                request_id: request_id.to_owned(),
                refusal: Refusal::DigestMismatch {
                    expected: p.action_digest,
                    found: action.digest(),
                },
            });
        }
        let mut relied: Vec<&Event> = vec![&state.proposed_event];
        relied.extend(state.approvals.iter().map(|(e, _)| e));
        if let Err(reason) = self.recheck(&relied, &fresh).await {
            let refusal = self.degrade(reason).await;
            return Err(self.reject(&session, request_id, refusal).await);
        }
        // Run from the recorded action, not the caller's text.
        let approved = match Action::from_value(p.action.clone()) {
            Ok(a) if a.digest() == p.action_digest => a,
            _ => {
                let refusal = self
                    .degrade(format!(
                        "event {} records an action that does not match its digest",
                        state.proposed_event.seq
                    ))
                    .await;
                return Err(self.reject(&session, request_id, refusal).await);
            }
        };
        let body = StartedBody {
            request_id: request_id.to_owned(),
            approved_digest: p.action_digest,
            executed_digest: approved.digest(),
            controls: p.controls.clone(),
        };
        let draft = self
            .draft(
                &session,
                EventKind::ExecutionStarted,
                self.system_actor(),
                to_body(&body),
            )
            .with_once(format!("execution.started:{request_id}"));
        match self.append(vec![draft]).await {
            Ok(events) => Ok(Permit {
                request_id: request_id.to_owned(),
                session,
                action: approved,
                started_seq: events.first().map_or(0, |e| e.seq),
                controls: p.controls.clone(),
            }),
            Err(StoreError::AlreadyUsed { .. }) => Err(self
                .reject(&session, request_id, Refusal::AlreadyUsed)
                .await),
            Err(e) => {
                // The append degraded the gate already (unless the draft
                // was refused, which a valid state cannot produce).
                let reason = self
                    .degraded()
                    .unwrap_or_else(|| format!("cannot record execution.started: {e}"));
                Err(GateError::Refused {
                    request_id: request_id.to_owned(),
                    refusal: Refusal::Degraded { reason },
                })
            }
        }
    }

    /// Records `execution.completed` for a permit.
    ///
    /// # Errors
    /// [`GateError::Store`] when it cannot be recorded (the gate then
    /// degrades; the chain shows the execution started and never completed).
    pub async fn complete(&self, permit: Permit, outcome: Outcome) -> Result<Event, GateError> {
        let body = CompletedBody {
            request_id: permit.request_id.clone(),
            outcome: outcome.kind,
            exit_code: outcome.exit_code,
            result_digest: outcome.result_digest,
            error: outcome.error,
            controls: permit.controls.clone(),
        };
        let draft = self
            .draft(
                &permit.session,
                EventKind::ExecutionCompleted,
                self.system_actor(),
                to_body(&body),
            )
            .with_once(format!("execution.completed:{}", permit.request_id));
        let mut events = self.append(vec![draft]).await?;
        events.pop().ok_or_else(|| {
            GateError::Store(StoreError::Other {
                store: "unknown",
                source: "append returned no event".into(),
            })
        })
    }

    /// Runs `f` only with a permit, and always records completion:
    /// `succeeded` when `f` returns `Ok`, `failed` with the error's text
    /// when it returns `Err`. Returns what `f` returned.
    ///
    /// `f` receives the approved action (from the permit), not `action`.
    /// If `f` panics, no completion is recorded and the chain shows an
    /// execution that started and never completed.
    ///
    /// # Errors
    /// As [`Gate::authorize`] (then `f` never runs) and
    /// [`Gate::complete`].
    pub async fn run<F, Fut, T, E>(
        &self,
        request_id: &str,
        action: &Action,
        f: F,
    ) -> Result<Result<T, E>, GateError>
    where
        F: FnOnce(Action) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let permit = self.authorize(request_id, action).await?;
        let result = f(permit.action().clone()).await;
        let outcome = match &result {
            Ok(_) => Outcome::succeeded(),
            Err(e) => Outcome::failed(e.to_string()),
        };
        self.complete(permit, outcome).await?;
        Ok(result)
    }

    /// Leaves the degraded state: re-verifies the whole chain and records
    /// `gate.recovered` with the operator and reason.
    ///
    /// # Errors
    /// [`GateError::StillBroken`] when the chain still does not verify (the
    /// gate stays degraded); [`GateError::Store`] when the store cannot be
    /// read or written.
    pub async fn recover(&self, operator: &Actor, reason: &str) -> Result<Event, GateError> {
        let pass = self.verify_pass(None, None).await?;
        if let Some(violation) = pass.violation {
            return Err(GateError::StillBroken(violation));
        }
        let body = GateStatusBody {
            reason: reason.to_owned(),
            operator: operator.id.clone(),
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::GateRecovered,
            operator.clone(),
            to_body(&body),
        );
        let mut events = self.store.append(&[draft]).await?;
        let event = events.pop().ok_or_else(|| {
            GateError::Store(StoreError::Other {
                store: "unknown",
                source: "append returned no event".into(),
            })
        })?;
        let mut cursor = self.lock();
        cursor.verified = pass.head;
        cursor.chain_degraded = None;
        cursor.local_degraded = None;
        Ok(event)
    }
}

/// The policy last activated on a store's chain, read back from its
/// `policy.activated` document (so a gate can be opened without the policy
/// file, e.g. by `syndicate approve`). `None` when none was activated.
///
/// # Errors
/// [`GateError::Store`] when the store cannot be read;
/// [`GateError::Malformed`] / [`GateError::Policy`] when the recorded
/// document is not a rule policy.
pub async fn active_policy(store: &dyn EventStore) -> Result<Option<RulePolicy>, GateError> {
    let latest = store
        .query(&Query {
            kind: Some(EventKind::PolicyActivated),
            order: Order::Descending,
            limit: 1,
            ..Query::all()
        })
        .await?;
    let Some(event) = latest.first() else {
        return Ok(None);
    };
    let body: PolicyActivatedBody = body_of(event)?;
    Ok(Some(RulePolicy::from_value(body.document)?))
}

/// A fresh request id: `req-` and 32 hex characters derived from the chain,
/// session, process, time and a counter. Uniqueness on a chain is enforced
/// by the single-use key `action.proposed:<request_id>`.
fn new_request_id(chain: &str, session: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{chain}\0{session}\0{}\0{nanos}\0{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = Digest::of_canonical("syndicate:request-id:v1", seed.as_bytes()).to_string();
    format!("req-{}", &digest[..32])
}
