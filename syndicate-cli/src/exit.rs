//! Exit codes and the one error type every command returns.

use std::fmt;

/// Exit code: success, or an intact chain.
pub const OK: u8 = 0;
/// Exit code: the chain does not verify.
pub const BROKEN: u8 = 1;
/// Exit code: bad input, or a store that cannot be opened or read.
pub const USAGE: u8 = 2;

/// Why a command failed: a one-line reason and its exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// One line, printed on stderr after `syndicate: `.
    pub reason: String,
}

impl Failure {
    /// Bad input or an unusable store: exit 2.
    pub fn usage(reason: impl fmt::Display) -> Self {
        Failure {
            code: USAGE,
            reason: reason.to_string(),
        }
    }

    /// A chain that does not verify: exit 1.
    pub fn broken(reason: impl fmt::Display) -> Self {
        Failure {
            code: BROKEN,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The result of a command.
pub type CommandResult = Result<(), Failure>;
