"""End-to-end over HTTP: concurrent clients start instances and complete tasks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .common import log, percentiles
from .pathway import KEY

COMPLETIONS_PER_INSTANCE = 5


def run_clients(clients: int, work: Callable[[int, httpx.Client, list[float]], int], base: str | list[str],
                 token: str) -> tuple[int, float, list[float]]:
    """`clients` threads, each with its own connection; given several API nodes, client i talks to node
    i mod N (a round-robin load balancer that keeps a client's connection on one node)."""
    bases = [base] if isinstance(base, str) else base
    latencies: list[list[float]] = [[] for _ in range(clients)]
    counts = [0] * clients
    errors: list[str] = []

    def run(index: int) -> None:
        with httpx.Client(base_url=bases[index % len(bases)], headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as client:
            try:
                counts[index] = work(index, client, latencies[index])
            except Exception as exc:  # reported, and the run is marked failed
                errors.append(f"client {index}: {exc!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return sum(counts), elapsed, [x for chunk in latencies for x in chunk]


def measure_http(base: str, token: str, *, clients: int, instances: int) -> tuple[dict[str, Any], list[str]]:
    per_client = max(1, instances // clients)
    started_ids: list[list[tuple[str, str]]] = [[] for _ in range(clients)]

    def start(index: int, client: httpx.Client, lat: list[float]) -> int:
        for n in range(per_client):
            t0 = time.perf_counter()
            response = client.post(f"/api/pathways/{KEY}/instances",
                                   json={"business_key": f"b-{index}-{n}-{time.time_ns()}",
                                         "patient_id": f"pat-{index}-{n}", "data": {"closed": False}})
            lat.append(time.perf_counter() - t0)
            response.raise_for_status()
            body = response.json()
            started_ids[index].append((body["id"], body["open_tasks"][0]["id"]))
        return per_client

    log(f"http: {clients} clients start {per_client * clients} instances")
    started, start_secs, start_lat = run_clients(clients, start, base, token)

    def complete(index: int, client: httpx.Client, lat: list[float]) -> int:
        done = 0
        for _round in range(COMPLETIONS_PER_INSTANCE):
            for slot, (instance_id, task_id) in enumerate(started_ids[index]):
                t0 = time.perf_counter()
                response = client.post(f"/api/tasks/{task_id}/complete", json={"data": {"closed": False}})
                lat.append(time.perf_counter() - t0)
                response.raise_for_status()
                started_ids[index][slot] = (instance_id, response.json()["open_tasks"][0]["id"])
                done += 1
        return done

    log(f"http: {clients} clients complete {COMPLETIONS_PER_INSTANCE} tasks on each instance")
    completed, complete_secs, complete_lat = run_clients(clients, complete, base, token)
    result = {
        "clients": clients,
        "instances_started": started, "instances_per_second": round(started / start_secs, 1),
        "start_latency": percentiles(start_lat),
        "tasks_completed": completed, "tasks_per_second": round(completed / complete_secs, 1),
        "complete_latency": percentiles(complete_lat),
    }
    return result, [instance_id for chunk in started_ids for instance_id, _ in chunk]
