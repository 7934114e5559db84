//! Sealing: turning drafts into chained, hashed events. Every store calls
//! [`seal`] inside its append transaction, so no backend hashes anything.

use serde_json::Value;

use crate::digest::{Digest, tags};
use crate::event::{ActorKind, ChainId, Columns, ENVELOPE_VERSION, Envelope, Event, EventDraft};
use crate::jcs::{self, CanonError};
use crate::timestamp::Timestamp;

/// Largest canonical envelope accepted, in bytes (4 MiB: a 1 MiB action plus
/// its decision context).
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Longest `session`, `actor.id`, `once`, policy id or version, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;

/// The last event of a chain: what the next event links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    /// Its position.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// When it was sealed.
    pub at: Timestamp,
}

/// Why a draft cannot be sealed. Nothing of a batch is written when any of
/// its drafts is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A required text field is empty.
    #[error("draft {index}: {field} must not be empty")]
    Empty {
        /// Position of the draft in its batch.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// A text field is longer than [`MAX_FIELD_BYTES`].
    #[error("draft {index}: {field} is {len} bytes, above the limit of {MAX_FIELD_BYTES}")]
    TooLong {
        /// Position of the draft in its batch.
        index: usize,
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The body is not a JSON object.
    #[error("draft {index}: body must be a json object")]
    BodyNotObject {
        /// Position of the draft in its batch.
        index: usize,
    },
    /// The body has no canonical form.
    #[error("draft {index}: {source}")]
    Canon {
        /// Position of the draft in its batch.
        index: usize,
        /// What the canonicalizer refused.
        source: CanonError,
    },
    /// `body.request_id` is present but not a string.
    #[error("draft {index}: body.request_id must be a string when present")]
    BadRequestId {
        /// Position of the draft in its batch.
        index: usize,
    },
    /// The envelope is larger than [`MAX_EVENT_BYTES`].
    #[error(
        "draft {index}: event is {size} bytes in canonical form, above the limit of {MAX_EVENT_BYTES}"
    )]
    TooLarge {
        /// Position of the draft in its batch.
        index: usize,
        /// Canonical size.
        size: usize,
    },
    /// Two drafts of one batch carry the same single-use key.
    #[error("single-use key {key:?} appears twice in one batch")]
    DuplicateOnce {
        /// The key.
        key: String,
    },
}

fn check_text(index: usize, field: &'static str, text: &str) -> Result<(), SealError> {
    if text.is_empty() {
        return Err(SealError::Empty { index, field });
    }
    if text.len() > MAX_FIELD_BYTES {
        return Err(SealError::TooLong {
            index,
            field,
            len: text.len(),
        });
    }
    Ok(())
}

/// Checks a draft without sealing it.
///
/// # Errors
/// The [`SealError`] that [`seal`] would return for this draft alone.
pub fn check_draft(index: usize, draft: &EventDraft) -> Result<(), SealError> {
    check_text(index, "session", &draft.session)?;
    check_text(index, "actor.id", &draft.actor.id)?;
    if let Some(once) = &draft.once {
        check_text(index, "once", once)?;
    }
    if let Some(policy) = &draft.policy {
        check_text(index, "policy.id", &policy.id)?;
        check_text(index, "policy.version", &policy.version)?;
    }
    let Some(body) = draft.body.as_object() else {
        return Err(SealError::BodyNotObject { index });
    };
    match body.get("request_id") {
        None => {}
        Some(Value::String(id)) => check_text(index, "body.request_id", id)?,
        Some(_) => return Err(SealError::BadRequestId { index }),
    }
    Ok(())
}

