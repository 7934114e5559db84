//! [`SqliteStore`]: the async shell over [`blocking`](crate::blocking).
//!
//! Each connection has its own worker thread, which runs the jobs sent to it
//! in order. A read sends a job and awaits its answer, so that
//! `verify_store` overlaps reading the next page with checking this one,
//! except that on a multi-threaded runtime its first rows are read in place
//! when the connection is free (see [`Worker::in_place`]). Appends queue
//! their batch and are written in groups, one transaction and one commit
//! for all the batches waiting together (see [`Writer::drive`] for who
//! writes a group on which runtime): without a thread hop when the caller
//! can write in place, and never waiting in place for another process's
//! lock.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use async_trait::async_trait;
use rusqlite::Connection;
use syndicate_core::merkle::{Hash, NodeId};
use syndicate_core::{ChainId, Event, EventDraft, EventStore, Head, Query, StoreError};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::oneshot;

use crate::blocking;
use crate::error::{SqliteError, path_error};
use crate::guard::WriterGuard;
use crate::schema::{Role, SqliteOptions, open_connection};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A read runs on the caller's thread for its first rows up to this many
/// canonical bytes (see [`Worker::in_place`]); the rest of a longer page is
/// read on the reader's thread.
const IN_PLACE_READ_BYTES: usize = 64 * 1024;

/// A thread that runs jobs on one connection.
struct Worker {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    conn: Arc<Mutex<Connection>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The connection's busy timeout (see [`Worker::in_place`]).
    busy_timeout: std::time::Duration,
}

impl Drop for Worker {
    /// Stops the thread after the jobs already sent, so that the connection
    /// is closed (and the WAL checkpointed) when the store's drop returns.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A job that panicked left no transaction open: rusqlite rolls back an
    // unfinished transaction when it is dropped during the unwind.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connection, unless another thread is using it.
fn try_lock(conn: &Mutex<Connection>) -> Option<MutexGuard<'_, Connection>> {
    match conn.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

impl Worker {
    /// Starts a thread, opens its connection there, and returns once it is open.
    async fn start(
        name: &str,
        path: PathBuf,
        options: SqliteOptions,
        role: Role,
    ) -> Result<Worker, StoreError> {
        let busy_timeout = options.busy_timeout;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, is_open) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let conn = match open_connection(&path, &options, role) {
                    Ok(conn) => Arc::new(Mutex::new(conn)),
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                if opened.send(Ok(Arc::clone(&conn))).is_err() {
                    return;
                }
                // Runs until the store (the only sender) is dropped.
                while let Ok(job) = queue.recv() {
                    job(&mut lock(&conn));
                }
            })
            .map_err(|e| StoreError::Other {
                store: crate::error::STORE,
                source: Box::new(e),
            })?;
        let conn = is_open
            .await
            .map_err(|_| path_error(SqliteError::WorkerStopped))??;
        Ok(Worker {
            jobs: Some(jobs),
            conn,
            thread: Some(thread),
            busy_timeout,
        })
    }

    /// Runs `f` on the caller's thread, inside `block_in_place` (the
    /// runtime moves its other tasks away), when the caller runs on a
    /// multi-threaded tokio runtime and the connection is free. SQLite's
    /// busy timeout is zero meanwhile, so a read in WAL mode does not wait
    /// for a lock there. `None` when the connection is busy, `f` failed, or
    /// the runtime is not multi-threaded: then [`run`](Worker::run) it on
    /// the worker's thread, which waits out the busy timeout while the
    /// caller awaits within its deadline, and reports any error.
    ///
    /// A current-thread runtime always takes the worker's thread: a process
    /// that holds the WAL's read-lock bytes itself (not through SQLite) can
    /// hold a read for SQLite's own limit of about ten seconds whatever the
    /// busy timeout, and a command-line hook must answer within its
    /// deadline, since a harness lets a call through when its hook times
    /// out. On a multi-threaded runtime such a read delays the one call
    /// that makes it, which then fails and is refused.
    fn in_place<R>(&self, f: impl FnOnce(&Connection) -> Result<R, StoreError>) -> Option<R> {
        let attempt = || {
            let conn = try_lock(&self.conn)?;
            conn.busy_timeout(std::time::Duration::ZERO).ok()?;
            let result = f(&conn);
            // Restored before the connection is released.
            conn.busy_timeout(self.busy_timeout).ok()?;
            result.ok()
        };
        match tokio::runtime::Handle::try_current().ok()?.runtime_flavor() {
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(attempt),
            _ => None,
        }
    }

    /// Runs `f` on the worker's connection. If the returned future is
    /// dropped, the job still runs to its end.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| path_error(SqliteError::WorkerStopped))?
            .send(Box::new(move |conn| {
                let _ = reply.send(f(conn));
            }))
            .map_err(|_| path_error(SqliteError::WorkerStopped))?;
        answer
            .await
            .map_err(|_| path_error(SqliteError::WorkerStopped))?
    }
}

