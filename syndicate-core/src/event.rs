//! Events: what a caller asks to record ([`EventDraft`]), the envelope that is
//! hashed ([`Envelope`]), and what a store keeps ([`Event`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::timestamp::Timestamp;

/// The envelope format version written by this crate.
pub const ENVELOPE_VERSION: u64 = 1;

/// The name of a chain (a log). Fixed at creation; written into every event
/// so events cannot be spliced between logs.
///
/// 1 to 64 characters from `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChainId(String);

/// Why a text is not a chain id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain id {0:?} must be 1 to 64 characters from A-Z a-z 0-9 . _ -")]
pub struct ChainIdError(pub String);

impl ChainId {
    /// Checks and wraps a chain name.
    ///
    /// # Errors
    /// [`ChainIdError`] when the name is empty, longer than 64 characters or
    /// has a character outside `A-Z a-z 0-9 . _ -`.
    pub fn new(name: impl Into<String>) -> Result<Self, ChainIdError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(ChainId(name))
        } else {
            Err(ChainIdError(name))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainId::new(s)
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChainId::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// The kind of an event (format v1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
        }

        impl EventKind {
            /// Every kind of format v1.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The kind as written in the envelope, e.g. `action.proposed`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(EventKind::$variant => $text,)*
                }
            }
        }

        impl FromStr for EventKind {
            type Err = UnknownKind;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(EventKind::$variant),)*
                    _ => Err(UnknownKind(s.to_owned())),
                }
            }
        }
    };
}

event_kinds! {
    /// An agent proposed an action.
    ActionProposed => "action.proposed",
    /// A human or a policy rule approved the digest of a proposed action.
    ActionApproved => "action.approved",
    /// A human or a policy rule denied a proposed action.
    ActionDenied => "action.denied",
    /// An attempt to approve was refused (wrong digest, self-approval,
    /// unknown or already decided request); recorded so refusals are audited.
    ApprovalRefused => "approval.refused",
    /// An approved action started; its executed digest equals the approved one.
    ExecutionStarted => "execution.started",
    /// The action about to run differed from the approved one; it did not run.
    ExecutionDigestMismatch => "execution.digest_mismatch",
    /// Execution was refused (not approved, expired, already used, degraded, ...).
    ExecutionRejected => "execution.rejected",
    /// A started execution finished.
    ExecutionCompleted => "execution.completed",
    /// A policy document became the one in force.
    PolicyActivated => "policy.activated",
    /// The gate stopped executing anything.
    GateDegraded => "gate.degraded",
    /// An operator brought the gate back after re-verification.
    GateRecovered => "gate.recovered",
    /// A note about an earlier event: corrections and links are new events.
    Annotation => "annotation",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A text that is not a v1 event kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}")]
pub struct UnknownKind(pub String);

/// What sort of identity an actor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ActorKind {
    /// A person.
    Human,
    /// An AI agent.
    Agent,
    /// A policy rule acting automatically.
    Policy,
    /// The gate or another service acting on its own.
    System,
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// A stable identity, such as `bob@example.com` or `agent:deploy-bot`.
    pub id: String,
    /// What sort of identity it is.
    #[serde(rename = "type")]
    pub kind: ActorKind,
}

impl Actor {
    /// A person.
    pub fn human(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            kind: ActorKind::Human,
        }
    }
    /// An AI agent.
    pub fn agent(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            kind: ActorKind::Agent,
        }
    }
    /// A policy rule.
    pub fn policy(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            kind: ActorKind::Policy,
        }
    }
    /// The gate or another service.
    pub fn system(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            kind: ActorKind::System,
        }
    }
}

/// The policy in force when an event was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    /// The policy's name.
    pub id: String,
    /// Its version.
    pub version: String,
    /// `digest("syndicate:policy:v1", document)`.
    pub digest: Digest,
}

