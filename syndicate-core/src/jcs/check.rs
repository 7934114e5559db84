//! Checking that bytes are already their own canonical form, in one pass
//! and without building anything: what a verifier needs for every stored
//! event, where [`canonicalize_with`](super::canonicalize_with) would write a
//! second copy only to compare it.
//!
//! Accepts exactly the texts `t` for which `canonicalize_with(t, limits)`
//! returns `t` itself (a property test holds the two together): valid UTF-8,
//! no whitespace, members in UTF-16 key order with no duplicates, strings
//! with only the canonical escapes, numbers in their RFC 8785 rendering,
//! within the limits.

use super::Limits;

/// Where and why bytes are not their own canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not canonical RFC 8785 bytes: expected {expected} at byte {offset}")]
pub struct NotCanonical {
    offset: usize,
    expected: &'static str,
}

impl NotCanonical {
    /// The first byte that is not as the canonical form would have it.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What the canonical form has there.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

type Result<T = ()> = std::result::Result<T, NotCanonical>;

/// One open array or object.
#[derive(Clone, Copy)]
enum Frame {
    Array,
    /// An object and the raw bytes (between the quotes) of its last key.
    Object(Option<(usize, usize)>),
}

/// Checks, in one pass and without building anything, that `bytes` are
/// exactly the canonical RFC 8785 form of a JSON text within `limits`: it
/// accepts `t` exactly when [`canonicalize_with`](super::canonicalize_with)
/// `(t, limits)` returns `t` itself.
///
/// ```
/// use syndicate_core::jcs::{Limits, check_canonical};
/// assert!(check_canonical(br#"{"a":1,"b":[true]}"#, &Limits::DEFAULT).is_ok());
/// let e = check_canonical(br#"{"b":1,"a":2}"#, &Limits::DEFAULT).unwrap_err();
/// assert_eq!(e.offset(), 7);
/// ```
///
/// # Errors
/// [`NotCanonical`] naming the first byte that differs from the canonical
/// form (or breaks JSON, UTF-8 or the limits) and what was expected there.
pub fn check_canonical(bytes: &[u8], limits: &Limits) -> Result {
    if bytes.len() > limits.max_bytes {
        return Err(NotCanonical {
            offset: limits.max_bytes,
            expected: "at most the byte limit",
        });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(NotCanonical {
            offset: e.valid_up_to(),
            expected: "valid UTF-8",
        });
    }
    Checker {
        bytes,
        pos: 0,
        stack: Vec::new(),
        max_depth: limits.max_depth,
    }
    .run()
}

struct Checker<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Frame>,
    max_depth: usize,
}

