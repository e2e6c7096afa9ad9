"""Referrals to community organizations: reading them, and the status updates that move them and their
pathway (`POST /api/referrals/{id}/status`): by the organization's integration account, on the referrals it
owns, or by the episode's case managers and community health workers after a phone call.

One transaction: the referral row (locked; `version`, when given, must be the one the caller read), its
history, the audit event, and the message `referral_status` (correlated by case id and domain) delivered to
the waiting pathway in the same unit of work (`messages.deliver_in`), else buffered until it waits. The
pathway's own steps send and update referrals through `referral_steps.py`, under the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import Conflict, NotFound, ValidationFailed
from ..identity import Principal, Role, instance_scope
from ..model import ReferralStatus
from ..patient_links import linked_patients
from ..persistence.referral_tables import Referral
from ..persistence.tables import Instance
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instances_visible_to
from ..rules import REFERRAL_RULES, ReferralFacts, check, refusal
from ..sdoh.instruments import DOMAINS
from .messages import deliver_in
from .referral_steps import STATUS, change_referral, correlation_key, message_data, transition
from .store import with_conflict_retries

MAX_REASON = 2000


@dataclass(frozen=True)
class ReferralView:
    id: str
    instance_id: str
    case_id: str
    patient_id: str | None
    domain: str
    service_id: str
    service_name: str
    organization_id: str | None
    organization_name: str | None
    status: str
    status_reason: str | None
    outcome: str | None
    consent: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    history: list[dict[str, Any]]
    actions: list[str]
    note: str | None = None  # the referral note the ServiceRequest carries (api/fhir/referrals.py)


@dataclass(frozen=True)
class ReferralFilters:
    patient: str | None = None
    status: str | None = None
    domain: str | None = None
    # for FHIR search (api/fhir/referrals.py): these referrals only, this organization's, changed within
    ids: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    domains: tuple[str, ...] | None = None
    organization: str | None = None
    patient_ref: str | None = None  # a Patient id (FHIR): its episodes, and those of the patients merged with it
    changed: tuple[tuple[str, datetime], ...] = ()


def list_referrals(app: CarePath, principal: Principal, filters: ReferralFilters, limit: int,
                   offset: int) -> list[ReferralView]:
    """The referrals this user may see, newest first: one SQL query on the table."""
    if filters.status is not None and filters.status not in {s.value for s in ReferralStatus}:
        raise ValidationFailed(f"'{filters.status}' is not a referral status "
                               f"({', '.join(s.value for s in ReferralStatus)})")
    if filters.domain is not None and filters.domain not in DOMAINS:
        raise ValidationFailed(f"'{filters.domain}' is not a domain ({', '.join(DOMAINS)})")
    with app.db.read() as session:
        query = _visible(select(Referral), session, principal)
        for column, value in ((Referral.patient_id, filters.patient), (Referral.status, filters.status),
                              (Referral.domain, filters.domain), (Referral.organization_id, filters.organization)):
            if value is not None:
                query = query.where(column == value)
        for column, values in ((Referral.id, filters.ids), (Referral.status, filters.statuses),
                               (Referral.domain, filters.domains)):
            if values is not None:
                query = query.where(column.in_(values))
        if filters.patient_ref is not None:
            episodes = select(Instance.id).where(Instance.patient_ref.in_(linked_patients(session,
                                                                                          filters.patient_ref)))
            query = query.where(Referral.instance_id.in_(episodes))
        for operator, moment in filters.changed:
            query = query.where(_compare(Referral.updated_at, operator, moment))
        rows = session.scalars(query.order_by(Referral.created_at.desc(), Referral.id).limit(limit).offset(offset))
        return [_view(row, principal) for row in rows]


def get_referral(app: CarePath, principal: Principal, referral_id: str) -> ReferralView:
    with app.db.read() as session:
        referral = _readable(session, principal, referral_id)
        return _view(referral, principal)


def update_referral_status(app: CarePath, principal: Principal, referral_id: str, status: str,
                           status_reason: str | None = None, outcome: str | None = None,
                           version: int | None = None) -> ReferralView:
    """Give the referral a status (and its reason) or an outcome; the pathway hears of it at once."""
    if status_reason is not None and len(status_reason) > MAX_REASON:
        raise ValidationFailed(f"status_reason is longer than {MAX_REASON} characters")

    def attempt() -> str:
        with UnitOfWork(app) as uow:
            referral = _readable(uow.session, principal, referral_id)
            rule = transition(referral, status)
            check(rule, _facts(referral), principal)
            if version is not None and version != referral.lock_version:
                raise Conflict(f"referral {referral.id} changed since version {version} was read (now "
                               f"{referral.lock_version}); read it again")
            uow.session.get(Instance, referral.instance_id, with_for_update=True)  # the pathway's order
            uow.session.refresh(referral, with_for_update=True)
            change_referral(uow, referral, status, status_reason, outcome, principal.name)
            uow.session.flush()
            deliver_in(uow, principal, STATUS, correlation_key(referral), message_data(referral))
            uow.commit()
            return referral.id

    with_conflict_retries(app, attempt)
    return get_referral(app, principal, referral_id)


def cancel_referral(app: CarePath, principal: Principal, referral_id: str, reason: str) -> ReferralView:
    """Either side cancels an open referral, with the reason (Gravity: statusReason is required)."""
    return update_referral_status(app, principal, referral_id, "cancelled", reason)


def _compare(column: Any, operator: str, moment: datetime) -> Any:
    return {"eq": column == moment, "ge": column >= moment, "gt": column > moment, "le": column <= moment,
            "lt": column < moment}[operator]


def _visible(query: Any, session: Session, principal: Principal) -> Any:
    if principal.role is Role.INTEGRATION:  # reads no episode: only the referrals its organization owns
        return query.where(Referral.partner_account == principal.name)
    scope = instance_scope(principal)
    if scope is None:
        return query
    return query.where(Referral.instance_id.in_(select(Instance.id).where(instances_visible_to(session, *scope))))


def _readable(session: Session, principal: Principal, referral_id: str) -> Referral:
    referral = session.scalars(_visible(select(Referral).where(Referral.id == referral_id), session,
                                        principal)).first()
    if referral is None:
        raise NotFound(f"referral {referral_id} does not exist")
    return referral


def _facts(referral: Referral) -> ReferralFacts:
    """`readable`: `_readable` found it for this caller."""
    return ReferralFacts.of(referral)


def _view(referral: Referral, principal: Principal) -> ReferralView:
    facts = _facts(referral)
    actions = [action for action, rule in REFERRAL_RULES.items()
               if not rule.by_system and refusal(rule, facts, principal) is None]
    return ReferralView(
        id=referral.id, instance_id=referral.instance_id, case_id=referral.case_id, patient_id=referral.patient_id,
        domain=referral.domain, service_id=referral.service_id, service_name=referral.service_name,
        organization_id=referral.organization_id, organization_name=referral.organization_name,
        status=referral.status, status_reason=referral.status_reason, outcome=referral.outcome,
        consent=referral.consent, created_by=referral.created_by, created_at=referral.created_at,
        updated_at=referral.updated_at, closed_at=referral.closed_at, version=referral.lock_version,
        history=list(referral.history or []), actions=actions, note=referral.note)
