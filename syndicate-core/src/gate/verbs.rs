//! The protocol verbs: propose, approve, deny, authorize, complete, run,
//! recover.

use super::*;
#[allow(clippy::wildcard_imports)]
use crate::decision::SignedDecision;

impl Gate {
    /// Proposes an action: records `action.proposed` with the canonical
    /// action, its digest, the requester, the policy's classification and
    /// the given context; for an auto-approving rule also `action.approved`
    /// (method `policy`), for a denying rule (or no matching rule)
    /// `action.denied`, in the same atomic batch.
    ///
    /// # Errors
    /// [`GateError::Store`] when the events cannot be recorded (the gate
    /// then degrades) or the session or requester is empty or too long.
    pub async fn propose(
        &self,
        session: &str,
        requester: &Actor,
        action: &Action,
        context: &ProposalContext,
    ) -> Result<Proposal, GateError> {
        let classification = self.policy.classify(action);
        let request_id = new_request_id(self.store.chain().as_str(), session);
        let proposed = ProposedBody {
            request_id: request_id.clone(),
            action: action.to_value(),
            action_digest: action.digest(),
            requester: requester.id.clone(),
            risk_tier: classification.risk,
            decision: classification.decision,
            rule: classification.rule.clone(),
            approvals_required: classification.approvers.max(1),
            approval_ttl_seconds: classification.approval_ttl_seconds,
            controls: classification.controls.clone(),
            model: context.model.clone(),
            context: context.context.clone(),
        };
        let mut drafts = vec![
            self.draft(
                session,
                EventKind::ActionProposed,
                requester.clone(),
                to_body(&proposed),
            )
            .with_once(format!("action.proposed:{request_id}")),
        ];
        let rule_actor = || {
            Actor::policy(format!(
                "policy:{}",
                classification.rule.as_deref().unwrap_or("no-match")
            ))
        };
        match classification.decision {
            Decision::AutoApprove => {
                let approval = ApprovedBody {
                    request_id: request_id.clone(),
                    action_digest: action.digest(),
                    approver: rule_actor().id,
                    method: Method::Policy,
                    rule: classification.rule.clone(),
                    expires_at: Some(
                        (self.config.clock)().plus_seconds(classification.approval_ttl_seconds),
                    ),
                    comment: None,
                    controls: classification.controls.clone(),
                    signed: None,
                };
                let approver = rule_actor().id;
                drafts.push(
                    self.draft(
                        session,
                        EventKind::ActionApproved,
                        rule_actor(),
                        to_body(&approval),
                    )
                    .with_once(format!("approval:{request_id}:{approver}")),
                );
            }
            Decision::Deny => {
                let reason = match &classification.rule {
                    Some(rule) => format!("denied by policy rule {rule:?}"),
                    None => "no policy rule matches this action".to_owned(),
                };
                let denial = DeniedBody {
                    request_id: request_id.clone(),
                    reason,
                    by: rule_actor().id,
                    method: Method::Policy,
                    rule: classification.rule.clone(),
                };
                drafts.push(
                    self.draft(
                        session,
                        EventKind::ActionDenied,
                        rule_actor(),
                        to_body(&denial),
                    )
                    .with_once(format!("decision:{request_id}")),
                );
            }
            Decision::Human => {}
        }
        let events = self.append(drafts).await?;
        Ok(Proposal {
            request_id,
            action: action.clone(),
            classification,
            seq: events.first().map_or(0, |e| e.seq),
        })
    }

    /// Reads what the chain says about a request; `None` when it was never
    /// proposed.
    ///
    /// # Errors
    /// [`GateError::Store`] when the store cannot be read,
    /// [`GateError::Malformed`] when its `action.proposed` body is not one.
    pub async fn request(&self, request_id: &str) -> Result<Option<RequestState>, GateError> {
        let mut events = Vec::new();
        let mut query = Query::request(request_id);
        loop {
            let page = self.store.query(&query).await?;
            let full = page.len() >= query.limit;
            query.after_seq = page.last().map(|e| e.seq);
            events.extend(page);
            if !full {
                break;
            }
        }
        RequestState::of_events_proven(events, self.policy.signers(), Some(self.store.chain()))
    }

