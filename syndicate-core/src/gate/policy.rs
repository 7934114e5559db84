//! Policy: which actions run on their own, which need people, which never run.
//!
//! [`Policy`] is the trait the [`Gate`](super::Gate) asks; [`RulePolicy`] is
//! the built-in one, loaded from a JSON or TOML document of ordered rules.

use crate::approvers::Signers;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::Action;
use crate::digest::{digest, tags};
use crate::event::PolicyRef;
use crate::jcs::{self, CanonError};

/// How risky an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RiskTier {
    /// Read-only or trivially reversible.
    Low,
    /// Reversible with some effort.
    Medium,
    /// Touches production, money or people's data.
    High,
    /// Irreversible or regulated; two people by default.
    Critical,
}

impl RiskTier {
    /// The tier as written in documents and events: `low` ... `critical`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
            RiskTier::Critical => "critical",
        }
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RiskTier {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(RiskTier::Low),
            "medium" => Ok(RiskTier::Medium),
            "high" => Ok(RiskTier::High),
            "critical" => Ok(RiskTier::Critical),
            other => Err(PolicyError::Invalid(format!(
                "risk tier {other:?} is not one of low, medium, high, critical"
            ))),
        }
    }
}

/// What a policy decides about an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Approved by the rule itself, no person involved.
    AutoApprove,
    /// Needs approval by people (see [`Classification::approvers`]).
    Human,
    /// Never runs.
    Deny,
}

impl Decision {
    /// The decision as written in documents and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::AutoApprove => "auto_approve",
            Decision::Human => "human",
            Decision::Deny => "deny",
        }
    }
}

/// The result of classifying one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The id of the rule that matched, or `None` when none did (then the
    /// decision is [`Decision::Deny`]).
    pub rule: Option<String>,
    /// The risk tier.
    pub risk: RiskTier,
    /// What happens next.
    pub decision: Decision,
    /// Distinct approvers needed (at least 1).
    pub approvers: u32,
    /// How long an approval stays usable, in seconds.
    pub approval_ttl_seconds: u64,
    /// Compliance control tags copied onto the events, e.g. `SOC2:CC8.1`.
    pub controls: Vec<String>,
    /// Roles every counted approver must hold (the policy's declared
    /// approvers, 9.4 of the format); empty for none.
    pub approver_roles: Vec<String>,
}

impl Classification {
    /// The classification when no rule matches: deny, critical.
    pub fn no_match() -> Self {
        Classification {
            rule: None,
            risk: RiskTier::Critical,
            decision: Decision::Deny,
            approvers: 1,
            approval_ttl_seconds: 0,
            controls: Vec::new(),
            approver_roles: Vec::new(),
        }
    }
}

/// Decides, for each proposed action, whether it runs on its own, needs
/// people, or never runs.
///
/// A policy is identified on the chain by its [`PolicyRef`] (id, version and
/// the digest of its document); the gate records the document once in a
/// `policy.activated` event, and every event carries the reference.
pub trait Policy: Send + Sync + fmt::Debug {
    /// Id, version and document digest.
    fn reference(&self) -> &PolicyRef;
    /// The policy document as JSON, recorded in `policy.activated`.
    fn document(&self) -> &Value;
    /// Classifies an action. Must be deterministic for a given action.
    fn classify(&self, action: &Action) -> Classification;

    /// Weaknesses of the policy worth a warning (a rule order a caller
    /// could dodge by spelling); the gate logs each when it opens. None by
    /// default.
    fn findings(&self) -> Vec<String> {
        Vec::new()
    }
    /// The approvers and operators the document declares; approvals must
    /// be signed when it declares approvers. None by default.
    fn signers(&self) -> Option<&Signers> {
        None
    }
}

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The JSON text has no canonical form (duplicate keys and the like).
    #[error("policy document is not strict json: {0}")]
    Json(#[from] CanonError),
    /// The TOML text does not parse.
    #[error("policy document is not valid toml: {0}")]
    Toml(String),
    /// The document parses but is not a valid policy.
    #[error("invalid policy document: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    id: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    rules: Vec<RuleDoc>,
    // Read by `Signers::from_policy`.
    #[serde(default)]
    approvers: Option<Value>,
    #[serde(default)]
    operators: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    id: String,
    tool: String,
    #[serde(default)]
    target: Option<String>,
    risk: RiskTier,
    decision: Decision,
    #[serde(default)]
    approvers: Option<u32>,
    #[serde(default)]
    approval_ttl_seconds: Option<u64>,
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    approver_roles: Vec<String>,
    /// Evidence a change under this rule needs after it runs (`test`,
    /// `review`): read from the activated document by `audit checks`, not
    /// by the gate.
    #[serde(default)]
    requires: Vec<String>,
}

