//! Attacks on the gate through the storage, written once and run by every
//! backend: a [`Fixture`] opens several handles on one storage (so races go
//! through the backend's real locks) and edits its rows behind every
//! handle's back.
//!
//! ```ignore
//! syndicate_core::attack_tests!(sqlite, { MyFixture::new().await });
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::action::Action;
use crate::event::{Actor, Event, EventKind};
use crate::gate::{Gate, GateConfig, GateError, ProposalContext, Refusal, RulePolicy};
use crate::store::{EventStore, StoreError};

/// A column a store keeps beside the hashed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Column {
    /// `kind`.
    Kind,
    /// `request_id`.
    RequestId,
    /// `once`.
    Once,
    /// `session`.
    Session,
    /// `actor`.
    Actor,
    /// `at`.
    At,
}

impl Column {
    /// The column's name in the format's column table.
    pub fn name(&self) -> &'static str {
        match self {
            Column::Kind => "kind",
            Column::RequestId => "request_id",
            Column::Once => "once",
            Column::Session => "session",
            Column::Actor => "actor",
            Column::At => "at",
        }
    }
}

/// An edit made to the storage behind the store's back, as someone with
/// write access to the file or database would.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawEdit {
    /// Sets a column of the row at `seq` (to SQL `NULL` for `None`),
    /// leaving its bytes and hash alone.
    SetColumn {
        /// The row.
        seq: u64,
        /// The column.
        column: Column,
        /// The new value.
        value: Option<String>,
    },
    /// Deletes the row at `seq`.
    DeleteRow {
        /// The row.
        seq: u64,
    },
    /// Adds a schema object the store did not create (an index on the
    /// events table).
    AddSchemaObject,
    /// Replaces the stored bytes and hash of the row at `seq`, leaving its
    /// other columns alone.
    SetBytes {
        /// The row.
        seq: u64,
        /// The new `canonical` bytes.
        canonical: Vec<u8>,
        /// The new `hash` column, in its text form.
        hash: String,
    },
    /// Exchanges the `seq` values of two rows.
    SwapSeqs {
        /// One row.
        a: u64,
        /// The other row.
        b: u64,
    },
    /// Moves every row at or after `event.seq` up by one and inserts this
    /// event's row (bytes, hash and columns as given) at `event.seq`.
    InsertRow {
        /// The row to insert.
        event: Event,
    },
}

/// One storage that several handles can open, and that can be edited raw.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Opens a new handle (its own connection or pool) on the storage.
    ///
    /// # Errors
    /// What the store's open returns (a foreign schema object, say).
    async fn open(&self) -> Result<Arc<dyn EventStore>, StoreError>;

    /// Applies a raw edit to the storage.
    async fn tamper(&self, edit: RawEdit);
}

/// The names of the attack checks, in the order the macro runs them.
pub const ATTACKS: &[&str] = &[
    "edited_columns_never_run_a_request_twice",
    "edited_columns_never_run_after_a_revocation",
    "edited_columns_never_move_an_approval",
    "hostile_input_is_refused_without_degrading",
    "revocation_racing_a_start_loses_cleanly",
    "foreign_schema_object_is_refused_on_open",
    "chain_cut_short_under_a_running_gate_degrades_it",
    "chain_cut_and_written_again_under_a_running_gate_degrades_it",
    "tamper_flipped_byte_fails_the_hash",
    "tamper_edited_columns_fail_the_column_check",
    "tamper_deleted_row_fails_the_sequence",
    "tamper_swapped_rows_fail_the_sequence",
    "tamper_inserted_row_fails_after_the_forgery",
    "tamper_rewritten_event_fails_the_next_link",
    "tamper_non_canonical_bytes_fail_the_format",
];

