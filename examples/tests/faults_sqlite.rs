//! Faults on a real SQLite file under a running gate: a write lock held by
//! another process, a full disk, the file deleted or replaced, corrupt
//! pages, a read-only filesystem and a file the user may not read.
//!
//! Each gate test asserts the same three things: no permit is granted while
//! the fault lasts (the action's closure never runs), no acknowledged event
//! is lost (the chain read before the fault is still its prefix after), and
//! the chain verifies afterwards (integrity and story), with the gate
//! running again once an operator recovers it.
//!
//! The disk-full and read-only tests mount a small tmpfs and need root (as
//! CI runs); elsewhere they print that they were skipped. The lock test
//! holds the lock from a `python3` process (the standard library's sqlite3).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use syndicate_core::gate::{Gate, GateError, Refusal};
use syndicate_core::{Actor, ChainId, Digest, EventStoreExt, StoreError, check_story};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

use common::faults::{assert_degraded, deploy, gate_on, trail, try_run};
use common::{run, stderr, stdout, syndicate, url};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn open(path: &Path) -> Result<Arc<SqliteStore>> {
    Ok(Arc::new(
        SqliteStore::open(path, ChainId::new("faults")?, SqliteOptions::default()).await?,
    ))
}

/// A full round trip on a fresh request: proposed, approved by bob, run.
async fn round_trip(gate: &Gate, version: u32) -> std::result::Result<bool, GateError> {
    let request_id = common::propose_and_approve(gate, &deploy(version))
        .await
        .map_err(|e| match e.downcast::<GateError>() {
            Ok(e) => *e,
            Err(e) => panic!("not a gate error: {e}"),
        })?;
    let (result, ran) = try_run(gate, &request_id, version).await;
    result.map(|()| ran)
}

/// The three things every fault test asserts at its end, on a fresh handle.
async fn assert_kept_and_verified(path: &Path, before: &[(u64, Digest)]) -> Result {
    let store = open(path).await?;
    let after = trail(store.as_ref()).await;
    assert!(
        after.starts_with(before),
        "acknowledged events lost or changed: {} before, {} after",
        before.len(),
        after.len()
    );
    let report = store.verify().await?;
    assert!(report.is_intact(), "{report:?}");
    let story = check_story(store.as_ref()).await?;
    assert!(story.is_consistent(), "{story:?}");
    Ok(())
}

/// A small tmpfs mounted on a temporary folder; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `kib` KiB, or says why not (not root, no mount) and returns
    /// `None`.
    fn mount(kib: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                println!(
                    "skipped: cannot mount a small filesystem here (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill_up(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
            break;
        }
    }
    // Whatever a partial chunk left free goes too.
    let _ = file.write_all(&[0u8; 512]);
    let _ = file.sync_all();
}

/// A gate on a new file, ready for a lock held by another process: it ran
/// one action, a second is approved and waiting, and the trail as it stood
/// then is kept.
struct Primed {
    dir: tempfile::TempDir,
    path: PathBuf,
    gate: Gate,
    request_id: String,
    before: Vec<(u64, Digest)>,
}

