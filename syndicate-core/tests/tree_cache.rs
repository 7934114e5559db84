//! The node cache is not trusted: a tampered cache makes proofs fail
//! verification, and the checkpoint check falls back to verified events.

use async_trait::async_trait;
use serde_json::json;
use syndicate_core::merkle::{Hash, NodeId, verify_inclusion};
use syndicate_core::tree::{VerifiedTree, check_against_checkpoint, event_leaf, inclusion_proof};
use syndicate_core::{
    Actor, ChainId, Event, EventDraft, EventKind, EventStore, EventStoreExt, Head, MemoryStore,
    Query, StoreError,
};

/// A store whose cache returns every node with its first byte flipped.
#[derive(Debug)]
struct TamperedCache(MemoryStore);

#[async_trait]
impl EventStore for TamperedCache {
    fn chain(&self) -> &ChainId {
        self.0.chain()
    }
    async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
        self.0.append(drafts).await
    }
    async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.0.head().await
    }
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.0.read(from_seq, limit).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
        self.0.query(query).await
    }
    async fn put_tree_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        self.0.put_tree_nodes(nodes).await
    }
    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let mut nodes = self.0.tree_nodes(ids).await?;
        for h in nodes.iter_mut().flatten() {
            h[0] ^= 1;
        }
        Ok(nodes)
    }
    async fn tree_leaf_count(&self) -> Result<u64, StoreError> {
        self.0.tree_leaf_count().await
    }
}

#[tokio::test]
async fn a_tampered_cache_fails_proofs_but_never_fakes_a_checkpoint_match() {
    let store = TamperedCache(MemoryStore::new(ChainId::new("c").unwrap()));
    for n in 0..10 {
        store
            .append_one(EventDraft::new(
                "s",
                EventKind::Annotation,
                Actor::human("a"),
                json!({ "n": n }),
            ))
            .await
            .unwrap();
    }
    let mut tree = VerifiedTree::new(store.chain().clone());
    tree.catch_up(&store, None).await.unwrap();
    let root = tree.root();
    let events = store.read(0, 10).await.unwrap();
    let proof = inclusion_proof(&store, 3, 10).await.unwrap();
    assert!(verify_inclusion(3, 10, &event_leaf(&events[3].hash), &proof, &root).is_err());
    // The chain itself is intact: the check recomputes from verified events.
    assert_eq!(
        check_against_checkpoint(&store, 10, &root).await.unwrap(),
        Ok(())
    );
    // And a root that is not the chain's is refused however the cache looks.
    let mut wrong = root;
    wrong[31] ^= 1;
    assert!(
        check_against_checkpoint(&store, 10, &wrong)
            .await
            .unwrap()
            .is_err()
    );
}
