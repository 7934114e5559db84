//! [`WriterGuard`]: what the writer checks at the start of every append, so
//! that it never writes to a file other than the one it opened, or to a
//! schema other than ours.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::Connection;
use syndicate_core::StoreError;

use crate::error::{SqliteError, path_error, sqlite_error};
use crate::schema::{SCHEMA_VERSION, foreign_schema, schema_differences, schema_objects};

/// A file's identity: device and inode numbers. A file deleted and created
/// again, or replaced by a rename, has another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path` now; `None` when there is none.
    #[cfg(unix)]
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Without device and inode numbers, only the file's presence is checked.
    #[cfg(not(unix))]
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        path.exists().then_some(FileId { dev: 0, ino: 0 })
    }
}

/// What the writer connection opened: the file's identity and the schema
/// cookie (`PRAGMA schema_version`, which SQLite changes whenever any
/// schema object is created, changed or dropped).
#[derive(Debug)]
pub(crate) struct WriterGuard {
    identity: Option<FileId>,
    cookie: AtomicI64,
}

impl WriterGuard {
    /// Records the file and schema the writer `conn` has just opened.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the cookie cannot be read.
    pub(crate) fn capture(conn: &Connection, path: &Path) -> Result<WriterGuard, StoreError> {
        Ok(WriterGuard {
            identity: FileId::of(path),
            cookie: AtomicI64::new(cookie(conn, path)?),
        })
    }

    /// Checks, inside the append's write transaction, that `path` is still
    /// the file this connection opened and that its schema is still exactly
    /// ours (re-read only when the schema cookie moved).
    ///
    /// # Errors
    /// [`StoreError::Other`] with [`SqliteError::Replaced`] when the file
    /// was deleted or replaced; [`StoreError::Incompatible`] when a schema
    /// object was added, changed or dropped.
    pub(crate) fn check(&self, conn: &Connection, path: &Path) -> Result<(), StoreError> {
        if FileId::of(path) != self.identity {
            return Err(path_error(SqliteError::Replaced(path.to_owned())));
        }
        let now = cookie(conn, path)?;
        if now != self.cookie.load(Ordering::Relaxed) {
            let objects = schema_objects(conn).map_err(|e| sqlite_error(path, e, false))?;
            let differences = schema_differences(&objects, SCHEMA_VERSION);
            if !differences.is_empty() {
                return Err(foreign_schema(path, &differences));
            }
            self.cookie.store(now, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn cookie(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA schema_version", [], |r| r.get(0))
        .map_err(|e| sqlite_error(path, e, false))
}