/// A [`Primed`] gate, or `None` when `python3` (which holds the locks) is
/// missing and the test is skipped.
async fn primed() -> Result<Option<Primed>> {
    if !common::python_available() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path).await?;
    let gate = gate_on(store.clone()).await?;
    assert!(round_trip(&gate, 0).await?, "runs before the fault");
    let request_id = common::propose_and_approve(&gate, &deploy(1)).await?;
    let before = trail(store.as_ref()).await;
    Ok(Some(Primed {
        dir,
        path,
        gate,
        request_id,
        before,
    }))
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_lock_held_by_another_process_degrades_within_the_deadline_current_thread() -> Result
{
    a_write_lock_held_by_another_process_degrades_within_the_deadline().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_by_another_process_degrades_within_the_deadline_multi_thread() -> Result
{
    a_write_lock_held_by_another_process_degrades_within_the_deadline().await
}

async fn a_write_lock_held_by_another_process_degrades_within_the_deadline() -> Result {
    // The store keeps its own busy timeout (30 s); the gate's deadline must
    // answer first.
    let Some(Primed {
        dir: _dir,
        path,
        gate,
        request_id,
        before,
    }) = primed().await?
    else {
        return Ok(());
    };

    let mut holder = LockHolder::start(&path);
    let started = Instant::now();
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    let waited = started.elapsed();
    // Either the store call itself or the refusal that followed it.
    let by_deadline = match &result {
        Err(GateError::Store(e)) => syndicate_core::deadline::is_deadline(e),
        Err(e) => matches!(e.refusal(), Some(Refusal::Degraded { reason })
            if reason.contains("did not finish within 1s")),
        Ok(()) => false,
    };
    assert!(by_deadline, "the deadline ended the wait: {result:?}");
    assert!(gate.degraded().is_some(), "the gate degraded");
    assert!(!ran, "the action ran although nothing could be recorded");
    assert!(
        waited < Duration::from_secs(10),
        "refused after {waited:?}: the gate's 1 s deadline did not end the wait"
    );
    // Still held: the next call is refused too, within its deadline.
    let started = Instant::now();
    assert!(round_trip(&gate, 2).await.is_err(), "refused while held");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the deadline"
    );
    holder.release();

    gate.recover(&Actor::human("ops@example.com"), "lock released")
        .await?;
    assert!(round_trip(&gate, 3).await?, "runs after recovery");
    assert_kept_and_verified(&path, &before).await
}

/// A process that holds the lock bytes of the file's WAL index itself (a
/// hostile writer of the store, not SQLite) stops readers and writers: a
/// reader retries for SQLite's own limit of about ten seconds, whatever its
/// busy timeout, then fails. The gate refuses either way and nothing runs.
/// On a current-thread runtime (the command-line hooks) every read goes to
/// the reader's thread, so the deadline ends the wait: a hook answers
/// within its deadline, before its harness would time it out and let the
/// call through. On a multi-threaded runtime a read made in place delays
/// that one call up to SQLite's limit.
async fn wal_locks_held_by_a_hostile_process(bound: Duration) -> Result {
    let Some(Primed {
        dir: _dir,
        path,
        gate,
        request_id,
        before,
    }) = primed().await?
    else {
        return Ok(());
    };

    let mut holder = LockHolder::start_wal_index(&path);
    let started = Instant::now();
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    let waited = started.elapsed();
    assert_degraded(&result);
    assert!(!ran, "the action ran although the chain could not be read");
    assert!(
        waited < bound,
        "refused after {waited:?}, not within {bound:?}"
    );
    holder.release();

    gate.recover(&Actor::human("ops@example.com"), "lock released")
        .await?;
    assert!(round_trip(&gate, 2).await?, "runs after recovery");
    assert_kept_and_verified(&path, &before).await
}

