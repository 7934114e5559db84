//! `syndicate hook claude|codex`: one hook event in, one answer out.
//!
//! The answer is always an exit code and the bytes for stdout and stderr;
//! any error becomes exit 2 with a one-line reason on stderr, which both
//! harnesses treat as "block" (exit 1, other codes and time-outs let the
//! call proceed, so they are never used).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use syndicate_core::{Actor, ChainId};

use crate::StoreOpener;
use crate::config::Config;
use crate::error::AgentError;
use crate::gatekeeper::{self, Verdict};
use crate::mapping::{ToolCall, action_for};

/// Which harness is calling; their output rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Harness {
    /// Claude Code.
    Claude,
    /// OpenAI Codex CLI.
    Codex,
}

impl Harness {
    fn requester(self) -> &'static str {
        match self {
            Harness::Claude => "claude-code",
            Harness::Codex => "codex",
        }
    }
}

/// What the hook process prints and exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAnswer {
    /// The exit code: 0, or 2 to block.
    pub code: u8,
    /// Bytes for stdout (empty or one JSON object).
    pub stdout: String,
    /// Bytes for stderr (empty or one line).
    pub stderr: String,
}

impl HookAnswer {
    fn silent() -> Self {
        HookAnswer {
            code: 0,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    fn block(error: &AgentError) -> Self {
        let line = error.to_string().replace(['\n', '\r'], " ");
        HookAnswer {
            code: 2,
            stdout: String::new(),
            stderr: format!("syndicate: {line}\n"),
        }
    }

    fn decision(event: &str, decision: &str, reason: &str) -> Self {
        let out = json!({"hookSpecificOutput": {
            "hookEventName": event,
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }});
        HookAnswer {
            code: 0,
            stdout: format!("{out}\n"),
            stderr: String::new(),
        }
    }
}

/// How the hook was invoked.
#[derive(Debug, Clone, Default)]
pub struct HookOptions {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `$CLAUDE_PROJECT_DIR` (or Codex's project folder), when set.
    pub project_dir: Option<PathBuf>,
}

/// Handles one hook event: never panics, never fails open.
pub async fn run(
    harness: Harness,
    input: &[u8],
    options: &HookOptions,
    opener: &dyn StoreOpener,
) -> HookAnswer {
    let payload: Value = match serde_json::from_slice(input) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(_) => return HookAnswer::block(&AgentError::BadPayload("not a json object".into())),
        Err(e) => return HookAnswer::block(&AgentError::BadPayload(e.to_string())),
    };
    let event = payload
        .get("hook_event_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !matches!(
        event.as_str(),
        "PreToolUse" | "PostToolUse" | "PostToolUseFailure"
    ) {
        if event.is_empty() {
            return HookAnswer::block(&AgentError::BadPayload("no \"hook_event_name\"".into()));
        }
        return HookAnswer::silent();
    }
    let config = match locate(&payload, options) {
        Ok(config) => config,
        Err(e) => return HookAnswer::block(&e),
    };
    let seconds = config.timeout_seconds();
    let work = handle(harness, &event, &payload, &config, opener);
    match tokio::time::timeout(Duration::from_secs(seconds), work).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => HookAnswer::block(&e),
        Err(_) => HookAnswer::block(&AgentError::Timeout(seconds)),
    }
}

fn locate(payload: &Value, options: &HookOptions) -> Result<Config, AgentError> {
    let project = options.project_dir.clone().or_else(|| {
        payload
            .get("cwd")
            .and_then(Value::as_str)
            .map(PathBuf::from)
    });
    Config::find(options.config.as_deref(), project.as_deref())
}

fn text<'a>(payload: &'a Value, key: &str) -> Result<&'a str, AgentError> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AgentError::BadPayload(format!("missing string \"{key}\"")))
}

