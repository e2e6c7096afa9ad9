"""Every quick answer QuickWorkflow gives while the tests run is compared with SpiffWorkflow's own tree walk
(engine/runtime/quick_workflow.py): tests/conftest.py installs this for the whole session, so each diagram the
suite runs through the engine (the shipped pathways, the test diagrams, the corpus) checks the shortcut, and a
difference fails the session with the diagram, the filter and both answers."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow

from carepath.engine.runtime.quick_workflow import QuickWorkflow

_quick = QuickWorkflow.get_tasks
mismatches: list[str] = []
checked = [0]


def _checked(self: QuickWorkflow, first_task: Any = None, **kwargs: Any) -> list[Any]:
    quick = _quick(self, first_task, **kwargs)
    walked = list(BpmnWorkflow.get_tasks(self, first_task, **kwargs))
    checked[0] += 1
    if [task.id for task in quick] != [task.id for task in walked]:
        mismatches.append(f"{self.spec.name} {kwargs}: quick {[t.task_spec.name for t in quick]}, "
                          f"SpiffWorkflow {[t.task_spec.name for t in walked]}")
    return quick


def install() -> None:
    QuickWorkflow.get_tasks = _checked


def uninstall() -> None:
    QuickWorkflow.get_tasks = _quick
