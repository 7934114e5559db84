//! The store conformance kit: async checks every [`EventStore`] passes.
//!
//! Each check takes a fresh, empty store for one chain and panics with a
//! message naming what broke. A backend runs them all with
//! [`conformance_tests!`](crate::conformance_tests), which expands to one
//! `#[tokio::test]` per check (the crate using it needs `tokio` with the
//! `macros` and `rt-multi-thread` features as a dev-dependency):
//!
//! ```ignore
//! syndicate_core::conformance_tests!(memory, { syndicate_core::MemoryStore::new(
//!     syndicate_core::ChainId::new("conformance").unwrap()) });
//! ```
//!
//! The block is evaluated inside each async test, so it may `.await` and may
//! `return` early (for example to skip when a server is absent). There are no
//! opt-outs: in an audit log every guarantee holds for every backend.
//!
//! The [`attacks`] run the gate against a storage someone edits behind its
//! back, through a [`Fixture`] that opens several handles on one storage and
//! applies [`RawEdit`]s; a backend runs them with
//! [`attack_tests!`](crate::attack_tests).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use serde_json::{Value, json};

use crate::event::{Actor, Event, EventDraft, EventKind};
use crate::store::{EventStore, EventStoreExt, Order, Query, StoreError};
use crate::verify::verify_store;

pub mod attacks;
pub mod tamper;
mod tree;
pub use attacks::{ATTACKS, Column, Fixture, RawEdit};
pub use tree::{tree_nodes_are_kept_as_written, tree_proofs_verify_after_appends};

/// The names of every check, in the order the macro runs them.
pub const CHECKS: &[&str] = &[
    "empty_store",
    "round_trip",
    "reads_in_pages",
    "bounded_reads_stop_at_the_byte_cap",
    "batch_is_atomic",
    "bad_drafts_write_nothing",
    "single_use_keys",
    "single_use_race_has_one_winner",
    "concurrent_appenders_keep_one_chain",
    "time_never_goes_backwards",
    "queries",
    "query_order_and_paging",
    "verifies_everything_written",
    "tree_nodes_are_kept_as_written",
    "tree_proofs_verify_after_appends",
];

/// Expands to one `#[tokio::test]` per conformance check, in a module named
/// `$module`; `$make` is a block evaluated in each test to build a fresh,
/// empty store.
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $make:block) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_test!(
                $make,
                empty_store,
                round_trip,
                reads_in_pages,
                bounded_reads_stop_at_the_byte_cap,
                batch_is_atomic,
                bad_drafts_write_nothing,
                single_use_keys,
                single_use_race_has_one_winner,
                concurrent_appenders_keep_one_chain,
                time_never_goes_backwards,
                queries,
                query_order_and_paging,
                verifies_everything_written,
                tree_nodes_are_kept_as_written,
                tree_proofs_verify_after_appends
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ($make:block, $($check:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make;
                $crate::conformance::$check(&store).await;
            }
        )*
    };
}

fn draft(session: &str, kind: EventKind, actor: &str, body: Value) -> EventDraft {
    EventDraft::new(session, kind, Actor::human(actor), body)
}

fn note(session: &str, n: usize) -> EventDraft {
    draft(
        session,
        EventKind::Annotation,
        "tester",
        json!({ "note": n }),
    )
}

/// Polls borrowed futures concurrently until all finish.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn all_events(store: &dyn EventStore) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let page = store
            .read(events.len() as u64, 500)
            .await
            .expect("read must succeed");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

