//! An in-memory [`EventStore`], for tests, examples and short-lived gates.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::event::{ChainId, Event, EventDraft};
use crate::merkle::{Hash, NodeId};
use crate::seal::{Head, seal};
use crate::store::{EventStore, Order, Query, StoreError};
use crate::timestamp::Timestamp;

/// An [`EventStore`] that keeps its chain in memory. Nothing survives the
/// process; use it for tests and demos.
///
/// ```
/// use serde_json::json;
/// use syndicate_core::{Actor, ChainId, EventDraft, EventKind, EventStore, EventStoreExt, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new(ChainId::new("demo")?);
/// let draft = EventDraft::new("sess-1", EventKind::Annotation, Actor::human("bob@example.com"),
///     json!({"note": "hello"}));
/// let event = store.append_one(draft).await?;
/// assert_eq!(event.seq, 0);
/// assert!(store.verify().await?.is_intact());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    chain: ChainId,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    events: Vec<Event>,
    used_once: HashSet<String>,
    tree: HashMap<NodeId, Hash>,
    tree_leaves: u64,
}

impl MemoryStore {
    /// An empty chain.
    pub fn new(chain: ChainId) -> Self {
        MemoryStore {
            chain,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-appended batch:
        // events are pushed only after the whole batch sealed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn head_of(events: &[Event]) -> Result<Option<Head>, StoreError> {
    let Some(last) = events.last() else {
        return Ok(None);
    };
    let at: Timestamp = last.columns.at.parse().map_err(|_| StoreError::Corrupt {
        store: "memory",
        seq: last.seq,
        reason: format!("at column {:?} is not a timestamp", last.columns.at),
    })?;
    Ok(Some(Head {
        seq: last.seq,
        hash: last.hash,
        at,
    }))
}

#[async_trait]
impl EventStore for MemoryStore {
    fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// Every read returns all the events asked for that exist.
    fn pages_reach_the_end(&self) -> bool {
        true
    }

    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        let mut state = self.lock();
        if let Some(key) = drafts
            .iter()
            .filter_map(|d| d.once.as_ref())
            .find(|key| state.used_once.contains(*key))
        {
            return Err(StoreError::AlreadyUsed { key: key.clone() });
        }
        let head = head_of(&state.events)?;
        let sealed = seal(&self.chain, head.as_ref(), drafts, Timestamp::now())?;
        for event in &sealed {
            if let Some(key) = &event.columns.once {
                state.used_once.insert(key.clone());
            }
        }
        state.events.extend(sealed.iter().cloned());
        Ok(sealed)
    }

    async fn head(&self) -> Result<Option<Head>, StoreError> {
        head_of(&self.lock().events)
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let state = self.lock();
        let start = usize::try_from(from_seq)
            .unwrap_or(usize::MAX)
            .min(state.events.len());
        Ok(state.events[start..].iter().take(limit).cloned().collect())
    }

    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (id, hash) in nodes {
            state.tree.entry(*id).or_insert(*hash);
            if id.level == 0 {
                state.tree_leaves = state.tree_leaves.max(id.index + 1);
            }
        }
        Ok(())
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let state = self.lock();
        Ok(ids.iter().map(|id| state.tree.get(id).copied()).collect())
    }

    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        Ok(self.lock().tree_leaves)
    }

    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        let state = self.lock();
        let matching = |e: &&Event| query.matches(e);
        Ok(match query.order {
            Order::Ascending => state
                .events
                .iter()
                .filter(matching)
                .take(query.limit)
                .cloned()
                .collect(),
            Order::Descending => state
                .events
                .iter()
                .rev()
                .filter(matching)
                .take(query.limit)
                .cloned()
                .collect(),
        })
    }
}
