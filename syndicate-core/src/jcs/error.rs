//! The error type of the strict parser and the canonical writer.

/// Why JSON text or a value could not be turned into canonical bytes.
///
/// Errors raised while parsing text carry the byte `offset` where the problem
/// starts (0-based); errors raised while writing a [`serde_json::Value`] built
/// in code carry the JSON Pointer (RFC 6901) `path` of the offending value,
/// `""` being the whole value. [`CanonError::kind`] gives a plain [`Copy`]
/// summary to match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonError {
    /// The input is longer than [`Limits::max_bytes`](super::Limits::max_bytes).
    #[error(
        "input is {size} bytes, over the limit of {limit} bytes; send a smaller document or raise the size limit"
    )]
    TooLarge {
        /// The limit in force, in bytes.
        limit: usize,
        /// The size of the input, in bytes.
        size: usize,
    },

    /// The input starts with a UTF-8 byte order mark (`EF BB BF`).
    #[error(
        "input starts with a byte order mark (U+FEFF); remove it, JSON text must start with the value"
    )]
    ByteOrderMark,

    /// The input is not valid UTF-8 (this includes overlong forms and encoded
    /// surrogates).
    #[error("invalid UTF-8 at byte {offset}; JSON text must be encoded as UTF-8")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },

    /// The text is not JSON.
    #[error(
        "syntax error at byte {offset} (line {line}, column {column}): expected {expected}, found {found}"
    )]
    Syntax {
        /// Offset of the unexpected byte (the input length at end of input).
        offset: usize,
        /// 1-based line number (lines end with LF).
        line: usize,
        /// 1-based column, counted in Unicode scalar values.
        column: usize,
        /// What the grammar allowed at this point.
        expected: &'static str,
        /// What was there instead: a quoted character, a code point or
        /// `end of input`.
        found: String,
    },

    /// A string holds a raw control character (U+0000 to U+001F).
    #[error(
        "unescaped control character U+{byte:04X} in a string at byte {offset}; write it as an escape such as \\u{byte:04x}"
    )]
    ControlCharacter {
        /// Offset of the control character.
        offset: usize,
        /// The control character.
        byte: u8,
    },

    /// A `\u` escape encodes a UTF-16 surrogate that is not part of a
    /// high-then-low pair.
    #[error(
        "lone surrogate in the \\u escape at byte {offset}; a high surrogate \\ud800-\\udbff must be followed by a low surrogate \\udc00-\\udfff"
    )]
    LoneSurrogate {
        /// Offset of the backslash of the offending escape.
        offset: usize,
    },

    /// An object has the same key twice (compared after unescaping).
    #[error(
        "duplicate key {key:?} at byte {offset} in {}; each key may appear only once",
        object_at(path)
    )]
    DuplicateKey {
        /// The repeated key, unescaped.
        key: String,
        /// JSON Pointer of the object holding the key.
        path: String,
        /// Offset of the opening quote of the second occurrence.
        offset: usize,
    },

    /// An integer written without fraction or exponent, above 2^53 in
    /// magnitude, whose text is not the RFC 8785 rendering of its nearest
    /// double.
    #[error(
        "integer {text} at byte {offset} cannot be kept exactly (RFC 8785 would print {rendering}); write it as a string or as {rendering}"
    )]
    InexactInteger {
        /// The number as written.
        text: String,
        /// What RFC 8785 prints for its nearest double.
        rendering: String,
        /// Offset of the first character of the number.
        offset: usize,
    },

    /// An integer held in a value built in code (an `i64` or `u64` above 2^53
    /// in magnitude) that a double cannot keep exactly.
    #[error(
        "integer {value} at {} cannot be kept exactly (RFC 8785 would print {rendering}); store it as a string or as {rendering}",
        value_at(path)
    )]
    InexactIntegerValue {
        /// The integer, in decimal.
        value: String,
        /// What RFC 8785 prints for its nearest double.
        rendering: String,
        /// JSON Pointer of the number.
        path: String,
    },

    /// A number is beyond the range of an IEEE 754 double (such as `1e400`).
    #[error("number {text} at byte {offset} is beyond the range of a double; write it as a string")]
    NumberOutOfRange {
        /// The number as written.
        text: String,
        /// Offset of the first character of the number.
        offset: usize,
    },

    /// A number to write is NaN or infinite, which JSON cannot represent.
    #[error(
        "number at {} is NaN or infinite, which JSON cannot represent; store it as a string or null",
        value_at(path)
    )]
    NonFiniteNumber {
        /// JSON Pointer of the number (`""` for a bare number).
        path: String,
    },

    /// Something other than whitespace follows the JSON value.
    #[error("unexpected data at byte {offset} after the JSON value; send exactly one value")]
    TrailingData {
        /// Offset of the first byte after the value that is not whitespace.
        offset: usize,
    },

    /// Arrays and objects nest deeper than
    /// [`Limits::max_depth`](super::Limits::max_depth).
    #[error(
        "arrays and objects nest deeper than {limit} levels at byte {offset}; flatten the document or raise the depth limit"
    )]
    TooDeep {
        /// The limit in force.
        limit: usize,
        /// Offset of the `[` or `{` that goes one level too deep.
        offset: usize,
    },

    /// A value built in code nests arrays and objects deeper than the limit.
    #[error(
        "arrays and objects nest deeper than {limit} levels at {}; flatten the value",
        value_at(path)
    )]
    ValueTooDeep {
        /// The limit in force.
        limit: usize,
        /// JSON Pointer of the array or object that goes one level too deep.
        path: String,
    },
}

