"""Who is acting: users, roles, groups and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from .errors import PermissionDenied
from .model import viewer_keys


class Role(StrEnum):
    CLINICAL_LEAD = "clinical_lead"
    COORDINATOR = "coordinator"
    AUDITOR = "auditor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    INTEGRATION = "integration"  # a system that starts pathways and sends messages (scheduling, ADT); reads nothing


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    groups: frozenset[str] = field(default_factory=frozenset)
    # Break-glass grants active when the user was authenticated: (patient id, grant id) pairs
    # (usecases/break_glass.py `with_break_glass`); they widen what the user may read, never what they may do.
    break_glass: tuple[tuple[str, int], ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def glass_patients(self) -> frozenset[str]:
        return frozenset(patient for patient, _ in self.break_glass)

    def grant_for(self, patient_id: str | None) -> int | None:
        """The active break-glass grant for this patient, if any."""
        return next((grant for patient, grant in self.break_glass if patient == patient_id), None)


class Scope(NamedTuple):
    """What a user who does not read everything may read: the tasks offered to `user` or `groups` (and
    the instances those are part of), and every instance and task of the `patients` under an active
    break-glass grant. Queries take it as `visible_to` (queries.instances_visible_to, queries._visible)."""

    user: str
    groups: frozenset[str]
    patients: frozenset[str] = frozenset()


# A scope as the queries take it: a Scope, or (user, groups) without break-glass patients.
VisibleTo = Scope | tuple[str, frozenset[str]]


SYSTEM = Principal("system", Role.ADMIN)
SCHEDULER = Principal("scheduler", Role.ADMIN)


# Who deploys and retires pathway versions (admins may do anything): the use cases and the web pages ask here.
def has_role(principal: Principal, *roles: Role) -> bool:
    return principal.role is Role.ADMIN or principal.role in roles


def require_role(principal: Principal, *roles: Role, action: str) -> None:
    if has_role(principal, *roles):
        return
    allowed = ", ".join(r.value for r in dict.fromkeys((*roles, Role.ADMIN)))  # each role once
    raise PermissionDenied(f"{action} needs one of the roles {allowed}; user '{principal.name}' "
                           f"is {principal.role.value}")


def new_token() -> str:
    return "cp_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def group_for_lane(lane: str | None, mapping: dict[str, str] | None = None) -> str | None:
    """Lane "Care Coordinator" -> group "care-coordinator", unless configured otherwise. Whitespace is
    tidied first, so a label an editor wrapped onto two lines ("Care\nCoordinator") maps the same."""
    if lane is None:
        return None
    tidy = " ".join(lane.split())
    if mapping:
        for name in (lane, tidy):
            if name in mapping:
                return mapping[name]
    return re.sub(r"[^a-z0-9]+", "-", tidy.lower()).strip("-") or None


def offered_groups(lane: str | None, candidate_groups: Iterable[str],
                   mapping: dict[str, str] | None = None) -> list[str]:
    """The groups a task is offered to: its lane's group first, then the diagram's candidate groups."""
    groups = list(candidate_groups)
    lane_group = group_for_lane(lane, mapping)
    if lane_group and lane_group not in groups:
        groups.insert(0, lane_group)
    return groups


def sees_every_task(principal: Principal) -> bool:
    return principal.role in (Role.ADMIN, Role.AUDITOR)


def may_see(principal: Principal, assignee: str | None, audience: Iterable[str]) -> bool:
    """Whether a task is in the user's view: theirs, or its audience (tasks.audience) names them, one of
    their groups or everyone. Must agree with queries._visible, which answers it in SQL for lists."""
    if sees_every_task(principal) or assignee == principal.name:
        return True
    return not set(viewer_keys(principal.name, principal.groups)).isdisjoint(audience)


def reads_every_instance(principal: Principal) -> bool:
    """Admins, auditors and clinical leads (who own the pathways) read every instance; task workers
    read the instances they are involved in."""
    return principal.role in (Role.ADMIN, Role.AUDITOR, Role.CLINICAL_LEAD)


def instance_scope(principal: Principal) -> Scope | None:
    """None: every instance; else the scope of what the user may read (break-glass patients included)."""
    return None if reads_every_instance(principal) else scope_of(principal)


def task_scope(principal: Principal) -> Scope | None:
    """None: every task; else the tasks the user may read (break-glass patients' tasks included)."""
    return None if sees_every_task(principal) else scope_of(principal)


def acting_scope(principal: Principal) -> Scope | None:
    """The instances the user may act on: what they read without their break-glass grants."""
    return None if reads_every_instance(principal) else Scope(principal.name, principal.groups)


def scope_of(principal: Principal) -> Scope:
    return Scope(principal.name, principal.groups, principal.glass_patients)


def message_scope(principal: Principal) -> tuple[str, frozenset[str]] | None:
    """The instances a message from this principal may reach: what they may read under their teams, so a
    message never moves another team's patient on (a break-glass grant reads, it does not act); an
    integration account (a scheduling system, an ADT feed) serves every team and reaches every instance,
    though it may read none."""
    if principal.role is Role.INTEGRATION or reads_every_instance(principal):
        return None
    return (principal.name, principal.groups)


def notification_scope(principal: Principal) -> tuple[str, frozenset[str]] | None:
    """Whose notifications (reminders, escalations) this user reads: auditors and admins the whole outbox
    (None); supervisors those about tasks they can see, their groups'; other roles none (PermissionDenied)."""
    require_role(principal, Role.SUPERVISOR, Role.AUDITOR, action="Reading notifications")
    return (principal.name, principal.groups) if principal.role is Role.SUPERVISOR else None


def acts_only_as_integration(principal: Principal) -> bool:
    """Integration accounts may start pathways, send messages, merge or unmerge patients (PATIENT_RULES) and
    work external tasks (EXTERNAL_TASK_RULES), and call nothing else: every other route refuses them
    (api/deps.py), whatever later issues add."""
    return principal.role is Role.INTEGRATION
