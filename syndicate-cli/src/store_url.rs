//! The CLI's use of [`syndicate_stores`]: its errors as [`Failure`]s that
//! name the `--chain` option.

use std::sync::Arc;

use syndicate_core::{ChainId, EventStore};
pub(crate) use syndicate_stores::{Access, StoreUrl};
use syndicate_stores::{OpenError, OpenOptions};

use crate::exit::Failure;

/// Opens a store for appending: created when missing if `create`.
///
/// # Errors
/// As [`open`].
pub(crate) async fn open_store(
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

/// Opens a store with the given access; without `chain`, its only chain.
///
/// # Errors
/// A usage [`Failure`] (exit 2) when the store cannot be opened or the chain
/// is ambiguous.
pub(crate) async fn open(
    url: &StoreUrl,
    chain: Option<&ChainId>,
    access: Access,
) -> Result<Arc<dyn EventStore>, Failure> {
    let mut options = OpenOptions::new(access);
    if let Some(chain) = chain {
        options = options.with_chain(chain.clone());
    }
    syndicate_stores::open(url, &options)
        .await
        .map_err(|e| match e {
            OpenError::NoChain { url } => Failure::usage(format!(
                "{url} holds no chain yet; name the chain with --chain"
            )),
            OpenError::SeveralChains { url, chains } => {
                let names: Vec<&str> = chains.iter().map(ChainId::as_str).collect();
                Failure::usage(format!(
                    "{url} holds {} chains ({}); choose one with --chain",
                    names.len(),
                    names.join(", ")
                ))
            }
            other => Failure::usage(other),
        })
}
