//! The verifier names the first tampered seq and the check that failed.

use serde_json::json;
use syndicate_core::{
    Actor, ChainId, Check, Digest, Event, EventDraft, EventKind, Head, Timestamp, Verifier, seal,
    tags,
};

fn chain() -> ChainId {
    ChainId::new("audit").unwrap()
}

fn draft(n: usize) -> EventDraft {
    EventDraft::new(
        format!("s{}", n % 2),
        EventKind::Annotation,
        Actor::human("bob"),
        json!({"request_id": format!("req-{n}"), "note": n}),
    )
}

/// Ten events sealed in three batches.
fn events() -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for batch in [0..3, 3..4, 4..10] {
        let head = out.last().map(|e| Head {
            seq: e.seq,
            hash: e.hash,
            at: e.columns.at.parse().unwrap(),
        });
        let drafts: Vec<_> = batch.map(draft).collect();
        out.extend(seal(&chain(), head.as_ref(), &drafts, Timestamp::now()).unwrap());
    }
    out
}

/// Runs the verifier; returns (seq, check) of the first violation.
fn first_violation(events: &[Event]) -> Option<(u64, Check)> {
    let mut verifier = Verifier::new(chain());
    for event in events {
        if let Err(v) = verifier.check(event) {
            return Some((v.seq, v.check));
        }
    }
    None
}

fn rehash(event: &mut Event) {
    event.hash = Digest::of_canonical(tags::EVENT, &event.canonical);
}

#[test]
fn intact_chain_verifies_to_its_head() {
    let events = events();
    let mut verifier = Verifier::new(chain());
    for e in &events {
        verifier.check(e).unwrap();
    }
    let summary = verifier.summary();
    assert_eq!(summary.events, 10);
    assert_eq!(summary.head.unwrap().hash, events[9].hash);
}

#[test]
fn flipped_byte_is_a_hash_failure_at_its_seq() {
    let mut events = events();
    let i = events[6].canonical.len() / 2;
    events[6].canonical[i] ^= 0x01;
    assert_eq!(first_violation(&events), Some((6, Check::Hash)));
}

#[test]
fn edited_column_is_named() {
    for (column, edit) in [
        (
            "session",
            (|e: &mut Event| e.columns.session = "other".into()) as fn(&mut Event),
        ),
        ("kind", |e| e.columns.kind = "action.approved".into()),
        ("actor", |e| e.columns.actor = "mallory".into()),
        ("request_id", |e| e.columns.request_id = None),
        ("at", |e| {
            e.columns.at = "2020-01-01T00:00:00.000000Z".into()
        }),
        ("once", |e| e.columns.once = Some("k".into())),
    ] {
        let mut events = events();
        edit(&mut events[4]);
        assert_eq!(
            first_violation(&events),
            Some((4, Check::Column(column))),
            "{column}"
        );
    }
}

#[test]
fn deleted_row_is_a_sequence_failure_at_the_missing_seq() {
    let mut events = events();
    events.remove(5);
    assert_eq!(first_violation(&events), Some((5, Check::Sequence)));
}

#[test]
fn swapped_seq_columns_are_caught() {
    let mut events = events();
    events.swap(3, 4);
    let (a, b) = (events[3].seq, events[4].seq);
    events[3].seq = b;
    events[4].seq = a;
    assert_eq!(first_violation(&events), Some((3, Check::Sequence)));
}

#[test]
fn inserted_rehashed_event_breaks_the_next_link() {
    let mut events = events();
    // Forge an event sealed onto seq 4, renumber the rest: the forged event is
    // self-consistent, so the break shows where the old seq 5 no longer links.
    let head = Head {
        seq: 4,
        hash: events[4].hash,
        at: events[4].columns.at.parse().unwrap(),
    };
    let forged = seal(&chain(), Some(&head), &[draft(99)], Timestamp::now()).unwrap();
    for e in events.iter_mut().skip(5) {
        e.seq += 1;
    }
    events.insert(5, forged.into_iter().next().unwrap());
    let found = first_violation(&events);
    assert_eq!(found.map(|(seq, _)| seq), Some(6));
    assert!(matches!(found, Some((_, Check::Sequence | Check::Link))));
}

#[test]
fn other_chain_is_refused() {
    let events = seal(
        &ChainId::new("elsewhere").unwrap(),
        None,
        &[draft(0)],
        Timestamp::now(),
    )
    .unwrap();
    assert_eq!(first_violation(&events), Some((0, Check::Chain)));
}

