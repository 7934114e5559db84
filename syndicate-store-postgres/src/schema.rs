//! Embedded, versioned migrations.
//!
//! Each migration is one SQL file compiled into the library and applied once,
//! in order, inside one transaction that holds a transaction-scoped advisory
//! lock, so many workers opening the store at once migrate it exactly once.
//! Applied versions are recorded in `syndicate_schema_version`.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};
use syndicate_core::StoreError;

use crate::error::{self, STORE};

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version: 1, 2, ... without gaps.
    pub version: i32,
    /// What it does.
    pub description: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, heads, append-only triggers",
        sql: include_str!("../migrations/0001_events.sql"),
    },
    Migration {
        version: 2,
        description: "merkle node cache",
        sql: include_str!("../migrations/0002_tree_nodes.sql"),
    },
];

/// The schema version this library reads and writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Key of the advisory lock that serializes migrations (the ASCII bytes of
/// `syndmigr`).
const MIGRATION_LOCK: i64 = 0x7379_6e64_6d69_6772;

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found before migrating (0 for a database without our schema).
    pub from: i32,
    /// The version now.
    pub to: i32,
}

impl MigrationReport {
    /// The migrations that were applied (empty when the schema was current).
    pub fn applied(&self) -> impl Iterator<Item = &'static Migration> + '_ {
        MIGRATIONS
            .iter()
            .filter(|m| m.version > self.from && m.version <= self.to)
    }
}

/// Brings the database to [`SCHEMA_VERSION`], applying each missing
/// migration once. Safe to run from many processes at once.
///
/// # Errors
/// - [`StoreError::Incompatible`] when the database's schema is newer than
///   this library, or holds an `events` table that is not ours;
/// - [`StoreError::Unavailable`] when the server cannot be reached.
pub async fn migrate(pool: &PgPool) -> Result<MigrationReport, StoreError> {
    let mut tx = pool.begin().await.map_err(error::read)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(error::read)?;
    let from = current_version(&mut tx).await?;
    if from > SCHEMA_VERSION {
        return Err(newer(from));
    }
    if from == 0 {
        let foreign: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(error::read)?;
        if foreign {
            return Err(StoreError::Incompatible {
                store: STORE,
                reason: "this database (schema search path) has an events table that is not a \
                         syndicate store; use another database, or another schema with \
                         options=-csearch_path%3D<schema> in the url"
                    .into(),
            });
        }
        sqlx::query(
            "CREATE TABLE syndicate_schema_version (
                version     INTEGER     PRIMARY KEY,
                description TEXT        NOT NULL,
                applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(error::read)?;
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        sqlx::raw_sql(AssertSqlSafe(migration.sql))
            .execute(&mut *tx)
            .await
            .map_err(error::read)?;
        sqlx::query("INSERT INTO syndicate_schema_version (version, description) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.description)
            .execute(&mut *tx)
            .await
            .map_err(error::read)?;
    }
    check_objects(&mut tx).await?;
    tx.commit()
        .await
        .map_err(|e| error::map(e, error::Stage::Commit))?;
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION,
    })
}

/// Checks that the database holds exactly the schema this library uses,
/// without changing anything: the current version, and on `events` and
/// `heads` only our triggers, no rules and no row-level security.
///
/// # Errors
/// [`StoreError::Incompatible`] naming the version or the foreign objects
/// found and what to do; [`StoreError::Unavailable`] when the server cannot
/// be reached.
pub async fn check(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(error::read)?;
    let found = current_version(&mut conn).await?;
    match found {
        v if v == SCHEMA_VERSION => check_objects(&mut conn).await,
        v if v > SCHEMA_VERSION => Err(newer(v)),
        0 => Err(StoreError::Incompatible {
            store: STORE,
            reason: "this database has no syndicate schema; create it with \
                     `syndicate store migrate --store URL` (or open the store with migrations on)"
                .into(),
        }),
        v => Err(StoreError::Incompatible {
            store: STORE,
            reason: format!(
                "schema version {v} is older than this library's {SCHEMA_VERSION}; \
                 upgrade it with `syndicate store migrate --store URL`"
            ),
        }),
    }
}

