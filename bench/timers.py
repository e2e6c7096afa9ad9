"""Timer lateness: many pending timers, a burst coming due at once, and steady timers around it,
fired by real `carepath worker` processes on the wall clock.

The database holds `pending` timers in all (most due in a month, as in a live service), `burst`
instances whose timer comes due at the same instant, and `steady` instances due one by one every
100 ms around the burst. Real instances are cloned from one started through the engine, with fresh
task ids and their own due times, so firing runs the real workflow. Lateness is what the history
records (`timer_fired.late_by_seconds`): how long after its due time each timer fired.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Instance, Timer
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance

from .common import log, percentiles

KEY = "bench-timer"
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="bt" targetNamespace="http://carepath/bench">
  <bpmn:process id="bench-timer" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:intermediateCatchEvent id="wait" name="Follow-up due">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P30D</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="follow_up" name="Follow up"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="follow_up"/>
    <bpmn:sequenceFlow id="f3" sourceRef="follow_up" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BATCH = 2000


def _template(database_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One real instance waiting on its timer: (instance row, timer row) as dicts."""
    clock = ManualClock(datetime.now(UTC))
    app = CarePath(Database(database_url), clock)
    try:
        lead = Principal("bench", Role.ADMIN)
        deploy_pathways(app, lead, [SourceFile("bench-timer.bpmn", BPMN.encode())])
        started = start_instance(app, lead, KEY, business_key="template")
        with app.db.read() as session:
            instance = session.get(Instance, started.id)
            timer = session.scalars(select(Timer).where(Timer.instance_id == started.id)).one()
            assert instance is not None
            return ({c.name: getattr(instance, c.key) for c in Instance.__table__.columns},
                    {c.name: getattr(timer, c.key) for c in Timer.__table__.columns})
    finally:
        app.db.dispose()


def _fresh_ids(state: str) -> tuple[str, dict[str, str]]:
    """The state with every task id replaced by a new one (consistently), and the mapping used."""
    mapping: dict[str, str] = {}
    return _UUID.sub(lambda m: mapping.setdefault(m.group(0), str(uuid.uuid4())), state), mapping


def load(database_url: str, pending: int, burst: int, steady: int, burst_at: datetime,
         steady_from: datetime) -> dict[str, Any]:
    """Insert the timers; returns what was loaded and when the burst and steady timers are due."""
    instance, timer = _template(database_url)
    template_due = timer["due_at"].isoformat()
    db = Database(database_url)
    background = pending - burst - steady
    plan = [("burst", burst_at, n) for n in range(burst)]
    plan += [("steady", steady_from + timedelta(milliseconds=100 * n), n) for n in range(steady)]
    plan += [("background", datetime.now(UTC) + timedelta(days=30), n) for n in range(background)]
    try:
        for start in range(0, len(plan), BATCH):
            instances, timers = [], []
            for group, due, n in plan[start:start + BATCH]:
                instance_id = str(uuid.uuid4())
                if group == "background":
                    state, task_id = "{}", str(uuid.uuid4())
                else:  # a real instance: fresh task ids, its own due time
                    state, mapping = _fresh_ids(instance["state"])
                    if template_due not in state:
                        raise RuntimeError("the template's due time is not in its state: cannot clone it")
                    state = state.replace(template_due, due.isoformat())
                    task_id = mapping.get(timer["task_id"], timer["task_id"])
                instances.append({**instance, "id": instance_id, "business_key": f"{group}-{n}", "state": state,
                                  "lock_version": 1})
                timers.append({**{k: v for k, v in timer.items() if k != "id"}, "instance_id": instance_id,
                               "task_id": task_id, "due_at": due})
            with db.engine.begin() as connection:
                connection.execute(insert(Instance), instances)
                connection.execute(insert(Timer), timers)
            if (start // BATCH) % 10 == 0:
                log(f"timers: {start + len(instances):,} of {len(plan):,} loaded")
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        db.dispose()
    return {"pending": pending, "burst": burst, "steady": steady}


def run_workers(database_url: str, workers: int, until: datetime, timeout_s: float = 600) -> float:
    """Start `workers` worker processes and stop them once nothing due is left; returns seconds."""
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_SWEEP_SECONDS": "5"}
    processes = [subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    db = Database(database_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout_s:
            time.sleep(0.5)
            if datetime.now(UTC) < until:
                continue
            with db.engine.connect() as connection:
                left = connection.scalar(select(func.count()).select_from(Timer).where(
                    Timer.state == "pending", Timer.due_at <= datetime.now(UTC)))
            if not left:
                break
        return time.monotonic() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        db.dispose()


def lateness(database_url: str) -> dict[str, Any]:
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(select(Instance.business_key, Event.data, Event.at).join(
                Instance, Instance.id == Event.instance_id).where(Event.type == "timer_fired")).all()
    finally:
        db.dispose()
    late: dict[str, list[float]] = {"burst": [], "steady": []}
    fired_at: list[datetime] = []
    for business_key, data, at in rows:
        group = business_key.split("-")[0]
        if group in late:
            late[group].append(float(data["late_by_seconds"]))
            if group == "burst":
                fired_at.append(at)
    burst = late["burst"]
    out: dict[str, Any] = {
        "steady_lateness": {k.replace("_ms", "_s"): round(v / 1000, 3) if k != "n" else v
                            for k, v in percentiles(late["steady"]).items()},
        "burst_lateness": {k.replace("_ms", "_s"): round(v / 1000, 3) if k != "n" else v
                           for k, v in percentiles(burst).items()},
    }
    if burst:
        drain = max(burst)
        out["burst_drained_seconds"] = round(drain, 2)
        out["burst_fired_per_second"] = round(len(burst) / drain, 1) if drain else None
    return out


def measure_timers(database_url_factory: Any, workers: int, pending: int, burst: int, steady: int) -> dict[str, Any]:
    """One run on a fresh database: load, then let `workers` processes fire what comes due."""
    database_url = database_url_factory()
    now = datetime.now(UTC)
    log(f"timers: loading {pending:,} pending timers ({burst:,} in the burst, {steady} steady)")
    load_started = time.monotonic()
    # Due times leave room for loading (about 1 ms a row, plus margin). The steady timers come due one
    # every 100 ms first, with nothing else due; the burst comes 5 s after the last of them.
    margin = timedelta(seconds=30 + pending / 1000)
    burst_at = now + margin + timedelta(milliseconds=100 * steady, seconds=5)
    loaded = load(database_url, pending, burst, steady, burst_at, now + margin)
    load_seconds = time.monotonic() - load_started
    if datetime.now(UTC) > now + margin:
        log("timers: loading took longer than planned; the first steady timers start late")
    log(f"timers: {workers} worker(s) firing")
    elapsed = run_workers(database_url, workers, burst_at)
    result = {"workers": workers, **loaded, "load_seconds": round(load_seconds, 1), "run_seconds": round(elapsed, 1),
              **lateness(database_url)}
    log("timers: " + json.dumps(result))
    return result
