//! The store's work as plain blocking functions over a [`Connection`]
//! opened with [`open_connection`](crate::schema::open_connection).
//! [`SqliteStore`](crate::SqliteStore) runs them on its worker threads.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Row, TransactionBehavior, params};
use syndicate_core::{
    ChainId, Columns, Digest, Event, EventDraft, Head, Order, Query, StoreError, Timestamp, seal,
};

use crate::error::{corrupt, sqlite_error};
use crate::guard::WriterGuard;

/// The columns read back for an event, in the order [`event_of`] expects.
const EVENT_COLUMNS: &str = "seq, hash, canonical, at, session, kind, actor, request_id, once";

const INSERT: &str = "INSERT INTO events \
    (chain, seq, hash, canonical, at, session, kind, actor, request_id, once) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const HEAD: &str = "SELECT seq, hash, at FROM events WHERE chain = ?1 ORDER BY seq DESC LIMIT 1";

const ONCE_USED: &str = "SELECT 1 FROM events WHERE chain = ?1 AND once = ?2";

/// Seals and appends several callers' batches in one `BEGIN IMMEDIATE`
/// transaction and one commit (group commit). The write lock is taken
/// first, the file and its schema are checked against what was opened
/// ([`WriterGuard::check`]), then the head is read, and each batch in turn
/// has its single-use keys checked, is sealed against the head the batch
/// before it left and is inserted, every insert checked to change exactly
/// our one row. Each batch is written whole or not at all, and answered as
/// if appended alone:
/// - a batch refused for its own sake before anything of it is written
///   ([`StoreError::InvalidDraft`], [`StoreError::AlreadyUsed`]) is left out
///   and the others go on;
/// - when the write lock cannot be taken, every batch gets that error;
/// - any other failure (the file replaced, an I/O error, a foreign trigger)
///   rolls the whole group back, and each batch is then appended on its own
///   transaction, in order, to get its own answer;
/// - a failed `COMMIT` answers every batch that was in it with
///   [`StoreError::Unavailable`] and `maybe_written`.
///
/// With [`Wait::No`], the write lock is tried once instead of waiting up to
/// the busy timeout: `None` then means another connection holds it and
/// nothing was done.
///
/// Returns one answer per batch, in order.
pub(crate) fn append_group(
    conn: &mut Connection,
    guard: &WriterGuard,
    path: &Path,
    chain: &ChainId,
    batches: &[Vec<EventDraft>],
    wait: Wait,
) -> Option<Vec<Result<Vec<Event>, StoreError>>> {
    let tx = match begin(conn, path, wait) {
        Ok(tx) => tx,
        Err(Begin::Busy) => return None,
        Err(Begin::Failed(e)) => return Some(same_for_all(e, batches.len())),
    };
    match write_group(tx, guard, path, chain, batches) {
        Ok(answers) => Some(answers),
        Err(e) if batches.len() == 1 => Some(vec![Err(e)]),
        Err(_) => Some(
            batches
                .iter()
                .map(|drafts| {
                    let tx = begin(conn, path, Wait::BusyTimeout).map_err(|begin| match begin {
                        Begin::Failed(e) => e,
                        Begin::Busy => unreachable_busy(path),
                    })?;
                    let mut answers =
                        write_group(tx, guard, path, chain, std::slice::from_ref(drafts))?;
                    answers.pop().unwrap_or_else(|| Ok(Vec::new()))
                })
                .collect(),
        ),
    }
}

/// [`Begin::Busy`] comes only from [`Wait::No`]; kept as an error, not a panic.
fn unreachable_busy(path: &Path) -> StoreError {
    StoreError::Unavailable {
        store: crate::error::STORE,
        maybe_written: false,
        source: format!("{}: database is locked", path.display()).into(),
    }
}

/// How [`append_group`] takes the write lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Up to the connection's busy timeout.
    BusyTimeout,
    /// Once, without waiting; the busy timeout to restore afterwards.
    No(std::time::Duration),
}

