//! Sealing: turning drafts into chained, hashed events. Every store calls
//! [`seal`] inside its append transaction, so no backend hashes anything.

use serde_json::Value;

use crate::digest::{Digest, tags};
use crate::event::{
    Actor, ActorKind, ChainId, Columns, ENVELOPE_VERSION, Envelope, Event, EventDraft, EventKind,
    PolicyRef,
};
use crate::jcs::{self, CanonError, Limits};
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
    /// A text field holds a control character.
    #[error(
        "draft {index}: {field} holds the control character U+{code:04X} at byte {at}; \
         sessions, ids and keys are plain text"
    )]
    ControlCharacter {
        /// Position of the draft in its batch.
        index: usize,
        /// Which field.
        field: &'static str,
        /// The character's code point.
        code: u32,
        /// Its byte offset.
        at: usize,
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
    if let Some((at, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(SealError::ControlCharacter {
            index,
            field,
            code: u32::from(c),
            at,
        });
    }
    Ok(())
}

/// Checks a draft without sealing it.
///
/// # Errors
/// The [`SealError`] that [`seal`] would return for this draft alone.
pub(crate) fn check_draft(index: usize, draft: &EventDraft) -> Result<(), SealError> {
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
    let at_text = at.to_string();
    let mut events = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        let fields = Fields {
            chain: chain.as_str(),
            seq,
            prev: &prev,
            at: &at_text,
            session: &draft.session,
            kind: draft.kind,
            actor: &draft.actor,
            policy: draft.policy.as_ref(),
            body: &draft.body,
            once: draft.once.as_deref(),
        };
        let canonical = fields
            .write()
            .map_err(|source| SealError::Canon { index, source })?;
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
            canonical,
            columns: Columns {
                at: at_text.clone(),
                session: draft.session.clone(),
                kind: draft.kind.as_str().to_owned(),
                actor: draft.actor.id.clone(),
                request_id: draft
                    .body
                    .get("request_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                once: draft.once.clone(),
            },
        });
        prev = hash;
        seq += 1;
    }
    Ok(events)
}

/// Limits for reading an event envelope back with the strict parser: the
/// envelope may be up to [`MAX_EVENT_BYTES`] and 128 levels deep (the body,
/// at depth 2, is written with at most 126 levels so the whole stays within).
pub const EVENT_LIMITS: Limits = Limits {
    max_depth: 128,
    max_bytes: MAX_EVENT_BYTES,
};

const BODY_LIMITS: Limits = Limits {
    max_depth: 126,
    max_bytes: MAX_EVENT_BYTES,
};

/// The canonical bytes of an envelope.
///
/// # Errors
/// [`CanonError`] when the body has no canonical form.
pub fn canonical_envelope(envelope: &Envelope) -> Result<Vec<u8>, CanonError> {
    Fields {
        chain: envelope.chain.as_str(),
        seq: envelope.seq,
        prev: &envelope.prev,
        at: &envelope.at.to_string(),
        session: &envelope.session,
        kind: envelope.kind,
        actor: &envelope.actor,
        policy: envelope.policy.as_ref(),
        body: &envelope.body,
        once: envelope.once.as_deref(),
    }
    .write()
}

/// The members of an envelope, borrowed, for writing its canonical bytes
/// directly: the members are written in their RFC 8785 order (all names are
/// ASCII, so UTF-16 order is byte order) without building a JSON value.
struct Fields<'a> {
    chain: &'a str,
    seq: u64,
    prev: &'a Digest,
    at: &'a str,
    session: &'a str,
    kind: EventKind,
    actor: &'a Actor,
    policy: Option<&'a PolicyRef>,
    body: &'a Value,
    once: Option<&'a str>,
}

impl Fields<'_> {
    fn write(&self) -> Result<Vec<u8>, CanonError> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"{\"actor\":{\"id\":");
        jcs::write_string(&self.actor.id, &mut out);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(actor_type(self.actor.kind).as_bytes());
        out.extend_from_slice(b"\"},\"at\":");
        jcs::write_string(self.at, &mut out);
        out.extend_from_slice(b",\"body\":");
        jcs::write_canonical_with(self.body, &BODY_LIMITS, &mut out)?;
        out.extend_from_slice(b",\"chain\":");
        jcs::write_string(self.chain, &mut out);
        out.extend_from_slice(b",\"kind\":");
        jcs::write_string(self.kind.as_str(), &mut out);
        out.extend_from_slice(b",\"once\":");
        match self.once {
            Some(once) => jcs::write_string(once, &mut out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"policy\":");
        match self.policy {
            Some(policy) => {
                out.extend_from_slice(b"{\"digest\":\"");
                out.extend_from_slice(policy.digest.to_string().as_bytes());
                out.extend_from_slice(b"\",\"id\":");
                jcs::write_string(&policy.id, &mut out);
                out.extend_from_slice(b",\"version\":");
                jcs::write_string(&policy.version, &mut out);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(self.prev.to_string().as_bytes());
        out.extend_from_slice(b"\",\"seq\":");
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.extend_from_slice(b",\"session\":");
        jcs::write_string(self.session, &mut out);
        out.extend_from_slice(b",\"v\":");
        out.extend_from_slice(ENVELOPE_VERSION.to_string().as_bytes());
        out.push(b'}');
        Ok(out)
    }
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
    fn direct_writer_matches_the_reference_canonicalization() {
        let chain = ChainId::new("c").unwrap();
        let policy = PolicyRef {
            id: "p\u{e9}".into(),
            version: "7\"".into(),
            digest: Digest::of_canonical(tags::POLICY, b"{}"),
        };
        let drafts = [
            draft(0),
            draft(1).with_once("k\"\u{1f600}").with_policy(policy),
            EventDraft::new(
                "s\u{2028}",
                EventKind::ActionProposed,
                Actor::agent("a\\b"),
                json!({"\u{e000}": 1, "\u{1f600}": [1.5, -0.0, 1e21], "request_id": "r"}),
            ),
        ];
        let events = seal(&chain, None, &drafts, Timestamp::now()).unwrap();
        for event in &events {
            let envelope = event.envelope().unwrap();
            let reference =
                jcs::to_canonical_vec(&serde_json::to_value(&envelope).unwrap()).unwrap();
            assert_eq!(event.canonical, reference);
            assert_eq!(canonical_envelope(&envelope).unwrap(), reference);
            assert_eq!(event.columns, Columns::of(&envelope));
        }
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