/// The kind of a [`CanonError`], without its details.
///
/// Errors found in text and in values built in code share a kind
/// ([`CanonError::InexactInteger`] and [`CanonError::InexactIntegerValue`]
/// are both [`CanonErrorKind::InexactInteger`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CanonErrorKind {
    /// See [`CanonError::TooLarge`].
    TooLarge,
    /// See [`CanonError::ByteOrderMark`].
    ByteOrderMark,
    /// See [`CanonError::InvalidUtf8`].
    InvalidUtf8,
    /// See [`CanonError::Syntax`].
    Syntax,
    /// See [`CanonError::ControlCharacter`].
    ControlCharacter,
    /// See [`CanonError::LoneSurrogate`].
    LoneSurrogate,
    /// See [`CanonError::DuplicateKey`].
    DuplicateKey,
    /// See [`CanonError::InexactInteger`] and [`CanonError::InexactIntegerValue`].
    InexactInteger,
    /// See [`CanonError::NumberOutOfRange`].
    NumberOutOfRange,
    /// See [`CanonError::NonFiniteNumber`].
    NonFiniteNumber,
    /// See [`CanonError::TrailingData`].
    TrailingData,
    /// See [`CanonError::TooDeep`] and [`CanonError::ValueTooDeep`].
    TooDeep,
}

impl CanonError {
    /// The kind of this error.
    #[must_use]
    pub fn kind(&self) -> CanonErrorKind {
        match self {
            CanonError::TooLarge { .. } => CanonErrorKind::TooLarge,
            CanonError::ByteOrderMark => CanonErrorKind::ByteOrderMark,
            CanonError::InvalidUtf8 { .. } => CanonErrorKind::InvalidUtf8,
            CanonError::Syntax { .. } => CanonErrorKind::Syntax,
            CanonError::ControlCharacter { .. } => CanonErrorKind::ControlCharacter,
            CanonError::LoneSurrogate { .. } => CanonErrorKind::LoneSurrogate,
            CanonError::DuplicateKey { .. } => CanonErrorKind::DuplicateKey,
            CanonError::InexactInteger { .. } | CanonError::InexactIntegerValue { .. } => {
                CanonErrorKind::InexactInteger
            }
            CanonError::NumberOutOfRange { .. } => CanonErrorKind::NumberOutOfRange,
            CanonError::NonFiniteNumber { .. } => CanonErrorKind::NonFiniteNumber,
            CanonError::TrailingData { .. } => CanonErrorKind::TrailingData,
            CanonError::TooDeep { .. } | CanonError::ValueTooDeep { .. } => CanonErrorKind::TooDeep,
        }
    }

    /// The byte offset in the input where the problem starts, for errors
    /// found while parsing text (`Some(0)` for a byte order mark, `None` for
    /// [`CanonError::TooLarge`] and errors in values built in code).
    #[must_use]
    pub fn offset(&self) -> Option<usize> {
        match self {
            CanonError::InvalidUtf8 { offset }
            | CanonError::Syntax { offset, .. }
            | CanonError::ControlCharacter { offset, .. }
            | CanonError::LoneSurrogate { offset }
            | CanonError::DuplicateKey { offset, .. }
            | CanonError::InexactInteger { offset, .. }
            | CanonError::NumberOutOfRange { offset, .. }
            | CanonError::TrailingData { offset }
            | CanonError::TooDeep { offset, .. } => Some(*offset),
            CanonError::ByteOrderMark => Some(0),
            CanonError::TooLarge { .. }
            | CanonError::InexactIntegerValue { .. }
            | CanonError::NonFiniteNumber { .. }
            | CanonError::ValueTooDeep { .. } => None,
        }
    }

    /// The JSON Pointer the error refers to: the object holding a duplicate
    /// key, or the offending value in a value built in code.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        match self {
            CanonError::DuplicateKey { path, .. }
            | CanonError::InexactIntegerValue { path, .. }
            | CanonError::NonFiniteNumber { path }
            | CanonError::ValueTooDeep { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Prefixes the JSON Pointer of a writer error with one reference token
    /// (an array index or an object key) while the error travels up.
    pub(crate) fn within(mut self, token: &str) -> Self {
        if let CanonError::InexactIntegerValue { path, .. }
        | CanonError::NonFiniteNumber { path }
        | CanonError::ValueTooDeep { path, .. } = &mut self
        {
            let mut prefixed = String::with_capacity(token.len() + 1 + path.len());
            push_pointer_token(&mut prefixed, token);
            prefixed.push_str(path);
            *path = prefixed;
        }
        self
    }
}

/// Appends `/token` to a JSON Pointer, escaping `~` and `/` (RFC 6901).
pub(crate) fn push_pointer_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn object_at(path: &str) -> String {
    if path.is_empty() {
        "the top-level object".to_owned()
    } else {
        format!("the object at {path}")
    }
}

fn value_at(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        path.to_owned()
    }
}
