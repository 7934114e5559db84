//! Watching the chain: verification passes, the ledger of verified
//! requests, degradation.
//!
//! The gate decides only from its [`Ledger`]: the protocol state machine
//! fed with every event this process verified, from the first event of the
//! chain (when the gate opened) to the last verified head. Each verb first
//! verifies what was appended since and folds it in; rows read later are
//! never evidence, so an edited column of an old row changes nothing the
//! gate decides.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::protocol::{Finding, Ledger, Rules};
use crate::story::StoryRule;

#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// Degraded according to the chain (the last gate.degraded not followed
    /// by a gate.recovered).
    pub(super) chain_degraded: Option<String>,
    /// Degraded but not recorded (the store could not be written).
    pub(super) local_degraded: Option<String>,
    /// The latest event this gate appended (seq and hash): a chain that
    /// no longer holds it was cut short or rewritten.
    pub(super) appended: Option<(u64, Digest)>,
    /// A store call missed its deadline since the last recovery: the
    /// store hangs, so refusals are not recorded (each would wait out
    /// another deadline).
    pub(super) store_hung: bool,
}

impl Cursor {
    pub(super) fn degraded(&self) -> Option<String> {
        self.local_degraded
            .clone()
            .or_else(|| self.chain_degraded.clone())
    }
}

/// What this process has verified: the head and the ledger folded from
/// every event up to it. Held across a verb, so verbs of one gate see the
/// chain one at a time.
#[derive(Debug)]
pub(super) struct Watch {
    pub(super) verified: Option<Head>,
    pub(super) ledger: Ledger,
}

/// What a verification pass found.
pub(super) struct Pass {
    /// The last degraded/recovered mark seen: `Some(Some(reason))` for
    /// degraded, `Some(None)` for recovered.
    pub(super) mark: Option<Option<String>>,
    pub(super) violation: Option<Violation>,
    /// Findings that mean the chain holds something the gate would never
    /// have written: an execution it would not have allowed.
    pub(super) breach: Option<String>,
}

/// Findings the gate cannot run past: they show an execution it would not
/// have allowed, or a single-use key that did not hold.
fn is_breach(event: &Event, finding: &Finding) -> bool {
    if finding.rule == StoryRule::ReusedOnceKey {
        // An approval with a foreign key counts at most once per identity
        // anyway; the keys that make single use are the others.
        return !matches!(
            crate::format::kind_of(event),
            Some(EventKind::ActionApproved) | None
        );
    }
    matches!(
        finding.rule,
        StoryRule::DoubleStart
            | StoryRule::StartAfterDenial
            | StoryRule::StartWithoutApproval
            | StoryRule::StartDigest
            | StoryRule::ReProposal
            | StoryRule::DuplicateProposal
            | StoryRule::CompletionWithoutStart
    )
}

impl Gate {
    /// The ledger rules of this gate: its policy's signers, its chain, its
    /// self-approval setting and operator.
    pub(super) fn ledger_rules(&self) -> Rules {
        Rules {
            chain: Some(self.store.chain().clone()),
            // History is judged under the policy in force at each event (a
            // past start stays valid after a key rotation); a permit is
            // granted only on approvals that also prove under this gate's
            // own policy (see `Gate::authorize`).
            signers: None,
            signers_from_chain: true,
            allow_self_approval: self.config.allow_self_approval,
            operator: Some(self.config.operator.clone()),
        }
    }

    /// Appends; any failure but a refused draft or a used key degrades the
    /// gate (a gate that cannot record does not execute).
    pub(super) async fn append(&self, drafts: Vec<EventDraft>) -> Result<Vec<Event>, StoreError> {
        match self.store.append(&drafts).await {
            Ok(events) => {
                if let Some(last) = events.last() {
                    let mut cursor = self.lock();
                    if cursor.appended.is_none_or(|(seq, _)| seq < last.seq) {
                        cursor.appended = Some((last.seq, last.hash));
                    }
                }
                self.poll_checkpointer().await;
                Ok(events)
            }
            Err(e @ (StoreError::InvalidDraft(_) | StoreError::AlreadyUsed { .. })) => Err(e),
            Err(e) => {
                self.degrade_after(&e, format!("append failed: {e}")).await;
                Err(e)
            }
        }
    }