async fn assert_intact(store: &dyn EventStore, expected_events: u64) {
    let report = verify_store(store, None)
        .await
        .expect("verify must read the store");
    assert!(
        report.is_intact(),
        "{store:?}: chain must verify, found {:?}",
        report.violation
    );
    assert_eq!(
        report.summary.events, expected_events,
        "{store:?}: verified event count"
    );
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// An empty store has no head, reads nothing and verifies.
pub async fn empty_store(store: &dyn EventStore) {
    assert_eq!(
        store.head().await.expect("head"),
        None,
        "empty store has no head"
    );
    assert!(store.read(0, 10).await.expect("read").is_empty());
    assert!(store.query(&Query::all()).await.expect("query").is_empty());
    assert!(store.append(&[]).await.expect("empty batch").is_empty());
    assert_eq!(
        store.head().await.expect("head"),
        None,
        "empty batch writes nothing"
    );
    assert_intact(store, 0).await;
}

/// What `append` returns is what `read` and `head` give back, byte for byte.
pub async fn round_trip(store: &dyn EventStore) {
    let big = "é😀\u{2028}".repeat(20_000);
    let drafts = vec![
        note("s", 0),
        draft(
            "s",
            EventKind::ActionProposed,
            "agent-1",
            json!({"request_id": "r-1", "big": big}),
        )
        .with_once("proposed:r-1"),
        draft(
            "s2",
            EventKind::Annotation,
            "bob",
            json!({"n": [1, 2.5, -0.0, 1e21, "x"], "t": true}),
        ),
    ];
    let written = store.append(&drafts).await.expect("append");
    assert_eq!(
        seqs(&written),
        vec![0, 1, 2],
        "seqs start at 0 without gaps"
    );
    let read = store.read(0, 10).await.expect("read");
    assert_eq!(
        read, written,
        "{store:?}: read must return exactly what append returned"
    );
    let head = store.head().await.expect("head").expect("a head");
    assert_eq!((head.seq, head.hash), (2, written[2].hash));
    assert_eq!(head.at.to_string(), written[2].columns.at);
    for (draft, event) in drafts.iter().zip(&written) {
        let envelope = event.envelope().expect("a v1 envelope");
        assert_eq!(
            crate::jcs::to_canonical_vec(&envelope.body).expect("canonical"),
            crate::jcs::to_canonical_vec(&draft.body).expect("canonical"),
            "body survives in canonical form"
        );
        assert_eq!(envelope.chain, *store.chain());
        assert_eq!(event.columns.once, draft.once);
    }
    assert_eq!(written[1].columns.request_id.as_deref(), Some("r-1"));
    let more = store.append_one(note("s", 3)).await.expect("append after");
    assert_eq!(more.seq, 3);
    assert_eq!(
        more.envelope().expect("envelope").prev,
        written[2].hash,
        "prev links the head"
    );
    assert_intact(store, 4).await;
}

/// `read` pages cover the chain in order, and reading past the head is
/// empty; a store whose pages reach the end returns full pages before it.
pub async fn reads_in_pages(store: &dyn EventStore) {
    let drafts: Vec<_> = (0..25).map(|n| note("s", n)).collect();
    store.append(&drafts).await.expect("append");
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let page = store.read(from, 7).await.expect("read");
        assert!(page.len() <= 7, "read honours its limit");
        if page.is_empty() {
            break;
        }
        from = page.last().map_or(from, |e| e.seq + 1);
        seen.extend(page);
    }
    assert_eq!(seqs(&seen), (0..25).collect::<Vec<_>>());
    assert!(store.read(25, 10).await.expect("read").is_empty());
    assert_eq!(
        seqs(&store.read(20, 100).await.expect("read")),
        vec![20, 21, 22, 23, 24]
    );
    // A store that says its pages reach the end never returns a short page
    // before the end: scans trust a short page as the end.
    if store.pages_reach_the_end() {
        for from in [0u64, 3, 24] {
            for limit in [1usize, 2, 7, 25, 26] {
                let left = usize::try_from(25 - from).expect("small");
                assert_eq!(
                    store.read(from, limit).await.expect("read").len(),
                    limit.min(left),
                    "read({from}, {limit}) of a store whose pages reach the end"
                );
                assert_eq!(
                    store
                        .read_bounded(from, limit, usize::MAX)
                        .await
                        .expect("read")
                        .len(),
                    limit.min(left),
                    "read_bounded({from}, {limit}) of a store whose pages reach the end"
                );
            }
        }
    }
}

/// A bounded read stops once the page holds the asked bytes (never below
/// one event), so scans of large events stay small in memory.
pub async fn bounded_reads_stop_at_the_byte_cap(store: &dyn EventStore) {
    let blob = "b".repeat(100_000);
    let drafts: Vec<EventDraft> = (0..5)
        .map(|n| {
            draft(
                "s",
                EventKind::Annotation,
                "tester",
                json!({ "note": n, "blob": blob }),
            )
        })
        .collect();
    store.append(&drafts).await.expect("append");
    let size = all_events(store).await[0].canonical.len();
    for (max_bytes, expected) in [
        (1, 1),
        (size, 1),
        (size + 1, 2),
        (3 * size, 3),
        (usize::MAX, 5),
    ] {
        let page = store
            .read_bounded(0, 1000, max_bytes)
            .await
            .expect("bounded read");
        assert_eq!(
            seqs(&page),
            (0..expected).collect::<Vec<u64>>(),
            "{store:?}: read_bounded(0, 1000, {max_bytes}) with events of {size} bytes"
        );
    }
    let page = store.read_bounded(3, 1, usize::MAX).await.expect("read");
    assert_eq!(seqs(&page), [3], "{store:?}: the count still bounds a page");
}

