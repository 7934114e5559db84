//! [`BatchingStore`]: coalesces concurrent appends of one process into one
//! transaction (group commit), for stores whose appenders serialize on the
//! chain's head. Works over any [`EventStore`].

use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ChainId, Event, EventDraft, EventStore, Head, Query, StoreError};
use async_trait::async_trait;

/// Wraps a store so that appends arriving while another append of this
/// process is in flight are sealed and committed together, in one call to
/// the inner store's `append`, in arrival order. Each caller still gets
/// exactly its own events, contiguous in the chain.
///
/// When the combined append fails for a reason that belongs to one caller
/// (an invalid draft, a used single-use key) or before its commit, every
/// caller of the group retries alone, so each gets the error its own batch
/// deserves and nothing of a refused batch is written. When the combined
/// commit may have gone through ([`StoreError::Unavailable`] with
/// `maybe_written`), every caller of the group gets that error.
///
/// Reads go straight to the inner store.
#[derive(Debug)]
pub struct BatchingStore<S> {
    inner: S,
    queue: Mutex<Vec<Pending>>,
    flush: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Pending {
    drafts: Vec<EventDraft>,
    slot: Arc<Mutex<Option<Outcome>>>,
}

#[derive(Debug)]
enum Outcome {
    Done(Vec<Event>),
    Alone,
    Unknown(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fills the slots of a taken group with `Unknown` if the flush is dropped
/// (cancelled) before it filled them.
struct FillOnDrop<'a>(&'a [Pending]);

impl Drop for FillOnDrop<'_> {
    fn drop(&mut self) {
        for pending in self.0 {
            let mut slot = lock(&pending.slot);
            if slot.is_none() {
                *slot = Some(Outcome::Unknown(
                    "the combined append was cancelled; it may have been written".into(),
                ));
            }
        }
    }
}

impl<S: EventStore> BatchingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        BatchingStore {
            inner,
            queue: Mutex::new(Vec::new()),
            flush: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Appends a taken group of several callers' batches as one.
    async fn flush_group(&self, group: &[Pending]) {
        let _fill = FillOnDrop(group);
        let all: Vec<EventDraft> = group
            .iter()
            .flat_map(|p| p.drafts.iter().cloned())
            .collect();
        match self.inner.append(&all).await {
            Ok(events) if events.len() == all.len() => {
                let mut events = events.into_iter();
                for pending in group {
                    let mine: Vec<Event> = events.by_ref().take(pending.drafts.len()).collect();
                    *lock(&pending.slot) = Some(Outcome::Done(mine));
                }
            }
            Err(
                e @ StoreError::Unavailable {
                    maybe_written: true,
                    ..
                },
            ) => {
                let message = e.to_string();
                for pending in group {
                    *lock(&pending.slot) = Some(Outcome::Unknown(message.clone()));
                }
            }
            _ => {
                for pending in group {
                    *lock(&pending.slot) = Some(Outcome::Alone);
                }
            }
        }
    }
}

#[async_trait]
impl<S: EventStore> EventStore for BatchingStore<S> {
    fn chain(&self) -> &ChainId {
        self.inner.chain()
    }

    fn pages_reach_the_end(&self) -> bool {
        self.inner.pages_reach_the_end()
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        if drafts.is_empty() {
            return self.inner.append(drafts).await;
        }
        let slot = Arc::new(Mutex::new(None));
        lock(&self.queue).push(Pending {
            drafts: drafts.to_vec(),
            slot: slot.clone(),
        });
        let outcome = {
            let _turn = self.flush.lock().await;
            let filled = lock(&slot).take();
            match filled {
                Some(outcome) => outcome,
                None => {
                    // Our batch is still queued: lead a flush of everything
                    // queued, ours included.
                    let group = std::mem::take(&mut *lock(&self.queue));
                    if group.len() <= 1 {
                        return self.inner.append(drafts).await;
                    }
                    self.flush_group(&group).await;
                    lock(&slot).take().unwrap_or(Outcome::Alone)
                }
            }
        };
        match outcome {
            Outcome::Done(events) => Ok(events),
            Outcome::Alone => self.inner.append(drafts).await,
            Outcome::Unknown(message) => Err(StoreError::Unavailable {
                store: "batching",
                maybe_written: true,
                source: message.into(),
            }),
        }
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.inner.head().await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.inner.read(from_seq, limit).await
    }

    async fn read_bounded(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.read_bounded(from_seq, limit, max_bytes).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.inner.query(query).await
    }

    async fn put_tree_nodes(
        &self,
        nodes: &[(crate::merkle::NodeId, crate::merkle::Hash)],
    ) -> Result<(), StoreError> {
        self.inner.put_tree_nodes(nodes).await
    }

    async fn tree_nodes(
        &self,
        ids: &[crate::merkle::NodeId],
    ) -> Result<Vec<Option<crate::merkle::Hash>>, StoreError> {
        self.inner.tree_nodes(ids).await
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        self.inner.tree_leaf_count().await
    }
}
