//! The store conformance kit, run on a fresh SQLite file per check.

use syndicate_core::ChainId;
use syndicate_store_sqlite::{Durability, SqliteOptions, SqliteStore};

async fn fresh(durability: Durability) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(
        dir.path().join("conformance.db"),
        ChainId::new("conformance").expect("chain id"),
        SqliteOptions::default().with_durability(durability),
    )
    .await
    .expect("open a fresh store");
    (dir, store)
}

/// Keeps the temporary folder alive as long as the store.
#[derive(Debug)]
struct InTempDir(#[allow(dead_code)] tempfile::TempDir, SqliteStore);

#[async_trait::async_trait]
impl syndicate_core::EventStore for InTempDir {
    fn chain(&self) -> &ChainId {
        self.1.chain()
    }
    async fn append(
        &self,
        drafts: &[syndicate_core::EventDraft],
    ) -> Result<Vec<syndicate_core::Event>, syndicate_core::StoreError> {
        self.1.append(drafts).await
    }
    async fn head(&self) -> Result<Option<syndicate_core::Head>, syndicate_core::StoreError> {
        self.1.head().await
    }
    async fn read(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<syndicate_core::Event>, syndicate_core::StoreError> {
        self.1.read(from_seq, limit).await
    }
    async fn query(
        &self,
        query: &syndicate_core::Query,
    ) -> Result<Vec<syndicate_core::Event>, syndicate_core::StoreError> {
        self.1.query(query).await
    }
    async fn put_tree_nodes(
        &self,
        nodes: &[(syndicate_core::merkle::NodeId, syndicate_core::merkle::Hash)],
    ) -> Result<(), syndicate_core::StoreError> {
        self.1.put_tree_nodes(nodes).await
    }
    async fn tree_nodes(
        &self,
        ids: &[syndicate_core::merkle::NodeId],
    ) -> Result<Vec<Option<syndicate_core::merkle::Hash>>, syndicate_core::StoreError> {
        self.1.tree_nodes(ids).await
    }
    async fn tree_leaf_count(&self) -> Result<u64, syndicate_core::StoreError> {
        self.1.tree_leaf_count().await
    }
}

syndicate_core::conformance_tests!(full, {
    let (dir, store) = fresh(Durability::Full).await;
    InTempDir(dir, store)
});

syndicate_core::conformance_tests!(normal, {
    let (dir, store) = fresh(Durability::Normal).await;
    InTempDir(dir, store)
});
