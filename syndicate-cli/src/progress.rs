//! Progress bars (`indicatif`) on standard error for long runs: verify,
//! export, report and the evidence commands. Shown only when standard error
//! is a terminal and the run is long; when it is piped or redirected (a
//! script, a CI log, a test) nothing is drawn, so the output stays exactly
//! what the command prints.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs shorter than this many events (or bytes / 256 for a file) get no bar.
pub const THRESHOLD: u64 = 10_000;

/// Whether bars are drawn at all: standard error is a terminal.
pub fn shown() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar over `len` events, or a hidden one (piped, or a short run).
pub fn bar(len: u64, message: &'static str) -> ProgressBar {
    styled(
        len,
        len >= THRESHOLD,
        message,
        "{msg} {wide_bar} {pos}/{len} events ({per_sec}, {eta})",
    )
}

/// A bar over the `len` bytes of a file, or a hidden one.
pub fn bytes(len: u64, message: &'static str) -> ProgressBar {
    styled(
        len,
        len >= THRESHOLD * 256,
        message,
        "{msg} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    )
}

fn styled(len: u64, long: bool, message: &'static str, template: &str) -> ProgressBar {
    if !shown() || !long {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        .with_message(message);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_runs_get_a_hidden_bar() {
        assert!(bar(THRESHOLD - 1, "x").is_hidden());
        assert!(bytes(THRESHOLD, "x").is_hidden());
    }
}
