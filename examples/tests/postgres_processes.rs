//! The PostgreSQL store under real OS processes: many appenders at once, and
//! a writer killed with SIGKILL in the middle of its transaction. Each test
//! uses a fresh database on the server named by SYNDICATE_TEST_POSTGRES_URL.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{acked, append_load, run, stderr, stdout, syndicate};
use sqlx::{Connection, PgConnection};
use syndicate_store_postgres::testing::fresh_database;

fn verify(url: &str) -> std::process::Output {
    run(syndicate().args(["audit", "verify", "--store", url, "--chain", "load"]))
}

fn assert_intact(url: &str, events: u64) {
    let out = verify(url);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with(&format!("intact: {events} events")),
        "{}",
        stdout(&out)
    );
}

fn load(url: &str, events: u64, processes: u32, log: &Path) {
    let out = run(append_load()
        .args(["--store", url, "--events"])
        .arg(events.to_string())
        .arg("--processes")
        .arg(processes.to_string())
        .arg("--ack-log")
        .arg(log));
    assert!(
        out.status.success(),
        "append_load failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

async fn seqs(url: &str) -> Vec<i64> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar("SELECT seq FROM events WHERE chain = 'load' ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .expect("seqs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_append_4000_events_to_one_linear_chain() {
    let Some(url) = fresh_database("eight_processes_append_4000_events").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("acks.txt");
    load(&url, 500, 8, &log);
    let mut acks = acked(&log);
    acks.sort_unstable();
    assert_eq!(
        acks,
        (0..4000).collect::<Vec<u64>>(),
        "every seq acknowledged once"
    );
    assert_eq!(
        seqs(&url).await,
        (0..4000).collect::<Vec<i64>>(),
        "no gaps, no forks"
    );
    assert_intact(&url, 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_transaction_leaves_nothing_and_the_chain_continues() {
    let Some(url) = fresh_database("a_writer_killed_mid_transaction").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("acks.txt");
    load(&url, 50, 1, &log);

    // Hold an uncommitted row at seq 150 so the writer's batch (seqs 50 to
    // 249) stops there: rows 50 to 149 written inside its open transaction,
    // waiting for ours to decide.
    let mut blocker = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query(
        "INSERT INTO events (chain, seq, hash, canonical, at, session, kind, actor)
         VALUES ('load', 150, 'blocker', '\\x00', now(), 's', 'annotation', 'test')",
    )
    .execute(&mut blocker)
    .await
    .unwrap();

    let killed_log = dir.path().join("killed-acks.txt");
    let mut writer = append_load()
        .args([
            "--store", &url, "--worker", "0", "--events", "200", "--batch", "200",
        ])
        .arg("--ack-log")
        .arg(&killed_log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");

    let mut watcher = PgConnection::connect(&url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: Vec<String> = sqlx::query_scalar(
            "SELECT query FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'syndicate'
               AND wait_event_type = 'Lock' AND xact_start IS NOT NULL",
        )
        .fetch_all(&mut watcher)
        .await
        .unwrap();
        if let Some(query) = waiting.first() {
            assert!(query.contains("INSERT INTO events"), "{query}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never reached its insert"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    writer.kill().expect("SIGKILL the writer");
    let status = writer.wait().expect("reap the writer");
    assert!(!status.success(), "the writer was killed: {status}");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    // The server ends the dead writer's session once it looks for its
    // next command; wait for that.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'syndicate'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if sessions == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed writer's session never ended"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    assert!(acked(&killed_log).is_empty(), "nothing was acknowledged");
    assert_eq!(
        seqs(&url).await,
        (0..50).collect::<Vec<i64>>(),
        "no row of the killed batch exists"
    );
    assert_intact(&url, 50);

    // Another writer carries the chain on from the same head.
    let more = dir.path().join("more-acks.txt");
    load(&url, 10, 1, &more);
    assert_eq!(acked(&more), (50..60).collect::<Vec<u64>>());
    assert_intact(&url, 60);
}
