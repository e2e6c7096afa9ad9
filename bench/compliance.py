"""The compliance report at a hospital's volume: N episodes of the shipped transition-of-care pathway
(four declared measures, three met by task completions) bulk-inserted through the tables the product
writes, then GET /api/reports/compliance over HTTP for a year, a month, one team's month and CSV.

Episodes are shaped like a year of a TCM service, not uniform: discharges spread over the 365 days
before now (the last month's episodes still running), most contacts made within two business days,
some on the second attempt, some late or never; face-to-face visits and medication reconciliation
mostly on time, some late, some never; a few readmitted (the measures then do not apply) or
cancelled. Tasks are held by two teams (care-coordinator: contact and scheduling; nurse: the visit
and the reconciliation) and missed contacts go to a third (care-team-supervisor).

Each episode's history is what the product records: `instance_started`, one `task_completed` per
completion, `completed` or `cancelled`, and `measure_outcomes` evaluated (engine/measures.py) at the
end and again when a window still open at the end closes, chained and hashed per instance; and, as the
product writes them, the `measure_outcomes` projection of the last of those and the `measure_states`
projection of the episode's standing, which the report counts."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, insert, select, text

from carepath.engine.application import CarePath
from carepath.engine.measures import Completion, Episode, MeasureStatus, evaluate, measure_from_dict
from carepath.engine.model import audience_keys
from carepath.engine.persistence.chain import GENESIS, as_stored, event_hash
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import (
    Event,
    Instance,
    MeasureOutcome,
    MeasureState,
    PathwayVersion,
    Task,
    TaskCandidate,
)
from carepath.engine.sandbox import evaluate_expression
from carepath.engine.usecases.measure_states import state_rows
from carepath.engine.usecases.outcome_projection import outcome_rows

from .common import log, percentiles, timed_gets

KEY = "transition-of-care"
NY = ZoneInfo("America/New_York")
BATCH = 2000
COORDINATORS = [f"coordinator-{n}" for n in range(40)]
NURSES = [f"nurse-{n}" for n in range(30)]
SUPERVISORS = [f"supervisor-{n}" for n in range(4)]
TEAM = "nurse"  # the team of "one team's month": it answers for the visit and the medication reconciliation


def report_queries(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(name, query parameters): the year, a month in its middle, one team's month, the year as CSV."""
    today = now.astimezone(NY).date()
    year = {"from": _local(today - timedelta(days=366)), "to": _local(today + timedelta(days=1))}
    first = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
    month = {"from": _local(first), "to": _local((first + timedelta(days=32)).replace(day=1))}
    base = {"pathway": KEY}
    return [("year", {**base, **year}), ("month", {**base, **month}),
            ("team's month", {**base, **month, "group": TEAM}), ("year, csv", {**base, **year, "format": "csv"})]


def _local(day: date) -> str:
    return datetime.combine(day, clock_time(), tzinfo=NY).isoformat()


def load_episodes(database_url: str, total: int, now: datetime, *, seed: int = 11) -> dict[str, Any]:
    """Add episodes until `total` exist; returns what was loaded and how long it took."""
    started = time.monotonic()
    db = Database(database_url)
    app = CarePath(db, lambda: now)
    try:
        with db.engine.begin() as connection:
            version = connection.execute(select(PathwayVersion.id, PathwayVersion.measures,
                                                PathwayVersion.time_settings)
                                         .where(PathwayVersion.key == KEY).order_by(PathwayVersion.version.desc())
                                         .limit(1)).one()
            have = connection.scalar(select(func.count()).select_from(Instance).where(
                Instance.pathway_key == KEY, Instance.business_key.startswith("tcm-"))) or 0
        measures = [measure_from_dict(raw) for raw in version.measures]
        context = app.time_context(version.time_settings)
        rng = random.Random(seed + have)
        loaded = 0
        while have + loaded < total:
            count = min(BATCH, total - have - loaded)
            rows: dict[str, list[dict[str, Any]]] = {"instances": [], "tasks": [], "candidates": [], "events": [],
                                                     "outcomes": [], "states": []}
            for n in range(count):
                _episode(rng, have + loaded + n, now, version.id, measures, context, rows)
            with db.engine.begin() as connection:
                connection.execute(insert(Instance), rows["instances"])
                connection.execute(insert(Task), rows["tasks"])
                connection.execute(insert(TaskCandidate), rows["candidates"])
                connection.execute(insert(Event), rows["events"])
                if rows["outcomes"]:
                    connection.execute(insert(MeasureOutcome), rows["outcomes"])
                connection.execute(insert(MeasureState), rows["states"])
            loaded += count
            log(f"compliance: {have + loaded:,} episodes loaded")
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        with db.engine.connect() as connection:
            events = connection.scalar(select(func.count()).select_from(Event)) or 0
        return {"episodes": have + loaded, "events": events, "load_seconds": round(time.monotonic() - started, 1)}
    finally:
        db.dispose()


