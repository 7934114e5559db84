//! [`SqliteStore`]: the async shell over [`blocking`](crate::blocking).
//!
//! Each connection has its own worker thread, which runs the jobs sent to it
//! in order; the async methods send a job and await its answer, so the async
//! runtime never blocks on SQLite and any runtime works. Appends made from a
//! multi-threaded tokio runtime skip the hop to the worker thread: they run
//! in `block_in_place`, which hands the runtime's other tasks to another
//! thread first. Reads always go through the reader thread, so that
//! `verify_store` overlaps reading the next page with checking this one.

use std::fmt;
use std::path::{Path, PathBuf};
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

/// A thread that runs jobs on one connection.
struct Worker {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    conn: Arc<Mutex<Connection>>,
    thread: Option<std::thread::JoinHandle<()>>,
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

impl Worker {
    /// Starts a thread, opens its connection there, and returns once it is open.
    async fn start(
        name: &str,
        path: PathBuf,
        options: SqliteOptions,
        role: Role,
    ) -> Result<Worker, StoreError> {
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
        })
    }

    /// Runs `f` on the connection: on the calling thread through
    /// `block_in_place` when that is a worker of a multi-threaded tokio
    /// runtime (no thread hop; the runtime moves its other tasks away), else
    /// on the worker thread. Either way the async runtime never blocks.
    async fn run_latency<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
        {
            let conn = Arc::clone(&self.conn);
            return tokio::task::block_in_place(move || f(&mut lock(&conn)));
        }
        self.run(f).await
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

/// An [`EventStore`] in one SQLite file (WAL mode), for one chain.
///
/// It holds two connections, each on its own thread: a writer that appends
/// (one `BEGIN IMMEDIATE` transaction per batch) and a reader for `head`,
/// `read` and `query`, which in WAL mode never waits for a writer. Any number
/// of stores, in any number of processes, may append to one file: appenders
/// queue on SQLite's write lock for up to the busy timeout.
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
    writer: Option<(Worker, Arc<WriterGuard>)>,
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
            Some((worker, Arc::new(guard)))
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
        let Some((writer, guard)) = &self.writer else {
            return Err(path_error(SqliteError::OpenedReadOnly(self.path.clone())));
        };
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let (path, chain, drafts) = (self.path.clone(), self.chain.clone(), drafts.to_vec());
        let guard = Arc::clone(guard);
        writer
            .run_latency(move |conn| blocking::append(conn, &guard, &path, &chain, &drafts))
            .await
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
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
        let (path, chain) = (self.path.clone(), self.chain.clone());
        self.reader
            .run(move |conn| blocking::read(conn, &path, &chain, from_seq, limit, max_bytes))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        let (path, chain, query) = (self.path.clone(), self.chain.clone(), query.clone());
        self.reader
            .run(move |conn| blocking::query(conn, &path, &chain, &query))
            .await
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let Some((writer, _)) = &self.writer else {
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
