//! RFC 8785 JSON Canonicalization Scheme (JCS), with a strict parser.
//!
//! Every digest in syndicate is SHA-256 over the canonical bytes this module
//! writes. Canonical bytes are a function of the JSON *value*: two texts that
//! mean the same value give the same bytes, and text that has no single
//! meaning is refused with an error that says why, never silently changed.
//!
//! ```
//! let canonical = syndicate_core::jcs::canonicalize(br#"{"b":1,"a":[1.0,"\u00e9"]}"#)?;
//! assert_eq!(canonical, r#"{"a":[1,"é"],"b":1}"#.as_bytes());
//! # Ok::<(), syndicate_core::jcs::CanonError>(())
//! ```
//!
//! # The canonical bytes (RFC 8785)
//!
//! - No whitespace anywhere. UTF-8 output.
//! - Objects: members sorted by key, comparing the keys as sequences of
//!   UTF-16 code units (so `"\u{1F600}"`, stored as D83D DE00, sorts before
//!   `"\u{E000}"`); arrays keep their order.
//! - Strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A,
//!   U+000C, U+000D as `\b`, `\t`, `\n`, `\f`, `\r`; the other characters
//!   below U+0020 as `\u00xx` with lower-case hex; every other character
//!   (DEL, U+2028, non-characters, supplementary characters) as its own
//!   UTF-8 bytes. No Unicode normalization.
//! - Literals: `true`, `false`, `null`.
//! - Numbers: ECMAScript `Number.prototype.toString` of the double (see
//!   [`format_number`]): shortest round-trip digits, plain notation for
//!   magnitudes in [1e-6, 1e21), otherwise `d.ddde+N` / `d.ddde-N`; `-0` is
//!   written `0`.
//!
//! # What the parser refuses
//!
//! [`parse`] reads JSON text (RFC 8259) and refuses, with a [`CanonError`]
//! naming the byte offset:
//! - input larger than [`Limits::max_bytes`] (checked first, before reading);
//! - a leading byte order mark; invalid UTF-8 anywhere (overlong forms and
//!   encoded surrogates included);
//! - `\u` escapes that leave a surrogate unpaired (lone or reversed);
//! - duplicate keys in any object, compared after unescaping (`"a"` and
//!   `"\u0061"` are the same key); the error names the key and the JSON
//!   Pointer of the object;
//! - nesting deeper than [`Limits::max_depth`] arrays and objects;
//! - anything that is not strict JSON: raw control characters in strings,
//!   unknown escapes, leading zeros, `+1`, `.5`, `1.`, `NaN`, `Infinity`,
//!   comments, trailing commas, and anything but whitespace (space, tab, LF,
//!   CR) after the value;
//! - numbers beyond the range of a double (`1e400`, `-1e400`);
//! - inexact integers, below.
//!
//! # The number rule
//!
//! RFC 8785 represents every number as an IEEE 754 double. Most parsers,
//! serde_json's and Python's among them, read integers exactly, so a plain
//! JCS implementation would print `9007199254740993` as `9007199254740992`:
//! two different actions, as the agent and the executor understand them,
//! would share one digest. The number's *text* therefore decides:
//!
//! - **Integer text** (no fraction, no exponent) with magnitude at most
//!   2^53 = 9007199254740992: exact; written as its digits (`-0` as `0`).
//! - **Integer text above 2^53** in magnitude: accepted only if the text is
//!   already the RFC 8785 rendering of its nearest double
//!   (`1152921504606847000`, `295147905179352830000`), otherwise refused
//!   with [`CanonError::InexactInteger`] (`9007199254740993`,
//!   `1152921504606846976`, `18446744073709551615`,
//!   `10000000000000000000000`, whose rendering is `1e+22`). Large
//!   identifiers belong in strings.
//! - **Text with a fraction or exponent**: the nearest double (correctly
//!   rounded), as RFC 8785 and every mainstream parser do;
//!   `333333333.33333329` becomes `333333333.3333333`. Values that underflow
//!   become `0`; values that overflow are refused.
//!
//! So canonical bytes always re-parse under the same rules to the same
//! value, and no two accepted integer texts share a digest.
//!
//! The [`Value`] that [`parse`] returns is normalized: a number whose value is
//! an integer within ±2^53 (however it was written: `1`, `1.0`, `1e0`, `-0`)
//! is an integer (`u64`, or `i64` when negative); every other number is an
//! `f64`. Hence `parse(x) == parse(&canonicalize(x)?)`.
//!
//! Values built in code go through the same rule when written: an `i64` or
//! `u64` above 2^53 in magnitude is written only if its digits are the
//! rendering of its nearest double, else [`CanonError::InexactIntegerValue`].
//!
//! # Limits
//!
//! | limit | default | applies to |
//! |---|---|---|
//! | [`Limits::max_bytes`] | 1 MiB (1,048,576 bytes) | the input text of [`parse_with`] |
//! | [`Limits::max_depth`] | 128 nested arrays and objects | parsing, and writing ([`write_canonical`] uses the default) |
//!
//! Depth counts open arrays and objects: `[]` has depth 1, `[[]]` depth 2,
//! scalars 0. The parser does not recurse, so no depth limit can overflow
//! its stack; the writer recurses once per level, which the limit bounds.