def _episode(rng: random.Random, n: int, now: datetime, version_id: int, measures: list[Any], context: Any,
             rows: dict[str, list[dict[str, Any]]]) -> None:
    today = now.astimezone(NY).date()
    discharged = today - timedelta(days=rng.randint(1, 365))
    day0 = datetime.combine(discharged, clock_time(), tzinfo=NY)
    high = rng.random() < 0.45
    readmitted_at = day0 + timedelta(days=rng.randint(3, 20), hours=rng.randint(8, 18)) if rng.random() < 0.04 else None
    cancelled_at = day0 + timedelta(days=rng.randint(0, 9), hours=rng.randint(8, 18)) if rng.random() < 0.02 else None
    ends_at = readmitted_at or cancelled_at or day0 + timedelta(days=30, hours=rng.randint(9, 16))
    created = day0 + timedelta(hours=rng.randint(10, 20))
    data: dict[str, Any] = {
        "discharge_date": discharged.isoformat(), "discharge_setting": rng.choice(["inpatient", "snf", "observation"]),
        "mdm_level": "high" if high else "moderate", "lace_score": rng.randint(2, 14),
        "tcm_service_period_end": (discharged + timedelta(days=29)).isoformat(),
        "hedis_mrp_window_end": (discharged + timedelta(days=30)).isoformat(),
        "contact_clock_start": f"{discharged.isoformat()}T09:00:00", "readmitted": readmitted_at is not None,
        "tcm_complexity": "high" if high else "moderate", "tcm_cpt_code": "99496" if high else "99495",
        "face_to_face_window": "P7D" if high else "P14D"}
    # (element id, name, team, when done or None, completion data)
    plan: list[tuple[str, str, str, datetime | None, dict[str, Any]]] = []
    roll = rng.random()
    if roll < 0.80:
        plan.append(("contact_patient", "Contact patient", "care-coordinator",
                     day0 + timedelta(days=rng.choice([0, 1, 1, 2]), hours=rng.randint(9, 17)),
                     {"contact_made": True, "attempt": 1, "contact_method": "phone"}))
    elif roll < 0.88:
        plan.append(("contact_patient", "Contact patient", "care-coordinator",
                     day0 + timedelta(days=1, hours=rng.randint(9, 12)), {"contact_made": False, "attempt": 1}))
        plan.append(("contact_patient", "Contact patient", "care-coordinator",
                     day0 + timedelta(days=2, hours=rng.randint(13, 17)), {"contact_made": False, "attempt": 2}))
    elif roll < 0.96:
        plan.append(("review_missed_contact", "Review missed TCM contact", "care-team-supervisor",
                     day0 + timedelta(days=4, hours=10), {"reviewed": True}))
        plan.append(("contact_patient", "Contact patient", "care-coordinator",
                     day0 + timedelta(days=rng.randint(4, 8), hours=rng.randint(9, 17)),
                     {"contact_made": True, "attempt": 3, "contact_method": "phone"}))
    else:
        plan.append(("review_missed_contact", "Review missed TCM contact", "care-team-supervisor", None, {}))
        plan.append(("contact_patient", "Contact patient", "care-coordinator", None, {}))
    window = 7 if high else 14
    plan.append(("schedule_face_to_face", "Schedule face-to-face visit", "care-coordinator",
                 day0 + timedelta(days=2, hours=rng.randint(9, 17)), {"face_to_face_scheduled_date": "set"}))
    roll = rng.random()
    reconcile_day = rng.randint(2, 12) if roll < 0.90 else rng.randint(31, 40) if roll < 0.95 else None
    plan.append(("reconcile_medications", "Reconcile medications", "nurse",
                 None if reconcile_day is None else day0 + timedelta(days=reconcile_day, hours=rng.randint(9, 17)),
                 {"medication_reconciliation_date": "set"}))
    roll = rng.random()
    visit_day = rng.randint(2, window) if roll < 0.85 else window + rng.randint(2, 10) if roll < 0.95 else None
    plan.append(("face_to_face_visit", "Face-to-face TCM visit", "nurse",
                 None if visit_day is None else day0 + timedelta(days=visit_day, hours=rng.randint(9, 17)),
                 {"face_to_face_date": "set", "mdm_level_documented": data["mdm_level"]}))
    ended = ends_at <= now
    end = ends_at if ended else now
    status = ("cancelled" if cancelled_at is not None else "completed") if ended else "running"
    instance_id = str(uuid.uuid4())
    rows["instances"].append({
        "id": instance_id, "pathway_version_id": version_id, "pathway_key": KEY, "business_key": f"tcm-{n}",
        "patient_id": f"pat-{rng.randint(1, 200_000)}", "status": status, "state": "{}", "data": data,
        "incident": None, "call_bindings": {}, "lock_version": 1, "created_at": created, "updated_at": end,
        "ended_at": end if ended else None, "started_by": "adt-feed"})
    events: list[tuple[str, str, str | None, datetime, dict[str, Any]]] = [
        ("instance_started", "adt-feed", None, created, {"pathway": KEY, "version": 1, "business_key": f"tcm-{n}",
                                                         "data": data})]
    completions = []
    for element_id, name, team, done_at, done_data in plan:
        task_id = str(uuid.uuid4())
        done = done_at is not None and done_at <= end
        holder = rng.choice({"care-coordinator": COORDINATORS, "nurse": NURSES}.get(team, SUPERVISORS))
        state = "completed" if done else "cancelled" if ended else "ready"
        rows["tasks"].append({
            "id": task_id, "instance_id": instance_id, "pathway_key": KEY, "element_id": element_id, "name": name,
            "lane": team.replace("-", " ").title(), "kind": "user", "state": state,
            "assignee": holder if done else None, "priority": 50, "due_date": None, "documentation": None,
            "created_at": created, "completed_at": done_at if done else None,
            "completed_by": holder if done else None, "audience": audience_keys([("group", team)])})
        rows["candidates"].append({"task_id": task_id, "kind": "group", "value": team})
        if done and done_at is not None:
            events.append(("task_completed", holder, task_id, done_at,
                           {"element_id": element_id, "name": name, "data": done_data}))
            completions.append(Completion(element_id, done_at.astimezone(UTC), done_data))
    # the standing, as the product writes it with the instance's last save
    episode = Episode(data, completions, end.astimezone(UTC) if status == "cancelled" else None)
    states = state_rows(instance_id, version_id, KEY, 1, measures, episode, context)
    if ended:
        events.append(("cancelled" if status == "cancelled" else "completed", "adt-feed", None, end,
                       {"reason": "declined"} if status == "cancelled" else {}))
        recorded_at = end
        while recorded_at <= now:  # at the end, and again as each window still open then closes
            results = [evaluate(m, episode, now=recorded_at, time_context=context,
                                evaluate_expression=evaluate_expression) for m in measures]
            events.append(("measure_outcomes", "scheduler" if recorded_at > end else "adt-feed", None, recorded_at,
                           {"status": status, "measures": [r.as_dict() for r in results]}))
            still_open = [r.deadline for r in results if r.status == MeasureStatus.OPEN and r.deadline is not None]
            if not still_open:
                break
            recorded_at = min(still_open) + timedelta(seconds=1)
    recorded = [e for e in events if e[0] == "measure_outcomes"]
    projected: list[dict[str, Any]] = []
    if recorded:  # the projection of the last record, as the product writes it in the same transaction
        *_, recorded_at, outcomes = max(recorded, key=lambda e: e[3])
        projected = outcome_rows(instance_id, version_id, KEY, [m.id for m in measures], instance_status=status,
                                 ended_at=end.astimezone(UTC), recorded_at=recorded_at.astimezone(UTC), data=outcomes)
        rows["outcomes"] += projected
    if not any(row["final"] for row in projected):
        rows["states"] += states  # the standing, unless the final outcomes are recorded
    prev = GENESIS
    for seq, (type_, actor, event_task, at, event_data) in enumerate(sorted(events, key=lambda e: e[3]), start=1):
        row = {"instance_id": instance_id, "task_id": event_task, "pathway_version_id": version_id, "type": type_,
               "actor": actor, "at": at.astimezone(UTC), "data": as_stored(event_data), "chain": instance_id,
               "seq": seq, "prev_hash": prev}
        row["hash"] = prev = event_hash(**row)
        rows["events"].append(row)


