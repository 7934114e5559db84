//! The schema, its migrations, and opening a connection with the right
//! settings.
//!
//! The schema version lives in `PRAGMA user_version`; `PRAGMA
//! application_id` marks the file as a syndicate store. Opening a store for
//! writing applies the missing migrations, in order, each in its own
//! `BEGIN IMMEDIATE` transaction that also sets `user_version`, so a crash
//! leaves the file at one version or the next, never between. A file with a
//! newer version, another application's id, or any schema object (table,
//! index, view, trigger) that our migrations did not create, or created
//! differently, is refused without being changed.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use syndicate_core::StoreError;

use crate::error::{STORE, SqliteError, path_error, sqlite_error};

/// The schema version this crate writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// `PRAGMA application_id` of a syndicate store: the ASCII bytes `SYND`.
pub const APPLICATION_ID: i64 = 0x5359_4e44;

/// The migrations: entry `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, crate::tree::V2];

/// Version 1: the `events` table and its indexes. Every index leads with
/// `chain`, since one file may hold several chains.
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // public through `testing`
pub const V1: &str = "
CREATE TABLE events (
    chain      TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    canonical  BLOB    NOT NULL,
    at         TEXT    NOT NULL,
    session    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    request_id TEXT,
    once       TEXT,
    PRIMARY KEY (chain, seq)
) STRICT;
CREATE UNIQUE INDEX events_once ON events (chain, once) WHERE once IS NOT NULL;
CREATE INDEX events_session ON events (chain, session, seq);
CREATE INDEX events_kind ON events (chain, kind, seq);
CREATE INDEX events_actor ON events (chain, actor, seq);
CREATE INDEX events_request_id ON events (chain, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX events_at ON events (chain, at, seq);
";

/// How each commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced to disk before `append`
    /// returns, so nothing acknowledged is lost on power failure or OS crash
    /// (on a disk that honours fsync). The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the write-ahead log is synced only at
    /// checkpoints. Faster. Nothing acknowledged is lost when a process
    /// crashes or is killed; after a power failure or OS crash the events
    /// committed since the last checkpoint (up to about 4 MiB of log) may be
    /// missing. The file stays consistent and its chain verifies: it is the
    /// chain as of an earlier head, and the next append reuses the lost
    /// seqs, so a head recorded elsewhere in between no longer matches.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// How to open a store file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Create the file and its schema when missing (default true). When
    /// false, a missing file is an error and nothing is created.
    pub create: bool,
    /// Open for reading only (default false): nothing is ever written, the
    /// schema is not migrated, and `append` fails with
    /// [`StoreError::Unavailable`]. For verification and export.
    pub read_only: bool,
    /// How commits reach the disk (default [`Durability::Full`]).
    pub durability: Durability,
    /// How long to wait for another connection's write lock before failing
    /// with [`StoreError::Unavailable`] (default 30 s). Appenders in other
    /// processes queue within this time.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            create: true,
            read_only: false,
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(30),
        }
    }
}

impl SqliteOptions {
    /// Sets [`create`](Self::create).
    pub fn with_create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Sets [`read_only`](Self::read_only).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`durability`](Self::durability).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }
}

/// Which connection of a store is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // public through `testing`
pub enum Role {
    /// The one connection that appends (and migrates the schema).
    Writer,
    /// A connection that only reads; never waits for the writer in WAL mode.
    Reader,
}

/// Checks the path before SQLite sees it, so that a bad path creates nothing.
fn check_path(path: &Path, options: &SqliteOptions, role: Role) -> Result<(), StoreError> {
    if path.is_dir() {
        return Err(path_error(SqliteError::IsDirectory(path.to_owned())));
    }
    match std::fs::metadata(path) {
        Ok(meta) => {
            if role == Role::Writer && meta.permissions().readonly() {
                return Err(path_error(SqliteError::ReadOnly(path.to_owned())));
            }
            Ok(())
        }
        Err(_) => {
            if !options.create || options.read_only {
                return Err(path_error(SqliteError::NotFound(path.to_owned())));
            }
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !folder.is_dir() {
                return Err(path_error(SqliteError::MissingFolder(folder.to_owned())));
            }
            Ok(())
        }
    }
}

