"""`python -m carepath.bench --only soak`: several `serve` and `worker` processes on one PostgreSQL, a
bounded mixed load (starts, completions, messages, timers), processes killed with SIGKILL and restarted
during it; then every invariant is checked (`bench/soak_checks.py`).

The pathway: a one-second timer, a call task with a two-second non-interrupting reminder, a message
correlated by the business key, a closing task. Clients go to any API node and move to another when
theirs dies; a request whose answer was lost is asked again, and whatever it answers then (200, or 409
because the first attempt had landed) is what a real client would see.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .common import add_user, free_port, log

SOAK_KEY = "bench-soak"
SOAK_BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="soak" targetNamespace="http://carepath/bench">
  <bpmn:message id="m_result" name="soak_result"/>
  <bpmn:process id="{SOAK_KEY}" name="Benchmark soak" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_cc" name="Care Coordinator">
      <bpmn:flowNodeRef>call</bpmn:flowNodeRef><bpmn:flowNodeRef>close</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:intermediateCatchEvent id="settle" name="One second"><bpmn:timerEventDefinition>
      <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1S</bpmn:timeDuration>
    </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="call" name="Call patient"/>
    <bpmn:boundaryEvent id="reminder" name="Two seconds" cancelActivity="false" attachedToRef="call">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT2S</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:endEvent id="reminded"/>
    <bpmn:intermediateCatchEvent id="result" name="Result arrives">
      <bpmn:messageEventDefinition messageRef="m_result"/></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="close" name="Close episode"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="settle"/>
    <bpmn:sequenceFlow id="f2" sourceRef="settle" targetRef="call"/>
    <bpmn:sequenceFlow id="f3" sourceRef="reminder" targetRef="reminded"/>
    <bpmn:sequenceFlow id="f4" sourceRef="call" targetRef="result"/>
    <bpmn:sequenceFlow id="f5" sourceRef="result" targetRef="close"/>
    <bpmn:sequenceFlow id="f6" sourceRef="close" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@dataclass
class Node:
    """One `carepath serve` or `carepath worker` process, restartable."""

    kind: str
    database_url: str
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "CAREPATH_DATABASE_URL": self.database_url, "CAREPATH_DEPLOY_SHIPPED_PATHWAYS": "false",
               "CAREPATH_SWEEP_SECONDS": "5"}
        args = [sys.executable, "-m", "carepath.api.cli", self.kind]
        if self.kind == "serve":
            self.port = self.port or free_port()
            env["CAREPATH_SCHEDULER_ENABLED"] = "false"
            args += ["--port", str(self.port)]
        with open(self.workdir / f"soak-{self.kind}-{self.port or id(self)}.log", "ab") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        if self.kind != "serve":
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} on port {self.port} did not become ready")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Ledger:
    """What the clients saw: the task ids each 200 completed, and counts."""

    completed: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)
    messages: int = 0
    retried: int = 0
    conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _ask(nodes: list[Node], token: str, method: str, path: str, body: dict[str, Any], ledger: Ledger,
         tries: int = 40) -> httpx.Response | None:
    """One request, to any live API node; on a lost answer, the same request again (possibly elsewhere)."""
    for attempt in range(tries):
        node = random.choice(nodes)
        try:
            response = httpx.request(method, node.url + path, json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            with ledger.lock:
                ledger.retried += 1
            time.sleep(0.2 + 0.1 * attempt)
            continue
        if response.status_code >= 500:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
        return response
    raise RuntimeError(f"{method} {path}: no API node answered in {tries} tries")


def _client(nodes: list[Node], token: str, episodes: int, index: int, ledger: Ledger) -> None:
    """Start episodes, complete their calls once open, send their result messages, close them; every
    fourth episode is left waiting for its message, so the checks find running episodes with open
    waits and fired reminders."""
    for n in range(episodes):
        key = f"soak-{index}-{n}"
        started = _ask(nodes, token, "POST", f"/api/pathways/{SOAK_KEY}/instances",
                       {"business_key": key, "patient_id": f"soak-pat-{index}-{n}", "data": {}}, ledger)
        if started is None or started.status_code not in (201, 409):
            raise RuntimeError(f"start {key}: {started.status_code if started else None}")
        instance_id = _instance_of(nodes, token, key, ledger)
        with ledger.lock:
            ledger.started.append(instance_id)
        if n % 4 == 3:
            with ledger.lock:
                ledger.left_running.append(instance_id)
            continue
        _complete_next(nodes, token, instance_id, "call", ledger)
        message = _ask(nodes, token, "POST", "/api/messages", {"name": "soak_result", "correlation_key": key,
                                                              "data": {"ok": True}, "message_id": f"m-{key}"}, ledger)
        if message is not None and message.status_code in (200, 201, 202):
            with ledger.lock:
                ledger.messages += 1
        _complete_next(nodes, token, instance_id, "close", ledger)


def _instance_of(nodes: list[Node], token: str, key: str, ledger: Ledger) -> str:
    for _ in range(40):
        found = _ask(nodes, token, "GET", f"/api/instances?business_key={key}", {}, ledger)
        if found is not None and found.status_code == 200 and found.json()["items"]:
            return str(found.json()["items"][0]["id"])
        time.sleep(0.2)
    raise RuntimeError(f"episode {key} not found after starting it")


def _complete_next(nodes: list[Node], token: str, instance_id: str, element: str, ledger: Ledger) -> None:
    """Wait for the episode's task `element` to open (timers and messages move it), then complete it."""
    for _ in range(300):
        tasks = _ask(nodes, token, "GET", f"/api/tasks?instance_id={instance_id}", {}, ledger)
        items = [t for t in (tasks.json()["items"] if tasks is not None and tasks.status_code == 200 else [])
                 if t["element_id"] == element]
        if items:
            task_id = items[0]["id"]
            done = _ask(nodes, token, "POST", f"/api/tasks/{task_id}/complete", {"data": {"note": "soak"}}, ledger)
            if done is not None and done.status_code == 200:
                with ledger.lock:
                    ledger.completed.append(task_id)
                return
            if done is not None and done.status_code == 409:
                with ledger.lock:
                    ledger.conflicts += 1  # an earlier attempt whose answer was lost had completed it
                return
        time.sleep(0.3)
    raise RuntimeError(f"task {element} of {instance_id} never opened")


