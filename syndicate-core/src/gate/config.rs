//! How a gate behaves.

use std::fmt;
use std::sync::Arc;

use crate::timestamp::Timestamp;

/// The gate's clock: used for approval lifetimes (`expires_at`) and expiry
/// checks. Event `at` stamps come from the store, not from this clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How a [`Gate`](super::Gate) behaves.
#[derive(Clone)]
pub struct GateConfig {
    /// The clock for approval lifetimes; [`Timestamp::now`] by default.
    /// Tests and demos pass one they can advance.
    pub clock: Clock,
    /// Whether the requester may approve their own request (default
    /// `false`: another identity must approve).
    pub allow_self_approval: bool,
    /// Session of the gate's own events (`policy.activated`,
    /// `gate.degraded`, `gate.recovered`, refusals about unknown requests);
    /// default `gate`.
    pub session: String,
    /// Actor id of the gate's own events; default `gate`.
    pub operator: String,
    /// Checkpoints the gate has seen (bodies the caller verified with
    /// [`checkpoint::open`](crate::checkpoint::open)); none by default. At
    /// open, a chain shorter than one of them, or whose root at its size
    /// differs (cut short, rolled back or rewritten), degrades the gate,
    /// recorded where possible, with the reason naming the checkpoint.
    pub checkpoints: Vec<crate::checkpoint::Checkpoint>,
    /// Checkpoints the chain as it grows: after each of the gate's appends
    /// the checkpointer is polled (skipped while another verb polls it), so
    /// it signs and publishes the verified head every N events or T seconds
    /// as it was built to. A failed poll is logged and retried at the next
    /// append; it never refuses the verb (the gate's own verification
    /// decides). `None` by default.
    pub checkpointer: Option<Arc<tokio::sync::Mutex<crate::checkpointer::Checkpointer>>>,
    /// How long one store call may take before it fails with
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) (source
    /// [`DeadlinePassed`](crate::deadline::DeadlinePassed)) and the gate
    /// degrades: a hung store (a stopped server, a lock another process
    /// holds) never hangs the gate. Default
    /// [`DEFAULT_STORE_DEADLINE`](crate::deadline::DEFAULT_STORE_DEADLINE),
    /// 10 s, shorter than the backends' own lock timeouts (30 s) so the
    /// gate answers first; `None` waits as long as the store does. Needs a
    /// Tokio runtime with time enabled.
    pub store_deadline: Option<std::time::Duration>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            clock: Arc::new(Timestamp::now),
            allow_self_approval: false,
            session: "gate".into(),
            operator: "gate".into(),
            checkpoints: Vec::new(),
            checkpointer: None,
            store_deadline: Some(crate::deadline::DEFAULT_STORE_DEADLINE),
        }
    }
}

impl fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateConfig")
            .field("allow_self_approval", &self.allow_self_approval)
            .field("session", &self.session)
            .field("operator", &self.operator)
            .field("checkpoints", &self.checkpoints)
            .field("checkpointer", &self.checkpointer.is_some())
            .field("store_deadline", &self.store_deadline)
            .finish_non_exhaustive()
    }
}
