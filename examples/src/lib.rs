//! Reference integrations of syndicate. The programs are the binaries in
//! `src/bin/`; this library only holds what they share.
#![forbid(unsafe_code)]

use std::sync::Arc;

use syndicate_core::EventStore;

/// Opens (creating when missing) the store a URL names, e.g.
/// `sqlite://syndicate-demo.db` or `postgres://…`, with the CLI's own opener.
///
/// # Errors
/// The reason, as one line, when the URL is bad or the store cannot be opened.
pub async fn open_store(url: &str, chain: &str) -> Result<Arc<dyn EventStore>, String> {
    syndicate_cli::store_url::open_store_text(url, chain, true)
        .await
        .map_err(|failure| failure.to_string())
}
