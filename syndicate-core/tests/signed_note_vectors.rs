//! The C2SP signed-note Ed25519 example, and derived cases, from the shared
//! vectors: each note must open (or be rejected) with our code as the vector
//! file says.
//!
//! The vectors live outside the repository, in `../shared/vectors` next to the
//! workspace; when the file is absent the test says so and passes.

use std::path::Path;

use serde_json::Value;
use syndicate_core::keys::VerifierKey;
use syndicate_core::note;

#[test]
fn c2sp_signed_note_vectors_verify_as_expected() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/merkle/c2sp/signed-note-ed25519.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("skipping: ../shared/vectors/merkle/c2sp/signed-note-ed25519.json not found");
        return;
    };
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let vkey: VerifierKey = vectors["vkey"].as_str().unwrap().parse().unwrap();
    assert_eq!(vkey.name(), vectors["key_name"].as_str().unwrap());
    assert_eq!(
        vkey.key_id().to_string(),
        vectors["key_id_hex"].as_str().unwrap()
    );
    let public_hex: String = vkey
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        public_hex,
        vectors["ed25519_public_key_hex"].as_str().unwrap()
    );
    assert_eq!(vkey.to_string(), vectors["vkey"].as_str().unwrap());

    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let signed = case["note"].as_str().unwrap();
        let result = note::open(signed, std::slice::from_ref(&vkey));
        if case["expect_valid"].as_bool().unwrap() {
            let opened = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(opened.verified(), std::slice::from_ref(&vkey), "{name}");
            assert!(signed.starts_with(opened.text()), "{name}");
        } else {
            assert!(result.is_err(), "{name}: accepted");
        }
    }

    let example = &vectors["checkpoint_parse_example"];
    let parsed = note::Note::parse(example["note"].as_str().unwrap()).unwrap();
    let expect = &example["expect"];
    let lines: Vec<&str> = parsed.text().lines().collect();
    assert_eq!(lines[0], expect["origin"].as_str().unwrap());
    assert_eq!(lines[1], expect["tree_size"].to_string());
    assert_eq!(parsed.signatures().len(), 1);
    assert_eq!(
        parsed.signatures()[0].name(),
        expect["origin"].as_str().unwrap()
    );
}
