//! Properties of canonicalization that hold for every JSON value.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value};
use syndicate_core::jcs;

// ---- strategies ------------------------------------------------------------

/// Characters that stress escaping and key order: ASCII, controls, the
/// characters with short escapes, two-byte UTF-8, U+E000-U+FFFF and
/// supplementary characters (whose UTF-16 order differs from code point
/// order), and anything else.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'e'),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => prop_oneof![Just('"'), Just('\\'), Just('/'), Just('\u{7f}'), Just('\u{2028}')],
        1 => proptest::char::range('\u{80}', '\u{7ff}'),
        2 => proptest::char::range('\u{e000}', '\u{ffff}'),
        2 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        1 => any::<char>(),
    ]
}

fn any_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any_char(), 0..max).prop_map(String::from_iter)
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

fn any_number() -> impl Strategy<Value = Value> {
    const MAX: i64 = 1 << 53;
    prop_oneof![
        (-3i64..=3).prop_map(Value::from),
        (-MAX..=MAX).prop_map(Value::from),
        prop_oneof![Just(MAX), Just(-MAX)].prop_map(Value::from),
        finite_f64().prop_map(f64_value),
        // Integral doubles, above 2^53 too.
        (-1e25f64..1e25).prop_map(|f| f64_value(f.trunc())),
    ]
}

fn f64_value(f: f64) -> Value {
    Value::Number(Number::from_f64(f).unwrap())
}

fn leaf(with_numbers: bool) -> BoxedStrategy<Value> {
    let scalars = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_string(8).prop_map(Value::String),
    ];
    if with_numbers {
        prop_oneof![2 => scalars, 1 => any_number()].boxed()
    } else {
        scalars.boxed()
    }
}

/// Arbitrary JSON values of bounded depth and size.
fn any_value_with(with_numbers: bool) -> impl Strategy<Value = Value> {
    leaf(with_numbers).prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any_string(4), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn any_value() -> impl Strategy<Value = Value> {
    any_value_with(true)
}

// ---- a non-canonical writer ---------------------------------------------------

/// A small deterministic generator, so a failing case shrinks to a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writes `value` as valid but non-canonical JSON text: members in a
/// shuffled order, random whitespace, random escapes, numbers spelled
/// differently.
fn write_loose(value: &Value, rng: &mut Rng, out: &mut String) {
    space(rng, out);
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_loose_number(n, rng, out),
        Value::String(s) => write_loose_string(s, rng, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_loose(item, rng, out);
            }
            space(rng, out);
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i + 1));
            }
            out.push('{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                write_loose_string(key, rng, out);
                space(rng, out);
                out.push(':');
                write_loose(item, rng, out);
            }
            space(rng, out);
            out.push('}');
        }
    }
    space(rng, out);
}

fn space(rng: &mut Rng, out: &mut String) {
    for _ in 0..rng.below(4).saturating_sub(2) {
        out.push([' ', '\t', '\n', '\r'][rng.below(4)]);
    }
}

fn write_loose_number(n: &Number, rng: &mut Rng, out: &mut String) {
    if let Some(i) = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)) {
        match rng.below(4) {
            0 => out.push_str(&format!("{i}.0")),
            1 => out.push_str(&format!("{i}e0")),
            2 if i == 0 => out.push_str("-0.0E+3"),
            _ => out.push_str(&i.to_string()),
        }
    } else {
        let f = n.as_f64().unwrap();
        match rng.below(3) {
            0 => out.push_str(&format!("{f:e}")),
            1 => out.push_str(&format!("{f:E}")),
            _ => out.push_str(&jcs::format_number(f).unwrap()),
        }
    }
}

fn write_loose_string(s: &str, rng: &mut Rng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\t' => Some("\\t"),
            '/' => Some("\\/"),
            _ => None,
        };
        let must_escape = (c as u32) < 0x20 || c == '"' || c == '\\';
        match rng.below(3) {
            0 if !must_escape => out.push(c),
            1 if short.is_some() => out.push_str(short.unwrap_or_default()),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if rng.below(2) == 0 {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
        }
    }
    out.push('"');
}

// ---- a by-the-spec reference writer ---------------------------------------------

