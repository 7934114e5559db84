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
    tx.commit()
        .await
        .map_err(|e| error::map(e, error::Stage::Commit))?;
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION,
    })
}

/// Checks that the database holds exactly the schema this library uses,
/// without changing anything.
///
/// # Errors
/// [`StoreError::Incompatible`] naming the version found and what to do;
/// [`StoreError::Unavailable`] when the server cannot be reached.
pub async fn check(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(error::read)?;
    let found = current_version(&mut conn).await?;
    match found {
        v if v == SCHEMA_VERSION => Ok(()),
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
