//! Signed decisions: an approver's (or operator's) Ed25519 signature over a
//! statement that binds the chain, the request and the action digest.
//!
//! The signed bytes are built exactly as every digest input is:
//!
//! ```text
//! UTF8("syndicate:approval:v1") || 0x00 || JCS(statement)
//! ```
//!
//! where the statement is the JSON object
//! `{"chain", "request_id", "action_digest", "approver", "decision", "expires_at"}`
//! (`expires_at` is `null` when the decision does not expire). Because the
//! chain, request and digest are inside the signed bytes, a signature cannot
//! be replayed on another chain, request or action.
//!
//! A [`SignedDecision`] is the statement, the signing key's id and the
//! signature; its JSON form is the `decision.json` file that
//! `syndicate approve --sign-only` writes and `syndicate submit` reads:
//!
//! ```json
//! {"statement": {...}, "key_id": "1a2b3c4d", "signature": "<base64, 64 bytes>"}
//! ```
//!
//! ```
//! use syndicate_core::decision::{Decision, SignedDecision, Statement};
//! use syndicate_core::keys::SigningKey;
//! use syndicate_core::{ChainId, Digest};
//!
//! let bob = SigningKey::generate("bob@example.com")?;
//! let statement = Statement {
//!     chain: ChainId::new("prod")?,
//!     request_id: "req-1".into(),
//!     action_digest: Digest::ZERO,
//!     approver: "bob@example.com".into(),
//!     decision: Decision::Approve,
//!     expires_at: None,
//! };
//! let signed = SignedDecision::sign(&bob, statement)?;
//! let trusted = [bob.verifier().clone()];
//! let key = signed.verify(&trusted)?;
//! assert_eq!(key.name(), "bob@example.com");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::digest::tags;
use crate::event::ChainId;
use crate::jcs::{self, CanonError};
use crate::keys::{KeyId, SigningKey, VerifierKey};
use crate::{Digest, Timestamp};

/// What a signed statement decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Approve the action digest for the request.
    Approve,
    /// Deny the request.
    Deny,
    /// Recover a degraded gate (signed by an operator).
    Recover,
}

/// The statement an approver signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The chain the decision is for.
    pub chain: ChainId,
    /// The request the decision is for.
    pub request_id: String,
    /// The digest of the action the signer reviewed.
    pub action_digest: Digest,
    /// The identity that decides; the signing key's name.
    pub approver: String,
    /// What is decided.
    pub decision: Decision,
    /// When the decision stops being usable; `null` for never.
    pub expires_at: Option<Timestamp>,
}

impl Statement {
    /// The bytes that are signed: `UTF8("syndicate:approval:v1") || 0x00 || JCS(statement)`.
    ///
    /// # Errors
    /// [`DecisionError::Canon`] if the statement has no canonical form (it
    /// always has one: it holds only strings and null).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, DecisionError> {
        let canon = |e: &dyn std::fmt::Display| DecisionError::Canon(e.to_string());
        let value = serde_json::to_value(self).map_err(|e| canon(&e))?;
        let canonical = jcs::to_canonical_vec(&value).map_err(|e: CanonError| canon(&e))?;
        let mut bytes = Vec::with_capacity(tags::APPROVAL.len() + 1 + canonical.len());
        bytes.extend_from_slice(tags::APPROVAL.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&canonical);
        Ok(bytes)
    }
}

/// Why a decision could not be signed or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// The key's name is not the statement's approver.
    #[error(
        "key {key} cannot sign for {approver}: a key signs only as its own name; use {approver}'s key"
    )]
    KeyName {
        /// The key's name.
        key: String,
        /// The statement's approver.
        approver: String,
    },
    /// No given key has the approver's name and the decision's key id.
    #[error(
        "no trusted key of {approver} has key id {key_id}; the decision was signed with a key the policy does not list"
    )]
    UnknownKey {
        /// The statement's approver.
        approver: String,
        /// The key id on the decision.
        key_id: KeyId,
    },
    /// The signature does not verify with the approver's key.
    #[error("the signature of {approver} does not verify; the decision was altered or forged")]
    BadSignature {
        /// The statement's approver.
        approver: String,
    },
    /// The signature is not base64 of 64 bytes.
    #[error("the signature is not base64 of 64 bytes")]
    SignatureFormat,
    /// The statement is for another chain, request, digest or decision.
    #[error("the signed statement is for {field} {signed}, not {expected}; it cannot be used here")]
    Mismatch {
        /// The member that differs.
        field: &'static str,
        /// What was signed.
        signed: String,
        /// What was expected.
        expected: String,
    },
    /// The statement has no canonical form.
    #[error("the statement has no canonical form: {0}")]
    Canon(String),
}

