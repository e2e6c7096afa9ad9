"""Going through the rule table costs no SQL statement: the statements of a claim and of a completion,
counted, are what they were before the table (measured on the commit before it, 42fefc2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.tasks import claim_task, complete_task
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.test_task_assignment import camunda_task

# Statements of each use case on the commit before the rule table, per database (a change that needs
# more must say why here; one that needs fewer may lower the number). +1 each since the answers name the
# patient (issue 13/14: name, birth date, MRN of the survivor when merged): one recursive query over the
# merge links for the answer's tasks.
BEFORE = {"sqlite": {"claim": 7, "complete": 21}, "postgresql": {"claim": 7, "complete": 19}}


def _statements(api: ApiClient, action: Callable[[], Any]) -> list[str]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(api.engine.db.engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(api.engine.db.engine, "before_cursor_execute", count)
    return statements


def test_a_claim_and_a_completion_cost_no_more_statements_than_before_the_rule_table(api: ApiClient) -> None:
    admin = api.user("admin")
    api.user("coordinator", "care-coordinator", name="cora")
    cora = Principal("cora", Role.COORDINATOR, frozenset({"care-coordinator"}))
    api.deploy(admin, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit", lane="Care Coordinator")))
    task_id = api.start(admin, "fu").json()["open_tasks"][0]["id"]
    claimed = _statements(api, lambda: claim_task(api.engine, cora, task_id))
    completed = _statements(api, lambda: complete_task(api.engine, cora, task_id, {}))
    before = BEFORE[api.engine.db.engine.dialect.name]
    assert len(claimed) <= before["claim"], claimed
    assert len(completed) <= before["complete"], completed


def test_a_worklist_says_each_rows_actions_without_a_query_per_row(api: ApiClient) -> None:
    """Supervisors' actions on tasks nobody can pick up need the staffed groups: read once per page."""
    admin = api.user("admin")
    boss = api.user("supervisor", "care-coordinator")
    api.deploy(admin, ("ur.bpmn", camunda_task("ur", candidateGroups="wound-care")))
    for n in range(6):
        api.start(admin, "ur", business_key=f"ur-{n}")

    def listed(limit: int) -> tuple[int, list[list[str]]]:
        items: list[list[str]] = []

        def read() -> None:
            page = api.get("/api/tasks", boss, params={"limit": limit, "unrouted": True,
                                                        "exact_total": True}).json()
            items.extend(task["actions"] for task in page["items"])

        return len(_statements(api, read)), items

    listed(2)  # the caller's token is read once, then served from the cache (usecases/token_principals.py)
    few, two = listed(2)
    many, six = listed(6)
    assert few == many
    assert len(six) == 6 and two == six[:2] and all("assign" in actions for actions in six)