enum Begin {
    Busy,
    Failed(StoreError),
}

fn begin<'c>(
    conn: &'c mut Connection,
    path: &Path,
    wait: Wait,
) -> Result<rusqlite::Transaction<'c>, Begin> {
    let failed = |e| Begin::Failed(sqlite_error(path, e, false));
    let Wait::No(busy_timeout) = wait else {
        return conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed);
    };
    // The busy timeout is set back while the transaction is open, so that
    // its statements and commit wait as usual.
    conn.busy_timeout(std::time::Duration::ZERO)
        .map_err(failed)?;
    // `new_unchecked` borrows the connection shared, so that it can be used
    // again on failure; it is not shared with anything else meanwhile.
    match rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate) {
        Ok(tx) => {
            tx.busy_timeout(busy_timeout).map_err(failed)?;
            Ok(tx)
        }
        Err(e) => {
            conn.busy_timeout(busy_timeout).map_err(failed)?;
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                Err(Begin::Busy)
            } else {
                Err(failed(e))
            }
        }
    }
}

/// The same error for each of `count` batches.
fn same_for_all(e: StoreError, count: usize) -> Vec<Result<Vec<Event>, StoreError>> {
    let mut answers: Vec<_> = (1..count).map(|_| Err(same_error(&e))).collect();
    answers.insert(0, Err(e));
    answers
}

/// [`append_group`]'s writes and commit in `tx`: an answer per batch, or
/// an error when the group was rolled back whole, before its commit.
fn write_group(
    tx: rusqlite::Transaction<'_>,
    guard: &WriterGuard,
    path: &Path,
    chain: &ChainId,
    batches: &[Vec<EventDraft>],
) -> Result<Vec<Result<Vec<Event>, StoreError>>, StoreError> {
    guard.check(&tx, path)?;
    let mut head = head(&tx, path, chain)?;
    let mut answers = Vec::with_capacity(batches.len());
    for drafts in batches {
        match write_batch(&tx, path, chain, head.as_ref(), drafts)? {
            Ok(events) => {
                if let Some(last) = events.last() {
                    head = Some(head_of(last)?);
                }
                answers.push(Ok(events));
            }
            Err(refused) => answers.push(Err(refused)),
        }
    }
    if let Err(e) = tx.commit() {
        // The errors of this crate carry their source as text: a copy for
        // each batch loses nothing.
        let failed = sqlite_error(path, e, true);
        return Ok(answers
            .into_iter()
            .map(|answer| answer.and_then(|_| Err(same_error(&failed))))
            .collect());
    }
    Ok(answers)
}

/// The same error again, for the next batch of a group that failed as a
/// whole (a driver's error is kept as its message).
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable {
            store,
            maybe_written,
            source,
        } => StoreError::Unavailable {
            store,
            maybe_written: *maybe_written,
            source: source.to_string().into(),
        },
        StoreError::Corrupt { store, seq, reason } => StoreError::Corrupt {
            store,
            seq: *seq,
            reason: reason.clone(),
        },
        StoreError::Incompatible { store, reason } => StoreError::Incompatible {
            store,
            reason: reason.clone(),
        },
        StoreError::AlreadyUsed { key } => StoreError::AlreadyUsed { key: key.clone() },
        other => StoreError::Other {
            store: crate::error::STORE,
            source: other.to_string().into(),
        },
    }
}

/// The head after `event`, as the next batch of a group is sealed against.
fn head_of(event: &Event) -> Result<Head, StoreError> {
    Ok(Head {
        seq: event.seq,
        hash: event.hash,
        at: event
            .columns
            .at
            .parse()
            .map_err(|_| corrupt(event.seq, "a sealed event's at is not a timestamp"))?,
    })
}

