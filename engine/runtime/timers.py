"""Timer event definitions whose due times come from the product's clock.

SpiffWorkflow 3.2's own timer definitions take "now" from the system clock and evaluate every timer
expression as Python, so the bare ISO 8601 that Camunda Modeler and Signavio write (`P7D`,
`R3/P1D`) fails. These subclasses keep SpiffWorkflow's class names, so the serializer maps stored
specs onto them (see serializer.py), accept bare ISO 8601 as well as quoted expressions, and take
"now" from `engine_now()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.util import PendingBpmnEvent

from ..calendars import DeadlineError, current_time_context, is_duration, is_relative_date
from ..clock import engine_now

_RECURRING = re.compile(r"^R\d*/", re.IGNORECASE)


def looks_like_iso(text: str) -> bool:
    """True for bare ISO 8601 as editors write it (a duration, a recurring interval or a date-time),
    business days (P2BD) and dates relative to instance variables ("P2BD after discharge_at")."""
    if is_duration(text) or _RECURRING.match(text) or is_relative_date(text):
        return True
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


class TimerExpressionError(ValueError):
    pass


def _resolve(my_task: Any, expression: str) -> Any:
    text = (expression or "").strip()
    if not text:
        raise TimerExpressionError("the timer has no expression")
    if looks_like_iso(text):
        return text
    try:
        value = my_task.workflow.script_engine.evaluate(my_task, text)
    except Exception as exc:
        raise WorkflowTaskException(f"Timer expression '{text}' could not be evaluated", task=my_task,
                                    exception=exc) from exc
    return value.strip() if isinstance(value, str) else value


def to_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    # Naive date-times are read in the pathway's time zone, never in the server's.
    return current_time_context().localize(value).astimezone(UTC)


def parse_datetime(text: str) -> datetime:
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise TimerExpressionError(f"'{text}' is not an ISO 8601 date-time") from None


def add_duration(start: datetime, value: Any) -> datetime:
    """start + an ISO 8601 duration or business days (P2BD), counted in the pathway's calendar and zone
    (days keep the local time of day across DST), or a timedelta."""
    if isinstance(value, timedelta):
        return start + value
    if not isinstance(value, str) or not is_duration(value):
        raise TimerExpressionError(f"'{value}' is not an ISO 8601 duration such as P7D, PT4H or P2BD")
    try:
        return current_time_context().add(start, value)
    except DeadlineError as exc:
        raise TimerExpressionError(str(exc)) from None


def due_from_date(value: Any, variables: dict[str, Any] | None = None) -> datetime:
    """A timeDate: an ISO date-time (naive: in the pathway's zone), or a date relative to an instance
    variable as task due dates are written ("P2BD after discharge_at end of day")."""
    if isinstance(value, datetime | date):
        return to_utc(value)
    text = str(value)
    if is_relative_date(text):
        try:
            return current_time_context().resolve(text, now=engine_now(), variables=variables or {})
        except DeadlineError as exc:
            raise TimerExpressionError(str(exc)) from None
    return parse_datetime(text)


def parse_cycle(value: str, now: datetime) -> tuple[int, datetime, str]:
    """R[n]/[start/]duration -> (cycles, first due time, the duration between); -1 cycles means unbounded.
    The duration is kept as written, so business days and calendar days are counted afresh each cycle."""
    if not isinstance(value, str) or not _RECURRING.match(value):
        raise TimerExpressionError(f"'{value}' is not an ISO 8601 repeating interval such as R3/P1D")
    parts = value.upper().split("/")
    cycles = int(parts[0][1:]) if parts[0][1:] else -1
    if len(parts) == 2:
        return cycles, add_duration(now, parts[1]), parts[1]
    if len(parts) == 3 and not is_duration(parts[1]):
        add_duration(now, parts[2])  # check it now, not at the second cycle
        return cycles, parse_datetime(parts[1]), parts[2]
    raise TimerExpressionError(f"'{value}' is not a repeating interval this engine supports")


def _fail(my_task: Any, exc: TimerExpressionError) -> WorkflowTaskException:
    return WorkflowTaskException(f"Timer '{my_task.task_spec.bpmn_id}': {exc}", task=my_task, exception=exc)


def _has_fired(my_task: Any, due_time: Callable[[], datetime]) -> bool:
    """Fix the due time once, when the event starts waiting; fired once the clock reaches it."""
    due = my_task._get_internal_data("event_value")
    if due is None:
        try:
            due = due_time().isoformat()
        except TimerExpressionError as exc:
            raise _fail(my_task, exc) from exc
        my_task._set_internal_data(event_value=due)
    if datetime.fromisoformat(due) <= engine_now():
        my_task._set_internal_data(event_fired=True)
    return bool(my_task._get_internal_data("event_fired", False))


class TimeDateEventDefinition(spiff_timer.TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        return _has_fired(my_task, lambda: due_from_date(_resolve(my_task, self.expression), my_task.data))


class DurationTimerEventDefinition(spiff_timer.DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        return _has_fired(my_task, lambda: add_duration(engine_now(), _resolve(my_task, self.expression)))


class CycleTimerEventDefinition(spiff_timer.CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        now = engine_now()
        value = my_task._get_internal_data("event_value")
        if value is None:
            try:
                cycles, first, seconds = parse_cycle(_resolve(my_task, self.expression), now)
            except TimerExpressionError as exc:
                raise _fail(my_task, exc) from exc
            value = {"cycles": cycles, "next": first.isoformat(), "duration": seconds}
        ready = False
        if value["cycles"] != 0:
            next_due = datetime.fromisoformat(value["next"])
            if next_due <= now:
                step = value["duration"]  # seconds in states saved before business-day cycles
                following = add_duration(next_due, step if isinstance(step, str) else timedelta(seconds=step))
                value["next"] = following.isoformat()
                value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=value)
        return ready

    def details(self, my_task: Any) -> PendingBpmnEvent:
        value = my_task._get_internal_data("event_value")
        if isinstance(value, dict):
            value = value["next"] if value["cycles"] != 0 else None
        return PendingBpmnEvent(self.name, self.__class__.__name__, value)


PRODUCT_TIMER_CLASSES = (TimeDateEventDefinition, DurationTimerEventDefinition, CycleTimerEventDefinition)
