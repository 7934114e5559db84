//! Stores named by URL: `sqlite:PATH` or `sqlite://PATH`, and
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`).
//!
//! `sqlite:audit.db` and `sqlite://audit.db` name `audit.db` in the current
//! folder; `sqlite:///var/lib/audit.db` names an absolute path.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use syndicate_core::{ChainId, EventStore, StoreError};
use syndicate_store_postgres::{PostgresOptions, PostgresStore};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

use crate::exit::Failure;

/// Where a store is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its connection URL.
    Postgres(String),
}

/// A text that is not a store URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "store url {0:?} is not supported; use sqlite:PATH (e.g. sqlite:audit.db) or postgres://USER@HOST/DATABASE"
)]
pub struct StoreUrlError(pub String);

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        {
            return if rest.is_empty() {
                Err(StoreUrlError(text.to_owned()))
            } else {
                Ok(StoreUrl::Postgres(text.to_owned()))
            };
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"));
        match path {
            Some(path) if !path.is_empty() => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            _ => Err(StoreUrlError(text.to_owned())),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// What a command does with the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Append, creating the store when it is missing.
    Create,
    /// Append to a store that must exist.
    Existing,
    /// Only read (verify, export, query): nothing is created, migrated or
    /// written.
    ReadOnly,
}

/// Opens a store for appending: created when missing if `create`.
///
/// Without `chain`, the store's only chain is used; a store with none or
/// several is an error naming them.
///
/// # Errors
/// A usage [`Failure`] (exit 2) when the store cannot be opened or the chain
/// is ambiguous.
pub async fn open_store(
    url: &StoreUrl,
    chain: Option<&ChainId>,
    create: bool,
) -> Result<Arc<dyn EventStore>, Failure> {
    let access = if create {
        Access::Create
    } else {
        Access::Existing
    };
    open(url, chain, access).await
}

/// [`open_store`] from the texts of a URL and a chain id.
///
/// # Errors
/// As [`open_store`], and a usage [`Failure`] for a bad URL or chain id.
pub async fn open_store_text(
    url: &str,
    chain: &str,
    create: bool,
) -> Result<Arc<dyn EventStore>, Failure> {
    let url: StoreUrl = url.parse().map_err(Failure::usage)?;
    let chain = ChainId::new(chain).map_err(Failure::usage)?;
    open_store(&url, Some(&chain), create).await
}

/// Opens a store with the given access.
///
/// # Errors
/// As [`open_store`].
pub async fn open(
    url: &StoreUrl,
    chain: Option<&ChainId>,
    access: Access,
) -> Result<Arc<dyn EventStore>, Failure> {
    match url {
        StoreUrl::Sqlite(path) => {
            let options = SqliteOptions::default()
                .with_create(access == Access::Create)
                .with_read_only(access == Access::ReadOnly);
            let chain = match chain {
                Some(chain) => chain.clone(),
                None => only_chain(url, SqliteStore::chains(path).map_err(unusable(url))?)?,
            };
            let store = SqliteStore::open(path, chain, options)
                .await
                .map_err(unusable(url))?;
            Ok(Arc::new(store))
        }
        StoreUrl::Postgres(text) => {
            let options = PostgresOptions::default().with_create(access == Access::Create);
            let chain = match chain {
                Some(chain) => chain.clone(),
                None => only_chain(
                    url,
                    PostgresStore::chains_at(text)
                        .await
                        .map_err(unusable(url))?,
                )?,
            };
            let store = PostgresStore::open_with(text, chain, &options)
                .await
                .map_err(unusable(url))?;
            Ok(Arc::new(store))
        }
    }
}

/// A PostgreSQL URL with its password (if any) replaced by `***`, for
/// messages.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_owned(),
    }
}

fn unusable(url: &StoreUrl) -> impl Fn(StoreError) -> Failure + '_ {
    move |e| Failure::usage(format!("cannot open {url}: {e}"))
}

/// The one chain of a store, or an error naming what is there.
fn only_chain(url: &StoreUrl, chains: Vec<ChainId>) -> Result<ChainId, Failure> {
    match <[ChainId; 1]>::try_from(chains) {
        Ok([chain]) => Ok(chain),
        Err(chains) if chains.is_empty() => Err(Failure::usage(format!(
            "{url} holds no chain yet; name the chain with --chain"
        ))),
        Err(chains) => {
            let names: Vec<&str> = chains.iter().map(ChainId::as_str).collect();
            Err(Failure::usage(format!(
                "{url} holds {} chains ({}); choose one with --chain",
                names.len(),
                names.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_urls() {
        for (text, path) in [
            ("sqlite:audit.db", "audit.db"),
            ("sqlite://audit.db", "audit.db"),
            ("sqlite:///var/lib/a.db", "/var/lib/a.db"),
            ("sqlite:/var/lib/a.db", "/var/lib/a.db"),
        ] {
            assert_eq!(
                text.parse::<StoreUrl>().unwrap(),
                StoreUrl::Sqlite(PathBuf::from(path))
            );
        }
        for bad in ["", "sqlite:", "sqlite://", "audit.db", "mysql://x"] {
            let err = bad.parse::<StoreUrl>().unwrap_err();
            assert!(err.to_string().contains("use sqlite:PATH"), "{err}");
        }
    }

    #[test]
    fn parses_postgres_urls_and_hides_their_passwords() {
        for text in [
            "postgres://u@db.internal:5432/audit",
            "postgresql://u:secret@db.internal/audit?sslmode=require",
        ] {
            assert_eq!(
                text.parse::<StoreUrl>().unwrap(),
                StoreUrl::Postgres(text.to_owned())
            );
        }
        assert!("postgres://".parse::<StoreUrl>().is_err());
        let url: StoreUrl = "postgres://u:secret@db:5432/audit".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://u:***@db:5432/audit");
        let url: StoreUrl = "postgres://u@db:5432/audit".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://u@db:5432/audit");
    }
}
