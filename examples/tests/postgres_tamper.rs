//! Tamper matrix on PostgreSQL rows: a store written by `append_load` is
//! edited with plain SQL underneath the library (append-only triggers
//! switched off, as an owner could), and `syndicate audit verify` must name
//! the first bad seq and the check that failed (exit 1).

mod common;

use common::{append_load, run, stderr, stdout, syndicate};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use syndicate_core::seal::canonical_envelope;
use syndicate_core::{
    Actor, ChainId, Digest, Envelope, EventDraft, EventKind, Head, Timestamp, seal, tags,
};
use syndicate_store_postgres::testing::{admin_url, fresh_database, with_database};

const EVENTS: u64 = 20;

fn verify(url: &str, extra: &[&str]) -> std::process::Output {
    run(syndicate()
        .args(["audit", "verify", "--store", url])
        .args(extra))
}

fn assert_broken_at(url: &str, case: &str, extra: &[&str], seq: u64, check: &str) {
    let out = verify(url, extra);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: verify must exit 1: {text}{}",
        stderr(&out)
    );
    let expected = format!("BROKEN at seq {seq}: {check} check failed: expected ");
    assert!(
        text.starts_with(&expected),
        "{case}: expected {expected:?}, got {text:?}"
    );
}

/// A copy of the pristine database, and a connection to it that bypasses
/// the append-only triggers.
async fn copy(admin: &str, pristine: &str, case: &str) -> (String, PgConnection) {
    let name = format!("{pristine}_{case}");
    let mut conn = PgConnection::connect(admin).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE DATABASE {name} TEMPLATE {pristine}"
    )))
    .execute(&mut conn)
    .await
    .expect("copy the database");
    let url = with_database(admin, &name);
    let mut tamper = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut tamper)
        .await
        .expect("switch triggers off");
    (url, tamper)
}

async fn exec(conn: &mut PgConnection, sql: &'static str) {
    sqlx::raw_sql(sql).execute(conn).await.expect(sql);
}

