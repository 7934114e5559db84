//! A fast reader for the envelope members that integrity checks need.
//!
//! Canonical envelopes have a fixed shape: no whitespace and the eleven
//! members in RFC 8785 order. This reader walks that shape directly over the
//! bytes, borrowing strings where they have no escapes, and skips the body
//! except for its `request_id`. It refuses anything else (reordered or missing
//! members, whitespace, other types), so a reading that succeeds has the exact
//! structure the sealer writes. It never panics on arbitrary bytes.
//!
//! Before walking the header it checks that the bytes are exactly their own
//! RFC 8785 form, body included (a hash-consistent row with a non-canonical
//! or invalid body is a format violation, as in a JSONL export).

use std::borrow::Cow;

use crate::digest::Digest;

/// The envelope members the integrity checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub(crate) actor_id: Cow<'a, str>,
    pub(crate) at: Cow<'a, str>,
    pub(crate) request_id: Option<Cow<'a, str>>,
    pub(crate) chain: Cow<'a, str>,
    pub(crate) kind: Cow<'a, str>,
    pub(crate) once: Option<Cow<'a, str>>,
    pub(crate) prev: Digest,
    pub(crate) seq: u64,
    pub(crate) session: Cow<'a, str>,
    pub(crate) v: u64,
}

/// Why bytes are not a canonical envelope: what was expected where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderError {
    pub(crate) offset: usize,
    pub(crate) expected: &'static str,
}

type Result<T> = std::result::Result<T, HeaderError>;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const MAX_SKIP_DEPTH: usize = 256;

impl<'a> Reader<'a> {
    fn fail<T>(&self, expected: &'static str) -> Result<T> {
        Err(HeaderError {
            offset: self.pos,
            expected,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn literal(&mut self, text: &'static str) -> Result<()> {
        if self.bytes[self.pos.min(self.bytes.len())..].starts_with(text.as_bytes()) {
            self.pos += text.len();
            Ok(())
        } else {
            self.fail(text)
        }
    }

    /// A member name followed by `:`, e.g. `"at":`, preceded by `,` unless first.
    fn key(&mut self, first: bool, name: &'static str) -> Result<()> {
        if !first {
            self.literal(",")?;
        }
        let start = self.pos;
        self.literal("\"")?;
        self.literal(name).map_err(|_| HeaderError {
            offset: start,
            expected: name,
        })?;
        self.literal("\":")
    }

    /// The raw bytes of a string's content, and whether it has escapes.
    fn string_raw(&mut self) -> Result<(&'a [u8], bool)> {
        self.literal("\"")?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            match memchr::memchr2(b'"', b'\\', rest) {
                None => {
                    self.pos = self.bytes.len();
                    return self.fail("end of string");
                }
                Some(i) if rest[i] == b'"' => {
                    self.pos += i;
                    break;
                }
                Some(i) => {
                    escaped = true;
                    self.pos += i + 2;
                }
            }
        }
        let raw = self.bytes.get(start..self.pos).unwrap_or_default();
        self.pos += 1;
        Ok((raw, escaped))
    }

    fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos;
        let (raw, escaped) = self.string_raw()?;
        if escaped {
            let quoted = &self.bytes[start..self.pos];
            serde_json::from_slice::<String>(quoted)
                .map(Cow::Owned)
                .map_err(|_| HeaderError {
                    offset: start,
                    expected: "a valid string",
                })
        } else {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| HeaderError {
                    offset: start,
                    expected: "a UTF-8 string",
                })
        }
    }