/// What a file says about itself before anything is written to it.
struct Found {
    version: i64,
    application_id: i64,
    objects: Vec<SchemaObject>,
}

/// One row of `sqlite_schema`: a table, index, view or trigger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SchemaObject {
    kind: String,
    name: String,
    table: String,
    sql: Option<String>,
}

impl fmt::Display for SchemaObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)?;
        if self.table != self.name {
            write!(f, " on {:?}", self.table)?;
        }
        Ok(())
    }
}

/// Every schema object of the file, in a fixed order. `sqlite_stat*`
/// tables, which SQLite itself creates for `ANALYZE`, are left out: they
/// only guide the query planner.
pub(crate) fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare_cached(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema \
         WHERE name NOT LIKE 'sqlite\\_stat%' ESCAPE '\\' ORDER BY type, name",
    )?;
    stmt.query_map([], |row| {
        Ok(SchemaObject {
            kind: row.get(0)?,
            name: row.get(1)?,
            table: row.get(2)?,
            sql: row.get(3)?,
        })
    })?
    .collect()
}

/// The schema objects of each version, as SQLite records them after
/// applying our migrations to an empty database: entry `v` is version `v`.
fn expected_objects() -> &'static [Vec<SchemaObject>] {
    static EXPECTED: OnceLock<Vec<Vec<SchemaObject>>> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let build = || -> rusqlite::Result<Vec<Vec<SchemaObject>>> {
            let conn = Connection::open_in_memory()?;
            let mut versions = vec![schema_objects(&conn)?];
            for migration in MIGRATIONS {
                conn.execute_batch(migration)?;
                versions.push(schema_objects(&conn)?);
            }
            Ok(versions)
        };
        // Our own migrations on an in-memory database cannot fail; if they
        // did, an empty expectation refuses every file rather than none.
        build().unwrap_or_default()
    })
}

/// The differences between a file's schema objects and those of `version`,
/// one phrase each; empty when the file holds exactly our schema.
pub(crate) fn schema_differences(found: &[SchemaObject], version: i64) -> Vec<String> {
    let empty = Vec::new();
    let expected = usize::try_from(version)
        .ok()
        .and_then(|v| expected_objects().get(v))
        .unwrap_or(&empty);
    let mut differences = Vec::new();
    for object in found {
        match expected
            .iter()
            .find(|e| e.kind == object.kind && e.name == object.name)
        {
            None => differences.push(format!("{object} that syndicate did not create")),
            Some(ours) if ours != object => {
                differences.push(format!("{object} that differs from syndicate's"));
            }
            Some(_) => {}
        }
    }
    for object in expected {
        if !found
            .iter()
            .any(|f| f.kind == object.kind && f.name == object.name)
        {
            differences.push(format!("no {object}"));
        }
    }
    differences
}

/// The error for a file whose schema is not exactly ours.
pub(crate) fn foreign_schema(path: &Path, differences: &[String]) -> StoreError {
    StoreError::Incompatible {
        store: STORE,
        reason: format!(
            "{} does not hold exactly syndicate's schema ({}); a store file may hold nothing \
             else, since a trigger, view or index can change what is written or read: remove \
             what was added, or restore the file from a copy (nothing was changed)",
            path.display(),
            differences.join("; ")
        ),
    }
}

fn inspect(conn: &Connection, path: &Path) -> Result<Found, StoreError> {
    let err = |e| sqlite_error(path, e, false);
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let application_id = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    let objects = schema_objects(conn).map_err(err)?;
    Ok(Found {
        version,
        application_id,
        objects,
    })
}

