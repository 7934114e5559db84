//! Typed annotations: round trip through a store, and the reference check
//! flags annotations pointing at events that do not exist or differ.

use std::sync::Arc;

use serde_json::json;
use syndicate_core::annotation::{
    Annotation, Correction, Detail, EventRef, ReferenceProblem, Review, TestRun, Verdict,
    check_references,
};
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId, Digest, Event, EventStore, MemoryStore, Query};

async fn chain_with_a_request() -> (Arc<MemoryStore>, String, Event) {
    let policy = RulePolicy::from_toml(
        r#"
        id = "t"
        version = "1"
        [[rules]]
        id = "all"
        tool = "*"
        risk = "high"
        decision = "human"
        "#,
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new(ChainId::new("ann").unwrap()));
    let gate = Gate::open(store.clone(), Arc::new(policy), GateConfig::default())
        .await
        .unwrap();
    let action = Action::new("shell.exec", json!({"argv": ["true"]})).unwrap();
    let proposal = gate
        .propose(
            "s",
            &Actor::agent("bot"),
            &action,
            &ProposalContext::default(),
        )
        .await
        .unwrap();
    let proposed = store
        .query(&Query::request(proposal.request_id.clone()))
        .await
        .unwrap()
        .remove(0);
    (store, proposal.request_id, proposed)
}

fn review() -> Review {
    Review {
        reviewer: "carol".into(),
        verdict: Verdict::Approved,
        comments: None,
        read_reasoning: true,
    }
}

async fn all(store: &MemoryStore) -> Vec<Event> {
    store.read(0, 10_000).await.unwrap()
}

#[tokio::test]
async fn typed_annotations_round_trip_and_refer_correctly() {
    let (store, request, proposed) = chain_with_a_request().await;
    let run = TestRun {
        suite: "unit".into(),
        passed: 3,
        failed: 0,
        skipped: 1,
        coverage_percent: Some(81.5),
        report_digest: None,
        report: Some("target/junit.xml".into()),
    };
    let drafts = vec![
        Annotation::review(&request, EventRef::to(&proposed), review())
            .draft("s", Actor::human("carol")),
        Annotation::test(&request, EventRef::to(&proposed), run.clone())
            .draft("s", Actor::system("ci")),
    ];
    let written = store.append(&drafts).await.unwrap();
    let back = Annotation::of_event(&written[1]).unwrap();
    assert_eq!(back.detail, Detail::Test(run));
    assert_eq!(back.request_id.as_deref(), Some(request.as_str()));
    assert_eq!(
        written[0].columns.request_id.as_deref(),
        Some(request.as_str())
    );
    assert!(check_references(&all(&store).await).is_empty());
}

#[tokio::test]
async fn annotation_referring_to_a_missing_event_is_flagged() {
    let (store, request, proposed) = chain_with_a_request().await;
    let missing = EventRef {
        seq: 9_999,
        hash: proposed.hash,
    };
    let wrong_hash = EventRef {
        seq: proposed.seq,
        hash: Digest::ZERO,
    };
    store
        .append(&[
            Annotation::review(&request, missing, review()).draft("s", Actor::human("carol")),
            Annotation::review(&request, wrong_hash, review()).draft("s", Actor::human("carol")),
            Annotation::review("req-never", EventRef::to(&proposed), review())
                .draft("s", Actor::human("carol")),
        ])
        .await
        .unwrap();
    let issues = check_references(&all(&store).await);
    assert_eq!(issues.len(), 3, "{issues:?}");
    // seq 9999 is later than the annotation: not an earlier event.
    assert!(matches!(
        issues[0].problem,
        ReferenceProblem::NotEarlier { seq: 9_999 }
    ));
    assert!(matches!(
        issues[1].problem,
        ReferenceProblem::HashMismatch { seq, .. } if seq == proposed.seq
    ));
    assert_eq!(issues[2].problem, ReferenceProblem::UnknownRequest);
    assert!(issues[1].to_string().contains("but that event's hash is"));
}

