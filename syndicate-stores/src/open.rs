//! [`open`]: a store from its URL, as an `Arc<dyn EventStore>`.

use std::sync::Arc;
use std::time::Duration;

use syndicate_core::{ChainId, EventStore, StoreError};
use syndicate_store_postgres::{PostgresOptions, PostgresStore};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

use crate::url::StoreUrl;

/// What the opener does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Access {
    /// Append, creating the store (file, schema, chain) when it is missing.
    Create,
    /// Append to a store that must exist.
    Existing,
    /// Only read (verify, export, query): nothing is created, migrated or
    /// written; `append` fails. The default.
    #[default]
    ReadOnly,
}

/// How to open a store: its [`Access`], its chain and its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    /// What is done with the store (default [`Access::ReadOnly`]).
    pub access: Access,
    /// The chain to open; `None` (the default) opens the store's only
    /// chain, and a store with none or several is an error naming them.
    pub chain: Option<ChainId>,
    /// How long one store call may wait (for a lock held by another
    /// process, a server that does not answer) before it fails with
    /// [`StoreError::Unavailable`]; `None` (the default) keeps the
    /// backend's own default.
    pub deadline: Option<Duration>,
}

impl OpenOptions {
    /// Options with this access, the only chain and the backend's deadline.
    pub fn new(access: Access) -> Self {
        OpenOptions {
            access,
            ..OpenOptions::default()
        }
    }

    /// Sets [`chain`](Self::chain).
    pub fn with_chain(mut self, chain: ChainId) -> Self {
        self.chain = Some(chain);
        self
    }

    /// Sets [`deadline`](Self::deadline).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// Why a store could not be opened. Every message names the store by its
/// URL with any password hidden.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The backend refused or failed: missing file, bad schema, server
    /// down, ...; the source says which.
    #[error("cannot open {url}: {source}")]
    Store {
        /// The store's URL, password hidden.
        url: String,
        /// The backend's error.
        #[source]
        source: StoreError,
    },
    /// No chain was named and the store holds none yet.
    #[error("{url} holds no chain yet; name the chain to open")]
    NoChain {
        /// The store's URL, password hidden.
        url: String,
    },
    /// No chain was named and the store holds several.
    #[error("{url} holds {} chains ({}); choose one", .chains.len(), chain_list(.chains))]
    SeveralChains {
        /// The store's URL, password hidden.
        url: String,
        /// The chains it holds, in name order.
        chains: Vec<ChainId>,
    },
}

fn chain_list(chains: &[ChainId]) -> String {
    chains
        .iter()
        .map(ChainId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens the store `url` names, for one chain.
///
/// # Errors
/// [`OpenError::Store`] when the backend refuses (a missing store unless
/// [`Access::Create`], a file or schema that is not a syndicate store's, a
/// server that cannot be reached); [`OpenError::NoChain`] or
/// [`OpenError::SeveralChains`] when no chain was named and the store does
/// not hold exactly one. Nothing is created or changed in any of these cases.
pub async fn open(url: &StoreUrl, options: &OpenOptions) -> Result<Arc<dyn EventStore>, OpenError> {
    let chain = match &options.chain {
        Some(chain) => chain.clone(),
        None => only_chain(url, chains(url).await?)?,
    };
    let store: Arc<dyn EventStore> = match url {
        StoreUrl::Sqlite(path) => {
            let mut sqlite = SqliteOptions::default()
                .with_create(options.access == Access::Create)
                .with_read_only(options.access == Access::ReadOnly);
            if let Some(deadline) = options.deadline {
                sqlite = sqlite.with_busy_timeout(deadline);
            }
            Arc::new(
                SqliteStore::open(path, chain, sqlite)
                    .await
                    .map_err(unusable(url))?,
            )
        }
        StoreUrl::Postgres(text) => {
            let mut postgres =
                PostgresOptions::default().with_create(options.access == Access::Create);
            if let Some(deadline) = options.deadline {
                postgres = postgres
                    .with_lock_timeout(deadline)
                    .with_acquire_timeout(deadline);
            }
            Arc::new(
                PostgresStore::open_with(text, chain, &postgres)
                    .await
                    .map_err(unusable(url))?,
            )
        }
    };
    Ok(store)
}

/// The chains the store `url` names holds, in name order, without changing
/// it.
///
/// # Errors
/// [`OpenError::Store`] when the store cannot be opened for reading.
pub async fn chains(url: &StoreUrl) -> Result<Vec<ChainId>, OpenError> {
    match url {
        StoreUrl::Sqlite(path) => SqliteStore::chains(path).map_err(unusable(url)),
        StoreUrl::Postgres(text) => PostgresStore::chains_at(text).await.map_err(unusable(url)),
    }
}

fn unusable(url: &StoreUrl) -> impl Fn(StoreError) -> OpenError + '_ {
    move |source| OpenError::Store {
        url: url.to_string(),
        source,
    }
}

/// The one chain of a store, or an error naming what is there.
fn only_chain(url: &StoreUrl, chains: Vec<ChainId>) -> Result<ChainId, OpenError> {
    match <[ChainId; 1]>::try_from(chains) {
        Ok([chain]) => Ok(chain),
        Err(chains) if chains.is_empty() => Err(OpenError::NoChain {
            url: url.to_string(),
        }),
        Err(chains) => Err(OpenError::SeveralChains {
            url: url.to_string(),
            chains,
        }),
    }
}