/// What a rule may list in `requires`: the annotations (FORMAT.md 5.4) a
/// change under it needs once it ran.
const REQUIRABLE: &[&str] = &["test", "review"];

/// Approval lifetime when a rule sets none: 15 minutes.
pub const DEFAULT_APPROVAL_TTL_SECONDS: u64 = 900;

/// One rule of a [`RulePolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its id, recorded on approvals by policy.
    pub id: String,
    /// Glob over the action's `tool` (`*` any run of characters, `?` one).
    pub tool: String,
    /// Glob over the action's `target`; `*` also matches an action without one.
    pub target: String,
    /// The classification it gives.
    pub classification: Classification,
}

/// The built-in policy: ordered rules matched by glob on tool and target;
/// the first match wins; no match means deny.
///
/// The document (JSON or TOML) looks like this:
///
/// ```toml
/// id = "default"
/// version = "1"
///
/// [[rules]]
/// id = "read-only"
/// tool = "fs.read"
/// risk = "low"
/// decision = "auto_approve"
///
/// [[rules]]
/// id = "payments-deploy"
/// tool = "shell.*"
/// target = "repo:payments-*"
/// risk = "critical"             # low | medium | high | critical
/// decision = "human"            # auto_approve | human | deny
/// approvers = 2                 # default 2 for critical, else 1
/// approval_ttl_seconds = 900    # default 900
/// controls = ["PCI-DSS-4.0:6.2.3", "SOC2:CC8.1"]
/// requires = ["test", "review"] # optional: evidence `audit checks` wants once it ran
/// ```
///
/// Unknown fields, an unknown tier or decision, no rules, duplicate rule
/// ids, empty patterns and `approvers = 0` are refused. The policy digest is
/// `digest("syndicate:policy:v1", document)` over the document's JSON form
/// (TOML is converted to JSON first), so the same rules written in TOML and
/// in JSON have one digest.
#[derive(Debug, Clone)]
pub struct RulePolicy {
    reference: PolicyRef,
    document: Value,
    rules: Vec<Rule>,
    /// `(tool, target)` patterns of each rule in normal form.
    folded: Vec<(String, String)>,
    signers: Signers,
    findings: Vec<PolicyFinding>,
}

/// A rule set a caller could dodge by spelling: a stricter rule with a
/// target pattern, followed by a laxer rule that an action of the same tool
/// *without* a target reaches instead. The policy loads (the matching is
/// what it says) and [`RulePolicy::findings`] lists it; the gate logs it as
/// a warning when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFinding {
    /// The stricter rule.
    pub stricter: String,
    /// The laxer rule an action without a target reaches.
    pub laxer: String,
    /// The finding in words.
    pub detail: String,
}

/// How strict a classification is: deny, then more approvers, then human,
/// then auto-approve.
fn strictness(c: &Classification) -> (u8, u32) {
    match c.decision {
        Decision::Deny => (3, u32::MAX),
        Decision::Human => (2, c.approvers),
        Decision::AutoApprove => (1, 0),
    }
}

/// The findings of a rule list (see [`PolicyFinding`]).
fn findings_of(rules: &[Rule], folded: &[(String, String)]) -> Vec<PolicyFinding> {
    let mut out = Vec::new();
    for (i, strict) in rules.iter().enumerate() {
        if folded[i].1 == "*" {
            continue;
        }
        // The first later rule an action of this tool without a target meets.
        let reached = rules
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(j, _)| folded[*j].1 == "*" && glob_match(&folded[*j].0, &folded[i].0));
        if let Some((_, lax)) = reached
            && strictness(&lax.classification) < strictness(&strict.classification)
        {
            out.push(PolicyFinding {
                stricter: strict.id.clone(),
                laxer: lax.id.clone(),
                detail: format!(
                    "rule {:?} (tool {:?}, target {:?}, {}) is skipped by an action that \
                     leaves its target out: rule {:?} ({}) matches it instead; give the laxer \
                     rule a target pattern, or add a stricter rule for tool {:?} without one",
                    strict.id,
                    strict.tool,
                    strict.target,
                    strict.classification.decision.as_str(),
                    lax.id,
                    lax.classification.decision.as_str(),
                    strict.tool
                ),
            });
        }
    }
    out
}

