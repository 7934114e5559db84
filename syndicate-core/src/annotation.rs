//! Typed annotations: review, test, deployment, commit, rollback and
//! correction notes about a request or an earlier event.
//!
//! An annotation is a new `annotation` event, never an edit: the event it is
//! about stays as it was. Every annotation names the event it is about by
//! **seq and hash** (`refers_to`), so a reader can check it points at exactly
//! that event, and may name the request (`request_id`, at the top level of
//! the body so stores index it).
//!
//! ```
//! use syndicate_core::annotation::{Annotation, EventRef, Review, Verdict};
//! use syndicate_core::{Actor, Digest};
//!
//! let proposed = EventRef { seq: 4, hash: Digest::ZERO };
//! let review = Annotation::review(
//!     "req-1",
//!     proposed,
//!     Review {
//!         reviewer: "carol@example.com".into(),
//!         verdict: Verdict::Approved,
//!         comments: Some("rollback plan is fine".into()),
//!         read_reasoning: true,
//!     },
//! );
//! let draft = review.draft("sess-1", Actor::human("carol@example.com"));
//! assert_eq!(draft.body["type"], "review");
//! assert_eq!(draft.body["refers_to"]["seq"], 4);
//! ```
//!
//! [`check_references`] is the pure check that every annotation in a
//! verified sequence of events refers to an earlier event that exists, by
//! its hash.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::event::{Actor, Event, EventDraft, EventKind};
use crate::timestamp::Timestamp;

/// Tag of the digest of an attached report file (a JUnit XML file, for
/// example): `SHA-256("syndicate:report:v1" || 0x00 || file bytes)`.
pub const REPORT_TAG: &str = "syndicate:report:v1";

/// An earlier event, by seq and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventRef {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
}

impl EventRef {
    /// The reference to a stored event.
    pub fn to(event: &Event) -> Self {
        EventRef {
            seq: event.seq,
            hash: event.hash,
        }
    }
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// The change is fine.
    Approved,
    /// The change needs work.
    ChangesRequested,
    /// The change should not have been made.
    Rejected,
}

impl Verdict {
    /// As written in bodies: `approved`, `changes_requested`, `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::ChangesRequested => "changes_requested",
            Verdict::Rejected => "rejected",
        }
    }
}

/// A review of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Who reviewed.
    pub reviewer: String,
    /// What they concluded.
    pub verdict: Verdict,
    /// What they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// Whether they read the agent's reasoning.
    #[serde(default)]
    pub read_reasoning: bool,
}

/// A test run about a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    /// The suite's name.
    pub suite: String,
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (errors included).
    pub failed: u64,
    /// Tests skipped.
    pub skipped: u64,
    /// Line coverage in percent (0 to 100), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_percent: Option<f64>,
    /// [`REPORT_TAG`] digest of the report file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_digest: Option<Digest>,
    /// Where the report is kept (a path or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl TestRun {
    /// True when nothing failed and something ran.
    pub fn is_green(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

/// A deployment of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The git commit deployed (hex object name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The branch it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Where it went, e.g. `production`.
    pub environment: String,
    /// When it was deployed, by the deployer's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<Timestamp>,
}

/// A git commit that carries a change (recorded by `syndicate git link`
/// from a `Syndicate-Request:` trailer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitLink {
    /// The commit (full hex object name).
    pub commit: String,
    /// Its subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A rollback of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// Why it was rolled back.
    pub reason: String,
    /// The commit rolled back to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where, e.g. `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// A correction of something an earlier event says; the event stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// What was wrong, e.g. `body.context.trigger` or a sentence.
    pub field: String,
    /// The corrected value.
    pub corrected: Value,
    /// Why.
    pub reason: String,
}

/// What an annotation says, by type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Detail {
    /// A review.
    Review(Review),
    /// A test run.
    Test(TestRun),
    /// A deployment.
    Deployment(Deployment),
    /// A git commit carrying the change.
    Commit(CommitLink),
    /// A rollback.
    Rollback(Rollback),
    /// A correction.
    Correction(Correction),
}

