//! Watching the chain: verification passes, degradation and re-checks.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// The last head verified.
    pub(super) verified: Option<Head>,
    /// Degraded according to the chain (the last gate.degraded not followed
    /// by a gate.recovered).
    pub(super) chain_degraded: Option<String>,
    /// Degraded but not recorded (the store could not be written).
    pub(super) local_degraded: Option<String>,
}

impl Cursor {
    pub(super) fn degraded(&self) -> Option<String> {
        self.local_degraded
            .clone()
            .or_else(|| self.chain_degraded.clone())
    }
}

/// What a verification pass found.
pub(super) struct Pass {
    pub(super) head: Option<Head>,
    /// The last degraded/recovered mark seen: `Some(Some(reason))` for
    /// degraded, `Some(None)` for recovered.
    pub(super) mark: Option<Option<String>>,
    pub(super) violation: Option<Violation>,
    /// The events of the wanted request this pass verified.
    pub(super) matched: Vec<Event>,
}

impl Gate {
    /// Appends; any failure but a refused draft or a used key degrades the
    /// gate (a gate that cannot record does not execute).
    pub(super) async fn append(&self, drafts: Vec<EventDraft>) -> Result<Vec<Event>, StoreError> {
        match self.store.append(&drafts).await {
            Ok(events) => Ok(events),
            Err(e @ (StoreError::InvalidDraft(_) | StoreError::AlreadyUsed { .. })) => Err(e),
            Err(e) => {
                self.degrade(format!("append failed: {e}")).await;
                Err(e)
            }
        }
    }

    /// Enters the degraded state and records `gate.degraded` if possible.
    pub(super) async fn degrade(&self, reason: String) -> Refusal {
        self.lock().local_degraded = Some(reason.clone());
        let body = GateStatusBody {
            reason: reason.clone(),
            operator: self.config.operator.clone(),
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::GateDegraded,
            self.system_actor(),
            to_body(&body),
        );
        if self.store.append(&[draft]).await.is_ok() {
            let mut cursor = self.lock();
            cursor.chain_degraded = Some(reason.clone());
            cursor.local_degraded = None;
        }
        Refusal::Degraded { reason }
    }

    /// Verifies from `from` (genesis when `None`) to the current end
    /// through the scan driver; collects the verified events of request
    /// `want` and the last degraded/recovered mark.
    pub(super) async fn verify_pass(
        &self,
        from: Option<Head>,
        want: Option<&str>,
    ) -> Result<Pass, StoreError> {
        let chain = self.store.chain().clone();
        let verifier = match &from {
            Some(head) => Verifier::resume(chain, head),
            None => Verifier::new(chain),
        };
        let mut mark = None;
        let mut matched = Vec::new();
        let end = crate::scan::scan_verified(self.store.as_ref(), verifier, None, |event| {
            if want.is_some() && event.columns.request_id.as_deref() == want {
                matched.push(event.clone());
            }
            match crate::format::kind_of(event) {
                Some(EventKind::GateDegraded) => {
                    let reason = body_of::<GateStatusBody>(event)
                        .map_or_else(|e| e.to_string(), |b| b.reason);
                    mark = Some(Some(reason));
                }
                Some(EventKind::GateRecovered) => mark = Some(None),
                _ => {}
            }
        })
        .await?;
        Ok(Pass {
            head: end.head(),
            mark,
            matched,
            violation: end.violation,
        })
    }

    /// Verifies the events appended since the last verified head; degrades
    /// on a violation. Returns the refusal when the gate is (now) degraded,
    /// else the events of request `want` that this pass verified.
    pub(super) async fn check_chain(&self, want: &str) -> Result<Vec<Event>, Refusal> {
        if let Some(reason) = self.degraded() {
            return Err(Refusal::Degraded { reason });
        }
        let from = self.lock().verified;
        let pass = match self.verify_pass(from, Some(want)).await {
            Ok(pass) => pass,
            Err(e) => return Err(self.degrade(format!("cannot read the chain: {e}")).await),
        };
        {
            let mut cursor = self.lock();
            let newer = match (pass.head, cursor.verified) {
                (Some(new), Some(old)) => new.seq > old.seq,
                (Some(_), None) => true,
                _ => false,
            };
            if newer {
                cursor.verified = pass.head;
                if let Some(mark) = pass.mark {
                    cursor.chain_degraded = mark;
                }
            }
        }
        if let Some(violation) = pass.violation {
            return Err(self
                .degrade(format!("chain does not verify: {violation}"))
                .await);
        }
        match self.degraded() {
            Some(reason) => Err(Refusal::Degraded { reason }),
            None => Ok(pass.matched),
        }
    }

    /// Re-checks events a permit relies on: each re-hashes to its stored
    /// hash; one verified by the pass just made must have the hash verified
    /// there; one verified earlier must still be linked to by the event
    /// after it (so a row rewritten with a recomputed hash is caught).
    pub(super) async fn recheck(&self, events: &[&Event], fresh: &[Event]) -> Result<(), String> {
        for event in events {
            let hash = Digest::of_canonical(tags::EVENT, &event.canonical);
            if hash != event.hash {
                return Err(format!(
                    "event {} no longer hashes to its stored hash",
                    event.seq
                ));
            }
            if let Some(verified) = fresh.iter().find(|e| e.seq == event.seq) {
                if verified.hash != hash || verified.canonical != event.canonical {
                    return Err(format!(
                        "event {} changed while it was being verified",
                        event.seq
                    ));
                }
                continue;
            }
            let next = self
                .store
                .read(event.seq + 1, 1)
                .await
                .map_err(|e| format!("cannot read event {}: {e}", event.seq + 1))?;
            if let Some(next) = next.first() {
                let prev = next
                    .envelope()
                    .map_err(|e| format!("event {} is not an envelope: {e}", next.seq))?
                    .prev;
                if prev != hash {
                    return Err(format!(
                        "event {} does not link to event {}",
                        next.seq, event.seq
                    ));
                }
            }
        }
        Ok(())
    }
}
