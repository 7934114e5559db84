//! The whole store conformance kit against a real PostgreSQL server, one
//! fresh database per check.

use syndicate_store_postgres::testing::fresh_store;

syndicate_core::conformance_tests!(postgres, {
    match fresh_store(module_path!()).await {
        Some(store) => store,
        None => return,
    }
});

// Group commit over the same backend: every guarantee still holds.
syndicate_core::conformance_tests!(postgres_batching, {
    match fresh_store(module_path!()).await {
        Some(store) => syndicate_store_postgres::BatchingStore::new(store),
        None => return,
    }
});

syndicate_core::conformance_tests!(memory_batching, {
    syndicate_store_postgres::BatchingStore::new(syndicate_core::MemoryStore::new(
        syndicate_core::ChainId::new("conformance").unwrap(),
    ))
});
