//! Faults on a real PostgreSQL server under a running gate: the backends
//! serving the gate stopped (SIGSTOP) mid-use, and the disk holding the
//! events table full (a small tmpfs tablespace). The server killed with
//! SIGKILL under load is in `postgres_restart.rs`, alone in its binary,
//! because a crashed backend makes the server end every other session.
//!
//! Each test asserts the same three things: no permit is granted while the
//! fault lasts (the action's closure never runs), no acknowledged event is
//! lost (every event the gate returned Ok for is still on the chain, same
//! seq, same hash, read back through a fresh store), and the chain verifies
//! afterwards (integrity and story), with the gate running again once an
//! operator recovers it.
//!
//! Both tests take their server from `SYNDICATE_TEST_POSTGRES_URL` (see
//! `scripts/test.sh`) and touch only their own database. Signalling the
//! server's backends needs root (or the server's user): without it the
//! stop test prints that it skipped (and fails under `CI=true`). The
//! disk-full test mounts a tmpfs, which needs root and `mount`: without
//! them it prints that it skipped, also under CI.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faults::{assert_degraded, deploy, gate_on, is_degraded, trail, try_run};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use syndicate_core::gate::{Gate, GateError, Outcome, ProposalContext, Refusal};
use syndicate_core::{
    Action, Actor, ChainId, Digest, Event, EventKind, EventStore, EventStoreExt, StoreError,
    check_story,
};
use syndicate_store_postgres::PostgresStore;
use syndicate_store_postgres::testing::{admin_url, fresh_database};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn chain() -> ChainId {
    ChainId::new("faults").expect("a valid chain id")
}

/// Every event the gate acknowledged (returned Ok for): its seq and hash.
#[derive(Debug, Default)]
struct Acks(Vec<(u64, Digest)>);

impl Acks {
    /// The gate acknowledged the `kind` event of `request_id` at `seq` (it
    /// returned only the seq): reads it back now for its hash.
    async fn at(&mut self, store: &dyn EventStore, seq: u64, kind: EventKind, request_id: &str) {
        let page = store
            .read(seq, 1)
            .await
            .unwrap_or_else(|e| panic!("read acknowledged seq {seq}: {e}"));
        let event = page
            .first()
            .unwrap_or_else(|| panic!("acknowledged seq {seq} is not on the chain"));
        assert_eq!(event.seq, seq);
        assert_eq!(event.columns.kind, kind.as_str(), "seq {seq}");
        assert_eq!(
            event.columns.request_id.as_deref(),
            Some(request_id),
            "seq {seq}"
        );
        self.0.push((seq, event.hash));
    }

    /// The gate returned this event.
    fn event(&mut self, event: &Event) {
        self.0.push((event.seq, event.hash));
    }
}

/// Proposes `action` as agent `bot` and approves it as bob, recording both
/// acknowledgements; the request id.
async fn propose_and_approve(
    gate: &Gate,
    store: &dyn EventStore,
    acks: &mut Acks,
    action: &Action,
) -> std::result::Result<String, GateError> {
    let p = gate
        .propose(
            "s1",
            &Actor::agent("bot"),
            action,
            &ProposalContext::default(),
        )
        .await?;
    acks.at(store, p.seq, EventKind::ActionProposed, &p.request_id)
        .await;
    let approval = gate
        .approve(&p.request_id, &Actor::human("bob@example.com"), &p.digest())
        .await?;
    acks.at(
        store,
        approval.seq,
        EventKind::ActionApproved,
        &p.request_id,
    )
    .await;
    Ok(p.request_id)
}

/// A full round trip on a fresh request: proposed, approved by bob,
/// authorized, completed; every event acknowledged on the way recorded.
async fn round_trip(
    gate: &Gate,
    store: &dyn EventStore,
    acks: &mut Acks,
    version: u32,
) -> std::result::Result<(), GateError> {
    let action = deploy(version);
    let request_id = propose_and_approve(gate, store, acks, &action).await?;
    let permit = gate.authorize(&request_id, &action).await?;
    acks.at(
        store,
        permit.started_seq(),
        EventKind::ExecutionStarted,
        &request_id,
    )
    .await;
    let done = gate.complete(permit, Outcome::succeeded()).await?;
    acks.event(&done);
    Ok(())
}

