#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tree;

pub use schema::{MIGRATIONS, Migration, MigrationReport, SCHEMA_VERSION, check, migrate};
pub use store::{PostgresOptions, PostgresStore, connect, migrate_url};
/// Group commit, generic over any store; it lives in core.
pub use syndicate_core::batching::BatchingStore;
