//! Errors: problems with the path given, and the mapping of SQLite's errors
//! onto [`StoreError`].

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;
use syndicate_core::StoreError;

/// The backend name carried by every [`StoreError`] of this crate.
pub const STORE: &str = "sqlite";

/// Problems with the database path, found before SQLite is asked to open
/// it, so that nothing is created where it should not be. Returned as the
/// source of a [`StoreError::Other`] (or [`StoreError::Unavailable`] for a
/// read-only file); downcast to inspect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The file does not exist and the options say not to create it.
    #[error(
        "database file {} does not exist; check the path (nothing was created)",
        .0.display()
    )]
    NotFound(PathBuf),
    /// The folder that should hold the file does not exist.
    #[error(
        "folder {} for the database does not exist; create it first (nothing was created)",
        .0.display()
    )]
    MissingFolder(PathBuf),
    /// The path names a directory.
    #[error("{} is a directory; give the path of a database file inside it", .0.display())]
    IsDirectory(PathBuf),
    /// The store was opened for writing but the file cannot be written
    /// (marked read-only, on a read-only filesystem, or not this user's to
    /// write).
    #[error(
        "database file {} cannot be written (a read-only file or filesystem, or no permission); \
         make it writable to append, or open it read-only to verify",
        .0.display()
    )]
    ReadOnly(PathBuf),
    /// The store was opened read-only and was asked to append.
    #[error("store {} was opened read-only; open it with read_only = false to append", .0.display())]
    OpenedReadOnly(PathBuf),
    /// The file at the store's path is no longer the one the store opened:
    /// deleted, or replaced by another file (its device and inode differ).
    #[error(
        "database file {} was deleted or replaced since the store opened it; nothing was written: \
         put the original file back or reopen the store",
        .0.display()
    )]
    Replaced(PathBuf),
    /// The worker thread that owns a connection stopped.
    #[error("the sqlite worker thread stopped; reopen the store")]
    WorkerStopped,
}

/// Wraps a path problem into the [`StoreError`] variant callers expect.
pub(crate) fn path_error(error: SqliteError) -> StoreError {
    match error {
        SqliteError::ReadOnly(_) | SqliteError::OpenedReadOnly(_) => StoreError::Unavailable {
            store: STORE,
            maybe_written: false,
            source: Box::new(error),
        },
        _ => StoreError::Other {
            store: STORE,
            source: Box::new(error),
        },
    }
}

/// Maps a SQLite error met while working on `path`.
///
/// `maybe_written` is true when the error came from `COMMIT`.
pub(crate) fn sqlite_error(path: &Path, error: rusqlite::Error, maybe_written: bool) -> StoreError {
    let code = error.sqlite_error_code();
    match code {
        Some(ErrorCode::NotADatabase) => StoreError::Incompatible {
            store: STORE,
            reason: format!(
                "{} is not a SQLite database (or is encrypted); give the path of a syndicate store",
                path.display()
            ),
        },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Other {
            store: STORE,
            source: format!(
                "{} is damaged at the SQLite level ({error}); keep a copy and run `PRAGMA integrity_check` on it",
                path.display()
            )
            .into(),
        },
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable {
            store: STORE,
            maybe_written,
            source: format!("{}: {error}", path.display()).into(),
        },
        _ => StoreError::Other {
            store: STORE,
            source: format!("{}: {error}", path.display()).into(),
        },
    }
}

/// A row that cannot be represented as an event.
pub(crate) fn corrupt(seq: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        store: STORE,
        seq,
        reason: reason.into(),
    }
}