/// Seals `drafts` against `head` and inserts them on `conn`, inside a
/// transaction the caller holds: the single-use keys are checked, and every
/// insert must change exactly our one row.
///
/// The inner error is a refusal of this batch alone, found before anything
/// of it was written ([`StoreError::InvalidDraft`],
/// [`StoreError::AlreadyUsed`]); the outer one leaves the transaction with
/// part of the batch in it, to be rolled back.
fn write_batch(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
    head: Option<&Head>,
    drafts: &[EventDraft],
) -> Result<Result<Vec<Event>, StoreError>, StoreError> {
    let err = |e| sqlite_error(path, e, false);
    let events = match seal(chain, head, drafts, Timestamp::now()) {
        Ok(events) => events,
        Err(refused) => return Ok(Err(refused.into())),
    };
    let mut used = conn.prepare_cached(ONCE_USED).map_err(err)?;
    for key in drafts.iter().filter_map(|d| d.once.as_deref()) {
        if used.exists(params![chain.as_str(), key]).map_err(err)? {
            return Ok(Err(StoreError::AlreadyUsed {
                key: key.to_owned(),
            }));
        }
    }
    let changes_before = conn.total_changes();
    let mut insert = conn.prepare_cached(INSERT).map_err(err)?;
    for event in &events {
        let c = &event.columns;
        let written = insert
            .execute(params![
                chain.as_str(),
                seq_param(event.seq),
                event.hash.to_string(),
                event.canonical,
                c.at,
                c.session,
                c.kind,
                c.actor,
                c.request_id,
                c.once,
            ])
            .map_err(|e| insert_error(path, e, &event.columns))?;
        if written != 1 {
            return Err(foreign_write(path, event.seq, written));
        }
    }
    // Rows changed by anything else (a trigger inserting, updating or
    // deleting elsewhere) count here too; only our rows may change.
    let changed = conn.total_changes() - changes_before;
    if changed != events.len() as u64 {
        return Err(foreign_write(path, events[0].seq, changed as usize));
    }
    Ok(Ok(events))
}

/// An insert that did not change exactly our rows: something in the file
/// (a trigger) acts on writes. The transaction is rolled back.
fn foreign_write(path: &Path, seq: u64, written: usize) -> StoreError {
    StoreError::Incompatible {
        store: crate::error::STORE,
        reason: format!(
            "appending seq {seq} to {} changed {written} rows where syndicate wrote its own \
             rows only: something in the file (a trigger) acts on writes; nothing was written, \
             remove it or restore the file from a copy",
            path.display()
        ),
    }
}

/// A unique violation on `once` means the key was taken (the check above
/// makes this unreachable, but the index is the last word).
fn insert_error(path: &Path, e: rusqlite::Error, columns: &Columns) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        && msg.contains("events.once")
        && let Some(key) = &columns.once
    {
        return StoreError::AlreadyUsed { key: key.clone() };
    }
    sqlite_error(path, e, false)
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The last event of `chain`, or `None` when it has none.
///
/// # Errors
/// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] when the head
/// row's hash or `at` cannot be read.
pub(crate) fn head(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
) -> Result<Option<Head>, StoreError> {
    let err = |e| sqlite_error(path, e, false);
    let mut stmt = conn.prepare_cached(HEAD).map_err(err)?;
    let mut rows = stmt.query(params![chain.as_str()]).map_err(err)?;
    let Some(row) = rows.next().map_err(err)? else {
        return Ok(None);
    };
    let seq = seq_of(row, 0, 0)?;
    let hash = hash_of(row, 1, seq)?;
    let at_text = text_of(row, 2, "at", seq)?;
    let at = at_text.parse().map_err(|_| {
        corrupt(
            seq,
            format!("at column {at_text:?} is not a YYYY-MM-DDTHH:MM:SS.ffffffZ timestamp"),
        )
    })?;
    Ok(Some(Head { seq, hash, at }))
}