/// A statement, the id of the key that signed it and the Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDecision {
    /// What was signed.
    pub statement: Statement,
    /// The signing key's id (its name is the statement's approver).
    pub key_id: KeyId,
    /// Base64 (standard, padded) of the 64-byte Ed25519 signature.
    pub signature: String,
}

impl SignedDecision {
    /// Signs the statement with the approver's key.
    ///
    /// # Errors
    /// [`DecisionError::KeyName`] when the key's name is not the statement's
    /// approver; [`DecisionError::Canon`] should the statement have no
    /// canonical form.
    pub fn sign(key: &SigningKey, statement: Statement) -> Result<Self, DecisionError> {
        if key.name() != statement.approver {
            return Err(DecisionError::KeyName {
                key: key.name().to_owned(),
                approver: statement.approver,
            });
        }
        let bytes = statement.signed_bytes()?;
        Ok(SignedDecision {
            key_id: key.key_id(),
            signature: BASE64.encode(key.sign(&bytes)),
            statement,
        })
    }

    /// Verifies the signature against the trusted keys: the key used is the
    /// one whose name is the statement's approver and whose id is
    /// [`SignedDecision::key_id`]. Returns that key.
    ///
    /// # Errors
    /// [`DecisionError::UnknownKey`] when no trusted key matches,
    /// [`DecisionError::SignatureFormat`] / [`DecisionError::BadSignature`]
    /// when the signature is malformed or does not verify.
    pub fn verify<'k>(&self, trusted: &'k [VerifierKey]) -> Result<&'k VerifierKey, DecisionError> {
        let approver = &self.statement.approver;
        let key = trusted
            .iter()
            .find(|k| k.name() == approver && k.key_id() == self.key_id)
            .ok_or_else(|| DecisionError::UnknownKey {
                approver: approver.clone(),
                key_id: self.key_id,
            })?;
        let signature: [u8; 64] = BASE64
            .decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(DecisionError::SignatureFormat)?;
        let bytes = self.statement.signed_bytes()?;
        key.verify(&bytes, &signature)
            .map_err(|_| DecisionError::BadSignature {
                approver: approver.clone(),
            })?;
        Ok(key)
    }

    /// Verifies the signature, then that the statement is for this chain,
    /// request, action digest and decision.
    ///
    /// # Errors
    /// The errors of [`SignedDecision::verify`], and
    /// [`DecisionError::Mismatch`] naming the first member that differs.
    pub fn verify_for<'k>(
        &self,
        chain: &ChainId,
        request_id: &str,
        action_digest: &Digest,
        decision: Decision,
        trusted: &'k [VerifierKey],
    ) -> Result<&'k VerifierKey, DecisionError> {
        let key = self.verify(trusted)?;
        let s = &self.statement;
        let mismatch = |field, signed: String, expected: String| {
            Err(DecisionError::Mismatch {
                field,
                signed,
                expected,
            })
        };
        if &s.chain != chain {
            return mismatch("chain", s.chain.to_string(), chain.to_string());
        }
        if s.request_id != request_id {
            return mismatch("request", s.request_id.clone(), request_id.to_owned());
        }
        if &s.action_digest != action_digest {
            return mismatch(
                "action digest",
                s.action_digest.to_string(),
                action_digest.to_string(),
            );
        }
        if s.decision != decision {
            return mismatch(
                "decision",
                format!("{:?}", s.decision),
                format!("{decision:?}"),
            );
        }
        Ok(key)
    }
}