#[tokio::test(flavor = "current_thread")]
async fn wal_locks_held_by_a_hostile_process_current_thread_refuses_within_the_deadline() -> Result
{
    // The deadline is 1 s; SQLite's own limit would be about 10 s.
    wal_locks_held_by_a_hostile_process(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_locks_held_by_a_hostile_process_multi_thread_refuses() -> Result {
    wal_locks_held_by_a_hostile_process(Duration::from_secs(40)).await
}

/// A `python3` process holding a lock on a SQLite file.
struct LockHolder {
    child: Child,
}

impl LockHolder {
    /// Holds the write lock (readers still read, in WAL mode).
    fn start(path: &Path) -> LockHolder {
        Self::holding(path, "c.execute('BEGIN IMMEDIATE')\n")
    }

    /// Holds the eight lock bytes of the WAL index (offset 120 of the
    /// `-shm` file: write, checkpoint, recover and the five read locks)
    /// with POSIX locks, as SQLite takes them, without going through SQLite.
    fn start_wal_index(path: &Path) -> LockHolder {
        Self::running(
            "import fcntl, sys\n\
             f = open(sys.argv[1] + '-shm', 'r+b')\n\
             fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120)\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n"
                .to_owned(),
            path,
        )
    }

    fn holding(path: &Path, lock: &str) -> LockHolder {
        let script = format!(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             {lock}\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             c.execute('ROLLBACK')\n"
        );
        Self::running(script, path)
    }

    fn running(script: String, path: &Path) -> LockHolder {
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("read the holder's answer");
        assert_eq!(line.trim(), "locked", "the other process holds the lock");
        LockHolder { child }
    }

    fn release(&mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("the holder ends");
        assert!(status.success(), "the holder released the lock");
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_full_disk_degrades_the_gate_and_it_continues_once_space_returns() -> Result {
    let Some(disk) = SmallDisk::mount(1024) else {
        return Ok(());
    };
    let path = disk.path().join("trail.db");
    let store = open(&path).await?;
    let gate = gate_on(store.clone()).await?;
    assert!(round_trip(&gate, 0).await?);
    let approved = common::propose_and_approve(&gate, &deploy(999)).await?;
    fill_up(&disk.path().join("filler"));

    // Round trips until the disk refuses one; none may run unrecorded.
    let mut failed = None;
    for version in 1..200 {
        let before = trail(store.as_ref()).await;
        match round_trip(&gate, version).await {
            Ok(ran) => assert!(ran, "a permit was granted, so the action ran"),
            Err(e) => {
                failed = Some((version, e, before));
                break;
            }
        }
    }
    let (version, error, before) = failed.expect("a full disk refuses an append");
    let full = matches!(&error, GateError::Store(StoreError::Unavailable { .. }))
        || matches!(error.refusal(), Some(Refusal::Degraded { .. }));
    assert!(full, "round trip {version}: {error:?}");
    assert!(gate.degraded().is_some(), "the gate degraded");
    // While full: an approved request is refused and does not run.
    let (result, ran) = try_run(&gate, &approved, 999).await;
    assert_degraded(&result);
    assert!(
        !ran,
        "the approved action ran while nothing could be recorded"
    );

    std::fs::remove_file(disk.path().join("filler"))?;
    gate.recover(&Actor::human("ops@example.com"), "disk space freed")
        .await?;
    assert!(round_trip(&gate, 500).await?, "runs once space returned");
    assert_kept_and_verified(&path, &before).await
}

#[tokio::test]
async fn a_read_only_filesystem_refuses_appends_with_a_typed_error() -> Result {
    let Some(disk) = SmallDisk::mount(4096) else {
        return Ok(());
    };
    let path = disk.path().join("trail.db");
    {
        let store = open(&path).await?;
        let gate = gate_on(store).await?;
        assert!(round_trip(&gate, 0).await?);
    }
    let before = std::fs::read(&path)?;
    disk.remount("ro");
    match SqliteStore::open(&path, ChainId::new("faults")?, SqliteOptions::default()).await {
        Err(StoreError::Unavailable { .. } | StoreError::Other { .. }) => {}
        other => panic!("a read-only filesystem must refuse the writer: {other:?}"),
    }
    let out = run(syndicate()
        .args(["audit", "verify", "--store"])
        .arg(url(&path)));
    assert_no_panic(&out);
    disk.remount("rw");
    assert_eq!(std::fs::read(&path)?, before, "nothing was written");
    assert_kept_and_verified(&path, &[]).await
}

#[tokio::test]
async fn the_file_deleted_under_a_running_gate_is_refused_not_written_unlinked() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path).await?;
    let gate = gate_on(store.clone()).await?;
    assert!(round_trip(&gate, 0).await?);
    let request_id = common::propose_and_approve(&gate, &deploy(1)).await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    assert!(result.is_err() && !ran, "{result:?}");
    assert!(gate.degraded().is_some(), "the gate degraded");
    assert!(!path.exists(), "nothing recreated the deleted file");
    Ok(())
}

#[tokio::test]
async fn the_file_replaced_under_a_running_gate_is_refused_and_left_alone() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trail.db");
    let store = open(&path).await?;
    let gate = gate_on(store.clone()).await?;
    assert!(round_trip(&gate, 0).await?);
    let before = trail(store.as_ref()).await;
    let request_id = common::propose_and_approve(&gate, &deploy(1)).await?;

    // Another valid store (an older copy of this one) is moved over it.
    let other = dir.path().join("other.db");
    {
        let older = open(&other).await?;
        let g = gate_on(older).await?;
        assert!(round_trip(&g, 7).await?);
    }
    let checkpoint = rusqlite::Connection::open(&other)?;
    checkpoint.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    drop(checkpoint);
    let replacement = std::fs::read(&other)?;
    std::fs::rename(&other, &path)?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let (result, ran) = try_run(&gate, &request_id, 1).await;
    assert!(result.is_err() && !ran, "{result:?}");
    assert!(gate.degraded().is_some(), "the gate degraded");
    assert_eq!(
        std::fs::read(&path)?,
        replacement,
        "the replacement was not written to"
    );
    assert!(before.len() >= 4);
    Ok(())
}

/// The program ended by itself with a code, not a panic or a signal.
fn assert_no_panic(out: &std::process::Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "exit {:?}: {}{err}",
        out.status,
        stdout(out)
    );
}

