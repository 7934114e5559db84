//! `syndicate mcp-proxy` between a real MCP client and a real MCP server,
//! both from the official Python SDK (`tests/mcp/client.py`,
//! `tests/mcp/server.py`), run with `$SYNDICATE_TEST_PYTHON` (set by
//! `scripts/test.sh`). Without it the tests print why they skip, and fail
//! under `CI=true`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};
use support::{Project, approve_command_in, digest_of};

fn python() -> Option<String> {
    match std::env::var("SYNDICATE_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SYNDICATE_TEST_PYTHON is not set under CI=true: run scripts/test.sh"
            );
            eprintln!(
                "skipped: SYNDICATE_TEST_PYTHON is not set (scripts/test.sh sets it to a python with the mcp SDK)"
            );
            None
        }
    }
}

fn script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The Python client, connected to the proxy, connected to the server.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Client {
    /// `era`: `handshake` (2025-11-25, `initialize`) or `auto` (the SDK
    /// probes `server/discover` and speaks 2026-07-28 when it can).
    fn start(python: &str, project: &Project, era: &str) -> Client {
        let log = project.path().join("client.log");
        let mut child = Command::new(python)
            .arg(script("client.py"))
            .arg(era)
            .arg(env!("CARGO_BIN_EXE_syndicate"))
            .args(["mcp-proxy", "--config"])
            .arg(project.config_path())
            .arg("--")
            .arg(python)
            .arg(script("server.py"))
            .current_dir(project.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run the python MCP client");
        Client {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            log,
        }
    }

    /// Sends one request and waits for its answer line.
    fn ask(&mut self, request: Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the client ended without answering {request}; its stderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        serde_json::from_str(&line).unwrap()
    }

    fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.ask(json!({"op": "call", "name": name, "arguments": arguments}))
    }

    /// Closes stdin and waits for the client (and so the proxy) to end.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "client: {status}; stderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

fn project() -> Project {
    Project::with_config("mcp", "server = \"notes\"\n")
}

#[test]
fn gated_tool_call_is_held_until_approved_then_forwarded_once() {
    gated_loop("handshake");
}

/// The 2026-07-28 revision: every result must carry `resultType`, the
/// proxy's own answers included.
#[test]
fn gated_tool_call_loop_works_for_a_stateless_era_client() {
    gated_loop("auto");
}

fn gated_loop(era: &str) {
    let Some(python) = python() else { return };
    let project = project();
    let mut client = Client::start(&python, &project, era);

    // tools/list passes through; gated tools are still listed.
    assert_eq!(
        client.ask(json!({"op": "list"})),
        json!({"tools": ["crash", "echo", "write_note"]})
    );

    // Auto-approved: forwarded, the server's real answer, recorded.
    let echo = client.call("echo", json!({"text": "hi"}));
    assert_eq!(echo, json!({"is_error": false, "text": "ECHO hi"}));
    let echo_digest =
        digest_of(&json!({"tool": "echo", "args": {"text": "hi"}, "target": "mcp:notes"}));
    let echo_request = project
        .events()
        .into_iter()
        .find(|e| e["kind"] == "action.proposed" && e["body"]["action_digest"] == echo_digest)
        .expect("the echo call was proposed")["body"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = project.events_of(&echo_request, "execution.completed");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["body"]["outcome"], "succeeded");
    assert_eq!(done[0]["body"]["result_digest"].as_str().unwrap().len(), 64);

    // Gated: not forwarded; an isError result naming request, digest and
    // the approve command.
    let args = json!({"path": "notes/a.md", "body": "hello"});
    let held = client.call("write_note", args.clone());
    assert_eq!(held["is_error"], true, "{held}");
    let text = held["text"].as_str().unwrap();
    assert!(!text.contains("wrote"), "the server never saw it: {text}");
    let pending = approve_command_in(text);
    assert_eq!(
        pending.digest,
        digest_of(&json!({"tool": "write_note", "args": args, "target": "mcp:notes"}))
    );
    // A retry before approval: the same request, not a second proposal.
    let again = client.call("write_note", args.clone());
    assert_eq!(approve_command_in(again["text"].as_str().unwrap()), pending);
    assert_eq!(project.proposals_of(&pending.digest), 1);

    // Approved from another process while the session stays open.
    project.approve(&pending, "alice");
    let ran = client.call("write_note", args.clone());
    assert_eq!(
        ran,
        json!({"is_error": false, "text": "wrote 5 bytes to notes/a.md"})
    );
    let done = project.events_of(&pending.request_id, "execution.completed");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["body"]["outcome"], "succeeded");

    // Single use: the same call again is held under a new request.
    let next = client.call("write_note", args);
    assert_eq!(next["is_error"], true);
    assert_ne!(
        approve_command_in(next["text"].as_str().unwrap()).request_id,
        pending.request_id
    );

    client.finish();
    project.assert_chain_and_story_hold();
}

#[test]
fn server_crashing_mid_call_gives_an_error_and_a_failed_outcome() {
    let Some(python) = python() else { return };
    let project = project();
    let mut client = Client::start(&python, &project, "handshake");
    let answer = client.call("crash", json!({"reason": "test"}));
    let error = answer["error"].as_str().expect("the call raised");
    assert!(error.contains("exited before answering"), "{error}");
    let request_id = error
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')' || c == '(')
        .find(|w| w.starts_with("req-"))
        .expect("names the request")
        .to_owned();
    let done = project.events_of(&request_id, "execution.completed");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["body"]["outcome"], "failed");
    drop(client.stdin.take());
    client.child.wait().unwrap();
    project.assert_chain_and_story_hold();
}
