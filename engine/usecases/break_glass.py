"""Break-glass access (HIPAA §164.312(a)(2)(ii), emergency access): a user who must read a patient's record
outside their teams gives a reason and gets a grant for a limited time.

While the grant runs, the engine's visibility (identity.instance_scope / task_scope, queries._visible and
instances_visible_to) includes every instance and task of that patient for that user: the API and the web
app read through them, so both honour it. The grant reads, it does not act: actions on another team's task
or instance are refused with a 403 that says so (rules.TaskFacts.hidden). The grants active at the start
of a request ride on the authenticated Principal (`with_break_glass`, called where a request is
authenticated); each read of the patient's record while one runs is marked with its id
(`record_viewed` data `break_glass`). Auditors review every grant and the reads made under it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import Problem, ValidationFailed
from ..identity import Principal, Role, require_role
from ..model import RECORD_VIEWED, GrantState
from ..patient_links import linked_patient_ids
from ..persistence.tables import BreakGlassGrant, Event
from ..persistence.unit_of_work import UnitOfWork
from ..rules import (
    BREAK_GLASS_MAX_MINUTES,
    BREAK_GLASS_MINUTES,
    GRANT_RULES,
    GrantFacts,
    allowed_actions,
    check,
    check_role,
)
from .access import Client, client_data

DEFAULT_MINUTES = BREAK_GLASS_MINUTES
MAX_MINUTES = BREAK_GLASS_MAX_MINUTES
MIN_REASON = 10
MAX_REASON = 1000
MAX_PATIENT_ID = 255
REVIEW_LIMIT = 500  # grants on one review page; reads listed per grant up to READS_PER_GRANT
READS_PER_GRANT = 200


@dataclass(frozen=True)
class GrantView:
    id: int
    user: str
    patient_id: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    active: bool
    actions: tuple[str, ...] = ()  # what the reader may do to it now (rules.allowed_actions): "end"


@dataclass(frozen=True)
class ReadUnderGrant:
    at: datetime
    what: str
    instance_id: str | None
    task_id: str | None


@dataclass(frozen=True)
class GrantReview:
    grant: GrantView
    reads: list[ReadUnderGrant]
    reads_total: int


def break_glass(app: CarePath, principal: Principal, patient_id: str, reason: str,
                minutes: int = DEFAULT_MINUTES) -> GrantView:
    """Grant the user emergency read access to the patient for `minutes`, recorded as
    `break_glass_granted`; ValidationFailed for a missing or too long reason, patient id or duration."""
    check_role(GRANT_RULES["break_glass"], principal)
    patient_id, reason = patient_id.strip(), " ".join(reason.split())
    _check(patient_id, reason, minutes)
    now = app.now()
    with UnitOfWork(app) as uow:
        row = BreakGlassGrant(user_name=principal.name, patient_id=patient_id, reason=reason, granted_at=now,
                              expires_at=now + timedelta(minutes=minutes), ended_at=None)
        uow.session.add(row)
        uow.session.flush()
        uow.record("break_glass_granted", principal.name, data={
            "grant": row.id, "user": principal.name, "patient_id": patient_id, "reason": reason,
            "minutes": minutes, "expires_at": row.expires_at.isoformat()})
        uow.after_commit(app.principals.clear)  # the grant widens the next request's reads
        uow.commit()
        return _view(row, now, principal)


def end_grant(app: CarePath, principal: Principal, grant_id: int) -> GrantView:
    """End a running grant before its time (GRANT_RULES["end"]): from now on it widens nothing. Recorded as
    `break_glass_ended`; NotFound for a grant the user may not see, InvalidTransition for one that ended."""
    rule = GRANT_RULES["end"]
    check_role(rule, principal)
    now = app.now()
    with UnitOfWork(app) as uow:
        row = uow.session.get(BreakGlassGrant, grant_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise GrantFacts(grant_id, "", GrantState.ACTIVE).not_found()
        check(rule, grant_facts(row, now), principal)
        row.ended_at = now
        uow.record("break_glass_ended", principal.name, data={
            "grant": row.id, "user": row.user_name, "patient_id": row.patient_id, "ended_by": principal.name,
            "expires_at": row.expires_at.isoformat()})
        uow.after_commit(app.principals.clear)
        uow.commit()
        return _view(row, now, principal)


def grant_state(row: BreakGlassGrant, now: datetime) -> GrantState:
    if row.ended_at is not None:
        return GrantState.ENDED
    return GrantState.ACTIVE if row.granted_at <= now < row.expires_at else GrantState.EXPIRED


def grant_facts(row: BreakGlassGrant, now: datetime) -> GrantFacts:
    return GrantFacts(row.id, row.user_name, grant_state(row, now))


def _check(patient_id: str, reason: str, minutes: int) -> None:
    problems: list[Problem] = []
    if not patient_id or len(patient_id) > MAX_PATIENT_ID or "\x00" in patient_id:
        problems.append(Problem(f"give the patient's id (at most {MAX_PATIENT_ID} characters)", field="patient_id"))
    if len(reason) < MIN_REASON or len(reason) > MAX_REASON or "\x00" in reason:
        problems.append(Problem(f"say why you need this patient's record now ({MIN_REASON} to {MAX_REASON} "
                                "characters): it is kept for the auditors' review", field="reason"))
    if not 1 <= minutes <= MAX_MINUTES:
        problems.append(Problem(f"the access lasts from 1 to {MAX_MINUTES} minutes", field="minutes"))
    if problems:
        raise ValidationFailed("break-glass access was not granted: " + "; ".join(p.message for p in problems),
                               problems)


def active_grants(session: Session, user: str, now: datetime) -> tuple[tuple[str, int], ...]:
    """The user's grants running at `now`: (patient id, grant id), the latest grant per patient; a grant
    covers the patient ids merged with its patient's too (engine/patient_links.py)."""
    rows = session.execute(select(BreakGlassGrant.patient_id, func.max(BreakGlassGrant.id)).where(
        BreakGlassGrant.user_name == user, BreakGlassGrant.expires_at > now, BreakGlassGrant.granted_at <= now,
        BreakGlassGrant.ended_at.is_(None)).group_by(BreakGlassGrant.patient_id).order_by(BreakGlassGrant.patient_id))
    covered: dict[str, int] = {}
    for patient, grant in rows.all():
        for linked in linked_patient_ids(session, patient):
            covered[linked] = max(grant, covered.get(linked, grant))
    return tuple(sorted(covered.items()))


