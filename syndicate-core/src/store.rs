//! The [`EventStore`] trait: what a backend must do, and nothing more.

use std::error::Error as StdError;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{ChainId, Event, EventDraft, EventKind};
use crate::merkle::{Hash, NodeId};
use crate::seal::{Head, SealError};
use crate::timestamp::Timestamp;
use crate::verify::{Report, verify_store};

/// Boxed error from a backend's driver.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What can go wrong in a store.
///
/// Backends build these variants themselves; the conformance kit checks that
/// each method returns the variant its documentation names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A draft could not be sealed; nothing of the batch was written.
    #[error("event refused, nothing written: {0}")]
    InvalidDraft(#[from] SealError),
    /// A single-use key was already used on this chain; nothing of the batch
    /// was written.
    #[error("single-use key {key:?} was already used on this chain; nothing written")]
    AlreadyUsed {
        /// The key.
        key: String,
    },
    /// The store could not be reached or written right now (connection lost,
    /// server restarting, database locked past the busy timeout, disk full).
    /// Whether the batch was written is unknown only if `maybe_written`.
    #[error("{store} store unavailable: {source}")]
    Unavailable {
        /// The backend, e.g. `sqlite`.
        store: &'static str,
        /// True when the failure came after the commit was sent, so the
        /// batch may have been written.
        maybe_written: bool,
        /// The driver's error.
        source: BoxError,
    },
    /// A stored row cannot be read back as an event (a tampered or damaged
    /// column). The verifier reports it as a failure at that seq.
    #[error("{store} store: row {seq} is corrupt: {reason}")]
    Corrupt {
        /// The backend.
        store: &'static str,
        /// The row's seq.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's schema is newer than this library or not ours.
    #[error("{store} store: {reason}")]
    Incompatible {
        /// The backend.
        store: &'static str,
        /// What was found and what to do.
        reason: String,
    },
    /// Any other backend failure.
    #[error("{store} store: {source}")]
    Other {
        /// The backend.
        store: &'static str,
        /// The driver's error.
        source: BoxError,
    },
}

impl StoreError {
    /// True when the same call may be made again unchanged and succeed:
    /// the store was unavailable *before* anything could have been written.
    /// False when the batch may have been written (`maybe_written`): a blind
    /// retry could record it twice, so retry only drafts that carry a
    /// single-use key (the store then refuses a duplicate with
    /// [`StoreError::AlreadyUsed`]) or read the chain first. A refused draft
    /// or a used key never becomes valid.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable {
                maybe_written: false,
                ..
            }
        )
    }

    /// True when the failure came after the batch may have been committed.
    pub fn may_have_written(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable {
                maybe_written: true,
                ..
            }
        )
    }
}

/// Result order of a [`Query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first (increasing seq).
    #[default]
    Ascending,
    /// Newest first (decreasing seq).
    Descending,
}

/// Filters for [`EventStore::query`]. Every filter that is set must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Events of this session.
    pub session: Option<String>,
    /// Events of this kind.
    pub kind: Option<EventKind>,
    /// Events whose `actor.id` is this.
    pub actor: Option<String>,
    /// Events whose `body.request_id` is this.
    pub request_id: Option<String>,
    /// Events sealed at or after this instant.
    pub since: Option<Timestamp>,
    /// Events sealed strictly before this instant.
    pub until: Option<Timestamp>,
    /// Events with seq strictly greater than this (for paging forwards).
    pub after_seq: Option<u64>,
    /// Events with seq strictly less than this (for paging backwards).
    pub before_seq: Option<u64>,
    /// Result order.
    pub order: Order,
    /// At most this many events.
    pub limit: usize,
}

impl Query {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 1000;

