//! The strict parser: JSON text (RFC 8259) to [`Value`], refusing everything
//! that has no single canonical form.
//!
//! The parser is iterative (an explicit stack of open arrays and objects), so
//! no input can overflow the call stack whatever the depth limit.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::error::push_pointer_token;
use super::number::{MAX_EXACT_INTEGER, check_big_integer};
use super::{CanonError, Limits};

/// Bytes that end the fast scan inside a string: the quote, the backslash and
/// the control characters U+0000 to U+001F.
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// An array or object that is open while its members are parsed.
enum Frame {
    /// Elements parsed so far; the element being parsed has index `len()`.
    Array(Vec<Value>),
    /// Members parsed so far and the key of the member being parsed.
    Object {
        map: Map<String, Value>,
        key: String,
    },
}

/// Parses `bytes` under `limits`. See the module documentation for the rules.
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, CanonError> {
    parser(bytes, limits)?.document()
}

/// Checks the input-wide rules (size, byte order mark, UTF-8) and returns a
/// parser at the start of `bytes`.
pub(super) fn parser<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Parser<'a>, CanonError> {
    if bytes.len() > limits.max_bytes {
        return Err(CanonError::TooLarge {
            limit: limits.max_bytes,
            size: bytes.len(),
        });
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(CanonError::ByteOrderMark);
    }
    // Checking the whole input once lets every string be sliced out of it
    // without checking again, and reports invalid bytes anywhere (inside or
    // outside strings) as what they are.
    let text = std::str::from_utf8(bytes).map_err(|e| CanonError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(Parser {
        text,
        bytes,
        pos: 0,
        max_depth: limits.max_depth,
    })
}

