//! Peak memory of verifying a long chain: verification streams pages, so
//! its peak resident set must not grow with the chain.
//!
//! ```sh
//! cargo run --release -p syndicate-benches --bin verify_memory -- generate /tmp/10m.db 10000000
//! cargo run --release -p syndicate-benches --bin verify_memory -- verify /tmp/10m.db
//! ```
//!
//! `generate` appends events in batches of 10,000 (durability `Normal`, so
//! it takes minutes, not hours); `verify` runs `verify_store` over the whole
//! chain in a fresh process and prints the events verified, the time taken
//! and the process's peak resident set (`VmHWM` from `/proc/self/status`,
//! so Linux only). Two runs at different lengths show whether memory grows
//! with the chain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;
use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStore, verify_store};
use syndicate_store_sqlite::{Durability, SqliteOptions, SqliteStore};

const BATCH: u64 = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match args.as_slice() {
        [cmd, path, count] if cmd == "generate" => match count.parse::<u64>() {
            Ok(count) => runtime.block_on(generate(PathBuf::from(path), count)),
            Err(e) => Err(format!("event count {count:?}: {e}")),
        },
        [cmd, path] if cmd == "verify" => runtime.block_on(verify(PathBuf::from(path))),
        _ => Err("usage: verify_memory generate PATH COUNT | verify_memory verify PATH".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("verify_memory: {message}");
            ExitCode::FAILURE
        }
    }
}

fn chain() -> ChainId {
    ChainId::new("memory").expect("a valid chain id")
}

async fn generate(path: PathBuf, count: u64) -> Result<(), String> {
    let options = SqliteOptions::default().with_durability(Durability::Normal);
    let store = SqliteStore::open(&path, chain(), options)
        .await
        .map_err(|e| e.to_string())?;
    let mut written = store
        .head()
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |h| h.seq + 1);
    let started = Instant::now();
    while written < count {
        let n = BATCH.min(count - written);
        let drafts: Vec<EventDraft> = (written..written + n)
            .map(|i| {
                EventDraft::new(
                    "sess-memory",
                    EventKind::ExecutionCompleted,
                    Actor::system("gate"),
                    json!({"request_id": format!("req-{i}"), "outcome": "succeeded", "exit_code": 0}),
                )
            })
            .collect();
        store.append(&drafts).await.map_err(|e| e.to_string())?;
        written += n;
    }
    println!(
        "{written} events in {} after {:.1?}",
        path.display(),
        started.elapsed()
    );
    Ok(())
}

async fn verify(path: PathBuf) -> Result<(), String> {
    let options = SqliteOptions::default().with_read_only(true);
    let store = SqliteStore::open(&path, chain(), options)
        .await
        .map_err(|e| e.to_string())?;
    let before = peak_rss_kib()?;
    let started = Instant::now();
    let report = verify_store(&store, None)
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let peak = peak_rss_kib()?;
    if !report.is_intact() {
        return Err(format!("the chain does not verify: {report:?}"));
    }
    println!(
        "verified {} events in {elapsed:.1?}; peak RSS {:.1} MiB (before verifying {:.1} MiB)",
        report.summary.events,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
    );
    Ok(())
}

/// The process's peak resident set size, in KiB.
fn peak_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status (Linux only): {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_owned())
}
