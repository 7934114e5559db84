//! The library half of the `syndicate` command: opening stores by URL and the
//! command implementations, shared with the examples.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod commands;
pub mod exit;
pub mod store_url;
