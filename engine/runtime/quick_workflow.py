"""SpiffWorkflow's BpmnWorkflow with a quicker answer to "which tasks are ready?" in the common case.

`do_engine_steps` asks `get_tasks(state=READY)` of the workflow round after round (and the engine asks
`get_next_task(state=READY, manual=False)` after each), and SpiffWorkflow answers with its generic tree
iterator: a generator that visits every task the search may descend through (about 740 visits to start a
20-task chain with boundary timers, a third of SpiffWorkflow's time in a start). The task dict answers the same
question in one pass.

When that is exactly the iterator's answer: searching for ready tasks, the iterator descends through every
task but those MAYBE or LIKELY (whose children cannot be ready: SpiffWorkflow refuses such children) and stops
at its depth limit, and it yields what it reaches in depth-first order. So the quick answer is used only with
no subprocess (whose tasks the iterator would also visit), at most one ready task (the order of several is the
tree's), that one within the depth limit and under no MAYBE or LIKELY ancestor; anything else asks SpiffWorkflow.
The test suite compares every quick answer with SpiffWorkflow's walk (tests/support/quick_check.py)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

# BpmnTaskIterator's default max_depth is 1000: below it the quick answer's task is certainly reached.
_DEPTH_LIMIT = 900
_QUICK_FILTERS = frozenset({"state", "manual"})
_NOT_DESCENDED = TaskState.MAYBE | TaskState.LIKELY


class QuickWorkflow(BpmnWorkflow):
    def get_tasks(self, first_task: Any = None, **kwargs: Any) -> list[Any]:
        if (first_task is None and kwargs.get("state") == TaskState.READY and kwargs.keys() <= _QUICK_FILTERS
                and not self.subprocesses):
            ready = [task for task in self.tasks.values() if task._state == TaskState.READY]
            if not ready:
                return []
            if len(ready) == 1 and _reached(ready[0]):
                manual = kwargs.get("manual")
                return ready if manual is None or ready[0].task_spec.manual == manual else []
        return list(super().get_tasks(first_task, **kwargs))

    def get_next_task(self, first_task: Any = None, **kwargs: Any) -> Any:
        """The first task `get_tasks` gives (the iterator's first, in the same depth-first order)."""
        if first_task is None and kwargs.get("state") == TaskState.READY and kwargs.keys() <= _QUICK_FILTERS:
            tasks = self.get_tasks(**kwargs)
            return tasks[0] if tasks else None
        return super().get_next_task(first_task, **kwargs)


def _reached(task: Any) -> bool:
    """Whether the iterator's walk from the root reaches this task: no MAYBE or LIKELY ancestor, within the
    depth limit."""
    depth = 0
    while task.parent is not None:
        task, depth = task.parent, depth + 1
        if depth >= _DEPTH_LIMIT or task._state & _NOT_DESCENDED:
            return False
    return True
