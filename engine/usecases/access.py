"""Reading a patient's record is itself recorded: who read which instance, task, form, history or
measures, when, and from which client, as a `record_viewed` event in the history table.

One small insert in its own short transaction per read of one record; lists and worklists record
nothing (they would otherwise pay a write per page), see docs/audit.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..application import CarePath
from ..audit import RECORD_VIEWED, VIEWABLE
from ..identity import Principal
from ..persistence.unit_of_work import UnitOfWork

MAX_USER_AGENT = 300


@dataclass(frozen=True)
class Client:
    """Where a read came from, as the HTTP layer saw it."""

    host: str | None = None
    user_agent: str | None = None


def client_data(client: Client | None) -> dict[str, str | None]:
    """The client as recorded on a read event (`record_viewed`, `audit_log_used`): host and user agent."""
    client = client or Client()
    return {"host": client.host, "user_agent": (client.user_agent or "")[:MAX_USER_AGENT] or None}


def record_access(app: CarePath, principal: Principal, what: str, instance_id: str, task_id: str | None = None,
                  client: Client | None = None) -> None:
    if what not in VIEWABLE:
        raise ValueError(f"unknown record part {what!r}")
    data = {"what": what, "client": client_data(client)}
    with UnitOfWork(app) as uow:
        uow.record(RECORD_VIEWED, principal.name, instance_id=instance_id, task_id=task_id, data=data)
        uow.commit()
