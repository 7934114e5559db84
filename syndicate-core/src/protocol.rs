//! The request protocol as one pure state machine: a fold over verified
//! events, used by the gate to decide and by the story check to judge, so
//! the two cannot drift apart.
//!
//! Feed a [`Ledger`] every event of a chain in seq order, each one *just
//! verified* (its columns equal to its hashed bytes, which the
//! [`Verifier`](crate::Verifier) checks): the ledger reads kinds, request
//! ids, actors, `at` stamps and `once` keys from them, and bodies from the
//! hashed bytes. Nothing it knows comes from a row read later, so editing a
//! column of an old row cannot change what it decides.
//!
//! For each event the ledger returns the [`Finding`]s it breaks (none for a
//! chain the gate wrote). An event that breaks a rule changes nothing: an
//! approval that does not count is not counted, a second proposal does not
//! replace the first.
//!
//! What counts as an approval (the gate and the story agree):
//! - it approves the proposed digest of an open request (proposed, not
//!   denied, not started);
//! - a person's approval names a valid, unreserved identity
//!   ([`identity`]), different from the requester's
//!   (unless self-approval is allowed), equal to the event's actor, not
//!   already counted (in normal form), and, under a policy that declares
//!   approvers, carries a signed decision that verifies against one of that
//!   approver's keys for this chain, request and digest;
//! - a policy approval is only for a request the policy auto-approved,
//!   by the actor `policy:<rule>` of the rule that matched;
//! - it is usable until the earlier of its recorded `expires_at` and its own
//!   event's `at` plus the proposal's `approval_ttl_seconds`.
//!
//! Memory: the state of every open request (no action bodies) plus 24
//! bytes per closed request and per unknown `once` key.

use std::collections::{HashMap, HashSet};

use crate::action::Action;
use crate::approvers::Signers;
use crate::digest::Digest;
use crate::event::{ChainId, Event, EventKind, PolicyRef};
use crate::format::{
    ApprovedBody, CompletedBody, DeniedBody, GateStatusBody, Method, PolicyActivatedBody,
    ProposedBody, StartedBody, body_of,
};
use crate::gate::Decision;
use crate::identity;
use crate::story::StoryRule;
use crate::timestamp::Timestamp;

/// A rule an event breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: StoryRule,
    /// The request it is about, when known.
    pub request_id: Option<String>,
    /// What was found.
    pub detail: String,
}

/// An approval that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The approver as recorded.
    pub approver: String,
    /// Its normal form ([`identity::normalize`]).
    pub key: String,
    /// Human or policy.
    pub method: Method,
    /// Seq of the `action.approved` event.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// Its `at` (the store's clock).
    pub at: Timestamp,
    /// When it stops being usable: the earlier of the recorded `expires_at`
    /// and `at` plus the rule's lifetime.
    pub usable_until: Timestamp,
    /// Whether it carries a verified signed decision.
    pub signed: bool,
    /// The signed decision it carries, if any (so a gate can check it
    /// again under its own policy's keys).
    pub decision: Option<Box<crate::decision::SignedDecision>>,
}

/// What the chain says about one request, from verified events only.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request id.
    pub request_id: String,
    /// Its session.
    pub session: String,
    /// The requester as recorded.
    pub requester: String,
    /// The proposed digest.
    pub digest: Digest,
    /// The policy's decision at proposal.
    pub decision: Decision,
    /// The rule that matched.
    pub rule: Option<String>,
    /// Distinct approvals needed (at least 1).
    pub required: u32,
    /// Lifetime of an approval, in seconds.
    pub ttl_seconds: u64,
    /// Compliance control tags.
    pub controls: Vec<String>,
    /// Roles every counted approver must hold.
    pub approver_roles: Vec<String>,
    /// Seq of the `action.proposed` event.
    pub proposed_seq: u64,
    /// Its hash.
    pub proposed_hash: Digest,
    /// Counted approvals, oldest first.
    pub approvals: Vec<Counted>,
    /// Seq of the start, if started.
    pub started: Option<u64>,
    /// The tool call the start let run, when it names one.
    pub call_id: Option<String>,
    /// Seq of the completion, if completed.
    pub completed: Option<u64>,
}