#[test]
fn time_going_backwards_is_refused() {
    let first = seal(
        &chain(),
        None,
        &[draft(0)],
        "2026-01-02T00:00:00.000000Z".parse().unwrap(),
    )
    .unwrap();
    // A forger who lies about the head's time can seal an earlier `at`.
    let lying_head = Head {
        seq: 0,
        hash: first[0].hash,
        at: "2026-01-01T00:00:00.000000Z".parse().unwrap(),
    };
    let second = seal(
        &chain(),
        Some(&lying_head),
        &[draft(1)],
        "2026-01-01T00:00:00.000000Z".parse().unwrap(),
    )
    .unwrap();
    let events: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(first_violation(&events), Some((1, Check::Time)));
}

#[test]
fn rewritten_bytes_with_recomputed_hash_break_the_link() {
    let mut events = events();
    let text = String::from_utf8(events[2].canonical.clone()).unwrap();
    events[2].canonical = text.replace("\"note\":2", "\"note\":3").into_bytes();
    rehash(&mut events[2]);
    assert_eq!(first_violation(&events), Some((3, Check::Link)));
}

#[test]
fn resume_continues_from_a_verified_head() {
    let events = events();
    let head = Head {
        seq: 4,
        hash: events[4].hash,
        at: events[4].columns.at.parse().unwrap(),
    };
    let mut verifier = Verifier::resume(chain(), &head);
    for e in &events[5..] {
        verifier.check(e).unwrap();
    }
    assert_eq!(verifier.summary().events, 5);
    let mut wrong = Verifier::resume(
        chain(),
        &Head {
            hash: Digest::ZERO,
            ..head
        },
    );
    assert_eq!(wrong.check(&events[5]).unwrap_err().check, Check::Link);
}

#[test]
fn expect_head_catches_a_truncated_chain() {
    let events = events();
    let mut verifier = Verifier::new(chain());
    for e in &events[..7] {
        verifier.check(e).unwrap();
    }
    let report = verifier.report(None);
    assert!(report.clone().expect_head(&events[6].hash).is_intact());
    let truncated = report.expect_head(&events[9].hash);
    assert_eq!(truncated.violation.unwrap().check, Check::Head);
}

#[test]
fn violation_says_what_was_expected_and_found() {
    let mut events = events();
    events.remove(2);
    let mut verifier = Verifier::new(chain());
    verifier.check(&events[0]).unwrap();
    verifier.check(&events[1]).unwrap();
    let v = verifier.check(&events[2]).unwrap_err();
    assert_eq!(
        v.to_string(),
        "seq 2: sequence check failed: expected seq 2, found seq 3 (event 2 is missing)"
    );
}

/// A read-only store over events in hand, to feed `verify_store` a tampered
/// chain long enough for its multi-threaded pages.
#[derive(Debug)]
struct Recorded(Vec<Event>, ChainId);

#[async_trait::async_trait]
impl syndicate_core::EventStore for Recorded {
    fn chain(&self) -> &ChainId {
        &self.1
    }
    async fn append(&self, _: &[EventDraft]) -> Result<Vec<Event>, syndicate_core::StoreError> {
        Err(syndicate_core::StoreError::Other {
            store: "recorded",
            source: "read-only".into(),
        })
    }
    async fn head(&self) -> Result<Option<Head>, syndicate_core::StoreError> {
        Ok(None)
    }
    async fn read(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Event>, syndicate_core::StoreError> {
        Ok(self
            .0
            .iter()
            .skip(from as usize)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn query(
        &self,
        _: &syndicate_core::Query,
    ) -> Result<Vec<Event>, syndicate_core::StoreError> {
        Ok(Vec::new())
    }
}

fn long_chain(n: usize) -> Vec<Event> {
    let drafts: Vec<_> = (0..n).map(draft).collect();
    seal(&chain(), None, &drafts, Timestamp::now()).unwrap()
}

#[test]
fn verify_store_finds_the_first_bad_seq_in_long_pages() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = long_chain(3000);
    let intact = runtime
        .block_on(syndicate_core::verify_store(
            &Recorded(events.clone(), chain()),
            None,
        ))
        .unwrap();
    assert!(intact.is_intact());
    assert_eq!(intact.summary.events, 3000);
    assert_eq!(intact.summary.head.unwrap().hash, events[2999].hash);

    for bad in [1, 999, 1000, 1777, 2999] {
        let mut tampered = events.clone();
        tampered[bad].canonical[10] ^= 0x20;
        let report = runtime
            .block_on(syndicate_core::verify_store(
                &Recorded(tampered, chain()),
                None,
            ))
            .unwrap();
        let v = report.violation.unwrap();
        assert_eq!(
            (v.seq, v.check),
            (bad as u64, Check::Hash),
            "tampered at {bad}"
        );
        assert_eq!(
            report.summary.events, bad as u64,
            "verified up to the bad seq"
        );
    }
}
