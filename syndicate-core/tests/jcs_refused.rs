//! Inputs that have no single canonical form are refused, with the right kind
//! of error and the right location.

use serde_json::json;
use syndicate_core::jcs::{self, CanonError, CanonErrorKind, Limits};

fn refuse(input: &[u8]) -> CanonError {
    match jcs::parse(input) {
        Ok(v) => panic!("accepted {:?} as {v}", String::from_utf8_lossy(input)),
        Err(e) => {
            // canonicalize goes through the same parser.
            assert_eq!(jcs::canonicalize(input).unwrap_err(), e);
            e
        }
    }
}

fn assert_syntax_at(input: &[u8], offset: usize) -> CanonError {
    let e = refuse(input);
    assert_eq!(e.kind(), CanonErrorKind::Syntax, "{e}");
    assert_eq!(e.offset(), Some(offset), "{e}");
    e
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

// ---- duplicate keys ------------------------------------------------------

#[test]
fn rejects_duplicate_key_at_top_level() {
    let e = refuse(br#"{"a":1,"a":2}"#);
    assert_eq!(
        e,
        CanonError::DuplicateKey {
            key: "a".into(),
            path: String::new(),
            offset: 7
        }
    );
    assert_eq!(
        e.to_string(),
        "duplicate key \"a\" at byte 7 in the top-level object; each key may appear only once"
    );
}

#[test]
fn rejects_duplicate_key_in_nested_object_with_its_pointer() {
    let e = refuse(br#"{"x":[0,{"k/~":1,"k/~":1}]}"#);
    assert_eq!(
        e,
        CanonError::DuplicateKey {
            key: "k/~".into(),
            path: "/x/1".into(),
            offset: 17
        }
    );
    let e = refuse(br#"{"a":{"b":{"c":1,"d":2,"c":3}}}"#);
    assert_eq!(e.path(), Some("/a/b"));
    assert_eq!(e.offset(), Some(23));
    // The key of the object itself is escaped in the pointer (RFC 6901).
    let e = refuse(br#"{"m/n~":{"c":1,"c":3}}"#);
    assert_eq!(e.path(), Some("/m~1n~0"));
}

#[test]
fn rejects_duplicate_key_after_unescaping() {
    let e = refuse(br#"{"a":1,"\u0061":2}"#);
    assert_eq!(e.kind(), CanonErrorKind::DuplicateKey);
    assert_eq!(e.offset(), Some(7));
    assert!(matches!(e, CanonError::DuplicateKey { ref key, .. } if key == "a"));
    // Surrogate pair and literal character are the same key too.
    let e = refuse("{\"\u{1F600}\":1,\"\\ud83d\\ude00\":2}".as_bytes());
    assert!(matches!(e, CanonError::DuplicateKey { ref key, .. } if key == "\u{1F600}"));
}

#[test]
fn accepts_keys_that_differ_only_after_unescaping_distinctly() {
    // "A\u030a" and "\u00c5" look alike but are different keys: no
    // normalization, no false duplicate.
    let v = jcs::parse(br#"{"A\u030a":1,"\u00c5":2}"#).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2);
}

// ---- the integer rule ----------------------------------------------------

#[test]
fn rejects_inexact_integers_from_the_design() {
    let cases = [
        ("9007199254740993", "9007199254740992"),
        ("-9007199254740993", "-9007199254740992"),
        ("1152921504606846976", "1152921504606847000"),
        ("10000000000000000000000", "1e+22"),
        ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ("18446744073709551615", "18446744073709552000"),
        ("9223372036854775807", "9223372036854776000"),
        ("-9223372036854775808", "-9223372036854776000"),
    ];
    for (text, rendering) in cases {
        let input = format!("{{\"id\": {text}}}");
        let e = refuse(input.as_bytes());
        assert_eq!(
            e,
            CanonError::InexactInteger {
                text: text.into(),
                rendering: rendering.into(),
                offset: 7
            },
            "{text}"
        );
    }
}

#[test]
fn inexact_integer_message_says_to_use_a_string() {
    let e = refuse(br#"{"id":      9007199254740993}"#);
    assert_eq!(
        e.to_string(),
        "integer 9007199254740993 at byte 12 cannot be kept exactly (RFC 8785 would print \
         9007199254740992); write it as a string or as 9007199254740992"
    );
}

#[test]
fn accepts_big_integers_already_in_canonical_form() {
    for text in [
        "9007199254740992",
        "-9007199254740992",
        "9007199254740994",
        "1152921504606847000",
        "-1152921504606847000",
        "295147905179352830000",
        "18446744073709552000",
        "100000000000000000000",
    ] {
        assert_eq!(jcs::canonicalize(text.as_bytes()).unwrap(), text.as_bytes());
    }
    assert_eq!(jcs::canonicalize(b"-0").unwrap(), b"0");
}

#[test]
fn rejects_numbers_beyond_the_double_range() {
    for (input, text) in [
        ("[1e400]", "1e400"),
        ("[-1e400]", "-1e400"),
        ("[1.8e308]", "1.8e308"),
    ] {
        let e = refuse(input.as_bytes());
        assert_eq!(
            e,
            CanonError::NumberOutOfRange {
                text: text.into(),
                offset: 1
            }
        );
    }
    // A 400-digit integer is out of range rather than inexact.
    let e = refuse(format!("1{}", "0".repeat(400)).as_bytes());
    assert_eq!(e.kind(), CanonErrorKind::NumberOutOfRange);
    // Underflow is fine: 0 is the nearest double.
    assert_eq!(jcs::canonicalize(b"[1e-400,-1e-400]").unwrap(), b"[0,0]");
}

#[test]
fn rejects_nan_and_infinity() {
    for (input, offset) in [
        ("NaN", 0),
        ("[NaN]", 1),
        ("[Infinity]", 1),
        ("[-Infinity]", 2),
        ("{\"a\":nan}", 6),
    ] {
        assert_syntax_at(input.as_bytes(), offset);
    }
    let e = refuse(b"[NaN]");
    assert!(e.to_string().contains("NaN and Infinity"), "{e}");
}

// ---- strings ---------------------------------------------------------------

#[test]
fn rejects_lone_and_reversed_surrogates() {
    for (input, offset) in [
        (r#"["\ud800"]"#, 2),
        (r#"["\udead"]"#, 2),
        (r#"["ab\ud83dx"]"#, 4),
        (r#"["\ud83d\u0041"]"#, 2),
        (r#"["\ud83d\ud83d"]"#, 2),
        (r#"["\ude00\ud83d"]"#, 2),
        (r#"{"\ud800":1}"#, 2),
    ] {
        let e = refuse(input.as_bytes());
        assert_eq!(e, CanonError::LoneSurrogate { offset }, "{input}");
    }
}

#[test]
fn rejects_invalid_utf8_with_its_offset() {
    let cases: [(&[u8], usize); 7] = [
        (b"\xff", 0),
        (b"[\"ab\xff\"]", 4),
        (b"[1,\xff]", 3),
        (b"[\"\xe2\x82\"]", 2),
        (b"[\"\xc0\xaf\"]", 2),
        (b"[\"\xed\xa0\x80\"]", 2),
        (b"{\"k\xf4\x90\x80\x80\":1}", 3),
    ];
    for (input, offset) in cases {
        let e = refuse(input);
        assert_eq!(e, CanonError::InvalidUtf8 { offset }, "{input:?}");
    }
}

#[test]
fn rejects_unescaped_control_characters_in_strings() {
    for (input, offset, byte) in [
        (&b"[\"a\nb\"]"[..], 3, b'\n'),
        (b"\"\x00\"", 1, 0),
        (b"{\"k\x1f\":1}", 3, 0x1f),
        (b"[\"tab\there\"]", 5, b'\t'),
    ] {
        let e = refuse(input);
        assert_eq!(e, CanonError::ControlCharacter { offset, byte });
    }
    // DEL is not a control character for JSON.
    assert_eq!(jcs::canonicalize(b"\"\x7f\"").unwrap(), b"\"\x7f\"");
}

#[test]
fn rejects_invalid_escapes() {
    assert_syntax_at(br#"["\x"]"#, 3);
    assert_syntax_at(br#"["\'"]"#, 3);
    assert_syntax_at(br#"["\u12G4"]"#, 6);
    assert_syntax_at(br#"["\u12"]"#, 6);
    assert_syntax_at(br#"["\"#, 3);
    assert_syntax_at(br#"["abc"#, 5);
}

// ---- grammar ---------------------------------------------------------------

#[test]
fn rejects_malformed_numbers() {
    for (input, offset) in [
        ("01", 1),
        ("[-01]", 3),
        ("[00]", 2),
        ("+1", 0),
        (".5", 0),
        ("[1.]", 3),
        ("[1.e5]", 3),
        ("[1e]", 3),
        ("[1e+]", 4),
        ("[-]", 2),
        ("[- 1]", 2),
        ("[0x10]", 2),
        ("[1_000]", 2),
    ] {
        assert_syntax_at(input.as_bytes(), offset);
    }
}

#[test]
fn rejects_trailing_data() {
    for (input, offset) in [
        ("{} {}", 3),
        ("[1]]", 3),
        ("1 2", 2),
        ("\"a\"x", 3),
        ("null\n,", 5),
        ("true\u{a0}", 4),
    ] {
        let e = refuse(input.as_bytes());
        assert_eq!(e, CanonError::TrailingData { offset }, "{input:?}");
    }
    // Trailing JSON whitespace is fine.
    assert_eq!(jcs::canonicalize(b" \t\r\n[1] \t\r\n").unwrap(), b"[1]");
}

#[test]
fn rejects_other_syntax_errors_with_line_and_column() {
    let e = assert_syntax_at(b"{\n  \"a\": 1,\n  \"b\" 2\n}", 18);
    assert!(
        matches!(
            e,
            CanonError::Syntax {
                line: 3,
                column: 7,
                ..
            }
        ),
        "{e:?}"
    );
    assert_syntax_at(b"[1,]", 3);
    assert_syntax_at(b"{\"a\":1,}", 7);
    assert_syntax_at(b"{a:1}", 1);
    assert_syntax_at(b"[1 2]", 3);
    assert_syntax_at(b"[tru]", 4);
    assert_syntax_at(b"[True]", 1);
    assert_syntax_at(b"// comment\n1", 0);
    assert_syntax_at(b"[1\x0b]", 2);
    assert_syntax_at("[1\u{a0}]".as_bytes(), 2);
    assert_syntax_at(b"'a'", 0);
}

#[test]
fn rejects_empty_and_whitespace_only_input() {
    let e = assert_syntax_at(b"", 0);
    assert!(e.to_string().contains("end of input"), "{e}");
    assert_syntax_at(b"  \n ", 4);
}

#[test]
fn rejects_byte_order_mark() {
    let e = refuse(b"\xef\xbb\xbf{}");
    assert_eq!(e, CanonError::ByteOrderMark);
    assert_eq!(e.offset(), Some(0));
    // U+FEFF inside a string is just a character.
    assert!(jcs::parse("\"\u{feff}\"".as_bytes()).is_ok());
}

// ---- limits ----------------------------------------------------------------

#[test]
fn accepts_depth_128_and_rejects_depth_129() {
    let ok = nested_arrays(128);
    assert_eq!(jcs::canonicalize(ok.as_bytes()).unwrap(), ok.as_bytes());
    let e = refuse(nested_arrays(129).as_bytes());
    assert_eq!(
        e,
        CanonError::TooDeep {
            limit: 128,
            offset: 128
        }
    );
    let objects = format!("{}1{}", "{\"a\":".repeat(129), "}".repeat(129));
    let e = refuse(objects.as_bytes());
    assert_eq!(e.kind(), CanonErrorKind::TooDeep);
    assert_eq!(e.offset(), Some(128 * 5));
}

#[test]
fn deep_input_is_refused_without_overflowing_the_stack() {
    let deep = "[".repeat(200_000);
    let e = refuse(deep.as_bytes());
    assert_eq!(e.kind(), CanonErrorKind::TooDeep);
    // A huge configured limit still cannot overflow the parser's stack.
    let limits = Limits {
        max_depth: usize::MAX,
        max_bytes: usize::MAX,
    };
    let e = jcs::parse_with(deep.as_bytes(), &limits).unwrap_err();
    assert_eq!(e.kind(), CanonErrorKind::Syntax);
    assert_eq!(e.offset(), Some(200_000));
}

#[test]
fn configurable_depth_limit_applies() {
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert!(jcs::parse_with(b"[[[1]]]", &limits).is_ok());
    assert_eq!(
        jcs::parse_with(b"[[{\"a\":[]}]]", &limits).unwrap_err(),
        CanonError::TooDeep {
            limit: 3,
            offset: 7
        }
    );
    let scalars_only = Limits {
        max_depth: 0,
        ..Limits::default()
    };
    assert!(jcs::parse_with(b"\"x\"", &scalars_only).is_ok());
    assert_eq!(
        jcs::parse_with(b"[]", &scalars_only).unwrap_err().kind(),
        CanonErrorKind::TooDeep
    );
}

#[test]
fn rejects_input_one_byte_over_max_bytes() {
    let max = Limits::default().max_bytes;
    assert_eq!(max, 1 << 20);
    // A string that fills the limit exactly is fine.
    let fits = format!("\"{}\"", "a".repeat(max - 2));
    assert_eq!(
        jcs::parse(fits.as_bytes()).unwrap().as_str().unwrap().len(),
        max - 2
    );
    let over = format!("\"{}\"", "a".repeat(max - 1));
    assert_eq!(
        refuse(over.as_bytes()),
        CanonError::TooLarge {
            limit: max,
            size: max + 1
        }
    );
    // The size is checked before anything else.
    let mut garbage = vec![0xffu8; max + 1];
    garbage[0] = b'{';
    assert_eq!(refuse(&garbage).kind(), CanonErrorKind::TooLarge);
}

#[test]
fn configurable_size_limit_applies() {
    let limits = Limits {
        max_bytes: 8,
        ..Limits::default()
    };
    assert!(jcs::parse_with(b"[1,2,3] ", &limits).is_ok());
    assert_eq!(
        jcs::parse_with(b"[1,2,3]  ", &limits).unwrap_err(),
        CanonError::TooLarge { limit: 8, size: 9 }
    );
    assert_eq!(
        jcs::canonicalize_with(b"[1,2,3,4]", &limits)
            .unwrap_err()
            .kind(),
        CanonErrorKind::TooLarge
    );
}

// ---- values built in code --------------------------------------------------

#[test]
fn rejects_inexact_integer_values_built_in_code() {
    let e = jcs::to_canonical_vec(&json!(9007199254740993u64)).unwrap_err();
    assert_eq!(
        e,
        CanonError::InexactIntegerValue {
            value: "9007199254740993".into(),
            rendering: "9007199254740992".into(),
            path: String::new()
        }
    );
    let e = jcs::to_canonical_vec(&json!({"a": [1, {"id/x": i64::MIN}]})).unwrap_err();
    assert_eq!(
        e,
        CanonError::InexactIntegerValue {
            value: "-9223372036854775808".into(),
            rendering: "-9223372036854776000".into(),
            path: "/a/1/id~1x".into()
        }
    );
    assert_eq!(e.kind(), CanonErrorKind::InexactInteger);
    let e = jcs::to_canonical_vec(&json!(u64::MAX)).unwrap_err();
    assert_eq!(e.kind(), CanonErrorKind::InexactInteger);
}

#[test]
fn accepts_big_integer_values_already_in_canonical_form() {
    assert_eq!(
        jcs::to_canonical_vec(&json!(1152921504606847000u64)).unwrap(),
        b"1152921504606847000"
    );
    assert_eq!(
        jcs::to_canonical_vec(&json!(-1152921504606847000i64)).unwrap(),
        b"-1152921504606847000"
    );
    assert_eq!(
        jcs::to_canonical_vec(&json!([9007199254740992u64, -9007199254740992i64])).unwrap(),
        b"[9007199254740992,-9007199254740992]"
    );
}

#[test]
fn rejects_values_nested_deeper_than_the_limit() {
    let mut value = json!(1);
    for _ in 0..128 {
        value = json!([value]);
    }
    assert!(jcs::to_canonical_vec(&value).is_ok());
    let too_deep = json!({ "k": value });
    let e = jcs::to_canonical_vec(&too_deep).unwrap_err();
    assert_eq!(e.kind(), CanonErrorKind::TooDeep);
    let expected_path = format!("/k{}", "/0".repeat(127));
    assert_eq!(e.path(), Some(expected_path.as_str()));
}

#[test]
fn failed_write_leaves_the_buffer_unchanged() {
    let mut out = b"prefix".to_vec();
    let value = json!({"a": "long enough to be written first", "b": 9007199254740993u64});
    assert!(jcs::write_canonical(&value, &mut out).is_err());
    assert_eq!(out, b"prefix");
}

#[test]
fn format_number_refuses_non_finite() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = jcs::format_number(f).unwrap_err();
        assert_eq!(e.kind(), CanonErrorKind::NonFiniteNumber);
        let mut out = Vec::new();
        assert!(jcs::write_number(f, &mut out).is_err());
        assert!(out.is_empty());
    }
}
