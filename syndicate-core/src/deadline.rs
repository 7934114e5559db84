//! [`DeadlineStore`]: every store call ends within a deadline.
//!
//! A store that hangs (a PostgreSQL backend stopped mid-query, a network
//! that drops packets silently, a SQLite write lock another process never
//! releases) must not hang the gate: the agent would wait forever and the
//! harness might let the call through on its own timeout. The gate wraps its
//! store in a `DeadlineStore` ([`GateConfig::store_deadline`], 10 s by
//! default), so a call that has not finished in time fails with
//! [`StoreError::Unavailable`] whose source is [`DeadlinePassed`], and the
//! gate degrades.
//!
//! An `append` cut off this way may still be committed by the backend (see
//! [`EventStore`]'s note on cancellation), so its error says
//! `maybe_written`; a degraded gate re-verifies the chain before it runs
//! anything again, so such an event is found, never lost or doubled.
//!
//! The deadline uses Tokio's timer: the runtime must have time enabled
//! (`enable_time` or `enable_all`, as `#[tokio::main]` does).
//!
//! [`GateConfig::store_deadline`]: crate::gate::GateConfig::store_deadline

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::event::{ChainId, Event, EventDraft};
use crate::merkle::{Hash, NodeId};
use crate::seal::Head;
use crate::store::{EventStore, Query, StoreError};

/// The deadline a gate gives each store call unless configured otherwise.
pub const DEFAULT_STORE_DEADLINE: Duration = Duration::from_secs(10);

/// A store call did not finish within its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "store call `{call}` did not finish within {after:?}: the store may be hung \
     (a stopped server, a lock held by another process); check it, then recover"
)]
#[non_exhaustive]
pub struct DeadlinePassed {
    /// The [`EventStore`] method, e.g. `append`.
    pub call: &'static str,
    /// The deadline that passed.
    pub after: Duration,
}

/// True when `error` is a store call that missed its deadline.
pub fn is_deadline(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable { source, .. } if source.is::<DeadlinePassed>())
}

/// A store whose every call fails with [`StoreError::Unavailable`]
/// ([`DeadlinePassed`] as its source) when it takes longer than a deadline.
#[derive(Debug)]
pub struct DeadlineStore {
    inner: Arc<dyn EventStore>,
    deadline: Duration,
}

impl DeadlineStore {
    /// Wraps `inner`; each call may take at most `deadline`.
    pub fn new(inner: Arc<dyn EventStore>, deadline: Duration) -> Self {
        DeadlineStore { inner, deadline }
    }

    /// The deadline of each call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    async fn within<T>(
        &self,
        call: &'static str,
        writes: bool,
        future: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, future).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable {
                store: "event",
                maybe_written: writes,
                source: Box::new(DeadlinePassed {
                    call,
                    after: self.deadline,
                }),
            }),
        }
    }
}

#[async_trait]
impl EventStore for DeadlineStore {
    fn chain(&self) -> &ChainId {
        self.inner.chain()
    }

    fn pages_reach_the_end(&self) -> bool {
        self.inner.pages_reach_the_end()
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        self.within("append", true, self.inner.append(drafts)).await
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.within("head", false, self.inner.head()).await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.within("read", false, self.inner.read(from_seq, limit))
            .await
    }

    async fn read_bounded(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.within(
            "read_bounded",
            false,
            self.inner.read_bounded(from_seq, limit, max_bytes),
        )
        .await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.within("query", false, self.inner.query(query)).await
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        self.within("put_tree_nodes", true, self.inner.put_tree_nodes(nodes))
            .await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        self.within("tree_nodes", false, self.inner.tree_nodes(ids))
            .await
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        self.within("tree_leaf_count", false, self.inner.tree_leaf_count())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventKind};
    use crate::memory::MemoryStore;
    use crate::store::EventStoreExt;

    /// A store whose calls never finish, to show the deadline ends them.
    #[derive(Debug)]
    struct Hung(ChainId);

    #[async_trait]
    impl EventStore for Hung {
        fn chain(&self) -> &ChainId {
            &self.0
        }
        async fn append(&self, _: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
            std::future::pending().await
        }
        async fn head(&self) -> Result<Option<Head>, StoreError> {
            std::future::pending().await
        }
        async fn read(&self, _: u64, _: usize) -> Result<Vec<Event>, StoreError> {
            std::future::pending().await
        }
        async fn query(&self, _: &Query) -> Result<Vec<Event>, StoreError> {
            std::future::pending().await
        }
    }

    fn passed(err: &StoreError) -> (&'static str, bool) {
        let StoreError::Unavailable {
            maybe_written,
            source,
            ..
        } = err
        else {
            panic!("expected Unavailable, got {err:?}");
        };
        let passed = source
            .downcast_ref::<DeadlinePassed>()
            .expect("source is DeadlinePassed");
        (passed.call, *maybe_written)
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_ends_at_the_deadline_and_says_whether_it_wrote() {
        let chain = ChainId::new("c").unwrap();
        let store = DeadlineStore::new(Arc::new(Hung(chain)), Duration::from_secs(3));
        let draft = EventDraft::new(
            "s",
            EventKind::GateRecovered,
            Actor::system("gate"),
            serde_json::json!({"reason": "x"}),
        );
        let started = tokio::time::Instant::now();
        let err = store.append(&[draft]).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(passed(&err), ("append", true));
        assert!(!err.is_retryable());
        assert_eq!(passed(&store.head().await.unwrap_err()), ("head", false));
        assert_eq!(
            passed(&store.read(1, 10).await.unwrap_err()),
            ("read", false)
        );
        let bounded = store.read_bounded(1, 10, 100).await.unwrap_err();
        assert_eq!(passed(&bounded), ("read_bounded", false));
        let query = store.query(&Query::all()).await.unwrap_err();
        assert_eq!(passed(&query), ("query", false));
        assert!(
            err.to_string().contains("did not finish within 3s"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_store_that_answers_in_time_is_unchanged() {
        let chain = ChainId::new("c").unwrap();
        let memory = Arc::new(MemoryStore::new(chain));
        let store = DeadlineStore::new(memory.clone(), Duration::from_secs(3));
        let draft = EventDraft::new(
            "s",
            EventKind::GateRecovered,
            Actor::system("gate"),
            serde_json::json!({"reason": "x"}),
        );
        let event = store.append_one(draft).await.unwrap();
        assert_eq!(store.head().await.unwrap().unwrap().hash, event.hash);
        assert_eq!(store.read(0, 10).await.unwrap(), vec![event.clone()]);
        assert_eq!(memory.read(0, 10).await.unwrap(), vec![event]);
        assert_eq!(store.pages_reach_the_end(), memory.pages_reach_the_end());
        assert_eq!(store.deadline(), Duration::from_secs(3));
        let other = StoreError::Unavailable {
            store: "event",
            maybe_written: false,
            source: "connection reset".into(),
        };
        assert!(!is_deadline(&other), "only a missed deadline is one");
    }
}
