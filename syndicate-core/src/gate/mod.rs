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
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
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

mod config;
mod error;
mod permit;
mod policy;
mod request;
mod trace;
mod verbs;
mod watch;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use crate::format::{
    ApprovalRefusedBody, ApprovedBody, CompletedBody, DecisionContext, DeniedBody, GateStatusBody,
    MAX_CALL_ID_BYTES, Method, MismatchBody, ModelInfo, OutcomeKind, PolicyActivatedBody,
    ProposalContext, ProposedBody, RejectedBody, StartedBody, body_of,
};
pub use crate::protocol::{Closed, Counted, Lookup, Request, Status};
pub use config::{Clock, GateConfig};
pub use error::{GateError, Refusal};
pub use permit::{Outcome, Permit, result_digest};
pub use policy::{
    Classification, DEFAULT_APPROVAL_TTL_SECONDS, Decision, Policy, PolicyError, PolicyFinding,
    RiskTier, Rule, RulePolicy, glob_match,
};
pub use request::{Approval, Proposal, RequestState};
pub use verbs::MAX_RECORDED_BYTES;

use crate::action::Action;
use crate::digest::{Digest, tags};
use crate::event::{Actor, Event, EventDraft, EventKind};
use crate::seal::Head;
use crate::store::{EventStore, StoreError};
use crate::timestamp::Timestamp;
use crate::verify::{Verifier, Violation};
use watch::{Cursor, Watch};

use crate::format::to_body;

/// The gate. See the [module docs](self).
pub struct Gate {
    store: Arc<dyn EventStore>,
    policy: Arc<dyn Policy>,
    config: GateConfig,
    cursor: Mutex<Cursor>,
    watch: tokio::sync::Mutex<Watch>,
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
        let store = match config.store_deadline {
            Some(deadline) => Arc::new(crate::deadline::DeadlineStore::new(store, deadline)),
            None => store,
        };
        let mut gate = Gate {
            store,
            policy,
            config,
            cursor: Mutex::new(Cursor::default()),
            watch: tokio::sync::Mutex::new(Watch {
                verified: None,
                ledger: crate::protocol::Ledger::default(),
            }),
        };
        for finding in gate.policy.findings() {
            tracing::warn!(policy = %gate.policy.reference().id, "policy finding: {finding}");
        }
        let (watch, pass) = gate.verify_all().await?;
        gate.watch = tokio::sync::Mutex::new(watch);
        if let Some(mark) = pass.mark {
            gate.lock().chain_degraded = mark;
        }
        if let Some(violation) = pass.violation {
            gate.degrade(format!("chain does not verify: {violation}"))
                .await;
        } else if let Some(breach) = pass.breach {
            gate.degrade(breach).await;
        } else if let Some(reason) = gate.check_checkpoints().await? {
            gate.degrade(reason).await;
        }
        gate.activate_policy().await?;
        Ok(gate)
    }

    /// Why the chain does not match one of [`GateConfig::checkpoints`], if
    /// it does not.
    async fn check_checkpoints(&self) -> Result<Option<String>, GateError> {
        for cp in &self.config.checkpoints {
            let why =
                match crate::tree::check_against_checkpoint(self.store.as_ref(), cp.size, &cp.root)
                    .await
                {
                    Ok(Ok(())) => continue,
                    Ok(Err(mismatch)) => mismatch.to_string(),
                    Err(crate::tree::TreeError::Store(e)) => return Err(e.into()),
                    Err(e) => e.to_string(),
                };
            return Ok(Some(format!(
                "chain does not match checkpoint {:?} of size {}: {why}",
                cp.origin, cp.size
            )));
        }
        Ok(None)
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
        let active = self.watch.lock().await.ledger.active_policy().cloned();
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
}

/// The policy last activated on a store's chain, read back from its
/// `policy.activated` document (so a gate can be opened without the policy
/// file, e.g. by `syndicate approve`). `None` when none was activated. The
/// chain is verified as it is read, and only verified events are believed:
/// on a broken chain this is the policy last activated before the break.
///
/// # Errors
/// [`GateError::Store`] when the store cannot be read;
/// [`GateError::Malformed`] / [`GateError::Policy`] when the recorded
/// document is not a rule policy.
pub async fn active_policy(store: &dyn EventStore) -> Result<Option<RulePolicy>, GateError> {
    let mut last: Option<Event> = None;
    crate::scan::scan_verified(store, Verifier::new(store.chain().clone()), None, |event| {
        if crate::format::kind_of(event) == Some(EventKind::PolicyActivated) {
            last = Some(event.clone());
        }
    })
    .await?;
    let Some(event) = last else {
        return Ok(None);
    };
    let body: PolicyActivatedBody = body_of(&event)?;
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
