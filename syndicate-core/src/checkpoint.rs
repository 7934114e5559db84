//! C2SP `tlog-checkpoint` bodies: the origin of a log, a tree size and the
//! root of the tree of that many events.
//!
//! ```text
//! <origin>\n
//! <size, decimal>\n
//! <root, standard base64 of 32 bytes>\n
//! [<extension line>\n ...]
//! ```
//!
//! A body is signed as a C2SP signed note by the log key ([`sign`]) and
//! cosigned by witnesses ([`cosign`]); [`open`] verifies the log's
//! signature and a threshold of witness cosignatures and returns the body.
//!
//! ```
//! use syndicate_core::checkpoint::{self, Checkpoint};
//! use syndicate_core::keys::SigningKey;
//!
//! let log = SigningKey::generate("audit.example.com/prod")?;
//! let witness = SigningKey::generate("witness.example.org")?;
//! let body = Checkpoint::new("audit.example.com/prod", 3, [7; 32]);
//! let signed = checkpoint::sign(&body, &log)?;
//! let cosigned = checkpoint::cosign(&signed, &witness)?;
//! let trusted = checkpoint::Trust::log(log.verifier().clone())
//!     .with_witnesses(vec![witness.verifier().clone()], 1);
//! let opened = checkpoint::open(&cosigned, &trusted)?;
//! assert_eq!(opened.checkpoint().size, 3);
//! assert_eq!(opened.witnesses().len(), 1);
//! // Requiring a cosignature refuses the log's signature alone.
//! assert!(checkpoint::open(&signed, &trusted).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::event::ChainId;
use crate::keys::{SigningKey, VerifierKey};
use crate::merkle::Hash;
use crate::note::{self, Note, NoteError};

/// The origin a chain's checkpoints carry when none is configured:
/// `syndicate/<chain>`. Give a chain a globally unique origin (such as
/// `audit.example.com/<chain>`) when its checkpoints are published.
pub fn default_origin(chain: &ChainId) -> String {
    format!("syndicate/{chain}")
}

/// A checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Events covered: the first `size` events of the chain.
    pub size: u64,
    /// The RFC 9162 root of those events.
    pub root: Hash,
    /// Optional extension lines, in order.
    pub extensions: Vec<String>,
}

/// Why a checkpoint could not be signed, or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A line of the body is missing or malformed.
    #[error("checkpoint line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The signed note is malformed, or a trusted key's signature on it
    /// does not verify, or no signature is from a trusted key.
    #[error("signed checkpoint refused: {0}")]
    Note(#[from] NoteError),
    /// The note verifies, but not with the log key: only witnesses signed it.
    #[error(
        "the checkpoint is not signed by the log key {log}; give the log's own verifier key (`syndicate key show log.key`)"
    )]
    NotSignedByLog {
        /// The log key's `name+keyid`.
        log: String,
    },
    /// Fewer trusted witnesses cosigned than required.
    #[error(
        "the checkpoint has {found} valid cosignature(s) from trusted witnesses ({}), {required} required; have it cosigned by more witnesses (`syndicate witness`) or give their keys",
        if .names.is_empty() { "none".to_owned() } else { .names.join(", ") }
    )]
    TooFewWitnesses {
        /// Cosignatures required.
        required: usize,
        /// Valid cosignatures from trusted witnesses.
        found: usize,
        /// Their `name+keyid`.
        names: Vec<String>,
    },
}

