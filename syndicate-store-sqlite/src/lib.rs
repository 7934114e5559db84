#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod blocking;
mod error;
mod guard;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tree;

pub use error::{STORE, SqliteError};
pub use schema::{APPLICATION_ID, Durability, SCHEMA_VERSION, SqliteOptions};
pub use store::SqliteStore;