    fn string_or_null(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn integer(&mut self) -> Result<u64> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        let canonical = !digits.is_empty() && (digits == b"0" || digits[0] != b'0');
        let value = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u64>().ok());
        match value {
            Some(v) if canonical && v <= 1 << 53 => Ok(v),
            _ => Err(HeaderError {
                offset: start,
                expected: "an integer from 0 to 2^53",
            }),
        }
    }

    fn digest(&mut self) -> Result<Digest> {
        let start = self.pos;
        let (raw, escaped) = self.string_raw()?;
        let parsed = (!escaped)
            .then(|| std::str::from_utf8(raw).ok())
            .flatten()
            .and_then(|s| s.parse().ok());
        parsed.ok_or(HeaderError {
            offset: start,
            expected: "64 lower-case hex characters",
        })
    }

    /// Skips any JSON value without building it.
    fn skip_value(&mut self) -> Result<()> {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return self.fail("a value"),
                Some(b'"') => {
                    self.string_raw()?;
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    if depth > MAX_SKIP_DEPTH {
                        return self.fail("shallower nesting");
                    }
                    self.pos += 1;
                    continue;
                }
                Some(b'}' | b']') => {
                    if depth == 0 {
                        return self.fail("a value");
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                Some(b',' | b':') if depth > 0 => {
                    self.pos += 1;
                    continue;
                }
                Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                    while matches!(
                        self.peek(),
                        Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E')
                    ) {
                        self.pos += 1;
                    }
                }
                Some(_) => return self.fail("a value"),
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// The body: an object; returns its `request_id` member when it is a string.
    fn body(&mut self) -> Result<Option<Cow<'a, str>>> {
        self.literal("{")?;
        let mut request_id = None;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(None);
        }
        loop {
            let name = self.string()?;
            self.literal(":")?;
            if name == "request_id" {
                if self.peek() == Some(b'"') {
                    request_id = Some(self.string()?);
                } else {
                    return self.fail("request_id as a string");
                }
            } else {
                self.skip_value()?;
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(request_id);
                }
                _ => return self.fail("',' or '}' in body"),
            }
        }
    }

    fn policy(&mut self) -> Result<()> {
        if self.peek() == Some(b'n') {
            return self.literal("null");
        }
        self.literal("{")?;
        self.key(true, "digest")?;
        self.digest()?;
        self.key(false, "id")?;
        self.string()?;
        self.key(false, "version")?;
        self.string()?;
        self.literal("}")
    }
}