impl Detail {
    /// The `type` member: `review`, `test`, `deployment`, `commit`,
    /// `rollback` or `correction`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Detail::Review(_) => "review",
            Detail::Test(_) => "test",
            Detail::Deployment(_) => "deployment",
            Detail::Commit(_) => "commit",
            Detail::Rollback(_) => "rollback",
            Detail::Correction(_) => "correction",
        }
    }
}

/// The body of a typed `annotation` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// The request it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The earlier event it is about.
    pub refers_to: EventRef,
    /// A free-text note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What it says.
    #[serde(flatten)]
    pub detail: Detail,
}

impl Annotation {
    /// An annotation about a request, referring to one of its events.
    pub fn about(request_id: impl Into<String>, refers_to: EventRef, detail: Detail) -> Self {
        Annotation {
            request_id: Some(request_id.into()),
            refers_to,
            note: None,
            detail,
        }
    }

    /// A review of a request.
    pub fn review(request_id: impl Into<String>, refers_to: EventRef, review: Review) -> Self {
        Self::about(request_id, refers_to, Detail::Review(review))
    }

    /// A test run of a request.
    pub fn test(request_id: impl Into<String>, refers_to: EventRef, run: TestRun) -> Self {
        Self::about(request_id, refers_to, Detail::Test(run))
    }

    /// A deployment of a request.
    pub fn deployment(
        request_id: impl Into<String>,
        refers_to: EventRef,
        deployment: Deployment,
    ) -> Self {
        Self::about(request_id, refers_to, Detail::Deployment(deployment))
    }

    /// A commit carrying a request.
    pub fn commit(request_id: impl Into<String>, refers_to: EventRef, link: CommitLink) -> Self {
        Self::about(request_id, refers_to, Detail::Commit(link))
    }

    /// A rollback of a request.
    pub fn rollback(
        request_id: impl Into<String>,
        refers_to: EventRef,
        rollback: Rollback,
    ) -> Self {
        Self::about(request_id, refers_to, Detail::Rollback(rollback))
    }

    /// A correction of an earlier event (of a request, or of none).
    pub fn correction(
        request_id: Option<String>,
        refers_to: EventRef,
        correction: Correction,
    ) -> Self {
        Annotation {
            request_id,
            refers_to,
            note: None,
            detail: Detail::Correction(correction),
        }
    }

    /// With a free-text note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The body as JSON.
    pub fn to_value(&self) -> Value {
        // Plain strings, numbers, digests and JSON values: cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `annotation` event to append, by `author`.
    pub fn draft(&self, session: impl Into<String>, author: Actor) -> EventDraft {
        EventDraft::new(session, EventKind::Annotation, author, self.to_value())
    }

    /// Reads a typed annotation from an event.
    ///
    /// # Errors
    /// [`AnnotationError::NotAnnotation`] for another kind,
    /// [`AnnotationError::Malformed`] when the body is not a typed annotation.
    pub fn of_event(event: &Event) -> Result<Self, AnnotationError> {
        if event.columns.kind != EventKind::Annotation.as_str() {
            return Err(AnnotationError::NotAnnotation {
                seq: event.seq,
                kind: event.columns.kind.clone(),
            });
        }
        let envelope = event.envelope().map_err(|e| AnnotationError::Malformed {
            seq: event.seq,
            reason: e.to_string(),
        })?;
        serde_json::from_value(envelope.body).map_err(|e| AnnotationError::Malformed {
            seq: event.seq,
            reason: e.to_string(),
        })
    }
}

/// Why an event could not be read as a typed annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnotationError {
    /// The event is of another kind.
    #[error("event {seq} is a {kind} event, not an annotation")]
    NotAnnotation {
        /// The event.
        seq: u64,
        /// Its kind.
        kind: String,
    },
    /// The body is not a typed annotation.
    #[error("event {seq} is not a typed annotation ({reason}); see FORMAT.md section 5.4")]
    Malformed {
        /// The event.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
}

/// What is wrong with an annotation's references.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceProblem {
    /// The body is not a typed annotation.
    Malformed(String),
    /// `refers_to.seq` is not earlier than the annotation itself.
    NotEarlier {
        /// The seq it names.
        seq: u64,
    },
    /// No event with that seq came before it.
    UnknownEvent {
        /// The seq it names.
        seq: u64,
    },
    /// The event at that seq has another hash.
    HashMismatch {
        /// The seq it names.
        seq: u64,
        /// The hash it names.
        named: Digest,
        /// The event's hash.
        actual: Digest,
    },
    /// The request it names was never proposed before it.
    UnknownRequest,
    /// The event it refers to is about another request.
    OtherRequest {
        /// The request of the event referred to.
        event_request: String,
    },
}

