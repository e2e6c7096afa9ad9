"""SpiffWorkflow's BpmnWorkflow with a quicker answer to "which tasks are ready?" in the common case.

`do_engine_steps` asks `get_tasks(state=READY)` of the workflow round after round, and SpiffWorkflow answers
with its generic tree iterator: a generator that visits every task the search may descend through (about 740
visits to start a 20-task chain with boundary timers, a third of SpiffWorkflow's time in a start). The task
dict answers the same question in one pass. The iterator yields the ready tasks it reaches in depth-first
order; a ready task's ancestors are all finished or started (a task becomes ready when what precedes it
completes, and cancelling a task cancels its descendants), so it reaches every ready task within its depth
limit. The quick answer is used only where that makes it exactly the iterator's: no subprocess (whose tasks the
iterator would also visit), at most one ready task (the order of several is the tree's), and that one within the
iterator's depth limit; anything else asks SpiffWorkflow (tests/test_quick_workflow.py compares both)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

# BpmnTaskIterator's default max_depth is 1000: below it the quick answer's task is certainly reached.
_DEPTH_LIMIT = 900
_QUICK_FILTERS = frozenset({"state", "manual"})


class QuickWorkflow(BpmnWorkflow):
    def get_tasks(self, first_task: Any = None, **kwargs: Any) -> list[Any]:
        if (first_task is None and kwargs.get("state") == TaskState.READY and kwargs.keys() <= _QUICK_FILTERS
                and not self.subprocesses):
            ready = [task for task in self.tasks.values() if task._state == TaskState.READY]
            if not ready:
                return []
            if len(ready) == 1 and _depth(ready[0]) < _DEPTH_LIMIT:
                manual = kwargs.get("manual")
                return ready if manual is None or ready[0].task_spec.manual == manual else []
        return list(super().get_tasks(first_task, **kwargs))


def _depth(task: Any) -> int:
    depth = 0
    while task.parent is not None and depth < _DEPTH_LIMIT:
        task, depth = task.parent, depth + 1
    return depth
