//! [`PostgresStore`]: the [`EventStore`] on a PostgreSQL server.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, QueryBuilder, Row};
use syndicate_core::batching::BatchingStore;
use syndicate_core::merkle::{Hash, NodeId};
use syndicate_core::{
    ChainId, Columns, Digest, Event, EventDraft, EventStore, Head, Order, Query, StoreError,
    Timestamp, seal,
};
use time::OffsetDateTime;

use crate::error::{self, STORE, Stage};
use crate::schema::{self, MigrationReport};

/// How to connect to the server and what to do on open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Most connections this store's pool opens.
    pub max_connections: u32,
    /// How long an operation waits for a connection (including reconnecting
    /// to a server that went away) before it fails with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// How long an append waits for the chain's lock, held by another
    /// appender, before it fails with [`StoreError::Unavailable`].
    pub lock_timeout: Duration,
    /// Apply missing migrations and register the chain on open (default
    /// true). When false, nothing is created or changed on open, and a
    /// database whose schema is not the current one is refused (for
    /// verification and export).
    pub create: bool,
}

impl PostgresOptions {
    /// Sets [`max_connections`](Self::max_connections).
    pub fn with_max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn with_acquire_timeout(mut self, acquire_timeout: Duration) -> Self {
        self.acquire_timeout = acquire_timeout;
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    /// Sets [`create`](Self::create).
    pub fn with_create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(30),
            create: true,
        }
    }
}

/// An [`EventStore`] on PostgreSQL: many processes on many machines append
/// to one linear chain.
///
/// Appenders serialize on the chain's row in `heads`. Uncontended, an append
/// is one round trip: the batch is sealed with [`syndicate_core::seal()`]
/// against the head this store last wrote or read, and one autocommit
/// statement moves the head and inserts the rows only if the head is still
/// that one. Otherwise (first append, another writer moved the head) the
/// store takes the row with `SELECT ... FOR UPDATE` inside a transaction,
/// seals against it, inserts, moves the head and commits. Single-use keys are a unique index; a second
/// use is [`StoreError::AlreadyUsed`]. A lost connection or a restarting
/// server is [`StoreError::Unavailable`], which is retryable; nothing is
/// half-written, because a batch is one transaction.
///
/// Group commit is built in: appends made through one store (or its
/// clones) while another of its appends is in flight are sealed and
/// committed together in one transaction, each caller still getting exactly
/// its own events, contiguous; a batch refused for its own sake is retried
/// alone so that it alone is refused (see [`BatchingStore`], which does
/// this over the store's single-transaction append).
///
/// Cancellation: dropping an `append` future after its COMMIT was sent does
/// not undo the commit; before that, the transaction is rolled back.
#[derive(Clone)]
pub struct PostgresStore {
    table: Arc<BatchingStore<Table>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("chain", &self.table().chain)
            .field("server", &self.table().server)
            .finish()
    }
}

/// One chain's rows: appends one batch per transaction.
#[derive(Clone)]
struct Table {
    pool: PgPool,
    chain: ChainId,
    server: String,
    /// What this process last saw of the head and the server's clock.
    seen: Arc<std::sync::Mutex<Option<Seen>>>,
}

/// The chain's head as this process last wrote or read it, and a reading of
/// the server's clock with the moment it arrived.
#[derive(Debug, Clone, Copy)]
struct Seen {
    head: Option<Head>,
    server_clock: Timestamp,
    arrived: Instant,
}

impl Seen {
    fn new(head: Option<Head>, server_clock: Timestamp) -> Seen {
        Seen {
            head,
            server_clock,
            arrived: Instant::now(),
        }
    }

    /// The server's clock now, without asking it: the last reading carried
    /// forward by this process's monotonic clock. It is never ahead of the
    /// server's (the reading was taken before it arrived), whatever this
    /// machine's wall clock says; the append statement refuses it when it
    /// has fallen more than a few seconds behind.
    fn server_now(&self) -> Option<Timestamp> {
        let elapsed = i64::try_from(self.arrived.elapsed().as_micros()).ok()?;
        Timestamp::from_unix_micros(self.server_clock.unix_micros().checked_add(elapsed)?)
    }
}

