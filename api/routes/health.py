"""Health checks (no authentication) and the Prometheus endpoint."""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from carepath.engine.application import CarePath
from carepath.engine.persistence import migrate

from ..schemas import ReadyOut

router = APIRouter(tags=["health"])

# The probes do not queue behind ordinary requests in the process's few request threads
# (CAREPATH_REQUEST_THREADS): a node busy with slow reports still answers its load balancer. /healthz runs on
# the event loop; /readyz's database check gets threads of its own.
_READY_CHECKS = anyio.CapacityLimiter(2)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={200: {"model": ReadyOut, "description": "the database answers and its schema "
                                "is current"}, 503: {"model": ReadyOut, "description": "not ready: see why"}})
async def readyz(request: Request) -> JSONResponse:
    engine: CarePath = request.app.state.engine
    return await anyio.to_thread.run_sync(_readiness, engine, limiter=_READY_CHECKS)


def _readiness(engine: CarePath) -> JSONResponse:
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
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
