"""Worklist latency with many open tasks: rows bulk-inserted into the projection tables the way a
busy service fills them, then every worklist filter queried over HTTP by the users who use it.

The data is shaped like a care-coordination service, not uniform: groups of very different
sizes (one team holds 40% of the work, another 1%), a share of tasks claimed or on hold, due dates
spread around today (some overdue, some none), several pathways, and a history of completed tasks
beside the open ones."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text

from carepath.engine.application import CarePath
from carepath.engine.model import audience_keys
from carepath.engine.patient_links import summaries_query
from carepath.engine.patients import v2_identifier_system
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import (
    Instance,
    PathwayVersion,
    Patient,
    PatientIdentifier,
    Task,
    TaskCandidate,
)
from carepath.engine.queries import TaskFilter, task_page_query
from carepath.engine.usecases.projections import fold_task_counts

from .common import add_user, log, percentiles, timed_gets
from .pathway import KEY

# Group name -> share of the open tasks.
GROUPS: dict[str, float] = {"care-coordinator": 0.40, "scheduling": 0.20, "pharmacy": 0.15, "nursing": 0.12,
                            "behavioral-health": 0.08, "social-work": 0.04, "care-team-supervisor": 0.01}
NAMES = ["Call patient", "Book follow-up visit", "Reconcile medications", "Confirm specialist report",
         "Arrange transport", "Review discharge summary"]
PATHWAYS = [KEY, "post-ed-follow-up-bulk", "referral-loop-bulk"]
CLAIMERS = [f"nurse-{n}" for n in range(200)]
COMPLETED_SHARE = 0.5  # completed tasks in the history, per open task
BATCH = 5000
FAMILIES = ["Nguyen", "Garcia", "Smith", "Okafor", "Müller", "Kowalski", "Haddad", "Tanaka", "O'Brien", "Silva"]
GIVENS = ["Ana", "Ben", "Chloé", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines", "Jonas"]
MERGED_SHARE = 0.05  # patients merged into another (their episodes' rows show the survivor)


@dataclass(frozen=True)
class Persona:
    name: str
    role: str
    groups: tuple[str, ...]


# Who asks: a coordinator in the biggest team, one in a small team, a supervisor, an admin.
PERSONAS = [Persona("wl-coordinator", "coordinator", ("care-coordinator",)),
            Persona("wl-social-worker", "coordinator", ("social-work",)),
            Persona("wl-new-team", "coordinator", ("new-team",)),
            Persona("wl-supervisor", "supervisor", ("care-coordinator", "care-team-supervisor")),
            Persona("wl-admin", "admin", ()),
            Persona("nurse-7", "coordinator", ("pharmacy",))]


def bulk_load(database_url: str, total_open: int, template_state: str) -> int:
    """Add instances with one task each until `total_open` tasks are open (plus completed history).
    Returns open tasks added."""
    db = Database(database_url)
    try:
        with db.engine.begin() as connection:
            version_id = connection.scalar(select(PathwayVersion.id).where(PathwayVersion.key == KEY))
            have = connection.scalar(select(func.count()).select_from(Task).where(
                Task.state.in_(["ready", "in-progress", "on-hold"]))) or 0
        rng, added, now = random.Random(7 + have), 0, datetime.now(UTC)
        groups, weights = list(GROUPS), list(GROUPS.values())
        while have + added < total_open:
            count = min(BATCH, total_open - have - added)
            instances: list[dict[str, Any]] = []
            tasks: list[dict[str, Any]] = []
            candidates: list[dict[str, Any]] = []
            patients: list[dict[str, Any]] = []
            for n in range(count + int(count * COMPLETED_SHARE)):
                instance_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
                patients.append(_patient(rng, instance_id, now, patients))
                group = rng.choices(groups, weights)[0]
                created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
                state, assignee = _state(rng, open_task=n < count)
                due = created + timedelta(days=rng.choice([1, 2, 3, 7, 14, 30])) if rng.random() < 0.7 else None
                instances.append({"id": instance_id, "pathway_version_id": version_id,
                                  "pathway_key": rng.choice(PATHWAYS), "business_key": f"bulk-{instance_id}",
                                  "patient_id": f"pat-{rng.randint(1, 50000)}",
                                  "status": "running" if n < count else "completed", "state": template_state,
                                  "data": {}, "incident": None, "call_bindings": {}, "lock_version": 1,
                                  "created_at": created, "updated_at": created, "ended_at": None,
                                  "started_by": "bench", "patient_ref": patients[-1]["id"]})
                tasks.append({"id": task_id, "instance_id": instance_id, "pathway_key": instances[-1]["pathway_key"],
                              "patient_id": instances[-1]["patient_id"], "business_key": instances[-1]["business_key"],
                              "pathway_name": "Bulk pathway",
                              "element_id": "call", "name": rng.choice(NAMES),
                              "lane": group.replace("-", " ").title(), "kind": "user", "state": state,
                              "assignee": assignee, "priority": rng.choice([30, 50, 50, 50, 80]),
                              "due_date": due, "documentation": None, "created_at": created,
                              "completed_at": created + timedelta(hours=5) if state == "completed" else None,
                              "completed_by": assignee if state == "completed" else None})
                offered = [("group", group)]
                if rng.random() < 0.02:  # also offered to a named person
                    offered.append(("user", rng.choice(CLAIMERS)))
                tasks[-1]["audience"] = audience_keys(offered)
                candidates += [{"task_id": task_id, "kind": kind, "value": value} for kind, value in offered]
            with db.engine.begin() as connection:
                _insert_patients(connection, patients)
                connection.execute(insert(Instance), instances)
                connection.execute(insert(Task), tasks)
                connection.execute(insert(TaskCandidate), candidates)
            added += count
            log(f"worklist: {have + added:,} open tasks loaded")
        # The tasks' triggers appended a count delta per task; a running service folds them on its
        # sweep, so fold them here as it would have by the time anyone looks.
        fold_task_counts(CarePath(db, lambda: now))
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        return added
    finally:
        db.dispose()


def _state(rng: random.Random, *, open_task: bool) -> tuple[str, str | None]:
    if not open_task:
        return "completed", rng.choice(CLAIMERS)
    roll = rng.random()
    if roll < 0.80:
        return "ready", None
    if roll < 0.95:
        return "in-progress", rng.choice(CLAIMERS)
    return "on-hold", rng.choice(CLAIMERS)


def queries(now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, persona, query parameters): every filter and sort of GET /api/tasks, asked by whom
    asks it in practice."""
    soon = (now + timedelta(days=2)).isoformat()
    return [
        ("default (ready, by age)", "wl-coordinator", {}),
        ("candidate=me", "wl-coordinator", {"candidate": "me"}),
        ("candidate=me, small team", "wl-social-worker", {"candidate": "me"}),
        ("assignee=me, in-progress", "nurse-7", {"assignee": "me", "state": "in-progress"}),
        ("group=, supervisor", "wl-supervisor", {"group": "care-coordinator"}),
        ("state=on-hold", "wl-supervisor", {"state": "on-hold"}),
        ("pathway=", "wl-coordinator", {"pathway": "referral-loop-bulk"}),
        ("patient_id=", "wl-coordinator", {"patient_id": "pat-4242"}),
        ("business_key=", "wl-admin", {"business_key": "bulk-unknown"}),
        ("priority=80", "wl-coordinator", {"priority": 80}),
        ("q=medication", "wl-coordinator", {"q": "medication"}),
        ("due_before=+2d", "wl-coordinator", {"due_before": soon}),
        ("overdue=true", "wl-coordinator", {"overdue": "true"}),
        ("overdue=true, small team", "wl-social-worker", {"overdue": "true"}),
        ("default, team with no tasks", "wl-new-team", {}),
        ("sort=due", "wl-coordinator", {"sort": "due"}),
        ("sort=priority, page 11", "wl-coordinator", {"sort": "priority", "offset": 500}),
        ("sort=-age, admin", "wl-admin", {"sort": "-age"}),
        ("unassigned", "wl-supervisor", {"unassigned": "true"}),
        ("unrouted", "wl-supervisor", {"unrouted": "true"}),
        ("state=ready, admin, all", "wl-admin", {}),
    ]