impl RulePolicy {
    /// Builds a policy from its JSON form.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] for a document that is not a valid policy,
    /// [`PolicyError::Json`] when it has no canonical form.
    pub fn from_value(document: Value) -> Result<Self, PolicyError> {
        let doc: Document = serde_json::from_value(document.clone())
            .map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let _ = (doc.description, doc.approvers, doc.operators);
        let signers =
            Signers::from_policy(&document).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let text_ok = |what: &str, s: &str| {
            if s.is_empty() || s.len() > 256 {
                Err(PolicyError::Invalid(format!(
                    "{what} must be 1 to 256 bytes"
                )))
            } else {
                Ok(())
            }
        };
        text_ok("id", &doc.id)?;
        text_ok("version", &doc.version)?;
        if doc.rules.is_empty() {
            return Err(PolicyError::Invalid(
                "rules is empty; add at least one rule (no match means deny)".into(),
            ));
        }
        let mut rules = Vec::with_capacity(doc.rules.len());
        for (i, r) in doc.rules.into_iter().enumerate() {
            text_ok(&format!("rules[{i}].id"), &r.id)?;
            if rules.iter().any(|x: &Rule| x.id == r.id) {
                return Err(PolicyError::Invalid(format!(
                    "rule id {:?} appears twice; rule ids must be unique",
                    r.id
                )));
            }
            if r.tool.is_empty() || r.target.as_deref() == Some("") {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: tool and target patterns must not be empty (use \"*\")",
                    r.id
                )));
            }
            if r.approvers == Some(0) {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: approvers must be at least 1",
                    r.id
                )));
            }
            if !r.approver_roles.is_empty() && !signers.requires_signatures() {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: approver_roles needs declared [[approvers]] with roles (roles are \
                     checked on signed approvals)",
                    r.id
                )));
            }
            if r.approver_roles.iter().any(String::is_empty) {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: roles must not be empty",
                    r.id
                )));
            }
            if let Some(bad) = r
                .requires
                .iter()
                .find(|x| !REQUIRABLE.contains(&x.as_str()))
            {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: requires {bad:?} is not one of {}",
                    r.id,
                    REQUIRABLE.join(", ")
                )));
            }
            if r.controls.iter().any(String::is_empty) {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: control tags must not be empty",
                    r.id
                )));
            }
            let approvers = r.approvers.unwrap_or(match r.risk {
                RiskTier::Critical => 2,
                _ => 1,
            });
            rules.push(Rule {
                id: r.id.clone(),
                tool: r.tool,
                target: r.target.unwrap_or_else(|| "*".into()),
                classification: Classification {
                    rule: Some(r.id),
                    risk: r.risk,
                    decision: r.decision,
                    approvers,
                    approval_ttl_seconds: r
                        .approval_ttl_seconds
                        .unwrap_or(DEFAULT_APPROVAL_TTL_SECONDS),
                    controls: r.controls,
                    approver_roles: r.approver_roles,
                },
            });
        }
        let reference = PolicyRef {
            id: doc.id,
            version: doc.version,
            digest: digest(tags::POLICY, &document)?,
        };
        let folded: Vec<(String, String)> = rules
            .iter()
            .map(|r| {
                (
                    crate::identity::fold(&r.tool).into_owned(),
                    crate::identity::fold(&r.target).into_owned(),
                )
            })
            .collect();
        let findings = findings_of(&rules, &folded);
        Ok(RulePolicy {
            reference,
            document,
            rules,
            folded,
            signers,
            findings,
        })
    }

    /// Reads a JSON policy document with the strict parser.
    ///
    /// # Errors
    /// As [`RulePolicy::from_value`], and [`PolicyError::Json`] for text
    /// that is not strict JSON.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        Self::from_value(jcs::parse(text.as_bytes())?)
    }

    /// Reads a TOML policy document.
    ///
    /// # Errors
    /// As [`RulePolicy::from_value`], and [`PolicyError::Toml`] for text
    /// that is not TOML (TOML dates are refused: a policy has none).
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let value: toml::Value =
            toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string().trim().to_owned()))?;
        Self::from_value(toml_to_json(value)?)
    }

    /// Reads a policy document, TOML or JSON: by extension (`.toml`,
    /// `.json`), else JSON when the text starts with `{`, else TOML.
    ///
    /// # Errors
    /// [`PolicyError::Io`] when the file cannot be read, else as the parser.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml(&text),
            Some("json") => Self::from_json(&text),
            _ => Self::from_text(&text),
        }
    }

    /// Reads a document whose format is unknown: JSON when it starts with
    /// `{` (after whitespace), else TOML.
    ///
    /// # Errors
    /// As [`RulePolicy::from_json`] / [`RulePolicy::from_toml`].
    pub fn from_text(text: &str) -> Result<Self, PolicyError> {
        if text.trim_start().starts_with('{') {
            Self::from_json(text)
        } else {
            Self::from_toml(text)
        }
    }

    /// The rules, in matching order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rule orders a caller could dodge by leaving the target out (see
    /// [`PolicyFinding`]); empty for a policy without such a hole.
    pub fn findings(&self) -> &[PolicyFinding] {
        &self.findings
    }
}