/// Seals a batch of drafts onto the chain after `head` (`None` for an empty
/// chain): assigns consecutive `seq`s, links each `prev`, stamps `at` (never
/// earlier than the head's), and hashes the canonical envelope.
///
/// Stores call this inside the transaction that holds the chain's head, then
/// write each returned [`Event`] as it is.
///
/// # Errors
/// [`SealError`] when any draft is invalid; then nothing is sealed.
pub fn seal(
    chain: &ChainId,
    head: Option<&Head>,
    drafts: &[EventDraft],
    now: Timestamp,
) -> Result<Vec<Event>, SealError> {
    let mut seen_once = std::collections::HashSet::new();
    for (index, draft) in drafts.iter().enumerate() {
        check_draft(index, draft)?;
        if let Some(once) = &draft.once
            && !seen_once.insert(once.as_str())
        {
            return Err(SealError::DuplicateOnce { key: once.clone() });
        }
    }
    let at = match head {
        Some(head) if head.at > now => head.at,
        _ => now,
    };
    let (mut seq, mut prev) = match head {
        Some(head) => (head.seq + 1, head.hash),
        None => (0, Digest::ZERO),
    };
    let mut events = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            chain: chain.clone(),
            seq,
            prev,
            at,
            session: draft.session.clone(),
            kind: draft.kind,
            actor: draft.actor.clone(),
            policy: draft.policy.clone(),
            body: draft.body.clone(),
            once: draft.once.clone(),
        };
        let canonical =
            canonical_envelope(&envelope).map_err(|source| SealError::Canon { index, source })?;
        if canonical.len() > MAX_EVENT_BYTES {
            return Err(SealError::TooLarge {
                index,
                size: canonical.len(),
            });
        }
        let hash = Digest::of_canonical(tags::EVENT, &canonical);
        events.push(Event {
            seq,
            hash,
            columns: Columns::of(&envelope),
            canonical,
        });
        prev = hash;
        seq += 1;
    }
    Ok(events)
}

/// The canonical bytes of an envelope.
///
/// # Errors
/// [`CanonError`] when the body has no canonical form.
pub fn canonical_envelope(envelope: &Envelope) -> Result<Vec<u8>, CanonError> {
    let policy = envelope.policy.as_ref().map(
        |p| serde_json::json!({"id": p.id, "version": p.version, "digest": p.digest.to_string()}),
    );
    let value = serde_json::json!({
        "v": envelope.v,
        "chain": envelope.chain.as_str(),
        "seq": envelope.seq,
        "prev": envelope.prev.to_string(),
        "at": envelope.at.to_string(),
        "session": envelope.session,
        "kind": envelope.kind.as_str(),
        "actor": {"id": envelope.actor.id, "type": actor_type(envelope.actor.kind)},
        "policy": policy,
        "body": envelope.body,
        "once": envelope.once,
    });
    jcs::to_canonical_vec(&value)
}

fn actor_type(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Human => "human",
        ActorKind::Agent => "agent",
        ActorKind::Policy => "policy",
        ActorKind::System => "system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventKind};
    use serde_json::json;

    fn draft(n: u64) -> EventDraft {
        EventDraft::new(
            "s",
            EventKind::Annotation,
            Actor::human("a"),
            json!({ "n": n }),
        )
    }

    #[test]
    fn seals_a_linked_batch_from_genesis() {
        let chain = ChainId::new("c").unwrap();
        let events = seal(&chain, None, &[draft(0), draft(1)], Timestamp::now()).unwrap();
        let e0 = events[0].envelope().unwrap();
        let e1 = events[1].envelope().unwrap();
        assert_eq!((e0.seq, e0.prev), (0, Digest::ZERO));
        assert_eq!((e1.seq, e1.prev), (1, events[0].hash));
        assert_eq!(
            events[1].hash,
            Digest::of_canonical(tags::EVENT, &events[1].canonical)
        );
    }

    #[test]
    fn at_never_goes_backwards() {
        let chain = ChainId::new("c").unwrap();
        let later: Timestamp = "2030-01-01T00:00:00.000000Z".parse().unwrap();
        let head = Head {
            seq: 4,
            hash: Digest::ZERO,
            at: later,
        };
        let events = seal(&chain, Some(&head), &[draft(0)], Timestamp::now()).unwrap();
        assert_eq!(events[0].envelope().unwrap().at, later);
        assert_eq!(events[0].seq, 5);
    }

    #[test]
    fn refuses_bad_drafts() {
        let chain = ChainId::new("c").unwrap();
        let now = Timestamp::now();
        let mut empty = draft(0);
        empty.session.clear();
        assert!(matches!(
            seal(&chain, None, &[draft(0), empty], now),
            Err(SealError::Empty { index: 1, .. })
        ));
        let mut not_object = draft(0);
        not_object.body = json!([1]);
        assert!(matches!(
            seal(&chain, None, &[not_object], now),
            Err(SealError::BodyNotObject { .. })
        ));
        let inexact = EventDraft {
            body: json!({"n": 9007199254740993u64}),
            ..draft(0)
        };
        assert!(matches!(
            seal(&chain, None, &[inexact], now),
            Err(SealError::Canon { .. })
        ));
        let twice = [draft(0).with_once("k"), draft(1).with_once("k")];
        assert!(matches!(
            seal(&chain, None, &twice, now),
            Err(SealError::DuplicateOnce { .. })
        ));
    }
}
