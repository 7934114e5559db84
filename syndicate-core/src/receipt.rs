//! Receipts: a request's events with their inclusion proofs and a signed
//! checkpoint, in one file an auditor checks offline, with no store.
//!
//! A receipt is one JSON object written as its RFC 8785 canonical bytes
//! followed by one newline (docs/FORMAT.md §10.6):
//!
//! ```text
//! {"checkpoint":"<signed note>","events":[{"event":"<canonical event>","index":3,"proof":["<base64>",...]},...],"format":"syndicate-receipt/v1","request_id":"..."}
//! ```
//!
//! [`verify`] refuses a receipt that is not exactly in that form, so no
//! byte of it can change without the change being refused.
//!
//! A receipt proves that each event it holds is in the log the checkpoint
//! signs, at its position; it does not prove that the log holds no other
//! event about the request (events after the checkpoint, or ones left out).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointError, Trust};
use crate::digest::{Digest, tags};
use crate::event::{ChainId, Envelope};
use crate::jcs::{self, Limits};
use crate::merkle;
use crate::seal::EVENT_LIMITS;
use crate::store::{EventStore, Query};
use crate::tree::{self, TreeError};

/// The `format` member of every version 1 receipt.
pub const FORMAT: &str = "syndicate-receipt/v1";

/// Parsing limits of a receipt file: depth 8, 256 MiB.
pub const RECEIPT_LIMITS: Limits = Limits {
    max_depth: 8,
    max_bytes: 256 << 20,
};

/// The receipt file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`FORMAT`].
    pub format: String,
    /// The request the receipt is about.
    pub request_id: String,
    /// The signed checkpoint the proofs lead to (C2SP signed note text).
    pub checkpoint: String,
    /// The request's events inside the checkpoint, in seq order.
    pub events: Vec<ReceiptEvent>,
}

/// One event of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptEvent {
    /// Its leaf index (= its seq).
    pub index: u64,
    /// Its canonical bytes (RFC 8785 JSON text of the envelope).
    pub event: String,
    /// The RFC 9162 inclusion proof of its leaf in the checkpoint's tree,
    /// each hash standard base64 of 32 bytes.
    pub proof: Vec<String>,
}

/// Why a receipt could not be made or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The checkpoint does not verify.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The store could not be read, or its tree does not reach the checkpoint.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The request has no event inside the checkpoint.
    #[error(
        "request {request_id} has no event among the first {size} events the checkpoint covers{}; sign a newer checkpoint",
        if *.later == 0 { String::new() } else { format!(" ({} later)", .later) }
    )]
    NoEvents {
        /// The request.
        request_id: String,
        /// The checkpoint's size.
        size: u64,
        /// Events of the request after the checkpoint.
        later: usize,
    },
    /// The store's events do not lead to the checkpoint's root.
    #[error(
        "event {seq} of the store is not in the checkpoint's tree ({reason}); the store does not match the checkpoint: run `syndicate audit verify --checkpoint`"
    )]
    NotInCheckpoint {
        /// The event's seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The receipt file is not in the receipt format.
    #[error("not a receipt: {0}")]
    Format(String),
    /// An event of the receipt is refused.
    #[error("receipt event {position} (index {index}) is refused: {reason}")]
    Event {
        /// 0-based position in `events`.
        position: usize,
        /// Its `index` member.
        index: u64,
        /// Why.
        reason: String,
    },
}

/// A receipt whose every check passed.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verified checkpoint.
    pub checkpoint: checkpoint::Opened,
    /// The request.
    pub request_id: String,
    /// The chain the events belong to.
    pub chain: ChainId,
    /// Each event's envelope and hash, in seq order.
    pub events: Vec<(Envelope, Digest)>,
}

/// Makes the receipt of a request against a signed checkpoint: the
/// request's events among the first `size` (found through the store's
/// `request_id` column), each with its inclusion proof. Every proof is
/// checked against the checkpoint's root before the receipt is returned.
/// Returns the receipt and the number of the request's events after the
/// checkpoint (left out).
///
/// # Errors
/// [`ReceiptError::Checkpoint`] for a note or body outside the format,
/// [`ReceiptError::NoEvents`], [`ReceiptError::NotInCheckpoint`] when the
/// store does not match the checkpoint, [`ReceiptError::Tree`] for a store
/// error or a chain shorter than the checkpoint.
pub async fn make<S: EventStore + ?Sized>(
    store: &S,
    request_id: &str,
    signed_checkpoint: &str,
) -> Result<(Receipt, usize), ReceiptError> {
    let cp = checkpoint::parse_unverified(signed_checkpoint)?;
    let mut events = Vec::new();
    let mut later = 0;
    let mut after = None;
    loop {
        let page = store
            .query(&Query {
                after_seq: after,
                ..Query::request(request_id)
            })
            .await
            .map_err(TreeError::from)?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for event in page {
            if event.seq >= cp.size {
                later += 1;
                continue;
            }
            let not_in = |reason: String| ReceiptError::NotInCheckpoint {
                seq: event.seq,
                reason,
            };
            let hash = Digest::of_canonical(tags::EVENT, &event.canonical);
            let proof = tree::inclusion_proof(store, event.seq, cp.size).await?;
            merkle::verify_inclusion(
                event.seq,
                cp.size,
                &tree::event_leaf(&hash),
                &proof,
                &cp.root,
            )
            .map_err(|e| not_in(e.to_string()))?;
            let text = String::from_utf8(event.canonical)
                .map_err(|_| not_in("its bytes are not UTF-8".to_owned()))?;
            events.push(ReceiptEvent {
                index: event.seq,
                event: text,
                proof: proof.iter().map(|h| BASE64.encode(h)).collect(),
            });
        }
    }
    if events.is_empty() {
        return Err(ReceiptError::NoEvents {
            request_id: request_id.to_owned(),
            size: cp.size,
            later,
        });
    }
    let receipt = Receipt {
        format: FORMAT.to_owned(),
        request_id: request_id.to_owned(),
        checkpoint: signed_checkpoint.to_owned(),
        events,
    };
    Ok((receipt, later))
}

