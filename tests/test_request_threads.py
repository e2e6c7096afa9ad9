"""How many requests one process works on at once (CAREPATH_REQUEST_THREADS), and SpiffWorkflow's log records
that nobody reads no longer built (docs/performance.md, issue 17)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.runtime import RunningWorkflow  # noqa: F401 - the import sets the loggers' levels
from carepath.engine.usecases.users import add_user


def _limit(settings: Settings, engine: CarePath) -> int:
    with TestClient(create_app(settings, engine)) as client:
        return int(client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens))


def test_the_process_works_on_as_many_requests_at_once_as_configured(engine: CarePath, database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        request_threads=3)
    assert _limit(settings, engine) == 3


def test_by_default_two_requests_at_once_on_sqlite_and_four_on_postgresql(engine: CarePath,
                                                                           database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    expected = 2 if database_url.startswith("sqlite") else 4
    assert settings.request_thread_count() == expected
    assert _limit(settings, engine) == expected


def test_more_requests_than_threads_wait_their_turn_and_all_are_answered(engine: CarePath,
                                                                          database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        request_threads=1)
    token = add_user(engine, "threads-admin", "admin", [])
    with TestClient(create_app(settings, engine)) as client:
        async def many() -> list[int]:
            import httpx

            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as inner:
                async def one() -> int:
                    answer = await inner.get("/api/tasks", headers={"Authorization": f"Bearer {token}"})
                    return answer.status_code

                codes: list[int] = []
                async with anyio.create_task_group() as group:
                    async def record() -> None:
                        codes.append(await one())
                    for _ in range(6):
                        group.start_soon(record)
                return codes

        assert client.portal.call(many) == [200] * 6


@pytest.mark.parametrize("name", ["spiff.workflow", "spiff.task", "spiff.data"])
def test_spiffworkflow_records_below_warning_are_not_built(name: str) -> None:
    """While SpiffWorkflow's loggers have no level of their own (0, below INFO) it lists every task id of the
    workflow in the extras of a record it builds at each workflow created, whether or not anyone logs it."""
    assert logging.getLogger(name).level == logging.WARNING


def test_the_probes_answer_while_every_request_thread_is_busy(engine: CarePath, database_url: str) -> None:
    """A node whose few request threads are all taken (slow reports, exports) still answers its load balancer's
    probes: /healthz on the event loop, /readyz's database check on threads of its own."""
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        request_threads=1)
    with TestClient(create_app(settings, engine)) as client:
        limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
        holder = object()
        client.portal.call(limiter.acquire_on_behalf_of, holder)
        pool = ThreadPoolExecutor(2)
        try:
            health = pool.submit(client.get, "/healthz")
            ready = pool.submit(client.get, "/readyz")
            assert health.result(timeout=20).status_code == 200
            assert ready.result(timeout=20).json()["status"] == "ready"
        finally:  # a probe stuck behind the thread is let go, so that a failure does not hang the run
            client.portal.call(limiter.release_on_behalf_of, holder)
            pool.shutdown(wait=True)