/// An event a caller asks a store to record. The store seals it (assigns
/// `seq`, `prev`, `at` and the hash) with [`seal`](crate::seal()).
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// The agent session the event belongs to (1 to 256 bytes).
    pub session: String,
    /// What happened.
    pub kind: EventKind,
    /// Who caused it.
    pub actor: Actor,
    /// The policy in force, if any.
    pub policy: Option<PolicyRef>,
    /// Kind-specific content: a JSON object.
    pub body: Value,
    /// A single-use key: a store refuses a second event with the same key
    /// on the same chain (1 to 256 bytes).
    pub once: Option<String>,
}

impl EventDraft {
    /// A draft without policy context or single-use key.
    pub fn new(session: impl Into<String>, kind: EventKind, actor: Actor, body: Value) -> Self {
        EventDraft {
            session: session.into(),
            kind,
            actor,
            policy: None,
            body,
            once: None,
        }
    }

    /// Sets the policy context.
    pub fn with_policy(mut self, policy: PolicyRef) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the single-use key.
    pub fn with_once(mut self, key: impl Into<String>) -> Self {
        self.once = Some(key.into());
        self
    }
}

/// The hashed content of an event: every member of the envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version: 1.
    pub v: u64,
    /// The chain the event belongs to.
    pub chain: ChainId,
    /// Position in the chain, from 0 without gaps.
    pub seq: u64,
    /// Hash of the previous event; [`Digest::ZERO`] for seq 0.
    pub prev: Digest,
    /// When the event was sealed; never earlier than the previous event's.
    pub at: Timestamp,
    /// The agent session.
    pub session: String,
    /// What happened.
    pub kind: EventKind,
    /// Who caused it.
    pub actor: Actor,
    /// The policy in force, or `null`.
    pub policy: Option<PolicyRef>,
    /// Kind-specific content.
    pub body: Value,
    /// The single-use key, or `null`.
    pub once: Option<String>,
}

impl Envelope {
    /// The request this event is about: the string `body.request_id`, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.body.get("request_id").and_then(Value::as_str)
    }
}

/// The values a store extracts from an envelope into columns for queries.
///
/// The verifier checks that each equals the field inside the hashed bytes:
/// editing a column is tampering.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Columns {
    /// `at`, in its one text form.
    pub at: String,
    /// `session`.
    pub session: String,
    /// `kind`.
    pub kind: String,
    /// `actor.id`.
    pub actor: String,
    /// `body.request_id` when it is a string.
    pub request_id: Option<String>,
    /// `once`.
    pub once: Option<String>,
}

impl Columns {
    /// The columns of an envelope.
    pub fn of(envelope: &Envelope) -> Self {
        Columns {
            at: envelope.at.to_string(),
            session: envelope.session.clone(),
            kind: envelope.kind.as_str().to_owned(),
            actor: envelope.actor.id.clone(),
            request_id: envelope.request_id().map(str::to_owned),
            once: envelope.once.clone(),
        }
    }
}

/// A sealed event as a store keeps it: position, hash, the exact canonical
/// bytes that were hashed, and the extracted query columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the chain (a column; the verifier checks it against the bytes).
    pub seq: u64,
    /// `digest("syndicate:event:v1", envelope)` as stored.
    pub hash: Digest,
    /// The RFC 8785 bytes of the envelope.
    pub canonical: Vec<u8>,
    /// Extracted query columns.
    pub columns: Columns,
}

impl Event {
    /// Parses the envelope out of the canonical bytes.
    ///
    /// # Errors
    /// A `serde_json` error when the bytes are not a v1 envelope.
    pub fn envelope(&self) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(&self.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_text() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), *kind);
        }
        assert!("action.unknown".parse::<EventKind>().is_err());
    }

    #[test]
    fn chain_ids_are_restricted() {
        assert!(ChainId::new("acme-prod.v2_x").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(ChainId::new(bad).is_err(), "{bad}");
        }
    }
}