impl Receipt {
    /// The file bytes: RFC 8785 canonical JSON and one newline.
    ///
    /// # Errors
    /// [`ReceiptError::Format`] for an index above 2^53, which has no
    /// canonical JSON form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        let value = serde_json::to_value(self).map_err(|e| ReceiptError::Format(e.to_string()))?;
        let mut bytes =
            jcs::to_canonical_vec(&value).map_err(|e| ReceiptError::Format(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Verifies a receipt file with no store: it is exactly the canonical form
/// of a version 1 receipt; its checkpoint verifies under `trust`; and each
/// event is canonical, about the receipt's request, at seq = its index,
/// inside the checkpoint, and its leaf's inclusion proof leads to the
/// checkpoint's root. Events are in strictly increasing seq order and of
/// one chain.
///
/// # Errors
/// [`ReceiptError::Format`] for a file outside the format,
/// [`ReceiptError::Checkpoint`] for a checkpoint that does not verify,
/// [`ReceiptError::Event`] naming the first event refused.
pub fn verify(bytes: &[u8], trust: &Trust) -> Result<Verified, ReceiptError> {
    let format = |reason: String| ReceiptError::Format(reason);
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| format("the file must end with one newline".to_owned()))?;
    let canonical = jcs::canonicalize_with(body, &RECEIPT_LIMITS)
        .map_err(|e| format(format!("not one JSON object: {e}")))?;
    if canonical != body {
        return Err(format(
            "the file is not in RFC 8785 canonical form; it was altered (receipts are written canonical)".to_owned(),
        ));
    }
    let receipt: Receipt = serde_json::from_slice(body).map_err(|e| format(e.to_string()))?;
    if receipt.format != FORMAT {
        return Err(format(format!(
            "format {:?} is not {FORMAT:?}",
            receipt.format
        )));
    }
    let opened = checkpoint::open(&receipt.checkpoint, trust)?;
    let cp = opened.checkpoint();
    if receipt.events.is_empty() {
        return Err(format("it holds no event".to_owned()));
    }
    let mut events: Vec<(Envelope, Digest)> = Vec::with_capacity(receipt.events.len());
    let mut previous: Option<u64> = None;
    for (position, e) in receipt.events.iter().enumerate() {
        let refuse = |reason: String| ReceiptError::Event {
            position,
            index: e.index,
            reason,
        };
        if previous.is_some_and(|p| e.index <= p) {
            return Err(refuse("events are not in increasing seq order".to_owned()));
        }
        previous = Some(e.index);
        let bytes = e.event.as_bytes();
        match jcs::canonicalize_with(bytes, &EVENT_LIMITS) {
            Ok(c) if c == bytes => {}
            Ok(_) => return Err(refuse("the event is not in canonical form".to_owned())),
            Err(err) => return Err(refuse(format!("the event is not JSON: {err}"))),
        }
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|err| refuse(format!("not a v1 event envelope: {err}")))?;
        if envelope.seq != e.index {
            return Err(refuse(format!("the event's seq is {}", envelope.seq)));
        }
        if envelope.request_id() != Some(receipt.request_id.as_str()) {
            return Err(refuse(format!(
                "the event is about request {:?}, not {:?}",
                envelope.request_id().unwrap_or(""),
                receipt.request_id
            )));
        }
        if let Some((first, _)) = events.first()
            && first.chain != envelope.chain
        {
            return Err(refuse(format!(
                "the event is on chain {}, the others on {}",
                envelope.chain, first.chain
            )));
        }
        let proof = e
            .proof
            .iter()
            .map(|p| BASE64.decode(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| refuse(format!("a proof hash is not base64: {err}")))?;
        let hash = Digest::of_canonical(tags::EVENT, bytes);
        merkle::verify_inclusion(e.index, cp.size, &tree::event_leaf(&hash), &proof, &cp.root)
            .map_err(|err| {
                refuse(format!(
                    "its inclusion proof does not lead to the checkpoint root at size {}: {err}",
                    cp.size
                ))
            })?;
        events.push((envelope, hash));
    }
    let chain = events[0].0.chain.clone();
    Ok(Verified {
        checkpoint: opened,
        request_id: receipt.request_id,
        chain,
        events,
    })
}