fn bad(line: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Line {
        line,
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The body text, each line ending in `\n`.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a body (the text of a signed note before its blank line).
    ///
    /// # Errors
    /// [`CheckpointError`] naming the first bad line: an empty origin, a size
    /// that is not canonical decimal, a root that is not base64 of 32 bytes,
    /// an empty extension line, or a body not ending in a newline.
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad(1, "a checkpoint body must end with a newline"));
        };
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad(1, "the origin line is empty"));
        }
        let size_text = lines
            .next()
            .ok_or_else(|| bad(2, "the size line is missing"))?;
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| bad(2, format!("{size_text:?} is not a decimal tree size")))?;
        let root_text = lines
            .next()
            .ok_or_else(|| bad(3, "the root line is missing"))?;
        let root: Hash = STANDARD
            .decode(root_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(3, "the root is not base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(bad(4 + i, "an extension line is empty"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// Signs a checkpoint body with the log key: the C2SP signed note whose
/// text is [`Checkpoint::body`].
///
/// Sign only a root computed from verified events
/// ([`crate::tree::VerifiedTree::checkpoint`] does both).
///
/// # Errors
/// [`CheckpointError::Line`] for a body that would not parse back (an
/// origin or extension line that is empty or holds a newline or control
/// character), [`CheckpointError::Note`] should the note not be signable.
pub fn sign(checkpoint: &Checkpoint, log_key: &SigningKey) -> Result<String, CheckpointError> {
    let body = checkpoint.body();
    if Checkpoint::parse(&body)? != *checkpoint {
        return Err(bad(1, "a line of the body holds a newline"));
    }
    Ok(note::sign(&body, &[log_key])?)
}

/// Adds a witness's cosignature to a signed checkpoint: an Ed25519
/// signed-note signature by the witness key over the same body. It checks
/// nothing: a witness cosigns only after checking consistency with what it
/// cosigned before (see [`crate::witness`]).
///
/// # Errors
/// [`CheckpointError::Note`] for a note outside the format, or one that
/// already carries the maximum number of signatures;
/// [`CheckpointError::Line`] for a text that is not a checkpoint body.
pub fn cosign(signed: &str, witness: &SigningKey) -> Result<String, CheckpointError> {
    let mut note = Note::parse(signed)?;
    Checkpoint::parse(note.text())?;
    if note.signatures().len() >= note::MAX_SIGNATURES {
        return Err(NoteError::TooLarge.into());
    }
    note.add_signature(witness);
    Ok(note.to_string())
}

/// The keys a verifier trusts for a log's checkpoints: the log key, and
/// witness keys of which at least `required` must have cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    log: VerifierKey,
    witnesses: Vec<VerifierKey>,
    required: usize,
}

impl Trust {
    /// Trusts checkpoints signed by the log key, with no witness required.
    pub fn log(log: VerifierKey) -> Self {
        Trust {
            log,
            witnesses: Vec::new(),
            required: 0,
        }
    }

    /// Also trusts these witness keys, and requires cosignatures from at
    /// least `required` of them (a key listed twice counts once).
    #[must_use]
    pub fn with_witnesses(mut self, witnesses: Vec<VerifierKey>, required: usize) -> Self {
        self.witnesses = witnesses;
        self.required = required;
        self
    }

    /// The log key.
    pub fn log_key(&self) -> &VerifierKey {
        &self.log
    }
}

/// A checkpoint whose signatures were verified by [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    checkpoint: Checkpoint,
    log: VerifierKey,
    witnesses: Vec<VerifierKey>,
    signed: String,
}

impl Opened {
    /// The verified body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The log key whose signature verified.
    pub fn log_key(&self) -> &VerifierKey {
        &self.log
    }

    /// The trusted witnesses whose cosignatures verified.
    pub fn witnesses(&self) -> &[VerifierKey] {
        &self.witnesses
    }

    /// The signed note as it was given.
    pub fn signed_note(&self) -> &str {
        &self.signed
    }
}

/// Verifies a signed checkpoint: the body parses, the log key signed it,
/// and at least the required number of trusted witnesses cosigned it.
/// Signatures from keys not trusted are ignored; a signature from a
/// trusted key that does not verify refuses the whole note.
///
/// # Errors
/// [`CheckpointError::Note`] for a note that is malformed, altered, or
/// signed by no trusted key; [`CheckpointError::NotSignedByLog`] when only
/// witnesses signed it; [`CheckpointError::TooFewWitnesses`] below the
/// threshold; [`CheckpointError::Line`] for a text that is not a body.
pub fn open(signed: &str, trust: &Trust) -> Result<Opened, CheckpointError> {
    let mut keys = Vec::with_capacity(1 + trust.witnesses.len());
    keys.push(trust.log.clone());
    for w in &trust.witnesses {
        if !keys.contains(w) {
            keys.push(w.clone());
        }
    }
    let opened = note::open(signed, &keys)?;
    if !opened.verified().contains(&trust.log) {
        return Err(CheckpointError::NotSignedByLog {
            log: key_label(&trust.log),
        });
    }
    let checkpoint = Checkpoint::parse(opened.text())?;
    let witnesses: Vec<VerifierKey> = opened
        .verified()
        .iter()
        .filter(|k| **k != trust.log && trust.witnesses.contains(k))
        .cloned()
        .collect();
    if witnesses.len() < trust.required {
        return Err(CheckpointError::TooFewWitnesses {
            required: trust.required,
            found: witnesses.len(),
            names: witnesses.iter().map(key_label).collect(),
        });
    }
    Ok(Opened {
        checkpoint,
        log: trust.log.clone(),
        witnesses,
        signed: signed.to_owned(),
    })
}

