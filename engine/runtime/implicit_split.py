"""The split an activity or event with several outgoing flows makes (engine/definitions/_implicit_gateways.py).

BPMN 2.0.2 §8.4.13: a flow from an activity takes a token unless it has a condition that is false, and the
default flow takes one "only if all the other outgoing Sequence Flows from the Activity [...] are not valid
(i.e., their condition Expressions are false)". That is SpiffWorkflow's inclusive gateway with every flow
without a condition always matching — but its inclusive and parallel gateways are also joins, which merge
or drop other tokens that reach the same gateway (an activity run twice by an uncontrolled merge would lose
its first run's branches). This split never joins: each token that reaches it splits on its own.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.bpmn.specs.defaults import InclusiveGateway
from SpiffWorkflow.util.task import TaskState

# The condition of a flow that has none: always taken, never evaluated.
ALWAYS = "True"


class ImplicitSplit(InclusiveGateway):
    """An inclusive split without the join: flows without a condition always taken, conditional ones when
    true, the default one when nothing else is."""

    def _update_hook(self, my_task: Any) -> Any:
        return BpmnTaskSpec._update_hook(self, my_task)  # ready at once: no other token to wait for

    def _get_matching_outputs(self, my_task: Any) -> tuple[list[Any], list[Any]]:
        matches, defaults = [], []
        for condition, output in self.cond_task_specs:
            spec = my_task.workflow.spec.get_task_spec_from_name(output)
            if condition is None:
                defaults.append(spec)
            elif condition.args[0] == ALWAYS or condition._matches(my_task):
                matches.append(spec)
        return matches, defaults

    def _run_hook(self, my_task: Any) -> bool:
        matches, defaults = self._get_matching_outputs(my_task)
        if not matches and not defaults:
            source = getattr(my_task.parent.task_spec, "bpmn_id", None) if my_task.parent else None
            raise WorkflowTaskException(
                f"no condition on the flows leaving '{source}' is true, and none of its flows is the default",
                task=my_task)
        my_task._sync_children(matches or defaults, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.FUTURE | TaskState.PREDICTED_MASK)
        return True