/// Up to `limit` events of `chain` with seq ≥ `from_seq`, in seq order,
/// exactly as stored.
///
/// # Errors
/// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] naming the first
/// row that cannot be represented as an [`Event`].
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // public through `testing`
pub fn read(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
    from_seq: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<Event>, StoreError> {
    let Ok(from) = i64::try_from(from_seq) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut bytes = 0usize;
    let err = |e| sqlite_error(path, e, false);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE chain = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3"
        ))
        .map_err(err)?;
    let mut rows = stmt
        .query(params![chain.as_str(), from, limit])
        .map_err(err)?;
    let mut events = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(1024));
    // Rows are stepped one at a time: stopping early leaves the rest unread.
    while bytes < max_bytes
        && let Some(row) = rows.next().map_err(err)?
    {
        let fallback = from_seq + events.len() as u64;
        let event = event_of(row, fallback)?;
        bytes = bytes.saturating_add(event.canonical.len());
        events.push(event);
    }
    Ok(events)
}

/// Events of `chain` matching a query, in its order, at most `query.limit`.
/// Every filter is answered by an index that leads with `chain`.
///
/// # Errors
/// As [`read`].
pub(crate) fn query(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
    query: &Query,
) -> Result<Vec<Event>, StoreError> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE chain = ?1");
    let mut values: Vec<Value> = vec![Value::Text(chain.as_str().to_owned())];
    let mut filter = |clause: &str, value: Value| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(session) = &query.session {
        filter("session =", Value::Text(session.clone()));
    }
    if let Some(kind) = &query.kind {
        filter("kind =", Value::Text(kind.as_str().to_owned()));
    }
    if let Some(actor) = &query.actor {
        filter("actor =", Value::Text(actor.clone()));
    }
    if let Some(request_id) = &query.request_id {
        filter("request_id =", Value::Text(request_id.clone()));
    }
    if let Some(since) = &query.since {
        filter("at >=", Value::Text(since.to_string()));
    }
    if let Some(until) = &query.until {
        filter("at <", Value::Text(until.to_string()));
    }
    if let Some(after) = query.after_seq {
        match i64::try_from(after) {
            Ok(after) => filter("seq >", Value::Integer(after)),
            Err(_) => return Ok(Vec::new()),
        }
    }
    if let Some(before) = query.before_seq {
        filter("seq <", Value::Integer(seq_param(before)));
    }
    let order = match query.order {
        Order::Ascending => "ASC",
        Order::Descending => "DESC",
    };
    values.push(Value::Integer(
        i64::try_from(query.limit).unwrap_or(i64::MAX),
    ));
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?{}", values.len()));
    let err = |e| sqlite_error(path, e, false);
    let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values))
        .map_err(err)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        events.push(event_of(row, 0)?);
    }
    Ok(events)
}

/// The chains the file holds, in name order (one index probe per chain).
///
/// # Errors
/// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] (seq 0) when a
/// chain column is not a valid chain id.
pub(crate) fn chains(conn: &Connection, path: &Path) -> Result<Vec<ChainId>, StoreError> {
    let err = |e| sqlite_error(path, e, false);
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE c(name) AS ( \
                SELECT min(chain) FROM events \
                UNION ALL \
                SELECT (SELECT min(chain) FROM events WHERE chain > c.name) FROM c \
                WHERE c.name IS NOT NULL) \
             SELECT name FROM c WHERE name IS NOT NULL",
        )
        .map_err(err)?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    names
        .into_iter()
        .map(|name| {
            ChainId::new(name.clone())
                .map_err(|e| corrupt(0, format!("chain column holds {name:?}: {e}")))
        })
        .collect()
}