    /// A query that matches every event, oldest first, one default page.
    pub fn all() -> Self {
        Query {
            session: None,
            kind: None,
            actor: None,
            request_id: None,
            since: None,
            until: None,
            after_seq: None,
            before_seq: None,
            order: Order::Ascending,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Events about one request.
    pub fn request(request_id: impl Into<String>) -> Self {
        Query {
            request_id: Some(request_id.into()),
            ..Query::all()
        }
    }

    /// Whether an event's columns and seq satisfy the filters (limit and
    /// order aside). Stores that filter in memory use this.
    pub fn matches(&self, event: &Event) -> bool {
        let c = &event.columns;
        self.session.as_ref().is_none_or(|s| *s == c.session)
            && self.kind.is_none_or(|k| k.as_str() == c.kind)
            && self.actor.as_ref().is_none_or(|a| *a == c.actor)
            && self
                .request_id
                .as_ref()
                .is_none_or(|r| Some(r) == c.request_id.as_ref())
            && self.since.is_none_or(|t| c.at >= t.to_string())
            && self.until.is_none_or(|t| c.at < t.to_string())
            && self.after_seq.is_none_or(|s| event.seq > s)
            && self.before_seq.is_none_or(|s| event.seq < s)
    }
}

impl Default for Query {
    fn default() -> Self {
        Query::all()
    }
}

/// An append-only, hash-chained event log for one chain.
///
/// # Contract
/// - [`append`](EventStore::append) seals a batch with [`seal`](crate::seal())
///   against the current head *inside* one atomic write, so the chain stays
///   linear (no forks, no gaps) even when many processes append at once, and a
///   batch is written whole or not at all.
/// - A single-use key (`EventDraft::once`) is accepted at most once per chain,
///   atomically with the append.
/// - Reads return exactly what was written: the same seq, hash, canonical
///   bytes and columns.
///
/// A backend implements these five methods; conveniences live on
/// [`EventStoreExt`]. Check an implementation with the conformance kit
/// (feature `conformance`).
///
/// Cancellation: dropping an `append` future does not undo a write that the
/// backend already started; the batch may still be committed.
#[async_trait]
pub trait EventStore: Send + Sync + Debug {
    /// The chain this store reads and writes.
    fn chain(&self) -> &ChainId;

    /// True when this store's reads never stop short: a page with fewer
    /// events than asked for (and fewer canonical bytes than a bounded
    /// read's `max_bytes`) means the chain ended there when it was read.
    /// Scans then skip the read that would only confirm the end. The
    /// default, `false`, is always safe; the conformance kit checks a
    /// store that says `true`.
    fn pages_reach_the_end(&self) -> bool {
        false
    }

    /// Seals and appends a batch atomically at the head of the chain and
    /// returns the sealed events.
    ///
    /// # Errors
    /// - [`StoreError::InvalidDraft`] when a draft cannot be sealed;
    /// - [`StoreError::AlreadyUsed`] when a single-use key was used before;
    /// - [`StoreError::Unavailable`] when the store cannot be written now.
    ///
    /// In each case nothing of the batch was written (for `Unavailable`,
    /// unless `maybe_written`).
    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError>;

    /// The last event of the chain, or `None` when it is empty.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] when the head
    /// row cannot be read.
    async fn head(&self) -> Result<Option<Head>, StoreError>;

    /// Up to `limit` events with seq ≥ `from_seq`, in increasing seq order,
    /// exactly as stored (no checks: the verifier does those).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] naming the seq
    /// of a row that cannot be represented as an [`Event`].
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// As [`read`](EventStore::read), but stops once the events read hold
    /// `max_bytes` of canonical bytes or more (always at least one event),
    /// so a page of large events stays small in memory. Scans read through
    /// this. The default reads `limit` events and drops the excess; a
    /// backend whose events can be large overrides it to stop reading rows
    /// early.
    ///
    /// # Errors
    /// As [`read`](EventStore::read).
    async fn read_bounded(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut events = self.read(from_seq, limit).await?;
        events.truncate(bounded_count(&events, max_bytes));
        Ok(events)
    }

    /// Events matching a query, in the query's order, at most `query.limit`.
    ///
    /// # Errors
    /// As [`read`](EventStore::read).
    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError>;

    /// Keeps hashes of complete Merkle subtrees, computed by
    /// [`crate::tree`] (a backend stores the 32 bytes as given and never
    /// hashes). Writes the batch atomically; a node already kept is left as
    /// it is. Batches arrive in leaf order, each holding every node that
    /// its leaves complete.
    ///
    /// The default keeps nothing: proofs then fall back to reading events.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written now.
    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let _ = nodes;
        Ok(())
    }

    /// The kept hashes of these nodes, in the same order, `None` for a node
    /// not kept.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], or [`StoreError::Corrupt`] when a kept
    /// value is not 32 bytes.
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        Ok(vec![None; ids.len()])
    }

    /// One more than the highest leaf (level 0) index kept, or 0.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

// `dyn EventStore` must keep working.
const _: Option<&dyn EventStore> = None;

macro_rules! forward_store {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: EventStore + ?Sized> EventStore for $wrapper {
            fn chain(&self) -> &ChainId {
                (**self).chain()
            }
            fn pages_reach_the_end(&self) -> bool {
                (**self).pages_reach_the_end()
            }
            async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
                (**self).append(drafts).await
            }
            async fn head(&self) -> Result<Option<Head>, StoreError> {
                (**self).head().await
            }
            async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
                (**self).read(from_seq, limit).await
            }
            async fn read_bounded(
                &self,
                from_seq: u64,
                limit: usize,
                max_bytes: usize,
            ) -> Result<Vec<Event>, StoreError> {
                (**self).read_bounded(from_seq, limit, max_bytes).await
            }
            async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
                (**self).query(query).await
            }
            async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
                (**self).put_tree_nodes(nodes).await
            }
            async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
                (**self).tree_nodes(ids).await
            }
            async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
                (**self).tree_leaf_count().await
            }
        }
    };
}

forward_store!(Arc<T>);
forward_store!(Box<T>);
forward_store!(&T);

/// How many of `events` a bounded read keeps: up to and including the
/// first whose canonical bytes bring the total to `max_bytes` or more (at
/// least one).
pub fn bounded_count(events: &[Event], max_bytes: usize) -> usize {
    let mut total = 0usize;
    for (i, event) in events.iter().enumerate() {
        total = total.saturating_add(event.canonical.len());
        if total >= max_bytes {
            return i + 1;
        }
    }
    events.len()
}

/// Conveniences over any [`EventStore`]; implemented for every store, never
/// implemented by hand.
#[async_trait]
pub trait EventStoreExt: EventStore {
    /// Appends one draft.
    ///
    /// # Errors
    /// As [`EventStore::append`].
    async fn append_one(&self, draft: EventDraft) -> Result<Event, StoreError> {
        let mut events = self.append(std::slice::from_ref(&draft)).await?;
        events.pop().ok_or_else(|| StoreError::Other {
            store: "unknown",
            source: "append of one draft returned no event".into(),
        })
    }

    /// Verifies the whole chain from genesis, streaming pages of
    /// [`VERIFY_PAGE`](crate::verify::VERIFY_PAGE) events.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read; a broken
    /// chain is not an error but a [`Report`] with a violation.
    async fn verify(&self) -> Result<Report, StoreError> {
        verify_store(self, None).await
    }
}

impl<T: EventStore + ?Sized> EventStoreExt for T {}
