//! The conformance kit on `MemoryStore`, directly, through `Arc` and `Box`,
//! and behind the gate's `DeadlineStore`.

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
syndicate_core::conformance_tests!(memory_behind_a_deadline, {
    syndicate_core::deadline::DeadlineStore::new(
        Arc::new(store()),
        std::time::Duration::from_secs(30),
    )
});
