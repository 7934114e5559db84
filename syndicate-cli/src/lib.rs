//! The library half of the `syndicate` command: the command implementations.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod commands;
pub mod exit;
pub mod progress;
mod store_url;
pub mod terminal;
