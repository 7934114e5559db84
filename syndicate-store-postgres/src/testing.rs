//! Helpers for tests against a real server (feature `testing`).
//!
//! Tests find the server through one variable, `SYNDICATE_TEST_POSTGRES_URL`
//! (an admin url such as `postgres://postgres@127.0.0.1:5432/postgres`;
//! `scripts/test.sh` starts a throwaway server and sets it). Each test gets a
//! database of its own, created through that url. When the variable is unset
//! a test prints why it skips and returns; when `CI=true` it fails instead,
//! so CI never passes by skipping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use syndicate_core::ChainId;

use crate::PostgresStore;

/// The variable naming the admin url of the test server.
pub const URL_VAR: &str = "SYNDICATE_TEST_POSTGRES_URL";

/// The variable naming an executable that runs `pg_ctl` on the test server
/// (with `-D` given), for tests that restart it.
pub const PG_CTL_VAR: &str = "SYNDICATE_TEST_PG_CTL";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The admin url, or `None` after printing why `test` skips.
///
/// # Panics
/// When the variable is unset and `CI=true`.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !in_ci(),
                "{test}: {URL_VAR} is not set and CI=true; PostgreSQL tests must run in CI \
                 (scripts/test.sh starts a server)"
            );
            eprintln!("skipping {test}: {URL_VAR} is not set (scripts/test.sh starts a server)");
            None
        }
    }
}

/// The pg_ctl command for restarting the test server, or `None` after
/// printing why `test` skips.
///
/// # Panics
/// When the server url is set but this variable is not, and `CI=true`.
pub fn pg_ctl(test: &str) -> Option<String> {
    admin_url(test)?;
    match std::env::var(PG_CTL_VAR) {
        Ok(cmd) if !cmd.is_empty() => Some(cmd),
        _ => {
            assert!(
                !in_ci(),
                "{test}: {PG_CTL_VAR} is not set and CI=true (scripts/test.sh sets it)"
            );
            eprintln!(
                "skipping {test}: {PG_CTL_VAR} is not set (scripts/test.sh sets it for the \
                 server it starts)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{params}", &base[..path_start])
}

/// Creates an empty database for `test` and returns its url, or `None` after
/// printing why the test skips.
///
/// # Panics
/// When the variable is unset and `CI=true`, or when the server refuses to
/// create the database.
pub async fn fresh_database(test: &str) -> Option<String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin = admin_url(test)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "syn_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot connect to {URL_VAR}: {e}"));
    // The name is built from digits and underscores only.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot create database {name}: {e}"));
    let _ = conn.close().await;
    Some(with_database(&admin, &name))
}

/// A [`PostgresStore`] for chain `test-chain` in a fresh database, or `None`
/// after printing why `test` skips.
///
/// # Panics
/// As [`fresh_database`], and when the store cannot be opened.
pub async fn fresh_store(test: &str) -> Option<PostgresStore> {
    let url = fresh_database(test).await?;
    let chain = ChainId::new("test-chain").expect("a valid chain id");
    Some(
        PostgresStore::open(&url, chain)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot open a store on {url}: {e}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
