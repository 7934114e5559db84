#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod batching;
mod error;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tree;

pub use batching::BatchingStore;
pub use schema::{MIGRATIONS, Migration, MigrationReport, SCHEMA_VERSION, check, migrate};
pub use store::{PostgresOptions, PostgresStore, connect, migrate_url};
