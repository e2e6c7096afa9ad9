"""The one wrapper around a SpiffWorkflow BpmnWorkflow; nothing outside engine/runtime touches Spiff.

Every operation runs under `engine_clock(clock)`, so timer events read the product's time, and
under a step budget, so a diagram that loops forever (a self-recursive call activity, a cycle of
script tasks) becomes an incident instead of a hung worker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.base import EventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.util.task import TaskState as SpiffState

from ..calendars import TimeContext, engine_time_context
from ..clock import Clock, engine_clock
from ..errors import InvalidTransition, NotFound
from ..model import Incident, PassedStep, Snapshot
from .external_tasks import is_external, throw_bpmn_error
from .io_mappings import local_inputs
from .quick_workflow import QuickWorkflow
from .serializer import serializer_for
from .snapshot import describe_incident, json_values, take_snapshot
from .stall import stall_incident

MAX_ENGINE_STEPS = 5000
MAX_SUBPROCESS_DEPTH = 32


class EngineLimitExceeded(RuntimeError):
    pass


class RunningWorkflow:
    """A deserialized pathway instance and the actions the product takes on it."""

    def __init__(self, workflow: BpmnWorkflow, family: str, business_key: str | None = None,
                 incident: Incident | None = None) -> None:
        self.workflow = workflow
        self.family = family
        self.business_key = business_key
        self.incident = incident
        self.bound_versions: dict[str, int] = {}
        self.task_rules: dict[str, dict[str, Any]] = {}
        self.time_context: TimeContext | None = None  # the pathway's calendar and zone
        # Told of every diagram element the engine completes, in order (the simulator's path).
        self.step_listener: Callable[[PassedStep], None] | None = None

    @classmethod
    def create(cls, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec], family: str,
               script_engine: Any, data: dict[str, Any], business_key: str | None = None) -> RunningWorkflow:
        workflow = QuickWorkflow(spec, subprocess_specs, script_engine=script_engine)
        workflow.task_tree.data.update(deepcopy(data))
        # The start task hands its data to everything after it.
        for task in workflow.get_tasks(state=SpiffState.READY):
            task.data.update(deepcopy(data))
        return cls(workflow, family, business_key)

    @classmethod
    def restore(cls, state: str, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec],
                family: str, script_engine: Any, business_key: str | None = None,
                incident: Incident | None = None) -> RunningWorkflow:
        workflow = serializer_for(family).state_from_json(state, spec, subprocess_specs)
        workflow.script_engine = script_engine
        return cls(workflow, family, business_key, incident)

    def dump(self) -> str:
        return serializer_for(self.family).state_to_json(self.workflow)

    # -- actions -------------------------------------------------------------------------------

    def run(self, clock: Clock) -> None:
        """Run engine steps until the instance waits; a failure becomes an incident."""
        steps = 0

        def count_step(task: Any) -> None:
            nonlocal steps
            steps += 1
            if steps > MAX_ENGINE_STEPS:
                raise EngineLimitExceeded(
                    f"the pathway ran more than {MAX_ENGINE_STEPS} automatic steps without waiting; "
                    "it probably loops forever")
            if task.workflow.depth > MAX_SUBPROCESS_DEPTH:
                raise EngineLimitExceeded(
                    f"subprocesses nest deeper than {MAX_SUBPROCESS_DEPTH} levels; a call activity "
                    "probably calls itself")

        with self._engine(clock):
            try:
                self._run_until_waiting(count_step)
            except Exception as exc:  # any failure of diagram code is the instance's incident
                self.incident = describe_incident(exc)
                return
        if self.workflow.get_next_task(state=SpiffState.ERROR) is None:
            self.incident = stall_incident(self.workflow, element_kind)

    def _run_until_waiting(self, count_step: Any) -> None:
        # Timers that came due make their events ready only on refresh, which SpiffWorkflow does
        # after its steps: refresh first and go round until nothing automatic is ready.
        while True:
            self.workflow.refresh_timers()
            self.workflow.do_engine_steps(will_complete_task=count_step, did_complete_task=self._passed)
            if self.workflow.get_next_task(state=SpiffState.READY, manual=False) is None:
                return

    def complete_task(self, task_id: str, data: dict[str, Any], clock: Clock) -> None:
        task = self._task(task_id)
        if not task.task_spec.manual or task.state != SpiffState.READY:
            raise InvalidTransition(f"task {task_id} is not ready to be completed")
        task.data.update(deepcopy(data))
        with self._engine(clock):
            task.run()
        self._passed(task)
        self.run(clock)

    def deliver_message(self, name: str, payload: dict[str, Any], clock: Clock,
                        correlation_key: str | None = None, task_id: str | None = None) -> bool:
        """Hand a correlated message to the task waiting for it (the one the database matched, `task_id`,
        when two catches of the same message wait with different keys); False when no task waits."""
        found = self._message_catch(name, task_id)
        if found is None:
            return False
        waiting, definition = found
        payload = _with_correlation(definition, payload, correlation_key)
        event = self._message_event(definition, payload)
        with self._engine(clock):
            # Correlation was decided in the database. SpiffWorkflow's own catch would re-evaluate the
            # diagram's correlation expressions against the payload and offer the message to every
            # waiting task, so the matched task catches it directly.
            outer = waiting.task_spec.event_definition
            if isinstance(outer, MultipleEventDefinition):  # an event-based gateway or multiple event
                outer.catch(waiting, event)
            else:
                definition.update_internal_data(waiting, event)
                EventDefinition.catch(definition, waiting, event)
            waiting._set_state(SpiffState.WAITING)
            waiting.task_spec._update(waiting)
        self.run(clock)
        return True

    def complete_external(self, task_id: str, variables: dict[str, Any], clock: Clock) -> None:
        """A worker finished the external task: its variables into the task's data, then on."""
        task = self._waiting_external(task_id)
        task.data.update(deepcopy(variables))
        task._ready()  # not through _update: that would take the data from the task before it again
        self.run(clock)

    def fail_external(self, task_id: str, message: str, detail: str | None = None) -> None:
        """The worker gave up (no retries left): the task fails and the instance is in incident."""
        task = self._waiting_external(task_id)
        task._set_state(SpiffState.ERROR)
        self.incident = Incident(message=message[:2000], element_id=task.task_spec.bpmn_id, task_id=task_id,
                                 detail=(detail or None) and detail[:4000])

    def throw_external_error(self, task_id: str, code: str, message: str | None, variables: dict[str, Any],
                             clock: Clock) -> bool:
        """The worker reports a business error: thrown as the BPMN error `code` from the task. False, and the
        task failed with an incident, when no error event of the diagram catches it."""
        task = self._waiting_external(task_id)
        task.data.update(deepcopy(variables))
        with self._engine(clock):
            caught = throw_bpmn_error(task, code, message, self.family)
        if not caught:
            spec = task.task_spec
            self.fail_external(task_id, f"The BPMN error '{code}' from the worker of external task "
                               f"'{spec.bpmn_name or spec.bpmn_id}' is caught by no error event of the pathway",
                               message)
            return False
        self.run(clock)
        return True

    def cancel(self) -> None:
        self.workflow.cancel()

    def retry(self, clock: Clock, data: dict[str, Any] | None = None) -> None:
        """Put failed tasks back to ready, with corrected data if given, and run again."""
        failed = self.workflow.get_tasks(state=SpiffState.ERROR)
        for task in failed:
            task.data.update(deepcopy(data or {}))
            # A failed external task waits for a worker again; anything else runs again.
            task._set_state(SpiffState.WAITING if is_external(task) else SpiffState.READY)
        if data and not failed:  # a timer or a waiting event failed: correct the data it reads
            for task in self.workflow.get_tasks(state=SpiffState.WAITING | SpiffState.READY):
                task.data.update(deepcopy(data))
        self.run(clock)

    def snapshot(self, now: datetime | None = None) -> Snapshot:
        """The product's view of the instance; `now` dates the tasks that have just become ready."""
        return take_snapshot(self.workflow, self.incident, self.business_key, self.task_rules, now,
                             self.time_context)

    def completed_among(self, task_ids: Iterable[str]) -> set[str]:
        """The ids among these whose timer event fired: completed, or (a cycle's last repetition) still
        waiting with the paths it started; not cancelled or dropped."""
        done = set()
        for task_id in task_ids:
            try:
                task = self.workflow.get_task_from_id(UUID(task_id))
            except Exception:  # not in the tree any more (a branch removed): it did not complete
                task = None
            if task is not None and (task.has_state(SpiffState.COMPLETED) or task.has_state(SpiffState.WAITING) and any(
                    not child.has_state(SpiffState.PREDICTED_MASK | SpiffState.FUTURE) for child in task.children)):
                done.add(task_id)
        return done

    # -- helpers -------------------------------------------------------------------------------

    def _passed(self, task: Any) -> None:
        spec = task.task_spec
        if self.step_listener is not None and spec.bpmn_id:  # SpiffWorkflow's own bookkeeping tasks have none
            self.step_listener(PassedStep(spec.bpmn_id, spec.bpmn_name, element_kind(spec), task.workflow.spec.name))

    @contextmanager
    def _engine(self, clock: Clock) -> Iterator[None]:
        """The product's clock and this pathway's calendar, for SpiffWorkflow's callbacks."""
        with engine_clock(clock), engine_time_context(self.time_context):
            yield

    def task_data(self, task_id: str) -> tuple[str, dict[str, Any]]:
        """A task's element id and its own data (a completed task's, as it completed), as JSON values."""
        task = self._task(task_id)
        return task.task_spec.bpmn_id or task.task_spec.name, json.loads(json.dumps(task.data, default=str))

    def task_inputs(self, task_id: str) -> dict[str, Any]:
        """An open task's input parameters (camunda:inputOutput), its local variables, as JSON values."""
        return json_values(local_inputs(self._task(task_id)))

    def _task(self, task_id: str) -> Any:
        try:
            task = self.workflow.get_task_from_id(UUID(task_id))
        except (ValueError, KeyError, TypeError):
            task = None
        if task is None:
            raise NotFound(f"task {task_id} is not part of this instance")
        return task

    def _waiting_external(self, task_id: str) -> Any:
        task = self._task(task_id)
        if not is_external(task) or task.state != SpiffState.WAITING:
            raise InvalidTransition(f"task {task_id} is not an external task waiting for a worker")
        return task

    def _message_catch(self, name: str, task_id: str | None = None) -> tuple[Any, MessageEventDefinition] | None:
        for task in self.workflow.event_manager.tasks.values():
            outer = getattr(task.task_spec, "event_definition", None)
            inner = outer.event_definitions if isinstance(outer, MultipleEventDefinition) else [outer]
            for definition in inner:
                if isinstance(definition, MessageEventDefinition) and definition.name == name:
                    if task_id is None or str(task.id) == task_id:
                        return task, definition
        # The database matched a catch this workflow no longer has waiting: hand the message to no
        # other catch of the same name (it may wait for another key); it stays buffered.
        return None

    def _message_event(self, definition: MessageEventDefinition, payload: dict[str, Any]) -> BpmnEvent:
        """The event as SpiffWorkflow would have caught it. After an event-based gateway SpiffWorkflow's own
        catch runs: it evaluates the correlation properties on the event's payload (Camunda's wrapper, so
        their fields are copied onto it) and matches the event's correlations to the ones already seen."""
        fields = [p.retrieval_expression.strip() for p in definition.correlation_properties
                  if (p.retrieval_expression or "").strip() in payload]
        event_payload = self._message_payload(payload)
        if isinstance(event_payload, dict) and event_payload is not payload:
            event_payload.update({field: payload[field] for field in fields})
        correlations = {}
        if fields:
            correlations = definition.calculate_correlations(self.workflow.script_engine,
                                                             definition.correlation_properties, payload)
        return BpmnEvent(definition, payload=event_payload, correlations=correlations)

    def _message_payload(self, payload: dict[str, Any]) -> Any:
        if self.family == "camunda":
            return {"payload": deepcopy(payload), "result_var": None}
        return deepcopy(payload)

    def element_states(self) -> dict[str, str]:
        """Each diagram element the instance has reached, by BPMN id: "current" (ready, waiting or
        running), "failed" (in error) or "done" (completed); an element passed several times (a loop)
        shows its most active state. Subprocesses and called processes included."""
        rank = {"done": 0, "current": 1, "failed": 2}
        states: dict[str, str] = {}
        for workflow in (self.workflow, *self.workflow.subprocesses.values()):
            for task in workflow.get_tasks():
                bpmn_id = getattr(task.task_spec, "bpmn_id", None)
                if not bpmn_id:
                    continue
                if task.has_state(SpiffState.ERROR):
                    state = "failed"
                elif task.has_state(SpiffState.READY | SpiffState.WAITING | SpiffState.STARTED):
                    state = "current"
                elif task.has_state(SpiffState.COMPLETED):
                    state = "done"
                else:
                    continue
                if rank[state] >= rank.get(states.get(bpmn_id, ""), -1):
                    states[bpmn_id] = state
        return states

    def traversed_transitions(self) -> set[tuple[str, str]]:
        """The (source, target) pairs of diagram elements the instance actually moved along, read from
        SpiffWorkflow's task tree: a task was entered from its parent, so each reached task and the
        nearest ancestor that is a diagram element (skipping Spiff's own helper tasks such as the
        boundary-event split and join) give one transition. Only real transitions count: the source
        finished (completed) and the target was entered (ready, waiting, running, completed, failed, or
        cancelled after it was entered: a parallel join's other arrivals, an interrupted activity). A
        gateway's branches not chosen were dropped from the tree, and an event the event-based gateway
        or a boundary did not catch was never entered, so neither counts. A loop passed twice gives
        the same pair twice, reported once."""
        entered = SpiffState.READY | SpiffState.WAITING | SpiffState.STARTED | SpiffState.COMPLETED \
            | SpiffState.ERROR
        pairs: set[tuple[str, str]] = set()
        for workflow in (self.workflow, *self.workflow.subprocesses.values()):
            for task in workflow.get_tasks():
                target = getattr(task.task_spec, "bpmn_id", None)
                parent = task.parent
                if not target or parent is None or not parent.has_state(SpiffState.COMPLETED):
                    continue
                if not task.has_state(entered):
                    # Cancelled: entered unless it was an uncaught event waiting beside its activity
                    # (a boundary event) or behind an event-based gateway.
                    if not task.has_state(SpiffState.CANCELLED) or _catches_beside(task):
                        continue
                source = _nearest_element(task)
                if source is not None:
                    pairs.add((source, target))
        return pairs

    def subprocess_spec_names(self) -> set[str]:
        return {sp.spec.name for sp in self.workflow.subprocesses.values()}


