//! The protocol verbs: propose, approve, deny, authorize, complete, run,
//! recover.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::decision::SignedDecision;
use crate::identity;
use crate::protocol::{Closed, Counted, Lookup, Request, Status};
use tracing::Instrument as _;

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
        let span = super::trace::span("propose", action.tool(), None, &action.digest());
        let result = async {
            if let Err(e) = identity::person(&requester.id, &self.config.operator) {
                return Err(GateError::Input {
                    what: "requester",
                    reason: e.to_string(),
                });
            }
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
                approver_roles: classification.approver_roles.clone(),
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
                    drafts.push(
                        self.draft(
                            session,
                            EventKind::ActionApproved,
                            rule_actor(),
                            to_body(&approval),
                        )
                        .with_once(approval_once(&request_id, &rule_actor().id)),
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
                        signed: None,
                    };
                    drafts.push(
                        self.draft(
                            session,
                            EventKind::ActionDenied,
                            rule_actor(),
                            to_body(&denial),
                        )
                        .with_once(decision_once(&request_id)),
                    );
                }
                Decision::Human => {}
            }
            let events = match self.append(drafts).await {
                Ok(events) => events,
                Err(StoreError::InvalidDraft(e)) => {
                    return Err(GateError::Input {
                        what: "proposal",
                        reason: e.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Proposal {
                request_id,
                action: action.clone(),
                classification,
                seq: events.first().map_or(0, |e| e.seq),
            })
        }
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
    }

    /// What the chain says about a request, from the events this gate
    /// verified (it verifies what was appended since first).
    ///
    /// # Errors
    /// [`GateError::Refused`] with [`Refusal::Degraded`] when the chain does
    /// not verify or the gate is degraded.
    pub async fn request(&self, request_id: &str) -> Result<Status, GateError> {
        match self.check_chain().await {
            Ok(watch) => Ok(watch.ledger.lookup(request_id).to_status()),
            Err(refusal) => Err(GateError::Refused {
                request_id: request_id.to_owned(),
                refusal,
            }),
        }
    }

    /// The `action.proposed` body of an open request, read back from the
    /// store and checked against the hash this gate verified, with its
    /// action re-canonicalized and its digest recomputed: what a person is
    /// shown before approving. `None` when the request is unknown or closed.
    ///
    /// # Errors
    /// As [`Gate::request`]; [`GateError::Malformed`] when the event no
    /// longer holds the verified bytes, its action is not one, or the
    /// action's digest is not the proposed digest.
    pub async fn proposal(
        &self,
        request_id: &str,
    ) -> Result<Option<(ProposedBody, Action)>, GateError> {
        let Some(state) = self.request(request_id).await?.open().cloned() else {
            return Ok(None);
        };
        let malformed = |reason: String| GateError::Malformed {
            seq: state.proposed_seq,
            reason,
        };
        let events = self
            .reread(&[(state.proposed_seq, state.proposed_hash)])
            .await
            .map_err(malformed)?;
        let body: ProposedBody = body_of(&events[0])?;
        let action = Action::from_value(body.action.clone())?;
        if action.digest() != state.digest || body.action_digest != state.digest {
            return Err(malformed(format!(
                "the recorded action's digest is {}, not the proposed {}",
                action.digest(),
                state.digest
            )));
        }
        Ok(Some((body, action)))
    }

    /// The action of an open request, as [`Gate::proposal`] reads it.
    ///
    /// # Errors
    /// As [`Gate::proposal`].
    pub async fn proposed_action(&self, request_id: &str) -> Result<Option<Action>, GateError> {
        Ok(self.proposal(request_id).await?.map(|(_, action)| action))
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
        let span = super::trace::span("approve", "", Some(request_id), digest_seen);
        let result = async {
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
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
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
        let span = super::trace::span(
            "approve",
            "",
            Some(&decision.statement.request_id),
            &decision.statement.action_digest,
        );
        let result = async {
            let s = &decision.statement;
            let approver = Actor::human(s.approver.clone());
            let request_id = s.request_id.clone();
            let digest_seen = s.action_digest;
            // The roles the proposal recorded; an unknown or closed request is
            // refused below, whatever its roles.
            let roles = match self.request(&request_id).await {
                Ok(Status::Open(r)) => r.approver_roles,
                _ => Vec::new(),
            };
            let signers = self.policy.signers();
            let checked = match signers {
                Some(signers) if signers.requires_signatures() => signers
                    .check_approval(
                        &decision,
                        self.store.chain(),
                        &request_id,
                        &digest_seen,
                        &roles,
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                _ => Err(
                    "the policy in force declares no approvers, so no key can be trusted"
                        .to_owned(),
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
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
    }

    async fn record_approval(
        &self,
        request_id: &str,
        approver: &Actor,
        digest_seen: &Digest,
        signed: Option<SignedDecision>,
    ) -> Result<Approval, GateError> {
        let fallback = self.config.session.clone();
        let watch = match self.check_chain().await {
            Ok(watch) => watch,
            Err(refusal) => {
                return Err(self
                    .refuse_approval(&fallback, request_id, approver, Some(*digest_seen), refusal)
                    .await);
            }
        };
        let state = match watch.ledger.lookup(request_id) {
            Lookup::Open(r) => r.clone(),
            other => {
                let refusal = match other {
                    Lookup::Unknown => Refusal::UnknownRequest,
                    _ => Refusal::AlreadyDecided,
                };
                return Err(self
                    .refuse_approval(&fallback, request_id, approver, Some(*digest_seen), refusal)
                    .await);
            }
        };
        let refusal = if state.started.is_some() || state.is_approved() {
            Some(Refusal::AlreadyDecided)
        } else if *digest_seen != state.digest {
            Some(Refusal::DigestMismatch {
                expected: state.digest,
                found: *digest_seen,
            })
        } else if let Err(e) = identity::person(&approver.id, &self.config.operator) {
            Some(Refusal::InvalidIdentity {
                detail: e.to_string(),
            })
        } else if identity::same(&approver.id, &state.requester) && !self.config.allow_self_approval
        {
            Some(Refusal::SelfApproval)
        } else if state.approved_by(&approver.id) {
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
        // Written from the gate's clock; the ledger bounds it by the
        // approval event's own `at` plus the rule's lifetime in any case.
        let mut expires_at = (self.config.clock)().plus_seconds(state.ttl_seconds);
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
            controls: state.controls.clone(),
            signed,
        };
        let draft = self
            .draft(
                &state.session,
                EventKind::ActionApproved,
                approver.clone(),
                to_body(&body),
            )
            .with_once(approval_once(request_id, &approver.id));
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
            required: state.required,
            expires_at,
            seq: event.map_or(0, |e| e.seq),
        })
    }

    /// Denies a request that has not started (an approved request may still
    /// be denied before it starts: a revocation). Refused and recorded as
    /// `approval.refused` when the request is unknown, denied or started,
    /// and under a policy that declares approvers (then denials are signed:
    /// [`Gate::deny_signed`]).
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
        if self
            .policy
            .signers()
            .is_some_and(crate::approvers::Signers::requires_signatures)
        {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    request_id,
                    who,
                    None,
                    Refusal::Unsigned,
                )
                .await);
        }
        self.record_denial(request_id, who, reason, None).await
    }

    /// Records a denial signed elsewhere: its statement (`deny`, this chain,
    /// the request and its proposed digest) must verify against a key the
    /// policy in force declares for that approver or operator. Anything else
    /// is refused and recorded (`bad_signature`).
    ///
    /// # Errors
    /// As [`Gate::deny`], and [`Refusal::BadSignature`].
    pub async fn deny_signed(
        &self,
        decision: SignedDecision,
        reason: &str,
    ) -> Result<Event, GateError> {
        let who = Actor::human(decision.statement.approver.clone());
        let request_id = decision.statement.request_id.clone();
        let digest = match self.request(&request_id).await {
            Ok(Status::Open(r)) => Some(r.digest),
            _ => None,
        };
        let checked = match (self.policy.signers(), digest) {
            (Some(signers), Some(digest)) if signers.requires_signatures() => signers
                .check_denial(&decision, self.store.chain(), &request_id, &digest)
                .map_err(|e| e.to_string()),
            (_, None) => Ok(()), // unknown or closed: refused below, as unsigned ones are
            _ => Err("the policy in force declares no approvers or operators".to_owned()),
        };
        if let Err(detail) = checked {
            return Err(self
                .refuse_approval(
                    &self.config.session.clone(),
                    &request_id,
                    &who,
                    None,
                    Refusal::BadSignature { detail },
                )
                .await);
        }
        self.record_denial(&request_id, &who, reason, Some(decision))
            .await
    }

    async fn record_denial(
        &self,
        request_id: &str,
        who: &Actor,
        reason: &str,
        signed: Option<SignedDecision>,
    ) -> Result<Event, GateError> {
        let span = super::trace::span("deny", "", Some(request_id), &Digest::ZERO);
        let result = async {
            let fallback = self.config.session.clone();
            let watch = match self.check_chain().await {
                Ok(watch) => watch,
                Err(refusal) => {
                    return Err(self
                        .refuse_approval(&fallback, request_id, who, None, refusal)
                        .await);
                }
            };
            let session = match watch.ledger.lookup(request_id) {
                Lookup::Open(r) if r.started.is_none() => r.session.clone(),
                other => {
                    let refusal = match other {
                        Lookup::Unknown => Refusal::UnknownRequest,
                        _ => Refusal::AlreadyDecided,
                    };
                    return Err(self
                        .refuse_approval(&fallback, request_id, who, None, refusal)
                        .await);
                }
            };
            if let Err(e) = identity::person(&who.id, &self.config.operator) {
                let refusal = Refusal::InvalidIdentity {
                    detail: e.to_string(),
                };
                return Err(self
                    .refuse_approval(&session, request_id, who, None, refusal)
                    .await);
            }
            let body = DeniedBody {
                request_id: request_id.to_owned(),
                reason: reason.to_owned(),
                by: who.id.clone(),
                method: Method::Human,
                rule: None,
                signed,
            };
            let draft = self
                .draft(
                    &session,
                    EventKind::ActionDenied,
                    who.clone(),
                    to_body(&body),
                )
                .with_once(decision_once(request_id));
            match self.append(vec![draft]).await {
                Ok(mut events) => events.pop().ok_or_else(no_event),
                Err(StoreError::AlreadyUsed { .. }) => Err(self
                    .refuse_approval(&session, request_id, who, None, Refusal::AlreadyDecided)
                    .await),
                Err(StoreError::InvalidDraft(e)) => Err(GateError::Input {
                    what: "denial",
                    reason: e.to_string(),
                }),
                Err(e) => Err(e.into()),
            }
        }
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
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
        } else if !self.lock().store_hung {
            // Already degraded: record if possible, without degrading again
            // (not on a store that hangs: the refusal would wait on it).
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
        self.authorize_inner(request_id, action, None).await
    }

    /// [`Gate::authorize`] for one tool call of a harness, whose id
    /// (Claude Code's `tool_use_id`, an MCP request id) the start records as
    /// `call_id`, so the call's completion finds its request
    /// ([`Gate::started_request`]).
    ///
    /// # Errors
    /// As [`Gate::authorize`]; [`GateError::Input`] for a call id longer
    /// than [`MAX_CALL_ID_BYTES`] (nothing recorded).
    pub async fn authorize_call(
        &self,
        request_id: &str,
        action: &Action,
        call_id: &str,
    ) -> Result<Permit, GateError> {
        if call_id.len() > MAX_CALL_ID_BYTES {
            return Err(GateError::Input {
                what: "call id",
                reason: format!(
                    "{} bytes, more than the {MAX_CALL_ID_BYTES} an execution.started records",
                    call_id.len()
                ),
            });
        }
        self.authorize_inner(request_id, action, Some(call_id))
            .await
    }

    async fn authorize_inner(
        &self,
        request_id: &str,
        action: &Action,
        call_id: Option<&str>,
    ) -> Result<Permit, GateError> {
        let span = super::trace::span(
            "authorize",
            action.tool(),
            Some(request_id),
            &action.digest(),
        );
        if let Some(id) = call_id {
            span.record("gen_ai.tool.call.id", id);
        }
        let result = async {
            let fallback = self.config.session.clone();
            let mut watch = match self.check_chain().await {
                Ok(watch) => watch,
                Err(refusal) => return Err(self.reject(&fallback, request_id, refusal).await),
            };
            let state = match watch.ledger.lookup(request_id) {
                Lookup::Open(r) => r.clone(),
                Lookup::Unknown => {
                    return Err(self
                        .reject(&fallback, request_id, Refusal::UnknownRequest)
                        .await);
                }
                Lookup::Closed(Closed::Denied) => {
                    return Err(self.reject(&fallback, request_id, Refusal::Denied).await);
                }
                Lookup::Closed(_) => {
                    return Err(self
                        .reject(&fallback, request_id, Refusal::AlreadyUsed)
                        .await);
                }
            };
            let session = state.session.clone();
            if state.started.is_some() {
                return Err(self
                    .reject(&session, request_id, Refusal::AlreadyUsed)
                    .await);
            }
            if action.digest() != state.digest {
                return Err(self
                    .record_drift(&session, request_id, &state, action)
                    .await);
            }
            // Approvals count under the policy each was given under (the
            // ledger) *and* under this gate's own: a policy appended by whoever
            // can write the store cannot make an unsigned approval count here.
            let mut state = state;
            let approvals = std::mem::take(&mut state.approvals);
            state.approvals = approvals
                .into_iter()
                .filter(|a| self.proves_under_own_policy(&state, a))
                .collect();
            let refusal = if !state.is_approved() {
                Some(Refusal::NotApproved {
                    approvals: state.approval_count(),
                    required: state.required,
                })
            } else {
                match state.usable_until() {
                    Some(until) if self.now(&watch.ledger) >= until => {
                        Some(Refusal::Expired { expired_at: until })
                    }
                    Some(_) => None,
                    // Unreachable while approved (every request needs at
                    // least one approval): no bound is never "unexpired".
                    None => Some(Refusal::NotApproved {
                        approvals: 0,
                        required: state.required,
                    }),
                }
            };
            if let Some(refusal) = refusal {
                return Err(self.reject(&session, request_id, refusal).await);
            }
            // Every event the permit relies on is re-read and must still hold
            // the bytes verified; run from the recorded action, not the
            // caller's text.
            let mut relied = vec![(state.proposed_seq, state.proposed_hash)];
            relied.extend(state.approvals.iter().map(|a| (a.seq, a.hash)));
            let approved = match self.reread(&relied).await.and_then(|events| {
                body_of::<ProposedBody>(&events[0])
                    .map_err(|e| e.to_string())
                    .and_then(|p| Action::from_value(p.action).map_err(|e| e.to_string()))
            }) {
                Ok(a) if a.digest() == state.digest => a,
                Ok(_) => {
                    let refusal = self
                        .degrade(format!(
                            "event {} records an action that does not match its digest",
                            state.proposed_seq
                        ))
                        .await;
                    return Err(self.reject(&session, request_id, refusal).await);
                }
                Err(reason) => {
                    let refusal = self.degrade(reason).await;
                    return Err(self.reject(&session, request_id, refusal).await);
                }
            };
            let body = StartedBody {
                request_id: request_id.to_owned(),
                approved_digest: state.digest,
                executed_digest: approved.digest(),
                controls: state.controls.clone(),
                call_id: call_id.map(str::to_owned),
            };
            // The start takes the request's decision key: of a revocation and a
            // start racing, whichever the store records first wins.
            let draft = self
                .draft(
                    &session,
                    EventKind::ExecutionStarted,
                    self.system_actor(),
                    to_body(&body),
                )
                .with_once(decision_once(request_id));
            let (started, folded) = match self.append(vec![draft]).await {
                Ok(events) => {
                    let folded = self.fold_own(&mut watch, &events);
                    (events.into_iter().next(), folded)
                }
                Err(StoreError::AlreadyUsed { .. }) => {
                    // A denial or another start won the key: say which, from the
                    // verified chain.
                    let refusal = match self.verify_into(&mut watch).await {
                        Ok(_) => match watch.ledger.lookup(request_id) {
                            Lookup::Closed(Closed::Denied) => Refusal::Denied,
                            _ => Refusal::AlreadyUsed,
                        },
                        Err(_) => Refusal::AlreadyUsed,
                    };
                    return Err(self.reject(&session, request_id, refusal).await);
                }
                Err(e) => {
                    // The append degraded the gate already (unless the draft
                    // was refused, which a valid state cannot produce).
                    let reason = self
                        .degraded()
                        .unwrap_or_else(|| format!("cannot record execution.started: {e}"));
                    return Err(GateError::Refused {
                        request_id: request_id.to_owned(),
                        refusal: Refusal::Degraded { reason },
                    });
                }
            };
            let started_seq = started.map_or(0, |e| e.seq);
            // Single use from the hashed events, not only the store's key: the
            // start just recorded must be the request's first start, after no
            // denial.
            // When the start directly follows the verified head it is folded
            // in as appended; otherwise the chain is read and verified.
            let pass = if folded {
                Ok(None)
            } else {
                self.verify_into(&mut watch)
                    .await
                    .map(|pass| pass.violation)
            };
            let holds = match pass {
                Ok(None) => match watch.ledger.lookup(request_id) {
                    Lookup::Open(r) if r.started == Some(started_seq) => Ok(()),
                    _ => Err(format!(
                        "request {request_id}: the start at seq {started_seq} is not its first \
                         decision on the verified chain; a single-use key did not hold"
                    )),
                },
                Ok(Some(violation)) => Err(format!("chain does not verify: {violation}")),
                Err(e) => Err(format!("cannot read the chain: {e}")),
            };
            if let Err(reason) = holds {
                let refusal = self.degrade(reason).await;
                return Err(GateError::Refused {
                    request_id: request_id.to_owned(),
                    refusal,
                });
            }
            Ok(Permit {
                request_id: request_id.to_owned(),
                session,
                action: approved,
                started_seq,
                controls: state.controls.clone(),
            })
        }
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
    }

    /// Records `execution.digest_mismatch` for an action that is not the
    /// proposed one (approved or not), with both digests; an action too
    /// large to record whole is recorded by its first bytes.
    async fn record_drift(
        &self,
        session: &str,
        request_id: &str,
        state: &Request,
        action: &Action,
    ) -> GateError {
        let canonical = action.canonical_bytes();
        let (recorded, prefix) = if canonical.len() > MAX_RECORDED_BYTES {
            let text = String::from_utf8_lossy(canonical);
            (Value::Null, Some(truncate(&text, MAX_RECORDED_BYTES).0))
        } else {
            (action.to_value(), None)
        };
        let body = MismatchBody {
            request_id: request_id.to_owned(),
            approved_digest: state.digest,
            executed_digest: action.digest(),
            action: recorded,
            action_prefix: prefix,
            action_bytes: Some(u64::try_from(canonical.len()).unwrap_or(u64::MAX)),
        };
        let draft = self.draft(
            session,
            EventKind::ExecutionDigestMismatch,
            self.system_actor(),
            to_body(&body),
        );
        let _ = self.append(vec![draft]).await;
        GateError::Refused {
            request_id: request_id.to_owned(),
            refusal: Refusal::DigestMismatch {
                expected: state.digest,
                found: action.digest(),
            },
        }
    }

    /// Whether a counted approval also proves under this gate's policy:
    /// always when it declares no approvers; else a person's approval must
    /// carry a signed decision by a key this policy lists for that approver
    /// (with the request's roles), and a policy approval must be of a
    /// request the policy auto-approved.
    fn proves_under_own_policy(&self, request: &Request, approval: &Counted) -> bool {
        let Some(signers) = self.policy.signers().filter(|s| s.requires_signatures()) else {
            return true;
        };
        match approval.method {
            Method::Policy => request.decision == Decision::AutoApprove,
            _ => approval.decision.as_ref().is_some_and(|d| {
                identity::same(&d.statement.approver, &approval.approver)
                    && signers
                        .check_approval(
                            d,
                            self.store.chain(),
                            &request.request_id,
                            &request.digest,
                            &request.approver_roles,
                        )
                        .is_ok()
            }),
        }
    }

    /// The time expiry is judged by: the later of the gate's clock and the
    /// store's clock as the verified chain shows it (its latest `at`), so a
    /// gate whose clock runs slow does not stretch an approval.
    pub(super) fn now(&self, ledger: &crate::protocol::Ledger) -> Timestamp {
        let clock = (self.config.clock)();
        ledger.last_at().map_or(clock, |at| at.max(clock))
    }

    /// The request a tool call started, for a harness whose completion
    /// arrives in another process than the start (a hook's `PostToolUse`):
    /// among the verified chain's started, uncompleted requests of
    /// `session` whose proposed digest is `digest`, the one whose start
    /// recorded `call_id`, else the oldest. `None` when there is none.
    ///
    /// # Errors
    /// [`GateError::Refused`] with [`Refusal::Degraded`] when the chain
    /// does not verify.
    pub async fn started_request(
        &self,
        session: &str,
        digest: &Digest,
        call_id: Option<&str>,
    ) -> Result<Option<String>, GateError> {
        let watch = self
            .check_chain()
            .await
            .map_err(|refusal| GateError::Refused {
                request_id: String::new(),
                refusal,
            })?;
        let mut started: Vec<&Request> = watch
            .ledger
            .open()
            .filter(|r| {
                r.started.is_some()
                    && r.completed.is_none()
                    && r.session == session
                    && r.digest == *digest
            })
            .collect();
        started.sort_by_key(|r| r.proposed_seq);
        let chosen = call_id
            .and_then(|id| started.iter().find(|r| r.call_id.as_deref() == Some(id)))
            .or(started.first());
        Ok(chosen.map(|r| r.request_id.clone()))
    }

    /// Records `execution.completed` for a request started by another
    /// process (so no [`Permit`] is at hand): the verified chain must show
    /// it started and not completed.
    ///
    /// # Errors
    /// [`GateError::Refused`] with [`Refusal::UnknownRequest`] or
    /// [`Refusal::NotApproved`] when it is not a started request,
    /// [`Refusal::AlreadyUsed`] when it already completed,
    /// [`Refusal::Degraded`] when the chain does not verify; as
    /// [`Gate::complete`].
    pub async fn complete_started(
        &self,
        request_id: &str,
        outcome: Outcome,
    ) -> Result<Event, GateError> {
        let refused = |refusal| GateError::Refused {
            request_id: request_id.to_owned(),
            refusal,
        };
        let watch = self.check_chain().await.map_err(refused)?;
        let request = match watch.ledger.lookup(request_id) {
            Lookup::Open(r) if r.started.is_some() => r.clone(),
            Lookup::Open(r) => {
                return Err(refused(Refusal::NotApproved {
                    approvals: r.approval_count(),
                    required: r.required,
                }));
            }
            Lookup::Unknown | Lookup::Closed(Closed::Denied) => {
                return Err(refused(Refusal::UnknownRequest));
            }
            Lookup::Closed(Closed::Completed) => return Err(refused(Refusal::AlreadyUsed)),
        };
        drop(watch);
        self.record_completion(
            &request.request_id,
            &request.session,
            &request.controls,
            None,
            &request.digest,
            outcome,
        )
        .await
    }

    /// Records `execution.completed` for a permit.
    ///
    /// # Errors
    /// [`GateError::Store`] when it cannot be recorded (the gate then
    /// degrades; the chain shows the execution started and never completed).
    pub async fn complete(&self, permit: Permit, outcome: Outcome) -> Result<Event, GateError> {
        self.record_completion(
            &permit.request_id,
            &permit.session,
            &permit.controls,
            Some(permit.action().tool()),
            &permit.digest(),
            outcome,
        )
        .await
    }

    async fn record_completion(
        &self,
        request_id: &str,
        session: &str,
        controls: &[String],
        tool: Option<&str>,
        digest: &Digest,
        outcome: Outcome,
    ) -> Result<Event, GateError> {
        let span = super::trace::span("complete", tool.unwrap_or(""), Some(request_id), digest);
        let result = async {
            let (error, error_bytes) = match outcome.error {
                Some(text) if text.len() > MAX_RECORDED_BYTES => {
                    let (kept, full) = truncate(&text, MAX_RECORDED_BYTES);
                    (Some(kept), full)
                }
                other => (other, None),
            };
            let body = CompletedBody {
                request_id: request_id.to_owned(),
                outcome: outcome.kind,
                exit_code: outcome.exit_code,
                result_digest: outcome.result_digest,
                error,
                error_bytes,
                controls: controls.to_vec(),
            };
            let draft = self
                .draft(
                    session,
                    EventKind::ExecutionCompleted,
                    self.system_actor(),
                    to_body(&body),
                )
                .with_once(format!("execution.completed:{request_id}"));
            let mut events = self.append(vec![draft]).await?;
            events.pop().ok_or_else(no_event)
        }
        .instrument(span.clone())
        .await;
        super::trace::record(&span, &result);
        result
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
    /// `gate.recovered` with the operator and reason. Under a policy that
    /// declares operators a recovery must be signed: use
    /// [`Gate::recover_signed`].
    ///
    /// # Errors
    /// [`GateError::StillBroken`] when the chain still does not verify (the
    /// gate stays degraded); [`GateError::Refused`] with
    /// [`Refusal::Unsigned`] under a policy that declares operators;
    /// [`GateError::Store`] when the store cannot be read or written.
    pub async fn recover(&self, operator: &Actor, reason: &str) -> Result<Event, GateError> {
        if self
            .policy
            .signers()
            .is_some_and(crate::approvers::Signers::requires_operator)
        {
            return Err(GateError::Refused {
                request_id: "gate".to_owned(),
                refusal: Refusal::Unsigned,
            });
        }
        self.record_recovery(operator, reason, None).await
    }

    /// The statement subject an operator signs to recover this gate:
    /// `recover:<seq>` of the last `gate.degraded` on the chain, with that
    /// event's hash as the digest (so a signature ends one degradation
    /// only), or `recover:none` and the zero digest when none is recorded.
    ///
    /// # Errors
    /// [`GateError::Store`] when the chain cannot be read.
    pub async fn recovery_subject(&self) -> Result<(String, Digest), GateError> {
        let (fresh, _) = self.verify_all().await?;
        Ok(fresh.ledger.recovery_subject())
    }

    /// Recovers with an operator's signed decision (`recover`, for
    /// [`Gate::recovery_subject`]): checked against the operators the
    /// policy in force declares, then as [`Gate::recover`].
    ///
    /// # Errors
    /// As [`Gate::recover`], and [`GateError::Refused`] with
    /// [`Refusal::BadSignature`] when the decision does not verify.
    pub async fn recover_signed(
        &self,
        decision: SignedDecision,
        reason: &str,
    ) -> Result<Event, GateError> {
        let (subject, digest) = self.recovery_subject().await?;
        let checked = match self.policy.signers() {
            Some(signers) if signers.requires_operator() => signers
                .check_operator(
                    &decision,
                    self.store.chain(),
                    &subject,
                    &digest,
                    crate::decision::Decision::Recover,
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => Err("the policy in force declares no operators".to_owned()),
        };
        if let Err(detail) = checked {
            return Err(GateError::Refused {
                request_id: "gate".to_owned(),
                refusal: Refusal::BadSignature { detail },
            });
        }
        let operator = Actor::human(decision.statement.approver.clone());
        self.record_recovery(&operator, reason, Some(decision))
            .await
    }

    async fn record_recovery(
        &self,
        operator: &Actor,
        reason: &str,
        signed: Option<SignedDecision>,
    ) -> Result<Event, GateError> {
        let mut watch = self.watch.lock().await;
        let (fresh, pass) = self.verify_all().await?;
        if let Some(violation) = pass.violation {
            return Err(GateError::StillBroken(violation));
        }
        let body = GateStatusBody {
            reason: reason.to_owned(),
            operator: operator.id.clone(),
            signed,
        };
        let draft = self.draft(
            &self.config.session,
            EventKind::GateRecovered,
            operator.clone(),
            to_body(&body),
        );
        let mut events = self.store.append(&[draft]).await?;
        let event = events.pop().ok_or_else(no_event)?;
        *watch = fresh;
        let mut cursor = self.lock();
        cursor.chain_degraded = None;
        cursor.local_degraded = None;
        cursor.store_hung = false;
        Ok(event)
    }
}

/// The most bytes of an action or an error text an event records; longer
/// ones are recorded by their first bytes and their full length.
pub const MAX_RECORDED_BYTES: usize = 64 * 1024;

/// The first `max` bytes of `text` at a character boundary, and the full
/// length when it was cut.
fn truncate(text: &str, max: usize) -> (String, Option<u64>) {
    if text.len() <= max {
        return (text.to_owned(), None);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (
        text[..end].to_owned(),
        Some(u64::try_from(text.len()).unwrap_or(u64::MAX)),
    )
}

/// The single-use key of a request's decision: its denial or its start.
fn decision_once(request_id: &str) -> String {
    crate::protocol::once_keys(EventKind::ActionDenied, request_id, None).remove(0)
}

/// The single-use key of one approver's approval (the approver in normal
/// form, so `Bob` and `bob` cannot both approve).
fn approval_once(request_id: &str, approver: &str) -> String {
    crate::protocol::once_keys(EventKind::ActionApproved, request_id, Some(approver)).remove(0)
}

fn no_event() -> GateError {
    GateError::Store(StoreError::Other {
        store: "unknown",
        source: "append returned no event".into(),
    })
}
