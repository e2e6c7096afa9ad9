"""Referrals sent and updated by a pathway's own steps, inside the transaction that completes the step.

The sidecar's `referral_steps` (engine/definitions/_referral_steps.py) marks the user tasks: completing a
`send` step ("Choose a service") creates the referral to the chosen directory service, refused (422) without
the patient's consent or for a service the directory does not have; completing a `record` step ("Follow up
on the referral") with a status or an outcome updates the task's referral through the same rules as
`POST /api/referrals/{id}/status`. Either way the pathway hears of it by a message (`referral_sent`,
`referral_status`, correlated by case id and domain) that is buffered here and handed to the instance by
`after_engine_steps` in the same transaction, so the referral and the pathway never disagree.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import Conflict, Problem, ValidationFailed
from ..model import MessageState, ReferralStatus, ServiceStatus
from ..persistence.consent_tables import organization_key, patient_key, withdrawal
from ..persistence.directory_tables import ResourceOrganization, ResourceService
from ..persistence.partner_tables import PartnerOrganization
from ..persistence.referral_tables import Referral
from ..persistence.tables import BufferedMessage, Instance
from ..persistence.unit_of_work import UnitOfWork
from ..rules import REASON_REQUIRED, REFERRAL_ACTIONS, REFERRAL_RULES, Rule
from ..runtime.workflow import RunningWorkflow
from ..sdoh.fhir_referral import referral_bundle
from ..sdoh.instruments import DOMAINS
from .outbox import enqueue_delivery
from .partners import partner_for_directory_organization

OUTCOMES = ("got-help", "couldnt-contact", "not-eligible", "no-capacity", "no-longer-interested",
            "referred-elsewhere")
SENT, STATUS = "referral_sent", "referral_status"  # the messages the pathway waits for


def correlation_key(referral: Referral) -> str:
    """What the pathway's `referral_key` is for this need: the case id (business key) and the domain."""
    return f"{referral.case_id}:{referral.domain}"


def referral_step_completed(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow, task_id: str,
                            actor: str) -> None:
    """Apply the referral step the completed task declares, if any."""
    if not any("referral" in rule for rule in workflow.task_rules.values()):
        return  # a pathway without referral steps: nothing to read
    element_id, data = workflow.task_data(task_id)
    step = workflow.task_rules.get(element_id, {}).get("referral")
    if not step:
        return
    if step["action"] == "send":
        send_referral(uow, instance, data, actor)
    else:
        record_from_task(uow, instance, data, step.get("outcome_field") or "outcome", actor)


def send_referral(uow: UnitOfWork, instance: Instance, data: dict[str, Any], actor: str) -> Referral:
    domain, service_id = data.get("domain"), str(data.get("service_id") or "").strip()
    if domain not in DOMAINS:
        raise ValidationFailed(f"a referral needs the need's domain ({', '.join(DOMAINS)}); the task has {domain!r}")
    if data.get("consent_to_share") is not True:
        raise Conflict(f"no referral for {domain} without the patient's consent to share information with a "
                       "community organization (record it in 'Confirm need and consent')")
    service = uow.session.get(ResourceService, service_id)
    if service is None or service.status in (ServiceStatus.INACTIVE, ServiceStatus.DEFUNCT):
        problem = f"'{service_id}' is not an active service of the resource directory"
        raise ValidationFailed(problem, [Problem(problem, field="service_id")])
    organization = uow.session.get(ResourceOrganization, service.organization_id) if service.organization_id else None
    if withdrawal(uow.session, patient_key(instance.patient_id, instance.business_key or ""),
                  organization_key(service.organization_id, service.id)) is not None:
        raise Conflict(f"the patient withdrew consent to share information with "
                       f"{organization.name if organization else service.name}: choose another organization")
    now = uow.app.now()
    referral = Referral(id=str(uuid.uuid4()), instance_id=instance.id, case_id=instance.business_key,
                        patient_id=instance.patient_id, domain=domain, service_id=service.id, service_name=service.name,
                        organization_id=service.organization_id, organization_name=organization.name if organization
                        else None, partner_account=None, status=ReferralStatus.REQUESTED.value, status_reason=None,
                        outcome=None, consent=True, note=data.get("referral_note"), history=[], created_by=actor,
                        created_at=now, updated_at=now, closed_at=None)
    _note(referral, REFERRAL_RULES["send"], actor, None, referral.status, None)
    uow.session.add(referral)
    uow.session.flush()
    uow.record("referral_sent", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
               data={"referral_id": referral.id, "domain": domain, "service_id": service.id,
                     "organization_id": referral.organization_id, "field": "status", "old": None,
                     "new": referral.status})
    buffer_for_pathway(uow, referral, SENT, actor)
    referral_created(uow, referral)
    return referral


