//! Reference integrations of syndicate. The programs are the binaries in
//! `src/bin/`; this library only holds what they share.
#![forbid(unsafe_code)]

use std::sync::Arc;

use syndicate_core::{ChainId, ChainIdError, EventStore};
use syndicate_stores::{Access, OpenOptions, StoreUrl, StoreUrlError};

/// Opens (creating when missing) the store a URL names, e.g.
/// `sqlite://syndicate-demo.db` or `postgres://…`, with [`syndicate_stores`].
///
/// # Errors
/// The reason, as one line, when the URL or chain is bad or the store cannot
/// be opened.
pub async fn open_store(url: &str, chain: &str) -> Result<Arc<dyn EventStore>, String> {
    let url: StoreUrl = url.parse().map_err(|e: StoreUrlError| e.to_string())?;
    let chain: ChainId = chain.parse().map_err(|e: ChainIdError| e.to_string())?;
    syndicate_stores::open(&url, &OpenOptions::new(Access::Create).with_chain(chain))
        .await
        .map_err(|e| e.to_string())
}
