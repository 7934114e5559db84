//! Semantic verification: does the story the chain tells hold together?
//!
//! Integrity verification ([`Verifier`](crate::Verifier)) proves the bytes
//! were not changed. This module checks what they say, in one pass over the
//! events in seq order:
//!
//! - every `action.proposed` digest is the digest of its action, and a
//!   request is proposed once;
//! - every `action.approved` follows the proposal of its request and
//!   approves the proposed digest;
//! - every `execution.started` follows enough approvals (distinct
//!   approvers, as many as the proposal requires) of the same request with
//!   the same digest, was not denied, and its approved and executed digests
//!   both equal the proposed digest;
//! - no request starts twice;
//! - every `execution.completed` follows the start of its request, once.
//!
//! Expiry is judged by the gate's clock when it authorizes and is not
//! re-checked here: the events' `at` stamps come from the store's clock.
//!
//! Memory is proportional to the *open* requests: a request is forgotten once
//! it completes. A start after completion is therefore reported as a start
//! without approval (still a violation, under another rule).

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::action::Action;
use crate::digest::Digest;
use crate::event::Event;
use crate::gate::{ApprovedBody, ProposedBody, StartedBody, body_of};
use crate::store::{EventStore, StoreError};
use crate::verify::VERIFY_PAGE;

/// Which rule of the story an event breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoryRule {
    /// A gate event's body cannot be read as its kind's body.
    MalformedBody,
    /// `action.proposed`'s `action_digest` is not the digest of its `action`.
    ProposedDigest,
    /// A request id was proposed twice.
    DuplicateProposal,
    /// An approval, denial or start names a request never proposed before.
    UnknownRequest,
    /// An approval approves another digest than the proposed one.
    ApprovalDigest,
    /// A start without the approvals it needs before it.
    StartWithoutApproval,
    /// A start of a denied request.
    StartAfterDenial,
    /// A start whose approved or executed digest is not the proposed one.
    StartDigest,
    /// A request started twice.
    DoubleStart,
    /// A completion without a start before it, or a second completion.
    CompletionWithoutStart,
}

impl StoryRule {
    /// A short name, e.g. `start_without_approval`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StoryRule::MalformedBody => "malformed_body",
            StoryRule::ProposedDigest => "proposed_digest",
            StoryRule::DuplicateProposal => "duplicate_proposal",
            StoryRule::UnknownRequest => "unknown_request",
            StoryRule::ApprovalDigest => "approval_digest",
            StoryRule::StartWithoutApproval => "start_without_approval",
            StoryRule::StartAfterDenial => "start_after_denial",
            StoryRule::StartDigest => "start_digest",
            StoryRule::DoubleStart => "double_start",
            StoryRule::CompletionWithoutStart => "completion_without_start",
        }
    }
}

/// One event that breaks the story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryViolation {
    /// The event's seq.
    pub seq: u64,
    /// The request it is about, when known.
    pub request_id: Option<String>,
    /// The rule it breaks.
    pub rule: StoryRule,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for StoryViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.rule.as_str())?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of a story check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoryReport {
    /// Events read.
    pub events: u64,
    /// Requests proposed.
    pub requests: u64,
    /// Requests proposed and not completed at the end.
    pub open_requests: u64,
    /// Every violation, in seq order.
    pub violations: Vec<StoryViolation>,
}

impl StoryReport {
    /// True when no violation was found.
    pub fn is_consistent(&self) -> bool {
        self.violations.is_empty()
    }
}

#[derive(Debug)]
struct Open {
    digest: Digest,
    required: u32,
    approvers: HashSet<String>,
    denied: bool,
    started: bool,
}

/// A streaming story checker: feed it every event in seq order with
/// [`check`](StoryChecker::check), then take the [`report`](StoryChecker::report).
#[derive(Debug, Default)]
pub struct StoryChecker {
    open: HashMap<String, Open>,
    report: StoryReport,
}

impl StoryChecker {
    /// A checker for a chain read from its first event.
    pub fn new() -> Self {
        StoryChecker::default()
    }

    fn violation(&mut self, event: &Event, rule: StoryRule, detail: String) {
        self.report.violations.push(StoryViolation {
            seq: event.seq,
            request_id: event.columns.request_id.clone(),
            rule,
            detail,
        });
    }

