//! `syndicate hook claude|codex`, `syndicate hook install claude|codex` and
//! `syndicate mcp-proxy`: the harness integrations of `syndicate-agents`,
//! with stores opened by URL here.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use syndicate_agents::{AgentError, Config, Harness, HookOptions, StoreOpener};
use syndicate_core::{ChainId, EventStore};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{self, StoreUrl};

/// `syndicate hook ...`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Claude Code hook: reads one hook event on stdin (exit 2 blocks).
    Claude(HookArgs),
    /// Codex CLI hook: reads one hook event on stdin (exit 2 blocks).
    Codex(HookArgs),
    /// Merge the syndicate hooks into the harness's settings file.
    Install(InstallArgs),
}

/// Options of `hook claude|codex`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// The config file (else $SYNDICATE_CONFIG, else .syndicate/config.toml
    /// under $CLAUDE_PROJECT_DIR or the payload's cwd).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The harness to install for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HarnessArg {
    /// Claude Code: `.claude/settings.json`.
    Claude,
    /// Codex CLI: `.codex/hooks.json`.
    Codex,
}

/// Options of `hook install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Which harness.
    pub harness: HarnessArg,
    /// The project folder (default: the current folder).
    #[arg(long, value_name = "DIR", conflicts_with = "user")]
    pub project: Option<PathBuf>,
    /// Install for the user (~/.claude or ~/.codex) instead of a project.
    #[arg(long)]
    pub user: bool,
    /// Print the resulting file instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `mcp-proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The config file (else $SYNDICATE_CONFIG, else .syndicate/config.toml
    /// in the current folder).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The MCP server command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "SERVER_COMMAND")]
    pub command: Vec<String>,
}

struct UrlOpener;

#[async_trait::async_trait]
impl StoreOpener for UrlOpener {
    async fn open(&self, url: &str, chain: &ChainId) -> Result<Arc<dyn EventStore>, AgentError> {
        let unusable = |reason: String| AgentError::Store {
            url: url
                .parse::<StoreUrl>()
                .map_or_else(|_| url.to_owned(), |u| u.to_string()),
            reason,
        };
        let parsed: StoreUrl = url
            .parse()
            .map_err(|e: syndicate_stores::StoreUrlError| unusable(e.to_string()))?;
        store_url::open_store(&parsed, Some(chain), true)
            .await
            .map_err(|f| unusable(f.reason))
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

/// Runs a hook: never exits 1, every failure is exit 2 with one line.
pub fn hook(command: &HookCommand) -> ExitCode {
    let (harness, args) = match command {
        HookCommand::Claude(args) => (Harness::Claude, args),
        HookCommand::Codex(args) => (Harness::Codex, args),
        HookCommand::Install(args) => {
            return match install(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    eprintln!("syndicate: {failure}");
                    ExitCode::from(failure.code)
                }
            };
        }
    };
    // Logs only when RUST_LOG asks: on exit 2 the harness shows stderr.
    init_logging("off");
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("syndicate: cannot read the hook event on stdin: {e}");
        return ExitCode::from(2);
    }
    let options = HookOptions {
        config: args.config.clone(),
        project_dir: std::env::var_os("CLAUDE_PROJECT_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
    };
    let answer = match runtime() {
        Ok(rt) => rt.block_on(syndicate_agents::hook::run(
            harness, &input, &options, &UrlOpener,
        )),
        Err(failure) => {
            eprintln!("syndicate: {failure}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    if stdout
        .write_all(answer.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("syndicate: cannot write the hook answer");
        return ExitCode::from(2);
    }
    eprint!("{}", answer.stderr);
    ExitCode::from(answer.code)
}

fn install(args: &InstallArgs) -> CommandResult {
    let harness = match args.harness {
        HarnessArg::Claude => Harness::Claude,
        HarnessArg::Codex => Harness::Codex,
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| Failure::usage("HOME is not set; use --project DIR"))?;
    let project = if args.user {
        None
    } else {
        Some(match &args.project {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(Failure::usage)?,
        })
    };
    let path = syndicate_agents::install::settings_path(harness, project.as_deref(), &home);
    let exe = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find the syndicate binary: {e}")))?;
    let exe = exe.to_string_lossy();
    let command = if exe
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        exe.into_owned()
    } else {
        format!("'{}'", exe.replace('\'', r"'\''"))
    };
    let message = syndicate_agents::install::install(harness, &path, &command, args.dry_run)
        .map_err(Failure::usage)?;
    print!("{message}");
    Ok(())
}

/// Runs the MCP proxy; exits with the server's exit code, or 2 when it
/// cannot start.
pub fn mcp_proxy(args: &ProxyArgs) -> CommandResult {
    init_logging("info");
    let config = Config::find(args.config.as_deref(), None).map_err(Failure::usage)?;
    let code = runtime()?
        .block_on(syndicate_agents::mcp::run(
            config,
            &args.command,
            &UrlOpener,
        ))
        .map_err(Failure::usage)?;
    if code == 0 {
        Ok(())
    } else {
        Err(Failure {
            code: u8::try_from(code).unwrap_or(1),
            reason: format!("the mcp server exited with code {code}"),
        })
    }
}
