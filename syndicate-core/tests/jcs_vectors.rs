//! RFC 8785 conformance against the shared reference vectors.
//!
//! The vectors live outside the repository, in `../shared/vectors` next to the
//! workspace; when that folder is absent every test here says so and passes.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use syndicate_core::jcs::{self, CanonErrorKind};

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: ../shared/vectors not found");
        None
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every `input/NAME.json` of a suite against its `output/NAME.json`.
/// Returns how many pairs were checked.
fn check_pairs(suite: &Path) -> usize {
    let mut names: Vec<PathBuf> = fs::read_dir(suite.join("input"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for input_path in &names {
        let name = input_path.file_name().unwrap();
        let input = fs::read(input_path).unwrap();
        let expected = fs::read(suite.join("output").join(name)).unwrap();
        let got = jcs::canonicalize(&input)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", input_path.display()));
        assert_eq!(
            show(&got),
            show(&expected),
            "{}: canonical bytes differ",
            input_path.display()
        );
        // Canonical bytes are a fixed point.
        assert_eq!(jcs::canonicalize(&expected).unwrap(), expected, "{name:?}");
    }
    names.len()
}

#[test]
fn cyberphone_pairs_match_byte_for_byte() {
    let Some(dir) = vectors() else { return };
    assert_eq!(check_pairs(&dir.join("jcs/cyberphone")), 6);
}

#[test]
fn gowebpki_pairs_match_byte_for_byte() {
    let Some(dir) = vectors() else { return };
    assert_eq!(check_pairs(&dir.join("jcs/gowebpki")), 4);
}

fn edge_cases(dir: &Path) -> Value {
    let text = fs::read(dir.join("jcs/edge-cases.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn edge_cases_give_canonical_bytes_and_sha256() {
    let Some(dir) = vectors() else { return };
    let file = edge_cases(&dir);
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 32, "expected at least 32 cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let canonical = case["canonical"].as_str().unwrap();
        let got =
            jcs::canonicalize(input.as_bytes()).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(show(&got), canonical, "{name}: canonical bytes differ");
        assert_eq!(
            sha256_hex(&got),
            case["sha256"].as_str().unwrap(),
            "{name}: sha256"
        );
    }
}

#[test]
fn edge_case_rejects_are_refused_with_the_right_kind() {
    let Some(dir) = vectors() else { return };
    let file = edge_cases(&dir);
    let rejects = file["reject"].as_array().unwrap();
    assert!(rejects.len() >= 14, "expected at least 14 reject cases");
    for case in rejects {
        let name = case["name"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let err = match jcs::canonicalize(input.as_bytes()) {
            Ok(bytes) => panic!("{name}: accepted {input} as {}", show(&bytes)),
            Err(e) => e,
        };
        let expected = if name.starts_with("policy-reject-") {
            Some(CanonErrorKind::InexactInteger)
        } else if name.contains("duplicate") {
            Some(CanonErrorKind::DuplicateKey)
        } else if name.contains("surrogate") {
            Some(CanonErrorKind::LoneSurrogate)
        } else if input.contains("1e400") {
            Some(CanonErrorKind::NumberOutOfRange)
        } else if input.contains("NaN") || input.contains("Infinity") {
            Some(CanonErrorKind::Syntax)
        } else {
            None
        };
        if let Some(kind) = expected {
            assert_eq!(err.kind(), kind, "{name}: {err}");
        }
    }
}

/// Checks every `hex-bits,expected` line of a number file; returns the
/// number of lines.
fn check_number_file(path: &Path) -> usize {
    let text = fs::read_to_string(path).unwrap();
    let mut count = 0;
    let mut out = Vec::with_capacity(32);
    for (i, line) in text.lines().enumerate() {
        let (hex, expected) = line.split_once(',').unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let f = f64::from_bits(bits);
        out.clear();
        jcs::write_number(f, &mut out).unwrap();
        assert_eq!(
            show(&out),
            expected,
            "{} line {}: {hex}",
            path.display(),
            i + 1
        );
        count += 1;
    }
    // The allocating form agrees with the appending one.
    for line in text.lines().take(200) {
        let (hex, expected) = line.split_once(',').unwrap();
        let f = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
        assert_eq!(jcs::format_number(f).unwrap(), expected);
    }
    count
}

#[test]
fn es6_number_sample_formats_every_line() {
    let Some(dir) = vectors() else { return };
    assert_eq!(
        check_number_file(&dir.join("jcs/es6-numbers-sample.txt")),
        20_015
    );
}

#[test]
fn es6_number_file_first_100k_lines_format_exactly() {
    let Some(dir) = vectors() else { return };
    assert_eq!(
        check_number_file(&dir.join("jcs/es6testfile-first100k.txt")),
        100_000
    );
}

/// The agent-receipts cross-SDK vectors embed each `input` as a JSON value in
/// the file, so the file itself is parsed, once with our strict parser (which
/// also checks it has no duplicate keys) and once with serde_json (whose
/// values keep `-0.0` as a negative zero double, which the writer must print
/// as `0`). None of the 32 inputs is an integer text above 2^53 (the largest
/// is 2^53 itself, which the number rule keeps exactly), so none is refused;
/// the test asserts that rather than assuming it.
#[test]
fn agent_receipts_canonicalization_vectors_match() {
    let Some(dir) = vectors() else { return };
    let text =
        fs::read(dir.join("agent-receipts/cross-sdk-tests/canonicalization_vectors.json")).unwrap();
    let limits = jcs::Limits {
        max_bytes: 16 << 20,
        ..jcs::Limits::default()
    };
    let strict = jcs::parse_with(&text, &limits).unwrap();
    let loose: Value = serde_json::from_slice(&text).unwrap();
    let strict_cases = strict["canonicalization_vectors"].as_array().unwrap();
    let loose_cases = loose["canonicalization_vectors"].as_array().unwrap();
    assert_eq!(strict_cases.len(), 32);
    for (case, loose_case) in strict_cases.iter().zip(loose_cases) {
        let name = case["name"].as_str().unwrap();
        let canonical = case["canonical"].as_str().unwrap();
        let got = jcs::to_canonical_vec(&case["input"])
            .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(show(&got), canonical, "{name}: strict parse");
        let got_loose = jcs::to_canonical_vec(&loose_case["input"])
            .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(show(&got_loose), canonical, "{name}: serde_json value");
        if let Some(hash) = case.get("expectedHash").and_then(Value::as_str) {
            assert_eq!(format!("sha256:{}", sha256_hex(&got)), hash, "{name}");
        }
    }
    // The negative-zero case really went through a negative zero.
    let neg_zero = loose_cases
        .iter()
        .find(|c| c["name"] == "number_negative_zero")
        .unwrap();
    let f = neg_zero["input"].as_f64().unwrap();
    assert!(f == 0.0 && f.is_sign_negative());
}
