//! `tracing` spans for the protocol verbs, so a framework's existing
//! `tracing` or OpenTelemetry pipeline sees every gate decision.
//!
//! Each verb runs in an `INFO` span named `syndicate.gate`, with the verb in
//! `syndicate.verb` (`propose`, `approve`, `deny`, `authorize`, `complete`),
//! carrying the
//! OpenTelemetry GenAI attribute names where they fit
//! (`gen_ai.operation.name = "execute_tool"`, `gen_ai.tool.name`, and
//! `gen_ai.tool.call.id` when a harness names the call), the
//! request id and the action digest (arguments only by digest, never their
//! text). When the verb ends the span records `syndicate.outcome` (`ok`,
//! `refused`, `error`) and, for a refusal, `syndicate.refusal` (its code);
//! a refusal or error is also logged as a `WARN` event inside the span.

use tracing::Span;
use tracing::field::Empty;

use super::GateError;
use crate::digest::Digest;

/// The span of one verb.
pub(super) fn span(
    verb: &'static str,
    tool: &str,
    request_id: Option<&str>,
    digest: &Digest,
) -> Span {
    tracing::info_span!(
        "syndicate.gate",
        syndicate.verb = verb,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        syndicate.request_id = request_id.unwrap_or(""),
        syndicate.action_digest = %digest,
        gen_ai.tool.call.id = Empty,
        syndicate.outcome = Empty,
        syndicate.refusal = Empty,
    )
}

/// Records how a verb ended on its span.
pub(super) fn record<T>(span: &Span, result: &Result<T, GateError>) {
    match result {
        Ok(_) => {
            span.record("syndicate.outcome", "ok");
        }
        Err(GateError::Refused { refusal, .. }) => {
            span.record("syndicate.outcome", "refused");
            span.record("syndicate.refusal", refusal.code());
            span.in_scope(|| tracing::warn!(refusal = refusal.code(), "{refusal}"));
        }
        Err(e) => {
            span.record("syndicate.outcome", "error");
            span.in_scope(|| tracing::warn!(error = %e, "gate error"));
        }
    }
}
