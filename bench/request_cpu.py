"""python -m carepath.bench.request_cpu [DATABASE_URL] [--completions 200] [--starts] [--profile FILE]

The CPU one warm HTTP completion of the chain costs the server process (docs/performance.md, issue 17):
the ASGI app driven in-process with httpx, one client, the workflow cache on as `serve` runs it. The
sync endpoints run inline rather than in the thread pool, so that `--profile` (cProfile) sees them.
Without a URL, a fresh SQLite file; a PostgreSQL database given is emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import starlette.concurrency
from sqlalchemy import text

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.clock import ManualClock
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database, is_sqlite
from carepath.engine.persistence.tables import Base
from carepath.engine.usecases.users import add_user

from .chain import CHAIN_KEY, chain_bpmn

WARM_UP = 60


async def _inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def _engine(url: str) -> CarePath:
    db = Database(url)
    migrate.upgrade(db.engine)
    if not is_sqlite(url):
        names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return CarePath(db, ManualClock(), EngineConfig(script_timeout_s=2.0))


async def _start(client: httpx.AsyncClient, headers: dict[str, str], count: int, cpu: list[float]) -> None:
    """Start `count` chain episodes, each for a new patient."""
    for _ in range(count):
        t0 = time.process_time()
        answer = await client.post(f"/api/pathways/{CHAIN_KEY}/instances", headers=headers, json={
            "business_key": f"cpu-{uuid.uuid4().hex}", "patient_id": f"cpu-{uuid.uuid4().hex[:8]}", "data": {}})
        cpu.append(time.process_time() - t0)
        answer.raise_for_status()


async def _complete(client: httpx.AsyncClient, headers: dict[str, str], count: int, cpu: list[float]) -> None:
    """Start chain episodes and complete their tasks one after the other, `count` completions in all."""
    while count > 0:
        answer = await client.post(f"/api/pathways/{CHAIN_KEY}/instances", headers=headers, json={
            "business_key": f"cpu-{uuid.uuid4().hex}", "patient_id": f"cpu-{uuid.uuid4().hex[:8]}", "data": {}})
        answer.raise_for_status()
        tasks = answer.json()["open_tasks"]
        while tasks and count > 0:
            t0 = time.process_time()
            answer = await client.post(f"/api/tasks/{tasks[0]['id']}/complete", headers=headers,
                                       json={"data": {"note": "done"}})
            cpu.append(time.process_time() - t0)
            answer.raise_for_status()
            tasks, count = answer.json()["open_tasks"], count - 1


async def measure(url: str, completions: int, profile: str | None, starts: bool = False) -> dict[str, float]:
    engine = _engine(url)
    app = create_app(Settings(database_url=url, deploy_shipped_pathways=False, scheduler_enabled=False), engine)
    headers = {"Authorization": f"Bearer {add_user(engine, 'bench-cpu', 'admin', [])}"}
    transport = httpx.ASGITransport(app=app)
    cpu: list[float] = []
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://cpu") as c:
        deployed = await c.post("/api/pathways", headers=headers,
                                files=[("files", ("chain.bpmn", chain_bpmn().encode(), "application/xml"))])
        deployed.raise_for_status()
        work = _start if starts else _complete
        await work(c, headers, WARM_UP, [])
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        await work(c, headers, completions, cpu)
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
    engine.db.dispose()
    return {"starts" if starts else "completions": len(cpu), "cpu_ms_mean": round(1000 * statistics.fmean(cpu), 2),
            "cpu_ms_median": round(1000 * statistics.median(cpu), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--completions", type=int, default=200)
    parser.add_argument("--starts", action="store_true", help="measure starts (a new patient each) instead")
    parser.add_argument("--profile", help="write cProfile's stats of the measured completions to this file")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/request-cpu.db"
    for module in (starlette.concurrency, fastapi.routing, fastapi.dependencies.utils):
        setattr(module, "run_in_threadpool", _inline)  # noqa: B010 (mypy refuses the assignment)
    print(asyncio.run(measure(url, args.completions, args.profile, args.starts)))


if __name__ == "__main__":
    main()