/// Reads the header of canonical envelope bytes, after checking that the
/// bytes are exactly their own RFC 8785 form (valid UTF-8, no whitespace,
/// members in order, canonical strings and numbers, within the event
/// limits), so that any byte string is accepted here exactly when a serde
/// reader finds a canonical envelope in it.
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header<'_>> {
    if let Err(e) = crate::jcs::check_canonical(bytes, &crate::seal::EVENT_LIMITS) {
        return Err(HeaderError {
            offset: e.offset(),
            expected: e.expected(),
        });
    }
    let mut r = Reader { bytes, pos: 0 };
    r.literal("{")?;
    r.key(true, "actor")?;
    r.literal("{")?;
    r.key(true, "id")?;
    let actor_id = r.string()?;
    r.key(false, "type")?;
    let actor_type = r.string()?;
    if !matches!(actor_type.as_ref(), "human" | "agent" | "policy" | "system") {
        return r.fail("actor type human, agent, policy or system");
    }
    r.literal("}")?;
    r.key(false, "at")?;
    let at = r.string()?;
    r.key(false, "body")?;
    let request_id = r.body()?;
    r.key(false, "chain")?;
    let chain = r.string()?;
    r.key(false, "kind")?;
    let kind = r.string()?;
    r.key(false, "once")?;
    let once = r.string_or_null()?;
    r.key(false, "policy")?;
    r.policy()?;
    r.key(false, "prev")?;
    let prev = r.digest()?;
    r.key(false, "seq")?;
    let seq = r.integer()?;
    r.key(false, "session")?;
    let session = r.string()?;
    r.key(false, "v")?;
    let v = r.integer()?;
    r.literal("}")?;
    if r.pos != bytes.len() {
        return r.fail("the end of the envelope");
    }
    Ok(Header {
        actor_id,
        at,
        request_id,
        chain,
        kind,
        once,
        prev,
        seq,
        session,
        v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventDraft, EventKind};
    use crate::{ChainId, Timestamp, seal};
    use serde_json::json;

    #[test]
    fn reads_what_the_sealer_writes() {
        let draft = EventDraft::new(
            "s\"1",
            EventKind::ActionApproved,
            Actor::human("bob\u{e9}"),
            json!({"a": [1, {"request_id": 5}], "request_id": "r\"1\\", "z": "x\\\"}"}),
        )
        .with_once("k");
        let events = seal(
            &ChainId::new("c").unwrap(),
            None,
            &[draft],
            Timestamp::now(),
        )
        .unwrap();
        let h = read_header(&events[0].canonical).unwrap();
        assert_eq!(h.session, "s\"1");
        assert_eq!(h.actor_id, "bob\u{e9}");
        assert_eq!(h.request_id.as_deref(), Some("r\"1\\"));
        assert_eq!(h.once.as_deref(), Some("k"));
        assert_eq!((h.seq, h.v, h.prev), (0, 1, Digest::ZERO));
        assert_eq!(h.kind, "action.approved");
    }

    #[test]
    fn refuses_other_shapes_without_panicking() {
        let draft = EventDraft::new("s", EventKind::Annotation, Actor::human("b"), json!({}));
        let events = seal(
            &ChainId::new("c").unwrap(),
            None,
            &[draft],
            Timestamp::now(),
        )
        .unwrap();
        let good = &events[0].canonical;
        // Every truncation and every single-byte change either fails cleanly
        // or still reads (when the change stays inside a string).
        for cut in 0..good.len() {
            assert!(read_header(&good[..cut]).is_err());
        }
        for i in 0..good.len() {
            for b in [b' ', b'"', b'\\', b'{', b'}', 0xff, b'9'] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = read_header(&bad);
            }
        }
        let spaced = String::from_utf8(good.clone())
            .unwrap()
            .replacen(':', ": ", 1);
        assert!(read_header(spaced.as_bytes()).is_err());
    }

    /// The members both readers report: actor id, at, request id, chain,
    /// kind, once, seq, prev.
    type Members = (
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        u64,
        String,
    );

    /// The serde reading of the same members, for comparison.
    fn by_serde(bytes: &[u8]) -> Option<Members> {
        let env: crate::event::Envelope = serde_json::from_slice(bytes).ok()?;
        let request_id = env.request_id().map(str::to_owned);
        Some((
            env.actor.id,
            env.at.to_string(),
            request_id,
            env.chain.as_str().to_owned(),
            env.kind.as_str().to_owned(),
            env.once,
            env.seq,
            env.prev.to_string(),
        ))
    }

    fn by_header(h: &Header<'_>) -> Members {
        (
            h.actor_id.to_string(),
            h.at.to_string(),
            h.request_id.as_deref().map(str::to_owned),
            h.chain.to_string(),
            h.kind.to_string(),
            h.once.as_deref().map(str::to_owned),
            h.seq,
            h.prev.to_string(),
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Sealed envelopes with arbitrary text, then one byte changed,
        /// inserted or removed anywhere: whenever the header reader accepts
        /// the bytes (and their `at` and `kind` parse and `chain` is the one
        /// expected, which the verifier checks next), serde reads the same members from them; and whenever
        /// serde reads them as an envelope whose canonical form is exactly
        /// those bytes, the header reader accepts them with the same members.
        #[test]
        fn header_reader_agrees_with_serde(
            session in "[a-z\"\\\\\u{e9}\u{2028}\u{1f600} ]{1,12}",
            actor in "[a-zA-Z@.\"\\\\\u{e9}]{1,12}",
            request in proptest::option::of("[a-z0-9\"\\\\\u{e9}-]{1,12}"),
            once in proptest::option::of("[a-z:\"\u{e9}]{1,12}"),
            edit in 0u8..4,
            at in 0usize..4096,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut body = json!({"note": [1, {"request_id": 7}], "z": "\u{7f}"});
            if let Some(r) = &request {
                body["request_id"] = json!(r);
            }
            let mut draft = EventDraft::new(session, EventKind::Annotation, Actor::human(actor), body);
            draft.once = once;
            let events = seal(&ChainId::new("c").unwrap(), None, &[draft], Timestamp::now()).unwrap();
            let mut bytes = events[0].canonical.clone();
            let at = at % (bytes.len() + 1);
            match edit {
                0 => {}
                1 if at < bytes.len() => bytes[at] = byte,
                2 => bytes.insert(at, byte),
                3 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
            let header = read_header(&bytes);
            // The verifier checks `at` and (through the columns) `kind`
            // after the header reader; serde checks them while reading.
            if let Ok(h) = &header
                && h.at.parse::<Timestamp>().is_ok()
                && h.kind.parse::<EventKind>().is_ok()
                && h.chain == "c"
            {
                proptest::prop_assert_eq!(Some(by_header(h)), by_serde(&bytes));
            }
            let canonical = serde_json::from_slice::<crate::event::Envelope>(&bytes)
                .ok()
                .and_then(|env| crate::jcs::to_canonical_vec(&serde_json::to_value(&env).ok()?).ok());
            if canonical.as_deref() == Some(bytes.as_slice()) {
                let h = header.as_ref().map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e:?}")))?;
                proptest::prop_assert_eq!(Some(by_header(h)), by_serde(&bytes));
            }
            if edit == 0 {
                proptest::prop_assert!(header.is_ok());
            }
        }
    }
}