/// Expands to one `#[tokio::test]` per attack check and per case of the
/// [tamper matrix](super::tamper), in a module named
/// `$module`; `$make` is a block evaluated in each test to build a fresh
/// [`Fixture`] (it may `return` early to skip).
#[macro_export]
macro_rules! attack_tests {
    ($module:ident, $make:block) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__attack_test!(
                $make,
                edited_columns_never_run_a_request_twice,
                edited_columns_never_run_after_a_revocation,
                edited_columns_never_move_an_approval,
                hostile_input_is_refused_without_degrading,
                revocation_racing_a_start_loses_cleanly,
                foreign_schema_object_is_refused_on_open,
                chain_cut_short_under_a_running_gate_degrades_it,
                chain_cut_and_written_again_under_a_running_gate_degrades_it
            );
            $crate::__tamper_test!(
                $make,
                tamper_flipped_byte_fails_the_hash,
                tamper_edited_columns_fail_the_column_check,
                tamper_deleted_row_fails_the_sequence,
                tamper_swapped_rows_fail_the_sequence,
                tamper_inserted_row_fails_after_the_forgery,
                tamper_rewritten_event_fails_the_next_link,
                tamper_non_canonical_bytes_fail_the_format
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __attack_test {
    ($make:block, $($check:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make;
                $crate::conformance::attacks::$check(&fixture).await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tamper_test {
    ($make:block, $($check:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make;
                $crate::conformance::tamper::$check(&fixture).await;
            }
        )*
    };
}

const POLICY: &str = r#"
id = "attacks"
version = "1"
[[rules]]
id = "deploys"
tool = "deploy"
risk = "high"
decision = "human"
approval_ttl_seconds = 3600
[[rules]]
id = "reads"
tool = "read"
risk = "low"
decision = "auto_approve"
"#;

async fn gate(store: Arc<dyn EventStore>) -> Gate {
    let policy = Arc::new(RulePolicy::from_toml(POLICY).expect("the attack policy parses"));
    Gate::open(store, policy, GateConfig::default())
        .await
        .expect("a gate opens")
}

fn deploy(n: u32) -> Action {
    Action::new("deploy", json!({ "version": n })).expect("an action")
}

fn bot() -> Actor {
    Actor::agent("deploy-bot")
}

fn bob() -> Actor {
    Actor::human("bob@example.com")
}

/// Proposes `deploy(n)` and has bob approve it; returns the request id.
async fn approved(gate: &Gate, n: u32) -> String {
    let p = gate
        .propose("s", &bot(), &deploy(n), &ProposalContext::default())
        .await
        .expect("propose");
    gate.approve(&p.request_id, &bob(), &p.digest())
        .await
        .expect("approve");
    p.request_id
}

async fn events_of(store: &dyn EventStore, request_id: &str, kind: EventKind) -> Vec<Event> {
    let mut query = crate::store::Query::request(request_id);
    query.kind = Some(kind);
    store.query(&query).await.expect("query")
}

/// The gate must not grant: a refusal other than a permit, degraded or not.
fn assert_no_permit(what: &str, result: &Result<crate::gate::Permit, GateError>) {
    assert!(
        matches!(result, Err(GateError::Refused { .. })),
        "{what}: expected a refusal, got {result:?}"
    );
}

/// Both the gate that watched the edit happen and a gate opened after it
/// (on another handle) refuse.
async fn neither_gate_grants(
    fixture: &dyn Fixture,
    watching: &Gate,
    request_id: &str,
    action: &Action,
    what: &str,
) {
    let result = watching.authorize(request_id, action).await;
    assert_no_permit(&format!("{what} (gate open during the edit)"), &result);
    let fresh = gate(fixture.open().await.expect("another handle opens")).await;
    let result = fresh.authorize(request_id, action).await;
    assert_no_permit(&format!("{what} (gate opened after the edit)"), &result);
}

/// A completed request's start and completion rows have their `kind`,
/// `request_id` and `once` columns rewritten (no hash touched): no gate runs
/// it again.
pub async fn edited_columns_never_run_a_request_twice(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let watching = gate(store.clone()).await;
    let id = approved(&watching, 1).await;
    let permit = watching.authorize(&id, &deploy(1)).await.expect("permit");
    watching
        .complete(permit, crate::gate::Outcome::succeeded())
        .await
        .expect("complete");
    for kind in [EventKind::ExecutionStarted, EventKind::ExecutionCompleted] {
        for event in events_of(store.as_ref(), &id, kind).await {
            for (column, value) in [
                (Column::Once, Some(format!("moved:{}", event.seq))),
                (Column::RequestId, Some("req-elsewhere".to_owned())),
                (Column::Kind, Some("annotation".to_owned())),
            ] {
                fixture
                    .tamper(RawEdit::SetColumn {
                        seq: event.seq,
                        column,
                        value,
                    })
                    .await;
            }
        }
    }
    neither_gate_grants(fixture, &watching, &id, &deploy(1), "a second run").await;
}

/// An approved request is revoked, then the denial's `kind` and `once`
/// columns are rewritten: no gate runs it.
pub async fn edited_columns_never_run_after_a_revocation(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let watching = gate(store.clone()).await;
    let id = approved(&watching, 2).await;
    let denial = watching.deny(&id, &bob(), "revoked").await.expect("deny");
    for (column, value) in [
        (Column::Once, None),
        (Column::Kind, Some("annotation".to_owned())),
        (Column::RequestId, None),
    ] {
        fixture
            .tamper(RawEdit::SetColumn {
                seq: denial.seq,
                column,
                value,
            })
            .await;
    }
    neither_gate_grants(
        fixture,
        &watching,
        &id,
        &deploy(2),
        "a run after revocation",
    )
    .await;
}

/// Bob's approval of one request has its `request_id` column moved to
/// another request of the same action: the other request stays unapproved.
pub async fn edited_columns_never_move_an_approval(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let watching = gate(store.clone()).await;
    let first = approved(&watching, 3).await;
    let second = watching
        .propose("s", &bot(), &deploy(3), &ProposalContext::default())
        .await
        .expect("propose")
        .request_id;
    for approval in events_of(store.as_ref(), &first, EventKind::ActionApproved).await {
        fixture
            .tamper(RawEdit::SetColumn {
                seq: approval.seq,
                column: Column::RequestId,
                value: Some(second.clone()),
            })
            .await;
    }
    neither_gate_grants(fixture, &watching, &second, &deploy(3), "a moved approval").await;
}

/// Ids, sessions and actions an agent chooses get a refusal for that call;
/// neither this gate nor another gate on the chain degrades, and honest work
/// goes on.
pub async fn hostile_input_is_refused_without_degrading(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let g = gate(store.clone()).await;
    let other = gate(fixture.open().await.expect("open")).await;
    let huge = "x".repeat(1 << 20);
    let ctx = ProposalContext::default();
    let read = Action::new("read", json!({"path": "/etc/motd"})).expect("action");
    for session in ["s\0x", "s\u{1b}[31m", huge.as_str(), ""] {
        let result = g.propose(session, &bot(), &read, &ctx).await;
        assert!(
            matches!(result, Err(GateError::Input { .. })),
            "session {:?}: {result:?}",
            session.get(..8)
        );
    }
    for actor in [
        "bot\0",
        "bot\u{202e}",
        huge.as_str(),
        "gate",
        "policy:reads",
    ] {
        let result = g.propose("s", &Actor::agent(actor), &read, &ctx).await;
        assert!(
            matches!(result, Err(GateError::Input { .. })),
            "actor {:?}: {result:?}",
            actor.get(..8)
        );
    }
    // Actions too large or too deep never become actions at all.
    let deep = (0..300).fold(json!(1), |v, _| json!([v]));
    assert!(Action::new("read", json!({ "x": deep })).is_err());
    assert!(Action::new("read", json!({ "blob": "y".repeat(5 << 20) })).is_err());
    for id in ["req-\0", huge.as_str(), "req-\u{7}"] {
        let result = g.authorize(id, &read).await;
        assert!(
            matches!(
                result.as_ref().err().and_then(GateError::refusal),
                Some(Refusal::UnknownRequest)
            ),
            "request id {:?}: {result:?}",
            id.get(..8)
        );
        let result = g.approve(id, &bob(), &read.digest()).await;
        assert!(
            matches!(
                result.as_ref().err().and_then(GateError::refusal),
                Some(Refusal::UnknownRequest)
            ),
            "approve {:?}: {result:?}",
            id.get(..8)
        );
    }
    let pending = g
        .propose("s", &bot(), &deploy(4), &ctx)
        .await
        .expect("propose");
    let id = pending.request_id.clone();
    for approver in ["bob\0", "b\u{200b}ob", "policy:deploys", "Gate"] {
        let result = g
            .approve(&id, &Actor::human(approver), &deploy(4).digest())
            .await;
        assert!(
            matches!(
                result.as_ref().err().and_then(GateError::refusal),
                Some(Refusal::InvalidIdentity { .. })
            ),
            "approver {approver:?}: {result:?}"
        );
    }
    g.approve(&id, &bob(), &pending.digest())
        .await
        .expect("bob approves");
    assert!(g.degraded().is_none(), "{:?}", g.degraded());
    let p = other
        .propose("s", &bot(), &read, &ctx)
        .await
        .expect("honest work goes on");
    other
        .authorize(&p.request_id, &read)
        .await
        .expect("honest work runs");
    assert!(other.degraded().is_none(), "{:?}", other.degraded());
    g.authorize(&id, &deploy(4))
        .await
        .expect("the approved request runs");
}

/// A revocation and a start race on two handles, many times: exactly one
/// wins each time, and a request whose denial was recorded never starts.
pub async fn revocation_racing_a_start_loses_cleanly(fixture: &dyn Fixture) {
    let runner = gate(fixture.open().await.expect("open")).await;
    let revoker = gate(fixture.open().await.expect("open")).await;
    let (mut starts, mut denials) = (0, 0);
    for n in 0..20 {
        let id = approved(&runner, 100 + n).await;
        let action = deploy(100 + n);
        let bob = bob();
        let (start, deny) = tokio::join!(
            runner.authorize(&id, &action),
            revoker.deny(&id, &bob, "revoked")
        );
        match (&start, &deny) {
            (Ok(_), Err(e)) => {
                assert_eq!(e.refusal(), Some(&Refusal::AlreadyDecided), "{e}");
                starts += 1;
            }
            (Err(e), Ok(_)) => {
                assert_eq!(e.refusal(), Some(&Refusal::Denied), "{e}");
                denials += 1;
            }
            other => panic!("round {n}: exactly one must win, got {other:?}"),
        }
    }
    assert!(runner.degraded().is_none() && revoker.degraded().is_none());
    assert_eq!(starts + denials, 20);
    let report = crate::story::check_store(runner.store().as_ref())
        .await
        .expect("story");
    assert!(report.is_consistent(), "{:?}", report.violations);
}

/// An index added to the events table behind the store's back: the next
/// open refuses the storage.
pub async fn foreign_schema_object_is_refused_on_open(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    drop(gate(store).await);
    fixture.tamper(RawEdit::AddSchemaObject).await;
    let result = fixture.open().await;
    assert!(
        result.is_err(),
        "a storage with a foreign schema object must be refused on open"
    );
}

/// The chain's tail deleted under a running gate (here the denial of a
/// request, so a fresh reader would see it approved): the gate's next verb
/// sees the chain end before the head it verified, refuses and degrades.
pub async fn chain_cut_short_under_a_running_gate_degrades_it(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let gate = gate(store.clone()).await;
    let kept = approved(&gate, 1).await;
    let revoked = approved(&gate, 2).await;
    gate.deny(&revoked, &bob(), "revoked").await.expect("deny");
    let head = store.head().await.expect("head").expect("a head");
    fixture.tamper(RawEdit::DeleteRow { seq: head.seq }).await;
    let result = gate.authorize(&kept, &deploy(1)).await;
    assert_no_permit("a permit on a chain cut short", &result);
    let reason = gate.degraded().expect("the gate degrades");
    assert!(reason.contains("cut short"), "{reason}");
    assert_no_permit(
        "the revoked request",
        &gate.authorize(&revoked, &deploy(2)).await,
    );
}

/// The gate's last event (a denial) deleted and another event appended in
/// its place through another handle, so the chain links up again: the
/// gate's next verb sees that the event at that seq is not the one it
/// appended, refuses and degrades.
pub async fn chain_cut_and_written_again_under_a_running_gate_degrades_it(fixture: &dyn Fixture) {
    let store = fixture.open().await.expect("open");
    let gate = gate(store.clone()).await;
    let kept = approved(&gate, 1).await;
    let revoked = approved(&gate, 2).await;
    let denial = gate.deny(&revoked, &bob(), "revoked").await.expect("deny");
    fixture.tamper(RawEdit::DeleteRow { seq: denial.seq }).await;
    let other = fixture.open().await.expect("another handle");
    let filler = crate::event::EventDraft::new(
        "s",
        EventKind::Annotation,
        bob(),
        json!({ "note": "in the denial's place" }),
    );
    let written = other.append(&[filler]).await.expect("append");
    assert_eq!(
        written[0].seq, denial.seq,
        "the filler takes the denial's seq"
    );
    let result = gate.authorize(&kept, &deploy(1)).await;
    assert_no_permit("a permit on a chain written again", &result);
    let reason = gate.degraded().expect("the gate degrades");
    assert!(reason.contains("as this gate appended it"), "{reason}");
}