def with_break_glass(app: CarePath, principal: Principal) -> Principal:
    """The principal with the grants running now (called where a request is authenticated)."""
    if not may_break_glass(principal):
        return principal
    with app.db.read() as session:
        return with_grants(session, principal, app.now())


def with_grants(session: Session, principal: Principal, now: datetime) -> Principal:
    if not may_break_glass(principal):
        return principal
    grants = active_grants(session, principal.name, now)
    return replace(principal, break_glass=grants) if grants else principal


def may_break_glass(principal: Principal) -> bool:
    """Whether the rule's roles include the user's (who reads everything has no use for a grant)."""
    return principal.role in GRANT_RULES["break_glass"].roles


def my_grants(app: CarePath, principal: Principal) -> list[GrantView]:
    """The user's own grants running now, soonest ending first."""
    now = app.now()
    with app.db.read() as session:
        rows = session.scalars(select(BreakGlassGrant).where(
            BreakGlassGrant.user_name == principal.name, BreakGlassGrant.expires_at > now,
            BreakGlassGrant.ended_at.is_(None)).order_by(BreakGlassGrant.expires_at, BreakGlassGrant.id))
        return [_view(row, now, principal) for row in rows]


def review_grants(app: CarePath, principal: Principal, limit: int = 100,
                  client: Client | None = None) -> list[GrantReview]:
    """Every grant, newest first, with the reads of the record made under each (auditors and admins);
    the review is itself recorded (`audit_log_used`, what `break-glass`)."""
    require_role(principal, Role.AUDITOR, action="reviewing break-glass access")
    now = app.now()
    with app.db.read() as session:
        grants = list(session.scalars(select(BreakGlassGrant).order_by(BreakGlassGrant.granted_at.desc(),
                                                                       BreakGlassGrant.id.desc())
                                      .limit(max(1, min(limit, REVIEW_LIMIT)))))
        reviews = [GrantReview(_view(row, now, principal), *_reads(session, row)) for row in grants]
    with UnitOfWork(app) as uow:
        uow.record("audit_log_used", principal.name, data={"what": "break-glass", "filters": {"limit": limit},
                                                            "client": client_data(client)})
        uow.commit()
    return reviews


def _reads(session: Session, grant: BreakGlassGrant) -> tuple[list[ReadUnderGrant], int]:
    """The user's reads during the grant's time that carry its id (walks the user's events of that time)."""
    until = grant.ended_at or grant.expires_at
    events = list(session.scalars(select(Event).where(
        Event.actor == grant.user_name, Event.type == RECORD_VIEWED, Event.at >= grant.granted_at,
        Event.at <= until).order_by(Event.id)))
    marked = [e for e in events if e.data.get("break_glass") == grant.id]
    reads = [ReadUnderGrant(e.at, str(e.data.get("what", "")), e.instance_id, e.task_id)
             for e in marked[:READS_PER_GRANT]]
    return reads, len(marked)


def _view(row: BreakGlassGrant, now: datetime, reader: Principal) -> GrantView:
    facts = grant_facts(row, now)
    return GrantView(row.id, row.user_name, row.patient_id, row.reason, row.granted_at, row.expires_at,
                     row.ended_at, facts.state is GrantState.ACTIVE, tuple(allowed_actions(facts, reader)))