/// Refuses files that are not ours or are newer; returns whether the schema
/// needs migrating.
fn judge(found: &Found, path: &Path, options: &SqliteOptions) -> Result<bool, StoreError> {
    let incompatible = |reason: String| StoreError::Incompatible {
        store: STORE,
        reason,
    };
    let p = path.display();
    if found.application_id != 0 && found.application_id != APPLICATION_ID {
        return Err(incompatible(format!(
            "{p} belongs to another application (application_id {:#x}); give the path of a syndicate store",
            found.application_id
        )));
    }
    if found.version > SCHEMA_VERSION {
        return Err(incompatible(format!(
            "{p} has schema version {}, newer than the {SCHEMA_VERSION} this version of syndicate reads; upgrade syndicate",
            found.version
        )));
    }
    if found.version == 0 && !found.objects.is_empty() {
        return Err(incompatible(format!(
            "{p} is a SQLite database of another application (it has tables but no syndicate schema); give the path of a syndicate store"
        )));
    }
    if found.version > 0 {
        let differences = schema_differences(&found.objects, found.version);
        if !differences.is_empty() {
            return Err(foreign_schema(path, &differences));
        }
    }
    if found.version == 0 && (!options.create || options.read_only) {
        return Err(incompatible(format!(
            "{p} is an empty database, not a syndicate store; create the store by appending to it first"
        )));
    }
    if found.version < SCHEMA_VERSION && options.read_only {
        return Err(incompatible(format!(
            "{p} has schema version {}, older than {SCHEMA_VERSION}; open it once for writing to migrate it",
            found.version
        )));
    }
    Ok(found.version < SCHEMA_VERSION)
}

/// Opens one connection of a store at `path`, checking the file and, for
/// the writer, setting WAL mode and the durability and migrating the schema.
///
/// # Errors
/// - [`StoreError::Other`] with a [`SqliteError`] source for a missing file
///   (when not creating), a missing folder or a directory;
/// - [`StoreError::Unavailable`] for a read-only file opened for writing, a
///   lock held past the busy timeout, or an I/O error;
/// - [`StoreError::Incompatible`] for a file that is not SQLite, belongs to
///   another application, or has a newer schema.
///
/// In each case the file is left as it was.
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // public through `testing`
pub fn open_connection(
    path: &Path,
    options: &SqliteOptions,
    role: Role,
) -> Result<Connection, StoreError> {
    let writer = role == Role::Writer && !options.read_only;
    let role = if writer { Role::Writer } else { Role::Reader };
    check_path(path, options, role)?;
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e| sqlite_error(path, e, false);
    let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
    // SQLite falls back to read-only when it cannot write (a read-only
    // filesystem, a file this user may only read): refuse now, not at the
    // first append.
    if writer && conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
        return Err(path_error(SqliteError::ReadOnly(path.to_owned())));
    }
    conn.busy_timeout(options.busy_timeout).map_err(err)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans that do not depend on bound values: the bundled SQLite has
    // STAT4, which otherwise recompiles every cached statement with a range
    // on a bound seq (`seq >= ?`) each time it is run, and that
    // recompilation costs more than the read it serves.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(err)?;
    let found = inspect(&conn, path)?;
    let migrate = judge(&found, path, options)?;
    if !writer {
        if migrate {
            return Err(StoreError::Incompatible {
                store: STORE,
                reason: format!(
                    "{} has no syndicate schema yet; open it for writing first",
                    path.display()
                ),
            });
        }
        return Ok(conn);
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable {
            store: STORE,
            maybe_written: false,
            source: format!(
                "{}: cannot switch to WAL mode (journal mode stays {mode}); put the file on a local filesystem",
                path.display()
            )
            .into(),
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}",
        options.durability.pragma()
    ))
    .map_err(err)?;
    if migrate {
        apply_migrations(&mut conn, path, options)?;
    }
    Ok(conn)
}

/// Applies the missing migrations, each in one `BEGIN IMMEDIATE`
/// transaction, re-reading the version under the lock (another process may
/// have migrated meanwhile).
fn apply_migrations(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    let err = |e| sqlite_error(path, e, false);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let found = inspect(&tx, path)?;
        if !judge(&found, path, options)? {
            return Ok(());
        }
        let from = usize::try_from(found.version).unwrap_or(0);
        tx.execute_batch(MIGRATIONS[from]).map_err(err)?;
        tx.execute_batch(&format!(
            "PRAGMA user_version = {}; PRAGMA application_id = {APPLICATION_ID};",
            found.version + 1
        ))
        .map_err(err)?;
        tx.commit().map_err(|e| sqlite_error(path, e, true))?;
    }
}
