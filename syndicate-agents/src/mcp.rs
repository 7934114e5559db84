//! `syndicate mcp-proxy`: a stdio MCP proxy that gates `tools/call`.
//!
//! The proxy spawns the server and relays newline-delimited JSON-RPC both
//! ways, byte for byte, except client requests with method `tools/call`:
//! those become the action `{tool: params.name, args: params.arguments,
//! target: "mcp:<server>"}` (`_meta` and any other member of `params` is not
//! part of it) and are decided by the gate first.
//!
//! - Allowed (by policy, or a person's earlier approval of this digest in
//!   this session): forwarded; the server's answer is relayed unchanged and
//!   recorded as the outcome (`failed` when `isError` is true or the answer
//!   is a JSON-RPC error; the digest of the canonical `result` either way).
//! - Needs a person: not forwarded. The client gets a tool result with
//!   `isError: true` naming the request id, digest and approve command; the
//!   retry of the same call after approval is forwarded.
//! - Denied, drifted, expired, degraded gate, or any proxy error: not
//!   forwarded; an `isError` tool result says why.
//!
//! The proxy's own results carry `resultType: "complete"` when the request
//! was sent under the 2026-07-28 revision (its `_meta` names
//! `io.modelcontextprotocol/protocolVersion`): clients of that revision
//! refuse a result without it.
//!
//! If the server exits while calls are in flight, each gets a JSON-RPC
//! error and a `failed` outcome is recorded; then the proxy exits.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use serde_json::{Value, json};
use syndicate_core::{Action, Actor, ChainId, Permit};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use crate::StoreOpener;
use crate::config::Config;
use crate::error::AgentError;
use crate::gatekeeper::{self, Gatekeeper, Verdict};
use crate::hook::approve_command;

type Out = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;
type InFlight = Arc<std::sync::Mutex<HashMap<String, Permit>>>;

async fn send(out: &Out, line: &[u8]) {
    let mut out = out.lock().await;
    let ok = out.write_all(line).await.is_ok() && out.flush().await.is_ok();
    if !ok {
        tracing::warn!("cannot write to the client");
    }
}

/// The `_meta` key that marks a request of the 2026-07-28 (stateless)
/// protocol; its results must carry `resultType`.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// Whether a request was sent under the 2026-07-28 revision, whose clients
/// refuse a result without `resultType`.
fn is_stateless_era(message: &Value) -> bool {
    message
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(PROTOCOL_VERSION_META))
        .is_some()
}

/// A tool result with `isError: true` answering `message` (which must have
/// an `id`), shaped for the protocol era the request was sent in.
fn tool_error(message: &Value, text: &str) -> Vec<u8> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let mut result = json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
    });
    if is_stateless_era(message) {
        result["resultType"] = json!("complete");
    }
    let mut line = json!({"jsonrpc": "2.0", "id": id, "result": result})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

struct Proxy {
    keeper: Gatekeeper,
    config: Config,
    chain: ChainId,
    server: String,
    session: String,
    requester: Actor,
    in_flight: InFlight,
}

/// Runs the proxy on this process's stdin and stdout until the client
/// closes stdin and the server exits, or the server exits. Returns the
/// server's exit code.
///
/// # Errors
/// [`AgentError`] when the config, store or policy is unusable or the
/// server cannot be spawned (nothing was relayed then).
pub async fn run(
    config: Config,
    command: &[String],
    opener: &dyn StoreOpener,
) -> Result<i32, AgentError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| AgentError::BadPayload("no server command after --".into()))?;
    let server = config.file.server.clone().unwrap_or_else(|| {
        std::path::Path::new(program)
            .file_stem()
            .map_or_else(|| "server".to_owned(), |s| s.to_string_lossy().into_owned())
    });
    let chain = ChainId::new(config.file.chain.as_str()).map_err(|e| AgentError::BadConfig {
        path: config.path.clone(),
        reason: e.to_string(),
    })?;
    let store = opener.open(&config.store_url, &chain).await?;
    let keeper = gatekeeper::open(store, &config.policy_path).await?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(AgentError::io(format!("spawn {program}")))?;
    let server_in = child.stdin.take().expect("piped");
    let server_out = child.stdout.take().expect("piped");
    let out: Out = Arc::new(Mutex::new(Box::new(tokio::io::stdout())));
    let proxy = Arc::new(Proxy {
        session: config
            .file
            .session
            .clone()
            .unwrap_or_else(|| format!("mcp:{server}")),
        requester: Actor::agent(
            config
                .file
                .requester
                .clone()
                .unwrap_or_else(|| "mcp-proxy".to_owned()),
        ),
        keeper,
        config,
        chain,
        server,
        in_flight: Arc::default(),
    });
    tracing::info!(server = %proxy.server, session = %proxy.session, "mcp proxy started");

    let client = tokio::spawn(client_to_server(proxy.clone(), server_in, out.clone()));
    server_to_client(&proxy, server_out, &out).await;
    client.abort();
    let status = child
        .wait()
        .await
        .map_err(AgentError::io("wait for the server"))?;
    Ok(status.code().unwrap_or(1))
}