def add_personas(database_url: str) -> dict[str, str]:
    return {p.name: add_user(database_url, p.name, p.role, *p.groups) for p in PERSONAS}


def measure_worklist(base: str, tokens: dict[str, str], requests: int) -> dict[str, Any]:
    """p50/p95/p99 per query, plus the page size and total each answered (so a fast empty answer
    is visible as such)."""
    results: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, persona, params in queries(datetime.now(UTC)):
            params = {"limit": 50, **params}
            headers = {"Authorization": f"Bearer {tokens[persona]}"}
            first, samples = timed_gets(client, "/api/tasks", requests, params=params, headers=headers)
            body = first.json()
            results[name] = {**percentiles(samples), "items": len(body["items"]), "total": body["total"]}
            log(f"worklist {name}: p95 {results[name]['p95_ms']} ms ({results[name]['items']} rows)")
        headers = {"Authorization": f"Bearer {tokens['wl-supervisor']}"}
        _, samples = timed_gets(client, "/api/tasks/counts", max(5, requests // 10), headers=headers)
        results["counts (dashboard)"] = {**percentiles(samples), "items": 0, "total": 0}
    return results


def _patient(rng: random.Random, instance_id: str, now: datetime, earlier: list[dict[str, Any]]) -> dict[str, Any]:
    """A named patient with a birth date and an MRN; a few merged into an earlier patient of the batch."""
    survivor = earlier[rng.randrange(len(earlier))]["id"] if earlier and rng.random() < MERGED_SHARE else None
    return {"id": instance_id, "family": rng.choice(FAMILIES), "given": rng.choice(GIVENS),
            "birth_date": (now - timedelta(days=rng.randint(18 * 365, 95 * 365))).date(), "merged_into": survivor,
            "lock_version": 1, "created_at": now, "updated_at": now}


def _insert_patients(connection: Any, patients: list[dict[str, Any]]) -> None:
    """The patients (survivors first: the merged ones refer to them) and one MRN each."""
    for rows in ([p for p in patients if not p["merged_into"]], [p for p in patients if p["merged_into"]]):
        if rows:
            connection.execute(insert(Patient), rows)
    connection.execute(insert(PatientIdentifier), [
        {"patient_ref": p["id"], "system": v2_identifier_system("BENCH"), "value": f"M{p['id'][:13]}"}
        for p in patients])


def explain(database_url: str) -> dict[str, str]:
    """The database's plan (with timings on PostgreSQL) for the coordinators' two commonest lists."""
    personas = {p.name: p for p in PERSONAS}
    big, small = personas["wl-coordinator"], personas["wl-social-worker"]
    filters = {
        "candidate=me": TaskFilter(candidate_user=big.name, candidate_groups=frozenset(big.groups),
                                   visible_to=(big.name, frozenset(big.groups))),
        "candidate=me, small team": TaskFilter(candidate_user=small.name, candidate_groups=frozenset(small.groups),
                                               visible_to=(small.name, frozenset(small.groups))),
    }
    db = Database(database_url)
    prefix = "EXPLAIN ANALYZE " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    plans = {}
    try:
        with db.engine.connect() as connection:
            for name, f in filters.items():
                query = task_page_query(f, db.dialect, "age", 50, 0)
                plans[name] = _plan(connection, db, prefix, query)
                page = [row.instance_id for row in connection.execute(query.with_only_columns(Task.instance_id))]
                plans[f"{name}: the page's patients"] = _plan(connection, db, prefix, summaries_query(page))
    finally:
        db.dispose()
    return plans


def _plan(connection: Any, db: Database, prefix: str, query: Any) -> str:
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True})).replace(":", "\\:")  # not binds
    return "\n".join(" ".join(str(c) for c in row) for row in connection.execute(text(prefix + sql)).all())