impl Checker<'_> {
    fn fail<T>(&self, expected: &'static str) -> Result<T> {
        Err(NotCanonical {
            offset: self.pos,
            expected,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn run(mut self) -> Result {
        self.value()?;
        loop {
            let Some(top) = self.stack.last().copied() else {
                return if self.pos == self.bytes.len() {
                    Ok(())
                } else {
                    self.fail("the end of the text")
                };
            };
            match (top, self.peek()) {
                (Frame::Array, Some(b',')) => {
                    self.pos += 1;
                    self.value()?;
                }
                (Frame::Array, Some(b']')) | (Frame::Object(_), Some(b'}')) => {
                    self.pos += 1;
                    self.stack.pop();
                }
                (Frame::Object(_), Some(b',')) => {
                    self.pos += 1;
                    self.member()?;
                }
                (Frame::Array, _) => return self.fail("',' or ']'"),
                (Frame::Object(_), _) => return self.fail("',' or '}'"),
            }
        }
    }

    /// A value; an array or object is opened (with its first element or
    /// member read) and left on the stack.
    fn value(&mut self) -> Result {
        match self.peek() {
            Some(b'{') => {
                self.open(Frame::Object(None))?;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    self.stack.pop();
                    Ok(())
                } else {
                    self.member()
                }
            }
            Some(b'[') => {
                self.open(Frame::Array)?;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.stack.pop();
                    Ok(())
                } else {
                    self.value()
                }
            }
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.fail("a value"),
        }
    }

    fn open(&mut self, frame: Frame) -> Result {
        if self.stack.len() >= self.max_depth {
            return self.fail("nesting within the depth limit");
        }
        self.stack.push(frame);
        self.pos += 1;
        Ok(())
    }

    /// `"key":value` of the object on top of the stack, the key after the
    /// previous one in UTF-16 order.
    fn member(&mut self) -> Result {
        if self.peek() != Some(b'"') {
            return self.fail("a key");
        }
        let key_at = self.pos;
        let key = self.string()?;
        if let Some(Frame::Object(previous)) = self.stack.last_mut() {
            if let Some((start, end)) = *previous
                && !key_after(&self.bytes[start..end], &self.bytes[key.0..key.1])
            {
                self.pos = key_at;
                return self.fail("keys in UTF-16 order, each once");
            }
            *previous = Some(key);
        }
        if self.peek() != Some(b':') {
            return self.fail("':'");
        }
        self.pos += 1;
        self.value()
    }

    fn literal(&mut self, word: &'static [u8]) -> Result {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.fail("true, false or null")
        }
    }

    /// A string in canonical form; returns the range of its content.
    fn string(&mut self) -> Result<(usize, usize)> {
        self.pos += 1;
        let start = self.pos;
        loop {
            // Jump to the next quote or backslash; what lies between must
            // hold no raw control character.
            let rest = &self.bytes[self.pos..];
            let Some(skip) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.bytes.len();
                return self.fail("'\"'");
            };
            if let Some(control) = rest[..skip].iter().position(|&b| b < 0x20) {
                self.pos += control;
                return self.fail("an escaped control character");
            }
            self.pos += skip;
            if self.bytes[self.pos] == b'"' {
                let end = self.pos;
                self.pos += 1;
                return Ok((start, end));
            }
            self.escape()?;
        }
    }

    /// One escape, in the only form the canonical writer uses.
    fn escape(&mut self) -> Result {
        match self.bytes.get(self.pos + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let hex = self.bytes.get(self.pos + 2..self.pos + 6);
                let code = hex.and_then(|h| match h {
                    [
                        b'0',
                        b'0',
                        hi @ (b'0' | b'1'),
                        lo @ (b'0'..=b'9' | b'a'..=b'f'),
                    ] => {
                        let lo = if lo.is_ascii_digit() {
                            lo - b'0'
                        } else {
                            lo - b'a' + 10
                        };
                        Some((hi - b'0') * 16 + lo)
                    }
                    _ => None,
                });
                match code {
                    // The five with a short escape are written short.
                    Some(0x08 | 0x09 | 0x0a | 0x0c | 0x0d) | None => {
                        self.fail("a canonical escape")
                    }
                    Some(_) => {
                        self.pos += 6;
                        Ok(())
                    }
                }
            }
            _ => self.fail("a canonical escape"),
        }
    }

    /// A number in its RFC 8785 rendering.
    fn number(&mut self) -> Result {
        let start = self.pos;
        let digits = |c: &mut Self| {
            let from = c.pos;
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.pos += 1;
            }
            c.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_at = self.pos;
        let int_digits = digits(self);
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_at] == b'0') {
            self.pos = int_at;
            return self.fail("a number without leading zeros");
        }
        let mut plain_integer = true;
        if self.peek() == Some(b'.') {
            plain_integer = false;
            self.pos += 1;
            if digits(self) == 0 {
                return self.fail("digits after '.'");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            plain_integer = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.fail("exponent digits");
            }
        }
        let text = &self.bytes[start..self.pos];
        // Fast path: an integer of at most 15 digits is below 2^53, exact,
        // and written as its digits; only `-0` is written otherwise.
        if plain_integer && int_digits <= 15 {
            return if text == b"-0" {
                self.pos = start;
                self.fail("0 for -0")
            } else {
                Ok(())
            };
        }
        let rendered = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map(|f| ryu_js::Buffer::new().format_finite(f).as_bytes() == text);
        if rendered == Some(true) {
            Ok(())
        } else {
            self.pos = start;
            self.fail("the RFC 8785 rendering of the number")
        }
    }
}

/// Whether key `b` sorts strictly after key `a`, both the raw content of
/// canonical strings, compared as their values' UTF-16 code units.
fn key_after(a: &[u8], b: &[u8]) -> bool {
    // Byte order is code point order, which is UTF-16 order unless a
    // character at or above U+E000 (lead byte 0xEE and up) meets one above
    // U+FFFF; an escape stands for a character below U+0020 and breaks the
    // byte comparison too.
    let simple = |s: &[u8]| !s.iter().any(|&c| c == b'\\' || c >= 0xee);
    if simple(a) && simple(b) {
        return b > a;
    }
    utf16_units(a).cmp(utf16_units(b)) == std::cmp::Ordering::Less
}

