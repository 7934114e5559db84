//! Internals opened to this workspace's tests and benchmarks (feature
//! `testing`): a connection with the store's settings, the version-1 schema
//! text for a raw baseline table, and one page read without the async layer.
//! Not a stable API: programs use [`SqliteStore`](crate::SqliteStore).

pub use crate::blocking::read as read_page;
pub use crate::schema::{Role, V1, open_connection};
