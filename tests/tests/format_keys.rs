//! `docs/FORMAT.md` section 9 stays true: its key and signature examples are
//! recomputed here with the library.

use std::path::PathBuf;

use syndicate_core::decision::{Decision, SignedDecision, Statement};
use syndicate_core::keys::SigningKey;
use syndicate_core::{ChainId, Digest, digest, tags};

fn format_md() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/FORMAT.md");
    std::fs::read_to_string(path).expect("docs/FORMAT.md")
}

#[test]
fn key_and_signed_decision_examples_are_right() {
    let doc = format_md();
    let key = SigningKey::from_seed("bob@example.com", &[1; 32]).unwrap();
    for text in [
        key.to_private_text().to_string(),
        key.verifier().to_string(),
    ] {
        assert!(
            doc.contains(&format!("`{text}`")),
            "FORMAT.md must show {text}"
        );
    }
    let action: Digest =
        digest(tags::ACTION, &serde_json::json!({"tool": "t", "args": {}})).unwrap();
    let statement = Statement {
        chain: ChainId::new("prod").unwrap(),
        request_id: "req-1".into(),
        action_digest: action,
        approver: "bob@example.com".into(),
        decision: Decision::Approve,
        expires_at: None,
    };
    let bytes = statement.signed_bytes().unwrap();
    let canonical = std::str::from_utf8(&bytes["syndicate:approval:v1\0".len()..]).unwrap();
    assert!(
        doc.contains(&format!("`{canonical}`")),
        "FORMAT.md must show {canonical}"
    );
    let signed = SignedDecision::sign(&key, statement).unwrap();
    assert!(
        doc.contains(&format!("`{}`", signed.signature)),
        "FORMAT.md must show {}",
        signed.signature
    );
    assert!(doc.contains(&format!("`key_id` `{}`", signed.key_id)));
}
