"""Who is acting: users, roles, groups and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

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

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


SYSTEM = Principal("system", Role.ADMIN)
SCHEDULER = Principal("scheduler", Role.ADMIN)


# Who deploys and retires pathway versions (admins may do anything): the use cases and the web pages ask here.
PATHWAY_AUTHORS = (Role.CLINICAL_LEAD,)


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


def instance_scope(principal: Principal) -> tuple[str, frozenset[str]] | None:
    return None if reads_every_instance(principal) else (principal.name, principal.groups)


def message_scope(principal: Principal) -> tuple[str, frozenset[str]] | None:
    """The instances a message from this principal may reach: what they may read, so a message never
    moves another team's patient on; an integration account (a scheduling system, an ADT feed) serves
    every team and reaches every instance, though it may read none."""
    return None if principal.role is Role.INTEGRATION else instance_scope(principal)


def acts_only_as_integration(principal: Principal) -> bool:
    """Integration accounts may start pathways and send messages, and call nothing else: every other
    route refuses them (api/deps.py), whatever later issues add."""
    return principal.role is Role.INTEGRATION
