//! Tamper matrix: a store written by `append_load` is edited with plain SQL
//! underneath the library, and `syndicate audit verify` must name the first
//! bad seq and the check that failed (exit 1).

mod common;

use std::path::{Path, PathBuf};

use common::{fill, stderr, stdout, verify};
use rusqlite::{Connection, params};
use serde_json::json;
use syndicate_core::seal::canonical_envelope;
use syndicate_core::{
    Actor, ChainId, Digest, Envelope, EventDraft, EventKind, Head, Timestamp, seal, tags,
};

const EVENTS: u64 = 20;

/// A pristine store, copied for each case.
fn pristine(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("pristine.db");
    fill(&path, EVENTS, 1);
    path
}

fn copy(pristine: &Path, name: &str) -> PathBuf {
    let dir = pristine.parent().expect("folder");
    let target = dir.join(format!("{name}.db"));
    std::fs::copy(pristine, &target).expect("copy the store");
    let wal = dir.join("pristine.db-wal");
    if wal.exists() {
        std::fs::copy(&wal, dir.join(format!("{name}.db-wal"))).expect("copy the wal");
    }
    target
}

fn envelope_at(conn: &Connection, seq: i64) -> Envelope {
    let bytes: Vec<u8> = conn
        .query_row("SELECT canonical FROM events WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .expect("row");
    serde_json::from_slice(&bytes).expect("envelope")
}

/// Runs verify on a tampered copy and checks the reported seq and check.
fn assert_broken_at(path: &Path, extra: &[&str], seq: u64, check: &str) {
    let out = verify(path, extra);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify must exit 1 for {}: {text}{}",
        path.display(),
        stderr(&out)
    );
    let expected = format!("BROKEN at seq {seq}: {check} check failed: expected ");
    assert!(
        text.starts_with(&expected),
        "{}: expected {expected:?}, got {text:?}",
        path.display()
    );
    assert!(stderr(&out).contains(&format!("first bad seq {seq}")));
}

fn edit(path: &Path, sql: impl FnOnce(&Connection)) {
    let conn = Connection::open(path).expect("open with rusqlite");
    sql(&conn);
}

