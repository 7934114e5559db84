//! The PostgreSQL server disrupted while appender processes run: restarted
//! cleanly (`pg_ctl restart`), or crashed (one backend of the test's
//! database killed with SIGKILL, so the server ends every session and runs
//! crash recovery from its WAL). Either way the appenders get clean,
//! retryable errors, resume by themselves once the server is back, every
//! acknowledged event is present, and the chain is linear and verifies.
//!
//! Alone in its test binary, so the server's disruptions cannot disturb
//! other tests; its two tests take turns.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{acked, append_load, run, stderr, stdout, syndicate, wait_until};
use sqlx::{Connection, PgConnection};
use syndicate_store_postgres::testing::{admin_url, fresh_database, pg_ctl};

/// Held by each test for its whole run: one disruption at a time.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What happens to the server mid-load.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `pg_ctl restart -m fast`.
    Restart,
    /// SIGKILL to one backend serving the test's database (through
    /// `pg_ctl kill`, as the server's user): the server crashes and
    /// recovers.
    KillBackend,
}

/// Runs `pg_ctl` with `args`, failing with its output when it fails.
fn pg_ctl_run(pg_ctl: &str, args: &[&str]) {
    let out = Command::new(pg_ctl)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGKILLs one backend serving the database at `url`, then waits until the
/// server has ended every other session (a session opened before the kill
/// fails) and accepts connections again.
async fn crash_the_server(pg_ctl: &str, url: &str) {
    let admin = admin_url("crash_the_server").expect("the server url is set");
    let mut watcher = PgConnection::connect(&admin)
        .await
        .expect("connect a watcher");
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND backend_type = 'client backend' ORDER BY pid LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("an appender's backend");
    pg_ctl_run(pg_ctl, &["kill", "KILL", &pid.to_string()]);

    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlx::query("SELECT 1").execute(&mut watcher).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server did not end the other sessions after backend {pid} was killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "the server did not come back after its crash: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `processes` appender processes append `events` events each to a fresh
/// database; once 200 are acknowledged, `fault` strikes the server.
/// Asserts the appenders ride it out and nothing acknowledged is lost.
async fn appenders_ride_out(test: &str, processes: u32, events: u64, fault: Fault) {
    let Some(pg_ctl) = pg_ctl(test) else {
        return;
    };
    let Some(url) = fresh_database(test).await else {
        return;
    };
    let _turn = SERVER.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("acks.txt");
    let appenders = append_load()
        .args(["--store", &url, "--events", &events.to_string()])
        .args(["--processes", &processes.to_string()])
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
    match fault {
        Fault::Restart => pg_ctl_run(&pg_ctl, &["restart", "-m", "fast", "-w", "-t", "60"]),
        Fault::KillBackend => crash_the_server(&pg_ctl, &url).await,
    }
    let before_fault_done = acked(&log).len();

    let out = appenders.wait_with_output().expect("wait for append_load");
    let errors = stderr(&out);
    assert!(
        out.status.success(),
        "appenders must ride out the {fault:?}: {}{errors}",
        stdout(&out)
    );
    assert!(
        errors.contains("store unavailable"),
        "the {fault:?} reached the appenders as a typed unavailable error: {errors:?}"
    );
    assert!(!errors.contains("panicked"), "{errors}");
    let unknown = errors.matches("outcome unknown").count();
    let acks = acked(&log);
    assert!(
        acks.len() > before_fault_done,
        "appends resumed after the {fault:?}"
    );
    assert_eq!(
        acks.len() + unknown,
        usize::try_from(u64::from(processes) * events).unwrap(),
        "every batch was acknowledged or reported as unknown"
    );

    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect after the fault");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_survive_a_server_restart_and_lose_nothing_acknowledged() {
    appenders_ride_out("appenders_survive_a_server_restart", 4, 600, Fault::Restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_survive_a_server_killed_with_sigkill_and_lose_nothing_acknowledged() {
    appenders_ride_out(
        "appenders_survive_a_server_killed_with_sigkill",
        8,
        300,
        Fault::KillBackend,
    )
    .await;
}