async fn client_to_server(proxy: Arc<Proxy>, mut server_in: tokio::process::ChildStdin, out: Out) {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let forward = match serde_json::from_slice::<Value>(&line) {
            Ok(message) if message.get("method").and_then(Value::as_str) == Some("tools/call") => {
                match message.get("id") {
                    Some(id) => proxy.gate_call(id, &message, &out).await,
                    None => true,
                }
            }
            _ => true,
        };
        if forward
            && (server_in.write_all(&line).await.is_err() || server_in.flush().await.is_err())
        {
            tracing::warn!("cannot write to the server");
            break;
        }
    }
    // Dropping stdin tells the server the client is gone.
}

async fn server_to_client(proxy: &Proxy, server_out: tokio::process::ChildStdout, out: &Out) {
    let mut reader = BufReader::new(server_out);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Ok(message) = serde_json::from_slice::<Value>(&line)
            && message.get("method").is_none()
            && let Some(id) = message.get("id")
        {
            let permit = proxy.in_flight.lock().unwrap().remove(&id.to_string());
            if let Some(permit) = permit {
                let outcome = match (message.get("result"), message.get("error")) {
                    (Some(result), _) => gatekeeper::outcome_of(
                        result,
                        result.get("isError").and_then(Value::as_bool) == Some(true),
                    ),
                    (None, error) => gatekeeper::failed(format!(
                        "json-rpc error: {}",
                        error.cloned().unwrap_or(Value::Null)
                    )),
                };
                if let Err(e) = proxy.keeper.finish(permit, outcome).await {
                    tracing::error!(error = %e, "cannot record the outcome");
                }
            }
        }
        send(out, &line).await;
    }
    let orphans: Vec<(String, Permit)> = proxy.in_flight.lock().unwrap().drain().collect();
    for (id, permit) in orphans {
        let request_id = permit.request_id().to_owned();
        if let Err(e) = proxy
            .keeper
            .finish(
                permit,
                gatekeeper::failed("the mcp server exited before answering"),
            )
            .await
        {
            tracing::error!(error = %e, "cannot record the outcome");
        }
        let id: Value = serde_json::from_str(&id).unwrap_or(Value::Null);
        let mut line = json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": -32603,
            "message": format!("the mcp server exited before answering (request {request_id}, recorded as failed)"),
        }})
        .to_string()
        .into_bytes();
        line.push(b'\n');
        send(out, &line).await;
    }
    tracing::info!("mcp server exited");
}

impl Proxy {
    /// Decides a `tools/call`; true when it is to be forwarded.
    async fn gate_call(&self, id: &Value, message: &Value, out: &Out) -> bool {
        match self.decide(id, message).await {
            Ok(None) => true,
            Ok(Some(text)) => {
                send(out, &tool_error(message, &text)).await;
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "tools/call refused: proxy error");
                send(
                    out,
                    &tool_error(
                        message,
                        &format!("syndicate proxy error, call not forwarded: {e}"),
                    ),
                )
                .await;
                false
            }
        }
    }

    async fn decide(&self, id: &Value, message: &Value) -> Result<Option<String>, AgentError> {
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| AgentError::BadPayload("tools/call without params.name".into()))?;
        let args = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let action = Action::new(name, args)?.with_target(format!("mcp:{}", self.server))?;
        let facts = [
            ("jsonrpc_id", id.clone()),
            ("server", json!(self.server)),
            ("harness", json!("mcp-proxy")),
        ]
        .into_iter()
        .collect();
        // The JSON-RPC id names the call: its text for a string id, the
        // number's text for a number.
        let call_id = match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let verdict = self
            .keeper
            .decide(
                &self.session,
                &self.requester,
                &action,
                &gatekeeper::context(&facts),
                Some(&call_id),
            )
            .await?;
        Ok(match verdict {
            Verdict::Allowed { request_id, permit } => {
                tracing::info!(%request_id, tool = name, "tools/call forwarded");
                self.in_flight
                    .lock()
                    .unwrap()
                    .insert(id.to_string(), permit);
                None
            }
            Verdict::Pending {
                request_id, digest, ..
            } => Some(format!(
                "syndicate: this call needs a person's approval and was not run. Request {request_id}, action digest {digest}. \
                 Ask the user to approve it with: {} Then retry exactly the same call.",
                approve_command(&self.config, &self.chain, &request_id, &digest.to_string())
            )),
            Verdict::Refused { request_id, reason } => Some(format!(
                "syndicate: request {request_id} refused, call not run: {reason}"
            )),
        })
    }
}
