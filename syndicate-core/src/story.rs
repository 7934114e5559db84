//! Semantic verification: does the story the chain tells hold together?
//!
//! Integrity verification ([`Verifier`]) proves the bytes
//! were not changed. The story check judges what they say, with the very
//! state machine the gate decides with ([`protocol`](crate::protocol)), so
//! it knows every rule the gate enforces: a request is proposed once and
//! never again after it closed; approvals approve the proposed digest, by
//! their event's actor, by valid identities other than the requester, with
//! a verified signature where the policy in force declares approvers, and
//! policy approvals only of auto-approved requests; a start follows enough
//! usable approvals, no denial, no degradation, and starts once; a
//! completion follows the start; every single-use key is the one the
//! protocol gives its event; every annotation refers to an earlier event
//! that exists, by its hash ([`ReferenceChecker`]). [`StoryRule`] lists the
//! rules.
//!
//! [`audit_store`] checks integrity and the story in one pass over the same
//! bytes, so rows changed between two passes cannot split the verdicts.
//!
//! Memory is proportional to the *open* requests, plus 16 bytes per closed
//! request (so a closed request id proposed again is caught), plus the
//! annotation reference check's 36 bytes per event and about 100 per
//! request id (an annotation may name any earlier event by seq and hash).

use std::fmt;

use crate::annotation::ReferenceChecker;
use crate::event::Event;
use crate::protocol::{Ledger, Rules};
use crate::store::{EventStore, StoreError};
use crate::verify::{Report, Verifier};

/// Which rule of the story an event breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoryRule {
    /// A gate event's body cannot be read as its kind's body.
    MalformedBody,
    /// `action.proposed`'s `action_digest` is not the digest of its `action`.
    ProposedDigest,
    /// A request id was proposed twice while open.
    DuplicateProposal,
    /// A request id was proposed again after it completed or was denied (a replay of its approvals).
    ReProposal,
    /// An approval, denial or start names a request never proposed before (or already closed).
    UnknownRequest,
    /// An approval approves another digest than the proposed one.
    ApprovalDigest,
    /// An approval whose event actor is not its approver (or a proposal whose actor is not its requester).
    ApproverNotActor,
    /// A requester approved their own request.
    SelfApproval,
    /// A person's approval names an id that is not a valid identity or is reserved (`policy:`, `gate`).
    InvalidIdentity,
    /// A policy approval of a request the policy did not auto-approve.
    PolicyApprovalOfHumanRequest,
    /// Under a policy that declares approvers, an approval without a signature that verifies.
    UnprovenApproval,
    /// A start without the approvals it needs before it.
    StartWithoutApproval,
    /// A start of a denied request.
    StartAfterDenial,
    /// A start after its approvals stopped being usable.
    StartAfterExpiry,
    /// A start while the chain records the gate as degraded.
    StartWhileDegraded,
    /// A start whose approved or executed digest is not the proposed one.
    StartDigest,
    /// A request started twice.
    DoubleStart,
    /// A completion without a start before it, or a second completion.
    CompletionWithoutStart,
    /// Under a policy that declares approvers, a person's denial without a
    /// signed decision by a declared approver or operator (it still stops
    /// the request).
    UnprovenDenial,
    /// Under a policy that declares operators, a `gate.recovered` without an
    /// operator's signed decision for the degradation it ends (it does not
    /// end it).
    UnprovenRecovery,
    /// A single-use key that is not the one the protocol gives the event, or one used twice.
    ReusedOnceKey,
    /// An annotation whose `refers_to` names no earlier event with that hash,
    /// whose request was never proposed before it, or that is about another
    /// request than the event it refers to; or a `type`d annotation whose
    /// body is not one ([`annotation`](crate::annotation)).
    AnnotationReference,
}

