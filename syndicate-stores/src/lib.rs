#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod open;
mod url;

pub use open::{Access, OpenError, OpenOptions, chains, open};
pub use url::{StoreUrl, StoreUrlError};