#[tokio::test]
async fn gap_in_referenced_seqs_is_an_unknown_event() {
    // A verified slice that starts after seq 0: the annotation names seq 0,
    // which the checker never saw.
    let (store, request, proposed) = chain_with_a_request().await;
    let correction = Correction {
        field: "context.trigger".into(),
        corrected: json!("INC-42"),
        reason: "wrong ticket".into(),
    };
    store
        .append(&[
            Annotation::correction(Some(request), EventRef::to(&proposed), correction)
                .draft("s", Actor::human("dave")),
        ])
        .await
        .unwrap();
    let events = all(&store).await;
    let issues = check_references(events.iter().filter(|e| e.seq != proposed.seq));
    assert_eq!(
        issues.iter().map(|i| &i.problem).collect::<Vec<_>>(),
        vec![&ReferenceProblem::UnknownEvent { seq: proposed.seq }]
    );
    assert!(check_references(&events).is_empty());
}

#[tokio::test]
async fn untyped_annotation_is_malformed() {
    let (store, _, _) = chain_with_a_request().await;
    store
        .append(&[syndicate_core::EventDraft::new(
            "s",
            syndicate_core::EventKind::Annotation,
            Actor::human("x"),
            json!({"note": "no type, no refers_to"}),
        )])
        .await
        .unwrap();
    let issues = check_references(&all(&store).await);
    assert!(matches!(issues[0].problem, ReferenceProblem::Malformed(_)));
}

#[tokio::test]
async fn story_check_flags_broken_references_and_leaves_free_notes_alone() {
    use syndicate_core::story::{StoryChecker, StoryRule};
    let (store, request, proposed) = chain_with_a_request().await;
    let wrong_hash = EventRef {
        seq: proposed.seq,
        hash: Digest::ZERO,
    };
    store
        .append(&[
            // A free note: no type, no reference; not checked.
            syndicate_core::EventDraft::new(
                "s",
                syndicate_core::EventKind::Annotation,
                Actor::human("x"),
                json!({"n": 1}),
            ),
            // A good typed annotation.
            Annotation::review(&request, EventRef::to(&proposed), review())
                .draft("s", Actor::human("carol")),
            // A wrong hash.
            Annotation::review(&request, wrong_hash, review()).draft("s", Actor::human("carol")),
            // An untyped note with a reference that does not hold.
            syndicate_core::EventDraft::new(
                "s",
                syndicate_core::EventKind::Annotation,
                Actor::human("x"),
                json!({"refers_to": {"seq": proposed.seq, "hash": Digest::ZERO}}),
            ),
        ])
        .await
        .unwrap();
    let events = all(&store).await;
    let mut story = StoryChecker::new();
    for e in &events {
        story.check(e);
    }
    let report = story.report();
    let flagged: Vec<(u64, StoryRule)> =
        report.violations.iter().map(|v| (v.seq, v.rule)).collect();
    let n = events.len() as u64;
    assert_eq!(
        flagged,
        vec![
            (n - 2, StoryRule::AnnotationReference),
            (n - 1, StoryRule::AnnotationReference)
        ],
        "{:?}",
        report.violations
    );
    assert!(
        report.violations[0]
            .detail
            .contains("but that event's hash is")
    );
}

#[test]
fn a_rule_may_require_tests_and_reviews_and_nothing_else() {
    let policy = |requires: &str| {
        RulePolicy::from_toml(&format!(
            "id = \"t\"\nversion = \"1\"\n[[rules]]\nid = \"r\"\ntool = \"*\"\nrisk = \"high\"\ndecision = \"human\"\nrequires = {requires}\n"
        ))
    };
    assert!(policy(r#"["test", "review"]"#).is_ok());
    assert!(policy("[]").is_ok());
    let refused = policy(r#"["test", "sign-off"]"#).unwrap_err().to_string();
    assert!(refused.contains("\"sign-off\""), "{refused}");
}