    /// Checks the next event; violations are collected in the report.
    pub fn check(&mut self, event: &Event) {
        self.report.events += 1;
        let request_id = event.columns.request_id.clone().unwrap_or_default();
        match event.columns.kind.as_str() {
            "action.proposed" => {
                let body: ProposedBody = match body_of(event) {
                    Ok(b) => b,
                    Err(e) => {
                        return self.violation(event, StoryRule::MalformedBody, e.to_string());
                    }
                };
                self.report.requests += 1;
                match Action::from_value(body.action.clone()) {
                    Ok(action) if action.digest() == body.action_digest => {}
                    Ok(action) => self.violation(
                        event,
                        StoryRule::ProposedDigest,
                        format!(
                            "action_digest {} but the action's digest is {}",
                            body.action_digest,
                            action.digest()
                        ),
                    ),
                    Err(e) => self.violation(
                        event,
                        StoryRule::ProposedDigest,
                        format!("the recorded action is not an action: {e}"),
                    ),
                }
                if self.open.contains_key(&body.request_id) {
                    return self.violation(
                        event,
                        StoryRule::DuplicateProposal,
                        "request proposed a second time".into(),
                    );
                }
                self.open.insert(
                    body.request_id,
                    Open {
                        digest: body.action_digest,
                        required: body.approvals_required.max(1),
                        approvers: HashSet::new(),
                        denied: false,
                        started: false,
                    },
                );
            }
            "action.approved" => {
                let body: ApprovedBody = match body_of(event) {
                    Ok(b) => b,
                    Err(e) => {
                        return self.violation(event, StoryRule::MalformedBody, e.to_string());
                    }
                };
                let Some(open) = self.open.get_mut(&body.request_id) else {
                    return self.violation(
                        event,
                        StoryRule::UnknownRequest,
                        "approval of a request not proposed before it (or already completed)"
                            .into(),
                    );
                };
                if body.action_digest != open.digest {
                    let detail = format!(
                        "approves digest {} but {} was proposed",
                        body.action_digest, open.digest
                    );
                    return self.violation(event, StoryRule::ApprovalDigest, detail);
                }
                open.approvers.insert(body.approver);
            }
            "action.denied" => {
                if let Some(open) = self.open.get_mut(&request_id) {
                    open.denied = true;
                } else {
                    self.violation(
                        event,
                        StoryRule::UnknownRequest,
                        "denial of a request not proposed before it (or already completed)".into(),
                    );
                }
            }
            "execution.started" => {
                let body: StartedBody = match body_of(event) {
                    Ok(b) => b,
                    Err(e) => {
                        return self.violation(event, StoryRule::MalformedBody, e.to_string());
                    }
                };
                let Some(open) = self.open.get_mut(&body.request_id) else {
                    return self.violation(
                        event,
                        StoryRule::StartWithoutApproval,
                        "start of a request not proposed and approved before it (or already completed)"
                            .into(),
                    );
                };
                let (was_started, denied, digest) = (open.started, open.denied, open.digest);
                let approvals = open.approvers.len();
                let required = open.required;
                open.started = true;
                if was_started {
                    return self.violation(
                        event,
                        StoryRule::DoubleStart,
                        "request started a second time".into(),
                    );
                }
                if denied {
                    self.violation(
                        event,
                        StoryRule::StartAfterDenial,
                        "start of a denied request".into(),
                    );
                }
                if approvals < usize::try_from(required).unwrap_or(usize::MAX) {
                    self.violation(
                        event,
                        StoryRule::StartWithoutApproval,
                        format!("{approvals} of {required} required approvals before the start"),
                    );
                }
                if body.approved_digest != digest || body.executed_digest != digest {
                    self.violation(
                        event,
                        StoryRule::StartDigest,
                        format!(
                            "approved {} and executed {}, but {digest} was proposed",
                            body.approved_digest, body.executed_digest
                        ),
                    );
                }
            }
            "execution.completed" => match self.open.remove(&request_id) {
                Some(open) if open.started => {}
                other => {
                    if let Some(open) = other {
                        self.open.insert(request_id, open);
                    }
                    self.violation(
                        event,
                        StoryRule::CompletionWithoutStart,
                        "completion without a start before it (or a second completion)".into(),
                    );
                }
            },
            _ => {}
        }
    }

    /// The report so far.
    pub fn report(&self) -> StoryReport {
        StoryReport {
            open_requests: u64::try_from(self.open.len()).unwrap_or(u64::MAX),
            ..self.report.clone()
        }
    }
}

/// Checks the story of a store's whole chain, reading pages of
/// [`VERIFY_PAGE`] events. Run it after the integrity check: it reads bodies
/// as written and assumes they are the hashed ones.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn check_store<S: EventStore + ?Sized>(store: &S) -> Result<StoryReport, StoreError> {
    let mut checker = StoryChecker::new();
    let mut next = 0u64;
    loop {
        let page = store.read(next, VERIFY_PAGE).await?;
        for event in &page {
            checker.check(event);
        }
        match page.last() {
            Some(last) => next = last.seq + 1,
            None => return Ok(checker.report()),
        }
    }
}