/// RFC 8785 written as plainly as possible: always sort by UTF-16 code units,
/// escape character by character.
fn reference(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => out.push_str(&u.to_string()),
            (None, Some(i)) => out.push_str(&i.to_string()),
            _ => out.push_str(&jcs::format_number(n.as_f64().unwrap()).unwrap()),
        },
        Value::String(s) => reference_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                reference(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| k.encode_utf16().collect::<Vec<u16>>());
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                reference_string(key, out);
                out.push(':');
                reference(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn reference_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---- helpers -----------------------------------------------------------------

fn canonical(value: &Value) -> Vec<u8> {
    jcs::to_canonical_vec(value).unwrap()
}

/// JSON Pointers of every leaf (scalar, empty array, empty object).
fn leaves(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                leaves(item, format!("{path}/{i}"), out);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                leaves(item, format!("{path}/{token}"), out);
            }
        }
        _ => out.push(path),
    }
}

/// A value different from `v` (as JSON, not only as a Rust value).
fn changed(v: &Value) -> Value {
    match v {
        Value::Null => Value::Bool(false),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) if n.as_f64() == Some(0.5) => f64_value(0.25),
        Value::Number(_) => f64_value(0.5),
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Array(_) => Value::Array(vec![Value::Null]),
        Value::Object(_) => Value::Null,
    }
}

/// Equality as JSON: numbers compare by value.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

// ---- examples ------------------------------------------------------------------

#[test]
fn parse_normalizes_numbers_to_one_representation() {
    // Integral values within ±2^53 become integers however they are written;
    // everything else is a double.
    let parsed =
        jcs::parse(b"[1,1.0,1e0,10E-1,-0,-0.0,4.5e15,-2.0,1.5,1e300,1152921504606847000]").unwrap();
    let expected = serde_json::json!([
        1,
        1,
        1,
        1,
        0,
        0,
        4_500_000_000_000_000u64,
        -2,
        1.5,
        1e300,
        1_152_921_504_606_847_000f64
    ]);
    assert_eq!(parsed, expected);
    assert!(parsed[5].is_u64());
    assert!(parsed[7].is_i64());
    assert!(parsed[10].is_f64());
}