/// Recovers the gate as ops.
async fn recover(gate: &Gate, reason: &str) -> Result {
    let event = gate
        .recover(&Actor::human("ops@example.com"), reason)
        .await?;
    assert_eq!(event.columns.kind, EventKind::GateRecovered.as_str());
    assert!(gate.degraded().is_none(), "recovered");
    Ok(())
}

/// The three things every fault test asserts at its end, through a fresh
/// store (its own pool): every acknowledged event is there with its hash,
/// the chain read before the fault is still its prefix, and the chain
/// verifies, story included.
async fn assert_kept_and_verified(url: &str, acks: &Acks, before: &[(u64, Digest)]) -> Result {
    let store = PostgresStore::open(url, chain()).await?;
    let after = trail(&store).await;
    for (seq, hash) in &acks.0 {
        let found = usize::try_from(*seq).ok().and_then(|i| after.get(i));
        assert_eq!(
            found,
            Some(&(*seq, *hash)),
            "acknowledged event {seq} lost or changed"
        );
    }
    assert!(
        after.starts_with(before),
        "events lost or changed: {} before the fault, {} after",
        before.len(),
        after.len()
    );
    let report = store.verify().await?;
    assert!(report.is_intact(), "{report:?}");
    let story = check_story(&store).await?;
    assert!(story.is_consistent(), "{story:?}");
    store.pool().close().await;
    Ok(())
}

/// The database name of a `postgres://…/NAME[?…]` url.
fn database_of(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or(base)
}

/// Backends stopped with SIGSTOP; each gets SIGCONT on drop, whatever the
/// test's assertions did meanwhile.
struct Stopped(Vec<Pid>);

impl Stopped {
    /// Stops every pid (ones that have ended meanwhile are passed over).
    fn stop(pids: &[i32]) -> std::result::Result<Stopped, Errno> {
        let mut stopped = Stopped(Vec::new());
        for &raw in pids {
            let pid = Pid::from_raw(raw).expect("a backend pid is positive");
            match kill_process(pid, Signal::STOP) {
                Ok(()) => stopped.0.push(pid),
                Err(Errno::SRCH) => {}
                // Those already stopped are continued by the drop.
                Err(e) => return Err(e),
            }
        }
        Ok(stopped)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in self.0.drain(..) {
            let _ = kill_process(pid, Signal::CONT);
        }
    }
}

