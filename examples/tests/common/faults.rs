//! What the fault tests on both stores share: the example policy, a gate
//! with a short store deadline, a deploy that needs a person, running an
//! approved request, and reading the chain's seqs and hashes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, GateError, Refusal, RulePolicy};
use syndicate_core::{Action, Digest, EventStore};

/// The store deadline of the fault tests' gates.
pub(crate) const DEADLINE: Duration = Duration::from_secs(1);

/// The example policy.
pub(crate) fn policy() -> Arc<RulePolicy> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.toml");
    Arc::new(RulePolicy::from_path(path).unwrap())
}

/// A gate on `store` whose store calls end after [`DEADLINE`].
pub(crate) async fn gate_on(store: Arc<dyn EventStore>) -> Result<Gate, GateError> {
    let config = GateConfig {
        store_deadline: Some(DEADLINE),
        ..GateConfig::default()
    };
    Gate::open(store, policy(), config).await
}

/// A deploy of version `1.0.<version>`, which the example policy sends to a
/// person for approval.
pub(crate) fn deploy(version: u32) -> Action {
    Action::new(
        "deploy.release",
        json!({"version": format!("1.0.{version}")}),
    )
    .unwrap()
    .with_target("service:checkout")
    .unwrap()
}

/// Runs an approved request's `deploy(version)` through `Gate::run`; the
/// gate's answer and whether the closure ran.
pub(crate) async fn try_run(
    gate: &Gate,
    request_id: &str,
    version: u32,
) -> (Result<(), GateError>, bool) {
    let ran = AtomicBool::new(false);
    let result = gate
        .run(request_id, &deploy(version), |_| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .await
        .map(|_| ());
    (result, ran.load(Ordering::SeqCst))
}

/// Whether the gate refused because it is degraded.
pub(crate) fn is_degraded(error: &GateError) -> bool {
    matches!(error.refusal(), Some(Refusal::Degraded { .. }))
}

/// Fails unless `result` is a degraded refusal.
pub(crate) fn assert_degraded(result: &Result<(), GateError>) {
    assert!(
        result.as_ref().err().is_some_and(is_degraded),
        "expected a degraded refusal, got {result:?}"
    );
}

/// Every event's seq and hash, in order.
pub(crate) async fn trail(store: &dyn EventStore) -> Vec<(u64, Digest)> {
    let mut out = Vec::new();
    loop {
        let page = store.read(out.len() as u64, 1000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page.iter().map(|e| (e.seq, e.hash)));
    }
}
