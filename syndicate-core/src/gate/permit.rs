//! The single-use permit an executor runs from, and the outcome it reports.

use crate::action::Action;
use crate::digest::{Digest, tags};

use crate::format::OutcomeKind;

/// Permission to run one approved action once.
///
/// Returned by [`Gate::authorize`](super::Gate::authorize) after
/// `execution.started` was recorded. It carries the *approved* canonical
/// action: run from [`Permit::action`], never from the agent's original
/// text, so no two spellings of one canonical action can behave
/// differently. It is neither `Clone` nor `Copy`, and
/// [`Gate::complete`](super::Gate::complete) consumes it.
#[derive(Debug)]
pub struct Permit {
    pub(crate) request_id: String,
    pub(crate) session: String,
    pub(crate) action: Action,
    pub(crate) started_seq: u64,
    pub(crate) controls: Vec<String>,
}

impl Permit {
    /// The request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The session the request belongs to.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The approved action, re-parsed from its canonical bytes: what to run.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// Its digest (the approved digest).
    pub fn digest(&self) -> Digest {
        self.action.digest()
    }

    /// The seq of the `execution.started` event.
    pub fn started_seq(&self) -> u64 {
        self.started_seq
    }

    /// Compliance control tags of the request.
    pub fn controls(&self) -> &[String] {
        &self.controls
    }
}

/// What happened when a permitted action ran; recorded by
/// [`Gate::complete`](super::Gate::complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Succeeded or failed.
    pub kind: OutcomeKind,
    /// Process exit code, for commands.
    pub exit_code: Option<i64>,
    /// Digest of the result bytes.
    pub result_digest: Option<Digest>,
    /// Error message, for failures.
    pub error: Option<String>,
}

impl Outcome {
    /// A success.
    pub fn succeeded() -> Self {
        Outcome {
            kind: OutcomeKind::Succeeded,
            exit_code: None,
            result_digest: None,
            error: None,
        }
    }

    /// A failure, with a message.
    pub fn failed(error: impl Into<String>) -> Self {
        Outcome {
            kind: OutcomeKind::Failed,
            exit_code: None,
            result_digest: None,
            error: Some(error.into()),
        }
    }

    /// Sets the exit code.
    pub fn with_exit_code(mut self, code: i64) -> Self {
        self.exit_code = Some(code);
        self
    }

    /// Sets the result digest to [`result_digest`] of `bytes`.
    pub fn with_result(mut self, bytes: &[u8]) -> Self {
        self.result_digest = Some(result_digest(bytes));
        self
    }
}

/// `SHA-256("syndicate:result:v1" || 0x00 || bytes)`: the digest of an
/// execution's result (for a command: its stdout followed by its stderr).
pub fn result_digest(bytes: &[u8]) -> Digest {
    Digest::of_canonical(tags::RESULT, bytes)
}
