"""Walking a pathway with no server and no database (`carepath simulate`).

The engine is driven as the other use cases drive it: the spec goes through the stored-spec round
trip, the instance is created, run, snapshotted and dumped after every step and restored before the
next, timers are the product's own on a `ManualClock`, due dates and assignments come from the
runtime's rules and the pathway's business calendar, and scripts run in the sandbox. Nothing is
stored; what happened is returned as a list of moments (`engine/views.py`).

The steps run in the order given, like a patient's story:
    Choose(task, data)     complete that ready human task with the data (checked against its form)
    Send(message, data)    deliver a message the pathway waits for
    Advance(duration)      move the clock, firing timers and deadline alerts in due order as it passes them
A step that does not fit (its task is not ready, its data does not fit the form) stops the walk there,
as does an incident.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..application import EngineConfig
from ..calendars import DeadlineError, TimeContext, is_duration
from ..clock import ManualClock
from ..definitions import CONNECTOR_TOPIC_PREFIX, ParsedProcess
from ..errors import ValidationFailed
from ..forms import seeded, validate_form
from ..identity import offered_groups
from ..model import OpenTask, PassedStep, Snapshot
from ..runtime.serializer import serializer_for
from ..runtime.workflow import RunningWorkflow, human_tasks
from ..views import SimulatedAlert, SimulatedMoment, SimulatedTask, SimulatedTimer, SimulationResult
from .deploy import stored_spec
from .projections import ProjectionDiff, WaitKey, diff_projections

BUSINESS_KEY = "simulation"
MAX_FIRINGS = 1000  # timer firings within one advance: a short cycle timer over a long advance


@dataclass(frozen=True)
class Choose:
    task: str  # BPMN id or name
    data: dict[str, Any]


@dataclass(frozen=True)
class Send:
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Advance:
    duration: str  # ISO 8601 (P3D, PT4H) or business days (P2BD)


SimulationStep = Choose | Send | Advance


def check_steps(process: ParsedProcess, steps: Sequence[SimulationStep]) -> list[SimulationStep]:
    """The steps with each task named by its BPMN id; ValidationFailed names a task the pathway does not
    have or a duration the calendar cannot count."""
    tasks = human_tasks(process.spec, process.subprocess_specs)
    checked: list[SimulationStep] = []
    for step in steps:
        if isinstance(step, Choose):
            step = Choose(_task_id(step.task, tasks), step.data)
        elif isinstance(step, Advance) and not is_duration(step.duration.strip()):
            raise ValidationFailed(f"'{step.duration}' is not a duration such as P3D, PT4H or P2BD (business days)")
        checked.append(step)
    return checked


def _task_id(wanted: str, tasks: list[tuple[str, str | None]]) -> str:
    if any(task_id == wanted for task_id, _ in tasks):
        return wanted
    named = [task_id for task_id, name in tasks if name and " ".join(name.split()).lower() ==
             " ".join(wanted.split()).lower()]
    if len(named) == 1:
        return named[0]
    listed = ", ".join(f"{task_id} ({name})" if name else task_id for task_id, name in tasks) or "none"
    if named:
        raise ValidationFailed(f"several user tasks are named '{wanted}'; name one by its id: {listed}")
    raise ValidationFailed(f"the pathway has no user task '{wanted}'; its user tasks are: {listed}")


def simulate(process: ParsedProcess, data: dict[str, Any], steps: Sequence[SimulationStep], *, start: datetime,
             config: EngineConfig, script_engine: Any) -> SimulationResult:
    """Start the pathway at `start` with `data`, take the steps, and say what happened."""
    walk = _Walk(process, config, start, script_engine)
    walk.start(data)
    for step in check_steps(process, steps):
        if walk.result.stopped is not None or walk.result.status == "incident":
            break
        if isinstance(step, Choose):
            walk.choose(step.task, step.data)
        elif isinstance(step, Send):
            walk.send(step.message, step.data)
        else:
            walk.advance(step.duration)
    return walk.finish()


class _Walk:
    def __init__(self, process: ParsedProcess, config: EngineConfig, start: datetime, script_engine: Any) -> None:
        self.process = process
        self.config = config
        self.family = process.family
        self.spec, self.subprocess_specs = serializer_for(self.family).spec_from_json(stored_spec(process))
        self.context: TimeContext = config.calendars.context(process.time_settings.get("calendar"),
                                                             process.time_settings.get("timezone"))
        self.clock = ManualClock(start.astimezone(UTC))
        self.script_engine = script_engine
        self.state = ""
        self.snapshot: Snapshot | None = None
        self.tasks: dict[str, tuple[OpenTask, SimulatedTask]] = {}  # open, by task id
        self.timers: dict[str, SimulatedTimer] = {}  # pending, by waiting task id
        self.alerts: list[tuple[str, SimulatedAlert]] = []  # pending, with their task id
        self.waits: list[WaitKey] = []  # message waits, as the server's subscriptions
        self.result = SimulationResult(process.key, process.name, str(self.context.tz), self.context.calendar.name,
                                       self.clock(), {})

    # -- steps -----------------------------------------------------------------------------------

    def start(self, data: dict[str, Any]) -> None:
        self.result.start_data = data
        seed = {**seeded(self.process.start_data, data), "business_key": BUSINESS_KEY}
        workflow = RunningWorkflow.create(self.spec, self.subprocess_specs, self.family, self.script_engine, seed,
                                          BUSINESS_KEY)
        self._act(SimulatedMoment(self.clock(), "start"), lambda w: w.run(self.clock), workflow)

    def choose(self, element_id: str, data: dict[str, Any]) -> None:
        found = next(((task_id, task) for task_id, (task, _) in self.tasks.items() if task.element_id == element_id),
                     None)
        if found is None:
            self._stop(f"task '{self._task_name(element_id)}' ({element_id}) is not ready at {self._now()}; "
                       f"{self._what_waits()}")
            return
        task_id, task = found
        try:
            validate_form(task.name, self.process.task_rules.get(element_id, {}).get("form"), data)
        except ValidationFailed as exc:
            self._stop(exc.message, exc.problems)
            return
        moment = SimulatedMoment(self.clock(), "complete", task.name, data)
        self._act(moment, lambda w: w.complete_task(task_id, data, self.clock), completed=task_id)

    def send(self, message: str, data: dict[str, Any]) -> None:
        if self.snapshot is None or message not in {m.message_name for m in self.snapshot.messages}:
            self._stop(f"the pathway is not waiting for message '{message}' at {self._now()}; {self._what_waits()}")
            return
        moment = SimulatedMoment(self.clock(), "message", message, data)
        self._act(moment, lambda w: w.deliver_message(message, data, self.clock, BUSINESS_KEY))

    def advance(self, duration: str) -> None:
        try:
            target = self.context.add(self.clock(), duration.strip())
        except DeadlineError as exc:
            self._stop(f"cannot advance by '{duration}': {exc}")
            return
        self.result.moments.append(SimulatedMoment(self.clock(), "advance", duration.strip(), until=target))
        for _ in range(MAX_FIRINGS):
            due = min([t.due_at for t in self.timers.values()] + [a.due_at for _, a in self.alerts], default=None)
            if due is None or due > target:
                self.clock.set(target)
                return
            self.clock.set(max(due, self.clock()))
            self._send_alerts()
            if self._fire_timers() or self.result.status == "incident":
                return
        self._stop(f"more than {MAX_FIRINGS} timers fired while advancing by '{duration}'; a cycle timer probably "
                   "repeats more often than the advance is long")

    def finish(self) -> SimulationResult:
        result = self.result
        result.ended_at = self.clock()
        result.open_tasks = [sim for _, sim in self.tasks.values()]
        result.timers = sorted(self.timers.values(), key=lambda t: t.due_at)
        result.alerts = sorted((a for _, a in self.alerts), key=lambda a: a.due_at)
        if self.snapshot is not None:
            result.messages = sorted({m.message_name for m in self.snapshot.messages})
            result.external_tasks = [f"{w.topic} ({w.element_id})" for w in self.snapshot.external_tasks]
            result.data = self.snapshot.data
        return result

    # -- driving the engine ----------------------------------------------------------------------

    def _act(self, moment: SimulatedMoment, action: Callable[[RunningWorkflow], object],
             workflow: RunningWorkflow | None = None, completed: str | None = None) -> None:
        """Restore, act, snapshot and dump, as a use case's transaction would; record what changed."""
        workflow = workflow or RunningWorkflow.restore(self.state, self.spec, self.subprocess_specs, self.family,
                                                       self.script_engine, BUSINESS_KEY, self._incident())
        workflow.task_rules = self.process.task_rules
        workflow.time_context = self.context
        passed: list[PassedStep] = []
        workflow.step_listener = passed.append
        action(workflow)
        snapshot = workflow.snapshot(self.clock())
        self.state = workflow.dump()
        moment.passed, moment.incident = passed, snapshot.incident
        # What changed, as the server's projections see it (projections.diff_projections).
        diff = diff_projections(snapshot, open_tasks=self.tasks, waits=self.waits, business_key=BUSINESS_KEY,
                                pending={task_id: (t.due_at, t.element_id) for task_id, t in self.timers.items()},
                                now=self.clock(), completed=workflow.completed_among)
        self._record_tasks(moment, diff, completed)
        self._record_timers(moment, diff, snapshot)
        awaited_before = {name for _, name, _ in self.waits}
        moment.messages_awaited = sorted({wait.message_name for _, wait in diff.waits_started} - awaited_before)
        self.waits = [key for key in self.waits if key not in diff.waits_ended] + [k for k, _ in diff.waits_started]
        self.snapshot = snapshot
        self.result.status = snapshot.status.value
        self.result.moments.append(moment)

    def _incident(self) -> Any:
        return self.snapshot.incident if self.snapshot is not None else None

    def _fire_timers(self) -> bool:
        """Run the engine at a timer's due time; True when the walk must stop."""
        due = [t for t in self.timers.values() if t.due_at <= self.clock()]
        if not due:
            return False
        subject = "; ".join(t.name or t.element_id for t in due)
        self._act(SimulatedMoment(self.clock(), "timer", subject), lambda w: w.run(self.clock))
        stuck = [t for t in self.timers.values() if t.due_at <= self.clock()]
        if stuck and self.result.status != "incident":
            self._stop(f"timer '{stuck[0].name or stuck[0].element_id}' came due but did not fire")
            return True
        return False

    def _record_tasks(self, moment: SimulatedMoment, diff: ProjectionDiff, completed: str | None) -> None:
        for task_id in diff.tasks_closed:
            _, sim = self.tasks.pop(task_id)
            self.alerts = [(owner, alert) for owner, alert in self.alerts if owner != task_id]
            if task_id != completed:
                moment.tasks_cancelled.append(sim)
        for task in diff.tasks_opened:
            sim = self._simulated_task(task)
            self.tasks[task.id] = (task, sim)
            moment.tasks_ready.append(sim)
            for alert in self._alerts_for(sim):
                self.alerts.append((task.id, alert))
                moment.alerts_set.append(alert)

    def _record_timers(self, moment: SimulatedMoment, diff: ProjectionDiff, snapshot: Snapshot) -> None:
        waiting = {w.task_id: SimulatedTimer(w.element_id, w.name, w.due_at) for w in snapshot.timers}
        for change in diff.timers_changed:
            timer = self.timers.pop(change.task_id)
            if change.fired:
                moment.timers_fired.append(timer)
            elif change.next_due is None:
                moment.timers_cancelled.append(timer)
        set_now = [w.task_id for w in snapshot.timers if w.task_id not in self.timers]  # new, or moved on
        for task_id in set_now:
            self.timers[task_id] = waiting[task_id]
            moment.timers_set.append(waiting[task_id])

    # -- tasks and their deadline alerts -------------------------------------------------------

    def _simulated_task(self, task: OpenTask) -> SimulatedTask:
        groups = offered_groups(task.lane, task.candidate_groups, self.config.lane_groups)
        return SimulatedTask(task.element_id, task.name, task.lane, task.assignee, tuple(groups),
                             task.candidate_users, task.priority, task.due_date, task.follow_up_date,
                             task.assignment_errors)

    def _alerts_for(self, task: SimulatedTask) -> list[SimulatedAlert]:
        if task.due_date is None:
            return []
        rules = self.config.alerts_for(self.process.key)
        return [SimulatedAlert(kind, task.name, due, _recipients(kind, task))
                for kind, due in rules.alert_times(self.clock(), task.due_date, self.clock())]

    def _send_alerts(self) -> None:
        due = [alert for _, alert in self.alerts if alert.due_at <= self.clock()]
        if not due:
            return
        self.alerts = [(owner, alert) for owner, alert in self.alerts if alert.due_at > self.clock()]
        self.result.moments.append(SimulatedMoment(self.clock(), "alert", alerts_sent=due))

    # -- stopping ----------------------------------------------------------------------------------

    def _stop(self, reason: str, problems: list[Any] | None = None) -> None:
        self.result.stopped = reason
        self.result.problems = list(problems or [])

    def _now(self, value: datetime | None = None) -> str:
        """A time as the pathway's people read it: in its time zone."""
        return (value or self.clock()).astimezone(self.context.tz).isoformat()

    def _task_name(self, element_id: str) -> str:
        names = dict(human_tasks(self.process.spec, self.process.subprocess_specs))
        return names.get(element_id) or element_id

    def _what_waits(self) -> str:
        if self.result.status == "completed":
            return "the pathway has ended"
        ready = ", ".join(sim.name for _, sim in self.tasks.values())
        parts = [f"ready: {ready}" if ready else "no task is ready"]
        if self.timers:
            first = min(self.timers.values(), key=lambda t: t.due_at)
            parts.append(f"next timer: '{first.name or first.element_id}' at {self._now(first.due_at)}")
        if self.snapshot is not None and self.snapshot.messages:
            names = sorted({m.message_name for m in self.snapshot.messages})
            parts.append(f"waiting for message {', '.join(names)}")
        if self.snapshot is not None and self.snapshot.external_tasks:
            parts += sorted({waited_for(w.topic) for w in self.snapshot.external_tasks})
        return "; ".join(parts)


def waited_for(topic: str) -> str:
    """What a service task waits for, in words: a built-in connector's call, or an external worker."""
    if topic.startswith(CONNECTOR_TOPIC_PREFIX):
        return f"waiting for CarePath's {topic.removeprefix(CONNECTOR_TOPIC_PREFIX)} connector call"
    return f"waiting for an external worker of topic {topic}"


def _recipients(kind: str, task: SimulatedTask) -> tuple[str, ...]:
    """Who the product would notify (supervisors and admins are looked up in the database when it runs)."""
    if kind == "overdue":
        return tuple(f"supervisors of group {g}" for g in task.groups) or ("admins",)
    if task.assignee:
        return (f"user {task.assignee}",)
    return tuple(f"group {g}" for g in task.groups) + tuple(f"user {u}" for u in task.users) or ("everyone",)

