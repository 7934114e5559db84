//! Who may sign: the approvers and operators a policy document declares.
//!
//! ```toml
//! [[approvers]]
//! id = "bob@example.com"
//! keys = ["bob@example.com+1a2b3c4d+AXsz..."]   # one or more verifier keys
//! roles = ["sre"]                                # optional
//!
//! [[operators]]
//! id = "ops@example.com"
//! keys = ["ops@example.com+5e6f7a8b+AQ9p..."]
//! ```
//!
//! The same members in a JSON policy document. Every key's name must be its
//! holder's `id` (a key signs as its own name), ids are unique within each
//! list, so no key belongs to two identities. A document that declares no
//! approvers keeps unsigned, string identities; [`Signers::requires_signatures`]
//! says which is the case.

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::decision::{Decision, DecisionError, SignedDecision};
use crate::event::ChainId;
use crate::keys::VerifierKey;

/// A declared approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// The identity, recorded as the approver; each key's name.
    pub id: String,
    /// The verifier keys the approver signs with (rotation: list both).
    pub keys: Vec<VerifierKey>,
    /// The roles the approver holds, for rules with `approver_roles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A declared operator: may recover a degraded gate and deny requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// The identity; each key's name.
    pub id: String,
    /// The verifier keys the operator signs with.
    pub keys: Vec<VerifierKey>,
}

/// The approvers and operators of a policy document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signers {
    /// Declared approvers; none means unsigned approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Approver>,
    /// Declared operators; none means unsigned recovery and denial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<Operator>,
}

/// Why a declaration or a signed decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignersError {
    /// The document's `approvers` or `operators` members are not in the expected shape.
    #[error("approvers and operators: {0}")]
    Shape(String),
    /// An identity is declared twice in one list.
    #[error("{list} {id} is declared twice; declare each identity once with all its keys")]
    Duplicate {
        /// `approver` or `operator`.
        list: &'static str,
        /// The identity.
        id: String,
    },
    /// An identity has no key.
    #[error("{list} {id} has no key; list at least one verifier key")]
    NoKey {
        /// `approver` or `operator`.
        list: &'static str,
        /// The identity.
        id: String,
    },
    /// A key's name is not its holder's id.
    #[error("key {key} is listed for {id} but is named {name}; a key signs as its own name")]
    KeyName {
        /// The identity.
        id: String,
        /// The key, in its verifier-key text.
        key: String,
        /// The key's name.
        name: String,
    },
    /// The signer is not declared.
    #[error("{id} is not a declared {list}")]
    Undeclared {
        /// `approver` or `operator`.
        list: &'static str,
        /// The identity on the decision.
        id: String,
    },
    /// The approver lacks a role the rule requires.
    #[error("approver {id} does not hold the role {role} the rule requires")]
    MissingRole {
        /// The approver.
        id: String,
        /// The missing role.
        role: String,
    },
    /// The signature or the statement's binding was refused.
    #[error(transparent)]
    Decision(#[from] DecisionError),
}

impl Signers {
    /// Reads the `approvers` and `operators` members of a policy document
    /// (as a JSON value; a TOML document converts to one), ignoring the
    /// other members, and validates them.
    ///
    /// # Errors
    /// [`SignersError::Shape`] for members of the wrong shape (an unknown
    /// member inside an entry, a key that does not parse), and the errors of
    /// [`Signers::validate`].
    pub fn from_policy(document: &serde_json::Value) -> Result<Self, SignersError> {
        let mut signers = Signers::default();
        if let Some(value) = document.get("approvers") {
            signers.approvers = serde_json::from_value(value.clone())
                .map_err(|e| SignersError::Shape(format!("approvers: {e}")))?;
        }
        if let Some(value) = document.get("operators") {
            signers.operators = serde_json::from_value(value.clone())
                .map_err(|e| SignersError::Shape(format!("operators: {e}")))?;
        }
        signers.validate()?;
        Ok(signers)
    }

    /// Approvers made of a list of verifier keys an auditor trusts: one
    /// approver per key name (the name is the identity), holding every key
    /// of that name, without roles or operators.
    pub fn from_keys(keys: impl IntoIterator<Item = VerifierKey>) -> Self {
        let mut signers = Signers::default();
        for key in keys {
            let name = key.name().to_owned();
            match signers
                .approvers
                .iter_mut()
                .find(|a| crate::identity::same(&a.id, &name))
            {
                Some(approver) => {
                    if !approver.keys.contains(&key) {
                        approver.keys.push(key);
                    }
                }
                None => signers.approvers.push(Approver {
                    id: name,
                    keys: vec![key],
                    roles: Vec::new(),
                }),
            }
        }
        signers
    }

    /// Reads the declarations from a TOML policy document.
    ///
    /// # Errors
    /// As [`Signers::from_policy`], with TOML syntax errors as [`SignersError::Shape`].
    pub fn from_toml(text: &str) -> Result<Self, SignersError> {
        let value: serde_json::Value =
            toml::from_str(text).map_err(|e| SignersError::Shape(e.to_string()))?;
        Signers::from_policy(&value)
    }

