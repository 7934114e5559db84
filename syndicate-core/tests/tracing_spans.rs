//! Every gate decision reaches the framework's `tracing` pipeline: one span
//! per verb with the OpenTelemetry GenAI attribute names, the request id and
//! the digest (never the arguments), and the refusal code when refused.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
use syndicate_core::{Action, Actor, ChainId, MemoryStore};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn verbs_emit_spans_with_gen_ai_attributes_and_refusal_codes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread().enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let policy = RulePolicy::from_toml(
                    "id = \"t\"\nversion = \"1\"\n[[rules]]\nid = \"r\"\ntool = \"shell.exec\"\nrisk = \"high\"\ndecision = \"human\"\n",
                )
                .unwrap();
                let store = Arc::new(MemoryStore::new(ChainId::new("t").unwrap()));
                let gate = Gate::open(store, Arc::new(policy), GateConfig::default())
                    .await
                    .unwrap();
                let action =
                    Action::new("shell.exec", json!({"argv": ["secret-argument"]})).unwrap();
                let p = gate
                    .propose("s", &Actor::agent("bot"), &action, &ProposalContext::default())
                    .await
                    .unwrap();
                // Not approved yet: refused, and the span says why.
                assert!(gate.authorize(&p.request_id, &action).await.is_err());
            });
    });
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains("gen_ai.operation.name=\"execute_tool\""),
        "{out}"
    );
    assert!(out.contains("gen_ai.tool.name=\"shell.exec\""), "{out}");
    assert!(out.contains("syndicate.verb=\"propose\""), "{out}");
    assert!(out.contains("syndicate.verb=\"authorize\""), "{out}");
    assert!(out.contains("syndicate.refusal=\"not_approved\""), "{out}");
    assert!(out.contains("syndicate.outcome=\"ok\""), "{out}");
    assert!(!out.contains("secret-argument"), "arguments leaked: {out}");
}