/// The body of a signed checkpoint, nothing verified: for tools that only
/// need its size and root to make a proof that is verified elsewhere.
///
/// # Errors
/// [`CheckpointError::Note`] / [`CheckpointError::Line`] for a note or body
/// outside the format.
pub fn parse_unverified(signed: &str) -> Result<Checkpoint, CheckpointError> {
    let note = Note::parse(signed)?;
    Checkpoint::parse(note.text())
}

fn key_label(key: &VerifierKey) -> String {
    format!("{}+{}", key.name(), key.key_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_bad_lines_are_named() {
        let mut cp = Checkpoint::new("example.com/log", 12, [7; 32]);
        cp.extensions.push("ext one".into());
        assert_eq!(Checkpoint::parse(&cp.body()).unwrap(), cp);
        assert!(Checkpoint::parse("o\n012\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\n").is_err());
        assert!(Checkpoint::parse(&cp.body().replace('\n', "")).is_err());
    }

    fn key(name: &str, byte: u8) -> SigningKey {
        SigningKey::from_seed(name, &[byte; 32]).unwrap()
    }

    #[test]
    fn signed_checkpoint_opens_with_the_log_key_and_not_another() {
        let (log, other) = (key("log", 1), key("log", 2));
        let cp = Checkpoint::new("o", 5, [1; 32]);
        let signed = sign(&cp, &log).unwrap();
        let opened = open(&signed, &Trust::log(log.verifier().clone())).unwrap();
        assert_eq!(opened.checkpoint(), &cp);
        assert!(matches!(
            open(&signed, &Trust::log(other.verifier().clone())),
            Err(CheckpointError::Note(NoteError::NoTrustedSignature { .. }))
        ));
        let altered = signed.replace("\n5\n", "\n6\n");
        assert!(matches!(
            open(&altered, &Trust::log(log.verifier().clone())),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
    }

    #[test]
    fn witness_threshold_counts_distinct_trusted_witnesses_only() {
        let (log, w1, w2, stranger) = (key("log", 1), key("w1", 2), key("w2", 3), key("s", 4));
        let signed = sign(&Checkpoint::new("o", 5, [1; 32]), &log).unwrap();
        let once = cosign(&signed, &w1).unwrap();
        let twice_same = cosign(&once, &w1).unwrap();
        let by_stranger = cosign(&once, &stranger).unwrap();
        let both = cosign(&once, &w2).unwrap();
        let trust = Trust::log(log.verifier().clone())
            .with_witnesses(vec![w1.verifier().clone(), w2.verifier().clone()], 2);
        for short in [&signed, &once, &twice_same, &by_stranger] {
            assert!(
                matches!(
                    open(short, &trust),
                    Err(CheckpointError::TooFewWitnesses { required: 2, .. })
                ),
                "{short}"
            );
        }
        assert_eq!(open(&both, &trust).unwrap().witnesses().len(), 2);
        // The log key listed as a witness does not count as one.
        let self_witness =
            Trust::log(log.verifier().clone()).with_witnesses(vec![log.verifier().clone()], 1);
        assert!(open(&signed, &self_witness).is_err());
    }

    #[test]
    fn a_note_signed_only_by_a_witness_is_not_a_checkpoint_of_the_log() {
        let (log, w) = (key("log", 1), key("w", 2));
        let by_witness = note::sign(&Checkpoint::new("o", 1, [0; 32]).body(), &[&w]).unwrap();
        let trust =
            Trust::log(log.verifier().clone()).with_witnesses(vec![w.verifier().clone()], 0);
        assert!(matches!(
            open(&by_witness, &trust),
            Err(CheckpointError::NotSignedByLog { .. })
        ));
    }

    #[test]
    fn a_body_line_holding_a_newline_is_not_signed() {
        let log = key("log", 1);
        let cp = Checkpoint::new("o\n7", 5, [1; 32]);
        assert!(matches!(sign(&cp, &log), Err(CheckpointError::Line { .. })));
    }
}
