"""Routing apart from acknowledging: a listener that only stores and acknowledges, routing processes
(`carepath inbox-worker`, `carepath mllp`'s own) that route as messages arrive, in order per patient and
exactly once when two of them run; the backlog and the routing rate in the metrics meanwhile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carepath.api.mllp import ListenerConfig
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import InboxMessage, Instance
from carepath.engine.scheduler import TimerScheduler
from tests.support.adt_messages import adt
from tests.support.api import ApiClient
from tests.support.mllp_peer import Running, exchange, inbox

STORE_ONLY = ListenerConfig(max_frame_bytes=65536, read_timeout=2.0, idle_timeout=10.0, sweep_seconds=0.2,
                            routing=False)
Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def store_only(api: ApiClient) -> Iterator[Running]:
    running = Running(api.engine, STORE_ONLY)
    yield running
    running.close()


@pytest.fixture
def spawn(database_url: str) -> Iterator[Spawn]:
    """`carepath` commands on the test database, as separate processes (with a sweep too long to route
    anything in time: they must route as messages arrive), stopped at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def starting(*args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_SWEEP_SECONDS": "3600"}
        started.append(subprocess.Popen([sys.executable, "-m", "carepath.api.cli", *args], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        return started[-1]

    yield starting
    for process in started:
        process.send_signal(signal.SIGINT)
    for process in started:
        process.wait(30)


def _discharges(patients: int, per_patient: int) -> list[bytes]:
    """ED discharges, each patient's visits one after the other (every visit starts a post-ED episode)."""
    return [adt("A03", control_id=f"R-{p}-{n}", identifiers=(f"MRN{p:04d}^^^GENHOSP^MR",), patient_class="E",
                visit_number=f"V-{p}-{n}", discharged="20261201221500").encode("utf-8")
            for n in range(per_patient) for p in range(patients)]


def _routed(engine: CarePath, expected: int, seconds: float = 90.0) -> list[InboxMessage]:
    """The inbox once `expected` messages are no longer waiting (routing processes take a moment to start)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = inbox(engine)
        if len(rows) == expected and all(row.state != "received" for row in rows):
            return rows
        time.sleep(0.1)
    return inbox(engine)


def _in_order_per_patient(rows: list[InboxMessage]) -> bool:
    by_patient: dict[str | None, list[InboxMessage]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.id):
        by_patient[row.patient_key].append(row)
    return all([r.processed_at for r in mine] == sorted(r.processed_at for r in mine if r.processed_at)
               for mine in by_patient.values())


def test_a_store_only_listener_acknowledges_and_the_backlog_shows_until_a_worker_routes(
        api: ApiClient, store_only: Running, clock: ManualClock) -> None:
    with store_only.connect() as sock:
        assert exchange(sock, adt("A03", control_id="S-1").encode("utf-8"))[1:3] == ["AA", "S-1"]
        other = adt("A08", control_id="S-2", identifiers=("MRN2^^^GENHOSP^MR",))
        assert exchange(sock, other.encode("utf-8"))[1:3] == ["AA", "S-2"]
    clock.advance(timedelta(seconds=30))
    time.sleep(0.5)  # a listener that routed would have done it by now (its sweep is 0.2 s)
    assert [row.state for row in inbox(api.engine)] == ["received", "received"]
    metrics = api.client.get("/metrics").text
    assert "carepath_inbox_waiting 2.0" in metrics and "carepath_inbox_lag_seconds 30.0" in metrics
    assert "carepath_inbox_received_per_second 0.033" in metrics

    TimerScheduler(api.engine).sweep_inbox()  # what `carepath worker` does, in another process
    assert {row.state for row in inbox(api.engine)} == {"nothing_to_do"}
    metrics = api.client.get("/metrics").text
    assert "carepath_inbox_waiting 0.0" in metrics and "carepath_inbox_lag_seconds 0.0" in metrics
    assert 'carepath_inbox_processed_per_second{outcome="nothing_to_do"} 0.033' in metrics
    assert 'carepath_inbox_processed_per_second{outcome="started"} 0.0' in metrics


def test_mllp_routing_processes_need_postgresql(tmp_path: Path) -> None:
    """Whatever database the suite runs on: the refusal is SQLite's, so the listener gets a SQLite file."""
    env = {**os.environ, "CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'mllp.db'}"}
    listener = subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "mllp", "--port", "0",
                                 "--routing-processes", "1"], env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    output, _ = listener.communicate(timeout=120)
    assert listener.returncode == 2 and "--routing-processes needs PostgreSQL" in output


@pytest.mark.postgres_only
@pytest.mark.parametrize("command", [("inbox-worker", "--threads", "4"), ("worker",)], ids=["inbox-worker", "worker"])
def test_a_routing_process_routes_as_messages_arrive_and_keeps_each_patients_order(
        shipped: ApiClient, store_only: Running, spawn: Spawn, command: tuple[str, ...]) -> None:
    process = spawn(*command)
    if command[0] == "worker":  # past its scheduler's first sweep, which would route what is there already
        assert process.stdout is not None and "worker running" in process.stdout.readline()
        time.sleep(1.0)
    messages = _discharges(patients=3, per_patient=4)
    with store_only.connect() as sock:
        for message in messages:
            assert exchange(sock, message)[1] == "AA"
    rows = _routed(shipped.engine, len(messages))
    assert [row.state for row in rows] == ["started"] * len(messages), [row.outcome for row in rows]
    assert _in_order_per_patient(rows)


@pytest.mark.postgres_only
def test_two_routing_processes_route_each_message_exactly_once(shipped: ApiClient, store_only: Running,
                                                               spawn: Spawn) -> None:
    messages = _discharges(patients=6, per_patient=5)
    with store_only.connect() as sock:
        for message in messages:
            assert exchange(sock, message)[1] == "AA"
    spawn("inbox-worker", "--threads", "3")
    spawn("inbox-worker", "--threads", "3")
    rows = _routed(shipped.engine, len(messages))
    assert {row.state for row in rows} == {"started"} and {row.attempts for row in rows} == {1}
    assert _in_order_per_patient(rows)
    with shipped.engine.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == len(messages)


def _wait_for_port(process: subprocess.Popen[str], port: int) -> socket.socket:
    for _ in range(600):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.mark.postgres_only
def test_carepath_mllp_routes_in_a_process_of_its_own_by_default(shipped: ApiClient, spawn: Spawn) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    listener = spawn("mllp", "--port", str(port))
    with _wait_for_port(listener, port) as sock:
        assert exchange(sock, _discharges(1, 1)[0])[1:3] == ["AA", "R-0-0"]
    [row] = _routed(shipped.engine, 1)
    assert row.state == "started", row.outcome
    listener.send_signal(signal.SIGINT)
    output, _ = listener.communicate(timeout=60)
    assert listener.returncode == 0 and "routing in 1 process(es)" in output

