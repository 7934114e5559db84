//! C2SP signed notes: a text signed by one or more Ed25519 keys.
//!
//! A signed note is the note text (ending in a newline), a blank line, and
//! one or more signature lines `— <key name> <base64(key id || signature)>`,
//! each ending in a newline; the text is separated from the signatures by the
//! *last* blank line. The signature is Ed25519 over the note text (with its
//! final newline). See `c2sp.org/signed-note`.
//!
//! [`open`] verifies a note against the keys a caller trusts, following the
//! specification: a signature from a key the caller does not know (name and
//! key id not both matching a trusted key) is ignored and reported; a
//! signature from a known key that fails to verify rejects the whole note; a
//! note with no verified signature is rejected.
//!
//! ```
//! use syndicate_core::keys::SigningKey;
//! use syndicate_core::note;
//!
//! let log = SigningKey::generate("log.example/a")?;
//! let signed = note::sign("hello\n", &[&log])?;
//! let opened = note::open(&signed, &[log.verifier().clone()])?;
//! assert_eq!(opened.text(), "hello\n");
//! assert_eq!(opened.verified()[0].name(), "log.example/a");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{KeyId, SigningKey, VerifierKey, is_valid_key_name};

/// The most signature lines a note may carry (the specification asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The largest signed note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The opening of every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note could not be signed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not in the signed-note format.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// The note text cannot be signed as it is.
    #[error("note text cannot be signed: {0}")]
    Text(String),
    /// The note is larger than [`MAX_NOTE_BYTES`] or has more than
    /// [`MAX_SIGNATURES`] signatures.
    #[error(
        "signed note is too large: at most {MAX_SIGNATURES} signatures and {MAX_NOTE_BYTES} bytes"
    )]
    TooLarge,
    /// Two trusted keys have the same name and key id, so a signature could
    /// not be attributed to one of them.
    #[error("two trusted keys share the name {name} and key id {key_id}; remove one")]
    AmbiguousKey {
        /// The shared name.
        name: String,
        /// The shared key id.
        key_id: KeyId,
    },
    /// A signature from a trusted key does not verify: the note is rejected.
    #[error("the signature by {name}+{key_id} does not verify; the note was altered or forged")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: KeyId,
    },
    /// No signature is from a trusted key.
    #[error(
        "no signature on the note is from a trusted key (signed by: {}); add the signer's verifier key to the trusted keys if you trust it",
        .signers.join(", ")
    )]
    NoTrustedSignature {
        /// `name+keyid` of every signature found.
        signers: Vec<String>,
    },
}

/// One signature line of a note, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: KeyId,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// The key name on the line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id opening the decoded signature.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature bytes after the key id (64 bytes for Ed25519).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.key_id.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        write!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            BASE64.encode(bytes)
        )
    }
}

/// A signed note split into its text and signature lines, nothing verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Splits a signed note into its text and signatures, checking the format
    /// only (no signature is verified: use [`open`] for that).
    ///
    /// # Errors
    /// [`NoteError::Malformed`] for anything outside the format,
    /// [`NoteError::TooLarge`] past the limits.
    pub fn parse(signed: &str) -> Result<Self, NoteError> {
        if signed.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let malformed = |reason: &str| NoteError::Malformed(reason.to_owned());
        if let Some(c) = signed.chars().find(|&c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed(format!(
                "control character U+{:04X} in the note",
                u32::from(c)
            )));
        }
        let split = signed
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, lines) = (&signed[..=split], &signed[split + 2..]);
        if lines.is_empty() {
            return Err(malformed("no signature line after the blank line"));
        }
        let Some(lines) = lines.strip_suffix('\n') else {
            return Err(malformed(
                "the last signature line does not end in a newline",
            ));
        };
        let mut signatures = Vec::new();
        for line in lines.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooLarge);
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature by `key` over the text (a cosignature).
    pub fn add_signature(&mut self, key: &SigningKey) {
        self.signatures.push(signature_of(&self.text, key));
    }
}

impl fmt::Display for Note {
    /// The signed note: text, blank line, one line per signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        for signature in &self.signatures {
            writeln!(f, "{signature}")?;
        }
        Ok(())
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let malformed = |reason: String| NoteError::Malformed(reason);
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
        malformed(format!(
            "signature line {line:?} does not start with an em dash and a space"
        ))
    })?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| malformed(format!("signature line {line:?} has no signature")))?;
    if !is_valid_key_name(name) {
        return Err(malformed(format!(
            "signature line has an invalid key name {name:?}"
        )));
    }
    let bytes = BASE64
        .decode(b64)
        .map_err(|e| malformed(format!("signature by {name} is not standard base64: {e}")))?;
    if bytes.len() < 5 {
        return Err(malformed(format!(
            "signature by {name} is {} bytes, shorter than a key id and a signature",
            bytes.len()
        )));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: KeyId::from_u32(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        signature: bytes[4..].to_vec(),
    })
}

fn signature_of(text: &str, key: &SigningKey) -> NoteSignature {
    NoteSignature {
        name: key.name().to_owned(),
        key_id: key.key_id(),
        signature: key.sign(text.as_bytes()).to_vec(),
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Text("it must end in a newline".to_owned()));
    }
    if let Some(c) = text.chars().find(|&c| c < ' ' && c != '\n') {
        return Err(NoteError::Text(format!(
            "it holds the control character U+{:04X}",
            u32::from(c)
        )));
    }
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge);
    }
    Ok(())
}

