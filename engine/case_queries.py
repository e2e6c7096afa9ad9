"""A patient's case, read side: every episode of the patient and of the identities merged with it that a
scope may read, each with its pathway and open tasks, and the latest history entries across them. SQL on the
projection tables (instances, tasks, events, pathway_versions); no workflow is ever loaded.

Who may read which episode is the instances' one rule (`queries.instances_visible_to`): an episode outside
the scope is neither shown nor counted, and its tasks and history are not read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bounds import shown
from .identity import Principal, VisibleTo
from .model import OPEN_TASK_STATES, RECORD_VIEWED
from .persistence.referral_tables import Referral
from .persistence.tables import Event, Instance, PathwayVersion, Task
from .queries import instances_visible_to
from .rules import ReferralFacts, referral_actions

MAX_CASE_EPISODES = 200  # as many as a patient read lists (usecases/patient_records.MAX_EPISODES)
MAX_CASE_TASKS = 500
MAX_CASE_HISTORY = 100
MAX_CASE_REFERRALS = 200


@dataclass(frozen=True)
class CaseTask:
    """An open task of an episode: what it is, who holds it or is offered it, when it is due."""

    id: str
    name: str
    state: str
    assignee: str | None
    offered_to: tuple[str, ...]  # candidate groups and users (not "everyone")
    due_date: datetime | None


@dataclass(frozen=True)
class CaseEpisode:
    id: str
    pathway_key: str
    pathway_name: str
    version: int
    status: str
    business_key: str | None
    patient_id: str | None  # the free-text patient id the episode was started with
    created_at: datetime
    ended_at: datetime | None
    open_tasks: tuple[CaseTask, ...]


@dataclass(frozen=True)
class CaseEntry:
    """One history entry of one of the episodes, with the episode it belongs to."""

    id: int
    at: datetime
    type: str
    actor: str
    instance_id: str
    task_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class CaseReferral:
    """A referral to a community organization sent by one of the episodes (engine/usecases/referrals.py)."""

    id: str
    instance_id: str
    domain: str
    service_name: str
    organization_name: str | None
    status: str
    status_reason: str | None
    outcome: str | None
    consent: bool
    updated_at: datetime
    actions: tuple[str, ...] = ()  # what the reader may do to it now (rules.referral_actions)


def case_episodes(session: Session, patients: Sequence[str], scope: VisibleTo | None) -> list[CaseEpisode]:
    """The episodes of `patients` (a merge-linked group) that `scope` may read (None: all), newest first,
    each with its open tasks, soonest due first."""
    query = (select(Instance, PathwayVersion.name, PathwayVersion.version)
             .join(PathwayVersion, PathwayVersion.id == Instance.pathway_version_id)
             .where(Instance.patient_ref.in_(list(patients))))
    if scope is not None:
        query = query.where(instances_visible_to(session, *scope))
    rows = session.execute(query.order_by(Instance.created_at.desc(), Instance.id).limit(MAX_CASE_EPISODES)).all()
    tasks = _open_tasks(session, [row.Instance.id for row in rows])
    return [CaseEpisode(id=i.id, pathway_key=i.pathway_key, pathway_name=name or i.pathway_key, version=version,
                        status=i.status, business_key=i.business_key, patient_id=i.patient_id,
                        created_at=i.created_at, ended_at=i.ended_at, open_tasks=tuple(tasks[i.id]))
            for i, name, version in rows]


def _open_tasks(session: Session, instance_ids: list[str]) -> dict[str, list[CaseTask]]:
    found: dict[str, list[CaseTask]] = defaultdict(list)
    if not instance_ids:
        return found
    rows = session.scalars(select(Task).where(Task.instance_id.in_(instance_ids), Task.state.in_(OPEN_TASK_STATES))
                           .order_by(Task.due_date.asc().nulls_last(), Task.created_at, Task.id)
                           .limit(MAX_CASE_TASKS))
    for task in rows:
        offered = tuple(sorted(key.split(":", 1)[1] for key in task.audience or ()
                               if ":" in key and not key.startswith("all:")))
        found[task.instance_id].append(CaseTask(task.id, task.name, task.state, task.assignee, offered,
                                                task.due_date))
    return found


def case_history(session: Session, instance_ids: Sequence[str], limit: int) -> list[CaseEntry]:
    """The latest `limit` history entries of these episodes, newest first; reads of the record are in the
    audit trail only, as on the episode page."""
    if not instance_ids or limit <= 0:
        return []
    rows = session.scalars(select(Event).where(Event.instance_id.in_(list(instance_ids)),
                                               Event.type != RECORD_VIEWED)
                           .order_by(Event.id.desc()).limit(min(limit, MAX_CASE_HISTORY)))
    return [CaseEntry(e.id, e.at, e.type, e.actor, e.instance_id or "", e.task_id, shown(e.data)) for e in rows]


def case_referrals(session: Session, instance_ids: Sequence[str], reader: Principal) -> list[CaseReferral]:
    """The referrals these (readable) episodes sent, last changed first, each with what `reader` may do to it."""
    if not instance_ids:
        return []
    rows = session.scalars(select(Referral).where(Referral.instance_id.in_(list(instance_ids)))
                           .order_by(Referral.updated_at.desc(), Referral.id).limit(MAX_CASE_REFERRALS))
    return [CaseReferral(r.id, r.instance_id, r.domain, r.service_name, r.organization_name, r.status,
                         r.status_reason, r.outcome, r.consent, r.updated_at,
                         tuple(referral_actions(ReferralFacts.of(r), reader))) for r in rows]