async fn envelope_at(conn: &mut PgConnection, seq: i64) -> Envelope {
    let bytes: Vec<u8> = sqlx::query_scalar("SELECT canonical FROM events WHERE seq = $1")
        .bind(seq)
        .fetch_one(conn)
        .await
        .expect("row");
    serde_json::from_slice(&bytes).expect("envelope")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_tampered_seq_and_check_on_postgres_rows() {
    const TEST: &str = "verify_names_the_first_tampered_seq_and_check_on_postgres_rows";
    let (Some(admin), Some(pristine_url)) = (admin_url(TEST), fresh_database(TEST).await) else {
        return;
    };
    let pristine = pristine_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let out = run(append_load()
        .args(["--store", &pristine_url, "--events"])
        .arg(EVENTS.to_string()));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = verify(&pristine_url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head: String = {
        let mut c = PgConnection::connect(&pristine_url).await.expect("connect");
        let head = sqlx::query_scalar("SELECT hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .expect("head");
        c.close().await.expect("close");
        head
    };

    // A byte of the canonical bytes flipped: the hash no longer matches.
    let (url, mut c) = copy(&admin, &pristine, "flipped_byte").await;
    let mut bytes: Vec<u8> = sqlx::query_scalar("SELECT canonical FROM events WHERE seq = 7")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let at = bytes.windows(4).position(|w| w == b"load").expect("text");
    bytes[at] ^= 0x20;
    sqlx::query("UPDATE events SET canonical = $1 WHERE seq = 7")
        .bind(&bytes)
        .execute(&mut c)
        .await
        .unwrap();
    assert_broken_at(&url, "flipped_byte", &[], 7, "hash");

    // Extracted columns changed: they no longer equal the fields inside.
    let (url, mut c) = copy(&admin, &pristine, "session_column").await;
    exec(
        &mut c,
        "UPDATE events SET session = 'someone-else' WHERE seq = 5",
    )
    .await;
    assert_broken_at(&url, "session_column", &[], 5, "column session");

    let (url, mut c) = copy(&admin, &pristine, "at_column").await;
    exec(
        &mut c,
        "UPDATE events SET at = '2001-01-01 00:00:00+00' WHERE seq = 9",
    )
    .await;
    assert_broken_at(&url, "at_column", &[], 9, "column at");

    let (url, mut c) = copy(&admin, &pristine, "request_id_column").await;
    exec(&mut c, "UPDATE events SET request_id = NULL WHERE seq = 4").await;
    assert_broken_at(&url, "request_id_column", &[], 4, "column request_id");

    // A middle row deleted: a gap in the sequence.
    let (url, mut c) = copy(&admin, &pristine, "deleted_row").await;
    exec(&mut c, "DELETE FROM events WHERE seq = 10").await;
    assert_broken_at(&url, "deleted_row", &[], 10, "sequence");

    // Two rows' seq swapped: the seq column disagrees with the bytes.
    let (url, mut c) = copy(&admin, &pristine, "swapped_rows").await;
    exec(
        &mut c,
        "UPDATE events SET seq = -1 WHERE seq = 3;
         UPDATE events SET seq = 3 WHERE seq = 4;
         UPDATE events SET seq = 4 WHERE seq = -1;",
    )
    .await;
    assert_broken_at(&url, "swapped_rows", &[], 3, "sequence");

    // A forged event inserted at seq 10, correctly sealed on event 9, the
    // later rows moved up one: the forgery verifies, the original event 10
    // (now at 11) does not.
    let (url, mut c) = copy(&admin, &pristine, "inserted_row").await;
    let nine = envelope_at(&mut c, 9).await;
    let hash9: String = sqlx::query_scalar("SELECT hash FROM events WHERE seq = 9")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let head9 = Head {
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
    let chain = ChainId::new("load").unwrap();
    let event = seal(&chain, Some(&head9), &[forged], Timestamp::now())
        .unwrap()
        .remove(0);
    exec(
        &mut c,
        "UPDATE events SET seq = -(seq + 1) WHERE seq >= 10;
         UPDATE events SET seq = -seq WHERE seq < 0;",
    )
    .await;
    let at_micros = event.columns.at.parse::<Timestamp>().unwrap().unix_micros();
    sqlx::query(
        "INSERT INTO events (chain, seq, hash, canonical, at, session, kind, actor, request_id)
         VALUES ('load', 10, $1, $2, to_timestamp(0) + $3 * interval '1 microsecond', $4, $5, $6, $7)",
    )
    .bind(event.hash.to_string())
    .bind(&event.canonical)
    .bind(at_micros)
    .bind(&event.columns.session)
    .bind(&event.columns.kind)
    .bind(&event.columns.actor)
    .bind(&event.columns.request_id)
    .execute(&mut c)
    .await
    .unwrap();
    assert_broken_at(&url, "inserted_row", &[], 11, "sequence");

    // An event rewritten with its own hash recomputed: the next event's
    // prev link gives it away.
    let (url, mut c) = copy(&admin, &pristine, "rewritten_event").await;
    let mut six = envelope_at(&mut c, 6).await;
    six.body["note"] = json!("rewritten");
    let bytes = canonical_envelope(&six).unwrap();
    let hash = Digest::of_canonical(tags::EVENT, &bytes);
    sqlx::query("UPDATE events SET canonical = $1, hash = $2 WHERE seq = 6")
        .bind(&bytes)
        .bind(hash.to_string())
        .execute(&mut c)
        .await
        .unwrap();
    assert_broken_at(&url, "rewritten_event", &[], 7, "prev link");

    // Every row renamed to another chain: the bytes name the real one.
    let (url, mut c) = copy(&admin, &pristine, "chain_renamed").await;
    exec(&mut c, "UPDATE events SET chain = 'forged'").await;
    assert_broken_at(&url, "chain_renamed", &["--chain", "forged"], 0, "chain");

    // One row moved to another chain: a gap in this one.
    let (url, mut c) = copy(&admin, &pristine, "row_moved").await;
    exec(&mut c, "UPDATE events SET chain = 'other' WHERE seq = 13").await;
    assert_broken_at(&url, "row_moved", &["--chain", "load"], 13, "sequence");

    // A hash column that is not a digest: the row itself is unreadable.
    let (url, mut c) = copy(&admin, &pristine, "bad_hash_text").await;
    exec(
        &mut c,
        "UPDATE events SET hash = 'not-a-digest' WHERE seq = 12",
    )
    .await;
    assert_broken_at(&url, "bad_hash_text", &[], 12, "row");

    // The last events cut off: only a head recorded elsewhere shows it.
    let (url, mut c) = copy(&admin, &pristine, "truncated").await;
    exec(&mut c, "DELETE FROM events WHERE seq >= 18").await;
    assert_eq!(verify(&url, &[]).status.code(), Some(0));
    assert_broken_at(&url, "truncated", &["--head", &head], 17, "head");

    // The pristine database was never touched.
    assert_eq!(
        verify(&pristine_url, &["--head", &head]).status.code(),
        Some(0)
    );
}