impl StoryRule {
    /// Every rule.
    pub const ALL: &'static [StoryRule] = &[
        StoryRule::MalformedBody,
        StoryRule::ProposedDigest,
        StoryRule::DuplicateProposal,
        StoryRule::ReProposal,
        StoryRule::UnknownRequest,
        StoryRule::ApprovalDigest,
        StoryRule::ApproverNotActor,
        StoryRule::SelfApproval,
        StoryRule::InvalidIdentity,
        StoryRule::PolicyApprovalOfHumanRequest,
        StoryRule::UnprovenApproval,
        StoryRule::StartWithoutApproval,
        StoryRule::StartAfterDenial,
        StoryRule::StartAfterExpiry,
        StoryRule::StartWhileDegraded,
        StoryRule::StartDigest,
        StoryRule::DoubleStart,
        StoryRule::CompletionWithoutStart,
        StoryRule::UnprovenDenial,
        StoryRule::UnprovenRecovery,
        StoryRule::ReusedOnceKey,
        StoryRule::AnnotationReference,
    ];

    /// A short name, e.g. `start_without_approval`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StoryRule::MalformedBody => "malformed_body",
            StoryRule::ProposedDigest => "proposed_digest",
            StoryRule::DuplicateProposal => "duplicate_proposal",
            StoryRule::ReProposal => "re_proposal",
            StoryRule::UnknownRequest => "unknown_request",
            StoryRule::ApprovalDigest => "approval_digest",
            StoryRule::ApproverNotActor => "approver_not_actor",
            StoryRule::SelfApproval => "self_approval",
            StoryRule::InvalidIdentity => "invalid_identity",
            StoryRule::PolicyApprovalOfHumanRequest => "policy_approval_of_human_request",
            StoryRule::UnprovenApproval => "unproven_approval",
            StoryRule::StartWithoutApproval => "start_without_approval",
            StoryRule::StartAfterDenial => "start_after_denial",
            StoryRule::StartAfterExpiry => "start_after_expiry",
            StoryRule::StartWhileDegraded => "start_while_degraded",
            StoryRule::StartDigest => "start_digest",
            StoryRule::DoubleStart => "double_start",
            StoryRule::CompletionWithoutStart => "completion_without_start",
            StoryRule::UnprovenDenial => "unproven_denial",
            StoryRule::UnprovenRecovery => "unproven_recovery",
            StoryRule::ReusedOnceKey => "reused_once_key",
            StoryRule::AnnotationReference => "annotation_reference",
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

/// A streaming story checker: feed it every verified event in seq order
/// with [`check`](StoryChecker::check), then take the
/// [`report`](StoryChecker::report). It is the gate's own request state
/// machine ([`Ledger`]) run over the chain.
#[derive(Debug)]
pub struct StoryChecker {
    ledger: Ledger,
    references: ReferenceChecker,
    report: StoryReport,
}

impl Default for StoryChecker {
    fn default() -> Self {
        StoryChecker::new()
    }
}

impl StoryChecker {
    /// A checker for a chain read from its first event, judging signed
    /// approvals under the approvers each `policy.activated` declares.
    pub fn new() -> Self {
        StoryChecker::with_rules(Rules {
            signers_from_chain: true,
            ..Rules::default()
        })
    }

    /// A checker counting approvals under `rules` (for instance the
    /// approvers of a policy the auditor trusts, rather than those the
    /// chain records).
    pub fn with_rules(rules: Rules) -> Self {
        StoryChecker {
            ledger: Ledger::new(rules),
            references: ReferenceChecker::allowing_free_notes(),
            report: StoryReport::default(),
        }
    }

    /// Checks the next event; violations are collected in the report.
    pub fn check(&mut self, event: &Event) {
        self.report.events += 1;
        for f in self.ledger.apply(event) {
            self.report.violations.push(StoryViolation {
                seq: event.seq,
                request_id: f.request_id,
                rule: f.rule,
                detail: f.detail,
            });
        }
        let before = self.references.issues().len();
        self.references.observe(event);
        for issue in &self.references.issues()[before..] {
            self.report.violations.push(StoryViolation {
                seq: issue.seq,
                request_id: issue.request_id.clone(),
                rule: StoryRule::AnnotationReference,
                detail: issue.to_string(),
            });
        }
    }

    /// The report so far.
    pub fn report(&self) -> StoryReport {
        StoryReport {
            requests: self.ledger.requests(),
            open_requests: u64::try_from(self.ledger.open_requests()).unwrap_or(u64::MAX),
            ..self.report.clone()
        }
    }
}

/// Checks integrity and the story of a store's whole chain in one pass
/// over the same bytes (the [scan driver](crate::scan), pages bounded in
/// bytes): the story is told of the events that verified, so a chain broken
/// at seq N gets the story of its first N events and the integrity
/// violation.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn audit_store<S: EventStore + ?Sized>(
    store: &S,
    mut checker: StoryChecker,
) -> Result<(Report, StoryReport), StoreError> {
    let verifier = Verifier::new(store.chain().clone());
    let end =
        crate::scan::scan_verified(store, verifier, None, |event| checker.check(event)).await?;
    Ok((end.verifier.report(end.violation), checker.report()))
}

/// Checks the story of a store's whole chain as [`audit_store`] does and
/// returns the story report (an integrity violation ends the story where it
/// is found; ask [`audit_store`] for both verdicts).
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn check_store<S: EventStore + ?Sized>(store: &S) -> Result<StoryReport, StoreError> {
    Ok(audit_store(store, StoryChecker::new()).await?.1)
}
