//! What the chain says about one request.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::ChainId;
use crate::approvers::Signers;
use crate::protocol::{Closed, Ledger, Lookup, Rules};

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

/// What a list of events says about one request: a view for tools that
/// read a request's events themselves (by the `request_id` index), judged by
/// the same state machine as the gate ([`Ledger`]). The gate itself decides
/// from the events it verified, never from such a list.
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
        RequestState::of_events_proven(events, None, None)
    }

    /// As [`RequestState::of_events`], counting under a policy that declares
    /// approvers only the approvals that prove themselves: a policy approval
    /// of a request the policy auto-approved, or a human approval whose
    /// signed decision verifies against a key the policy lists for that
    /// approver, for this chain, request and digest. An approval appended to
    /// the store without a valid signature counts for nothing (and does not
    /// stand in the way of that approver's genuine one).
    ///
    /// # Errors
    /// As [`RequestState::of_events`].
    pub fn of_events_proven(
        events: Vec<Event>,
        signers: Option<&Signers>,
        chain: Option<&ChainId>,
    ) -> Result<Option<RequestState>, GateError> {
        let Some(proposed_event) = events
            .iter()
            .find(|e| e.columns.kind == EventKind::ActionProposed.as_str())
            .cloned()
        else {
            return Ok(None);
        };
        let proposed: ProposedBody = body_of(&proposed_event)?;
        let id = proposed.request_id.clone();
        let mut ledger = Ledger::new(Rules {
            chain: chain.cloned(),
            signers: signers.cloned(),
            ..Rules::default()
        });
        let mut counted: Vec<u64> = Vec::new();
        let (mut denied, mut started, mut completed) = (false, false, false);
        for event in &events {
            ledger.apply(event);
            match ledger.lookup(&id) {
                Lookup::Open(r) => {
                    counted = r.approvals.iter().map(|a| a.seq).collect();
                    started = r.started.is_some();
                }
                Lookup::Closed(Closed::Denied) => denied = true,
                Lookup::Closed(Closed::Completed) => {
                    started = true;
                    completed = true;
                }
                Lookup::Unknown => {}
            }
        }
        let approvals = events
            .into_iter()
            .filter(|e| counted.contains(&e.seq))
            .filter_map(|e| body_of::<ApprovedBody>(&e).ok().map(|b| (e, b)))
            .collect();
        Ok(Some(RequestState {
            session: proposed_event.columns.session.clone(),
            proposed_event,
            proposed,
            approvals,
            denied,
            started,
            completed,
        }))
    }

    /// The earliest `expires_at` among the counted approvals.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.approvals
            .iter()
            .map(|(_, a)| a.expires_at.unwrap_or(Timestamp::MAX))
            .min()
    }
}