def referral_created(uow: UnitOfWork, referral: Referral) -> None:
    """Called once a referral is created, in its transaction. An organization in the partner registry gets
    the referral electronically: its integration account becomes the one that may set the organization's
    statuses on it, and the FHIR ServiceRequest and referral Task (engine/sdoh/fhir_referral.py) are queued
    on the signed-webhook outbox, sent once this transaction commits. Without a partner (or one without an
    endpoint) the referral is printed or phoned, and its updates are entered by the case manager."""
    partner_id = partner_for_directory_organization(uow, referral.organization_id) if referral.organization_id \
        else None
    partner = uow.session.get(PartnerOrganization, partner_id) if partner_id else None
    if partner is None:
        return
    referral.partner_account = partner.account
    if partner.endpoint_url:
        enqueue_delivery(uow, partner_id=partner.id, kind="sdoh-referral", payload=referral_bundle(referral),
                         idempotency_key=f"referral:{referral.id}:requested")


def record_from_task(uow: UnitOfWork, instance: Instance, data: dict[str, Any], outcome_field: str,
                     actor: str) -> None:
    status, outcome = data.get("status") or None, data.get(outcome_field) or None
    if outcome not in OUTCOMES:
        outcome = None  # e.g. next_step "choose-another-service": not an outcome
    if status is None and outcome is None:
        return
    referral = uow.session.get(Referral, str(data.get("referral_id") or ""), with_for_update=True)
    if referral is None or referral.instance_id != instance.id:
        raise Conflict("this step has no referral to record the status of")
    change_referral(uow, referral, status or referral.status, data.get("status_reason"), outcome, actor)
    buffer_for_pathway(uow, referral, STATUS, actor)


def transition(referral: Referral, status: str) -> Rule:
    """The rule row that takes the referral to `status` (its own status: recording an outcome)."""
    if status == referral.status:
        return REFERRAL_RULES["record_outcome"]
    try:
        return REFERRAL_RULES[REFERRAL_ACTIONS[ReferralStatus(status)]]
    except (ValueError, KeyError):
        allowed = ", ".join(s.value for s in REFERRAL_ACTIONS)
        raise ValidationFailed(f"'{status}' is not a status a referral can be given ({allowed})",
                               [Problem(f"unknown status '{status}'", field="status")]) from None


def change_referral(uow: UnitOfWork, referral: Referral, status: str, reason: str | None, outcome: str | None,
                    actor: str) -> Rule:
    """Move the referral (the caller checked who may): state, reason, outcome, its own history, the audit's."""
    rule = transition(referral, status)
    _check_values(rule, referral, status, reason, outcome)
    if referral.status not in rule.from_states:
        raise Conflict(f"{rule.title}: referral {referral.id} is {referral.status}; allowed from "
                       f"{', '.join(s.value for s in rule.from_states)}")
    old = referral.status if rule.to else referral.outcome
    if rule.to:
        referral.status = rule.to[0].value
        referral.status_reason = reason or None
    if status == ReferralStatus.COMPLETED and outcome is None and referral.outcome is None:
        outcome = "got-help"  # the organization served the patient
    if outcome is not None:
        referral.outcome = outcome
        referral.closed_at = referral.closed_at or uow.app.now()
    referral.updated_at = uow.app.now()
    new = referral.status if rule.to else referral.outcome
    _note(referral, rule, actor, old, new, reason)
    instance = uow.session.get(Instance, referral.instance_id)
    uow.record(rule.event or rule.action, actor, instance_id=referral.instance_id,
               pathway_version_id=instance.pathway_version_id if instance else None,
               data={"referral_id": referral.id, "domain": referral.domain, "field": rule.field, "old": old,
                     "new": new, "status_reason": reason, "outcome": referral.outcome})
    return rule


def _check_values(rule: Rule, referral: Referral, status: str, reason: str | None, outcome: str | None) -> None:
    if outcome is not None and outcome not in OUTCOMES:
        raise ValidationFailed(f"'{outcome}' is not a referral outcome ({', '.join(OUTCOMES)})",
                               [Problem(f"unknown outcome '{outcome}'", field="outcome")])
    if rule.to and rule.to[0] in REASON_REQUIRED and not (reason or "").strip():
        raise ValidationFailed(f"a referral {status} needs a reason (status_reason)",
                               [Problem("status_reason is required for this status", field="status_reason")])
    if not rule.to and outcome is None:
        raise ValidationFailed(f"referral {referral.id} is already {referral.status}: give another status or an "
                               "outcome", [Problem("nothing to change", field="status")])


def _note(referral: Referral, rule: Rule, actor: str, old: Any, new: Any, reason: str | None) -> None:
    entry = {"at": referral.updated_at.isoformat(), "by": actor, "action": rule.action, "old": old, "new": new}
    referral.history = [*(referral.history or []), {**entry, **({"status_reason": reason} if reason else {})}]


def message_data(referral: Referral) -> dict[str, Any]:
    return {"referral_id": referral.id, "status": referral.status, "status_reason": referral.status_reason,
            "outcome": referral.outcome, "at": referral.updated_at.isoformat()}


def buffer_for_pathway(uow: UnitOfWork, referral: Referral, name: str, actor: str) -> None:
    """The message for the instance that is completing a step now: `after_engine_steps` hands it over to
    the catch it waits at, in this transaction."""
    now = uow.app.now()
    uow.session.add(BufferedMessage(message_id=None, name=name, correlation_key=correlation_key(referral),
                                    data=message_data(referral), state=MessageState.BUFFERED.value,
                                    received_at=now, expires_at=now + uow.app.config.message_ttl, sender=actor,
                                    sender_scope=None))
    uow.session.flush()
