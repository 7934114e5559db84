//! Golden test: the canonical bytes and hashes of a fixed event sequence are
//! frozen in `tests/golden/`, so the format can never change silently.
//!
//! After a deliberate format change (with a new envelope version), regenerate
//! with `SYNDICATE_BLESS=1 cargo test -p syndicate-tests --test golden` and
//! document the change in `docs/FORMAT.md`.

use std::path::PathBuf;

use serde_json::json;
use syndicate_core::{
    Action, Actor, ChainId, Digest, EventDraft, EventKind, Head, PolicyRef, Timestamp, Verifier,
    digest, seal, tags,
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// The fixed sequence: a policy activation, a proposal, an approval, a
/// start and a completion, sealed at fixed instants.
fn fixed_sequence() -> Vec<syndicate_core::Event> {
    let chain = ChainId::new("golden").unwrap();
    let document =
        json!({"id": "default", "version": "7", "rules": [{"id": "r1", "tool": "shell.*"}]});
    let policy = PolicyRef {
        id: "default".into(),
        version: "7".into(),
        digest: digest(tags::POLICY, &document).unwrap(),
    };
    let action = Action::from_json(
        "{\"tool\":\"shell.exec\",\"target\":\"repo:payments-svc\",\"args\":{\"argv\":[\"git\",\"push\"],\"cwd\":\"/srv/app\",\"note\":\"caf\u{e9} \u{1f600}\",\"n\":1e21}}"
            .as_bytes(),
    )
    .unwrap();
    let requester = Actor::agent("agent:deploy-bot");
    let batches = vec![
        (
            "2026-11-23T10:00:00.000001Z",
            vec![
                EventDraft::new(
                    "sess-7f2a",
                    EventKind::PolicyActivated,
                    Actor::system("gate"),
                    json!({"policy": {"id": "default", "version": "7", "digest": policy.digest}, "document": document}),
                )
                .with_policy(policy.clone()),
            ],
        ),
        (
            "2026-11-23T10:00:01.500000Z",
            vec![
                EventDraft::new(
                    "sess-7f2a",
                    EventKind::ActionProposed,
                    requester.clone(),
                    json!({
                        "request_id": "req-1",
                        "action": action.to_value(),
                        "action_digest": action.digest(),
                        "requester": requester.id,
                        "risk_tier": "high",
                        "controls": ["SOC2:CC8.1"],
                    }),
                )
                .with_policy(policy.clone())
                .with_once("action.proposed:req-1"),
            ],
        ),
        (
            "2026-11-23T10:00:01.400000Z", // earlier than the head: sealed at the head's time
            vec![
                EventDraft::new(
                    "sess-7f2a",
                    EventKind::ActionApproved,
                    Actor::human("bob@example.com"),
                    json!({"request_id": "req-1", "action_digest": action.digest(), "approver": "bob@example.com", "method": "human", "comment": "ok \"ship it\"\n"}),
                )
                .with_policy(policy.clone()),
            ],
        ),
        (
            "2026-11-23T10:05:00.000000Z",
            vec![
                EventDraft::new(
                    "sess-7f2a",
                    EventKind::ExecutionStarted,
                    requester.clone(),
                    json!({"request_id": "req-1", "approved_digest": action.digest(), "executed_digest": action.digest()}),
                )
                .with_policy(policy.clone())
                .with_once("execution.started:req-1"),
                EventDraft::new(
                    "sess-7f2a",
                    EventKind::ExecutionCompleted,
                    requester,
                    json!({"request_id": "req-1", "outcome": "succeeded", "exit_code": 0,
                           "result_digest": Digest::of_canonical(tags::RESULT, b"done")}),
                )
                .with_policy(policy),
            ],
        ),
    ];
    let mut head: Option<Head> = None;
    let mut events = Vec::new();
    for (now, drafts) in batches {
        let sealed = seal(
            &chain,
            head.as_ref(),
            &drafts,
            now.parse::<Timestamp>().unwrap(),
        )
        .unwrap();
        let last = sealed.last().unwrap();
        head = Some(Head {
            seq: last.seq,
            hash: last.hash,
            at: last.columns.at.parse().unwrap(),
        });
        events.extend(sealed);
    }
    events
}

fn render(events: &[syndicate_core::Event]) -> (Vec<u8>, String) {
    let mut jsonl = Vec::new();
    let mut hashes = String::new();
    for event in events {
        jsonl.extend_from_slice(&event.canonical);
        jsonl.push(b'\n');
        hashes.push_str(&format!("{} {}\n", event.seq, event.hash));
    }
    (jsonl, hashes)
}

#[test]
fn fixed_sequence_matches_frozen_bytes_and_hashes() {
    let events = fixed_sequence();
    let (jsonl, hashes) = render(&events);
    let (jsonl_path, hashes_path) = (
        golden_dir().join("events.jsonl"),
        golden_dir().join("hashes.txt"),
    );
    if std::env::var_os("SYNDICATE_BLESS").is_some() {
        std::fs::write(&jsonl_path, &jsonl).unwrap();
        std::fs::write(&hashes_path, &hashes).unwrap();
    }
    let frozen_jsonl = std::fs::read(&jsonl_path).expect("tests/golden/events.jsonl");
    let frozen_hashes = std::fs::read_to_string(&hashes_path).expect("tests/golden/hashes.txt");
    assert_eq!(
        String::from_utf8_lossy(&jsonl),
        String::from_utf8_lossy(&frozen_jsonl),
        "canonical bytes changed: the event format is frozen"
    );
    assert_eq!(
        hashes, frozen_hashes,
        "event hashes changed: the event format is frozen"
    );
}

#[test]
fn frozen_events_verify_from_their_bytes_alone() {
    let frozen = std::fs::read(golden_dir().join("events.jsonl")).unwrap();
    let mut verifier = Verifier::new(ChainId::new("golden").unwrap());
    for (seq, line) in frozen
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        // Rebuild each event from nothing but its bytes, as an outside verifier would.
        assert_eq!(
            syndicate_core::jcs::canonicalize(line).unwrap(),
            line,
            "line {seq} is canonical"
        );
        let hash = Digest::of_canonical(tags::EVENT, line);
        let envelope: syndicate_core::Envelope = serde_json::from_slice(line).unwrap();
        let event = syndicate_core::Event {
            seq: seq as u64,
            hash,
            canonical: line.to_vec(),
            columns: syndicate_core::Columns::of(&envelope),
        };
        verifier.check(&event).unwrap();
    }
    assert_eq!(verifier.summary().events, 5);
    let hashes = std::fs::read_to_string(golden_dir().join("hashes.txt")).unwrap();
    let last = hashes.lines().last().unwrap().split(' ').nth(1).unwrap();
    assert_eq!(verifier.summary().head.unwrap().hash.to_string(), last);
}

#[test]
fn envelope_members_are_exactly_the_documented_ones() {
    let events = fixed_sequence();
    let value: serde_json::Value = serde_json::from_slice(&events[1].canonical).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "actor", "at", "body", "chain", "kind", "once", "policy", "prev", "seq", "session", "v"
        ]
    );
    assert_eq!(value["prev"], json!(events[0].hash.to_string()));
    assert_eq!(value["at"], json!("2026-11-23T10:00:01.500000Z"));
    let approved: serde_json::Value = serde_json::from_slice(&events[2].canonical).unwrap();
    assert_eq!(
        approved["at"],
        json!("2026-11-23T10:00:01.500000Z"),
        "at never goes backwards"
    );
}