@contextmanager
def _peak_memory(rss: Any) -> Iterator[list[float]]:
    """The highest resident set seen (sampled every 50 ms) while the block runs; [] without a server."""
    if rss is None:
        yield []
        return
    peak = [rss()]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        done.set()
        watcher.join()


def measure_reports(client: httpx.Client, token: str, now: datetime, requests: int,
                    rss: Any = None) -> dict[str, Any]:
    """p50/p95 per report (after one warm-up), what each answered (episodes decided, misses in all and
    listed on the first page, bytes),
    and the server's resident memory before and at peak when `rss` reads it."""
    results: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    before = rss() if rss else None
    with _peak_memory(rss) as peak:
        for name, params in report_queries(now):
            first, samples = timed_gets(client, "/api/reports/compliance", requests, params=params, headers=headers)
            summary: dict[str, Any] = {"bytes": len(first.content)}
            if params.get("format") != "csv":
                body = first.json()
                measures = body["measures"]
                summary.update(decided=sum(m["denominator"] for m in measures),
                               open=sum(m["open"] for m in measures), misses=body["misses"]["total"],
                               misses_listed=sum(len(m["misses"]) for m in measures))
            results[name] = {**percentiles(samples), **summary}
            log(f"compliance {name}: p50 {results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms")
    if rss is not None:
        results["server_rss_mb"] = {"before": before, "peak": peak[0], "after": rss()}
    return results
