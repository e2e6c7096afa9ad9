"""Timer event definitions whose due times come from the product's clock.

SpiffWorkflow 3.2 reads `datetime.now()` inside its timer definitions and evaluates every timer
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

from ..clock import engine_now

_DURATION = re.compile(
    r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(?:[.,]\d+)?S)?)?$", re.IGNORECASE
)
_RECURRING = re.compile(r"^R\d*/", re.IGNORECASE)


def looks_like_iso(text: str) -> bool:
    """True for bare ISO 8601 as editors write it: a duration, a recurring interval or a date-time."""
    if _DURATION.match(text) or _RECURRING.match(text):
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
    # Naive date-times are read as UTC, never as the server's local time.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def parse_datetime(text: str) -> datetime:
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise TimerExpressionError(f"'{text}' is not an ISO 8601 date-time") from None


def add_duration(start: datetime, value: Any) -> datetime:
    """start + an ISO 8601 duration (months and years counted on the calendar) or a timedelta."""
    if isinstance(value, timedelta):
        return start + value
    if not isinstance(value, str) or not _DURATION.match(value):
        raise TimerExpressionError(f"'{value}' is not an ISO 8601 duration such as P7D or PT4H")
    parsed = spiff_timer.TimerEventDefinition.parse_iso_duration(value)
    return start + spiff_timer.TimerEventDefinition.get_timedelta_from_start(parsed, start)


def due_from_date(value: Any) -> datetime:
    if isinstance(value, datetime | date):
        return to_utc(value)
    return parse_datetime(str(value))


def parse_cycle(value: str, now: datetime) -> tuple[int, datetime, float]:
    """R[n]/[start/]duration -> (cycles, first due time, seconds between); -1 cycles means unbounded."""
    if not isinstance(value, str) or not _RECURRING.match(value):
        raise TimerExpressionError(f"'{value}' is not an ISO 8601 repeating interval such as R3/P1D")
    parts = value.upper().split("/")
    cycles = int(parts[0][1:]) if parts[0][1:] else -1
    if len(parts) == 2:
        first = add_duration(now, parts[1])
        return cycles, first, (first - now).total_seconds()
    if len(parts) == 3 and not _DURATION.match(parts[1]):
        start = parse_datetime(parts[1])
        return cycles, start, (add_duration(start, parts[2]) - start).total_seconds()
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
        return _has_fired(my_task, lambda: due_from_date(_resolve(my_task, self.expression)))


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
                value["next"] = (next_due + timedelta(seconds=value["duration"])).isoformat()
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