    /// Records a refusal of an approval or denial attempt and returns it as
    /// an error.
    pub(super) async fn refuse_approval(
        &self,
        session: &str,
        request_id: &str,
        who: &Actor,
        digest_seen: Option<Digest>,
        refusal: Refusal,
    ) -> GateError {
        let body = ApprovalRefusedBody {
            request_id: request_id.to_owned(),
            approver: who.id.clone(),
            digest_seen,
            reason: refusal.code().to_owned(),
            detail: refusal.to_string(),
        };
        let draft = self.draft(
            session,
            EventKind::ApprovalRefused,
            who.clone(),
            to_body(&body),
        );
        if let Err(e) = self.append(vec![draft]).await
            && !matches!(e, StoreError::InvalidDraft(_))
        {
            return GateError::Store(e);
        }
        GateError::Refused {
            request_id: request_id.to_owned(),
            refusal,
        }
    }

    /// Approves the digest the approver was shown. Refused (and the refusal
    /// recorded as `approval.refused`) when the request is unknown, already
    /// denied, started or fully approved, the digest is not the proposed
    /// one, the approver is the requester (unless
    /// [`GateConfig::allow_self_approval`]) or already approved it.
    ///
    /// The approval expires after the rule's `approval_ttl_seconds`.
    ///
    /// # Errors
    /// [`GateError::Refused`] as above; [`GateError::Store`] when the store
    /// fails.
    pub async fn approve(
        &self,
        request_id: &str,
        approver: &Actor,
        digest_seen: &Digest,
    ) -> Result<Approval, GateError> {
        if self
            .policy
            .signers()
            .is_some_and(|s| s.requires_signatures())
        {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    approver,
                    Some(*digest_seen),
                    Refusal::Unsigned,
                )
                .await);
        }
        self.record_approval(request_id, approver, digest_seen, None)
            .await
    }

    /// Records an approval signed elsewhere ([`SignedDecision::sign`]): the
    /// gate checks it exactly as [`Gate::approve`] does, and first that the
    /// signature verifies against a key the policy in force declares for
    /// that approver, with the statement naming this chain and an `approve`
    /// decision. Anything else is refused and recorded as `approval.refused`
    /// (reason `bad_signature`). Under a policy that declares no approvers
    /// the signature is still checked against nothing and refused.
    ///
    /// # Errors
    /// [`GateError::Refused`] as above and as for [`Gate::approve`];
    /// [`GateError::Store`] when the store fails.
    pub async fn submit(&self, decision: SignedDecision) -> Result<Approval, GateError> {
        let s = &decision.statement;
        let approver = Actor::human(s.approver.clone());
        let request_id = s.request_id.clone();
        let digest_seen = s.action_digest;
        let signers = self.policy.signers();
        let checked = match signers {
            Some(signers) if signers.requires_signatures() => signers
                .check_approval(
                    &decision,
                    self.store.chain(),
                    &request_id,
                    &digest_seen,
                    &[],
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => Err(
                "the policy in force declares no approvers, so no key can be trusted".to_owned(),
            ),
        };
        if let Err(detail) = checked {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    &request_id,
                    &approver,
                    Some(digest_seen),
                    Refusal::BadSignature { detail },
                )
                .await);
        }
        self.record_approval(&request_id, &approver, &digest_seen, Some(decision))
            .await
    }

    async fn record_approval(
        &self,
        request_id: &str,
        approver: &Actor,
        digest_seen: &Digest,
        signed: Option<SignedDecision>,
    ) -> Result<Approval, GateError> {
        let Some(state) = self.request(request_id).await? else {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    approver,
                    Some(*digest_seen),
                    Refusal::UnknownRequest,
                )
                .await);
        };
        let p = &state.proposed;
        let refusal = if state.denied || state.started || state.is_approved() {
            Some(Refusal::AlreadyDecided)
        } else if *digest_seen != p.action_digest {
            Some(Refusal::DigestMismatch {
                expected: p.action_digest,
                found: *digest_seen,
            })
        } else if approver.id == p.requester && !self.config.allow_self_approval {
            Some(Refusal::SelfApproval)
        } else if state
            .approvals
            .iter()
            .any(|(_, a)| a.approver == approver.id)
        {
            Some(Refusal::DuplicateApprover)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    approver,
                    Some(*digest_seen),
                    refusal,
                )
                .await);
        }
        let mut expires_at = (self.config.clock)().plus_seconds(p.approval_ttl_seconds);
        if let Some(signed_until) = signed.as_ref().and_then(|d| d.statement.expires_at) {
            // The signer may allow less time than the rule, never more.
            expires_at = expires_at.min(signed_until);
        }
        let body = ApprovedBody {
            request_id: request_id.to_owned(),
            action_digest: *digest_seen,
            approver: approver.id.clone(),
            method: Method::Human,
            rule: None,
            expires_at: Some(expires_at),
            comment: None,
            controls: p.controls.clone(),
            signed,
        };
        let draft = self
            .draft(
                &state.session,
                EventKind::ActionApproved,
                approver.clone(),
                to_body(&body),
            )
            .with_once(format!("approval:{request_id}:{}", approver.id));
        let event = match self.append(vec![draft]).await {
            Ok(mut events) => events.pop(),
            Err(StoreError::AlreadyUsed { .. }) => {
                return Err(self
                    .refuse_approval(
                        &state.session,
                        request_id,
                        approver,
                        Some(*digest_seen),
                        Refusal::DuplicateApprover,
                    )
                    .await);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Approval {
            request_id: request_id.to_owned(),
            approvals: state.approval_count() + 1,
            required: p.approvals_required.max(1),
            expires_at,
            seq: event.map_or(0, |e| e.seq),
        })
    }

    /// Denies a request that has not started (an approved request may still
    /// be denied before it starts: a revocation). Refused and recorded as
    /// `approval.refused` when the request is unknown, denied or started.
    ///
    /// # Errors
    /// [`GateError::Refused`] as above; [`GateError::Store`] when the store
    /// fails.
    pub async fn deny(
        &self,
        request_id: &str,
        who: &Actor,
        reason: &str,
    ) -> Result<Event, GateError> {
        let Some(state) = self.request(request_id).await? else {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    who,
                    None,
                    Refusal::UnknownRequest,
                )
                .await);
        };
        if state.denied || state.started {
            return Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    who,
                    None,
                    Refusal::AlreadyDecided,
                )
                .await);
        }
        let body = DeniedBody {
            request_id: request_id.to_owned(),
            reason: reason.to_owned(),
            by: who.id.clone(),
            method: Method::Human,
            rule: None,
        };
        let draft = self
            .draft(
                &state.session,
                EventKind::ActionDenied,
                who.clone(),
                to_body(&body),
            )
            .with_once(format!("decision:{request_id}"));
        match self.append(vec![draft]).await {
            Ok(mut events) => events.pop().ok_or_else(|| {
                GateError::Store(StoreError::Other {
                    store: "unknown",
                    source: "append returned no event".into(),
                })
            }),
            Err(StoreError::AlreadyUsed { .. }) => Err(self
                .refuse_approval(
                    &state.session,
                    request_id,
                    who,
                    None,
                    Refusal::AlreadyDecided,
                )
                .await),
            Err(e) => Err(e.into()),
        }
    }

    /// Records `execution.rejected` (best effort) and returns the refusal.
    pub(super) async fn reject(
        &self,
        session: &str,
        request_id: &str,
        refusal: Refusal,
    ) -> GateError {
        let body = RejectedBody {
            request_id: request_id.to_owned(),
            reason: refusal.code().to_owned(),
            detail: refusal.to_string(),
        };
        let draft = self.draft(
            session,
            EventKind::ExecutionRejected,
            self.system_actor(),
            to_body(&body),
        );
        if !matches!(refusal, Refusal::Degraded { .. }) {
            let _ = self.append(vec![draft]).await;
        } else {
            // Already degraded: record if possible, without degrading again.
            let _ = self.store.append(&[draft]).await;
        }
        GateError::Refused {
            request_id: request_id.to_owned(),
            refusal,
        }
    }

    /// Authorizes the action about to run. When its digest equals the
    /// approved digest and the approval is complete, unused and unexpired,
    /// records `execution.started` (single-use key
    /// `execution.started:<request_id>`) and returns the [`Permit`]: run
    /// from [`Permit::action`].
    ///
    /// Otherwise records `execution.digest_mismatch` or `execution.rejected`
    /// and refuses. Before anything, verifies the events appended since the
    /// last verification and re-checks the events the permit relies on; a
    /// failure degrades the gate.
    ///
    /// # Errors
    /// [`GateError::Refused`] with [`Refusal::UnknownRequest`],
    /// [`Refusal::Denied`], [`Refusal::AlreadyUsed`],
    /// [`Refusal::NotApproved`], [`Refusal::Expired`],
    /// [`Refusal::DigestMismatch`] or [`Refusal::Degraded`].
    pub async fn authorize(&self, request_id: &str, action: &Action) -> Result<Permit, GateError> {
        let fallback_session = self.config.session.clone();
        // Verify first: the pass also yields this request's events when they
        // are all new since the last pass (the common case of a request
        // proposed and approved moments ago), saving a query.
        let fresh = match self.check_chain(request_id).await {
            Ok(fresh) => fresh,
            Err(refusal) => {
                let session = match self.request(request_id).await {
                    Ok(Some(state)) => state.session,
                    _ => fallback_session,
                };
                return Err(self.reject(&session, request_id, refusal).await);
            }
        };
        let from_pass = fresh
            .iter()
            .any(|e| e.columns.kind == EventKind::ActionProposed.as_str());
        let state = if from_pass {
            RequestState::of_events_proven(
                fresh.clone(),
                self.policy.signers(),
                Some(self.store.chain()),
            )
        } else {
            self.request(request_id).await
        };
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                let refusal = self.degrade(format!("cannot read request: {e}")).await;
                return Err(self.reject(&fallback_session, request_id, refusal).await);
            }
        };
        let session = state
            .as_ref()
            .map_or(fallback_session, |s| s.session.clone());
        let Some(state) = state else {
            return Err(self
                .reject(&session, request_id, Refusal::UnknownRequest)
                .await);
        };
        let p = &state.proposed;
        let refusal = if state.denied {
            Some(Refusal::Denied)
        } else if state.started {
            Some(Refusal::AlreadyUsed)
        } else if !state.is_approved() {
            Some(Refusal::NotApproved {
                approvals: state.approval_count(),
                required: p.approvals_required.max(1),
            })
        } else {
            match state.expires_at() {
                Some(expired_at) if (self.config.clock)() >= expired_at => {
                    Some(Refusal::Expired { expired_at })
                }
                _ => None,
            }
        };
        if let Some(refusal) = refusal {
            return Err(self.reject(&session, request_id, refusal).await);
        }
        if action.digest() != p.action_digest {
            let body = MismatchBody {
                request_id: request_id.to_owned(),
                approved_digest: p.action_digest,
                executed_digest: action.digest(),
                action: action.to_value(),
            };
            let draft = self.draft(
                &session,
                EventKind::ExecutionDigestMismatch,
                self.system_actor(),
                to_body(&body),
            );
            let _ = self.append(vec![draft]).await;
            return Err(GateError::Refused {
                request_id: request_id.to_owned(),
                refusal: Refusal::DigestMismatch {
                    expected: p.action_digest,
                    found: action.digest(),
                },
            });
        }
        let mut relied: Vec<&Event> = vec![&state.proposed_event];
        relied.extend(state.approvals.iter().map(|(e, _)| e));
        if let Err(reason) = self.recheck(&relied, &fresh).await {
            let refusal = self.degrade(reason).await;
            return Err(self.reject(&session, request_id, refusal).await);
        }
        // Run from the recorded action, not the caller's text.
        let approved = match Action::from_value(p.action.clone()) {
            Ok(a) if a.digest() == p.action_digest => a,
            _ => {
                let refusal = self
                    .degrade(format!(
                        "event {} records an action that does not match its digest",
                        state.proposed_event.seq
                    ))
                    .await;
                return Err(self.reject(&session, request_id, refusal).await);
            }
        };
        let body = StartedBody {
            request_id: request_id.to_owned(),
            approved_digest: p.action_digest,
            executed_digest: approved.digest(),
            controls: p.controls.clone(),
        };
        let draft = self
            .draft(
                &session,
                EventKind::ExecutionStarted,
                self.system_actor(),
                to_body(&body),
            )
            .with_once(format!("execution.started:{request_id}"));
        match self.append(vec![draft]).await {
            Ok(events) => Ok(Permit {
                request_id: request_id.to_owned(),
                session,
                action: approved,
                started_seq: events.first().map_or(0, |e| e.seq),
                controls: p.controls.clone(),
            }),
            Err(StoreError::AlreadyUsed { .. }) => Err(self
                .reject(&session, request_id, Refusal::AlreadyUsed)
                .await),
            Err(e) => {
                // The append degraded the gate already (unless the draft
                // was refused, which a valid state cannot produce).
                let reason = self
                    .degraded()
                    .unwrap_or_else(|| format!("cannot record execution.started: {e}"));
                Err(GateError::Refused {
                    request_id: request_id.to_owned(),
                    refusal: Refusal::Degraded { reason },
                })
            }
        }
    }

    /// Records `execution.completed` for a permit.
    ///
    /// # Errors
    /// [`GateError::Store`] when it cannot be recorded (the gate then
    /// degrades; the chain shows the execution started and never completed).
    pub async fn complete(&self, permit: Permit, outcome: Outcome) -> Result<Event, GateError> {
        let body = CompletedBody {
            request_id: permit.request_id.clone(),
            outcome: outcome.kind,
            exit_code: outcome.exit_code,
            result_digest: outcome.result_digest,
            error: outcome.error,
            controls: permit.controls.clone(),
        };
        let draft = self
            .draft(
                &permit.session,
                EventKind::ExecutionCompleted,
                self.system_actor(),
                to_body(&body),
            )
            .with_once(format!("execution.completed:{}", permit.request_id));
        let mut events = self.append(vec![draft]).await?;
        events.pop().ok_or_else(|| {
            GateError::Store(StoreError::Other {
                store: "unknown",
                source: "append returned no event".into(),
            })
        })
    }

    /// Runs `f` only with a permit, and always records completion:
    /// `succeeded` when `f` returns `Ok`, `failed` with the error's text
    /// when it returns `Err`. Returns what `f` returned.
    ///
    /// `f` receives the approved action (from the permit), not `action`.
    /// If `f` panics, no completion is recorded and the chain shows an
    /// execution that started and never completed.
    ///
    /// # Errors
    /// As [`Gate::authorize`] (then `f` never runs) and
    /// [`Gate::complete`].
    pub async fn run<F, Fut, T, E>(
        &self,
        request_id: &str,
        action: &Action,
        f: F,
    ) -> Result<Result<T, E>, GateError>
    where
        F: FnOnce(Action) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let permit = self.authorize(request_id, action).await?;
        let result = f(permit.action().clone()).await;
        let outcome = match &result {
            Ok(_) => Outcome::succeeded(),
            Err(e) => Outcome::failed(e.to_string()),
        };
        self.complete(permit, outcome).await?;
        Ok(result)
    }

    /// Leaves the degraded state: re-verifies the whole chain and records
    /// `gate.recovered` with the operator and reason.
    ///
    /// # Errors
    /// [`GateError::StillBroken`] when the chain still does not verify (the
    /// gate stays degraded); [`GateError::Store`] when the store cannot be
    /// read or written.
    pub async fn recover(&self, operator: &Actor, reason: &str) -> Result<Event, GateError> {
        let pass = self.verify_pass(None, None).await?;
        if let Some(violation) = pass.violation {
            return Err(GateError::StillBroken(violation));
        }
        let body = GateStatusBody {
            reason: reason.to_owned(),
            operator: operator.id.clone(),
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::GateRecovered,
            operator.clone(),
            to_body(&body),
        );
        let mut events = self.store.append(&[draft]).await?;
        let event = events.pop().ok_or_else(|| {
            GateError::Store(StoreError::Other {
                store: "unknown",
                source: "append returned no event".into(),
            })
        })?;
        let mut cursor = self.lock();
        cursor.verified = pass.head;
        cursor.chain_degraded = None;
        cursor.local_degraded = None;
        Ok(event)
    }
}
