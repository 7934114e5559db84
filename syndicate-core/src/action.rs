//! The action an agent proposes, and its digest.

use serde_json::{Map, Value};

use crate::digest::{Digest, tags};
use crate::jcs::{self, CanonError, Limits};

/// Largest canonical action accepted, in bytes (1 MiB).
pub const MAX_ACTION_BYTES: usize = 1 << 20;

/// An action an agent proposes to take: a tool, its exact arguments and,
/// optionally, the resource it touches.
///
/// An `Action` always has a canonical form: it is checked when built, and its
/// canonical bytes and digest are computed once.
///
/// ```
/// use serde_json::json;
/// use syndicate_core::Action;
///
/// let action = Action::new("shell.exec", json!({"argv": ["git", "push"]}))?
///     .with_target("repo:payments-svc")?;
/// assert_eq!(
///     action.canonical_bytes(),
///     br#"{"args":{"argv":["git","push"]},"target":"repo:payments-svc","tool":"shell.exec"}"#
/// );
/// # Ok::<(), syndicate_core::ActionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    tool: String,
    target: Option<String>,
    args: Value,
    canonical: Vec<u8>,
    digest: Digest,
}

/// Why a value is not an action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The JSON itself has no canonical form.
    #[error("action is not canonical json: {0}")]
    Canon(#[from] CanonError),
    /// The action is not a JSON object.
    #[error("an action is a json object with \"tool\", \"args\" and optional \"target\"")]
    NotAnObject,
    /// `tool` is missing, not a string, or empty.
    #[error("action member \"tool\" must be a non-empty string")]
    BadTool,
    /// `target` is present but not a string.
    #[error("action member \"target\" must be a string when present")]
    BadTarget,
    /// `args` is missing.
    #[error("action member \"args\" is required (use {{}} for an action without parameters)")]
    MissingArgs,
    /// A member other than `tool`, `args` and `target`.
    #[error("unknown action member {0:?}; put parameters inside \"args\"")]
    UnknownMember(String),
    /// The canonical action is larger than [`MAX_ACTION_BYTES`].
    #[error("action is {size} bytes in canonical form, above the limit of {limit} bytes")]
    TooLarge {
        /// Canonical size found.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Action {
    /// Builds an action from a tool name and its arguments.
    ///
    /// # Errors
    /// [`ActionError::BadTool`] for an empty tool, [`ActionError::Canon`] when
    /// `args` has no canonical form, [`ActionError::TooLarge`] above
    /// [`MAX_ACTION_BYTES`].
    pub fn new(tool: impl Into<String>, args: Value) -> Result<Self, ActionError> {
        Self::build(tool.into(), None, args)
    }

    /// Sets the resource or service the action touches.
    ///
    /// # Errors
    /// As [`Action::new`].
    pub fn with_target(self, target: impl Into<String>) -> Result<Self, ActionError> {
        Self::build(self.tool, Some(target.into()), self.args)
    }

    /// Reads an action from untrusted JSON text with the strict parser
    /// (duplicate keys, inexact numbers, bad UTF-8 and the like are refused).
    ///
    /// # Errors
    /// [`ActionError::Canon`] for text that is not strict JSON, the other
    /// variants for JSON that is not an action.
    pub fn from_json(text: &[u8]) -> Result<Self, ActionError> {
        let limits = Limits {
            max_bytes: MAX_ACTION_BYTES,
            ..Limits::default()
        };
        Self::from_value(jcs::parse_with(text, &limits)?)
    }

    /// Reads an action from a JSON value.
    ///
    /// # Errors
    /// As [`Action::from_json`].
    pub fn from_value(value: Value) -> Result<Self, ActionError> {
        let Value::Object(mut map) = value else {
            return Err(ActionError::NotAnObject);
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "tool" | "args" | "target"))
        {
            return Err(ActionError::UnknownMember(unknown.clone()));
        }
        let tool = match map.remove("tool") {
            Some(Value::String(tool)) => tool,
            _ => return Err(ActionError::BadTool),
        };
        let target = match map.remove("target") {
            None => None,
            Some(Value::String(target)) => Some(target),
            Some(_) => return Err(ActionError::BadTarget),
        };
        let args = map.remove("args").ok_or(ActionError::MissingArgs)?;
        Self::build(tool, target, args)
    }

    fn build(tool: String, target: Option<String>, args: Value) -> Result<Self, ActionError> {
        if tool.is_empty() {
            return Err(ActionError::BadTool);
        }
        let mut action = Action {
            tool,
            target,
            args,
            canonical: Vec::new(),
            digest: Digest::ZERO,
        };
        let canonical = jcs::to_canonical_vec(&action.to_value())?;
        if canonical.len() > MAX_ACTION_BYTES {
            return Err(ActionError::TooLarge {
                size: canonical.len(),
                limit: MAX_ACTION_BYTES,
            });
        }
        action.digest = Digest::of_canonical(tags::ACTION, &canonical);
        action.canonical = canonical;
        Ok(action)
    }

    /// The tool, such as `shell.exec`.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The resource or service the action touches, if given.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The exact parameters.
    pub fn args(&self) -> &Value {
        &self.args
    }

    /// The action as a JSON object.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("tool".into(), Value::String(self.tool.clone()));
        if let Some(target) = &self.target {
            map.insert("target".into(), Value::String(target.clone()));
        }
        map.insert("args".into(), self.args.clone());
        Value::Object(map)
    }

    /// The RFC 8785 canonical bytes of the action: what is hashed, shown to
    /// approvers, and run.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// `action_digest = digest("syndicate:action:v1", action)`.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// The digest of an action given as JSON text, read with the strict parser.
///
/// # Errors
/// As [`Action::from_json`].
pub fn action_digest(text: &[u8]) -> Result<Digest, ActionError> {
    Ok(Action::from_json(text)?.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spellings_of_one_action_share_a_digest() {
        let a = Action::from_json(br#"{"tool":"t","args":{"b":1.0,"a":[1e0]}}"#).unwrap();
        let b =
            Action::from_json(br#" { "args" : { "a" : [1], "b" : 1 } , "tool" : "t" } "#).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(
            a.canonical_bytes(),
            br#"{"args":{"a":[1],"b":1},"tool":"t"}"#
        );
    }

    #[test]
    fn refuses_what_is_not_an_action() {
        assert_eq!(Action::new("", json!({})), Err(ActionError::BadTool));
        assert_eq!(
            Action::from_value(json!({"tool": "t"})),
            Err(ActionError::MissingArgs)
        );
        assert_eq!(
            Action::from_value(json!({"tool": "t", "args": 1, "x": 2})),
            Err(ActionError::UnknownMember("x".into()))
        );
        assert_eq!(
            Action::from_value(json!({"tool": "t", "args": 1, "target": 3})),
            Err(ActionError::BadTarget)
        );
        assert_eq!(
            Action::from_value(json!([1])),
            Err(ActionError::NotAnObject)
        );
        let big = "x".repeat(MAX_ACTION_BYTES);
        assert!(matches!(
            Action::new("t", json!(big)),
            Err(ActionError::TooLarge { .. })
        ));
    }

    #[test]
    fn digest_is_tagged_sha256_of_canonical_bytes() {
        let a = Action::new("t", json!({"k": "v"})).unwrap();
        assert_eq!(
            a.digest(),
            Digest::of_canonical(tags::ACTION, a.canonical_bytes())
        );
    }
}
