//! Real OS processes on one SQLite file: concurrent appenders, verification
//! while they append, and appenders killed with SIGKILL at random moments.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{acked, append_load, run, stderr, stdout, url, verify, wait_until};
use rusqlite::Connection;

fn stored_seqs(path: &Path) -> Vec<u64> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT seq FROM events WHERE chain = 'load' ORDER BY seq")
        .expect("prepare");
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|s| u64::try_from(s.expect("seq")).expect("non-negative"))
        .collect()
}

#[test]
fn concurrent_processes_append_one_linear_chain() {
    const PROCESSES: u32 = 4;
    const EVENTS: u64 = 60;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("many.db");
    let log = dir.path().join("acks");
    let out = run(append_load()
        .arg("--store")
        .arg(url(&path))
        .args(["--events", &EVENTS.to_string()])
        .args(["--processes", &PROCESSES.to_string()])
        .args(["--batch", "3"])
        .arg("--ack-log")
        .arg(&log));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let total = EVENTS * u64::from(PROCESSES);
    assert_eq!(
        stored_seqs(&path),
        (0..total).collect::<Vec<_>>(),
        "exact count, no gaps"
    );
    let mut acks = acked(&log);
    acks.sort_unstable();
    assert_eq!(
        acks,
        (0..total).collect::<Vec<_>>(),
        "every event acknowledged once"
    );
    let conn = Connection::open(&path).expect("open");
    for worker in 0..PROCESSES {
        let mine: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE session = ?1",
                [format!("load-{worker}")],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(mine as u64, EVENTS, "all events of worker {worker}");
    }
    let out = verify(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("intact: {total} events on chain \"load\"")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verifying_while_processes_append_reports_no_false_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("live.db");
    let log = dir.path().join("acks");
    let mut appender = append_load()
        .arg("--store")
        .arg(url(&path))
        .args(["--events", "300", "--processes", "2"])
        .arg("--ack-log")
        .arg(&log)
        .stdout(Stdio::null())
        .spawn()
        .expect("start append_load");
    wait_until(
        "the first events are acknowledged",
        Duration::from_secs(60),
        || !acked(&log).is_empty(),
    );
    let mut runs = 0;
    let mut partial = 0;
    loop {
        let done = appender.try_wait().expect("poll the appender").is_some();
        let acked_before = acked(&log).len() as u64;
        let out = verify(&path, &[]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "verify during appends: {text}{}",
            stderr(&out)
        );
        let verified: u64 = text
            .strip_prefix("intact: ")
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("summary {text:?}"));
        assert!(
            verified >= acked_before,
            "verify saw {verified} events, {acked_before} were acknowledged before it started"
        );
        runs += 1;
        if verified < 600 {
            partial += 1;
        }
        if done {
            break;
        }
    }
    assert!(appender.wait().expect("appender").success());
    println!("{runs} verifications, {partial} while appends were under way");
    assert_eq!(stored_seqs(&path).len(), 600);
}

/// A small xorshift generator: random kill moments without a dependency;
/// the seed is printed so a failure can be replayed with
/// `SYNDICATE_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn appenders_killed_at_random_moments_lose_nothing_acknowledged() {
    const KILLS: usize = 20;
    let seed = std::env::var("SYNDICATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("SYNDICATE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let log = dir.path().join("acks");
    for round in 0..KILLS {
        let before = acked(&log).len();
        let grow = 1 + (rng.next() % 50) as usize;
        let batch = 1 + rng.next() % 3;
        let mut child = append_load()
            .arg("--store")
            .arg(url(&path))
            .args(["--events", "1000000", "--worker", &round.to_string()])
            .args(["--batch", &batch.to_string()])
            .arg("--ack-log")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker");
        wait_until(
            &format!("round {round}: {grow} more acks"),
            Duration::from_secs(60),
            || acked(&log).len() >= before + grow,
        );
        child.kill().expect("SIGKILL the worker");
        let status = child.wait().expect("reap the worker");
        assert!(!status.success(), "round {round}: the worker was killed");
    }
    let out = verify(&path, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "after {KILLS} kills: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let stored: BTreeSet<u64> = stored_seqs(&path).into_iter().collect();
    let acks = acked(&log);
    assert!(acks.len() >= KILLS, "{} acks", acks.len());
    let unique: BTreeSet<u64> = acks.iter().copied().collect();
    assert_eq!(unique.len(), acks.len(), "no seq acknowledged twice");
    let lost: Vec<u64> = unique.difference(&stored).copied().collect();
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");
    assert_eq!(
        stored.iter().copied().collect::<Vec<_>>(),
        (0..stored.len() as u64).collect::<Vec<_>>(),
        "one chain without gaps"
    );
}

/// The pids of the living (not zombie) children of `parent`, read from
/// `/proc`.
#[cfg(target_os = "linux")]
fn living_children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && state != Some("Z") && state != Some("X") {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` is still running (not gone, not a zombie).
#[cfg(target_os = "linux")]
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[test]
#[cfg(target_os = "linux")]
fn workers_die_with_a_parent_killed_by_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("orphans.db");
    let log = dir.path().join("acks");
    let mut parent = append_load()
        .arg("--store")
        .arg(url(&path))
        .args(["--events", "1000000", "--processes", "2"])
        .arg("--ack-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the load");
    let parent_pid = parent.id();
    wait_until("both workers append", Duration::from_secs(60), || {
        acked(&log).len() >= 20 && living_children(parent_pid).len() == 2
    });
    let workers = living_children(parent_pid);
    parent.kill().expect("SIGKILL the parent");
    parent.wait().expect("reap the parent");
    wait_until(
        "the workers die with their parent",
        Duration::from_secs(20),
        || !workers.iter().any(|&pid| running(pid)),
    );
    // Nothing appends any more, and what was acknowledged is there.
    let acks: BTreeSet<u64> = acked(&log).into_iter().collect();
    let stored: BTreeSet<u64> = stored_seqs(&path).into_iter().collect();
    assert!(acks.is_subset(&stored), "acknowledged events are stored");
    let out = verify(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
