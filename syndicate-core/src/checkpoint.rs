//! C2SP `tlog-checkpoint` bodies: the origin of a log, a tree size and the
//! root of the tree of that many events.
//!
//! ```text
//! <origin>\n
//! <size, decimal>\n
//! <root, standard base64 of 32 bytes>\n
//! [<extension line>\n ...]
//! ```
//!
//! A body is signed as a C2SP signed note by the log key and cosigned by
//! witnesses; see the signing helpers of this crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::event::ChainId;
use crate::merkle::Hash;

/// The origin a chain's checkpoints carry when none is configured:
/// `syndicate/<chain>`. Give a chain a globally unique origin (such as
/// `audit.example.com/<chain>`) when its checkpoints are published.
pub fn default_origin(chain: &ChainId) -> String {
    format!("syndicate/{chain}")
}

/// A checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Events covered: the first `size` events of the chain.
    pub size: u64,
    /// The RFC 9162 root of those events.
    pub root: Hash,
    /// Optional extension lines, in order.
    pub extensions: Vec<String>,
}

/// Why a checkpoint body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A line is missing or malformed.
    #[error("checkpoint line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

fn bad(line: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Line {
        line,
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The body text, each line ending in `\n`.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a body (the text of a signed note before its blank line).
    ///
    /// # Errors
    /// [`CheckpointError`] naming the first bad line: an empty origin, a size
    /// that is not canonical decimal, a root that is not base64 of 32 bytes,
    /// an empty extension line, or a body not ending in a newline.
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad(1, "a checkpoint body must end with a newline"));
        };
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad(1, "the origin line is empty"));
        }
        let size_text = lines
            .next()
            .ok_or_else(|| bad(2, "the size line is missing"))?;
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| bad(2, format!("{size_text:?} is not a decimal tree size")))?;
        let root_text = lines
            .next()
            .ok_or_else(|| bad(3, "the root line is missing"))?;
        let root: Hash = STANDARD
            .decode(root_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(3, "the root is not base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(bad(4 + i, "an extension line is empty"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_bad_lines_are_named() {
        let mut cp = Checkpoint::new("example.com/log", 12, [7; 32]);
        cp.extensions.push("ext one".into());
        assert_eq!(Checkpoint::parse(&cp.body()).unwrap(), cp);
        assert!(Checkpoint::parse("o\n012\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\n").is_err());
        assert!(Checkpoint::parse(&cp.body().replace('\n', "")).is_err());
    }
}