    /// Checks ids unique and at least one key each, every key named as its
    /// holder's id (so no key can belong to two identities).
    ///
    /// # Errors
    /// [`SignersError::Duplicate`], [`SignersError::NoKey`],
    /// [`SignersError::KeyName`].
    pub fn validate(&self) -> Result<(), SignersError> {
        let approvers = self.approvers.iter().map(|a| (a.id.as_str(), &a.keys[..]));
        check_list("approver", approvers.collect())?;
        let operators = self.operators.iter().map(|o| (o.id.as_str(), &o.keys[..]));
        check_list("operator", operators.collect())
    }

    /// Whether approvals must be signed: true when approvers are declared.
    pub fn requires_signatures(&self) -> bool {
        !self.approvers.is_empty()
    }

    /// Whether recovery and denial must be signed by an operator.
    pub fn requires_operator(&self) -> bool {
        !self.operators.is_empty()
    }

    /// The declared approver with this id (ids compared in normal form,
    /// [`identity`](crate::identity)).
    pub fn approver(&self, id: &str) -> Option<&Approver> {
        self.approvers
            .iter()
            .find(|a| crate::identity::same(&a.id, id))
    }

    /// The declared operator with this id (compared in normal form).
    pub fn operator(&self, id: &str) -> Option<&Operator> {
        self.operators
            .iter()
            .find(|o| crate::identity::same(&o.id, id))
    }

    /// Checks a signed approval for this chain, request and digest: the
    /// approver is declared, holds every required role, and signed with one
    /// of their keys. Returns the approver.
    ///
    /// # Errors
    /// [`SignersError::Undeclared`], [`SignersError::MissingRole`], or
    /// [`SignersError::Decision`] for a bad signature or a statement for
    /// something else.
    pub fn check_approval(
        &self,
        decision: &SignedDecision,
        chain: &ChainId,
        request_id: &str,
        action_digest: &Digest,
        required_roles: &[String],
    ) -> Result<&Approver, SignersError> {
        let id = &decision.statement.approver;
        let approver = self.approver(id).ok_or_else(|| SignersError::Undeclared {
            list: "approver",
            id: id.clone(),
        })?;
        if let Some(role) = required_roles.iter().find(|r| !approver.roles.contains(r)) {
            return Err(SignersError::MissingRole {
                id: id.clone(),
                role: role.clone(),
            });
        }
        decision.verify_for(
            chain,
            request_id,
            action_digest,
            Decision::Approve,
            &approver.keys,
        )?;
        Ok(approver)
    }

    /// Checks a signed denial for this chain, request and digest: by a
    /// declared approver or operator, with one of their keys.
    ///
    /// # Errors
    /// [`SignersError::Undeclared`] or [`SignersError::Decision`].
    pub fn check_denial(
        &self,
        decision: &SignedDecision,
        chain: &ChainId,
        request_id: &str,
        action_digest: &Digest,
    ) -> Result<(), SignersError> {
        let id = &decision.statement.approver;
        let keys = match (self.approver(id), self.operator(id)) {
            (Some(a), _) => &a.keys,
            (None, Some(o)) => &o.keys,
            (None, None) => {
                return Err(SignersError::Undeclared {
                    list: "approver or operator",
                    id: id.clone(),
                });
            }
        };
        decision.verify_for(chain, request_id, action_digest, Decision::Deny, keys)?;
        Ok(())
    }

    /// Checks an operator's signed decision (a recovery or a denial).
    ///
    /// # Errors
    /// [`SignersError::Undeclared`] or [`SignersError::Decision`].
    pub fn check_operator(
        &self,
        decision: &SignedDecision,
        chain: &ChainId,
        request_id: &str,
        action_digest: &Digest,
        kind: Decision,
    ) -> Result<&Operator, SignersError> {
        let id = &decision.statement.approver;
        let operator = self.operator(id).ok_or_else(|| SignersError::Undeclared {
            list: "operator",
            id: id.clone(),
        })?;
        decision.verify_for(chain, request_id, action_digest, kind, &operator.keys)?;
        Ok(operator)
    }
}

fn check_list(
    list: &'static str,
    entries: Vec<(&str, &[VerifierKey])>,
) -> Result<(), SignersError> {
    for (i, (id, keys)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(other, _)| other == id) {
            return Err(SignersError::Duplicate {
                list,
                id: (*id).to_owned(),
            });
        }
        if keys.is_empty() {
            return Err(SignersError::NoKey {
                list,
                id: (*id).to_owned(),
            });
        }
        for key in *keys {
            if key.name() != *id {
                return Err(SignersError::KeyName {
                    id: (*id).to_owned(),
                    key: key.to_string(),
                    name: key.name().to_owned(),
                });
            }
        }
    }
    Ok(())
}
