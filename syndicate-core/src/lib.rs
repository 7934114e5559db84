#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod action;
pub mod annotation;
pub mod approvers;
pub mod batching;
pub mod checkpoint;
pub mod checkpointer;
pub mod deadline;
pub mod decision;
pub mod digest;
pub mod event;
pub mod format;
pub mod gate;
mod header;
pub mod identity;
pub mod jcs;
pub mod keys;
pub mod memory;
pub mod merkle;
pub mod note;
pub mod protocol;
pub mod receipt;
pub mod scan;
pub mod seal;
pub mod store;
pub mod story;
pub mod timestamp;
pub mod tree;
pub mod verify;
pub mod witness;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use action::{Action, ActionError, action_digest};
pub use decision::{Decision, DecisionError, SignedDecision, Statement};
pub use digest::{Digest, DigestParseError, digest, tags};
pub use event::{
    Actor, ActorKind, ChainId, ChainIdError, Columns, Envelope, Event, EventDraft, EventKind,
    PolicyRef,
};
pub use gate::{Gate, GateConfig, GateError, Outcome, Permit, Policy, Refusal, RulePolicy};
pub use jcs::CanonError;
pub use keys::{KeyError, KeyId, SigningKey, VerifierKey};
pub use memory::MemoryStore;
pub use seal::{Head, SealError, seal};
pub use store::{BoxError, EventStore, EventStoreExt, Order, Query, StoreError};
pub use story::{StoryReport, StoryViolation, check_store as check_story};
pub use timestamp::Timestamp;
pub use verify::{Check, Report, Summary, Verifier, Violation, verify_store};