    /// Polls the configured checkpointer, unless another verb is polling it.
    async fn poll_checkpointer(&self) {
        let Some(checkpointer) = &self.config.checkpointer else {
            return;
        };
        let Ok(mut checkpointer) = checkpointer.try_lock() else {
            return;
        };
        match checkpointer.poll(self.store.as_ref()).await {
            Ok(Some(checkpoint)) => {
                tracing::info!(size = checkpoint.size, "checkpoint published");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint not published; retried at the next append")
            }
        }
    }

    /// Degrades after a store failure: as [`Gate::degrade`], but when the
    /// store missed its deadline (it hangs) the degradation is not written
    /// to it, which would only wait out another deadline; the gate refuses
    /// at once and stays degraded until recovered.
    pub(super) async fn degrade_after(&self, error: &StoreError, reason: String) -> Refusal {
        if crate::deadline::is_deadline(error) {
            tracing::error!(%reason, "store hangs: gate degraded (not recorded)");
            let mut cursor = self.lock();
            cursor.local_degraded = Some(reason.clone());
            cursor.store_hung = true;
            drop(cursor);
            return Refusal::Degraded { reason };
        }
        self.degrade(reason).await
    }

    /// Enters the degraded state and records `gate.degraded` if possible.
    pub(super) async fn degrade(&self, reason: String) -> Refusal {
        self.lock().local_degraded = Some(reason.clone());
        let body = GateStatusBody {
            reason: reason.clone(),
            operator: self.config.operator.clone(),
            signed: None,
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

    /// Verifies from the watch's head to the current end through the scan
    /// driver, folding every verified event into its ledger; notes the last
    /// degraded/recovered mark and the first breach.
    pub(super) async fn verify_into(&self, watch: &mut Watch) -> Result<Pass, StoreError> {
        let chain = self.store.chain().clone();
        let verifier = match &watch.verified {
            Some(head) => Verifier::resume(chain, head),
            None => Verifier::new(chain),
        };
        let mut mark = None;
        let mut breach = None;
        let appended = self.lock().appended;
        let mut replaced = None;
        let ledger = &mut watch.ledger;
        let end = crate::scan::scan_verified(self.store.as_ref(), verifier, None, |event| {
            if let Some((seq, hash)) = appended
                && event.seq == seq
                && event.hash != hash
                && replaced.is_none()
            {
                replaced = Some(Violation {
                    seq,
                    check: crate::verify::Check::Head,
                    expected: format!("event {seq} as this gate appended it (hash {hash})"),
                    found: format!(
                        "hash {}: the chain was cut short or rolled back and written again",
                        event.hash
                    ),
                });
            }
            for finding in ledger.apply(event) {
                if breach.is_none() && is_breach(event, &finding) {
                    breach = Some(format!(
                        "event {} breaks the protocol: {}: {}",
                        event.seq,
                        finding.rule.as_str(),
                        finding.detail
                    ));
                }
            }
            match crate::format::kind_of(event) {
                Some(EventKind::GateDegraded) => {
                    let reason = body_of::<GateStatusBody>(event)
                        .map_or_else(|e| e.to_string(), |b| b.reason);
                    mark = Some(Some(reason));
                }
                // Only a recovery the ledger accepted (signed by a declared
                // operator, where the policy declares operators) ends it.
                Some(EventKind::GateRecovered) if !ledger.is_degraded() => mark = Some(None),
                _ => {}
            }
        })
        .await?;
        let new_head = end.head();
        let mut violation = end.violation.or(replaced);
        if let Some(head) = new_head {
            watch.verified = Some(head);
        }
        // A chain cut short or rolled back below what this gate verified,
        // or below the last event it appended, reads as "nothing new" and
        // would pass unseen: the chain must still reach both.
        let reached = watch.verified.as_ref().map(|h| h.seq);
        if violation.is_none()
            && let Some(verified) = &watch.verified
            && (new_head.is_none() || appended.is_some_and(|(seq, _)| Some(seq) > reached))
        {
            violation = self.check_not_cut(verified, appended).await?;
        }
        Ok(Pass {
            mark,
            violation,
            breach,
        })
    }

    /// Folds events this gate has just appended into the watch without
    /// reading them back, when they directly follow its verified head: the
    /// store sealed them onto that head inside its transaction, so no other
    /// event came between. Each is verified (seq, hash, link, time, columns)
    /// and applied to the ledger as a pass would (for events that are not
    /// degraded/recovered marks, which a pass also notes: `authorize` folds
    /// its start). False, with the watch unchanged, when they do not follow
    /// the head or do not verify: the caller then verifies through a read
    /// ([`Gate::verify_into`]).
    pub(super) fn fold_own(&self, watch: &mut Watch, events: &[Event]) -> bool {
        let Some(head) = watch.verified else {
            return false;
        };
        let mut verifier = Verifier::resume(self.store.chain().clone(), &head);
        for event in events {
            if verifier.check(event).is_err() {
                return false;
            }
        }
        for event in events {
            watch.ledger.apply(event);
        }
        watch.verified = verifier.summary().head;
        true
    }

    /// Whether the store's head is still the head this gate verified last;
    /// a violation naming it when the chain was cut short or rewritten.
    async fn check_not_cut(
        &self,
        verified: &Head,
        appended: Option<(u64, Digest)>,
    ) -> Result<Option<Violation>, StoreError> {
        let head = self.store.head().await?;
        let must_reach = appended.map_or(verified.seq, |(seq, _)| seq.max(verified.seq));
        let found = match &head {
            // At the verified head: nothing was cut, unless this gate
            // appended past it.
            Some(h) if h.seq == verified.seq && h.hash == verified.hash && h.seq >= must_reach => {
                return Ok(None);
            }
            // Appended since the scan looked: the next pass verifies it
            // (its link to the verified head included).
            Some(h) if h.seq > verified.seq && h.seq >= must_reach => return Ok(None),
            Some(h) => format!("head seq {} hash {}", h.seq, h.hash),
            None => "an empty chain".to_owned(),
        };
        Ok(Some(Violation {
            seq: head.map_or(0, |h| (h.seq + 1).min(must_reach)),
            check: crate::verify::Check::Head,
            expected: format!(
                "a chain reaching seq {must_reach} (verified up to seq {} hash {})",
                verified.seq, verified.hash
            ),
            found: format!("{found}: the chain was cut short or rolled back"),
        }))
    }

    /// A full pass from the first event into a fresh ledger.
    pub(super) async fn verify_all(&self) -> Result<(Watch, Pass), StoreError> {
        let mut watch = Watch {
            verified: None,
            ledger: Ledger::new(self.ledger_rules()),
        };
        let pass = self.verify_into(&mut watch).await?;
        Ok((watch, pass))
    }

    /// Verifies the events appended since the last verified head and folds
    /// them into the ledger; degrades on a violation or a breach. Returns
    /// the watch, locked for the caller's verb, or the refusal when the
    /// gate is (now) degraded.
    pub(super) async fn check_chain(&self) -> Result<tokio::sync::MutexGuard<'_, Watch>, Refusal> {
        if let Some(reason) = self.degraded() {
            return Err(Refusal::Degraded { reason });
        }
        let mut watch = self.watch.lock().await;
        let pass = match self.verify_into(&mut watch).await {
            Ok(pass) => pass,
            Err(e) => {
                return Err(self
                    .degrade_after(&e, format!("cannot read the chain: {e}"))
                    .await);
            }
        };
        if let Some(mark) = pass.mark {
            self.lock().chain_degraded = mark;
        }
        if let Some(violation) = pass.violation {
            return Err(self
                .degrade(format!("chain does not verify: {violation}"))
                .await);
        }
        if let Some(breach) = pass.breach {
            return Err(self.degrade(breach).await);
        }
        match self.degraded() {
            Some(reason) => Err(Refusal::Degraded { reason }),
            None => Ok(watch),
        }
    }

    /// Re-reads events this gate verified earlier (runs of consecutive
    /// seqs in one read each) and checks that their bytes still hash to the
    /// hashes it verified; returns them in the order asked.
    pub(super) async fn reread(&self, wanted: &[(u64, Digest)]) -> Result<Vec<Event>, String> {
        let mut out: Vec<Event> = Vec::with_capacity(wanted.len());
        let mut i = 0;
        while i < wanted.len() {
            let start = wanted[i].0;
            let mut run = 1;
            while i + run < wanted.len() && wanted[i + run].0 == start + run as u64 {
                run += 1;
            }
            let events = self
                .store
                .read(start, run)
                .await
                .map_err(|e| format!("cannot read event {start}: {e}"))?;
            for (k, (seq, verified)) in wanted[i..i + run].iter().enumerate() {
                let event = events
                    .get(k)
                    .filter(|e| e.seq == *seq)
                    .ok_or_else(|| format!("event {seq} is gone"))?;
                let hash = Digest::of_canonical(tags::EVENT, &event.canonical);
                if hash != *verified || event.hash != *verified {
                    return Err(format!(
                        "event {seq} no longer holds the bytes this gate verified"
                    ));
                }
                out.push(event.clone());
            }
            i += run;
        }
        Ok(out)
    }
}