/// Our triggers, by table: each present, enabled, and calling our function.
const OUR_TRIGGERS: &[(&str, &str)] = &[
    ("events", "events_append_only"),
    ("events", "events_no_truncate"),
];

/// Refuses a database whose `events` or `heads` carries anything the store
/// does not rely on: a trigger, rule or row-level security policy that is
/// not ours can drop, rewrite or hide rows while every statement reports
/// success. The tables must be plain tables.
async fn check_objects(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    let found: Vec<String> = sqlx::query_scalar(
        "WITH t(name, oid) AS (
            VALUES ('events', to_regclass('events')::oid), ('heads', to_regclass('heads')::oid)
        )
        SELECT format('%s is not a plain table (relkind %s)', t.name, c.relkind)
            FROM t JOIN pg_class c ON c.oid = t.oid WHERE c.relkind <> 'r'
        UNION ALL
        SELECT format('%s has row-level security enabled', t.name)
            FROM t JOIN pg_class c ON c.oid = t.oid
            WHERE c.relrowsecurity OR c.relforcerowsecurity
        UNION ALL
        SELECT format('policy %I on %s', p.polname, t.name)
            FROM t JOIN pg_policy p ON p.polrelid = t.oid
        UNION ALL
        SELECT format('rule %I on %s', r.rulename, t.name)
            FROM t JOIN pg_rewrite r ON r.ev_class = t.oid
        UNION ALL
        SELECT format('trigger %I on %s%s', g.tgname, t.name,
                      CASE WHEN g.tgenabled <> 'O' THEN ' (disabled)'
                           WHEN p.proname <> 'syndicate_events_append_only' THEN ' (calling '
                                || p.proname || ')'
                           ELSE '' END)
            FROM t JOIN pg_trigger g ON g.tgrelid = t.oid
            JOIN pg_proc p ON p.oid = g.tgfoid
            WHERE NOT g.tgisinternal
        UNION ALL
        SELECT format('missing trigger %s on %s', o.trigger, o.name)
            FROM unnest($1::text[], $2::text[]) AS o(name, trigger)
            WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
                WHERE g.tgrelid = to_regclass(o.name)::oid AND g.tgname = o.trigger)
        UNION ALL
        SELECT format('missing table %s', t.name) FROM t WHERE t.oid IS NULL
        ORDER BY 1",
    )
    .bind(OUR_TRIGGERS.iter().map(|(t, _)| *t).collect::<Vec<_>>())
    .bind(OUR_TRIGGERS.iter().map(|(_, g)| *g).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(error::read)?;
    let foreign: Vec<String> = found
        .into_iter()
        .filter(|f| {
            // Our own triggers, enabled and calling our function, are expected.
            !OUR_TRIGGERS
                .iter()
                .any(|(table, trigger)| *f == format!("trigger {trigger} on {table}"))
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(StoreError::Incompatible {
        store: STORE,
        reason: format!(
            "the store's tables carry what syndicate did not create ({}); a trigger, rule or \
             policy can drop, rewrite or hide events while every statement reports success: \
             remove it (nothing was changed)",
            foreign.join("; ")
        ),
    })
}

fn newer(found: i32) -> StoreError {
    StoreError::Incompatible {
        store: STORE,
        reason: format!(
            "schema version {found} is newer than this library's {SCHEMA_VERSION}; \
             upgrade syndicate before opening this store"
        ),
    }
}

/// The recorded schema version, 0 when there is none.
async fn current_version(conn: &mut sqlx::PgConnection) -> Result<i32, StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('syndicate_schema_version') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await
            .map_err(error::read)?;
    if !exists {
        return Ok(0);
    }
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM syndicate_schema_version")
        .fetch_one(&mut *conn)
        .await
        .map_err(error::read)?;
    row.try_get::<i32, _>("v").map_err(error::read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.description);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