async fn handle(
    harness: Harness,
    event: &str,
    payload: &Value,
    config: &Config,
    opener: &dyn StoreOpener,
) -> Result<HookAnswer, AgentError> {
    let session = text(payload, "session_id")?;
    let tool_name = text(payload, "tool_name")?;
    let tool_input = payload
        .get("tool_input")
        .ok_or_else(|| AgentError::BadPayload("missing \"tool_input\"".into()))?;
    let tool_use_id = payload.get("tool_use_id").and_then(Value::as_str);
    let call = ToolCall {
        tool_name,
        tool_input,
        cwd: payload.get("cwd").and_then(Value::as_str),
    };
    let action = action_for(&call, &config.file.targets)?;
    let chain = ChainId::new(config.file.chain.as_str()).map_err(|e| AgentError::BadConfig {
        path: config.path.clone(),
        reason: e.to_string(),
    })?;
    let store = opener.open(&config.store_url, &chain).await?;
    let keeper = gatekeeper::open(store, &config.policy_path).await?;
    match event {
        "PreToolUse" => {
            let facts: BTreeMap<&str, Value> = [
                "tool_use_id",
                "cwd",
                "permission_mode",
                "agent_id",
                "agent_type",
                "transcript_path",
                "turn_id",
                "prompt_id",
            ]
            .into_iter()
            .map(|k| (k, payload.get(k).cloned().unwrap_or(Value::Null)))
            .chain([("harness", json!(harness.requester()))])
            .collect();
            let requester = Actor::agent(
                config
                    .file
                    .requester
                    .clone()
                    .unwrap_or_else(|| harness.requester().to_owned()),
            );
            let verdict = keeper
                .decide(
                    session,
                    &requester,
                    &action,
                    &gatekeeper::context(&facts),
                    tool_use_id,
                )
                .await?;
            Ok(answer(harness, verdict, config, &chain))
        }
        "PostToolUse" => {
            let response = payload.get("tool_response").cloned().unwrap_or(Value::Null);
            let outcome = gatekeeper::outcome_of(&response, false);
            let done = keeper
                .finish_started(session, &action.digest(), tool_use_id, outcome)
                .await?;
            if done.is_none() {
                tracing::warn!(tool_name, "PostToolUse for a call this gate did not start");
            }
            Ok(HookAnswer::silent())
        }
        _ => {
            let error = payload
                .get("error")
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "the tool failed".to_owned());
            keeper
                .finish_started(
                    session,
                    &action.digest(),
                    tool_use_id,
                    gatekeeper::failed(error),
                )
                .await?;
            Ok(HookAnswer::silent())
        }
    }
}

/// The exact command that approves a request.
pub fn approve_command(config: &Config, chain: &ChainId, request_id: &str, digest: &str) -> String {
    format!(
        "syndicate approve {request_id} --digest {digest} --as YOUR_NAME --store {} --chain {chain}",
        shell_word(&display_url(&config.store_url))
    )
}

fn display_url(url: &str) -> String {
    // Hide a password in postgres://user:password@host.
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:._-@=+,%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn answer(harness: Harness, verdict: Verdict, config: &Config, chain: &ChainId) -> HookAnswer {
    match verdict {
        Verdict::Allowed { request_id, permit } => match harness {
            // Codex accepts `allow` only with `updatedInput`, and a rewrite
            // would be a new action: approved = exit 0, empty stdout.
            Harness::Codex => HookAnswer::silent(),
            Harness::Claude => HookAnswer::decision(
                "PreToolUse",
                "allow",
                &format!(
                    "syndicate: request {request_id} approved; digest {}",
                    permit.digest()
                ),
            ),
        },
        Verdict::Pending {
            request_id, digest, ..
        } => HookAnswer::decision(
            "PreToolUse",
            "deny",
            &format!(
                "syndicate: this call needs a person's approval. Request {request_id}, action digest {digest}. \
                 Ask the user to review it (syndicate show {request_id} --store {} --chain {chain}) and approve it with: {} \
                 Then retry exactly the same call.",
                shell_word(&display_url(&config.store_url)),
                approve_command(config, chain, &request_id, &digest.to_string()),
            ),
        ),
        Verdict::Refused { request_id, reason } => HookAnswer::decision(
            "PreToolUse",
            "deny",
            &format!("syndicate: request {request_id} refused: {reason}"),
        ),
    }
}
