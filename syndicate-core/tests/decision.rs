//! Signed decisions and approver declarations: a signature binds one chain,
//! request, digest and approver, and nothing else.

use syndicate_core::approvers::{Signers, SignersError};
use syndicate_core::decision::{Decision, DecisionError, SignedDecision, Statement};
use syndicate_core::keys::SigningKey;
use syndicate_core::{ChainId, Digest, Timestamp, action_digest};

fn key(name: &str, seed: u8) -> SigningKey {
    SigningKey::from_seed(name, &[seed; 32]).unwrap()
}

fn chain(name: &str) -> ChainId {
    ChainId::new(name).unwrap()
}

fn digest_a() -> Digest {
    Digest::of_canonical("test", b"a")
}

fn statement(approver: &str) -> Statement {
    Statement {
        chain: chain("prod"),
        request_id: "req-A".into(),
        action_digest: digest_a(),
        approver: approver.into(),
        decision: Decision::Approve,
        expires_at: Some(Timestamp::from_unix_micros(1_800_000_000_000_000).unwrap()),
    }
}

#[test]
fn signed_decision_round_trips_through_json_and_verifies() {
    let bob = key("bob@example.com", 1);
    let signed = SignedDecision::sign(&bob, statement("bob@example.com")).unwrap();
    let json = serde_json::to_string_pretty(&signed).unwrap();
    let back: SignedDecision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, signed);
    let keys = [bob.verifier().clone()];
    let used = back
        .verify_for(
            &chain("prod"),
            "req-A",
            &digest_a(),
            Decision::Approve,
            &keys,
        )
        .unwrap();
    assert_eq!(used, bob.verifier());
}

