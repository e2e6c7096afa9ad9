"""/api/instances: read, list, cancel, retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from carepath.engine.identity import instance_scope
from carepath.engine.model import InstanceStatus
from carepath.engine.queries import list_instances
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.instance_report import instance_report
from carepath.engine.usecases.instances import (
    cancel_instance,
    get_instance_history,
    get_instance_view,
    retry_instance,
)
from carepath.engine.usecases.measures import instance_measures
from carepath.engine.usecases.periods import report_period

from ..deps import ClientDep, CurrentUser, EngineDep
from ..params import INSTANT_OR_DAY, InstantOrDay, OffsetParam
from ..schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    EXACT_TOTAL,
    CancelIn,
    EventPage,
    InstanceOut,
    InstancePage,
    MeasureResultOut,
    RetryIn,
    errors,
)

router = APIRouter(prefix="/api/instances", tags=["instances"], responses=ERROR_RESPONSES)


@router.get("", response_model=InstancePage, responses=errors(422))
def list_(engine: EngineDep, user: CurrentUser, status: InstanceStatus | None = None,
          pathway: str | None = None, patient_id: str | None = None, business_key: str | None = None,
          started_from: Annotated[InstantOrDay, Query(description=f"started at or after; {INSTANT_OR_DAY}")] = None,
          started_to: Annotated[InstantOrDay, Query(description=f"started before; {INSTANT_OR_DAY} (the day "
                                                                "included)")] = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: OffsetParam = 0,
          exact_total: Annotated[bool, Query(description=EXACT_TOTAL)] = False) -> InstancePage:
    """Instances the caller may read, newest first; `started_from`/`started_to` bound the start (a period
    as the compliance report's: `started_to` not after `started_from` is a 422)."""
    since, until = report_period(engine, pathway, started_from, started_to, ("started_from", "started_to"))
    with engine.db.read() as session:
        page = list_instances(session, status=status.value if status else None, pathway=pathway,
                              patient_id=patient_id, business_key=business_key,
                              visible_to=instance_scope(user), started_from=since, started_before=until,
                              limit=limit, offset=offset, exact_total=exact_total)
    return InstancePage.model_validate(page)


@router.get("/{instance_id}", response_model=InstanceOut, responses=errors(404, 422))
def get(instance_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> InstanceOut:
    view = get_instance_view(engine, instance_id, user)
    record_access(engine, user, "instance", instance_id, client=client)
    return InstanceOut.model_validate(view)


@router.get("/{instance_id}/measures", response_model=list[MeasureResultOut], responses=errors(404, 422))
def measures(instance_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> list[MeasureResultOut]:
    """Where the episode stands on each quality measure its pathway declares, now."""
    results = instance_measures(engine, instance_id, user)
    record_access(engine, user, "measures", instance_id, client=client)
    return [MeasureResultOut.model_validate(r.as_dict()) for r in results]


@router.get("/{instance_id}/report.html", response_class=HTMLResponse, responses=errors(401, 403, 404, 422, json=False))
def report(instance_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> HTMLResponse:
    """The episode as one self-contained HTML page (no scripts): its path on the diagram, each task with
    who and when and whether it was late, the quality measures and the complete history."""
    page = instance_report(engine, user, instance_id)
    record_access(engine, user, "report", instance_id, client=client)
    return HTMLResponse(page, headers={"Content-Disposition": f'inline; filename="instance-{instance_id}.html"'})


@router.get("/{instance_id}/history", response_model=EventPage, responses=errors(404, 422))
def history(instance_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200, offset: OffsetParam = 0) -> EventPage:
    """Every recorded change of the instance, oldest first: who, when, and the old and new values
    (reads of the record are in the audit trail, /api/audit/events)."""
    page = get_instance_history(engine, instance_id, user, limit=limit, offset=offset)
    record_access(engine, user, "history", instance_id, client=client)
    return EventPage.model_validate(page)


@router.post("/{instance_id}/cancel", response_model=InstanceOut, responses=errors(404, 409, *BODY_ERRORS))
def cancel(instance_id: str, body: CancelIn, engine: EngineDep, user: CurrentUser) -> InstanceOut:
    return InstanceOut.model_validate(cancel_instance(engine, user, instance_id, body.reason))


@router.post("/{instance_id}/retry", response_model=InstanceOut, responses=errors(404, 409, *BODY_ERRORS))
def retry(instance_id: str, engine: EngineDep, user: CurrentUser, body: RetryIn | None = None) -> InstanceOut:
    return InstanceOut.model_validate(retry_instance(engine, user, instance_id, body.data if body else None))
