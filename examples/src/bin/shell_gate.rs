//! A real command runner behind the gate.
//!
//! ```text
//! shell_gate --store sqlite://syndicate-demo.db [--chain shell] [--policy FILE] [--as REQUESTER] [--timeout SECS] -- git status
//! ```
//!
//! Proposes `{"tool":"shell.exec","args":{"argv":[...],"cwd":...}}`, prints
//! the request id, the digest, the canonical action and the exact
//! `syndicate approve` command to run in another terminal, waits for the
//! approval (polling the store), then runs the command with
//! `std::process::Command` only with a permit, from the permit's approved
//! action, and records its exit code and the digest of its output
//! (`SHA-256("syndicate:result:v1" || 0x00 || stdout || stderr)`).
//!
//! `--request ID` continues a request proposed earlier (by this program in
//! another process, or a restarted one) instead of proposing a new one.
//!
//! Exit codes: the command's own exit code when it ran; 3 when the gate
//! refused (denied, drifted, expired, already used, degraded) or the
//! approval did not come in time; 2 for bad arguments or an unusable store.

use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syndicate_core::gate::{
    Closed, Gate, GateConfig, GateError, Outcome, ProposalContext, RulePolicy, Status,
};
use syndicate_core::{Action, Actor, EventStore};

const DEFAULT_POLICY: &str = include_str!("../../policy.toml");

/// Exit code when the gate refused or no approval came.
const REFUSED: u8 = 3;

struct Options {
    store: String,
    chain: String,
    policy: Option<String>,
    requester: String,
    timeout: Duration,
    request: Option<String>,
    argv: Vec<String>,
}

const USAGE: &str = "usage: shell_gate --store URL [--chain NAME] [--policy FILE] [--as REQUESTER] \
[--timeout SECS] (-- COMMAND [ARGS...] | --request ID)";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        store: String::new(),
        chain: "shell".into(),
        policy: None,
        requester: "agent:shell_gate".into(),
        timeout: Duration::from_secs(600),
        request: None,
        argv: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => options.store = value("--store")?,
            "--chain" => options.chain = value("--chain")?,
            "--policy" => options.policy = Some(value("--policy")?),
            "--as" => options.requester = value("--as")?,
            "--request" => options.request = Some(value("--request")?),
            "--timeout" => {
                let secs = value("--timeout")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("--timeout {secs:?} is not a number of seconds"))?;
                options.timeout = Duration::from_secs(secs);
            }
            "--" => {
                options.argv = args.by_ref().collect();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if options.store.is_empty() {
        return Err(format!("--store is required; {USAGE}"));
    }
    if options.argv.is_empty() == options.request.is_none() {
        return Err(format!(
            "give either a command after -- or --request ID; {USAGE}"
        ));
    }
    Ok(options)
}

/// Reads argv and cwd back out of the approved action.
fn command_of(action: &Action) -> Result<(Vec<String>, Option<String>), String> {
    let argv = action.args()["argv"]
        .as_array()
        .ok_or("the approved action has no argv array")?
        .iter()
        .map(|a| a.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .filter(|argv| !argv.is_empty())
        .ok_or("the approved argv is not a non-empty list of strings")?;
    let cwd = action
        .args()
        .get("cwd")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((argv, cwd))
}

enum Failure {
    Usage(String),
    Refused(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Usage(e.to_string())
    }
}

async fn run(options: Options) -> Result<u8, Failure> {
    let policy = match &options.policy {
        Some(path) => RulePolicy::from_path(path)?,
        None => RulePolicy::from_toml(DEFAULT_POLICY)?,
    };
    let store: Arc<dyn EventStore> =
        syndicate_examples::open_store(&options.store, &options.chain).await?;
    let gate = Gate::open(store, Arc::new(policy), GateConfig::default()).await?;

    let (request_id, action) = match &options.request {
        Some(id) => {
            // Read the action first; if the request is no longer open, say
            // why (another process may have run it meanwhile).
            let action = match gate.proposed_action(id).await? {
                Some(action) => Some(action),
                None => match gate.request(id).await? {
                    Status::Closed(closed) => {
                        let what = match closed {
                            Closed::Denied => "was denied",
                            _ => "already started once and completed",
                        };
                        return Err(Failure::Refused(format!(
                            "request {id} {what}; an approval is single-use, nothing ran"
                        )));
                    }
                    _ => None,
                },
            };
            let action = action.ok_or_else(|| {
                Failure::Usage(format!("no request {id:?} on chain {:?}", options.chain))
            })?;
            (id.clone(), action)
        }
        None => {
            let cwd = std::env::current_dir()?.display().to_string();
            let action = Action::new("shell.exec", json!({"argv": options.argv, "cwd": cwd}))?;
            let session = format!("shell_gate-{}", std::process::id());
            let p = gate
                .propose(
                    &session,
                    &Actor::agent(&options.requester),
                    &action,
                    &ProposalContext::default(),
                )
                .await?;
            (p.request_id, action)
        }
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "request {request_id}")?;
        writeln!(out, "digest {}", action.digest())?;
        writeln!(
            out,
            "action {}",
            String::from_utf8_lossy(action.canonical_bytes())
        )?;
        writeln!(out, "approve it from another terminal:")?;
        writeln!(
            out,
            "  syndicate approve {request_id} --as NAME --digest {} --store {} --chain {}",
            action.digest(),
            options.store,
            options.chain
        )?;
        writeln!(
            out,
            "waiting for approval (up to {} s)...",
            options.timeout.as_secs()
        )?;
        out.flush()?;
    }

    // A program (not a test) may poll: the approval comes from another
    // process, through the store.
    let deadline = Instant::now() + options.timeout;
    loop {
        let ready = match gate.request(&request_id).await? {
            Status::Open(r) => r.is_approved() || r.started.is_some(),
            Status::Closed(_) => true,
            Status::Unknown => {
                return Err(Failure::Usage(format!("request {request_id} vanished")));
            }
        };
        if ready {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Failure::Refused(format!(
                "no approval for request {request_id} within {} s; nothing ran",
                options.timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let permit = match gate.authorize(&request_id, &action).await {
        Ok(permit) => permit,
        Err(e @ GateError::Refused { .. }) => {
            return Err(Failure::Refused(format!("{e}; nothing ran")));
        }
        Err(e) => return Err(e.into()),
    };
    let (argv, cwd) = command_of(permit.action())?;
    println!("approved; running {argv:?}");
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let outcome = match command.output() {
        Ok(output) => {
            std::io::stdout().write_all(&output.stdout)?;
            std::io::stderr().write_all(&output.stderr)?;
            let mut result = output.stdout.clone();
            result.extend_from_slice(&output.stderr);
            let code = output.status.code().unwrap_or(-1);
            let outcome = if output.status.success() {
                Outcome::succeeded()
            } else {
                Outcome::failed(format!("exit status {}", output.status))
            };
            outcome.with_exit_code(i64::from(code)).with_result(&result)
        }
        Err(e) => Outcome::failed(format!("cannot start {:?}: {e}", argv[0])),
    };
    let code = outcome.exit_code;
    let event = gate.complete(permit, outcome).await?;
    println!("recorded execution.completed at seq {}", event.seq);
    Ok(code.map_or(1, |c| u8::try_from(c).unwrap_or(1)))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("shell_gate: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shell_gate: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(e)) => {
            eprintln!("shell_gate: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Refused(e)) => {
            eprintln!("shell_gate: {e}");
            ExitCode::from(REFUSED)
        }
    }
}
