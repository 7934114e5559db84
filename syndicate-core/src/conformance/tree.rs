//! Conformance checks for the Merkle node cache a store keeps
//! ([`EventStore::put_tree_nodes`], [`EventStore::tree_nodes`],
//! [`EventStore::tree_leaf_count`]).

use serde_json::json;

use crate::event::{Actor, EventDraft, EventKind};
use crate::merkle::{self, NodeId, leaf_hash, verify_consistency, verify_inclusion};
use crate::store::EventStore;
use crate::tree::{
    VerifiedTree, cached_root, consistency_proof, event_leaf, inclusion_proof, sync_nodes,
};

fn note(n: usize) -> EventDraft {
    EventDraft::new(
        "tree",
        EventKind::Annotation,
        Actor::human("tester"),
        json!({ "note": n }),
    )
}

/// Nodes are kept byte for byte, a kept node is never replaced, unknown
/// nodes read as `None`, and the leaf count follows level-0 nodes.
pub async fn tree_nodes_are_kept_as_written(store: &dyn EventStore) {
    assert_eq!(store.tree_leaf_count().await.unwrap(), 0, "empty cache");
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let ab = merkle::node_hash(&a, &b);
    let ids = [NodeId::new(0, 0), NodeId::new(0, 1), NodeId::new(1, 0)];
    store
        .put_tree_nodes(&[(ids[0], a), (ids[1], b), (ids[2], ab)])
        .await
        .expect("put_tree_nodes must succeed");
    assert_eq!(store.tree_leaf_count().await.unwrap(), 2);
    let got = store
        .tree_nodes(&[
            ids[2],
            NodeId::new(0, 2),
            ids[0],
            ids[1],
            NodeId::new(40, 0),
        ])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(ab), None, Some(a), Some(b), None]);
    // Writing a kept node again leaves the first value.
    store
        .put_tree_nodes(&[(ids[0], [9; 32])])
        .await
        .expect("a repeated node is not an error");
    assert_eq!(store.tree_nodes(&ids[..1]).await.unwrap(), vec![Some(a)]);
    store.put_tree_nodes(&[]).await.unwrap();
    assert_eq!(store.tree_leaf_count().await.unwrap(), 2);
}

/// After appends, syncing the cache covers exactly the chain, cached roots
/// equal roots from verified events, and every proof from the cache
/// verifies against them.
pub async fn tree_proofs_verify_after_appends(store: &dyn EventStore) {
    let mut sizes = Vec::new();
    let mut tree = VerifiedTree::new(store.chain().clone());
    let mut roots = vec![merkle::EMPTY_ROOT];
    for batch in [1usize, 2, 5, 1, 9, 3, 13] {
        let drafts: Vec<EventDraft> = (0..batch).map(note).collect();
        store.append(&drafts).await.expect("append must succeed");
        let size = sync_nodes(store).await.expect("sync must succeed");
        let head = store.head().await.unwrap().unwrap();
        assert_eq!(size, head.seq + 1, "the cache covers the chain");
        assert_eq!(store.tree_leaf_count().await.unwrap(), size);
        sizes.push(size);
    }
    let n = *sizes.last().unwrap();
    let events = store.read(0, n as usize).await.unwrap();
    let leaves: Vec<_> = events.iter().map(|e| event_leaf(&e.hash)).collect();
    for size in 1..=n {
        tree.catch_up(store, Some(size)).await.unwrap();
        roots.push(tree.root());
        assert_eq!(tree.root(), merkle::root(&leaves[..size as usize]));
        assert_eq!(cached_root(store, size).await.unwrap(), tree.root());
    }
    for size in [1, 2, 3, 8, 17, n] {
        for index in 0..size {
            let proof = inclusion_proof(store, index, size).await.unwrap();
            verify_inclusion(
                index,
                size,
                &leaves[index as usize],
                &proof,
                &roots[size as usize],
            )
            .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
        }
    }
    for &old in &sizes {
        for &new in sizes.iter().filter(|&&s| s >= old) {
            let proof = consistency_proof(store, old, new).await.unwrap();
            verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof)
                .unwrap_or_else(|e| panic!("consistency {old} -> {new}: {e}"));
        }
    }
}
