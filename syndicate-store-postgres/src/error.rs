//! How driver errors become [`StoreError`]s.

use syndicate_core::StoreError;

/// The backend name carried by every error of this crate.
pub(crate) const STORE: &str = "postgres";

/// Where in an append (or read) an error happened: a failure while the
/// COMMIT was in flight may have committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Before COMMIT was sent: nothing was written.
    BeforeCommit,
    /// While COMMIT was in flight: the batch may have been written.
    Commit,
}

/// SQLSTATE classes and codes that mean "the server cannot serve this now;
/// the same call may succeed later".
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "55P03" // lock_not_available (lock_timeout)
        || code == "40001" // serialization_failure
        || code == "40P01" // deadlock_detected
        || code == "57014" // query_canceled (statement_timeout)
        || code == "25P03" // idle_in_transaction_session_timeout
}

/// Whether a driver error means the server is unreachable or not serving.
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(is_transient_sqlstate),
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The constraint a database error names, if any.
pub(crate) fn constraint(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.constraint().map(str::to_owned),
        _ => None,
    }
}

/// Maps a driver error to the store error a caller can act on: unreachable
/// server → [`StoreError::Unavailable`] (retryable), anything else →
/// [`StoreError::Other`].
pub(crate) fn map(error: sqlx::Error, stage: Stage) -> StoreError {
    if is_unavailable(&error) {
        StoreError::Unavailable {
            store: STORE,
            maybe_written: stage == Stage::Commit,
            source: Box::new(error),
        }
    } else {
        StoreError::Other {
            store: STORE,
            source: Box::new(error),
        }
    }
}

/// Maps an error of a read (nothing is written by a read).
pub(crate) fn read(error: sqlx::Error) -> StoreError {
    map(error, Stage::BeforeCommit)
}

/// A [`StoreError::Other`] with a message.
pub(crate) fn other(message: impl Into<String>) -> StoreError {
    StoreError::Other {
        store: STORE,
        source: message.into().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_retryable_and_say_whether_they_may_have_committed() {
        let io = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let before = map(io(), Stage::BeforeCommit);
        assert!(before.is_retryable());
        assert!(matches!(
            before,
            StoreError::Unavailable {
                maybe_written: false,
                ..
            }
        ));
        assert!(matches!(
            map(io(), Stage::Commit),
            StoreError::Unavailable {
                maybe_written: true,
                ..
            }
        ));
        assert!(map(sqlx::Error::PoolTimedOut, Stage::BeforeCommit).is_retryable());
        // After the commit was sent the batch may be in: no blind retry.
        let after = map(io(), Stage::Commit);
        assert!(!after.is_retryable() && after.may_have_written());
        assert!(!before.may_have_written());
    }

    #[test]
    fn other_driver_errors_are_not_retryable() {
        let error = map(sqlx::Error::RowNotFound, Stage::BeforeCommit);
        assert!(!error.is_retryable());
        assert!(matches!(
            error,
            StoreError::Other {
                store: "postgres",
                ..
            }
        ));
    }

    #[test]
    fn transient_sqlstates_are_recognized() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "55P03", "40001",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "XX000"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }
}
