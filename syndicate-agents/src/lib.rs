#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
mod error;
pub mod gatekeeper;
pub mod hook;
pub mod install;
pub mod mapping;
pub mod mcp;

use std::sync::Arc;

use syndicate_core::{ChainId, EventStore};

pub use config::Config;
pub use error::AgentError;
pub use hook::{Harness, HookAnswer, HookOptions};

/// Opens a store by URL; the `syndicate` command passes its own, so this
/// crate knows no backend.
#[async_trait::async_trait]
pub trait StoreOpener: Send + Sync {
    /// Opens (creating when missing) the store at `url`, on `chain`.
    ///
    /// # Errors
    /// [`AgentError::Store`] when it cannot be opened.
    async fn open(&self, url: &str, chain: &ChainId) -> Result<Arc<dyn EventStore>, AgentError>;
}
