"""/api/break-glass: emergency access to a patient outside one's teams; /api/audit/break-glass: its review.

The rules (who may, the reason, how long, what it widens) are the engine's: engine/usecases/break_glass.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from carepath.engine.usecases.break_glass import REVIEW_LIMIT, break_glass, end_grant, my_grants, review_grants

from ..deps import ClientDep, CurrentUser, EngineDep
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, BreakGlassIn, GrantOut, GrantReviewOut, errors

router = APIRouter(tags=["break-glass"], responses=ERROR_RESPONSES)


@router.post("/api/break-glass", response_model=GrantOut, status_code=201, responses=errors(*BODY_ERRORS))
def grant(body: BreakGlassIn, engine: EngineDep, user: CurrentUser) -> GrantOut:
    """Read every instance and task of the patient for `minutes`, after giving a reason (coordinators and
    supervisors); recorded as `break_glass_granted`, each read under it marked for the auditors."""
    return GrantOut.model_validate(break_glass(engine, user, body.patient_id, body.reason, body.minutes))


@router.post("/api/break-glass/{grant_id}/end", response_model=GrantOut, responses=errors(404, 409, 422))
def end(grant_id: Annotated[int, Path(ge=1, le=2**31 - 1)], engine: EngineDep, user: CurrentUser) -> GrantOut:
    """End a running grant before its time: the holder their own, an auditor or an admin anyone's;
    recorded as `break_glass_ended`."""
    return GrantOut.model_validate(end_grant(engine, user, grant_id))


@router.get("/api/break-glass", response_model=list[GrantOut])
def mine(engine: EngineDep, user: CurrentUser) -> list[GrantOut]:
    """The caller's grants running now."""
    return [GrantOut.model_validate(g) for g in my_grants(engine, user)]


@router.get("/api/audit/break-glass", response_model=list[GrantReviewOut], responses=errors(422))
def review(engine: EngineDep, user: CurrentUser, client: ClientDep,
           limit: Annotated[int, Query(ge=1, le=REVIEW_LIMIT)] = 100) -> list[GrantReviewOut]:
    """Every break-glass grant, newest first, with the reads made under it (auditors and admins)."""
    return [GrantReviewOut.model_validate(r) for r in review_grants(engine, user, limit, client)]