fn toml_to_json(value: toml::Value) -> Result<Value, PolicyError> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| PolicyError::Invalid(format!("number {f} has no json form")))?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            return Err(PolicyError::Invalid(format!(
                "dates ({d}) have no place in a policy; quote them as strings"
            )));
        }
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(toml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| Ok((k, toml_to_json(v)?)))
                .collect::<Result<_, PolicyError>>()?,
        ),
    })
}

impl Policy for RulePolicy {
    fn reference(&self) -> &PolicyRef {
        &self.reference
    }

    fn document(&self) -> &Value {
        &self.document
    }

    fn signers(&self) -> Option<&Signers> {
        Some(&self.signers)
    }

    fn classify(&self, action: &Action) -> Classification {
        // Tool and target compare in normal form (NFC + case folding), so
        // re-casing a target does not skip the rule written for it.
        let tool = crate::identity::fold(action.tool());
        let target = action.target().map(crate::identity::fold);
        self.rules
            .iter()
            .zip(&self.folded)
            .find(|(_, (tool_pattern, target_pattern))| {
                glob_match(tool_pattern, &tool)
                    && match &target {
                        Some(target) => glob_match(target_pattern, target),
                        None => target_pattern == "*",
                    }
            })
            .map_or_else(Classification::no_match, |(rule, _)| {
                rule.classification.clone()
            })
    }

    fn findings(&self) -> Vec<String> {
        self.findings.iter().map(|f| f.detail.clone()).collect()
    }
}

/// Matches `text` against a glob: `*` matches any run of characters
/// (including none, and including `.`, `/` and `:`), `?` exactly one
/// character; everything else matches itself. Linear time.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = r#"
id = "default"
version = "3"

[[rules]]
id = "reads"
tool = "fs.read"
risk = "low"
decision = "auto_approve"

[[rules]]
id = "payments"
tool = "shell.*"
target = "repo:payments-*"
risk = "critical"
decision = "human"
controls = ["PCI-DSS-4.0:6.2.3"]