/// One annotation whose references do not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceIssue {
    /// The annotation's seq.
    pub seq: u64,
    /// The request it names, if any.
    pub request_id: Option<String>,
    /// What is wrong.
    pub problem: ReferenceProblem,
}

impl fmt::Display for ReferenceIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "annotation at seq {}", self.seq)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        match &self.problem {
            ReferenceProblem::Malformed(reason) => {
                write!(f, " is not a typed annotation: {reason}")
            }
            ReferenceProblem::NotEarlier { seq } => {
                write!(f, " refers to seq {seq}, which is not earlier")
            }
            ReferenceProblem::UnknownEvent { seq } => {
                write!(f, " refers to seq {seq}, which does not exist")
            }
            ReferenceProblem::HashMismatch { seq, named, actual } => write!(
                f,
                " refers to seq {seq} with hash {named}, but that event's hash is {actual}"
            ),
            ReferenceProblem::UnknownRequest => {
                f.write_str(" names a request not proposed before it")
            }
            ReferenceProblem::OtherRequest { event_request } => write!(
                f,
                " refers to an event of another request ({event_request})"
            ),
        }
    }
}

/// Streaming form of [`check_references`]: feed every verified event in
/// seq order, then take the issues.
///
/// Memory: 36 bytes per event (its hash and the request it is about, as an
/// index) plus about 100 bytes per request id.
#[derive(Debug, Default)]
pub struct ReferenceChecker {
    /// Seq of the first event observed.
    first: Option<u64>,
    /// Hash and request index (0: none) of every event from `first`, by
    /// `seq - first`; a seq never observed holds [`ABSENT`].
    events: Vec<(Digest, u32)>,
    /// Request id -> index (from 1).
    ids: HashMap<String, u32>,
    /// Indexes of the requests proposed so far.
    proposed: HashSet<u32>,
    /// Annotations without a `type` and without `refers_to` are free notes.
    free_notes: bool,
    issues: Vec<ReferenceIssue>,
}

/// Request index of a seq that was never observed.
const ABSENT: u32 = u32::MAX;

impl ReferenceChecker {
    /// A checker for which every `annotation` must be typed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker for the story check: an annotation with neither `type` nor
    /// `refers_to` is a free note about nothing in particular and is not
    /// checked; one with `refers_to` must refer correctly; one with `type`
    /// must be a typed annotation.
    pub fn allowing_free_notes() -> Self {
        ReferenceChecker {
            free_notes: true,
            ..Self::default()
        }
    }

    fn index_of(&mut self, request_id: Option<&str>) -> u32 {
        let Some(id) = request_id else { return 0 };
        if let Some(i) = self.ids.get(id) {
            return *i;
        }
        let next = u32::try_from(self.ids.len() + 1).unwrap_or(ABSENT - 1);
        self.ids.insert(id.to_owned(), next);
        next
    }

    fn request_of(&self, index: u32) -> Option<String> {
        self.ids
            .iter()
            .find(|(_, i)| **i == index)
            .map(|(id, _)| id.clone())
    }

    fn lookup(&self, seq: u64) -> Option<(Digest, u32)> {
        let i = usize::try_from(seq.checked_sub(self.first?)?).ok()?;
        self.events.get(i).copied().filter(|e| e.1 != ABSENT)
    }