/// The one-statement append ([`Table::try_append_seen`]). The head moves and
/// the rows are inserted only if the head is still the one the batch was
/// sealed against, and its `at` no later than the server's clock and at
/// most 2 seconds behind it. A foreign trigger, rule or policy that drops
/// rows while the statement succeeds must not commit a head without its
/// events: the statement divides by zero (and so writes nothing) when the
/// counts differ.
const APPEND_SEEN: &str = "WITH moved AS (
                UPDATE heads SET seq = $11, hash = $12, at = $2
                WHERE chain = $1
                  AND seq IS NOT DISTINCT FROM $13 AND hash IS NOT DISTINCT FROM $14
                  AND $2 <= clock_timestamp()
                  AND $2 >= clock_timestamp() - interval '2 seconds'
                RETURNING 1
            ), inserted AS (
                INSERT INTO events
                    (chain, seq, hash, canonical, at, session, kind, actor, request_id, once)
                SELECT $1, u.seq, u.hash, u.canonical, $2, u.session, u.kind, u.actor,
                       u.request_id, u.once
                FROM UNNEST($3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[],
                            $8::text[], $9::text[], $10::text[])
                    AS u(seq, hash, canonical, session, kind, actor, request_id, once)
                WHERE EXISTS (SELECT 1 FROM moved)
                RETURNING 1
            )
            SELECT m.n AS moved, i.n AS inserted, clock_timestamp() AS now,
                   CASE WHEN m.n = 1 AND i.n <> $15 THEN 1 / (i.n * 0) ELSE 0 END AS checked
            FROM (SELECT count(*) AS n FROM moved) m, (SELECT count(*) AS n FROM inserted) i";

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("chain", &self.chain)
            .field("server", &self.server)
            .finish()
    }
}