#[test]
fn signed_bytes_are_the_tag_a_zero_byte_and_the_canonical_statement() {
    let bytes = statement("bob").signed_bytes().unwrap();
    let expected = format!(
        "syndicate:approval:v1\0{{\"action_digest\":\"{}\",\"approver\":\"bob\",\"chain\":\"prod\",\"decision\":\"approve\",\"expires_at\":\"{}\",\"request_id\":\"req-A\"}}",
        digest_a(),
        Timestamp::from_unix_micros(1_800_000_000_000_000).unwrap()
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
}

#[test]
fn statement_for_request_a_is_refused_for_b_another_chain_or_digest() {
    let bob = key("bob", 1);
    let signed = SignedDecision::sign(&bob, statement("bob")).unwrap();
    let keys = [bob.verifier().clone()];
    let other_digest = action_digest(br#"{"tool":"t","args":{}}"#).unwrap();
    let cases = [
        (chain("prod"), "req-B", digest_a(), "request"),
        (chain("staging"), "req-A", digest_a(), "chain"),
        (chain("prod"), "req-A", other_digest, "action digest"),
    ];
    for (c, request, digest, field) in cases {
        match signed.verify_for(&c, request, &digest, Decision::Approve, &keys) {
            Err(DecisionError::Mismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(matches!(
        signed.verify_for(
            &chain("prod"),
            "req-A",
            &digest_a(),
            Decision::Recover,
            &keys
        ),
        Err(DecisionError::Mismatch {
            field: "decision",
            ..
        })
    ));
}

#[test]
fn edited_statement_no_longer_verifies() {
    let bob = key("bob", 1);
    let mut signed = SignedDecision::sign(&bob, statement("bob")).unwrap();
    signed.statement.request_id = "req-B".into();
    assert!(matches!(
        signed.verify(&[bob.verifier().clone()]),
        Err(DecisionError::BadSignature { .. })
    ));
}

#[test]
fn key_of_a_different_person_is_refused() {
    let (bob, eve) = (key("bob", 1), key("eve", 2));
    assert!(matches!(
        SignedDecision::sign(&eve, statement("bob")),
        Err(DecisionError::KeyName { .. })
    ));
    // Eve signs as herself, then relabels the statement as Bob's.
    let mut signed = SignedDecision::sign(&eve, statement("eve")).unwrap();
    signed.statement.approver = "bob".into();
    assert!(matches!(
        signed.verify(&[bob.verifier().clone(), eve.verifier().clone()]),
        Err(DecisionError::UnknownKey { .. })
    ));
    // A second key named bob but not listed is unknown too.
    let impostor = key("bob", 3);
    let forged = SignedDecision::sign(&impostor, statement("bob")).unwrap();
    assert!(matches!(
        forged.verify(&[bob.verifier().clone()]),
        Err(DecisionError::UnknownKey { .. })
    ));
}

fn policy(bob: &SigningKey, ops: &SigningKey) -> Signers {
    Signers::from_toml(&format!(
        r#"
name = "p"
[[approvers]]
id = "bob"
keys = ["{}"]
roles = ["sre"]
[[approvers]]
id = "carol"
keys = ["{}"]
[[operators]]
id = "ops"
keys = ["{}"]
"#,
        bob.verifier(),
        key("carol", 4).verifier(),
        ops.verifier()
    ))
    .unwrap()
}

#[test]
fn declared_approver_with_role_is_accepted_and_others_refused() {
    let (bob, ops) = (key("bob", 1), key("ops", 5));
    let signers = policy(&bob, &ops);
    assert!(signers.requires_signatures() && signers.requires_operator());
    let sre = vec!["sre".to_owned()];
    let signed = SignedDecision::sign(&bob, statement("bob")).unwrap();
    let approver = signers
        .check_approval(&signed, &chain("prod"), "req-A", &digest_a(), &sre)
        .unwrap();
    assert_eq!(approver.id, "bob");

    let carol = key("carol", 4);
    let by_carol = SignedDecision::sign(&carol, statement("carol")).unwrap();
    assert!(matches!(
        signers.check_approval(&by_carol, &chain("prod"), "req-A", &digest_a(), &sre),
        Err(SignersError::MissingRole { .. })
    ));
    let dave = key("dave", 6);
    let by_dave = SignedDecision::sign(&dave, statement("dave")).unwrap();
    assert!(matches!(
        signers.check_approval(&by_dave, &chain("prod"), "req-A", &digest_a(), &[]),
        Err(SignersError::Undeclared { .. })
    ));
    // An approver is not an operator.
    let mut recover = statement("bob");
    recover.decision = Decision::Recover;
    let by_bob = SignedDecision::sign(&bob, recover.clone()).unwrap();
    assert!(matches!(
        signers.check_operator(
            &by_bob,
            &chain("prod"),
            "req-A",
            &digest_a(),
            Decision::Recover
        ),
        Err(SignersError::Undeclared { .. })
    ));
    recover.approver = "ops".into();
    let by_ops = SignedDecision::sign(&ops, recover).unwrap();
    signers
        .check_operator(
            &by_ops,
            &chain("prod"),
            "req-A",
            &digest_a(),
            Decision::Recover,
        )
        .unwrap();
}

#[test]
fn declarations_that_are_ambiguous_are_refused() {
    let bob = key("bob", 1);
    let twice = format!(
        "[[approvers]]\nid = \"bob\"\nkeys = [\"{0}\"]\n[[approvers]]\nid = \"bob\"\nkeys = [\"{0}\"]\n",
        bob.verifier()
    );
    assert!(matches!(
        Signers::from_toml(&twice),
        Err(SignersError::Duplicate { .. })
    ));
    let misnamed = format!(
        "[[approvers]]\nid = \"carol\"\nkeys = [\"{}\"]\n",
        bob.verifier()
    );
    assert!(matches!(
        Signers::from_toml(&misnamed),
        Err(SignersError::KeyName { .. })
    ));
    let keyless = "[[operators]]\nid = \"ops\"\nkeys = []\n";
    assert!(matches!(
        Signers::from_toml(keyless),
        Err(SignersError::NoKey { .. })
    ));
    let bad_key = "[[approvers]]\nid = \"bob\"\nkeys = [\"bob+00000000+AAAA\"]\n";
    assert!(matches!(
        Signers::from_toml(bad_key),
        Err(SignersError::Shape(_))
    ));
    assert!(
        !Signers::from_toml("name = \"p\"\n")
            .unwrap()
            .requires_signatures()
    );
}