/// A batch with one bad draft, or one used key, writes nothing at all.
pub async fn batch_is_atomic(store: &dyn EventStore) {
    store
        .append(&[note("s", 0).with_once("k-used")])
        .await
        .expect("append");
    let before = store.head().await.expect("head");
    let bad = draft(
        "s",
        EventKind::Annotation,
        "t",
        json!({"n": 9_007_199_254_740_993u64}),
    );
    let result = store.append(&[note("s", 1), bad, note("s", 2)]).await;
    assert!(
        matches!(result, Err(StoreError::InvalidDraft(_))),
        "{store:?}: a bad draft is InvalidDraft, got {result:?}"
    );
    let result = store
        .append(&[
            note("s", 1).with_once("k-new"),
            note("s", 2).with_once("k-used"),
        ])
        .await;
    assert!(
        matches!(&result, Err(StoreError::AlreadyUsed { key }) if key == "k-used"),
        "{store:?}: a used key is AlreadyUsed, got {result:?}"
    );
    assert_eq!(
        store.head().await.expect("head"),
        before,
        "nothing of either batch was written"
    );
    // The new key of the refused batch was not consumed.
    store
        .append(&[note("s", 3).with_once("k-new")])
        .await
        .expect("k-new is still free");
    assert_intact(store, 2).await;
}

/// Drafts the sealer refuses are `InvalidDraft` and leave the store unchanged.
pub async fn bad_drafts_write_nothing(store: &dyn EventStore) {
    let mut empty_session = note("s", 0);
    empty_session.session.clear();
    let mut empty_actor = note("s", 0);
    empty_actor.actor.id.clear();
    let mut array_body = note("s", 0);
    array_body.body = json!([1, 2]);
    let numeric_request = draft("s", EventKind::Annotation, "t", json!({"request_id": 7}));
    let long_key = note("s", 0).with_once("k".repeat(300));
    let too_large = draft(
        "s",
        EventKind::Annotation,
        "t",
        json!({"x": "y".repeat(5 << 20)}),
    );
    let twice = [
        note("s", 0).with_once("same"),
        note("s", 1).with_once("same"),
    ];
    let cases: Vec<(&str, Vec<EventDraft>)> = vec![
        ("empty session", vec![empty_session]),
        ("empty actor", vec![empty_actor]),
        ("array body", vec![array_body]),
        ("numeric request_id", vec![numeric_request]),
        ("300-byte once key", vec![long_key]),
        ("5 MiB event", vec![too_large]),
        ("one key twice in a batch", twice.to_vec()),
    ];
    for (what, drafts) in cases {
        let result = store.append(&drafts).await;
        assert!(
            matches!(result, Err(StoreError::InvalidDraft(_))),
            "{store:?}: {what} must be InvalidDraft, got {result:?}"
        );
    }
    assert_eq!(
        store.head().await.expect("head"),
        None,
        "nothing was written"
    );
    assert!(store.read(0, 10).await.expect("read").is_empty());
}

/// A single-use key is accepted once per chain.
pub async fn single_use_keys(store: &dyn EventStore) {
    let start = |r: &str| {
        draft(
            "s",
            EventKind::ExecutionStarted,
            "gate",
            json!({"request_id": r}),
        )
        .with_once(format!("execution.started:{r}"))
    };
    store.append(&[start("r-1")]).await.expect("first use");
    let again = store.append(&[start("r-1")]).await;
    assert!(
        matches!(&again, Err(StoreError::AlreadyUsed { key }) if key == "execution.started:r-1"),
        "{store:?}: second use must be AlreadyUsed, got {again:?}"
    );
    assert!(
        !again.as_ref().err().is_some_and(StoreError::is_retryable),
        "a used key is not retryable"
    );
    store
        .append(&[start("r-2")])
        .await
        .expect("another key is free");
    store
        .append(&[note("s", 0), note("s", 1)])
        .await
        .expect("events without keys never conflict");
    let started = store
        .query(&Query {
            kind: Some(EventKind::ExecutionStarted),
            ..Query::all()
        })
        .await
        .expect("query");
    assert_eq!(started.len(), 2);
    assert_intact(store, 4).await;
}

