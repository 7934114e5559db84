//! SHA-256 digests with domain separation, written as lower-case hex.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::jcs::{self, CanonError};

/// Domain-separation tags: the first input to every digest, so a digest of
/// one kind of thing can never be mistaken for a digest of another.
pub mod tags {
    /// Tag of the digest of an [`Action`](crate::Action).
    pub const ACTION: &str = "syndicate:action:v1";
    /// Tag of the hash of an event envelope.
    pub const EVENT: &str = "syndicate:event:v1";
    /// Tag of the digest of a policy document.
    pub const POLICY: &str = "syndicate:policy:v1";
    /// Tag of the statement an approver, or an operator, signs: a signed
    /// decision is Ed25519 over `tag || 0x00 || JCS(statement)`.
    pub const APPROVAL: &str = "syndicate:approval:v1";
    /// Tag of the digest of an execution result.
    pub const RESULT: &str = "syndicate:result:v1";
}

/// A SHA-256 digest.
///
/// Displayed, parsed and serialized as exactly 64 lower-case hexadecimal
/// characters; upper-case hex is refused so that every digest has one text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The all-zero digest: the `prev` of the first event of every chain.
    pub const ZERO: Digest = Digest([0; 32]);

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `SHA-256(UTF8(tag) || 0x00 || bytes)`: the digest of bytes that are
    /// already canonical.
    pub fn of_canonical(tag: &str, canonical: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(tag.as_bytes());
        hasher.update([0u8]);
        hasher.update(canonical);
        Digest(hasher.finalize().into())
    }

    /// Writes the 64 hex characters into `out`.
    fn write_hex(&self, out: &mut [u8; 64]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
    }
}

/// `SHA-256(UTF8(tag) || 0x00 || JCS(value))`.
///
/// # Errors
/// Returns [`CanonError`] when `value` has no single canonical form (for
/// example an integer above 2^53 that JCS cannot keep exactly).
pub fn digest(tag: &str, value: &Value) -> Result<Digest, CanonError> {
    Ok(Digest::of_canonical(tag, &jcs::to_canonical_vec(value)?))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        self.write_hex(&mut buf);
        // The buffer only holds ASCII hex digits.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a text is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestParseError {
    /// The text is not 64 characters long.
    #[error("a digest is 64 lower-case hex characters, found {0} characters")]
    Length(usize),
    /// A character is not `0-9` or `a-f`.
    #[error(
        "a digest is 64 lower-case hex characters; {found:?} at position {position} is not one"
    )]
    Character {
        /// The offending character.
        found: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
}

/// Value of each byte as a lower-case hex digit; 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes: &[u8; 64] = s
            .as_bytes()
            .try_into()
            .map_err(|_| DigestParseError::Length(s.chars().count()))?;
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (hi, lo) = (
                HEX_VALUE[usize::from(pair[0])],
                HEX_VALUE[usize::from(pair[1])],
            );
            bad |= hi | lo;
            *byte = (hi << 4) | (lo & 0x0f);
        }
        if bad & 0xf0 != 0 {
            let position = bytes
                .iter()
                .position(|b| HEX_VALUE[usize::from(*b)] == 0xff)
                .unwrap_or(0);
            return Err(DigestParseError::Character {
                found: s[position..].chars().next().unwrap_or('?'),
                position,
            });
        }
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        self.write_hex(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_upper_case() {
        let d = Digest::of_canonical("t", b"x");
        let text = d.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert!(
            matches!(
                text.to_uppercase().parse::<Digest>(),
                Err(DigestParseError::Character { .. })
            ) || text.chars().all(|c| c.is_ascii_digit())
        );
        assert_eq!("ab".parse::<Digest>(), Err(DigestParseError::Length(2)));
    }

    #[test]
    fn tag_separates_domains() {
        assert_ne!(
            Digest::of_canonical(tags::ACTION, b"{}"),
            Digest::of_canonical(tags::EVENT, b"{}")
        );
        // The 0x00 separator keeps tag and bytes apart.
        assert_ne!(
            Digest::of_canonical("ab", b"c"),
            Digest::of_canonical("a", b"bc")
        );
    }

    #[test]
    fn matches_sha256_of_tag_nul_bytes() {
        let expected: [u8; 32] = Sha256::digest(b"syndicate:action:v1\0{}").into();
        assert_eq!(
            Digest::of_canonical(tags::ACTION, b"{}").as_bytes(),
            &expected
        );
    }
}