/// The UTF-16 code units of a canonical string's value, from its raw
/// content (valid UTF-8 with canonical escapes).
fn utf16_units(raw: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let text = std::str::from_utf8(raw).unwrap_or_default();
    let mut chars = text.chars();
    let mut pending: Option<u16> = None;
    std::iter::from_fn(move || {
        if let Some(unit) = pending.take() {
            return Some(unit);
        }
        let c = chars.next()?;
        let c = if c == '\\' {
            match chars.next()? {
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                other => other,
            }
        } else {
            c
        };
        let mut units = [0u16; 2];
        let encoded = c.encode_utf16(&mut units);
        if encoded.len() == 2 {
            pending = Some(encoded[1]);
        }
        Some(encoded[0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        check_canonical(text.as_bytes(), &Limits::DEFAULT).is_ok()
    }

    #[test]
    fn canonical_texts_pass_and_their_near_misses_do_not() {
        for text in [
            r#"{"a":[1,"é",true,false,null,{}],"b":-1.5,"c":1e+21,"d":"\u001f\n"}"#,
            r#"{"":0,"\u0000":1}"#,
            "[\"\u{10000}\"]",
            // U+10000 is D800 DC00 in UTF-16, before U+E000.
            "{\"\u{10000}\":1,\"\u{e000}\":2}",
            "123456789012345",
            "9007199254740992",
            "1152921504606847000",
            "0.000001",
            "1e-7",
        ] {
            assert!(ok(text), "{text}");
        }
        for text in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a" :1}"#,
            r#"["\/"]"#,
            r#"["\u0061"]"#,
            r#"["\u000a"]"#,
            r#"["\u001F"]"#,
            "[\"\u{1}\"]",
            "-0",
            "01",
            "1.0",
            "1E+21",
            "1e21",
            "9007199254740993",
            "1e400",
            "[1,]",
            "{} ",
            "{\"\u{e000}\":1,\"\u{10000}\":2}",
        ] {
            assert!(!ok(text), "{text}");
        }
        assert!(!ok(&"[".repeat(129)));
        assert!(check_canonical(&[b'"', 0xff, b'"'], &Limits::DEFAULT).is_err());
    }

    #[test]
    fn a_refusal_names_the_first_byte_that_differs_and_what_belongs_there() {
        let at = |bytes: &[u8], limits: &Limits| {
            let e = check_canonical(bytes, limits).unwrap_err();
            (e.offset(), e.expected())
        };
        let d = &Limits::DEFAULT;
        assert_eq!(
            at(br#"{"b":1,"a":2}"#, d),
            (7, "keys in UTF-16 order, each once")
        );
        assert_eq!(at(&[b'[', b'"', 0xff, b'"', b']'], d), (2, "valid UTF-8"));
        assert_eq!(at(b"[1,]", d), (3, "a value"));
        assert_eq!(at(b"[-0]", d), (1, "0 for -0"));
        assert_eq!(
            at(b"[1.50]", d),
            (1, "the RFC 8785 rendering of the number")
        );
        assert_eq!(
            at(&[b'[', b'"', b'a', 1, b'"', b']'], d),
            (3, "an escaped control character")
        );
        assert_eq!(at(br#"["\/"]"#, d), (2, "a canonical escape"));
        assert_eq!(at(b"[1] ", d), (3, "the end of the text"));
        let small = Limits {
            max_depth: 2,
            max_bytes: 5,
        };
        assert!(check_canonical(b"[1,2]", &small).is_ok());
        assert_eq!(at(b"[1,22]", &small), (5, "at most the byte limit"));
        let shallow = Limits {
            max_depth: 2,
            max_bytes: 100,
        };
        assert!(check_canonical(b"[[]]", &shallow).is_ok());
        assert_eq!(
            at(b"[[[]]]", &shallow),
            (2, "nesting within the depth limit")
        );
        let text = check_canonical(b"[01]", d).unwrap_err().to_string();
        assert!(text.contains("byte 1"), "{text}");
    }
}
