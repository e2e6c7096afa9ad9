"""The SQL statements of one instance start and one task completion, counted through the use cases (the
transaction and the answer built after it) on the benchmark's 20-task chain (bench/chain.py) and on a
shipped pathway: a guard against added round trips (issue 17; docs/performance.md).

Before issue 17's engine-side work (commit 8eaa334) the counts were, SQLite / PostgreSQL (PostgreSQL's
BEGIN and COMMIT are not statements of their own): chain start 27 / 24, chain completion 27 / 22;
post-ED start 34 / 27, post-ED completion 30 / 24. Of each count, the answer read after the transaction
(`get_instance_view`) is 7 on SQLite (with its BEGIN) and 6 on PostgreSQL. A change that needs more
statements must say why here; one that needs fewer lowers the bound."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from carepath.bench.chain import CHAIN_KEY, chain_bpmn
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.tasks import complete_task
from carepath.engine.views import InstanceView
from tests.support.api import ApiClient

# (start, completion) at most, per database.
CHAIN = {"sqlite": (12, 20), "postgresql": (11, 19)}
# The post-ED pathway declares measures: its episode's standing (measure_states) is written with its state,
# one INSERT at a start, a DELETE, the completions read and an INSERT at a completion.
POST_ED = {"sqlite": (19, 27), "postgresql": (16, 25)}
COORDINATOR = Principal("cora", Role.COORDINATOR, frozenset({"care-coordinator"}))
LEAD = Principal("lee", Role.CLINICAL_LEAD, frozenset())


def _statements(api: ApiClient, action: Callable[[], InstanceView]) -> tuple[list[str], InstanceView]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(" ".join(args[2].split())[:120])

    event.listen(api.engine.db.engine, "before_cursor_execute", count)
    try:
        view = action()
    finally:
        event.remove(api.engine.db.engine, "before_cursor_execute", count)
    return statements, view


def _start_and_complete(api: ApiClient, starter: Principal, key: str, data: dict[str, Any], element_id: str,
                        form: dict[str, Any]) -> tuple[list[str], list[str]]:
    started, view = _statements(api, lambda: start_instance(api.engine, starter, key, business_key="bk-counted",
                                                           patient_id="pat-counted", data=data))
    [task] = [t for t in view.open_tasks if t.element_id == element_id]
    completed, after = _statements(api, lambda: complete_task(api.engine, COORDINATOR, task.id, form))
    assert task.id not in {t.id for t in after.open_tasks}
    return started, completed


def test_a_chain_start_and_completion_take_no_more_statements_than_counted(api: ApiClient) -> None:
    admin = api.user("admin")
    api.user("coordinator", "care-coordinator", name="cora")
    assert api.deploy(admin, ("chain.bpmn", chain_bpmn())).status_code == 201
    api.start(admin, CHAIN_KEY, patient_id="pat-0")  # the spec is cached, as on a server that ran a while
    started, completed = _start_and_complete(api, COORDINATOR, CHAIN_KEY, {}, "task_01", {"note": "done"})
    most_started, most_completed = CHAIN[api.engine.db.engine.dialect.name]
    assert len(started) <= most_started, "\n".join(started)
    assert len(completed) <= most_completed, "\n".join(completed)


def test_a_shipped_pathway_start_and_completion_take_no_more_statements_than_counted(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 1, 9, 15, 0, tzinfo=UTC))
    shipped.user("coordinator", "care-coordinator", name="cora")
    shipped.user("clinical_lead", name="lee")
    data = {"ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0}
    start_instance(shipped.engine, LEAD, "post-ed-follow-up", business_key="bk-first", data=data)  # spec cached
    started, completed = _start_and_complete(shipped, LEAD, "post-ed-follow-up", data, "call_patient",
                                             {"reached": True, "call_notes": "spoke with patient"})
    most_started, most_completed = POST_ED[shipped.engine.db.engine.dialect.name]
    assert len(started) <= most_started, "\n".join(started)
    assert len(completed) <= most_completed, "\n".join(completed)