def _nearest_element(task: Any) -> str | None:
    """The BPMN id of the diagram element `task` was entered from: its nearest ancestor with a BPMN id,
    through helper tasks only (each step one of the spec's own outputs, so a multi-instance task's
    inner instances or a subprocess's start are not taken for a flow). None at the top of a tree."""
    child, parent = task, task.parent
    while parent is not None:
        if child.task_spec not in parent.task_spec.outputs or not parent.has_state(SpiffState.COMPLETED):
            return None
        bpmn_id = getattr(parent.task_spec, "bpmn_id", None)
        if bpmn_id:
            return str(bpmn_id)
        child, parent = parent, parent.parent
    return None


def _catches_beside(task: Any) -> bool:
    """A catching event that waited beside others (boundary events of an activity, the events after an
    event-based gateway): cancelled, it was never entered."""
    return isinstance(task.task_spec, BoundaryEvent) or task.parent is not None and isinstance(
        task.parent.task_spec, EventBasedGateway)


def human_tasks(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> list[tuple[str, str | None]]:
    """(BPMN id, name) of every user and manual task of a process and the processes it calls."""
    found: dict[str, str | None] = {}
    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            if task_spec.manual and task_spec.bpmn_id:
                found.setdefault(task_spec.bpmn_id, task_spec.bpmn_name)
    return list(found.items())


_SPEC_WORDS = {"SubWorkflowTask": "subprocess", "NoneTask": "task", "TransactionSubprocess": "transaction"}


def element_kind(spec: Any) -> str:
    """What a diagram element is, in words: "user task", "timer boundary event"."""
    name = type(spec).__name__
    words = _SPEC_WORDS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    definition = getattr(spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return f"timer {words}"
    if definition is None or isinstance(definition, MultipleEventDefinition) and words.endswith("gateway"):
        return words  # an event-based gateway holds the events that follow it
    kind = type(definition).__name__.removesuffix("EventDefinition").lower()
    return f"{kind} {words}" if kind != "none" else words


def _with_correlation(definition: MessageEventDefinition, payload: dict[str, Any],
                      correlation_key: str | None) -> dict[str, Any]:
    """The message was matched on its key: make a correlation property that names one field carry it,
    so SpiffWorkflow's own bookkeeping (which evaluates it on the payload) finds the value."""
    if correlation_key is None:
        return payload
    payload = dict(payload)
    for prop in definition.correlation_properties:
        field = (prop.retrieval_expression or "").strip()
        if field.isidentifier() and field not in payload:
            payload[field] = correlation_key
    return payload
