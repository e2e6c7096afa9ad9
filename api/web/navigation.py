"""The main navigation: which areas a user's role opens, asked of the engine's own rules (never re-stated
here or in a template), so a link is shown exactly when its page would not answer 403."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carepath.engine.errors import PermissionDenied
from carepath.engine.identity import Principal, has_role, notification_scope
from carepath.engine.inbox_queries import may_read_inbox
from carepath.engine.rules import supervised_groups
from carepath.engine.usecases.audit import reads_audit_trail
from carepath.engine.usecases.reports import REPORT_ROLES


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    section: str  # the path prefix that marks the item as the current area


def _opens(principal: Principal, rule: Callable[[Principal], object]) -> bool:
    """The engine's rule for an area (it raises PermissionDenied for whoever may not open it)."""
    try:
        rule(principal)
    except PermissionDenied:
        return False
    return True


def nav_items(principal: Principal) -> list[NavItem]:
    items = [NavItem("/app/worklist", "Worklist", "/app/worklist")]
    if _opens(principal, supervised_groups):
        items.append(NavItem("/app/team", "Team", "/app/team"))
    if _opens(principal, notification_scope):
        items.append(NavItem("/app/notifications", "Notifications", "/app/notifications"))
    items += [NavItem("/app/pathways", "Pathways", "/app/pathways"),
              NavItem("/app/episodes", "Episodes", "/app/episodes")]
    if has_role(principal, *REPORT_ROLES):
        items.append(NavItem("/app/compliance", "Compliance", "/app/compliance"))
    if reads_audit_trail(principal):
        items.append(NavItem("/app/audit", "Audit", "/app/audit"))
    if principal.is_admin:  # the users' use cases are the admin's alone (engine/usecases/users.py)
        items.append(NavItem("/app/admin/users", "Users", "/app/admin"))
    if _opens(principal, may_read_inbox):
        items.append(NavItem("/app/inbox", "Message inbox", "/app/inbox"))
    items.append(NavItem("/app/sessions", "Sessions", "/app/sessions"))
    return items
