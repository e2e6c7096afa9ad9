"""`carepath simulate` output: a readable story for a clinical lead, or JSON for machines."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from carepath.engine.model import PassedStep
from carepath.engine.usecases.simulate import waited_for
from carepath.engine.views import SimulatedAlert, SimulatedMoment, SimulatedTask, SimulatedTimer, SimulationResult

_LABEL = 12
_STATUS = {"running": "the pathway is waiting", "completed": "the pathway has ended",
           "incident": "the pathway stopped with an incident"}


def as_json(result: SimulationResult, files: list[str]) -> str:
    return json.dumps({"files": files, **asdict(result)}, indent=2, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def as_text(result: SimulationResult, header: list[str], data_source: str) -> str:
    zone = ZoneInfo(result.time_zone)
    lines = [*header, f"Times: {result.time_zone}, business calendar {result.calendar}",
             f"Start data ({data_source}):"]
    lines += [f"  {key} = {json.dumps(value)}" for key, value in result.start_data.items()] or ["  (none)"]
    lines.append("")
    for moment in result.moments:
        lines.append(f"{when(moment.at, zone)}  {_headline(moment, zone)}")
        lines.extend(_consequences(moment, zone, result.pathway))
        lines.append("")
    if result.stopped is not None:
        lines += [f"Stopped here: {result.stopped}", ""]
    status = _STATUS.get(result.status, result.status)
    lines.append(f"End: {when(result.ended_at or result.started_at, zone)}, {status}")
    lines.extend(_end_state(result, zone))
    path = [step.name or step.element_id for moment in result.moments for step in moment.passed]
    lines.append("")
    lines.extend(textwrap.wrap("Path taken: " + (" > ".join(path) or "nothing"), 110, subsequent_indent="  "))
    return "\n".join(lines)


def when(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return local.strftime("%a %Y-%m-%d %H:%M:%S %Z" if local.second else "%a %Y-%m-%d %H:%M %Z")


def describe_data(data: dict[str, Any] | None) -> str:
    if not data:
        return "no data"
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in data.items())


def _headline(moment: SimulatedMoment, zone: ZoneInfo) -> str:
    if moment.cause == "start":
        return "Started"
    if moment.cause == "complete":
        return f"Completed '{moment.subject}' with {describe_data(moment.data)}"
    if moment.cause == "message":
        extra = f" with {describe_data(moment.data)}" if moment.data else ""
        return f"Message '{moment.subject}' arrived{extra}"
    if moment.cause == "advance":
        return f"Clock advances by {moment.subject}, to {when(moment.until or moment.at, zone)}"
    if moment.cause == "timer":
        return f"Timer fired: {moment.subject}"
    return "Deadline alert: " + "; ".join(_alert_subject(alert) for alert in moment.alerts_sent)


def _consequences(moment: SimulatedMoment, zone: ZoneInfo, pathway: str) -> list[str]:
    lines = [_line("passed", _step(step, pathway)) for step in moment.passed]
    lines += [_line("cancelled", f"{task.name} [{task.element_id}]") for task in moment.tasks_cancelled]
    if moment.cause != "timer":
        lines += [_line("timer fired", _timer(t, zone)) for t in moment.timers_fired]
    lines += [_line("timer off", t.name or t.element_id) for t in moment.timers_cancelled]
    for task in moment.tasks_ready:
        lines += _task_lines("task ready", task, zone)
        lines += [_line("note", note) for note in task.notes]
    lines += [_line("timer set", _timer(t, zone)) for t in moment.timers_set]
    lines += [_line("alert set", _alert(a, zone)) for a in moment.alerts_set]
    lines += [_line("alert sent", f"{_alert_subject(a)}, to {', '.join(a.recipients)}") for a in moment.alerts_sent]
    lines += [_line("waits for", f"message {name}") for name in moment.messages_awaited]
    if moment.incident is not None:
        where = f"at {moment.incident.element_id}: " if moment.incident.element_id else ""
        lines.append(_line("incident", f"{where}{moment.incident.message}"))
        if moment.incident.detail:
            lines.append(_line("", moment.incident.detail))
    return lines


def _step(step: PassedStep, pathway: str) -> str:
    where = f", in {step.process_id}" if step.process_id != pathway else ""  # inside a called process
    return f"{step.name or step.element_id} ({step.kind}{where})"


def _end_state(result: SimulationResult, zone: ZoneInfo) -> list[str]:
    lines = [line for task in result.open_tasks for line in _task_lines("open task", task, zone)]
    lines += [_line("timer", _timer(t, zone)) for t in result.timers]
    lines += [_line("alert", _alert(a, zone)) for a in result.alerts]
    lines += [_line("waits for", f"message {name}") for name in result.messages]
    lines += [_line("waits for", _service_wait(task)) for task in result.external_tasks]
    # what the engine seeds beside the start data (business_key, intake_fields) is not news either
    start = {**result.start_data, **{k: result.data.get(k) for k in ("business_key", "intake_fields")}}
    lines += [_line("data", f"{key} = {json.dumps(value)}") for key, value in result.data.items()
              if key not in start or start[key] != value]
    return lines


def _line(label: str, text: str) -> str:
    return f"  {label:<{_LABEL}}{text}"


def _task_lines(label: str, task: SimulatedTask, zone: ZoneInfo) -> list[str]:
    """The task, then who gets it and when it is due."""
    return [_line(label, f"{task.name} [{task.element_id}]"), _line("", _assignment(task, zone))]


def _assignment(task: SimulatedTask, zone: ZoneInfo) -> str:
    offered = [f"group {g}" for g in task.groups] + [f"user {u}" for u in task.users]
    who = []
    if task.assignee:
        who.append(f"assigned to {task.assignee}")
    if offered or not task.assignee:
        who.append(f"offered to {', '.join(offered) or 'everyone'}")
    lane = f" (lane {task.lane})" if task.lane else ""
    dates = f"due {when(task.due_date, zone)}" if task.due_date else "no due date"
    if task.follow_up_date:
        dates += f", follow up {when(task.follow_up_date, zone)}"
    priority = f"; priority {task.priority}" if task.priority != 50 else ""
    return f"{', '.join(who)}{lane}; {dates}{priority}"


def _timer(timer: SimulatedTimer, zone: ZoneInfo) -> str:
    return f"{timer.name or timer.element_id}: due {when(timer.due_at, zone)}"


def _alert(alert: SimulatedAlert, zone: ZoneInfo) -> str:
    return f"{_alert_subject(alert)} at {when(alert.due_at, zone)}, to {', '.join(alert.recipients)}"


def _alert_subject(alert: SimulatedAlert) -> str:
    if alert.kind == "overdue":
        return f"'{alert.task_name}' overdue"
    return f"{alert.kind} about '{alert.task_name}'"


def _service_wait(task: str) -> str:
    """'send-sms (send)' -> 'an external worker of topic send-sms (send)'; a connector's call in its own words."""
    topic, _, element = task.partition(" (")
    return waited_for(topic).removeprefix("waiting for ") + (f" ({element}" if element else "")