/// Signs `text` with each key, in order, and returns the signed note.
///
/// # Errors
/// [`NoteError::Text`] when the text does not end in a newline or holds a
/// control character other than newline; [`NoteError::Malformed`] with no
/// signer; [`NoteError::TooLarge`] past the limits.
pub fn sign(text: &str, signers: &[&SigningKey]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::Malformed(
            "a note needs at least one signer".to_owned(),
        ));
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooLarge);
    }
    let note = Note {
        text: text.to_owned(),
        signatures: signers.iter().map(|key| signature_of(text, key)).collect(),
    };
    Ok(note.to_string())
}

/// A note whose text is vouched for by at least one trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    text: String,
    verified: Vec<VerifierKey>,
    unverified: Vec<NoteSignature>,
}

impl Opened {
    /// The note text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The trusted keys whose signatures verified, each once, in note order.
    pub fn verified(&self) -> &[VerifierKey] {
        &self.verified
    }

    /// The signatures from keys not trusted, which were ignored (each distinct line once).
    pub fn unverified(&self) -> &[NoteSignature] {
        &self.unverified
    }
}

/// Verifies a signed note against the trusted keys.
///
/// A signature is attributed to a trusted key only when both its key name
/// and key id match that key; other signatures are ignored and listed in
/// [`Opened::unverified`]. Every signature from a trusted key must verify.
///
/// # Errors
/// [`NoteError::Malformed`] / [`NoteError::TooLarge`] for a note outside the
/// format; [`NoteError::AmbiguousKey`] when two trusted keys share a name and
/// key id; [`NoteError::BadSignature`] when a trusted key's signature does not
/// verify; [`NoteError::NoTrustedSignature`] when no signature is from a
/// trusted key.
pub fn open(signed: &str, trusted: &[VerifierKey]) -> Result<Opened, NoteError> {
    for (i, a) in trusted.iter().enumerate() {
        if trusted[i + 1..]
            .iter()
            .any(|b| b.name() == a.name() && b.key_id() == a.key_id() && b != a)
        {
            return Err(NoteError::AmbiguousKey {
                name: a.name().to_owned(),
                key_id: a.key_id(),
            });
        }
    }
    let note = Note::parse(signed)?;
    let mut verified: Vec<VerifierKey> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    for signature in note.signatures {
        let known = trusted
            .iter()
            .find(|k| k.name() == signature.name && k.key_id() == signature.key_id);
        let Some(key) = known else {
            if !unverified.contains(&signature) {
                unverified.push(signature);
            }
            continue;
        };
        let bad = || NoteError::BadSignature {
            name: signature.name.clone(),
            key_id: signature.key_id,
        };
        let bytes: &[u8; 64] = signature
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| bad())?;
        key.verify(note.text.as_bytes(), bytes).map_err(|_| bad())?;
        if !verified.contains(key) {
            verified.push(key.clone());
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoTrustedSignature {
            signers: unverified
                .iter()
                .map(|s| format!("{}+{}", s.name, s.key_id))
                .collect(),
        });
    }
    Ok(Opened {
        text: note.text,
        verified,
        unverified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, byte: u8) -> SigningKey {
        SigningKey::from_seed(name, &[byte; 32]).unwrap()
    }

    #[test]
    fn note_signed_by_two_keys_opens_with_either() {
        let (a, b) = (key("a.example", 1), key("b.example", 2));
        let signed = sign("line one\n\nline three\n", &[&a, &b]).unwrap();
        let opened = open(&signed, &[b.verifier().clone()]).unwrap();
        assert_eq!(opened.text(), "line one\n\nline three\n");
        assert_eq!(opened.verified(), &[b.verifier().clone()]);
        assert_eq!(opened.unverified().len(), 1);
        assert_eq!(opened.unverified()[0].name(), "a.example");
        let both = open(&signed, &[a.verifier().clone(), b.verifier().clone()]).unwrap();
        assert_eq!(both.verified().len(), 2);
    }

    #[test]
    fn altered_text_is_rejected_by_a_known_key() {
        let a = key("a.example", 1);
        let signed = sign("size 10\n", &[&a]).unwrap();
        let altered = signed.replace("size 10", "size 11");
        assert!(matches!(
            open(&altered, &[a.verifier().clone()]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn same_name_other_key_is_ignored_not_trusted() {
        let (a, impostor) = (key("a.example", 1), key("a.example", 9));
        let signed = sign("x\n", &[&impostor]).unwrap();
        assert!(matches!(
            open(&signed, &[a.verifier().clone()]),
            Err(NoteError::NoTrustedSignature { .. })
        ));
    }

    #[test]
    fn cosignature_added_to_a_parsed_note_verifies() {
        let (log, witness) = (key("log", 1), key("witness", 2));
        let signed = sign("x\n", &[&log]).unwrap();
        let mut note = Note::parse(&signed).unwrap();
        note.add_signature(&witness);
        let opened = open(
            &note.to_string(),
            &[log.verifier().clone(), witness.verifier().clone()],
        )
        .unwrap();
        assert_eq!(opened.verified().len(), 2);
    }

    #[test]
    fn malformed_notes_are_refused() {
        let a = key("a", 1);
        let signed = sign("x\n", &[&a]).unwrap();
        let trusted = [a.verifier().clone()];
        for bad in [
            signed.trim_end().to_owned(),
            signed.replace('\u{2014}', "-"),
            signed.replace("x\n\n", "x\n"),
            format!("{signed}\n"),
            signed.replace("x\n", "x\t\n"),
            "x\n\n".to_owned(),
        ] {
            assert!(
                matches!(open(&bad, &trusted), Err(NoteError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(sign("no newline", &[&a]), Err(NoteError::Text(_))));
    }

    #[test]
    fn a_key_listed_twice_counts_once() {
        let a = key("a", 1);
        let signed = sign("x\n", &[&a, &a]).unwrap();
        let opened = open(&signed, &[a.verifier().clone(), a.verifier().clone()]).unwrap();
        assert_eq!(opened.verified(), &[a.verifier().clone()]);
    }
}
