"""End to end over HTTP: N concurrent clients each start instances and work every task to the end.

Each client is a thread with its own `httpx.Client` (its own keep-alive connection). A shared
budget bounds the number of measured requests and the wall time; a warm-up instance per client
(not measured) fills the server's caches and connection pool first.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from .pathways import SEQUENCE_KEY, task_data
from .stats import Progress, latency_summary, note


@dataclass(frozen=True)
class Tokens:
    lead: str  # clinical lead: deploys and starts
    coordinator: str  # coordinator in the lane's group: completes


class RequestBudget:
    """At most `limit` requests, and none after the deadline."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.taken = 0
        self.deadline = float("inf")
        self.timed_out = False
        self._lock = threading.Lock()

    def begin(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def take(self) -> bool:
        with self._lock:
            if time.monotonic() > self.deadline:
                self.timed_out = True
                return False
            if self.taken >= self.limit:
                return False
            self.taken += 1
            return True


@dataclass
class ClientRecord:
    start_s: list[float] = field(default_factory=list)
    complete_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    instances_finished: int = 0


def deploy_sequence(base_url: str, tokens: Tokens, files: list[tuple[str, bytes]]) -> int:
    upload = [("files", (name, content, "application/xml")) for name, content in files]
    response = httpx.post(f"{base_url}/api/pathways", files=upload, timeout=60,
                          headers={"Authorization": f"Bearer {tokens.lead}"})
    if response.status_code not in (200, 201):
        raise RuntimeError(f"deploying the benchmark pathway failed: {response.status_code} {response.text[:500]}")
    return response.status_code


def run_load(base_url: str, tokens: Tokens, *, clients: int, max_requests: int, seconds: float) -> dict[str, Any]:
    budget = RequestBudget(max_requests, seconds)
    records = [ClientRecord() for _ in range(clients)]
    ready = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=_client, args=(base_url, tokens, i, budget, records[i], ready),
                                name=f"bench-client-{i}", daemon=True) for i in range(clients)]
    note(f"http load: {clients} clients, up to {max_requests} requests or {seconds:.0f} s (after warm-up)")
    for thread in threads:
        thread.start()
    ready.wait(timeout=300)  # every client has done its warm-up instance
    budget.begin()
    began = time.perf_counter()
    progress = Progress("http load requests", max_requests)
    while any(t.is_alive() for t in threads):
        progress.update(budget.taken)
        time.sleep(0.5)
    wall = time.perf_counter() - began
    return _summary(records, wall, clients, budget)


def _client(base_url: str, tokens: Tokens, index: int, budget: RequestBudget, record: ClientRecord,
            ready: threading.Barrier) -> None:
    lead = {"Authorization": f"Bearer {tokens.lead}"}
    coordinator = {"Authorization": f"Bearer {tokens.coordinator}"}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        warm_up = RequestBudget(10_000, 300)
        warm_up.begin()
        try:
            _one_instance(client, lead, coordinator, f"warm-{index}", warm_up, ClientRecord())
        finally:
            ready.wait(timeout=300)
        n = 0
        while _one_instance(client, lead, coordinator, f"c{index}-{n}", budget, record):
            n += 1


def _one_instance(client: httpx.Client, lead: dict[str, str], coordinator: dict[str, str], business_key: str,
                  budget: RequestBudget, record: ClientRecord) -> bool:
    """Start one instance and complete its tasks; False when the budget ran out."""
    if not budget.take():
        return False
    body = {"business_key": business_key, "patient_id": f"pat-{business_key}",
            "data": {"referral_reason": "post-discharge follow-up", "priority": "routine"}}
    t = time.perf_counter()
    response = client.post(f"/api/pathways/{SEQUENCE_KEY}/instances", json=body, headers=lead)
    record.start_s.append(time.perf_counter() - t)
    if response.status_code != 201:
        record.errors[f"start {response.status_code}"] += 1
        return True
    open_tasks = response.json()["open_tasks"]
    step = 1
    while open_tasks:
        if not budget.take():
            return False
        t = time.perf_counter()
        response = client.post(f"/api/tasks/{open_tasks[0]['id']}/complete", json={"data": task_data(step)},
                               headers=coordinator)
        record.complete_s.append(time.perf_counter() - t)
        if response.status_code != 200:
            record.errors[f"complete {response.status_code}"] += 1
            return True
        open_tasks = response.json()["open_tasks"]
        step += 1
    record.instances_finished += 1
    return True


def _summary(records: list[ClientRecord], wall: float, clients: int, budget: RequestBudget) -> dict[str, Any]:
    starts = [s for r in records for s in r.start_s]
    completes = [s for r in records for s in r.complete_s]
    errors: Counter[str] = Counter()
    for r in records:
        errors.update(r.errors)
    requests = len(starts) + len(completes)
    return {
        "clients": clients,
        "wall_seconds": round(wall, 2),
        "stopped_by_time_limit": budget.timed_out,
        "requests": requests,
        "requests_per_second": round(requests / wall, 1) if wall else 0.0,
        "instances_started_per_second": round(len(starts) / wall, 1) if wall else 0.0,
        "tasks_completed_per_second": round(len(completes) / wall, 1) if wall else 0.0,
        "instances_finished": sum(r.instances_finished for r in records),
        "start_latency": latency_summary(starts),
        "complete_latency": latency_summary(completes),
        "errors": dict(errors),
    }
