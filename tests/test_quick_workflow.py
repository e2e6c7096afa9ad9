"""The quick ready-task search (engine/runtime/quick_workflow.py) gives SpiffWorkflow's answer, and is used."""

from __future__ import annotations

from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from carepath.bench.chain import CHAIN_KEY, chain_bpmn
from carepath.engine.runtime.quick_workflow import QuickWorkflow
from tests.support import diagrams as d
from tests.support import quick_check
from tests.support.api import ApiClient


def _walk_to_the_end(api: ApiClient, user: str, key: str, data: dict[str, Any] | None = None) -> None:
    answer = api.start(user, key, data=data or {})
    assert answer.status_code == 201, answer.text
    instance = answer.json()
    while instance["open_tasks"]:
        task = instance["open_tasks"][0]
        answer = api.post(f"/api/tasks/{task['id']}/complete", user, {"data": {"risk_score": 9}})
        assert answer.status_code == 200, answer.text
        instance = answer.json()
    assert instance["status"] == "completed"


PARALLEL = d.definitions(d.process(
    "par",
    d.node("startEvent", "s"), d.node("parallelGateway", "fork"),
    d.node("userTask", "a", "A"), d.node("userTask", "b", "B"),
    d.node("parallelGateway", "join"), d.node("endEvent", "e"),
    d.flow("f1", "s", "fork"), d.flow("f2", "fork", "a"), d.flow("f3", "fork", "b"),
    d.flow("f4", "a", "join"), d.flow("f5", "b", "join"), d.flow("f6", "join", "e")))


@pytest.mark.parametrize(("name", "bpmn", "key"), [
    ("chain.bpmn", chain_bpmn(), CHAIN_KEY),
    ("timers.bpmn", d.boundary_timers("bt"), "bt"),
    ("gateway.bpmn", d.gateway_on("g", "risk_score > 5"), "g"),
    ("parallel.bpmn", PARALLEL, "par"),
])
def test_every_ready_task_search_agrees_with_spiffworkflow(api: ApiClient, name: str, bpmn: str, key: str) -> None:
    lead, admin = api.user("clinical_lead"), api.user("admin")
    assert api.deploy(lead, (name, bpmn)).status_code == 201, name
    before, mismatches = quick_check.checked[0], len(quick_check.mismatches)
    _walk_to_the_end(api, admin, key)
    assert quick_check.checked[0] > before  # the searches went through QuickWorkflow
    assert quick_check.mismatches[mismatches:] == []


def test_a_called_pathway_runs_with_its_subprocess(api: ApiClient) -> None:
    """With a subprocess the quick answer is not taken (SpiffWorkflow's walk also visits its tasks)."""
    lead = api.user("clinical_lead")
    api.deploy(lead, ("child.bpmn", d.linear_user_tasks("child", "Inner")))
    api.deploy(lead, ("parent.bpmn", d.call_activity("parent", "child")))
    before = len(quick_check.mismatches)
    _walk_to_the_end(api, api.user("admin"), "parent")
    assert quick_check.mismatches[before:] == []


def test_the_quick_answer_is_the_one_ready_task(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("chain.bpmn", chain_bpmn()))
    workflow = api.workflow(api.start(lead, CHAIN_KEY, data={}).json()["id"]).workflow
    assert isinstance(workflow, QuickWorkflow)
    quick = workflow.get_tasks(state=TaskState.READY)
    assert [t.task_spec.name for t in quick] == ["task_01"]
    assert quick == list(BpmnWorkflow.get_tasks(workflow, state=TaskState.READY))
    assert workflow.get_tasks(state=TaskState.READY, manual=False) == []
    assert [t.task_spec.name for t in workflow.get_tasks(state=TaskState.READY, manual=True)] == ["task_01"]


def test_the_instance_data_reads_only_subprocesses_still_in_the_tree() -> None:
    """A subprocess whose calling task SpiffWorkflow dropped (a cancelled multi-instance activity, a branch a
    migration reset) is no longer reached by a walk of the tree, and its steps no longer count."""
    from types import SimpleNamespace
    from uuid import uuid4

    from carepath.engine.runtime.snapshot import attached_subprocesses

    call, inner_call, dropped, inner_task = uuid4(), uuid4(), uuid4(), uuid4()
    child = SimpleNamespace(parent_task_id=call, tasks={inner_call: object()})
    grandchild = SimpleNamespace(parent_task_id=inner_call, tasks={inner_task: object()})
    orphan = SimpleNamespace(parent_task_id=dropped, tasks={uuid4(): object()})
    orphans_child = SimpleNamespace(parent_task_id=next(iter(orphan.tasks)), tasks={})
    workflow = SimpleNamespace(tasks={call: object()},
                               subprocesses={inner_call: grandchild, call: child, dropped: orphan,
                                             next(iter(orphan.tasks)): orphans_child})
    assert {id(sp) for sp in attached_subprocesses(workflow)} == {id(child), id(grandchild)}