/// Concurrent appends of one key: exactly one wins, the rest are `AlreadyUsed`.
pub async fn single_use_race_has_one_winner(store: &dyn EventStore) {
    for round in 0..5 {
        let key = format!("execution.started:race-{round}");
        let attempts: Vec<_> = (0..6)
            .map(|i| {
                let batch = vec![note("race", i), note("race", i).with_once(key.clone())];
                async move { store.append(&batch).await }
            })
            .collect();
        let results = join_all(attempts).await;
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            winners, 1,
            "{store:?}: exactly one racer wins key {key}: {results:?}"
        );
        for result in &results {
            if let Err(e) = result {
                assert!(
                    matches!(e, StoreError::AlreadyUsed { .. }),
                    "losers get AlreadyUsed, got {e:?}"
                );
            }
        }
    }
    assert_intact(store, 10).await;
}

/// Many concurrent appenders produce one linear chain holding all their events.
pub async fn concurrent_appenders_keep_one_chain(store: &dyn EventStore) {
    const WRITERS: usize = 8;
    const BATCHES: usize = 20;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| async move {
            let session = format!("writer-{w}");
            for b in 0..BATCHES {
                let size = 1 + b % 3;
                let batch: Vec<_> = (0..size).map(|i| note(&session, b * 10 + i)).collect();
                let written = store.append(&batch).await.expect("concurrent append");
                let s = seqs(&written);
                assert!(
                    s.windows(2).all(|w| w[1] == w[0] + 1),
                    "a batch is contiguous: {s:?}"
                );
            }
        })
        .collect();
    join_all(writers).await;
    let per_writer: usize = (0..BATCHES).map(|b| 1 + b % 3).sum();
    let total = (WRITERS * per_writer) as u64;
    let events = all_events(store).await;
    assert_eq!(
        seqs(&events),
        (0..total).collect::<Vec<_>>(),
        "{store:?}: no gaps, no forks"
    );
    for w in 0..WRITERS {
        let mine = events
            .iter()
            .filter(|e| e.columns.session == format!("writer-{w}"))
            .count();
        assert_eq!(mine, per_writer, "every event of writer {w} is present");
    }
    assert_intact(store, total).await;
}

/// `at` never decreases along the chain.
pub async fn time_never_goes_backwards(store: &dyn EventStore) {
    for n in 0..20 {
        store.append(&[note("s", n)]).await.expect("append");
    }
    let events = all_events(store).await;
    let ats: Vec<_> = events.iter().map(|e| e.columns.at.clone()).collect();
    assert!(
        ats.windows(2).all(|w| w[0] <= w[1]),
        "{store:?}: at order {ats:?}"
    );
    for at in &ats {
        assert!(
            at.parse::<crate::Timestamp>().is_ok(),
            "at column {at:?} has the one text form"
        );
    }
}

async fn seed_for_queries(store: &dyn EventStore) -> Vec<Event> {
    let batches = vec![
        vec![draft(
            "s1",
            EventKind::ActionProposed,
            "agent-a",
            json!({"request_id": "req-1"}),
        )],
        vec![draft(
            "s1",
            EventKind::ActionApproved,
            "bob",
            json!({"request_id": "req-1"}),
        )],
        vec![draft(
            "s2",
            EventKind::ActionProposed,
            "agent-b",
            json!({"request_id": "req-2"}),
        )],
        vec![
            draft(
                "s2",
                EventKind::ActionDenied,
                "carol",
                json!({"request_id": "req-2"}),
            ),
            draft(
                "s1",
                EventKind::Annotation,
                "bob",
                json!({"note": "no request"}),
            ),
        ],
        vec![draft(
            "s1",
            EventKind::ExecutionStarted,
            "agent-a",
            json!({"request_id": "req-1"}),
        )],
    ];
    for batch in batches {
        store.append(&batch).await.expect("append");
    }
    all_events(store).await
}

async fn query_seqs(store: &dyn EventStore, query: Query) -> Vec<u64> {
    seqs(&store.query(&query).await.expect("query"))
}