[[rules]]
id = "shell"
tool = "shell.exec"
risk = "high"
decision = "human"
approval_ttl_seconds = 60
"#;

    #[test]
    fn glob_matches_stars_and_question_marks() {
        assert!(glob_match("shell.*", "shell.exec"));
        assert!(glob_match("*", ""));
        assert!(glob_match("repo:pay?ents-*", "repo:payments-svc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("shell.exec", "shell.exe"));
        assert!(!glob_match("?", ""));
    }

    #[test]
    fn first_matching_rule_wins_and_no_match_denies() {
        let p = RulePolicy::from_toml(DOC).unwrap();
        let pay = Action::new("shell.exec", json!({}))
            .unwrap()
            .with_target("repo:payments-svc")
            .unwrap();
        let c = p.classify(&pay);
        assert_eq!(c.rule.as_deref(), Some("payments"));
        assert_eq!(
            (c.risk, c.decision, c.approvers),
            (RiskTier::Critical, Decision::Human, 2)
        );
        assert_eq!(c.controls, vec!["PCI-DSS-4.0:6.2.3".to_owned()]);
        let sh = Action::new("shell.exec", json!({})).unwrap();
        let c = p.classify(&sh);
        assert_eq!(
            (c.rule.as_deref(), c.approvers, c.approval_ttl_seconds),
            (Some("shell"), 1, 60)
        );
        let other = Action::new("http.post", json!({})).unwrap();
        assert_eq!(p.classify(&other), Classification::no_match());
    }

    #[test]
    fn toml_and_json_forms_share_a_digest() {
        let t = RulePolicy::from_toml(DOC).unwrap();
        let j = RulePolicy::from_json(&serde_json::to_string(t.document()).unwrap()).unwrap();
        assert_eq!(t.reference(), j.reference());
        assert_eq!(t.reference().version, "3");
    }

    #[test]
    fn refuses_malformed_documents() {
        let bad = [
            r#"{"id":"p","version":"1","rules":[]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"*","risk":"extreme","decision":"deny"}]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"*","risk":"low","decision":"maybe"}]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"*","risk":"low","decision":"deny","extra":1}]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"*","risk":"low","decision":"human","approvers":0}]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"","risk":"low","decision":"deny"}]}"#,
            r#"{"id":"p","version":"1","rules":[{"id":"r","tool":"a","risk":"low","decision":"deny"},{"id":"r","tool":"b","risk":"low","decision":"deny"}]}"#,
            r#"{"id":"p","id":"q","version":"1","rules":[{"id":"r","tool":"*","risk":"low","decision":"deny"}]}"#,
        ];
        for text in bad {
            assert!(RulePolicy::from_json(text).is_err(), "{text}");
        }
        assert!(matches!(
            RulePolicy::from_toml("id = "),
            Err(PolicyError::Toml(_))
        ));
    }

    const DODGEABLE: &str = r#"
id = "dodge"
version = "1"
[[rules]]
id = "prod-deploys"
tool = "deploy"
target = "prod:*"
risk = "critical"
decision = "human"
approvers = 2
[[rules]]
id = "other-deploys"
tool = "deploy*"
risk = "low"
decision = "auto_approve"
"#;

    fn deploy(target: Option<&str>) -> Action {
        let a = Action::new("deploy", json!({"v": 1})).unwrap();
        match target {
            Some(t) => a.with_target(t).unwrap(),
            None => a,
        }
    }

    #[test]
    fn re_casing_a_target_or_tool_does_not_skip_its_rule() {
        let policy = RulePolicy::from_toml(DODGEABLE).unwrap();
        for target in ["prod:db", "PROD:db", "Prod:DB"] {
            let c = policy.classify(&deploy(Some(target)));
            assert_eq!(c.rule.as_deref(), Some("prod-deploys"), "{target}");
            assert_eq!(c.decision, Decision::Human);
        }
        let shouted = Action::new("DEPLOY", json!({"v": 1}))
            .unwrap()
            .with_target("prod:db")
            .unwrap();
        assert_eq!(
            policy.classify(&shouted).rule.as_deref(),
            Some("prod-deploys")
        );
        assert_eq!(
            policy.classify(&deploy(Some("staging:db"))).rule.as_deref(),
            Some("other-deploys")
        );
    }

    #[test]
    fn a_stricter_rule_dodged_by_leaving_the_target_out_is_a_finding() {
        let policy = RulePolicy::from_toml(DODGEABLE).unwrap();
        // Matching says what it says: no target matches only `*` targets...
        assert_eq!(
            policy.classify(&deploy(None)).rule.as_deref(),
            Some("other-deploys")
        );
        // ...and the loader names the hole.
        let findings = policy.findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].stricter, "prod-deploys");
        assert_eq!(findings[0].laxer, "other-deploys");
        assert!(findings[0].detail.contains("leaves its target out"));
        assert_eq!(Policy::findings(&policy).len(), 1);

        // A laxer rule for other tools, or an equally strict one, is no hole.
        for (tool, decision, approvers) in [
            ("other", "auto_approve", 1),
            ("deploy", "human", 2),
            ("deploy", "deny", 1),
        ] {
            let text = DODGEABLE
                .replace("tool = \"deploy*\"", &format!("tool = \"{tool}\""))
                .replace(
                    "risk = \"low\"\ndecision = \"auto_approve\"",
                    &format!("risk = \"low\"\ndecision = \"{decision}\"\napprovers = {approvers}"),
                );
            let policy = RulePolicy::from_toml(&text).unwrap();
            assert!(
                policy.findings().is_empty(),
                "{tool} {decision}: {:?}",
                policy.findings()
            );
        }
        // A stricter rule without a target pattern cannot be dodged that way.
        let text = DODGEABLE.replace("target = \"prod:*\"\n", "");
        assert!(RulePolicy::from_toml(&text).unwrap().findings().is_empty());
    }
}
