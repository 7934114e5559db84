//! `append_load`: appends events to one store from several OS processes at
//! once, and records what each append acknowledged.
//!
//! ```text
//! cargo run -p syndicate-examples --bin append_load -- \
//!     --store sqlite:load.db --events 1000 --processes 4 --ack-log acks.txt
//! syndicate audit verify --store sqlite:load.db
//! ```
//!
//! The parent starts `--processes` copies of itself, each with
//! `--worker I`, and waits for them; each appends `--events` events in
//! batches of `--batch` to chain `--chain` (session `load-I`). With
//! `--ack-log FILE`, a worker appends one line `SEQ` per event to FILE after
//! its append returned (all workers share FILE, opened in append mode, one
//! `write` per batch, so lines never interleave). A line in the log is thus
//! an acknowledged event, which must be in the store whatever happens next.
//! Workers die with the parent (on Linux): killing it, even with SIGKILL,
//! stops the whole load.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use syndicate_cli::exit::Failure;
use syndicate_core::{Actor, ChainId, EventDraft, EventKind};
use syndicate_stores::{Access, OpenOptions as StoreOptions, StoreUrl};

/// Append events to one store from several processes at once.
#[derive(Debug, Parser)]
#[command(name = "append_load", about)]
struct Args {
    /// The store, e.g. `sqlite:load.db` (created when missing).
    #[arg(long, value_name = "URL")]
    store: String,
    /// The chain to append to.
    #[arg(long, default_value = "load")]
    chain: String,
    /// Events each process appends.
    #[arg(long, default_value_t = 1000)]
    events: u64,
    /// Number of OS processes appending at once.
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// Events per append (one transaction each).
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Append `SEQ` lines here, one per event, after each append returned.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<PathBuf>,
    /// On a retryable error (store unavailable, e.g. a restarting server),
    /// keep retrying the same batch for up to this many seconds instead of
    /// failing. A batch whose commit may have gone through is not retried
    /// and not acknowledged.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    retry_secs: u64,
    /// Append from this process as worker I, without starting others (what
    /// each started process runs).
    #[arg(long, value_name = "I")]
    worker: Option<u32>,
    /// The pid of the process that started this worker: the worker dies
    /// with it (on Linux), so killing the parent stops the whole load.
    #[arg(long, value_name = "PID", requires = "worker")]
    parent_pid: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.batch == 0 {
        Err(Failure::usage("--batch must be at least 1"))
    } else {
        match args.worker {
            Some(worker) => run_worker(&args, worker),
            None => run_parent(&args),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("append_load: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

fn target(args: &Args) -> Result<(StoreUrl, ChainId), Failure> {
    let url: StoreUrl = args.store.parse().map_err(Failure::usage)?;
    let chain = ChainId::new(args.chain.clone()).map_err(Failure::usage)?;
    Ok((url, chain))
}

async fn open_store(
    url: &StoreUrl,
    chain: &ChainId,
) -> Result<std::sync::Arc<dyn syndicate_core::EventStore>, Failure> {
    let options = StoreOptions::new(Access::Create).with_chain(chain.clone());
    syndicate_stores::open(url, &options)
        .await
        .map_err(Failure::usage)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

/// Creates the store once, then starts the workers and waits for all of them.
fn run_parent(args: &Args) -> Result<(), Failure> {
    let (url, chain) = target(args)?;
    runtime()?.block_on(async { open_store(&url, &chain).await.map(drop) })?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find this program's path: {e}")))?;
    let started = Instant::now();
    let mut children = Vec::new();
    for worker in 0..args.processes {
        let mut command = Command::new(&exe);
        command
            .arg("--store")
            .arg(&args.store)
            .arg("--chain")
            .arg(&args.chain)
            .arg("--events")
            .arg(args.events.to_string())
            .arg("--batch")
            .arg(args.batch.to_string())
            .arg("--retry-secs")
            .arg(args.retry_secs.to_string())
            .arg("--worker")
            .arg(worker.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        if let Some(log) = &args.ack_log {
            command.arg("--ack-log").arg(log);
        }
        let child = command
            .spawn()
            .map_err(|e| Failure::usage(format!("cannot start worker {worker}: {e}")))?;
        children.push((worker, child));
    }
    let mut failed = Vec::new();
    for (worker, mut child) in children {
        let status = child
            .wait()
            .map_err(|e| Failure::usage(format!("cannot wait for worker {worker}: {e}")))?;
        if !status.success() {
            failed.push(format!("worker {worker} {status}"));
        }
    }
    if !failed.is_empty() {
        return Err(Failure::broken(format!(
            "{} of {} workers failed: {}",
            failed.len(),
            args.processes,
            failed.join(", ")
        )));
    }
    let total = args.events * u64::from(args.processes);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended {total} events from {} processes to chain {:?} in {secs:.2} s ({:.0} events/s)",
        args.processes,
        chain.as_str(),
        total as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Makes this worker die with the process that started it: the kernel
/// sends SIGKILL when the parent dies (a SIGKILLed parent runs no cleanup),
/// and a parent already gone before that was set is caught by comparing
/// the parent's pid with the one it passed down.
fn die_with_parent(args: &Args) -> Result<(), Failure> {
    let Some(parent) = args.parent_pid else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| Failure::usage(format!("cannot ask to die with the parent: {e}")))?;
    if std::os::unix::process::parent_id() != parent {
        return Err(Failure::broken(format!(
            "the parent process {parent} is gone; nothing appended"
        )));
    }
    Ok(())
}

/// Appends this worker's events, logging each acknowledged seq.
fn run_worker(args: &Args, worker: u32) -> Result<(), Failure> {
    die_with_parent(args)?;
    let (url, chain) = target(args)?;
    let mut log = args.ack_log.as_ref().map(open_log).transpose()?;
    runtime()?.block_on(async {
        let store = open_store(&url, &chain).await?;
        let mut n = 0;
        while n < args.events {
            let size = args.batch.min(args.events - n);
            let batch: Vec<EventDraft> = (n..n + size).map(|k| draft(worker, k)).collect();
            let Some(events) = append_retrying(&*store, &batch, args.retry_secs, worker).await?
            else {
                n += size;
                continue;
            };
            if let Some(log) = log.as_mut() {
                let lines: String = events.iter().map(|e| format!("{}\n", e.seq)).collect();
                log.write_all(lines.as_bytes())
                    .map_err(|e| Failure::usage(format!("cannot write the ack log: {e}")))?;
            }
            n += size;
        }
        Ok(())
    })
}

/// Appends a batch, retrying retryable errors for up to `retry_secs`.
/// `None` when the outcome is unknown (the commit may have gone through).
async fn append_retrying(
    store: &dyn syndicate_core::EventStore,
    batch: &[EventDraft],
    retry_secs: u64,
    worker: u32,
) -> Result<Option<Vec<syndicate_core::Event>>, Failure> {
    let deadline = Instant::now() + std::time::Duration::from_secs(retry_secs);
    loop {
        match store.append(batch).await {
            Ok(events) => return Ok(Some(events)),
            // The commit may have gone through: not acknowledged, and not
            // retried blindly (it could be written twice).
            Err(e) if e.may_have_written() => {
                eprintln!("append_load: worker {worker}: {e}; outcome unknown, not acknowledged");
                return Ok(None);
            }
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                eprintln!("append_load: worker {worker}: {e}; retrying");
                // Back off before the next attempt (not a synchronization).
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(Failure::usage(format!(
                    "worker {worker}: append failed: {e}"
                )));
            }
        }
    }
}

fn open_log(path: &PathBuf) -> Result<File, Failure> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Failure::usage(format!("cannot open ack log {}: {e}", path.display())))
}

fn draft(worker: u32, n: u64) -> EventDraft {
    EventDraft::new(
        format!("load-{worker}"),
        EventKind::Annotation,
        Actor::agent("append_load"),
        json!({
            "note": "load test event",
            "worker": worker,
            "n": n,
            "request_id": format!("load-{worker}-{n}"),
        }),
    )
}