/// One row as an [`Event`], refusing wrong types rather than converting.
/// `fallback` is the seq to report when the seq column itself is unreadable.
fn event_of(row: &Row<'_>, fallback: u64) -> Result<Event, StoreError> {
    let seq = seq_of(row, 0, fallback)?;
    let hash = hash_of(row, 1, seq)?;
    let canonical = match value(row, 2, seq)? {
        ValueRef::Blob(bytes) => bytes.to_vec(),
        other => return Err(wrong_type(seq, "canonical", "a blob", other)),
    };
    Ok(Event {
        seq,
        hash,
        canonical,
        columns: Columns {
            at: text_of(row, 3, "at", seq)?.to_owned(),
            session: text_of(row, 4, "session", seq)?.to_owned(),
            kind: text_of(row, 5, "kind", seq)?.to_owned(),
            actor: text_of(row, 6, "actor", seq)?.to_owned(),
            request_id: optional_text_of(row, 7, "request_id", seq)?,
            once: optional_text_of(row, 8, "once", seq)?,
        },
    })
}

fn value<'r>(row: &'r Row<'_>, index: usize, seq: u64) -> Result<ValueRef<'r>, StoreError> {
    row.get_ref(index)
        .map_err(|e| corrupt(seq, format!("column {index} cannot be read: {e}")))
}

fn kind_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

fn wrong_type(seq: u64, column: &str, expected: &str, found: ValueRef<'_>) -> StoreError {
    corrupt(
        seq,
        format!("{column} column is {}, not {expected}", kind_name(found)),
    )
}

fn seq_of(row: &Row<'_>, index: usize, fallback: u64) -> Result<u64, StoreError> {
    match value(row, index, fallback)? {
        ValueRef::Integer(n) if n >= 0 => Ok(n as u64),
        other => Err(wrong_type(fallback, "seq", "a non-negative integer", other)),
    }
}

fn hash_of(row: &Row<'_>, index: usize, seq: u64) -> Result<Digest, StoreError> {
    let text = text_of(row, index, "hash", seq)?;
    text.parse().map_err(|_| {
        corrupt(
            seq,
            format!("hash column {text:?} is not 64 lower-case hex characters"),
        )
    })
}

fn text_of<'r>(
    row: &'r Row<'_>,
    index: usize,
    column: &str,
    seq: u64,
) -> Result<&'r str, StoreError> {
    match value(row, index, seq)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| corrupt(seq, format!("{column} column is not valid UTF-8"))),
        other => Err(wrong_type(seq, column, "text", other)),
    }
}

fn optional_text_of(
    row: &Row<'_>,
    index: usize,
    column: &str,
    seq: u64,
) -> Result<Option<String>, StoreError> {
    match value(row, index, seq)? {
        ValueRef::Null => Ok(None),
        _ => text_of(row, index, column, seq).map(|s| Some(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use syndicate_core::{Actor, EventKind};

    use super::*;
    use crate::schema::{Role, SqliteOptions, open_connection};

    /// The second line of defence: even when the schema check passed (here,
    /// the guard is captured after the trigger exists), an insert that a
    /// trigger swallows is caught by counting the rows written.
    #[test]
    fn an_insert_a_trigger_swallows_is_caught_by_the_row_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = open_connection(&path, &SqliteOptions::default(), Role::Writer).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER swallow BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END",
        )
        .unwrap();
        let guard = WriterGuard::capture(&conn, &path).unwrap();
        let chain = ChainId::new("c").unwrap();
        let draft = EventDraft::new(
            "s",
            EventKind::Annotation,
            Actor::human("t"),
            json!({"n": 1}),
        );
        // Alone, and in a group: every batch is refused, nothing written.
        for batches in [
            vec![vec![draft.clone()]],
            vec![vec![draft.clone()], vec![draft]],
        ] {
            let answers = append_group(
                &mut conn,
                &guard,
                &path,
                &chain,
                &batches,
                Wait::BusyTimeout,
            )
            .unwrap();
            assert_eq!(answers.len(), batches.len());
            for answer in &answers {
                assert!(
                    matches!(answer, Err(StoreError::Incompatible { reason, .. }) if reason.contains("changed 0 rows")),
                    "got {answer:?}"
                );
            }
            assert_eq!(head(&conn, &path, &chain).unwrap(), None);
        }
    }
}
