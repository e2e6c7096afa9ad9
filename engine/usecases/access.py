"""Reading a patient's record is itself recorded: who read which instance, task, form, history or
measures, when, and from which client, as a `record_viewed` event in the history table.

One small insert in its own short transaction per read of one record; lists and worklists record
nothing (they would otherwise pay a write per page), see docs/audit.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..application import CarePath
from ..audit import RECORD_VIEWED, VIEWABLE
from ..identity import Principal
from ..persistence.tables import Instance, PatientIdentifier
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
    data: dict[str, object] = {"what": what, "client": client_data(client)}
    grant = grant_of_read(app, principal, instance_id)
    if grant is not None:  # read while a break-glass grant for its patient runs: the auditors review it
        data["break_glass"] = grant
    with UnitOfWork(app) as uow:
        uow.record(RECORD_VIEWED, principal.name, instance_id=instance_id, task_id=task_id, data=data)
        uow.commit()


def grant_of_read(app: CarePath, principal: Principal, instance_id: str) -> int | None:
    """The break-glass grant a read of this instance is made under: the reader's running grant for its
    patient (usecases/break_glass.py), if any."""
    if not principal.break_glass:
        return None
    with app.db.read() as session:
        patient = session.scalar(select(Instance.patient_id).where(Instance.id == instance_id))
    return principal.grant_for(patient)


def record_patient_access(app: CarePath, principal: Principal, patient_id: str, client: Client | None = None) -> None:
    """A read of one patient (its demographics and identifiers), which belongs to no one episode: recorded on
    the history's `system` chain as `record_viewed` with what `patient` and the patient's id, and the
    break-glass grant it was read under, if any (grants name the patient ids episodes were started with)."""
    data: dict[str, object] = {"what": "patient", "patient": patient_id, "client": client_data(client)}
    if principal.break_glass:
        with app.db.read() as session:
            ids = session.scalars(select(PatientIdentifier.value).where(
                PatientIdentifier.patient_ref == patient_id, PatientIdentifier.system == app.config.patient_id_system))
            grant = next((g for g in map(principal.grant_for, ids) if g is not None), None)
        if grant is not None:
            data["break_glass"] = grant
    with UnitOfWork(app) as uow:
        uow.record(RECORD_VIEWED, principal.name, data=data)
        uow.commit()
