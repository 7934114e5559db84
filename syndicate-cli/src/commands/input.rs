//! Reading a file argument or standard input.

use std::io::Read;
use std::path::Path;

use crate::exit::Failure;

/// Reads all of `path`, or standard input when `path` is `None` or `-`.
///
/// # Errors
/// A usage [`Failure`] naming the file when it cannot be read.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path {
        Some(p) if p != Path::new("-") => std::fs::read(p)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display()))),
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
            Ok(bytes)
        }
    }
}