    /// Takes the next event (in seq order).
    pub fn observe(&mut self, event: &Event) {
        if event.columns.kind == EventKind::Annotation.as_str() {
            self.check(event);
        }
        let index = self.index_of(event.columns.request_id.as_deref());
        if event.columns.kind == EventKind::ActionProposed.as_str() && index != 0 {
            self.proposed.insert(index);
        }
        let first = *self.first.get_or_insert(event.seq);
        let Some(at) = event
            .seq
            .checked_sub(first)
            .and_then(|d| usize::try_from(d).ok())
        else {
            return;
        };
        if at >= self.events.len() {
            self.events.resize(at, (Digest::ZERO, ABSENT));
            self.events.push((event.hash, index));
        }
    }

    fn check(&mut self, event: &Event) {
        let annotation = match Annotation::of_event(event) {
            Ok(a) => a,
            Err(e) => {
                let reason = match e {
                    AnnotationError::Malformed { reason, .. } => reason,
                    other => other.to_string(),
                };
                self.untyped(event, reason);
                return;
            }
        };
        let request = annotation.request_id.clone();
        self.check_ref(event.seq, request, annotation.refers_to);
    }

    /// An annotation that is not a typed one: a problem, unless it is a
    /// free note (or only refers to an event) and free notes are allowed.
    fn untyped(&mut self, event: &Event, reason: String) {
        let body = event.envelope().ok().map(|e| e.body);
        let member = |name: &str| body.as_ref().and_then(|b| b.get(name)).cloned();
        let request = event.columns.request_id.clone();
        if self.free_notes && member("type").is_none() {
            match member("refers_to") {
                None => return,
                Some(r) => {
                    if let Ok(target) = serde_json::from_value::<EventRef>(r) {
                        self.check_ref(event.seq, request, target);
                        return;
                    }
                }
            }
        }
        self.issues.push(ReferenceIssue {
            seq: event.seq,
            request_id: request,
            problem: ReferenceProblem::Malformed(reason),
        });
    }

    fn check_ref(&mut self, seq: u64, request: Option<String>, target: EventRef) {
        let problem = if target.seq >= seq {
            Some(ReferenceProblem::NotEarlier { seq: target.seq })
        } else {
            match self.lookup(target.seq) {
                None => Some(ReferenceProblem::UnknownEvent { seq: target.seq }),
                Some((hash, _)) if hash != target.hash => Some(ReferenceProblem::HashMismatch {
                    seq: target.seq,
                    named: target.hash,
                    actual: hash,
                }),
                Some((_, event_index)) => request.as_deref().and_then(|id| {
                    let index = self.ids.get(id).copied();
                    if !index.is_some_and(|i| self.proposed.contains(&i)) {
                        Some(ReferenceProblem::UnknownRequest)
                    } else if event_index != 0 && Some(event_index) != index {
                        let event_request = self
                            .request_of(event_index)
                            .unwrap_or_else(|| "another request".into());
                        Some(ReferenceProblem::OtherRequest { event_request })
                    } else {
                        None
                    }
                }),
            }
        };
        if let Some(problem) = problem {
            self.issues.push(ReferenceIssue {
                seq,
                request_id: request,
                problem,
            });
        }
    }

    /// Every issue found, in seq order.
    pub fn issues(&self) -> &[ReferenceIssue] {
        &self.issues
    }

    /// Consumes the checker, returning its issues.
    pub fn into_issues(self) -> Vec<ReferenceIssue> {
        self.issues
    }
}

/// Checks every `annotation` among `events` (verified, in seq order, from
/// seq 0): it must be a typed annotation whose `refers_to` names an earlier
/// event that exists with exactly that hash, whose `request_id` (if any) was
/// proposed before it, and whose referred event is not about another
/// request. Pure: reads only what it is given.
pub fn check_references<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<ReferenceIssue> {
    let mut checker = ReferenceChecker::new();
    for event in events {
        checker.observe(event);
    }
    checker.into_issues()
}
