//! What the gate refuses, and what goes wrong around it.

use std::fmt;

use crate::action::ActionError;
use crate::digest::Digest;
use crate::store::StoreError;
use crate::timestamp::Timestamp;
use crate::verify::Violation;

use super::policy::PolicyError;

/// Why the gate refused a call. Every refusal of `approve`, `deny` and
/// `authorize` is recorded on the chain (where the store can be written)
/// with [`Refusal::code`] as its `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No `action.proposed` event has this request id.
    UnknownRequest,
    /// The request does not have the approvals it needs (yet).
    NotApproved {
        /// Distinct approvals of the proposed digest so far.
        approvals: u32,
        /// Approvals needed.
        required: u32,
    },
    /// The request was denied (by a person or by policy).
    Denied,
    /// The approval's lifetime ended.
    Expired {
        /// When it ended.
        expired_at: Timestamp,
    },
    /// The request already started once; an approval is single-use.
    AlreadyUsed,
    /// The action about to run is not the approved one (parameter drift),
    /// or the approver saw another digest than the proposed one.
    DigestMismatch {
        /// The approved (or proposed) digest.
        expected: Digest,
        /// The digest presented.
        found: Digest,
    },
    /// The request was already approved, denied or started; it takes no
    /// further decision.
    AlreadyDecided,
    /// The approver is the requester, and the gate forbids self-approval.
    SelfApproval,
    /// This approver already approved this request.
    DuplicateApprover,
    /// The policy declares approvers and the approval is not signed.
    Unsigned,
    /// The signed decision was refused: unknown signer or key, bad
    /// signature, missing role, or a statement for something else.
    BadSignature {
        /// Why.
        detail: String,
    },
    /// The gate is degraded (chain does not verify, or the store could not
    /// be written); nothing executes until an operator recovers it.
    Degraded {
        /// Why it degraded.
        reason: String,
    },
    /// The approver or denier is not an identity a person may use (see
    /// [`identity`](crate::identity)).
    InvalidIdentity {
        /// What is wrong with it.
        detail: String,
    },
}

impl Refusal {
    /// The short code recorded as `reason` in `execution.rejected` and
    /// `approval.refused` bodies: `unknown_request`, `not_approved`,
    /// `denied`, `expired`, `already_used`, `digest_mismatch`,
    /// `already_decided`, `self_approval`, `duplicate_approver`, `unsigned`,
    /// `bad_signature`, `degraded`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownRequest => "unknown_request",
            Refusal::NotApproved { .. } => "not_approved",
            Refusal::Denied => "denied",
            Refusal::Expired { .. } => "expired",
            Refusal::AlreadyUsed => "already_used",
            Refusal::DigestMismatch { .. } => "digest_mismatch",
            Refusal::AlreadyDecided => "already_decided",
            Refusal::SelfApproval => "self_approval",
            Refusal::DuplicateApprover => "duplicate_approver",
            Refusal::Unsigned => "unsigned",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Degraded { .. } => "degraded",
            Refusal::InvalidIdentity { .. } => "invalid_identity",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownRequest => {
                f.write_str("no such request on this chain; check the request id and the chain")
            }
            Refusal::NotApproved {
                approvals,
                required,
            } => write!(
                f,
                "not approved: {approvals} of {required} required approvals; ask an approver"
            ),
            Refusal::Denied => f.write_str("the request was denied; propose a new action"),
            Refusal::Expired { expired_at } => write!(
                f,
                "the approval expired at {expired_at}; propose the action again"
            ),
            Refusal::AlreadyUsed => f.write_str(
                "the request already started once; an approval is single-use, propose again",
            ),
            Refusal::DigestMismatch { expected, found } => write!(
                f,
                "digest {found} is not the approved digest {expected}; the action changed after approval"
            ),
            Refusal::AlreadyDecided => {
                f.write_str("the request was already approved, denied or started")
            }
            Refusal::SelfApproval => {
                f.write_str("the approver is the requester; another identity must approve")
            }
            Refusal::DuplicateApprover => f.write_str(
                "this approver already approved the request; another identity must approve",
            ),
            Refusal::Unsigned => f.write_str(
                "the policy declares approvers, so approvals must be signed; sign with `syndicate approve --key`",
            ),
            Refusal::BadSignature { detail } => write!(f, "signed decision refused: {detail}"),
            Refusal::InvalidIdentity { detail } => write!(
                f,
                "the identity is not one a person may use: {detail}; use your own plain id"
            ),
            Refusal::Degraded { reason } => write!(
                f,
                "the gate is degraded ({reason}); nothing executes until an operator runs recover"
            ),
        }
    }
}

/// What can go wrong when using a [`Gate`](super::Gate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The gate refused; the refusal was recorded where the store could be
    /// written.
    #[error("request {request_id}: refused: {refusal}")]
    Refused {
        /// The request.
        request_id: String,
        /// Why.
        refusal: Refusal,
    },
    /// The action has no canonical form or is not an action.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// The policy document is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed; the gate degraded if it was writing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `recover` found the chain still broken; the gate stays degraded.
    #[error("the chain still does not verify ({0}); repair or restore the store, then recover")]
    StillBroken(Violation),
    /// Input the caller chose (a requester id, a session, an action) cannot
    /// be recorded; nothing was recorded and the gate is not degraded.
    #[error("{what} refused: {reason}; nothing was recorded")]
    Input {
        /// What was refused.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A recorded event the gate relies on cannot be read as what its kind
    /// promises (only possible for events written by something else).
    #[error("event {seq} is malformed: {reason}")]
    Malformed {
        /// The seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl GateError {
    /// Whether calling again unchanged can help: only when the store was
    /// unavailable before anything was written. A refusal (the gate said
    /// no, or is degraded until an operator recovers it), a malformed event,
    /// refused input or a broken chain do not change by retrying; a store
    /// failure after a commit may have gone through is not retryable blindly
    /// (read the request's state first).
    pub fn is_retryable(&self) -> bool {
        matches!(self, GateError::Store(e) if e.is_retryable())
    }

    /// The refusal, if the gate refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            GateError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_unavailable_before_writing_is_worth_a_retry() {
        let unavailable = |maybe_written| {
            GateError::Store(StoreError::Unavailable {
                store: "test",
                maybe_written,
                source: "connection reset".into(),
            })
        };
        assert!(unavailable(false).is_retryable());
        assert!(!unavailable(true).is_retryable());
        let refused = GateError::Refused {
            request_id: "r".into(),
            refusal: Refusal::Degraded { reason: "x".into() },
        };
        assert!(!refused.is_retryable());
        assert!(
            !GateError::Input {
                what: "session",
                reason: "x".into()
            }
            .is_retryable()
        );
    }
}
