//! Checkpointing a chain as it grows: every N events or T seconds, a signed
//! checkpoint of the verified head, handed to a [`Sink`] that publishes it.
//!
//! A checkpoint protects only once it is somewhere the database's owner
//! cannot rewrite; the built-in sinks write a directory of checkpoint files
//! ([`DirectorySink`], for a mount or bucket synced elsewhere) or run a
//! command with the signed checkpoint on its standard input
//! ([`CommandSink`], to upload it, mail it or hand it to witnesses).
//!
//! ```
//! use syndicate_core::checkpointer::{Checkpointer, DirectorySink};
//! use syndicate_core::keys::SigningKey;
//! use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let store = MemoryStore::new(ChainId::new("prod")?);
//! let dir = tempfile::tempdir()?;
//! let key = SigningKey::generate("audit.example.com/prod")?;
//! let mut checkpointer = Checkpointer::new(
//!     store.chain().clone(),
//!     key,
//!     "audit.example.com/prod",
//!     Box::new(DirectorySink::new(dir.path())),
//! )
//! .every_events(2);
//! for n in 0..3 {
//!     let draft = EventDraft::new("s", EventKind::Annotation, Actor::human("a"), serde_json::json!({ "n": n }));
//!     store.append_one(draft).await?;
//!     checkpointer.poll(&store).await?;
//! }
//! assert!(dir.path().join("2.checkpoint").exists());
//! assert!(!dir.path().join("3.checkpoint").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::event::ChainId;
use crate::keys::SigningKey;
use crate::store::EventStore;
use crate::tree::{TreeError, VerifiedTree};

/// A sink could not publish a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing a file failed.
    #[error("cannot write checkpoint file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The publishing command could not run or failed.
    #[error("checkpoint command {command:?} failed: {reason}")]
    Command {
        /// The program.
        command: String,
        /// Why.
        reason: String,
    },
}

/// Why a checkpointer could not checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointerError {
    /// The chain could not be read or does not verify (nothing is signed).
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The sink failed; the next poll tries again.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Where signed checkpoints go.
pub trait Sink: Send + Sync + fmt::Debug {
    /// Publishes one signed checkpoint (a C2SP signed note) of `checkpoint`.
    ///
    /// # Errors
    /// [`SinkError`] when it could not be published.
    fn publish(&self, checkpoint: &Checkpoint, signed: &str) -> Result<(), SinkError>;
}

/// Writes each checkpoint to `<dir>/<size>.checkpoint` and to
/// `<dir>/latest.checkpoint`, each replaced atomically (temporary file,
/// sync, rename).
#[derive(Debug, Clone)]
pub struct DirectorySink {
    dir: PathBuf,
}

impl DirectorySink {
    /// A sink writing into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirectorySink { dir: dir.into() }
    }
}

impl Sink for DirectorySink {
    fn publish(&self, checkpoint: &Checkpoint, signed: &str) -> Result<(), SinkError> {
        let io = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| SinkError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        for name in [
            format!("{}.checkpoint", checkpoint.size),
            "latest.checkpoint".to_owned(),
        ] {
            let path = self.dir.join(&name);
            let tmp = self.dir.join(format!(".{name}.tmp"));
            std::fs::File::create(&tmp)
                .and_then(|mut f| f.write_all(signed.as_bytes()).and_then(|()| f.sync_all()))
                .map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        Ok(())
    }
}

/// Runs a command for each checkpoint, with the signed checkpoint on its
/// standard input and `SYNDICATE_CHECKPOINT_SIZE` and
/// `SYNDICATE_CHECKPOINT_ORIGIN` in its environment; a non-zero exit is a
/// failure.
#[derive(Debug, Clone)]
pub struct CommandSink {
    program: String,
    args: Vec<String>,
}

impl CommandSink {
    /// A sink running `program` with `args`.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        CommandSink {
            program: program.into(),
            args,
        }
    }
}

impl Sink for CommandSink {
    fn publish(&self, checkpoint: &Checkpoint, signed: &str) -> Result<(), SinkError> {
        let failed = |reason: String| SinkError::Command {
            command: self.program.clone(),
            reason,
        };
        let mut child = std::process::Command::new(&self.program)
            .args(&self.args)
            .env("SYNDICATE_CHECKPOINT_SIZE", checkpoint.size.to_string())
            .env("SYNDICATE_CHECKPOINT_ORIGIN", &checkpoint.origin)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(signed.as_bytes())
                .map_err(|e| failed(format!("cannot write its standard input: {e}")))?;
        }
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(failed(format!("it exited with {status}")))
        }
    }
}

/// Signs and publishes a checkpoint of the verified head whenever at least
/// `every_events` events were added since the last one, or `every` has
/// passed and there is something new. Keeps a [`VerifiedTree`], so each
/// poll costs O(new events + log n).
#[derive(Debug)]
pub struct Checkpointer {
    tree: VerifiedTree,
    key: SigningKey,
    origin: String,
    sink: Box<dyn Sink>,
    every_events: Option<u64>,
    every: Option<Duration>,
    last_size: u64,
    last_at: Instant,
}

