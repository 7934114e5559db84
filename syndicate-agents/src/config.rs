//! The configuration file shared by `hook claude`, `hook codex` and
//! `mcp-proxy`, and where it is found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::AgentError;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SYNDICATE_CONFIG";

/// The configuration file, as written.
///
/// ```toml
/// store = "sqlite:.syndicate/audit.db"   # any store URL
/// chain = "claude"
/// policy = "policy.toml"                 # relative to the config file
/// server = "github"                      # mcp-proxy: the target of its tools
///
/// [targets]                              # optional: tool glob -> target source
/// "Bash" = "cwd"
/// "Write" = "arg:file_path"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Store URL. A relative `sqlite:` path is resolved against the project
    /// folder (the folder holding `.syndicate/`) or else the config file's folder.
    pub store: String,
    /// Chain id.
    pub chain: String,
    /// Policy file (TOML or JSON rule policy), relative to the config file.
    pub policy: String,
    /// MCP server name: the proxy's target is `mcp:<server>`.
    #[serde(default)]
    pub server: Option<String>,
    /// Requester recorded on proposals; default `claude-code`, `codex` or
    /// `mcp-proxy` by harness.
    #[serde(default)]
    pub requester: Option<String>,
    /// Session of the proxy's requests; default `mcp:<server>`.
    #[serde(default)]
    pub session: Option<String>,
    /// Seconds a hook may take before it refuses the call (default 20).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Target source per tool-name glob; see [`crate::mapping`].
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
}

/// A loaded configuration with its paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's content.
    pub file: ConfigFile,
    /// The store URL, relative SQLite paths made absolute.
    pub store_url: String,
    /// The policy file, absolute.
    pub policy_path: PathBuf,
}

impl Config {
    /// Finds the config: `explicit`, else `$SYNDICATE_CONFIG`, else
    /// `<project>/.syndicate/config.toml`.
    ///
    /// # Errors
    /// [`AgentError::NoConfig`] when none exists, [`AgentError::BadConfig`]
    /// when it cannot be read.
    pub fn find(explicit: Option<&Path>, project: Option<&Path>) -> Result<Config, AgentError> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Config::load(Path::new(&path));
        }
        let project = match project {
            Some(p) => p.to_path_buf(),
            None => std::env::current_dir().map_err(AgentError::io("current directory"))?,
        };
        let path = project.join(".syndicate").join("config.toml");
        if !path.is_file() {
            return Err(AgentError::NoConfig(path));
        }
        Config::load(&path)
    }

    /// Reads and resolves one config file.
    ///
    /// # Errors
    /// [`AgentError::BadConfig`] when it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Config, AgentError> {
        let bad = |reason: String| AgentError::BadConfig {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let path = std::path::absolute(path).map_err(|e| bad(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let base = if dir.file_name().is_some_and(|n| n == ".syndicate") {
            dir.parent().unwrap_or(&dir).to_path_buf()
        } else {
            dir.clone()
        };
        let store_url = resolve_store(&file.store, &base);
        let policy_path = dir.join(&file.policy);
        Ok(Config {
            path,
            file,
            store_url,
            policy_path,
        })
    }

    /// The hook's deadline in seconds.
    pub fn timeout_seconds(&self) -> u64 {
        self.file.timeout_seconds.unwrap_or(20)
    }
}

fn resolve_store(url: &str, base: &Path) -> String {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match rest {
        Some(rest) if !rest.is_empty() && !Path::new(rest).is_absolute() => {
            format!("sqlite://{}", base.join(rest).display())
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sqlite_paths_resolve_against_the_project() {
        assert_eq!(
            resolve_store("sqlite:.syndicate/audit.db", Path::new("/p")),
            "sqlite:///p/.syndicate/audit.db"
        );
        assert_eq!(
            resolve_store("sqlite:///abs.db", Path::new("/p")),
            "sqlite:///abs.db"
        );
        assert_eq!(
            resolve_store("postgres://u@h/db", Path::new("/p")),
            "postgres://u@h/db"
        );
    }
}