const COLUMNS: &str = "seq, hash, canonical, at, session, kind, actor, request_id, once";

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`),
    /// applies missing migrations, and opens `chain` (created empty if new).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached;
    /// [`StoreError::Incompatible`] when the schema is newer than this
    /// library; [`StoreError::Other`] for a malformed url.
    pub async fn open(url: &str, chain: ChainId) -> Result<Self, StoreError> {
        Self::open_with(url, chain, &PostgresOptions::default()).await
    }

    /// As [`open`](Self::open), with options.
    ///
    /// # Errors
    /// As [`open`](Self::open); with `create: false`,
    /// [`StoreError::Incompatible`] also when the schema is missing or older.
    pub async fn open_with(
        url: &str,
        chain: ChainId,
        options: &PostgresOptions,
    ) -> Result<Self, StoreError> {
        let pool = connect(url, options).await?;
        Self::from_pool(pool, chain, options.create).await
    }

    /// Opens `chain` on an existing pool (which may be shared by several
    /// chains); when `create` is true, applies missing migrations and
    /// registers the chain.
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub async fn from_pool(pool: PgPool, chain: ChainId, create: bool) -> Result<Self, StoreError> {
        if create {
            schema::migrate(&pool).await?;
        } else {
            schema::check(&pool).await?;
        }
        let server = describe(&pool);
        let table = Table {
            pool,
            chain,
            server,
            seen: Arc::default(),
        };
        if create {
            table.ensure_head_row().await?;
        }
        Ok(PostgresStore {
            table: Arc::new(BatchingStore::new(table)),
        })
    }

    fn table(&self) -> &Table {
        self.table.inner()
    }

    /// The connection pool, for sharing with other chains.
    pub fn pool(&self) -> &PgPool {
        &self.table().pool
    }

    /// The chains stored in this database, in name order.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached;
    /// [`StoreError::Incompatible`] when a stored chain name is not a valid
    /// id.
    pub async fn chains(&self) -> Result<Vec<ChainId>, StoreError> {
        chains_in(self.pool()).await
    }

    /// The chains in the database at `url`, in name order, changing nothing.
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with) with `create: false`.
    pub async fn chains_at(url: &str) -> Result<Vec<ChainId>, StoreError> {
        let pool = connect(url, &PostgresOptions::default().with_max_connections(1)).await?;
        let chains = async {
            schema::check(&pool).await?;
            chains_in(&pool).await
        }
        .await;
        pool.close().await;
        chains
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool().close().await;
    }
}

impl Table {
    async fn ensure_head_row(&self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO heads (chain) VALUES ($1) ON CONFLICT (chain) DO NOTHING")
            .bind(self.chain.as_str())
            .execute(&self.pool)
            .await
            .map_err(error::read)?;
        Ok(())
    }

    /// The append in one statement, when this process knows the head: the
    /// batch is sealed against the head it last saw, at the server's time as
    /// carried forward since it last read it, and one autocommit statement
    /// moves the head and inserts the rows only if the head is still that one
    /// and the time is no later than the server's clock and at most
    /// 2 seconds behind it ([`APPEND_SEEN`]). `None`: it was not (another writer moved the
    /// head, or the clock reading is stale), nothing was written, and the
    /// full transaction is needed.
    async fn try_append_seen(
        &self,
        drafts: &[EventDraft],
        seen: Seen,
    ) -> Result<Option<Vec<Event>>, AppendFailure> {
        let Some(now) = seen.server_now() else {
            return Ok(None);
        };
        let events = seal(&self.chain, seen.head.as_ref(), drafts, now)
            .map_err(|e| AppendFailure::Store(e.into()))?;
        let Some(last) = events.last() else {
            return Ok(Some(events));
        };
        let rows = Rows::of(&events).map_err(AppendFailure::Store)?;
        let at = rows.at;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| AppendFailure::Driver(e, Stage::BeforeCommit))?;
        let expected_seq = seen
            .head
            .map(|h| seq_to_i64(h.seq))
            .transpose()
            .map_err(AppendFailure::Store)?;
        let row = sqlx::query(APPEND_SEEN)
            .bind(self.chain.as_str())
            .bind(at)
            .bind(&rows.seqs)
            .bind(&rows.hashes)
            .bind(&rows.canonicals)
            .bind(&rows.sessions)
            .bind(&rows.kinds)
            .bind(&rows.actors)
            .bind(&rows.request_ids)
            .bind(&rows.onces)
            .bind(seq_to_i64(last.seq).map_err(AppendFailure::Store)?)
            .bind(last.hash.to_string())
            .bind(expected_seq)
            .bind(seen.head.map(|h| h.hash.to_string()))
            .bind(events.len() as i64)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| {
                if error::sqlstate(&e).as_deref() == Some("22012") {
                    return AppendFailure::Store(self.foreign_write(events.len(), -1, 1));
                }
                // The server answered: the statement failed whole. Anything
                // else came while it may have been committing.
                let stage = match e {
                    sqlx::Error::Database(_) => Stage::BeforeCommit,
                    _ => Stage::Commit,
                };
                AppendFailure::Driver(e, stage)
            })?;
        let read = |e| AppendFailure::Driver(e, Stage::Commit);
        let moved: i64 = row.try_get("moved").map_err(read)?;
        if moved != 1 {
            return Ok(None);
        }
        let now: OffsetDateTime = row.try_get("now").map_err(read)?;
        self.saw(
            Some(Head {
                seq: last.seq,
                hash: last.hash,
                at: last.columns.at.parse().map_err(|_| {
                    AppendFailure::Store(error::other("sealed events carry an unreadable at"))
                })?,
            }),
            timestamp_of(now),
        );
        Ok(Some(events))
    }

    /// Remembers the head and the server's clock this process just saw.
    fn saw(&self, head: Option<Head>, server_clock: Option<Timestamp>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *seen = server_clock.map(|clock| Seen::new(head, clock));
    }

    /// Forgets the head: the next append takes the chain lock and reads it.
    fn forget(&self) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn foreign_write(&self, events: usize, inserted: i64, moved: i64) -> StoreError {
        let inserted = if inserted < 0 {
            "another number of".to_owned()
        } else {
            inserted.to_string()
        };
        StoreError::Incompatible {
            store: STORE,
            reason: format!(
                "appending {events} events wrote {inserted} rows to events and {moved} to heads \
                 of chain {}: a trigger, rule or policy on the store's tables changes what is \
                 written; nothing was written, remove it",
                self.chain
            ),
        }
    }

    async fn try_append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, AppendFailure> {
        let before = |e| AppendFailure::Driver(e, Stage::BeforeCommit);
        let mut tx = self.pool.begin().await.map_err(before)?;
        let locked = sqlx::query(
            "SELECT seq, hash, at, clock_timestamp() AS now FROM heads WHERE chain = $1 FOR UPDATE",
        )
        .bind(self.chain.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(before)?;
        let Some(locked) = locked else {
            return Err(AppendFailure::NoHeadRow);
        };
        let head = self.head_of_row(&locked).map_err(AppendFailure::Store)?;
        let now: OffsetDateTime = locked.try_get("now").map_err(before)?;
        let now = timestamp_of(now).ok_or_else(|| {
            AppendFailure::Store(error::other(
                "the server clock is outside the years 0000 to 9999",
            ))
        })?;
        let events = seal(&self.chain, head.as_ref(), drafts, now)
            .map_err(|e| AppendFailure::Store(e.into()))?;
        let Some(last) = events.last() else {
            return Ok(events);
        };
        let rows = Rows::of(&events).map_err(AppendFailure::Store)?;
        // Both counts are checked: a trigger, rule or policy that drops a
        // row while the statement succeeds must not go unnoticed.
        let (inserted, moved): (i64, i64) = sqlx::query_as(
            "WITH inserted AS (
                INSERT INTO events
                    (chain, seq, hash, canonical, at, session, kind, actor, request_id, once)
                SELECT $1, u.seq, u.hash, u.canonical, $2, u.session, u.kind, u.actor,
                       u.request_id, u.once
                FROM UNNEST($3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[],
                            $8::text[], $9::text[], $10::text[])
                    AS u(seq, hash, canonical, session, kind, actor, request_id, once)
                RETURNING 1
            ), moved AS (
                UPDATE heads SET seq = $11, hash = $12, at = $2 WHERE chain = $1 RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM moved)",
        )
        .bind(self.chain.as_str())
        .bind(rows.at)
        .bind(&rows.seqs)
        .bind(&rows.hashes)
        .bind(&rows.canonicals)
        .bind(&rows.sessions)
        .bind(&rows.kinds)
        .bind(&rows.actors)
        .bind(&rows.request_ids)
        .bind(&rows.onces)
        .bind(seq_to_i64(last.seq).map_err(AppendFailure::Store)?)
        .bind(last.hash.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(before)?;
        if inserted != events.len() as i64 || moved != 1 {
            // Dropping the transaction rolls it back: nothing is written.
            return Err(AppendFailure::Store(self.foreign_write(
                events.len(),
                inserted,
                moved,
            )));
        }
        tx.commit()
            .await
            .map_err(|e| AppendFailure::Driver(e, Stage::Commit))?;
        let last_at = last.columns.at.parse().map_err(|_| {
            AppendFailure::Store(error::other("sealed events carry an unreadable at"))
        })?;
        self.saw(
            Some(Head {
                seq: last.seq,
                hash: last.hash,
                at: last_at,
            }),
            Some(now),
        );
        Ok(events)
    }

    fn head_of_row(&self, row: &PgRow) -> Result<Option<Head>, StoreError> {
        let seq: Option<i64> = row.try_get("seq").map_err(error::read)?;
        let Some(seq) = seq else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            store: STORE,
            seq: u64::try_from(seq).unwrap_or(0),
            reason,
        };
        let seq = u64::try_from(seq).map_err(|_| corrupt(format!("head seq {seq} is negative")))?;
        let hash: Option<String> = row.try_get("hash").map_err(error::read)?;
        let hash = hash
            .as_deref()
            .unwrap_or("")
            .parse::<Digest>()
            .map_err(|_| corrupt(format!("head hash {hash:?} is not 64 lower-case hex")))?;
        let at: Option<OffsetDateTime> = row.try_get("at").map_err(error::read)?;
        let at = at
            .and_then(timestamp_of)
            .ok_or_else(|| corrupt("head at is missing or out of range".into()))?;
        Ok(Some(Head { seq, hash, at }))
    }

    /// Finds which of a batch's single-use keys is already used (after a
    /// unique violation on the once index).
    async fn used_key(&self, drafts: &[EventDraft]) -> Result<Option<String>, StoreError> {
        let keys: Vec<&str> = drafts.iter().filter_map(|d| d.once.as_deref()).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let used: Vec<String> =
            sqlx::query_scalar("SELECT once FROM events WHERE chain = $1 AND once = ANY($2)")
                .bind(self.chain.as_str())
                .bind(&keys)
                .fetch_all(&self.pool)
                .await
                .map_err(error::read)?;
        Ok(keys
            .into_iter()
            .find(|k| used.iter().any(|u| u == k))
            .map(str::to_owned))
    }
}

/// A sealed batch as the column arrays the insert statements unnest.
struct Rows<'a> {
    at: OffsetDateTime,
    seqs: Vec<i64>,
    hashes: Vec<String>,
    canonicals: Vec<&'a [u8]>,
    sessions: Vec<&'a str>,
    kinds: Vec<&'a str>,
    actors: Vec<&'a str>,
    request_ids: Vec<Option<&'a str>>,
    onces: Vec<Option<&'a str>>,
}

impl<'a> Rows<'a> {
    /// The columns of `events` (not empty; one `at`, the batch's).
    fn of(events: &'a [Event]) -> Result<Rows<'a>, StoreError> {
        let at: Timestamp = events
            .first()
            .and_then(|e| e.columns.at.parse().ok())
            .ok_or_else(|| error::other("sealed events carry an unreadable at"))?;
        let mut rows = Rows {
            at: datetime_of(at),
            seqs: Vec::with_capacity(events.len()),
            hashes: Vec::with_capacity(events.len()),
            canonicals: Vec::with_capacity(events.len()),
            sessions: Vec::with_capacity(events.len()),
            kinds: Vec::with_capacity(events.len()),
            actors: Vec::with_capacity(events.len()),
            request_ids: Vec::with_capacity(events.len()),
            onces: Vec::with_capacity(events.len()),
        };
        for event in events {
            rows.seqs.push(seq_to_i64(event.seq)?);
            rows.hashes.push(event.hash.to_string());
            rows.canonicals.push(event.canonical.as_slice());
            rows.sessions.push(event.columns.session.as_str());
            rows.kinds.push(event.columns.kind.as_str());
            rows.actors.push(event.columns.actor.as_str());
            rows.request_ids.push(event.columns.request_id.as_deref());
            rows.onces.push(event.columns.once.as_deref());
        }
        Ok(rows)
    }
}

/// Why one append attempt failed.
enum AppendFailure {
    Driver(sqlx::Error, Stage),
    Store(StoreError),
    NoHeadRow,
}

#[async_trait]
impl EventStore for Table {
    fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// A read returns every row asked for that exists (or stops at the byte bound).
    fn pages_reach_the_end(&self) -> bool {
        true
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let seen = *self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut result = match seen {
            Some(seen) => match self.try_append_seen(drafts, seen).await {
                Ok(Some(events)) => Ok(events),
                Ok(None) => self.try_append(drafts).await,
                Err(failed) => Err(failed),
            },
            None => self.try_append(drafts).await,
        };
        if result.is_err() {
            self.forget();
        }
        if matches!(result, Err(AppendFailure::NoHeadRow)) {
            // The chain's row was created elsewhere or removed: create it and
            // try once more.
            self.ensure_head_row().await?;
            result = self.try_append(drafts).await;
        }
        match result {
            Ok(events) => Ok(events),
            Err(AppendFailure::Store(e)) => Err(e),
            Err(AppendFailure::NoHeadRow) => Err(error::other(format!(
                "chain {} has no row in heads; check the database's permissions",
                self.chain
            ))),
            Err(AppendFailure::Driver(e, stage)) => {
                match (error::sqlstate(&e).as_deref(), error::constraint(&e)) {
                    (Some("23505"), Some(c)) if c == "events_chain_once" => {
                        match self.used_key(drafts).await? {
                            Some(key) => Err(StoreError::AlreadyUsed { key }),
                            None => Err(error::map(e, stage)),
                        }
                    }
                    (Some("23505"), Some(c)) if c == "events_chain_seq" => {
                        Err(StoreError::Corrupt {
                            store: STORE,
                            seq: self.head().await?.map_or(0, |h| h.seq),
                            reason: format!(
                                "the heads row of chain {} is behind its events (a writer \
                                 bypassed the chain lock); nothing was written; run \
                                 `syndicate audit verify` and repair the heads row",
                                self.chain
                            ),
                        })
                    }
                    _ => Err(error::map(e, stage)),
                }
            }
        }
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, hash, at FROM events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(self.chain.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::read)?;
        match row {
            Some(row) => self.head_of_row(&row),
            None => Ok(None),
        }
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
        use futures_util::TryStreamExt as _;
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        // Rows are decoded as they arrive; once the page holds `max_bytes`
        // the rest are discarded unread into memory.
        let mut rows = sqlx::query(
            "SELECT seq, hash, canonical, at, session, kind, actor, request_id, once
             FROM events WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(self.chain.as_str())
        .bind(from)
        .bind(limit_of(limit))
        .fetch(&self.pool);
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while bytes < max_bytes {
            let Some(row) = rows.try_next().await.map_err(error::read)? else {
                break;
            };
            let event = event_of_row(&row)?;
            bytes = bytes.saturating_add(event.canonical.len());
            events.push(event);
        }
        Ok(events)
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        crate::tree::put(&self.pool, self.chain.as_str(), nodes).await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        crate::tree::get(&self.pool, self.chain.as_str(), ids).await
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        crate::tree::leaf_count(&self.pool, self.chain.as_str()).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE chain = "));
        sql.push_bind(self.chain.as_str());
        if let Some(session) = &query.session {
            sql.push(" AND session = ").push_bind(session.as_str());
        }
        if let Some(kind) = query.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(actor) = &query.actor {
            sql.push(" AND actor = ").push_bind(actor.as_str());
        }
        if let Some(request_id) = &query.request_id {
            sql.push(" AND request_id = ")
                .push_bind(request_id.as_str());
        }
        if let Some(since) = query.since {
            sql.push(" AND at >= ").push_bind(datetime_of(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND at < ").push_bind(datetime_of(until));
        }
        if let Some(after) = query.after_seq {
            match i64::try_from(after) {
                Ok(after) => sql.push(" AND seq > ").push_bind(after),
                Err(_) => return Ok(Vec::new()),
            };
        }
        if let Some(before) = query.before_seq {
            sql.push(" AND seq < ")
                .push_bind(i64::try_from(before).unwrap_or(i64::MAX));
        }
        sql.push(match query.order {
            Order::Ascending => " ORDER BY seq ASC",
            Order::Descending => " ORDER BY seq DESC",
        });
        sql.push(" LIMIT ").push_bind(limit_of(query.limit));
        let rows = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(error::read)?;
        rows.iter().map(event_of_row).collect()
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    fn chain(&self) -> &ChainId {
        self.table.chain()
    }

    fn pages_reach_the_end(&self) -> bool {
        self.table.pages_reach_the_end()
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        self.table.append(drafts).await
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.table.head().await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.table.read(from_seq, limit).await
    }

    async fn read_bounded(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.table.read_bounded(from_seq, limit, max_bytes).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.table.query(query).await
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        self.table.put_tree_nodes(nodes).await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        self.table.tree_nodes(ids).await
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        self.table.tree_leaf_count().await
    }
}

/// Opens a pool on `url`.
///
/// # Errors
/// [`StoreError::Other`] for a malformed url; [`StoreError::Unavailable`]
/// when the server cannot be reached.
pub async fn connect(url: &str, options: &PostgresOptions) -> Result<PgPool, StoreError> {
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| error::other(format!("invalid postgres url: {e}")))?
        .application_name("syndicate")
        .options([(
            "lock_timeout",
            format!("{}ms", options.lock_timeout.as_millis()),
        )]);
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect.clone())
        .await;
    let pool = match pool {
        // The pool hides why it could not connect; one direct attempt says.
        Err(sqlx::Error::PoolTimedOut) => match PgConnection::connect_with(&connect).await {
            Err(e) => Err(e),
            Ok(conn) => {
                let _ = conn.close().await;
                Err(sqlx::Error::PoolTimedOut)
            }
        },
        other => other,
    };
    pool.map_err(|e| match e {
        // A refused login or unknown database is not going to fix itself.
        sqlx::Error::Database(_) if !error::is_unavailable(&e) => StoreError::Other {
            store: STORE,
            source: Box::new(e),
        },
        e => StoreError::Unavailable {
            store: STORE,
            maybe_written: false,
            source: Box::new(e),
        },
    })
}

/// Applies missing migrations to the database at `url` and reports what it
/// did (for `syndicate store migrate`).
///
/// # Errors
/// As [`schema::migrate`](crate::migrate).
pub async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let pool = connect(
        url,
        &PostgresOptions {
            max_connections: 1,
            ..PostgresOptions::default()
        },
    )
    .await?;
    let report = schema::migrate(&pool).await;
    pool.close().await;
    report
}

async fn chains_in(pool: &PgPool) -> Result<Vec<ChainId>, StoreError> {
    // Chains registered in heads, and chains that have events (found by a
    // loose index scan of the primary key, not a full scan), so a row moved
    // to another chain name is still listed.
    let names: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE c(chain) AS (
            (SELECT chain FROM events ORDER BY chain LIMIT 1)
            UNION ALL
            SELECT (SELECT e.chain FROM events e WHERE e.chain > c.chain ORDER BY e.chain LIMIT 1)
            FROM c WHERE c.chain IS NOT NULL
        )
        SELECT chain FROM c WHERE chain IS NOT NULL
        UNION
        SELECT chain FROM heads
        ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .map_err(error::read)?;
    names
        .into_iter()
        .map(|name| {
            ChainId::new(name).map_err(|e| StoreError::Incompatible {
                store: STORE,
                reason: format!("the store holds an invalid chain name: {e}"),
            })
        })
        .collect()
}

fn describe(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn seq_to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| error::other(format!("seq {seq} does not fit a BIGINT")))
}

/// The timestamp of a TIMESTAMPTZ value, through microseconds since the epoch.
fn timestamp_of(value: OffsetDateTime) -> Option<Timestamp> {
    let micros = value.unix_timestamp_nanos().div_euclid(1000);
    Timestamp::from_unix_micros(i64::try_from(micros).ok()?)
}

/// The TIMESTAMPTZ value of a timestamp.
fn datetime_of(at: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.unix_micros()) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// An event exactly as stored; a column that cannot be represented is
/// [`StoreError::Corrupt`] naming the row's seq.
fn event_of_row(row: &PgRow) -> Result<Event, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(error::read)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        store: STORE,
        seq: u64::try_from(seq).unwrap_or(0),
        reason,
    };
    let seq_u = u64::try_from(seq).map_err(|_| corrupt(format!("seq {seq} is negative")))?;
    let hash: String = row.try_get("hash").map_err(error::read)?;
    let hash = hash
        .parse::<Digest>()
        .map_err(|_| corrupt(format!("hash column {hash:?} is not 64 lower-case hex")))?;
    let at: OffsetDateTime = row.try_get("at").map_err(error::read)?;
    let at = timestamp_of(at)
        .ok_or_else(|| corrupt(format!("at column {at} is outside the years 0000 to 9999")))?;
    Ok(Event {
        seq: seq_u,
        hash,
        canonical: row.try_get("canonical").map_err(error::read)?,
        columns: Columns {
            at: at.to_string(),
            session: row.try_get("session").map_err(error::read)?,
            kind: row.try_get("kind").map_err(error::read)?,
            actor: row.try_get("actor").map_err(error::read)?,
            request_id: row.try_get("request_id").map_err(error::read)?,
            once: row.try_get("once").map_err(error::read)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_timestamptz_values() {
        for text in [
            "2026-11-23T10:00:00.123456Z",
            "1970-01-01T00:00:00.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(timestamp_of(datetime_of(t)), Some(t), "{text}");
            assert_eq!(timestamp_of(datetime_of(t)).unwrap().to_string(), text);
        }
    }
}
