//! The tamper matrix, written once and run by every backend through its
//! [`Fixture`]: each way someone with write access to the storage can edit
//! rows (a byte of the sealed bytes, a query column, a deleted, swapped or
//! inserted row, an event rewritten with its hash recomputed) must make
//! [`verify_store`] name the first seq it can no longer trust and the check
//! that failed.

use serde_json::json;

use super::{Column, Fixture, RawEdit};
use crate::digest::{Digest, tags};
use crate::event::{Actor, ChainId, Event, EventDraft, EventKind};
use crate::seal::{Head, canonical_envelope, seal};
use crate::store::EventStore;
use crate::timestamp::Timestamp;
use crate::verify::{Check, verify_store};

/// Events written before each edit.
const EVENTS: u64 = 12;

fn entry(n: u64) -> EventDraft {
    EventDraft::new(
        "tamper",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "note": format!("entry-{n}"), "request_id": format!("req-{n}") }),
    )
}

/// Opens a handle and appends [`EVENTS`] events, one append each.
async fn filled(fixture: &dyn Fixture) -> Vec<Event> {
    let store = fixture.open().await.expect("open");
    let mut events = Vec::new();
    for n in 0..EVENTS {
        events.extend(store.append(&[entry(n)]).await.expect("append"));
    }
    let report = verify_store(store.as_ref(), None).await.expect("verify");
    assert!(
        report.is_intact(),
        "the untouched chain verifies: {:?}",
        report.violation
    );
    events
}

/// Verifies through a new handle and checks the first untrusted seq and
/// the check that failed.
async fn assert_broken_at(fixture: &dyn Fixture, seq: u64, check: Check) {
    let store = fixture.open().await.expect("open after the edit");
    let report = verify_store(store.as_ref(), None)
        .await
        .expect("verification runs to a verdict");
    let violation = report
        .violation
        .unwrap_or_else(|| panic!("an edit at seq {seq} must not verify as intact"));
    assert_eq!(
        (violation.seq, violation.check),
        (seq, check),
        "{violation}"
    );
}

/// One byte of an event's sealed bytes changed (the case of one letter),
/// its hash column left alone: the hash check fails at that seq.
pub async fn tamper_flipped_byte_fails_the_hash(fixture: &dyn Fixture) {
    let events = filled(fixture).await;
    let mut canonical = events[7].canonical.clone();
    let at = canonical
        .windows(7)
        .position(|w| w == b"entry-7")
        .expect("the note text");
    canonical[at] ^= 0x20;
    fixture
        .tamper(RawEdit::SetBytes {
            seq: 7,
            canonical,
            hash: events[7].hash.to_string(),
        })
        .await;
    assert_broken_at(fixture, 7, Check::Hash).await;
}

/// A query column edited with the sealed bytes untouched: the column check
/// names the column, for every column a store keeps. The edits go from the
/// last seq to the first, so each new edit is the one verification names.
pub async fn tamper_edited_columns_fail_the_column_check(fixture: &dyn Fixture) {
    let edits = [
        (10, Column::Session, "someone-else"),
        (8, Column::Kind, "execution.started"),
        (6, Column::Actor, "human:mallory"),
        (4, Column::RequestId, "req-other"),
        (2, Column::At, "2001-01-01T00:00:00.000000Z"),
    ];
    filled(fixture).await;
    for (seq, column, value) in edits {
        fixture
            .tamper(RawEdit::SetColumn {
                seq,
                column,
                value: Some(value.to_owned()),
            })
            .await;
        assert_broken_at(fixture, seq, Check::Column(column.name())).await;
    }
}

/// A row deleted from the middle: the sequence check fails where it was.
pub async fn tamper_deleted_row_fails_the_sequence(fixture: &dyn Fixture) {
    filled(fixture).await;
    fixture.tamper(RawEdit::DeleteRow { seq: 10 }).await;
    assert_broken_at(fixture, 10, Check::Sequence).await;
}

/// Two rows' seq values exchanged: the first of them disagrees with its
/// bytes.
pub async fn tamper_swapped_rows_fail_the_sequence(fixture: &dyn Fixture) {
    filled(fixture).await;
    fixture.tamper(RawEdit::SwapSeqs { a: 3, b: 4 }).await;
    assert_broken_at(fixture, 3, Check::Sequence).await;
}

/// A forged event, correctly sealed on event 9 with its own hash, inserted
/// at seq 10 with the later rows moved up: the forgery itself verifies, the
/// original event 10 (now at 11) does not.
pub async fn tamper_inserted_row_fails_after_the_forgery(fixture: &dyn Fixture) {
    let events = filled(fixture).await;
    let nine = &events[9];
    let head = Head {
        seq: 9,
        hash: nine.hash,
        at: nine.envelope().expect("envelope").at,
    };
    let chain: ChainId = nine.envelope().expect("envelope").chain;
    let forged = EventDraft::new(
        "tamper",
        EventKind::Annotation,
        Actor::human("mallory"),
        json!({ "note": "forged", "request_id": "req-forged" }),
    );
    let event = seal(&chain, Some(&head), &[forged], Timestamp::now())
        .expect("seal")
        .remove(0);
    fixture.tamper(RawEdit::InsertRow { event }).await;
    assert_broken_at(fixture, 11, Check::Sequence).await;
}

/// An event rewritten and its hash recomputed: the next event's `prev`
/// link gives it away.
pub async fn tamper_rewritten_event_fails_the_next_link(fixture: &dyn Fixture) {
    let events = filled(fixture).await;
    let mut six = events[6].envelope().expect("envelope");
    six.body["note"] = json!("rewritten");
    let canonical = canonical_envelope(&six).expect("canonical");
    let hash = Digest::of_canonical(tags::EVENT, &canonical);
    fixture
        .tamper(RawEdit::SetBytes {
            seq: 6,
            canonical,
            hash: hash.to_string(),
        })
        .await;
    assert_broken_at(fixture, 7, Check::Link).await;
}

/// Bytes that hash correctly but are not the canonical form of an
/// envelope (a space added, hash recomputed): a format violation, never
/// accepted as an event.
pub async fn tamper_non_canonical_bytes_fail_the_format(fixture: &dyn Fixture) {
    let events = filled(fixture).await;
    let mut canonical = events[5].canonical.clone();
    canonical.insert(1, b' ');
    let hash = Digest::of_canonical(tags::EVENT, &canonical);
    fixture
        .tamper(RawEdit::SetBytes {
            seq: 5,
            canonical,
            hash: hash.to_string(),
        })
        .await;
    assert_broken_at(fixture, 5, Check::Format).await;
}