// ---- properties ----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn canonicalization_is_idempotent(value in any_value()) {
        let bytes = canonical(&value);
        prop_assert_eq!(jcs::canonicalize(&bytes).unwrap(), bytes);
    }

    #[test]
    fn parsed_canonical_bytes_round_trip(value in any_value()) {
        let bytes = canonical(&value);
        let parsed = jcs::parse(&bytes).unwrap();
        prop_assert!(same_json(&parsed, &value));
        prop_assert_eq!(canonical(&parsed), bytes.clone());
        // A value that came from the parser comes back identical.
        prop_assert_eq!(jcs::parse(&canonical(&parsed)).unwrap(), parsed);
    }

    #[test]
    fn member_order_whitespace_escapes_and_number_spelling_do_not_matter(
        value in any_value(),
        seed in 1u64..,
    ) {
        let mut text = String::new();
        write_loose(&value, &mut Rng(seed), &mut text);
        let bytes = canonical(&value);
        let got = jcs::canonicalize(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(bytes.clone()).unwrap());
        // Parsing normalizes: the loose text and the canonical bytes give one Value.
        prop_assert_eq!(jcs::parse(text.as_bytes()).unwrap(), jcs::parse(&bytes).unwrap());
    }

    #[test]
    fn changing_any_leaf_changes_the_bytes(value in any_value(), pick in any::<Index>()) {
        let value = jcs::parse(&canonical(&value)).unwrap();
        let mut paths = Vec::new();
        leaves(&value, String::new(), &mut paths);
        let path = pick.get(&paths);
        let mut other = value.clone();
        let target = other.pointer_mut(path).unwrap();
        *target = changed(target);
        prop_assert_ne!(canonical(&other), canonical(&value), "changed {}", path);
    }

    #[test]
    fn matches_a_by_the_spec_reference_writer(value in any_value()) {
        let value = jcs::parse(&canonical(&value)).unwrap();
        let mut expected = String::new();
        reference(&value, &mut expected);
        prop_assert_eq!(String::from_utf8(canonical(&value)).unwrap(), expected);
    }

    #[test]
    fn serde_json_reads_our_output_as_the_same_value(value in any_value_with(false)) {
        let bytes = canonical(&value);
        let read: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(read, value);
    }

    #[test]
    fn serde_json_reads_our_numbers_as_the_same_doubles(value in any_value()) {
        let bytes = canonical(&value);
        let read: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert!(same_json(&read, &value));
    }

    #[test]
    fn write_canonical_appends_what_to_canonical_vec_returns(value in any_value()) {
        let mut out = b"head".to_vec();
        jcs::write_canonical(&value, &mut out).unwrap();
        prop_assert_eq!(&out[..4], b"head");
        prop_assert_eq!(&out[4..], &canonical(&value)[..]);
    }

    #[test]
    fn parser_never_panics_and_accepts_only_what_serde_json_accepts(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'),
                Just(b','), Just(b'\\'), Just(b'u'), Just(b'd'), Just(b'8'), Just(b'0'),
                Just(b'1'), Just(b'-'), Just(b'e'), Just(b'.'), Just(b' '), Just(b'a'),
                Just(0xc3), Just(0xa9), Just(0xff), Just(0x01),
            ],
            0..24,
        )
    ) {
        if let Ok(value) = jcs::parse(&bytes) {
            let loose: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{bytes:?}: {e}")))?;
            prop_assert!(same_json(&value, &loose));
        }
    }

    /// `canonicalize` takes a direct path (no `Value`); it must agree with
    /// parse + write on every input, accepted or refused, error included.
    #[test]
    fn canonicalize_agrees_with_parse_then_write_on_any_bytes(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'),
                Just(b','), Just(b'\\'), Just(b'u'), Just(b'd'), Just(b'8'), Just(b'0'),
                Just(b'1'), Just(b'-'), Just(b'e'), Just(b'.'), Just(b' '), Just(b'a'),
                Just(0xc3), Just(0xa9), Just(0xff), Just(0x01), Just(0xee), Just(0xf0),
            ],
            0..32,
        )
    ) {
        let direct = jcs::canonicalize(&bytes);
        let via_value = jcs::parse(&bytes).and_then(|v| jcs::to_canonical_vec(&v));
        prop_assert_eq!(direct, via_value);
    }

    #[test]
    fn canonicalize_agrees_with_parse_then_write_on_loose_text(
        value in any_value(),
        seed in 1u64..,
        duplicate in any::<bool>(),
    ) {
        let mut text = String::new();
        write_loose(&value, &mut Rng(seed), &mut text);
        // Repeat the first member of the first object, if there is one.
        if let Some(open) = text.find("{\"").filter(|_| duplicate)
            && let Some(colon) = text[open..].find("\":")
        {
            let key = text[open + 1..open + colon + 1].to_owned();
            text.insert_str(open + 1, &format!("{key}:null,"));
        }
        let direct = jcs::canonicalize(text.as_bytes());
        let via_value = jcs::parse(text.as_bytes()).and_then(|v| jcs::to_canonical_vec(&v));
        prop_assert_eq!(direct, via_value, "{}", text);
    }
}

/// One byte of `bytes` replaced, inserted or removed, from an alphabet that
/// reaches every decision of the canonical form.
fn mutated(bytes: &[u8], at: usize, op: u8, with: u8) -> Vec<u8> {
    const ALPHABET: &[u8] = b"[]{}\":,\\udf0e1-.+E aA9\x01\xc3\xa9\xee\xf0";
    let mut out = bytes.to_vec();
    let at = at % (out.len() + 1);
    let b = ALPHABET[usize::from(with) % ALPHABET.len()];
    match op % 3 {
        0 if at < out.len() => out[at] = b,
        1 if at < out.len() => {
            out.remove(at);
        }
        _ => out.insert(at, b),
    }
    out
}

fn is_own_canonical_form(bytes: &[u8]) -> bool {
    jcs::canonicalize(bytes).is_ok_and(|c| c == bytes)
}