/// The client backends serving the database `conn` is connected to, its
/// own excepted.
async fn backends(conn: &mut PgConnection) -> Result<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND backend_type = 'client backend'",
    )
    .fetch_all(conn)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_degrades_the_gate_within_its_deadline() -> Result {
    const TEST: &str = "a_stopped_backend_degrades_the_gate_within_its_deadline";
    let Some(url) = fresh_database(TEST).await else {
        return Ok(());
    };
    let store = Arc::new(PostgresStore::open(&url, chain()).await?);
    let gate = gate_on(store.clone()).await?;
    let mut acks = Acks::default();
    round_trip(&gate, store.as_ref(), &mut acks, 0).await?;
    let request_id = propose_and_approve(&gate, store.as_ref(), &mut acks, &deploy(1)).await?;
    let before = trail(store.as_ref()).await;

    // Every backend of this test's database (the store's pool) stops, as a
    // server frozen by the kernel, a debugger or a hung disk would.
    let mut admin = PgConnection::connect(&url).await?;
    let pids = backends(&mut admin).await?;
    assert!(!pids.is_empty(), "the store's pool has backends");
    let stopped = match Stopped::stop(&pids) {
        Ok(stopped) => stopped,
        Err(Errno::PERM) => {
            assert!(
                !in_ci(),
                "{TEST}: may not signal the server's backends under CI=true (run as root)"
            );
            println!("skipped {TEST}: may not signal the server's backends (needs root)");
            return Ok(());
        }
        Err(e) => panic!("SIGSTOP a backend: {e}"),
    };

    let started = Instant::now();
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    let waited = started.elapsed();
    // Either the store call the deadline cut off, or the refusal after it.
    let by_deadline = match &result {
        Err(GateError::Store(e)) => syndicate_core::deadline::is_deadline(e),
        Err(e) => matches!(e.refusal(), Some(Refusal::Degraded { reason })
            if reason.contains("did not finish within 1s")),
        Ok(()) => false,
    };
    assert!(by_deadline, "the deadline ended the wait: {result:?}");
    assert!(!ran, "the action ran although nothing could be recorded");
    assert!(gate.degraded().is_some(), "the gate degraded");
    assert!(
        waited < Duration::from_secs(8),
        "refused after {waited:?}: the gate's 1 s deadline, not the server's 30 s lock \
         timeout, must end the wait"
    );
    // Still stopped: the next run is refused too, at once, without running.
    let started = Instant::now();
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    assert_degraded(&result);
    assert!(!ran, "the action ran on a degraded gate");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "refused after {:?}",
        started.elapsed()
    );
    drop(stopped);

    // Running again, but closed until an operator recovers it.
    let (result, ran) = try_run(&gate, &request_id, 1).await;
    assert_degraded(&result);
    assert!(!ran);
    recover(&gate, "backends continued").await?;
    round_trip(&gate, store.as_ref(), &mut acks, 2).await?;
    let _ = admin.close().await;
    store.pool().close().await;
    assert_kept_and_verified(&url, &acks, &before).await
}

/// Zeros written into `path` until the filesystem is full.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
            break;
        }
    }
    // Whatever a partial chunk left free goes too.
    for size in [4096, 512, 1] {
        while file.write_all(&vec![0u8; size]).is_ok() {}
    }
    let _ = file.sync_all();
}

/// A small tmpfs holding a tablespace of the test server, and the test's
/// database in it. On drop: the database and the tablespace are dropped,
/// then the filesystem unmounted (lazily when still busy).
struct Tablespace {
    dir: tempfile::TempDir,
    name: String,
    admin: String,
    database: String,
    created: bool,
}