impl Request {
    /// Counted approvals.
    pub fn approval_count(&self) -> u32 {
        u32::try_from(self.approvals.len()).unwrap_or(u32::MAX)
    }

    /// True when enough distinct approvers approved the proposed digest.
    pub fn is_approved(&self) -> bool {
        self.approval_count() >= self.required
    }

    /// When the approvals stop being usable: the earliest bound among the
    /// counted approvals; `None` without approvals.
    pub fn usable_until(&self) -> Option<Timestamp> {
        self.approvals.iter().map(|a| a.usable_until).min()
    }

    /// Whether `id` already approved (in normal form).
    pub fn approved_by(&self, id: &str) -> bool {
        let key = identity::fold(id);
        self.approvals.iter().any(|a| a.key == key)
    }
}

/// How a request ended, for requests the ledger no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Completed after its start.
    Completed,
    /// Denied and never started.
    Denied,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup<'a> {
    /// Never proposed.
    Unknown,
    /// Proposed and not closed.
    Open(&'a Request),
    /// Closed.
    Closed(Closed),
}

impl Lookup<'_> {
    /// An owned copy.
    pub fn to_status(&self) -> Status {
        match self {
            Lookup::Unknown => Status::Unknown,
            Lookup::Open(r) => Status::Open(Box::new((*r).clone())),
            Lookup::Closed(c) => Status::Closed(*c),
        }
    }
}

/// Where a request stands (an owned [`Lookup`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Never proposed.
    Unknown,
    /// Proposed and not closed.
    Open(Box<Request>),
    /// Closed.
    Closed(Closed),
}

impl Status {
    /// The open request, if it is one.
    pub fn open(&self) -> Option<&Request> {
        match self {
            Status::Open(r) => Some(r),
            _ => None,
        }
    }
}

/// How the ledger counts approvals.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The chain (signed decisions name it).
    pub chain: Option<ChainId>,
    /// The approvers a signing policy declares: approvals by persons count
    /// only with a verified signature.
    pub signers: Option<Signers>,
    /// Whether to judge signed approvals under the approvers of each
    /// `policy.activated` on the chain, as an auditor replaying it does
    /// (the gate counts under its own policy: `false`).
    pub signers_from_chain: bool,
    /// Whether a requester may approve their own request.
    pub allow_self_approval: bool,
    /// The gate's operator id, reserved like `gate`.
    pub operator: Option<String>,
}

/// The fold over a chain. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Ledger {
    rules: Rules,
    open: HashMap<String, Request>,
    closed: HashMap<u128, Closed>,
    other_once: HashSet<u128>,
    degraded: bool,
    /// Seq and hash of the last `gate.degraded`, which a signed recovery
    /// names.
    last_degraded: Option<(u64, Digest)>,
    last_at: Option<Timestamp>,
    last_seq: Option<u64>,
    requests: u64,
    active_policy: Option<PolicyRef>,
}

/// A 128-bit fingerprint of a string (SHA-256, truncated).
fn fingerprint(s: &str) -> u128 {
    let d = Digest::of_canonical("syndicate:fingerprint:v1", s.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_bytes()[..16]);
    u128::from_be_bytes(b)
}

fn finding(rule: StoryRule, request_id: Option<&str>, detail: impl Into<String>) -> Finding {
    Finding {
        rule,
        request_id: request_id.map(str::to_owned),
        detail: detail.into(),
    }
}

/// The body of a gate event, or `None` after reporting it as malformed.
fn parsed<T: serde::de::DeserializeOwned>(event: &Event, out: &mut Vec<Finding>) -> Option<T> {
    match body_of(event) {
        Ok(body) => Some(body),
        Err(e) => {
            out.push(finding(
                StoryRule::MalformedBody,
                event.columns.request_id.as_deref(),
                e.to_string(),
            ));
            None
        }
    }
}

