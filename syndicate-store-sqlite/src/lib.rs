#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod blocking;
mod error;
mod guard;
pub mod schema;
mod store;
mod tree;

pub use error::{STORE, SqliteError};
pub use schema::{APPLICATION_ID, Durability, SCHEMA_VERSION, SqliteOptions};
pub use store::SqliteStore;