/// A checkpointed store of `events` events with bodies large enough to
/// span many pages; its path.
async fn many_pages(dir: &Path, events: u32) -> Result<PathBuf> {
    let path = dir.join("pages.db");
    let store = open(&path).await?;
    let filler = "x".repeat(600);
    for i in 0..events {
        let draft = syndicate_core::EventDraft::new(
            "s1",
            syndicate_core::EventKind::GateRecovered,
            Actor::system("gate"),
            json!({"reason": format!("{i} {filler}"), "operator": "gate"}),
        );
        store.append_one(draft).await?;
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(path)
}

#[tokio::test]
async fn flipped_bytes_in_any_page_give_a_typed_error_never_a_panic() -> Result {
    let dir = tempfile::tempdir()?;
    let pristine = std::fs::read(many_pages(dir.path(), 120).await?)?;
    let pages = pristine.len() / 4096;
    assert!(pages > 10, "{pages} pages");
    let copy = dir.path().join("damaged.db");
    let mut named_a_seq = 0;
    for page in 0..pages {
        for offset in [100, 2048, 4000] {
            let mut bytes = pristine.clone();
            bytes[page * 4096 + offset] ^= 0x5a;
            std::fs::write(&copy, &bytes)?;
            let out = run(syndicate()
                .args(["audit", "verify", "--store"])
                .arg(url(&copy)));
            assert_no_panic(&out);
            if out.status.code() == Some(1) && stdout(&out).contains("seq") {
                named_a_seq += 1;
            }
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", copy.display()));
            }
        }
    }
    assert!(
        named_a_seq > 0,
        "flips inside event rows are reported at their seq"
    );
    Ok(())
}

#[tokio::test]
async fn flipped_bytes_in_the_wal_give_a_typed_error_or_a_shorter_chain() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("wal.db");
    let store = open(&path).await?;
    // Keep the events in the WAL: no checkpoint, and a reader holds it open.
    for i in 0..40u32 {
        let draft = syndicate_core::EventDraft::new(
            "s1",
            syndicate_core::EventKind::GateRecovered,
            Actor::system("gate"),
            json!({"reason": format!("{i}"), "operator": "gate"}),
        );
        store.append_one(draft).await?;
    }
    let snapshot = (
        std::fs::read(&path)?,
        std::fs::read(format!("{}-wal", path.display()))?,
    );
    drop(store);
    let (db, wal) = snapshot;
    assert!(wal.len() > 4096, "the events are in the WAL");
    let copy = dir.path().join("copy.db");
    let copy_wal = PathBuf::from(format!("{}-wal", copy.display()));
    for offset in (40..wal.len()).step_by(wal.len() / 15) {
        let mut damaged = wal.clone();
        damaged[offset] ^= 0x5a;
        std::fs::write(&copy, &db)?;
        std::fs::write(&copy_wal, &damaged)?;
        let _ = std::fs::remove_file(format!("{}-shm", copy.display()));
        let out = run(syndicate()
            .args(["audit", "verify", "--store"])
            .arg(url(&copy)));
        assert_no_panic(&out);
        if out.status.code() == Some(0) {
            // SQLite drops WAL frames whose checksum fails: what remains is
            // a prefix, never altered events.
            let count: u64 = stdout(&out)
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("intact: N events");
            assert!(count <= 40, "{}", stdout(&out));
        }
    }
    Ok(())
}

#[test]
fn a_file_the_user_may_not_read_is_a_typed_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secret.db");
    common::fill(&path, 5, 1);
    let mut command = if rustix::process::geteuid().is_root() {
        // Root reads everything: run the check as `nobody`, who may enter
        // the folder but not read the file.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).unwrap();
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(syndicate().get_program());
        command
    } else {
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o000)).unwrap();
        syndicate()
    };
    let out = run(command.args(["audit", "verify", "--store"]).arg(url(&path)));
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stderr(&out).is_empty(), "it says why");
}