impl Tablespace {
    /// Mounts an 8 MiB tmpfs owned by the server's user, or says why not
    /// and returns `None`.
    async fn mount(admin: &str, database: &str) -> Result<Option<Tablespace>> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                println!(
                    "skipped: cannot mount a small filesystem here (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return Ok(None);
            }
            Err(e) => {
                println!("skipped: cannot run mount: {e}");
                return Ok(None);
            }
        }
        let space = Tablespace {
            dir,
            name: format!("ts_{database}"),
            admin: admin.to_owned(),
            database: database.to_owned(),
            created: false,
        };
        // The server's user must own the location: the data directory's.
        let mut conn = PgConnection::connect(admin).await?;
        let data: String =
            sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
                .fetch_one(&mut conn)
                .await?;
        let _ = conn.close().await;
        let owner = std::fs::metadata(&data)?;
        std::os::unix::fs::chown(space.path(), Some(owner.uid()), Some(owner.gid()))?;
        Ok(Some(space))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `CREATE TABLESPACE` on the filesystem.
    async fn create(&mut self) -> Result {
        let location = self.path().display().to_string();
        assert!(!location.contains('\''), "{location}");
        let mut conn = PgConnection::connect(&self.admin).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLESPACE {} LOCATION '{location}'",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        self.created = true;
        let _ = conn.close().await;
        Ok(())
    }

    /// Moves the events table of the database at `url`, and every index of
    /// it, into the tablespace.
    async fn take_events(&self, url: &str) -> Result {
        let mut conn = PgConnection::connect(url).await?;
        let mut statements = vec![format!("ALTER TABLE events SET TABLESPACE {}", self.name)];
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = 'events'",
        )
        .fetch_all(&mut conn)
        .await?;
        assert!(!indexes.is_empty(), "events has indexes");
        for index in &indexes {
            statements.push(format!(
                "ALTER INDEX \"{}\" SET TABLESPACE {}",
                index.replace('"', "\"\""),
                self.name
            ));
        }
        for statement in statements {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut conn)
                .await?;
        }
        let moved: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace \
             WHERE t.spcname = $1 AND (c.relname = 'events' OR c.oid IN \
               (SELECT indexrelid FROM pg_index WHERE indrelid = 'events'::regclass))",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await?;
        assert_eq!(
            moved as usize,
            indexes.len() + 1,
            "the table and its indexes moved"
        );
        let _ = conn.close().await;
        Ok(())
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        if self.created {
            let admin = self.admin.clone();
            let statements = [
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
                format!("DROP TABLESPACE IF EXISTS {}", self.name),
            ];
            // Its own thread and runtime: a drop cannot await.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let mut conn = PgConnection::connect(&admin).await?;
                    for statement in statements {
                        sqlx::raw_sql(AssertSqlSafe(statement))
                            .execute(&mut conn)
                            .await?;
                    }
                    conn.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the test's database and tablespace: {dropped:?}");
            }
        }
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The texts of an error and its sources.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
            text.push_str(&format!(" [SQLSTATE {}]", db.code().unwrap_or_default()));
        }
        source = e.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_degrades_the_gate_and_space_returning_lets_it_continue() -> Result {
    const TEST: &str = "disk_full_degrades_the_gate_and_space_returning_lets_it_continue";
    let Some(admin) = admin_url(TEST) else {
        return Ok(());
    };
    let Some(url) = fresh_database(TEST).await else {
        return Ok(());
    };
    let Some(mut space) = Tablespace::mount(&admin, database_of(&url)).await? else {
        return Ok(());
    };
    space.create().await?;
    let store = Arc::new(PostgresStore::open(&url, chain()).await?);
    space.take_events(&url).await?;

    let gate = gate_on(store.clone()).await?;
    let mut acks = Acks::default();
    round_trip(&gate, store.as_ref(), &mut acks, 0).await?;
    let approved = propose_and_approve(&gate, store.as_ref(), &mut acks, &deploy(999)).await?;
    let filler = space.path().join("filler");
    fill_up(&filler);

    // Round trips until the disk refuses one; every one before it ran whole.
    let mut failed = None;
    for version in 1..300 {
        let before = trail(store.as_ref()).await;
        if let Err(e) = round_trip(&gate, store.as_ref(), &mut acks, version).await {
            failed = Some((version, e, before));
            break;
        }
    }
    let (version, error, before) = failed.expect("a full disk refuses an append");
    let full =
        matches!(&error, GateError::Store(StoreError::Unavailable { .. })) || is_degraded(&error);
    let why = error_chain(&error);
    assert!(full, "round trip {version}: {why}");
    assert!(
        ["53100", "53000", "58030", "No space left"]
            .iter()
            .any(|s| why.contains(s))
            || is_degraded(&error),
        "round trip {version} failed for another reason than the full disk: {why}"
    );
    let reason = gate.degraded().expect("the gate degraded");
    assert!(
        ["53100", "No space left", "could not extend"]
            .iter()
            .any(|s| reason.contains(s) || why.contains(s)),
        "the full disk is the reason: {reason}; {why}"
    );

    // While full: an approved request is refused and does not run.
    let (result, ran) = try_run(&gate, &approved, 999).await;
    assert_degraded(&result);
    assert!(
        !ran,
        "the approved action ran while nothing could be recorded"
    );

    // Space returns; closed until an operator recovers the gate.
    std::fs::remove_file(&filler)?;
    let (result, ran) = try_run(&gate, &approved, 999).await;
    assert_degraded(&result);
    assert!(!ran);
    recover(&gate, "disk space freed").await?;
    round_trip(&gate, store.as_ref(), &mut acks, 500).await?;
    let (result, ran) = try_run(&gate, &approved, 999).await;
    assert!(
        result.is_ok() && ran,
        "the approved request runs: {result:?}"
    );
    drop(gate);
    store.pool().close().await;
    assert_kept_and_verified(&url, &acks, &before).await
}
