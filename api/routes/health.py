"""Health checks (no authentication) and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from carepath.engine.persistence import migrate

from ..deps import EngineDep
from ..schemas import ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={200: {"model": ReadyOut, "description": "the database answers and its schema "
                                "is current"}, 503: {"model": ReadyOut, "description": "not ready: see why"}})
def readyz(engine: EngineDep) -> JSONResponse:
    try:
        with engine.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        schema = migrate.schema_state(engine.db.engine)
    except Exception as exc:  # the point of this endpoint is to say so rather than fail
        return JSONResponse({"status": "unavailable", "database": f"error: {type(exc).__name__}"}, status_code=503)
    if schema == "behind":
        return JSONResponse({"status": "unavailable", "database": "ok", "migrations": "behind"}, status_code=503)
    # "ahead": a newer release has migrated the database during a rolling upgrade; its migrations only add
    # (docs/deployment.md, Upgrades), so this node keeps serving until it is replaced.
    return JSONResponse({"status": "ready", "database": "ok", "migrations": schema})


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