/// The single-use keys the protocol gives an event (any one of them is
/// right; the first is the one the gate writes now).
pub fn once_keys(kind: EventKind, request_id: &str, approver: Option<&str>) -> Vec<String> {
    match kind {
        EventKind::ActionProposed => vec![format!("action.proposed:{request_id}")],
        EventKind::ActionApproved => {
            let approver = approver.unwrap_or_default();
            let mut keys = vec![format!(
                "approval:{request_id}:{}",
                identity::fold(approver)
            )];
            let raw = format!("approval:{request_id}:{approver}");
            if raw != keys[0] {
                keys.push(raw);
            }
            keys
        }
        EventKind::ActionDenied => vec![format!("decision:{request_id}")],
        EventKind::ExecutionStarted => vec![
            format!("decision:{request_id}"),
            format!("execution.started:{request_id}"),
        ],
        EventKind::ExecutionCompleted => vec![format!("execution.completed:{request_id}")],
        _ => Vec::new(),
    }
}

impl Ledger {
    /// A ledger counting approvals under `rules`.
    pub fn new(rules: Rules) -> Self {
        Ledger {
            rules,
            ..Ledger::default()
        }
    }

    /// The requests proposed and not closed, in no particular order.
    pub fn open(&self) -> impl Iterator<Item = &Request> + '_ {
        self.open.values()
    }

    /// Where a request stands.
    pub fn lookup(&self, request_id: &str) -> Lookup<'_> {
        if let Some(r) = self.open.get(request_id) {
            return Lookup::Open(r);
        }
        match self.closed.get(&fingerprint(request_id)) {
            Some(c) => Lookup::Closed(*c),
            None => Lookup::Unknown,
        }
    }

    /// Whether the chain is degraded (a `gate.degraded` not followed by a
    /// `gate.recovered`).
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// The latest `at` of the events applied: the store's clock as far as
    /// the chain shows it.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.last_at
    }

    /// The seq of the last event applied.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The policy of the last `policy.activated`.
    pub fn active_policy(&self) -> Option<&PolicyRef> {
        self.active_policy.as_ref()
    }

    /// Requests proposed.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Requests proposed and not closed.
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    /// Applies the next verified event; returns the rules it breaks.
    pub fn apply(&mut self, event: &Event) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.rules.chain.is_none() {
            // Signed decisions name the chain: learn it from the first event.
            self.rules.chain = event.envelope().ok().map(|e| e.chain);
        }
        let at = event.columns.at.parse::<Timestamp>().ok();
        if let Some(at) = at {
            self.last_at = Some(self.last_at.map_or(at, |l| l.max(at)));
        }
        self.last_seq = Some(event.seq);
        let at = at.or(self.last_at).unwrap_or(Timestamp::MAX);
        let Ok(kind) = event.columns.kind.parse::<EventKind>() else {
            return out;
        };
        match kind {
            EventKind::ActionProposed => self.proposed(event, &mut out),
            EventKind::ActionApproved => self.approved(event, at, &mut out),
            EventKind::ActionDenied => self.denied(event, &mut out),
            EventKind::ExecutionStarted => self.started(event, at, &mut out),
            EventKind::ExecutionCompleted => self.completed(event, &mut out),
            EventKind::GateDegraded => {
                self.degraded = true;
                self.last_degraded = Some((event.seq, event.hash));
            }
            EventKind::GateRecovered => self.recovered(event, &mut out),
            EventKind::PolicyActivated => self.policy_activated(event, &mut out),
            _ => {
                if let Some(once) = &event.columns.once
                    && !self.other_once.insert(fingerprint(once))
                {
                    out.push(finding(
                        StoryRule::ReusedOnceKey,
                        event.columns.request_id.as_deref(),
                        format!("single-use key {once:?} used a second time"),
                    ));
                }
            }
        }
        out
    }

    /// The statement subject a signed recovery names: the last
    /// `gate.degraded` it ends (`recover:<seq>` and that event's hash), or
    /// `recover:none` and the zero digest when none was recorded.
    pub fn recovery_subject(&self) -> (String, Digest) {
        match self.last_degraded {
            Some((seq, hash)) => (format!("recover:{seq}"), hash),
            None => ("recover:none".to_owned(), Digest::ZERO),
        }
    }

    /// A recovery ends the degraded state; under signers that declare
    /// operators only when it carries an operator's signed decision for
    /// this chain and the degradation it ends.
    fn recovered(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let requires = self
            .rules
            .signers
            .as_ref()
            .is_some_and(Signers::requires_operator);
        if requires {
            let verdict = match (body_of::<GateStatusBody>(event), &self.rules.chain) {
                (Ok(body), Some(chain)) => match &body.signed {
                    Some(signed) => {
                        let (subject, digest) = self.recovery_subject();
                        self.rules
                            .signers
                            .as_ref()
                            .map_or(Err("no signers".to_owned()), |s| {
                                s.check_operator(
                                    signed,
                                    chain,
                                    &subject,
                                    &digest,
                                    crate::decision::Decision::Recover,
                                )
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                            })
                    }
                    None => Err("the recovery is not signed by a declared operator".to_owned()),
                },
                (Err(e), _) => Err(e.to_string()),
                (_, None) => Err("the chain is unknown".to_owned()),
            };
            if let Err(detail) = verdict {
                out.push(finding(StoryRule::UnprovenRecovery, None, detail));
                return;
            }
        }
        self.degraded = false;
        self.last_degraded = None;
    }

    fn policy_activated(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<PolicyActivatedBody>(event, out) else {
            return;
        };
        self.active_policy = Some(body.policy);
        if !self.rules.signers_from_chain {
            return;
        }
        match Signers::from_policy(&body.document) {
            Ok(signers) => self.rules.signers = Some(signers),
            Err(e) => {
                self.rules.signers = None;
                out.push(finding(
                    StoryRule::MalformedBody,
                    None,
                    format!("the policy's approvers cannot be read: {e}"),
                ));
            }
        }
    }

    fn check_once(
        &self,
        event: &Event,
        kind: EventKind,
        request_id: &str,
        approver: Option<&str>,
        out: &mut Vec<Finding>,
    ) {
        let expected = once_keys(kind, request_id, approver);
        let found = event.columns.once.as_deref();
        if !found.is_some_and(|f| expected.iter().any(|e| e == f)) {
            out.push(finding(
                StoryRule::ReusedOnceKey,
                Some(request_id),
                format!(
                    "single-use key {found:?} is not the protocol's {:?}",
                    expected.first().map_or("", String::as_str)
                ),
            ));
        }
    }

    fn proposed(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<ProposedBody>(event, out) else {
            return;
        };
        let id = body.request_id.clone();
        self.check_once(event, EventKind::ActionProposed, &id, None, out);
        self.requests += 1;
        match Action::from_value(body.action.clone()) {
            Ok(action) if action.digest() == body.action_digest => {}
            Ok(action) => out.push(finding(
                StoryRule::ProposedDigest,
                Some(&id),
                format!(
                    "action_digest {} but the action's digest is {}",
                    body.action_digest,
                    action.digest()
                ),
            )),
            Err(e) => out.push(finding(
                StoryRule::ProposedDigest,
                Some(&id),
                format!("the recorded action is not an action: {e}"),
            )),
        }
        if self.open.contains_key(&id) {
            out.push(finding(
                StoryRule::DuplicateProposal,
                Some(&id),
                "request proposed a second time",
            ));
            return;
        }
        if let Some(closed) = self.closed.get(&fingerprint(&id)) {
            out.push(finding(
                StoryRule::ReProposal,
                Some(&id),
                format!("request id proposed again after it was {closed:?}").to_lowercase(),
            ));
            return;
        }
        if !event.columns.actor.is_empty() && !identity::same(&event.columns.actor, &body.requester)
        {
            out.push(finding(
                StoryRule::ApproverNotActor,
                Some(&id),
                format!(
                    "requester {:?} is not the event's actor {:?}",
                    body.requester, event.columns.actor
                ),
            ));
        }
        self.open.insert(
            id.clone(),
            Request {
                request_id: id,
                session: event.columns.session.clone(),
                requester: body.requester,
                digest: body.action_digest,
                decision: body.decision,
                rule: body.rule,
                required: body.approvals_required.max(1),
                ttl_seconds: body.approval_ttl_seconds,
                controls: body.controls,
                approver_roles: body.approver_roles,
                proposed_seq: event.seq,
                proposed_hash: event.hash,
                approvals: Vec::new(),
                started: None,
                call_id: None,
                completed: None,
            },
        );
    }

    fn approved(&mut self, event: &Event, at: Timestamp, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<ApprovedBody>(event, out) else {
            return;
        };
        let id = body.request_id.clone();
        self.check_once(
            event,
            EventKind::ActionApproved,
            &id,
            Some(&body.approver),
            out,
        );
        let rules = &self.rules;
        let Some(request) = self.open.get_mut(&id) else {
            out.push(finding(
                StoryRule::UnknownRequest,
                Some(&id),
                "approval of a request not proposed before it (or already closed)",
            ));
            return;
        };
        if body.action_digest != request.digest {
            out.push(finding(
                StoryRule::ApprovalDigest,
                Some(&id),
                format!(
                    "approves digest {} but {} was proposed",
                    body.action_digest, request.digest
                ),
            ));
            return;
        }
        if request.started.is_some() {
            return;
        }
        if !identity::same(&event.columns.actor, &body.approver) {
            out.push(finding(
                StoryRule::ApproverNotActor,
                Some(&id),
                format!(
                    "approver {:?} is not the event's actor {:?}",
                    body.approver, event.columns.actor
                ),
            ));
            return;
        }
        let key = identity::fold(&body.approver).into_owned();
        let signed = match body.method {
            Method::Policy => {
                let expected = format!(
                    "{}{}",
                    identity::POLICY_PREFIX,
                    request.rule.as_deref().unwrap_or("no-match")
                );
                if request.decision != Decision::AutoApprove || body.approver != expected {
                    out.push(finding(
                        StoryRule::PolicyApprovalOfHumanRequest,
                        Some(&id),
                        format!(
                            "policy approval by {:?} of a request the policy classified {:?}",
                            body.approver, request.decision
                        ),
                    ));
                    return;
                }
                false
            }
            Method::Human => {
                let operator = rules.operator.as_deref().unwrap_or("gate");
                if let Err(e) = identity::person(&body.approver, operator) {
                    out.push(finding(
                        StoryRule::InvalidIdentity,
                        Some(&id),
                        e.to_string(),
                    ));
                    return;
                }
                if identity::same(&body.approver, &request.requester) {
                    out.push(finding(
                        StoryRule::SelfApproval,
                        Some(&id),
                        format!("{:?} approved their own request", body.approver),
                    ));
                    if !rules.allow_self_approval {
                        return;
                    }
                }
                match (&rules.signers, &rules.chain) {
                    (Some(signers), Some(chain)) if signers.requires_signatures() => {
                        let verdict = match &body.signed {
                            Some(s) if identity::same(&s.statement.approver, &body.approver) => {
                                signers
                                    .check_approval(
                                        s,
                                        chain,
                                        &id,
                                        &request.digest,
                                        &request.approver_roles,
                                    )
                                    .map(|_| ())
                                    .map_err(|e| e.to_string())
                            }
                            Some(_) => Err("the signed statement names another approver".into()),
                            None => Err("no signed decision".into()),
                        };
                        if let Err(detail) = verdict {
                            out.push(finding(StoryRule::UnprovenApproval, Some(&id), detail));
                            return;
                        }
                        true
                    }
                    _ => false,
                }
            }
            #[allow(unreachable_patterns)]
            _ => return,
        };
        if request.approvals.iter().any(|a| a.key == key) {
            return;
        }
        let by_ttl = at.plus_seconds(request.ttl_seconds);
        let usable_until = body.expires_at.map_or(by_ttl, |e| e.min(by_ttl));
        request.approvals.push(Counted {
            approver: body.approver,
            key,
            method: body.method,
            seq: event.seq,
            hash: event.hash,
            at,
            usable_until,
            signed,
            decision: body.signed.map(Box::new),
        });
    }

    fn denied(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<DeniedBody>(event, out) else {
            return;
        };
        let id = body.request_id;
        self.check_once(event, EventKind::ActionDenied, &id, None, out);
        let Some(request) = self.open.get_mut(&id) else {
            out.push(finding(
                StoryRule::UnknownRequest,
                Some(&id),
                "denial of a request not proposed before it (or already closed)",
            ));
            return;
        };
        if request.started.is_some() {
            out.push(finding(
                StoryRule::UnknownRequest,
                Some(&id),
                "denial of a request that already started",
            ));
            return;
        }
        // A person's denial under declared approvers must be signed; an
        // unproven one is reported but still stops the request (a denial
        // can only ever keep something from running).
        if body.method == Method::Human
            && let (Some(signers), Some(chain)) = (&self.rules.signers, &self.rules.chain)
            && signers.requires_signatures()
        {
            let verdict = match &body.signed {
                Some(s) => signers
                    .check_denial(s, chain, &id, &request.digest)
                    .map_err(|e| e.to_string()),
                None => Err(format!("denial by {:?} is not signed", body.by)),
            };
            if let Err(detail) = verdict {
                out.push(finding(StoryRule::UnprovenDenial, Some(&id), detail));
            }
        }
        self.open.remove(&id);
        self.closed.insert(fingerprint(&id), Closed::Denied);
    }

    fn started(&mut self, event: &Event, at: Timestamp, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<StartedBody>(event, out) else {
            return;
        };
        let id = body.request_id.clone();
        self.check_once(event, EventKind::ExecutionStarted, &id, None, out);
        if self.degraded {
            out.push(finding(
                StoryRule::StartWhileDegraded,
                Some(&id),
                "start while the chain records the gate as degraded",
            ));
        }
        let request = match self.open.get_mut(&id) {
            Some(r) => r,
            None => {
                let (rule, detail) = match self.closed.get(&fingerprint(&id)) {
                    Some(Closed::Denied) => {
                        (StoryRule::StartAfterDenial, "start of a denied request")
                    }
                    Some(Closed::Completed) => (
                        StoryRule::DoubleStart,
                        "start of a request that already completed",
                    ),
                    None => (
                        StoryRule::StartWithoutApproval,
                        "start of a request not proposed and approved before it",
                    ),
                };
                out.push(finding(rule, Some(&id), detail));
                return;
            }
        };
        if request.started.is_some() {
            out.push(finding(
                StoryRule::DoubleStart,
                Some(&id),
                "request started a second time",
            ));
            return;
        }
        request.started = Some(event.seq);
        request.call_id = body.call_id;
        if !request.is_approved() {
            out.push(finding(
                StoryRule::StartWithoutApproval,
                Some(&id),
                format!(
                    "{} of {} required approvals before the start",
                    request.approval_count(),
                    request.required
                ),
            ));
        } else if let Some(until) = request.usable_until()
            && at > until
        {
            out.push(finding(
                StoryRule::StartAfterExpiry,
                Some(&id),
                format!("started at {at}, but its approvals were usable until {until}"),
            ));
        }
        if body.approved_digest != request.digest || body.executed_digest != request.digest {
            out.push(finding(
                StoryRule::StartDigest,
                Some(&id),
                format!(
                    "approved {} and executed {}, but {} was proposed",
                    body.approved_digest, body.executed_digest, request.digest
                ),
            ));
        }
    }

    fn completed(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let Some(body) = parsed::<CompletedBody>(event, out) else {
            return;
        };
        let id = body.request_id;
        self.check_once(event, EventKind::ExecutionCompleted, &id, None, out);
        match self.open.get(&id) {
            Some(r) if r.started.is_some() => {
                self.open.remove(&id);
                self.closed.insert(fingerprint(&id), Closed::Completed);
            }
            _ => out.push(finding(
                StoryRule::CompletionWithoutStart,
                Some(&id),
                "completion without a start before it (or a second completion)",
            )),
        }
    }
}