/// Every filter: session, kind, actor, request id, time range, and combinations.
pub async fn queries(store: &dyn EventStore) {
    let events = seed_for_queries(store).await;
    let q = Query::all;
    assert_eq!(query_seqs(store, q()).await, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        query_seqs(
            store,
            Query {
                session: Some("s1".into()),
                ..q()
            }
        )
        .await,
        vec![0, 1, 4, 5]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                kind: Some(EventKind::ActionProposed),
                ..q()
            }
        )
        .await,
        vec![0, 2]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                actor: Some("bob".into()),
                ..q()
            }
        )
        .await,
        vec![1, 4]
    );
    assert_eq!(query_seqs(store, Query::request("req-2")).await, vec![2, 3]);
    assert_eq!(
        query_seqs(store, Query::request("req-9")).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                session: Some("s1".into()),
                kind: Some(EventKind::ActionProposed),
                ..q()
            }
        )
        .await,
        vec![0]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                actor: Some("agent-a".into()),
                request_id: Some("req-1".into()),
                ..q()
            }
        )
        .await,
        vec![0, 5]
    );
    // Time range: since is inclusive, until exclusive, on the `at` of events.
    let at = |i: usize| {
        events[i]
            .columns
            .at
            .parse::<crate::Timestamp>()
            .expect("timestamp")
    };
    let (since, until) = (at(1), at(5));
    let expected: Vec<u64> = events
        .iter()
        .filter(|e| {
            let t = e.columns.at.parse::<crate::Timestamp>().expect("timestamp");
            t >= since && t < until
        })
        .map(|e| e.seq)
        .collect();
    assert!(expected.contains(&1) && !expected.contains(&5));
    assert_eq!(
        query_seqs(
            store,
            Query {
                since: Some(since),
                until: Some(until),
                ..q()
            }
        )
        .await,
        expected,
        "{store:?}: since/until"
    );
    let future = at(5).plus_seconds(3600);
    assert!(
        query_seqs(
            store,
            Query {
                since: Some(future),
                ..q()
            }
        )
        .await
        .is_empty()
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                until: Some(future),
                ..q()
            }
        )
        .await
        .len(),
        6
    );
    let returned = store.query(&Query::request("req-1")).await.expect("query");
    assert_eq!(
        returned,
        vec![events[0].clone(), events[1].clone(), events[5].clone()],
        "query returns whole events"
    );
}

/// Ordering, limits and seq bounds for paging.
pub async fn query_order_and_paging(store: &dyn EventStore) {
    seed_for_queries(store).await;
    let q = Query::all;
    assert_eq!(
        query_seqs(store, Query { limit: 2, ..q() }).await,
        vec![0, 1]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                order: Order::Descending,
                limit: 2,
                ..q()
            }
        )
        .await,
        vec![5, 4]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                after_seq: Some(3),
                ..q()
            }
        )
        .await,
        vec![4, 5]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                before_seq: Some(3),
                order: Order::Descending,
                ..q()
            }
        )
        .await,
        vec![2, 1, 0]
    );
    assert_eq!(
        query_seqs(
            store,
            Query {
                session: Some("s1".into()),
                order: Order::Descending,
                limit: 1,
                ..q()
            }
        )
        .await,
        vec![5],
        "latest event of a session"
    );
    assert_eq!(
        query_seqs(store, Query { limit: 0, ..q() }).await,
        Vec::<u64>::new()
    );
    // Page through s1 two at a time.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = query_seqs(
            store,
            Query {
                session: Some("s1".into()),
                after_seq: after,
                limit: 2,
                ..q()
            },
        )
        .await;
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![0, 1], vec![4, 5]]);
}

/// Everything written verifies, and the verified head is the store's head.
pub async fn verifies_everything_written(store: &dyn EventStore) {
    let mut total = 0;
    for n in 0..30 {
        let batch: Vec<_> = (0..(n % 4 + 1))
            .map(|i| note(&format!("s{}", n % 3), i))
            .collect();
        total += batch.len() as u64;
        store.append(&batch).await.expect("append");
    }
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{store:?}: {:?}", report.violation);
    assert_eq!(report.summary.events, total);
    let head = store.head().await.expect("head").expect("a head");
    assert_eq!(
        report.summary.head,
        Some(head),
        "verified head is the store's head"
    );
    let from_middle = verify_store(store, None).await.expect("verify");
    assert_eq!(from_middle, report, "verification is deterministic");
}
