//! `docs/FORMAT.md` stays true: its worked examples are recomputed here.

use std::path::PathBuf;

use serde_json::json;
use syndicate_core::{Action, Digest, digest, tags};

fn format_md() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/FORMAT.md");
    std::fs::read_to_string(path).expect("docs/FORMAT.md")
}

#[test]
fn worked_action_digest_example_is_right() {
    let doc = format_md();
    let d = digest(tags::ACTION, &json!({"tool": "t", "args": {}})).unwrap();
    assert!(doc.contains(&format!("`{d}`")), "FORMAT.md must show {d}");
}

#[test]
fn canonical_action_example_is_right() {
    let doc = format_md();
    let action = Action::from_json(
        br#"{"tool":"shell.exec","target":"repo:payments-svc","args":{"argv":["git","push"]}}"#,
    )
    .unwrap();
    let canonical = String::from_utf8(action.canonical_bytes().to_vec()).unwrap();
    assert!(
        doc.contains(&format!("`{canonical}`")),
        "FORMAT.md must show {canonical}"
    );
}

#[test]
fn quoted_golden_event_and_hash_are_right() {
    let doc = format_md();
    let golden = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/events.jsonl"),
    )
    .unwrap();
    let first = golden.lines().next().unwrap();
    assert!(doc.contains(first), "FORMAT.md quotes golden seq 0 exactly");
    let hash = Digest::of_canonical(tags::EVENT, first.as_bytes());
    assert!(
        doc.contains(&format!("`{hash}`")),
        "FORMAT.md gives its hash {hash}"
    );
}

#[test]
fn every_event_kind_is_documented() {
    let doc = format_md();
    for kind in syndicate_core::EventKind::ALL {
        assert!(
            doc.contains(&format!("`{}`", kind.as_str())),
            "FORMAT.md documents {kind}"
        );
    }
}