#[test]
fn verify_names_the_first_tampered_seq_and_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pristine = pristine(&dir);

    let out = verify(&pristine, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!(
        "intact: {EVENTS} events on chain \"load\", seq 0..{}",
        EVENTS - 1
    )));

    // A byte of the canonical bytes flipped: the hash no longer matches.
    let path = copy(&pristine, "flipped_byte");
    edit(&path, |c| {
        let mut bytes: Vec<u8> = c
            .query_row("SELECT canonical FROM events WHERE seq = 7", [], |r| {
                r.get(0)
            })
            .expect("row 7");
        let at = bytes
            .windows(4)
            .position(|w| w == b"load")
            .expect("a text to flip");
        bytes[at] ^= 0x20;
        c.execute(
            "UPDATE events SET canonical = ?1 WHERE seq = 7",
            params![bytes],
        )
        .expect("update");
    });
    assert_broken_at(&path, &[], 7, "hash");

    // An extracted column changed: it no longer equals the field inside.
    let path = copy(&pristine, "session_column");
    edit(&path, |c| {
        c.execute_batch("UPDATE events SET session = 'someone-else' WHERE seq = 5")
            .expect("update");
    });
    assert_broken_at(&path, &[], 5, "column session");

    let path = copy(&pristine, "at_column");
    edit(&path, |c| {
        c.execute_batch("UPDATE events SET at = '2001-01-01T00:00:00.000000Z' WHERE seq = 9")
            .expect("update");
    });
    assert_broken_at(&path, &[], 9, "column at");

    // A middle row deleted: a gap in the sequence.
    let path = copy(&pristine, "deleted_row");
    edit(&path, |c| {
        c.execute_batch("DELETE FROM events WHERE seq = 10")
            .expect("delete");
    });
    assert_broken_at(&path, &[], 10, "sequence");

    // Two rows' seq swapped: the seq column disagrees with the bytes.
    let path = copy(&pristine, "swapped_rows");
    edit(&path, |c| {
        c.execute_batch(
            "UPDATE events SET seq = -1 WHERE seq = 3;
             UPDATE events SET seq = 3 WHERE seq = 4;
             UPDATE events SET seq = 4 WHERE seq = -1;",
        )
        .expect("swap");
    });
    assert_broken_at(&path, &[], 3, "sequence");

    // A forged event inserted at seq 10, correctly sealed on event 9 with a
    // recomputed hash, the later rows moved up one: the forgery itself
    // verifies, and the original event 10, now at 11, does not.
    let path = copy(&pristine, "inserted_row");
    edit(&path, |c| {
        let nine = envelope_at(c, 9);
        let hash9: String = c
            .query_row("SELECT hash FROM events WHERE seq = 9", [], |r| r.get(0))
            .expect("row 9");
        let head = Head {
            seq: 9,
            hash: hash9.parse().expect("hash"),
            at: nine.at,
        };
        let forged = EventDraft::new(
            "load-0",
            EventKind::Annotation,
            Actor::agent("append_load"),
            json!({"note": "forged", "request_id": "forged"}),
        );
        let chain = ChainId::new("load").expect("chain");
        let event = seal(&chain, Some(&head), &[forged], Timestamp::now())
            .expect("seal")
            .remove(0);
        c.execute_batch(
            "UPDATE events SET seq = -(seq + 1) WHERE seq >= 10;
             UPDATE events SET seq = -seq WHERE seq < 0;",
        )
        .expect("shift");
        let col = &event.columns;
        c.execute(
            "INSERT INTO events VALUES ('load', 10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
            params![
                event.hash.to_string(),
                event.canonical,
                col.at,
                col.session,
                col.kind,
                col.actor,
                col.request_id
            ],
        )
        .expect("insert");
    });
    assert_broken_at(&path, &[], 11, "sequence");

    // An event rewritten with its own hash recomputed: the next event's
    // prev link gives it away.
    let path = copy(&pristine, "rewritten_event");
    edit(&path, |c| {
        let mut six = envelope_at(c, 6);
        six.body["note"] = json!("rewritten");
        let bytes = canonical_envelope(&six).expect("canonical");
        let hash = Digest::of_canonical(tags::EVENT, &bytes);
        c.execute(
            "UPDATE events SET canonical = ?1, hash = ?2 WHERE seq = 6",
            params![bytes, hash.to_string()],
        )
        .expect("update");
    });
    assert_broken_at(&path, &[], 7, "prev link");

    // The chain id changed on every row: the bytes name another chain.
    let path = copy(&pristine, "chain_renamed");
    edit(&path, |c| {
        c.execute_batch("UPDATE events SET chain = 'forged'")
            .expect("update");
    });
    assert_broken_at(&path, &[], 0, "chain");

    // One row moved to another chain: a gap in this one.
    let path = copy(&pristine, "row_moved");
    edit(&path, |c| {
        c.execute_batch("UPDATE events SET chain = 'other' WHERE seq = 13")
            .expect("update");
    });
    assert_broken_at(&path, &["--chain", "load"], 13, "sequence");

    // A hash column that is not a digest: the row itself is unreadable.
    let path = copy(&pristine, "bad_hash_text");
    edit(&path, |c| {
        c.execute_batch("UPDATE events SET hash = 'not-a-digest' WHERE seq = 12")
            .expect("update");
    });
    assert_broken_at(&path, &[], 12, "row");

    // The last events cut off: only a head recorded elsewhere shows it.
    let path = copy(&pristine, "truncated");
    let head: String = Connection::open(&pristine)
        .expect("open")
        .query_row(
            "SELECT hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("head");
    edit(&path, |c| {
        c.execute_batch("DELETE FROM events WHERE seq >= 18")
            .expect("delete");
    });
    assert_eq!(verify(&path, &[]).status.code(), Some(0));
    assert_broken_at(&path, &["--head", &head], 17, "head");

    // The pristine store was never touched.
    assert_eq!(verify(&pristine, &["--head", &head]).status.code(), Some(0));
}
