//! The conformance kit on `MemoryStore`, directly and through `Arc` and `Box`.

use std::sync::Arc;

use syndicate_core::{ChainId, EventStore, MemoryStore};

fn store() -> MemoryStore {
    MemoryStore::new(ChainId::new("conformance").unwrap())
}

syndicate_core::conformance_tests!(memory, { store() });
syndicate_core::conformance_tests!(memory_arc, { Arc::new(store()) });
syndicate_core::conformance_tests!(memory_box_dyn, {
    let boxed: Box<dyn EventStore> = Box::new(store());
    boxed
});
