//! The PostgreSQL server restarted (`pg_ctl restart`) while appender
//! processes run: they get clean, retryable errors, resume once the server is
//! back, every acknowledged event is present, and the chain verifies.
//!
//! Alone in its test binary, so the restart cannot disturb other tests.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{acked, append_load, run, stderr, stdout, syndicate, wait_until};
use sqlx::{Connection, PgConnection};
use syndicate_store_postgres::testing::{fresh_database, pg_ctl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_survive_a_server_restart_and_lose_nothing_acknowledged() {
    const TEST: &str = "appenders_survive_a_server_restart";
    let Some(pg_ctl) = pg_ctl(TEST) else {
        return;
    };
    let Some(url) = fresh_database(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("acks.txt");
    let appenders = append_load()
        .args(["--store", &url, "--events", "600", "--processes", "4"])
        .args(["--retry-secs", "120", "--ack-log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start append_load");

    wait_until(
        "200 events are acknowledged",
        Duration::from_secs(120),
        || acked(&log).len() >= 200,
    );
    let restart = Command::new(&pg_ctl)
        .args(["restart", "-m", "fast", "-w", "-t", "60"])
        .stdout(Stdio::null())
        .output()
        .expect("run pg_ctl");
    assert!(
        restart.status.success(),
        "pg_ctl restart failed: {}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let before_restart_done = acked(&log).len();

    let out = appenders.wait_with_output().expect("wait for append_load");
    let errors = stderr(&out);
    assert!(
        out.status.success(),
        "appenders must ride out the restart: {}{errors}",
        stdout(&out)
    );
    assert!(
        errors.contains("store unavailable"),
        "the restart reached the appenders as a typed unavailable error: {errors:?}"
    );
    assert!(!errors.contains("panicked"), "{errors}");
    let unknown = errors.matches("outcome unknown").count();
    let acks = acked(&log);
    assert!(
        acks.len() > before_restart_done,
        "appends resumed after the restart"
    );
    assert_eq!(
        acks.len() + unknown,
        2400,
        "every batch was acknowledged or reported as unknown"
    );

    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect after restart");
    let present: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM events WHERE chain = 'load' ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for seq in &acks {
        assert!(
            present.binary_search(&(*seq as i64)).is_ok(),
            "acknowledged seq {seq} is missing"
        );
    }
    assert_eq!(
        present.len() as u64,
        present.last().map_or(0, |s| *s as u64 + 1)
    );

    let out = run(syndicate().args(["audit", "verify", "--store", &url, "--chain", "load"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