/// Writes `value` canonically except at one decision, the `target`-th: a
/// member order swapped or a member repeated, one character escaped in
/// another form, one number spelled otherwise.
fn write_near(value: &Value, target: usize, seen: &mut usize, rng: &mut Rng, out: &mut String) {
    let mut deviate = || {
        *seen += 1;
        *seen == target
    };
    match value {
        Value::Number(n) if deviate() => write_loose_number(n, rng, out),
        Value::String(s) => write_near_string(s, target, seen, rng, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_near(item, target, seen, rng, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            if deviate() && !members.is_empty() {
                if members.len() > 1 && rng.below(2) == 0 {
                    let i = rng.below(members.len() - 1);
                    members.swap(i, i + 1);
                } else {
                    let i = rng.below(members.len());
                    members.insert(i, members[i]);
                }
            }
            out.push('{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_near_string(key, target, seen, rng, out);
                out.push(':');
                write_near(item, target, seen, rng, out);
            }
            out.push('}');
        }
        other => out.push_str(std::str::from_utf8(&canonical(other)).unwrap()),
    }
}

fn write_near_string(s: &str, target: usize, seen: &mut usize, rng: &mut Rng, out: &mut String) {
    let mut canonical_form = String::new();
    out.push('"');
    for c in s.chars() {
        *seen += 1;
        if *seen == target {
            let mut units = [0u16; 2];
            match rng.below(3) {
                0 if c == '/' => out.push_str("\\/"),
                0 | 1 => {
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                _ => {
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            continue;
        }
        canonical_form.clear();
        reference_string(&c.to_string(), &mut canonical_form);
        out.push_str(&canonical_form[1..canonical_form.len() - 1]);
    }
    out.push('"');
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The one-pass check accepts exactly the texts that canonicalize to
    /// themselves: canonical bytes, and every one-byte mutation of them.
    #[test]
    fn check_canonical_agrees_with_canonicalize_on_mutated_canonical_bytes(
        value in any_value(),
        at in any::<usize>(),
        op in any::<u8>(),
        with in any::<u8>(),
    ) {
        let bytes = canonical(&value);
        prop_assert!(jcs::check_canonical(&bytes, &jcs::Limits::DEFAULT).is_ok());
        let changed = mutated(&bytes, at, op, with);
        prop_assert_eq!(
            jcs::check_canonical(&changed, &jcs::Limits::DEFAULT).is_ok(),
            is_own_canonical_form(&changed),
            "{:?}",
            String::from_utf8_lossy(&changed)
        );
    }

    #[test]
    fn check_canonical_agrees_with_canonicalize_on_nearly_canonical_text(
        value in any_value(),
        target in 1usize..64,
        seed in 1u64..,
    ) {
        let mut text = String::new();
        write_near(&value, target, &mut 0, &mut Rng(seed), &mut text);
        prop_assert_eq!(
            jcs::check_canonical(text.as_bytes(), &jcs::Limits::DEFAULT).is_ok(),
            is_own_canonical_form(text.as_bytes()),
            "{}",
            text
        );
    }

    #[test]
    fn check_canonical_agrees_with_canonicalize_on_loose_text(
        value in any_value(),
        seed in 1u64..,
    ) {
        let mut text = String::new();
        write_loose(&value, &mut Rng(seed), &mut text);
        prop_assert_eq!(
            jcs::check_canonical(text.as_bytes(), &jcs::Limits::DEFAULT).is_ok(),
            is_own_canonical_form(text.as_bytes()),
            "{}",
            text
        );
    }

    #[test]
    fn check_canonical_agrees_with_canonicalize_on_any_bytes(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'),
                Just(b','), Just(b'\\'), Just(b'u'), Just(b'0'), Just(b'1'), Just(b'-'),
                Just(b'e'), Just(b'.'), Just(b'a'), Just(b'b'), Just(0xc3), Just(0xa9),
                Just(0xff), Just(0x01), Just(0xee), Just(0xf0),
            ],
            0..24,
        )
    ) {
        prop_assert_eq!(
            jcs::check_canonical(&bytes, &jcs::Limits::DEFAULT).is_ok(),
            is_own_canonical_form(&bytes)
        );
    }
}

/// Every escape a string can hold, short or `\u` with any four hex digits
/// of the first 0x100 code points in either case, alone and as a key: the
/// check agrees with canonicalize on each.
#[test]
fn check_canonical_agrees_with_canonicalize_on_every_escape() {
    let mut escapes: Vec<String> = (0x20u8..0x7f).map(|b| format!("\\{}", b as char)).collect();
    for code in 0u32..0x100 {
        escapes.push(format!("\\u{code:04x}"));
        escapes.push(format!("\\u{code:04X}"));
    }
    for escape in &escapes {
        for text in [format!("[\"a{escape}\"]"), format!("{{\"{escape}\":0}}")] {
            assert_eq!(
                jcs::check_canonical(text.as_bytes(), &jcs::Limits::DEFAULT).is_ok(),
                is_own_canonical_form(text.as_bytes()),
                "{text}"
            );
        }
    }
}