type Answer = oneshot::Sender<Result<Vec<Event>, StoreError>>;

/// The appends waiting for the writer connection, and what every group of
/// them is written with.
struct Appends {
    path: PathBuf,
    chain: ChainId,
    busy_timeout: std::time::Duration,
    guard: WriterGuard,
    pending: Mutex<Vec<(Vec<EventDraft>, Answer)>>,
    /// True while a caller leads (see [`Writer::drive`]).
    leading: AtomicBool,
}

/// The lead of a group commit, given up when dropped.
struct Lead<'a>(&'a AtomicBool);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Appends {
    fn is_waiting(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_empty()
    }

    /// The lead, when no one else has it.
    fn take_lead(&self) -> Option<Lead<'_>> {
        self.leading
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Lead(&self.leading))
    }

    fn queue(&self, drafts: Vec<EventDraft>, answer: Answer) {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((drafts, answer));
    }

    /// Appends every batch waiting, as one group ([`blocking::append_group`]),
    /// and answers each. False when `wait` said not to wait and another
    /// connection held the write lock: the batches wait on.
    fn drain(&self, conn: &mut Connection, wait: blocking::Wait) -> bool {
        let waiting = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if waiting.is_empty() {
            return true;
        }
        let (batches, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        let written =
            blocking::append_group(conn, &self.guard, &self.path, &self.chain, &batches, wait);
        let Some(results) = written else {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            pending.splice(0..0, batches.into_iter().zip(answers));
            return false;
        };
        for (answer, result) in answers.into_iter().zip(results) {
            // The caller may have stopped waiting; its batch is written all the same.
            let _ = answer.send(result);
        }
        true
    }
}

/// The writer connection's worker and the appends waiting for it.
struct Writer {
    worker: Worker,
    appends: Arc<Appends>,
}