use serde_json::Value;

mod check;
mod direct;
mod error;
mod number;
mod parse;
mod write;

pub use check::{NotCanonical, check_canonical};
pub use error::{CanonError, CanonErrorKind};
pub use number::{format_number, write_number};

/// Limits applied when parsing untrusted JSON text, and the depth limit
/// applied when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays and objects accepted (default 128).
    pub max_depth: usize,
    /// Largest input accepted, in bytes (default 1 MiB).
    pub max_bytes: usize,
}

impl Limits {
    /// The default limits: depth 128, 1 MiB.
    pub const DEFAULT: Limits = Limits {
        max_depth: 128,
        max_bytes: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Parses JSON text strictly under the default [`Limits`].
///
/// See the [module documentation](self) for what is refused and how numbers
/// are read.
///
/// # Errors
/// Returns a [`CanonError`] naming the problem and where it is.
pub fn parse(bytes: &[u8]) -> Result<Value, CanonError> {
    parse::parse(bytes, &Limits::DEFAULT)
}

/// Parses JSON text strictly under the given limits.
///
/// # Errors
/// Returns a [`CanonError`] naming the problem and where it is;
/// [`CanonError::TooLarge`] and [`CanonError::TooDeep`] for the limits.
pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Value, CanonError> {
    parse::parse(bytes, limits)
}

/// Returns the RFC 8785 canonical bytes of a value.
///
/// # Errors
/// [`CanonError::InexactIntegerValue`] for an integer above 2^53 that a
/// double cannot keep, [`CanonError::NonFiniteNumber`] and
/// [`CanonError::ValueTooDeep`] (more than 128 nested arrays and objects).
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, CanonError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Appends the RFC 8785 canonical bytes of a value to `out`, so a caller can
/// reuse one buffer.
///
/// # Errors
/// As [`to_canonical_vec`]; on error `out` is left as it was.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonError> {
    write::write(value, Limits::DEFAULT.max_depth, out)
}

/// Appends the RFC 8785 canonical bytes of a value to `out`, nesting at most
/// `limits.max_depth` arrays and objects (`limits.max_bytes` is not used).
///
/// # Errors
/// As [`to_canonical_vec`]; on error `out` is left as it was.
pub fn write_canonical_with(
    value: &Value,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), CanonError> {
    write::write(value, limits.max_depth, out)
}

/// Appends a string in its RFC 8785 form, quotes included. Every string has
/// one, so this cannot fail.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    write::write_string(s, out);
}

/// Parses JSON text strictly and returns its canonical bytes.
///
/// # Errors
/// Returns a [`CanonError`] naming the problem and where it is.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonError> {
    canonicalize_with(bytes, &Limits::DEFAULT)
}

/// Parses JSON text strictly under the given limits and returns its
/// canonical bytes.
///
/// # Errors
/// Returns a [`CanonError`] naming the problem and where it is.
pub fn canonicalize_with(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, CanonError> {
    direct::canonicalize(bytes, limits)
}
