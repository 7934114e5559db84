//! One fixture for the tests that run the real `syndicate` binary as a
//! harness would: a project folder with `.syndicate/config.toml` and a
//! policy, the hook and CLI invocations, and readers for what the store
//! recorded.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Low-risk tools run without a person; everything else needs one.
pub const POLICY: &str = r#"id = "agents-test"
version = "1"

[[rules]]
id = "reads"
tool = "Read"
risk = "low"
decision = "auto_approve"

[[rules]]
id = "echo"
tool = "echo"
risk = "low"
decision = "auto_approve"

[[rules]]
id = "crash"
tool = "crash"
risk = "low"
decision = "auto_approve"

[[rules]]
id = "everything-else"
tool = "*"
risk = "high"
decision = "human"
"#;

/// A project folder with `.syndicate/config.toml` on a SQLite store.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub chain: &'static str,
}

impl Project {
    pub fn new(chain: &'static str) -> Self {
        Project::with_config(chain, "")
    }

    /// With extra lines in the config file (e.g. `server = "notes"`).
    pub fn with_config(chain: &'static str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(".syndicate");
        std::fs::create_dir(&config).unwrap();
        std::fs::write(config.join("policy.toml"), POLICY).unwrap();
        std::fs::write(
            config.join("config.toml"),
            format!(
                "store = \"sqlite:.syndicate/audit.db\"\nchain = \"{chain}\"\npolicy = \"policy.toml\"\n{extra}"
            ),
        )
        .unwrap();
        Project { dir, chain }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join(".syndicate").join("config.toml")
    }

    pub fn store_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.path().join(".syndicate/audit.db").display()
        )
    }

    /// `syndicate hook <harness>` with `stdin`, run from the project folder.
    pub fn hook(&self, harness: &str, stdin: &str) -> Output {
        run_in(self.path(), &["hook", harness], stdin.as_bytes())
    }

    /// Any `syndicate` subcommand, run from the project folder.
    pub fn syndicate(&self, args: &[&str]) -> Output {
        run_in(self.path(), args, b"")
    }

    /// Every event of the chain, as JSON, oldest first.
    pub fn events(&self) -> Vec<Value> {
        let out = self.syndicate(&[
            "audit",
            "query",
            "--store",
            &self.store_url(),
            "--chain",
            self.chain,
            "--limit",
            "100000",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The events of one kind about one request.
    pub fn events_of(&self, request_id: &str, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["kind"] == kind && e["body"]["request_id"] == request_id)
            .collect()
    }

    /// How many `action.proposed` events carry this digest.
    pub fn proposals_of(&self, digest: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["kind"] == "action.proposed" && e["body"]["action_digest"] == digest)
            .count()
    }

    /// `audit verify` (integrity, then the story) and `audit report` both
    /// succeed on the store.
    pub fn assert_chain_and_story_hold(&self) {
        let url = self.store_url();
        let verify = self.syndicate(&["audit", "verify", "--store", &url, "--chain", self.chain]);
        let text = String::from_utf8_lossy(&verify.stdout);
        assert_eq!(verify.status.code(), Some(0), "{text}{}", stderr(&verify));
        assert!(text.contains("intact"), "{text}");
        assert!(text.contains("story holds"), "{text}");
        let report = self.syndicate(&["audit", "report", "--store", &url, "--chain", self.chain]);
        let text = String::from_utf8_lossy(&report.stdout);
        assert_eq!(report.status.code(), Some(0), "{text}{}", stderr(&report));
        assert!(text.contains("story: consistent"), "{text}");
    }

    /// Runs the approve command a refusal named, as `approver`, in another
    /// process, and checks it succeeded.
    pub fn approve(&self, command: &ApproveCommand, approver: &str) {
        let args: Vec<String> = command
            .args
            .iter()
            .map(|a| {
                if a == "YOUR_NAME" {
                    approver.to_owned()
                } else {
                    a.clone()
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.syndicate(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

pub fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syndicate"))
        .args(args)
        .current_dir(dir)
        .env_remove("SYNDICATE_CONFIG")
        .env_remove("CLAUDE_PROJECT_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syndicate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The digest `syndicate action digest` computes for an action: an
/// independent check of what the hook or proxy reports.
pub fn digest_of(action: &Value) -> String {
    let out = run_in(
        Path::new("."),
        &["action", "digest"],
        action.to_string().as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The digest the gate records for a result: SHA-256 over the canonical
/// JSON of the value, tagged as a result.
pub fn result_digest_of(value: &Value) -> String {
    let bytes = syndicate_core::jcs::to_canonical_vec(value).unwrap();
    syndicate_core::gate::result_digest(&bytes).to_string()
}

/// What a "needs a person" answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveCommand {
    pub request_id: String,
    pub digest: String,
    /// `approve REQUEST --digest HEX --as YOUR_NAME --store URL --chain C`.
    pub args: Vec<String>,
}

/// Reads the request id, digest and the exact `syndicate approve` command
/// out of a refusal text, checking they agree with each other.
pub fn approve_command_in(text: &str) -> ApproveCommand {
    let start = text
        .find("syndicate approve ")
        .unwrap_or_else(|| panic!("no approve command in {text:?}"));
    let rest = &text[start + "syndicate ".len()..];
    let end = rest.find(" Then ").unwrap_or(rest.len());
    let args: Vec<String> = rest[..end].split_whitespace().map(str::to_owned).collect();
    assert_eq!(args[0], "approve", "{text}");
    let request_id = args[1].clone();
    assert!(
        request_id.starts_with("req-") && request_id.len() == 36,
        "request id {request_id:?}"
    );
    let flag = |name: &str| {
        let at = args
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("{name} in {args:?}"));
        args[at + 1].clone()
    };
    let digest = flag("--digest");
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(flag("--store").starts_with("sqlite://"), "{args:?}");
    assert_eq!(flag("--as"), "YOUR_NAME");
    assert!(text.contains(&format!("Request {request_id}")), "{text}");
    assert!(text.contains(&format!("action digest {digest}")), "{text}");
    ApproveCommand {
        request_id,
        digest,
        args,
    }
}