impl Writer {
    /// Has every batch queued so far appended, the caller's included.
    ///
    /// On a multi-threaded tokio runtime one caller at a time leads: in
    /// `block_in_place` (no thread hop; the runtime moves its other tasks
    /// away) it appends everything waiting as one group, then what queued up
    /// meanwhile as the next, until nothing waits, so concurrent appends
    /// share one transaction and one fsync; the others wait for their
    /// answer. On a current-thread runtime the caller first lets the
    /// runtime's other tasks queue theirs, then appends in place. Either
    /// way a group is written in place only when the file's write lock is
    /// free at once: when another connection holds it, the group goes to
    /// the writer thread, which waits for the lock, and the caller awaits
    /// its answer, so no caller blocks on another process's lock past its
    /// own deadline. Elsewhere the writer thread does it.
    async fn drive(&self) -> Result<(), StoreError> {
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        let appends = Arc::clone(&self.appends);
        match flavor {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::yield_now().await;
                // One caller at a time leads: it appends group after group
                // until none is waiting, and the others only wait for their
                // answer. A leader checks once more after leaving, so no
                // batch is left waiting with no leader.
                let mut locked_out = false;
                while !locked_out
                    && appends.is_waiting()
                    && let Some(lead) = appends.take_lead()
                {
                    let conn = Arc::clone(&self.worker.conn);
                    let appends = Arc::clone(&appends);
                    locked_out = tokio::task::block_in_place(move || {
                        // Busy: the writer thread is waiting for the lock.
                        let Some(mut conn) = try_lock(&conn) else {
                            return true;
                        };
                        while appends.is_waiting() {
                            if !appends.drain(&mut conn, blocking::Wait::No(appends.busy_timeout)) {
                                return true;
                            }
                        }
                        false
                    });
                    drop(lead);
                }
                if !locked_out {
                    return Ok(());
                }
                // Another connection holds the write lock: the writer
                // thread waits for it (up to the busy timeout) while this
                // caller awaits, within whatever deadline it has.
            }
            Ok(RuntimeFlavor::CurrentThread) => {
                tokio::task::yield_now().await;
                if let Some(mut conn) = try_lock(&self.worker.conn)
                    && appends.drain(&mut conn, blocking::Wait::No(appends.busy_timeout))
                {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.worker
            .run(move |conn| {
                appends.drain(conn, blocking::Wait::BusyTimeout);
                Ok(())
            })
            .await
    }
}

/// An [`EventStore`] in one SQLite file (WAL mode), for one chain.
///
/// It holds two connections, each with its own thread: a writer that
/// appends and a reader for `head`, `read` and `query`, which in WAL mode
/// never waits for a writer. Short reads and uncontended appends run on the
/// caller's thread where that is safe (see the module docs). Appends made at the same time through one store are
/// written together (group commit): one `BEGIN IMMEDIATE` transaction and
/// one commit for all of them, each batch sealed after the one before it,
/// written whole or not at all, and acknowledged only once the commit is
/// durable; a batch refused for its own sake (an invalid draft, a used
/// single-use key) does not affect the others. Any number of stores, in
/// any number of processes, may append to one file: appenders queue on
/// SQLite's write lock for up to the busy timeout.
///
/// Cancellation: a dropped `append` future does not cancel the append; the
/// batch may still be committed.
///
/// Dropping the store waits for the work already sent to its threads, then
/// closes both connections: when the drop returns, the file is closed and
/// its write-ahead log checkpointed.
pub struct SqliteStore {
    chain: ChainId,
    path: PathBuf,
    options: SqliteOptions,
    writer: Option<Writer>,
    reader: Worker,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("chain", &self.chain)
            .field("durability", &self.options.durability)
            .field("read_only", &self.options.read_only)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (and, with [`SqliteOptions::create`], creates) the store file at
    /// `path` for `chain`, migrating its schema when opened for writing.
    ///
    /// # Errors
    /// - [`StoreError::Other`] with a [`SqliteError`] source: missing file
    ///   (not creating), missing folder, a directory;
    /// - [`StoreError::Unavailable`]: a read-only file opened for writing, a
    ///   lock held past the busy timeout, an I/O error;
    /// - [`StoreError::Incompatible`]: not a SQLite file, another
    ///   application's database, or a newer schema.
    ///
    /// In each case nothing was created or changed.
    pub async fn open(
        path: impl AsRef<Path>,
        chain: ChainId,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_owned();
        let writer = if options.read_only {
            None
        } else {
            let worker = Worker::start(
                "syndicate-sqlite-writer",
                path.clone(),
                options.clone(),
                Role::Writer,
            )
            .await?;
            let at = path.clone();
            let guard = worker
                .run(move |conn| WriterGuard::capture(conn, &at))
                .await?;
            Some(Writer {
                worker,
                appends: Arc::new(Appends {
                    path: path.clone(),
                    chain: chain.clone(),
                    busy_timeout: options.busy_timeout,
                    guard,
                    pending: Mutex::new(Vec::new()),
                    leading: AtomicBool::new(false),
                }),
            })
        };
        let reader = Worker::start(
            "syndicate-sqlite-reader",
            path.clone(),
            options.clone(),
            Role::Reader,
        )
        .await?;
        Ok(SqliteStore {
            chain,
            path,
            options,
            writer,
            reader,
        })
    }

    /// The chains a store file holds, in name order, without changing it.
    /// Blocks briefly; call it off the async runtime if that matters.
    ///
    /// # Errors
    /// As [`open`](Self::open) with [`SqliteOptions::read_only`].
    pub fn chains(path: impl AsRef<Path>) -> Result<Vec<ChainId>, StoreError> {
        let path = path.as_ref();
        let options = SqliteOptions::default()
            .with_create(false)
            .with_read_only(true);
        let conn = open_connection(path, &options, Role::Reader)?;
        blocking::chains(&conn, path)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// A read returns every row asked for that exists (or stops at the byte bound).
    fn pages_reach_the_end(&self) -> bool {
        true
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        let Some(writer) = &self.writer else {
            return Err(path_error(SqliteError::OpenedReadOnly(self.path.clone())));
        };
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        writer.appends.queue(drafts.to_vec(), reply);
        writer.drive().await?;
        answer
            .await
            .map_err(|_| path_error(SqliteError::WorkerStopped))?
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        if let Some(head) = self
            .reader
            .in_place(|conn| blocking::head(conn, &self.path, &self.chain))
        {
            return Ok(head);
        }
        let (path, chain) = (self.path.clone(), self.chain.clone());
        self.reader
            .run(move |conn| blocking::head(conn, &path, &chain))
            .await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read_bounded(from_seq, limit, usize::MAX).await
    }

    async fn read_bounded(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        // The first rows, up to IN_PLACE_READ_BYTES, are read on the
        // caller's thread where `Worker::in_place` allows: a gate catching
        // up on the few events appended since it last looked pays no thread
        // hop (which costs several times the read). A longer page continues
        // on the reader thread, so a scan still reads its next page while
        // it checks this one.
        let first = self.reader.in_place(|conn| {
            blocking::read(
                conn,
                &self.path,
                &self.chain,
                from_seq,
                limit,
                max_bytes.min(IN_PLACE_READ_BYTES),
            )
        });
        let mut events = match first {
            Some(first) => {
                let bytes: usize = first.iter().map(|e| e.canonical.len()).sum();
                // Every row asked for, the byte bound, or the chain's end.
                if first.len() >= limit || bytes >= max_bytes || bytes < IN_PLACE_READ_BYTES {
                    return Ok(first);
                }
                first
            }
            None => Vec::new(),
        };
        let bytes: usize = events.iter().map(|e| e.canonical.len()).sum();
        let from = events.last().map_or(from_seq, |e| e.seq.saturating_add(1));
        let (left, left_bytes) = (limit - events.len(), max_bytes - bytes);
        let (path, chain) = (self.path.clone(), self.chain.clone());
        let rest = self
            .reader
            .run(move |conn| blocking::read(conn, &path, &chain, from, left, left_bytes))
            .await?;
        events.extend(rest);
        Ok(events)
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        let (path, chain, query) = (self.path.clone(), self.chain.clone(), query.clone());
        self.reader
            .run(move |conn| blocking::query(conn, &path, &chain, &query))
            .await
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let Some(Writer { worker: writer, .. }) = &self.writer else {
            // A read-only store keeps no cache; proofs read events instead.
            return Ok(());
        };
        if nodes.is_empty() {
            return Ok(());
        }
        let (path, chain, nodes) = (self.path.clone(), self.chain.clone(), nodes.to_vec());
        writer
            .run(move |conn| crate::tree::put(conn, &path, &chain, &nodes))
            .await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let (path, chain, ids) = (self.path.clone(), self.chain.clone(), ids.to_vec());
        self.reader
            .run(move |conn| crate::tree::get(conn, &path, &chain, &ids))
            .await
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        let (path, chain) = (self.path.clone(), self.chain.clone());
        self.reader
            .run(move |conn| crate::tree::leaf_count(conn, &path, &chain))
            .await
    }
}