impl Checkpointer {
    /// A checkpointer of `chain` signing with the log key under `origin`;
    /// by default it checkpoints at every poll that finds new events.
    pub fn new(chain: ChainId, key: SigningKey, origin: &str, sink: Box<dyn Sink>) -> Self {
        Checkpointer {
            tree: VerifiedTree::new(chain),
            key,
            origin: origin.to_owned(),
            sink,
            every_events: None,
            every: None,
            last_size: 0,
            last_at: Instant::now(),
        }
    }

    /// Checkpoints once at least `n` events were added since the last checkpoint.
    #[must_use]
    pub fn every_events(mut self, n: u64) -> Self {
        self.every_events = Some(n.max(1));
        self
    }

    /// Checkpoints once `interval` has passed since the last checkpoint
    /// (and there are new events).
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = Some(interval);
        self
    }

    /// The size of the last checkpoint published (0 before any).
    pub fn last_size(&self) -> u64 {
        self.last_size
    }

    /// Verifies the events added since the last poll and, when due, signs
    /// and publishes a checkpoint of the head. Returns it when one was
    /// published. The sink runs on the calling thread.
    ///
    /// # Errors
    /// [`CheckpointerError::Tree`] when the chain cannot be read or does not
    /// verify (nothing is signed past a violation);
    /// [`CheckpointerError::Sink`] when publishing failed (the next poll
    /// tries again).
    pub async fn poll<S: EventStore + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<Checkpoint>, CheckpointerError> {
        let size = self.tree.catch_up(store, None).await?;
        let new = size - self.last_size;
        if new == 0 {
            return Ok(None);
        }
        let by_count = self.every_events.is_none_or(|n| new >= n);
        let by_time = self.every.is_some_and(|t| self.last_at.elapsed() >= t);
        let due = match (self.every_events, self.every) {
            (None, None) => true,
            (Some(_), None) => by_count,
            (None, Some(_)) => by_time,
            (Some(_), Some(_)) => by_count || by_time,
        };
        if !due {
            return Ok(None);
        }
        let checkpoint = self.tree.checkpoint(&self.origin);
        let signed = self.tree.sign(&self.origin, &self.key)?;
        self.sink.publish(&checkpoint, &signed)?;
        self.last_size = size;
        self.last_at = Instant::now();
        Ok(Some(checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{self, Trust};
    use crate::event::{Actor, EventDraft, EventKind};
    use crate::memory::MemoryStore;
    use crate::store::EventStoreExt as _;

    fn draft(n: u64) -> EventDraft {
        EventDraft::new(
            "s",
            EventKind::Annotation,
            Actor::human("a"),
            serde_json::json!({ "n": n }),
        )
    }

    #[tokio::test]
    async fn checkpoints_every_n_events_into_a_directory_each_verifying() {
        let store = MemoryStore::new(ChainId::new("c").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_seed("log", &[1; 32]).unwrap();
        let trust = Trust::log(key.verifier().clone());
        let mut cp = Checkpointer::new(
            store.chain().clone(),
            key,
            "o",
            Box::new(DirectorySink::new(dir.path())),
        )
        .every_events(5);
        let mut published = Vec::new();
        for n in 0..12 {
            store.append_one(draft(n)).await.unwrap();
            if let Some(c) = cp.poll(&store).await.unwrap() {
                published.push(c.size);
            }
        }
        assert_eq!(published, [5, 10]);
        for size in [5u64, 10] {
            let text =
                std::fs::read_to_string(dir.path().join(format!("{size}.checkpoint"))).unwrap();
            let opened = checkpoint::open(&text, &trust).unwrap();
            let mut tree = VerifiedTree::new(store.chain().clone());
            tree.catch_up(&store, Some(size)).await.unwrap();
            assert_eq!(opened.checkpoint().root, tree.root());
        }
        let latest = std::fs::read_to_string(dir.path().join("latest.checkpoint")).unwrap();
        assert!(latest.starts_with("o\n10\n"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_command_sink_gets_the_note_and_its_failure_is_reported() {
        let store = MemoryStore::new(ChainId::new("c").unwrap());
        store.append_one(draft(0)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let key = SigningKey::from_seed("log", &[1; 32]).unwrap();
        let sink = CommandSink::new("sh", vec!["-c".into(), format!("cat > {}", out.display())]);
        let mut cp = Checkpointer::new(store.chain().clone(), key.clone(), "o", Box::new(sink));
        cp.poll(&store).await.unwrap().unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().starts_with("o\n1\n"));

        let failing = CommandSink::new("sh", vec!["-c".into(), "exit 3".into()]);
        let mut cp = Checkpointer::new(store.chain().clone(), key, "o", Box::new(failing));
        assert!(matches!(
            cp.poll(&store).await,
            Err(CheckpointerError::Sink(SinkError::Command { .. }))
        ));
        assert_eq!(cp.last_size(), 0, "a failed publish is retried");
    }
}