/// The lexer both the [`Value`] parser and the direct canonicalizer use: one
/// set of rules for strings, escapes, numbers and literals.
pub(super) struct Parser<'a> {
    text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn document(mut self) -> Result<Value, CanonError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_whitespace();
            let mut value = match self.peek() {
                Some(b'{') => {
                    self.open(stack.len())?;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Map::new())
                    } else {
                        // The first key of an object cannot be a duplicate.
                        let (key, _) = self.key("a string key or '}'")?;
                        stack.push(Frame::Object {
                            map: Map::new(),
                            key: key.into_owned(),
                        });
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.open(stack.len())?;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'"') => Value::String(self.string()?.into_owned()),
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true", "'true'", Value::Bool(true))?,
                Some(b'f') => self.literal(b"false", "'false'", Value::Bool(false))?,
                Some(b'n') => self.literal(b"null", "'null'", Value::Null)?,
                other => return Err(self.syntax(self.pos, expected_value(other))),
            };

            // A value is complete: hand it to the innermost open container,
            // closing containers for as long as their closing bracket follows.
            loop {
                match stack.last_mut() {
                    None => {
                        self.skip_whitespace();
                        if self.pos < self.bytes.len() {
                            return Err(CanonError::TrailingData { offset: self.pos });
                        }
                        return Ok(value);
                    }
                    Some(Frame::Array(items)) => {
                        items.push(value);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::Array(items)) = stack.pop() else {
                                    unreachable!("the innermost frame is an array")
                                };
                                value = Value::Array(items);
                            }
                            _ => return Err(self.syntax(self.pos, "',' or ']'")),
                        }
                    }
                    Some(Frame::Object { map, key }) => {
                        map.insert(std::mem::take(key), value);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_whitespace();
                                let (next, offset) = self.key("a string key")?;
                                if map.contains_key(next.as_ref()) {
                                    let depth = stack.len() - 1;
                                    return Err(CanonError::DuplicateKey {
                                        key: next.into_owned(),
                                        path: pointer(&stack[..depth]),
                                        offset,
                                    });
                                }
                                *key = next.into_owned();
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Object { map, .. }) = stack.pop() else {
                                    unreachable!("the innermost frame is an object")
                                };
                                value = Value::Object(map);
                            }
                            _ => return Err(self.syntax(self.pos, "',' or '}'")),
                        }
                    }
                }
            }
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips JSON whitespace: space, tab, line feed, carriage return.
    pub(super) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Steps over `[` or `{` after checking that `depth` open containers
    /// leave room for one more.
    pub(super) fn open(&mut self, depth: usize) -> Result<(), CanonError> {
        if depth >= self.max_depth {
            return Err(CanonError::TooDeep {
                limit: self.max_depth,
                offset: self.pos,
            });
        }
        self.pos += 1;
        Ok(())
    }

    /// Parses `"key" :` and returns the unescaped key and the offset of its
    /// opening quote.
    pub(super) fn key(
        &mut self,
        expected: &'static str,
    ) -> Result<(Cow<'a, str>, usize), CanonError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax(self.pos, expected));
        }
        let offset = self.pos;
        let key = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.syntax(self.pos, "':' after the key"));
        }
        self.pos += 1;
        Ok((key, offset))
    }

    pub(super) fn literal<T>(
        &mut self,
        word: &'static [u8],
        expected: &'static str,
        value: T,
    ) -> Result<T, CanonError> {
        for (i, &expected_byte) in word.iter().enumerate() {
            if self.bytes.get(self.pos + i) != Some(&expected_byte) {
                return Err(self.syntax(self.pos + i, expected));
            }
        }
        self.pos += word.len();
        Ok(value)
    }

    /// Parses a string; `self.pos` is at its opening quote.
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>, CanonError> {
        let bytes = self.bytes;
        let start = self.pos + 1;
        let mut i = start;
        while i < bytes.len() && !STRING_STOP[usize::from(bytes[i])] {
            i += 1;
        }
        if bytes.get(i) == Some(&b'"') {
            // No escapes: one copy out of the (already validated) input.
            self.pos = i + 1;
            return Ok(Cow::Borrowed(&self.text[start..i]));
        }
        let mut out = String::with_capacity(i - start + 16);
        let mut run = start;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(self.syntax(bytes.len(), "'\"' to close the string"));
                }
                Some(b'"') => {
                    out.push_str(&self.text[run..i]);
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    out.push_str(&self.text[run..i]);
                    i = self.escape(i, &mut out)?;
                    run = i;
                }
                Some(&byte) => {
                    return Err(CanonError::ControlCharacter { offset: i, byte });
                }
            }
            while i < bytes.len() && !STRING_STOP[usize::from(bytes[i])] {
                i += 1;
            }
        }
    }

    /// Decodes the escape whose backslash is at `at` into `out`; returns the
    /// offset just after it.
    fn escape(&self, at: usize, out: &mut String) -> Result<usize, CanonError> {
        let decoded = match self.bytes.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4(at + 2)?;
                let (code, end) = match unit {
                    0xD800..=0xDBFF => {
                        let low = if self.bytes.get(at + 6) == Some(&b'\\')
                            && self.bytes.get(at + 7) == Some(&b'u')
                        {
                            self.hex4(at + 8)?
                        } else {
                            return Err(CanonError::LoneSurrogate { offset: at });
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(CanonError::LoneSurrogate { offset: at });
                        }
                        (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), at + 12)
                    }
                    0xDC00..=0xDFFF => return Err(CanonError::LoneSurrogate { offset: at }),
                    _ => (unit, at + 6),
                };
                // Surrogates were handled above, so this is a scalar value.
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                return Ok(end);
            }
            _ => {
                return Err(self.syntax(
                    at + 1,
                    "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u followed by four hex digits)",
                ));
            }
        };
        out.push(decoded);
        Ok(at + 2)
    }

    /// Reads four hexadecimal digits at `at`.
    fn hex4(&self, at: usize) -> Result<u32, CanonError> {
        let mut unit = 0;
        for i in at..at + 4 {
            let digit = match self.bytes.get(i) {
                Some(&b) => (b as char).to_digit(16),
                None => None,
            };
            match digit {
                Some(d) => unit = unit * 16 + d,
                None => return Err(self.syntax(i, "four hex digits after \\u")),
            }
        }
        Ok(unit)
    }

    /// Parses a number; `self.pos` is at its `-` or first digit.
    pub(super) fn number(&mut self) -> Result<Value, CanonError> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut i = start;
        let negative = bytes[i] == b'-';
        if negative {
            i += 1;
        }
        let int_start = i;
        match bytes.get(i) {
            Some(b'0') => {
                i += 1;
                if let Some(b'0'..=b'9') = bytes.get(i) {
                    return Err(
                        self.syntax(i, "'.', 'e' or the end of the number (no leading zeros)")
                    );
                }
            }
            Some(b'1'..=b'9') => {
                i += 1;
                i = skip_digits(bytes, i);
            }
            Some(b'I') => {
                return Err(self.syntax(i, "a digit after '-' (Infinity is not a JSON number)"));
            }
            _ => return Err(self.syntax(i, "a digit after '-'")),
        }
        let int_end = i;
        let mut integer = true;
        if bytes.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            let digits = i;
            i = skip_digits(bytes, i);
            if i == digits {
                return Err(self.syntax(i, "a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            integer = false;
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let digits = i;
            i = skip_digits(bytes, i);
            if i == digits {
                return Err(self.syntax(i, "a digit in the exponent"));
            }
        }
        self.pos = i;
        let text = &self.text[start..i];

        if integer {
            // Integer text: exact up to 2^53 (16 digits always fit in a u64).
            let digits = &bytes[int_start..int_end];
            if digits.len() <= 16 {
                let magnitude = digits
                    .iter()
                    .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                if magnitude <= MAX_EXACT_INTEGER {
                    return Ok(integer_value(negative, magnitude));
                }
            }
            let nearest = self.nearest_double(text, start)?;
            return match check_big_integer(text, nearest) {
                // Above 2^53, so kept as the double it names.
                Ok(()) => Ok(double_value(nearest)),
                Err(rendering) => Err(CanonError::InexactInteger {
                    text: text.to_owned(),
                    rendering,
                    offset: start,
                }),
            };
        }
        Ok(double_value(self.nearest_double(text, start)?))
    }

    /// The nearest double to a number's text (Rust's `f64::from_str` is
    /// correctly rounded); refuses text beyond the range of a double.
    fn nearest_double(&self, text: &str, offset: usize) -> Result<f64, CanonError> {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(f),
            Ok(_) => Err(CanonError::NumberOutOfRange {
                text: text.to_owned(),
                offset,
            }),
            // Unreachable: the text follows the JSON number grammar.
            Err(_) => Err(self.syntax(offset, "a number")),
        }
    }

    pub(super) fn syntax(&self, offset: usize, expected: &'static str) -> CanonError {
        let offset = offset.min(self.bytes.len());
        let before = &self.bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(offset - line_start, |s| s.chars().count())
            + 1;
        let found = if offset >= self.bytes.len() {
            "end of input".to_owned()
        } else {
            match self.text.get(offset..).and_then(|s| s.chars().next()) {
                Some(c) if c.is_control() || c.is_whitespace() => {
                    format!("U+{:04X}", u32::from(c))
                }
                Some(c) => format!("'{c}'"),
                None => format!("byte 0x{:02x}", self.bytes[offset]),
            }
        };
        CanonError::Syntax {
            offset,
            line,
            column,
            expected,
            found,
        }
    }
}

fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = bytes.get(i) {
        i += 1;
    }
    i
}

/// What to say when a value was expected and `found` is there instead.
pub(super) fn expected_value(found: Option<u8>) -> &'static str {
    match found {
        Some(b'N' | b'I') => "a JSON value (NaN and Infinity are not JSON numbers)",
        Some(b'+') => "a JSON value (a number has no leading '+')",
        Some(b'.') => "a JSON value (a number needs a digit before '.')",
        Some(b']' | b'}') => "a JSON value (no trailing commas)",
        _ => "a JSON value",
    }
}

/// An integer Value: `-0` becomes `0`.
fn integer_value(negative: bool, magnitude: u64) -> Value {
    if negative && magnitude != 0 {
        // magnitude <= 2^53, so the negation fits.
        Value::Number(Number::from(-(magnitude as i64)))
    } else {
        Value::Number(Number::from(magnitude))
    }
}

/// A double Value, normalized: an integral double within ±2^53 (including
/// -0.0) is stored as an integer, so every number has one representation
/// and `parse(canonicalize(x)) == parse(x)`.
fn double_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= MAX_EXACT_INTEGER as f64 {
        // Integral and within ±2^53: the conversion is exact.
        integer_value(f < 0.0, f.abs() as u64)
    } else {
        // Finite here, so from_f64 always succeeds.
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// JSON Pointer of the value that the open containers `frames` lead to:
/// each array adds the index of the element being parsed, each object the
/// key of the member being parsed.
fn pointer(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Array(items) => push_pointer_token(&mut path, &items.len().to_string()),
            Frame::Object { key, .. } => push_pointer_token(&mut path, key),
        }
    }
    path
}
