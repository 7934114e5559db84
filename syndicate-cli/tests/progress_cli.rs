//! Progress bars on long runs: drawn on a terminal, absent when standard
//! error is piped, so scripts and logs get exactly the command's output.

mod cli;

use std::process::Command;

use cli::{syndicate, text};
use serde_json::json;
use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStore};
use syndicate_stores::{Access, OpenOptions, StoreUrl};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A chain of `n` free notes: longer than the progress threshold.
async fn long_chain(dir: &std::path::Path, n: u64) -> Result<String> {
    let url = format!("sqlite://{}", dir.join("long.db").display());
    let store = syndicate_stores::open(
        &url.parse::<StoreUrl>()?,
        &OpenOptions::new(Access::Create).with_chain(ChainId::new("long")?),
    )
    .await?;
    let mut i = 0;
    while i < n {
        let batch: Vec<EventDraft> = (i..(i + 2000).min(n))
            .map(|k| {
                EventDraft::new(
                    "s",
                    EventKind::Annotation,
                    Actor::system("load"),
                    json!({"note": format!("event {k}")}),
                )
            })
            .collect();
        i += batch.len() as u64;
        store.append(&batch).await?;
    }
    Ok(url)
}

#[tokio::test(flavor = "multi_thread")]
async fn long_runs_print_nothing_extra_when_piped() -> Result {
    let dir = tempfile::tempdir()?;
    let n = syndicate_cli::progress::THRESHOLD + 2_000;
    let url = long_chain(dir.path(), n).await?;
    for args in [
        vec!["audit", "verify", "--store", &url],
        vec!["audit", "export", "--store", &url],
        vec!["audit", "report", "--store", &url],
        vec!["audit", "changes", "--store", &url, "--format", "json"],
        vec!["audit", "checks", "--store", &url],
        vec!["audit", "query", "--store", &url, "--risk", "low"],
    ] {
        let out = syndicate(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
        assert!(
            !out.stdout.iter().any(|b| *b == b'\r' || *b == 0x1b),
            "{args:?}: no bar drawing in the output"
        );
    }
    let out = syndicate(&["audit", "export", "--store", &url]);
    assert_eq!(
        String::from_utf8(out.stdout)?.lines().count() as u64,
        n,
        "one line per event"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn long_runs_show_a_bar_on_a_terminal() -> Result {
    // `script` (util-linux) runs the command on a pseudo-terminal.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command to give the binary a terminal");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let url = long_chain(dir.path(), 60_000).await?;
    let command = format!(
        "{} audit verify --store {url} > {}",
        env!("CARGO_BIN_EXE_syndicate"),
        dir.path().join("stdout.txt").display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(
        terminal.contains("verifying") && terminal.contains("events"),
        "a bar on the terminal: {terminal:?}"
    );
    // Standard output, redirected to a file, holds only the verdict.
    let stdout = std::fs::read_to_string(dir.path().join("stdout.txt"))?;
    assert!(stdout.starts_with("intact: 60000 events"), "{stdout}");
    assert!(!stdout.contains("verifying"), "{stdout}");
    Ok(())
}
