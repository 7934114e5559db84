//! The one error type of this crate.

use std::path::PathBuf;

/// Why a hook or the proxy could not decide. Every variant fails closed:
/// the hook exits 2, the proxy answers with an error result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No configuration file was found.
    #[error(
        "no syndicate config: pass --config FILE, set SYNDICATE_CONFIG, or create {0} (see the syndicate-agents README)"
    )]
    NoConfig(PathBuf),
    /// The configuration file cannot be read or parsed.
    #[error("config {path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The hook payload is not what the harness sends.
    #[error("malformed hook payload: {0}")]
    BadPayload(String),
    /// The tool call has no canonical action.
    #[error("tool call has no canonical action: {0}")]
    BadAction(#[from] syndicate_core::ActionError),
    /// The store cannot be opened.
    #[error("cannot open store {url}: {reason}")]
    Store {
        /// The store URL (password hidden).
        url: String,
        /// Why.
        reason: String,
    },
    /// The gate failed (store error, degraded gate).
    #[error("gate: {0}")]
    Gate(#[from] syndicate_core::GateError),
    /// The gate is degraded: nothing is authorized until an operator recovers it.
    #[error("gate is degraded, nothing runs until an operator recovers it: {0}")]
    Degraded(String),
    /// Reading the store failed.
    #[error("store: {0}")]
    StoreRead(#[from] syndicate_core::StoreError),
    /// The decision took longer than the configured deadline.
    #[error("no decision within {0} s; refusing the call")]
    Timeout(u64),
    /// Reading or writing a file or a pipe failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl AgentError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
        let what = what.into();
        move |source| AgentError::Io { what, source }
    }
}