def _chaos(nodes: list[Node], stop: threading.Event, every_s: float, rng: random.Random,
           failures: list[str]) -> None:
    """Kill a random process with SIGKILL every `every_s` seconds and start it again a moment later."""
    while not stop.wait(every_s):
        victim = rng.choice(nodes)
        victim.kill()
        time.sleep(0.5)
        victim.start()
        try:
            victim.wait_ready()
        except RuntimeError as exc:  # reported; the clients carry on with the other node
            failures.append(str(exc))


def run_soak(database_url: str, workdir: Path, *, serves: int = 2, workers: int = 2, clients: int = 8,
             episodes_per_client: int = 12, kill_every_s: float = 4.0, seed: int = 17) -> dict[str, Any]:
    from .soak_checks import check_invariants

    admin = add_user(database_url, "soak-admin", "admin")
    api = [Node("serve", database_url, workdir) for _ in range(serves)]
    background = [Node("worker", database_url, workdir) for _ in range(workers)]
    for node in api + background:
        node.start()
    for node in api:
        node.wait_ready()
    httpx.post(f"{api[0].url}/api/pathways", headers={"Authorization": f"Bearer {admin}"}, timeout=60,
               files=[("files", ("soak.bpmn", SOAK_BPMN.encode(), "application/xml"))]).raise_for_status()
    ledger, stop = Ledger(), threading.Event()
    errors: list[str] = []
    restart_failures: list[str] = []
    chaos = threading.Thread(target=_chaos, args=(api + background, stop, kill_every_s, random.Random(seed),
                                                  restart_failures))

    def client(index: int) -> None:
        try:
            _client(api, admin, episodes_per_client, index, ledger)
        except Exception as exc:  # reported with the figures; the invariants are still checked
            errors.append(f"client {index}: {exc}")

    log(f"soak: {serves} serve + {workers} worker processes, {clients} clients x {episodes_per_client} "
        f"episodes, a SIGKILL every {kill_every_s} s")
    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    chaos.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    chaos.join()
    load_seconds = time.monotonic() - began
    for node in api + background:  # everyone up for the settling: due reminders fire
        if node.process is None or node.process.poll() is not None:
            node.start()
    time.sleep(8)
    for node in api + background:
        node.stop()
    checks = check_invariants(database_url, ledger.completed)
    return {"serves": serves, "workers": workers, "clients": clients,
            "episodes_started": len(ledger.started), "completions_answered_200": len(ledger.completed),
            "completions_answered_409_after_a_lost_answer": ledger.conflicts, "messages_accepted": ledger.messages,
            "requests_retried_after_a_kill": ledger.retried, "kills": sum(n.kills for n in api + background),
            "load_seconds": round(load_seconds, 1), "client_errors": errors, "restart_failures": restart_failures,
            "episodes_left_running": len(ledger.left_running), "invariants": checks,
            "passed": not errors and all(c["ok"] for c in checks.values())}
