//! `syndicate hook install claude|codex`: merges the hook entries into the
//! harness's settings file without touching anything else in it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::AgentError;
use crate::hook::Harness;

/// Where the settings file is, for a project folder or the user.
pub fn settings_path(harness: Harness, project: Option<&Path>, home: &Path) -> PathBuf {
    let (dir, file) = match harness {
        Harness::Claude => (".claude", "settings.json"),
        Harness::Codex => (".codex", "hooks.json"),
    };
    project.unwrap_or(home).join(dir).join(file)
}

/// The events hooked and the matcher used for each harness.
fn entries(harness: Harness) -> (&'static [&'static str], &'static str) {
    match harness {
        Harness::Claude => (&["PreToolUse", "PostToolUse", "PostToolUseFailure"], "*"),
        Harness::Codex => (&["PreToolUse", "PostToolUse"], "Bash|apply_patch|mcp__.*"),
    }
}

fn is_ours(handler: &Value, sub: &str) -> bool {
    handler
        .get("command")
        .and_then(Value::as_str)
        .is_some_and(|c| c.trim_end().ends_with(&format!("hook {sub}")))
}

/// The settings text with our hooks merged in, or `None` when they are all
/// there already. `command` is how to run `syndicate`.
///
/// # Errors
/// [`AgentError::BadConfig`] when the existing file is not a JSON object or
/// its `hooks` are not shaped as the harness expects (it is then left alone).
pub fn merge(
    harness: Harness,
    existing: Option<&str>,
    command: &str,
    path: &Path,
) -> Result<Option<String>, AgentError> {
    let bad = |reason: &str| AgentError::BadConfig {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut root: Value = match existing {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str(text).map_err(|e| bad(&format!("not json: {e}")))?
        }
        _ => Value::Object(Map::new()),
    };
    let sub = match harness {
        Harness::Claude => "claude",
        Harness::Codex => "codex",
    };
    let Value::Object(map) = &mut root else {
        return Err(bad("not a json object"));
    };
    let hooks = map
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(hooks) = hooks else {
        return Err(bad("\"hooks\" is not an object"));
    };
    let (events, matcher) = entries(harness);
    let mut changed = false;
    for event in events {
        let list = hooks
            .entry(*event)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = list else {
            return Err(bad(&format!("\"hooks.{event}\" is not an array")));
        };
        let present = list.iter().any(|group| {
            group
                .get("hooks")
                .and_then(Value::as_array)
                .is_some_and(|hs| hs.iter().any(|h| is_ours(h, sub)))
        });
        if !present {
            list.push(json!({
                "matcher": matcher,
                "hooks": [{"type": "command", "command": format!("{command} hook {sub}"), "timeout": 60}],
            }));
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| bad(&e.to_string()))?;
    text.push('\n');
    Ok(Some(text))
}

/// Merges and writes (unless `dry_run`); returns a message for the user.
///
/// # Errors
/// As [`merge`], and [`AgentError::Io`] when the file cannot be written.
pub fn install(
    harness: Harness,
    path: &Path,
    command: &str,
    dry_run: bool,
) -> Result<String, AgentError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(AgentError::io(format!("read {}", path.display()))(e)),
    };
    let Some(text) = merge(harness, existing.as_deref(), command, path)? else {
        return Ok(format!(
            "{}: syndicate hooks already installed\n",
            path.display()
        ));
    };
    if dry_run {
        return Ok(format!("would write {}:\n{text}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(AgentError::io(format!("create {}", dir.display())))?;
    }
    let tmp = path.with_extension("json.syndicate-tmp");
    std::fs::write(&tmp, &text).map_err(AgentError::io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(AgentError::io(format!("replace {}", path.display())))?;
    let mut message = format!("installed syndicate hooks in {}\n", path.display());
    if harness == Harness::Codex {
        message.push_str(
            "codex runs a new hook only after you review and trust it (codex asks at start-up)\n",
        );
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_hooks_and_is_idempotent() {
        let existing = r#"{"model":"x","hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"block-rm.sh"}]}]}}"#;
        let path = Path::new("settings.json");
        let once = merge(Harness::Claude, Some(existing), "syndicate", path)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(v["model"], "x");
        assert_eq!(v["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
            "block-rm.sh"
        );
        assert_eq!(
            v["hooks"]["PostToolUseFailure"].as_array().unwrap().len(),
            1
        );
        assert!(
            merge(Harness::Claude, Some(&once), "syndicate", path)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_settings_file_of_the_wrong_shape_is_refused() {
        let path = Path::new("settings.json");
        assert!(merge(Harness::Claude, Some("[1]"), "s", path).is_err());
        assert!(merge(Harness::Claude, Some(r#"{"hooks":[]}"#), "s", path).is_err());
        assert!(merge(Harness::Codex, Some("{"), "s", path).is_err());
    }
}
