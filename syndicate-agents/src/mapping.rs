//! How a harness's tool call becomes a syndicate [`Action`].
//!
//! The action is `{tool: <tool name>, args: <tool input>, target}`. The
//! target comes from a *source*, chosen by the first `[targets]` glob in the
//! config that matches the tool name, else by these defaults:
//!
//! | tool                                   | default source        | target              |
//! |----------------------------------------|-----------------------|---------------------|
//! | `Write`, `Edit`, `MultiEdit`, `Read`   | `arg:file_path`       | the absolute path   |
//! | `NotebookEdit`                         | `arg:notebook_path`   | the absolute path   |
//! | `Bash`, `apply_patch`                  | `cwd`                 | the working folder  |
//! | `mcp__<server>__<tool>`                | `mcp`                 | `mcp:<server>`      |
//! | anything else                          | `none`                | no target           |
//!
//! Sources: `cwd`, `arg:<member of tool_input>`, `mcp`, `none`,
//! `literal:<text>`. A source that yields nothing (missing argument) gives
//! no target.
//!
//! Codex's `apply_patch` is digested over the raw patch text: its `args` is
//! the string `tool_input.command`, not the input object.

use std::collections::BTreeMap;

use serde_json::Value;
use syndicate_core::{Action, gate::glob_match};

use crate::error::AgentError;

/// One tool call as a harness reports it.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    /// The harness's tool name (`Bash`, `mcp__github__create_issue`, ...).
    pub tool_name: &'a str,
    /// The tool's input.
    pub tool_input: &'a Value,
    /// The working directory of the call.
    pub cwd: Option<&'a str>,
}

/// The MCP server named by an `mcp__<server>__<tool>` tool name.
pub fn mcp_server(tool_name: &str) -> Option<&str> {
    let rest = tool_name.strip_prefix("mcp__")?;
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some(server)
}

fn default_source(tool_name: &str) -> &'static str {
    match tool_name {
        "Write" | "Edit" | "MultiEdit" | "Read" => "arg:file_path",
        "NotebookEdit" => "arg:notebook_path",
        "Bash" | "apply_patch" => "cwd",
        name if mcp_server(name).is_some() => "mcp",
        _ => "none",
    }
}

/// The target source for a tool: the first matching configured glob, else
/// the default.
pub fn target_source<'a>(targets: &'a BTreeMap<String, String>, tool_name: &str) -> &'a str {
    targets
        .iter()
        .find(|(glob, _)| glob_match(glob, tool_name))
        .map_or(default_source(tool_name), |(_, source)| source.as_str())
}

fn target_of(source: &str, call: &ToolCall<'_>) -> Result<Option<String>, AgentError> {
    Ok(match source {
        "none" => None,
        "cwd" => call.cwd.map(str::to_owned),
        "mcp" => mcp_server(call.tool_name).map(|s| format!("mcp:{s}")),
        s => {
            if let Some(member) = s.strip_prefix("arg:") {
                call.tool_input
                    .get(member)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            } else if let Some(text) = s.strip_prefix("literal:") {
                Some(text.to_owned())
            } else {
                return Err(AgentError::BadPayload(format!(
                    "unknown target source {s:?}; use cwd, arg:NAME, mcp, none or literal:TEXT"
                )));
            }
        }
    })
}

/// The action for a tool call.
///
/// # Errors
/// [`AgentError::BadAction`] when the input has no canonical form,
/// [`AgentError::BadPayload`] for an `apply_patch` without its patch text or
/// an unknown target source.
pub fn action_for(
    call: &ToolCall<'_>,
    targets: &BTreeMap<String, String>,
) -> Result<Action, AgentError> {
    let args = if call.tool_name == "apply_patch" {
        match call.tool_input.get("command") {
            Some(Value::String(patch)) => Value::String(patch.clone()),
            Some(Value::Array(parts)) => match parts.last() {
                Some(Value::String(patch)) => Value::String(patch.clone()),
                _ => {
                    return Err(AgentError::BadPayload(
                        "apply_patch input has no patch text".into(),
                    ));
                }
            },
            _ => {
                return Err(AgentError::BadPayload(
                    "apply_patch input has no \"command\" with the patch text".into(),
                ));
            }
        }
    } else {
        call.tool_input.clone()
    };
    let action = Action::new(call.tool_name, args)?;
    match target_of(target_source(targets, call.tool_name), call)? {
        Some(target) => Ok(action.with_target(target)?),
        None => Ok(action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call<'a>(name: &'a str, input: &'a Value) -> ToolCall<'a> {
        ToolCall {
            tool_name: name,
            tool_input: input,
            cwd: Some("/home/user/my-project"),
        }
    }

    #[test]
    fn default_targets_follow_the_tool() {
        let none = BTreeMap::new();
        let write = json!({"file_path": "/p/f.txt", "content": "x"});
        assert_eq!(
            action_for(&call("Write", &write), &none).unwrap().target(),
            Some("/p/f.txt")
        );
        let bash = json!({"command": "npm test"});
        assert_eq!(
            action_for(&call("Bash", &bash), &none).unwrap().target(),
            Some("/home/user/my-project")
        );
        let mcp = json!({"q": 1});
        assert_eq!(
            action_for(&call("mcp__memory__create_entities", &mcp), &none)
                .unwrap()
                .target(),
            Some("mcp:memory")
        );
        assert_eq!(
            action_for(&call("WebFetch", &mcp), &none).unwrap().target(),
            None
        );
    }

    #[test]
    fn configured_targets_win_over_defaults() {
        let targets = BTreeMap::from([("Bash".to_owned(), "literal:shell".to_owned())]);
        let bash = json!({"command": "ls"});
        assert_eq!(
            action_for(&call("Bash", &bash), &targets).unwrap().target(),
            Some("shell")
        );
    }

    #[test]
    fn apply_patch_is_digested_over_the_raw_patch_text() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n";
        let a = action_for(
            &call("apply_patch", &json!({"command": patch})),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(a.args(), &Value::String(patch.into()));
    }
}
