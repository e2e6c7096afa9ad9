"""What a deployed version holds, for the people who look after it: its human tasks (lane, who they go to,
form, due dates), its timers, its lanes and the group each routes to, its measures and start data, and how
many episodes run on it. Read from the version's stored row and its stored diagram (the importer's safe
loader), never from a running workflow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..application import CarePath
from ..definitions import ImportLimits, SourceFile
from ..definitions._assignment import HUMAN_TASKS
from ..definitions._documents import Element, bpmn, is_bpmn, local_name
from ..definitions._safe_xml import load_documents
from ..errors import NotFound
from ..identity import group_for_lane
from ..persistence.tables import DeploymentFile, PathwayVersion
from ..queries import running_per_version, staffed_groups, version_view
from ..render import BPMNDI
from ..views import PathwayVersionView

_TIMER_KINDS = {"timeDuration": "after", "timeDate": "at", "timeCycle": "every"}


@dataclass(frozen=True)
class LaneRoute:
    lane: str
    group: str | None
    staffed: bool  # someone active belongs to the group: otherwise the lane's tasks wait unrouted


@dataclass(frozen=True)
class HumanTaskOutline:
    element_id: str
    name: str
    lane: str | None
    rule: dict[str, Any]  # assignee, candidate_groups, priority, due_date, follow_up_date, form (as drawn)


@dataclass(frozen=True)
class TimerOutline:
    element_id: str
    name: str
    kind: str  # after | at | every
    value: str
    attached_to: str | None  # the task's name (or id) a boundary timer sits on
    interrupting: bool


@dataclass(frozen=True)
class VersionOutline:
    version: PathwayVersionView
    lanes: list[LaneRoute]
    tasks: list[HumanTaskOutline]
    timers: list[TimerOutline]
    time_settings: dict[str, str]
    running: int
    drawable: bool  # the diagram has a layout (BPMN DI) to draw it from


def version_outline(app: CarePath, key: str, version: int) -> VersionOutline:
    with app.db.read() as session:
        row = session.scalars(select(PathwayVersion).where(PathwayVersion.key == key,
                                                           PathwayVersion.version == version)).first()
        if row is None:
            raise NotFound(f"pathway '{key}' has no version {version}")
        source = session.get(DeploymentFile, row.source_file_id)
        staffed = staffed_groups(session)
        running = running_per_version(session, key).get((key, version), 0)
        view = version_view(session, row)
    process, drawable = _process(source, key)
    lanes = [LaneRoute(lane, group, group in staffed)
             for lane in row.lanes for group in [group_for_lane(lane, app.config.lane_groups)]]
    return VersionOutline(view, lanes, _tasks(process, row.task_rules or {}), _timers(process),
                          dict(row.time_settings or {}), running, drawable)


def _process(source: DeploymentFile | None, key: str) -> tuple[Element | None, bool]:
    """The version's process element in its stored diagram, and whether the diagram has a layout."""
    if source is None:
        return None, False
    documents, _ = load_documents([SourceFile(source.filename, source.content)], ImportLimits())
    root = documents[0].root if documents else None
    if root is None:
        return None, False
    drawable = next(root.iter(f"{{{BPMNDI}}}BPMNPlane"), None) is not None
    return next((p for p in root.iter(bpmn("process")) if p.get("id") == key), None), drawable


def _name(element: Element) -> str:
    return " ".join((element.get("name") or "").split()) or str(element.get("id") or "")


def _lane_of(process: Element) -> dict[str, str]:
    lanes = {}
    for lane in process.iter(bpmn("lane")):
        for ref in lane:
            if is_bpmn(ref, "flowNodeRef") and ref.text:
                lanes[ref.text.strip()] = " ".join((lane.get("name") or "").split())
    return lanes


def _tasks(process: Element | None, rules: dict[str, dict[str, Any]]) -> list[HumanTaskOutline]:
    """Every human task of the process, in document order, then those of called processes (ids only)."""
    found: list[HumanTaskOutline] = []
    if process is not None:
        lanes = _lane_of(process)
        for element in process.iter(*(bpmn(tag) for tag in HUMAN_TASKS)):
            element_id = str(element.get("id") or "")
            found.append(HumanTaskOutline(element_id, _name(element), lanes.get(element_id) or None,
                                          rules.get(element_id, {})))
    seen = {task.element_id for task in found}
    found += [HumanTaskOutline(task_id, task_id, None, rule) for task_id, rule in rules.items() if task_id not in seen]
    return found


def _timers(process: Element | None) -> list[TimerOutline]:
    if process is None:
        return []
    names = {str(e.get("id")): _name(e) for e in process.iter() if isinstance(e.tag, str) and e.get("id")}
    timers = []
    for definition in process.iter(bpmn("timerEventDefinition")):
        event = definition.getparent()
        if event is None:
            continue
        value = next(((_TIMER_KINDS[local_name(c)], " ".join((c.text or "").split())) for c in definition
                      if local_name(c) in _TIMER_KINDS), ("after", ""))
        attached = event.get("attachedToRef")
        timers.append(TimerOutline(str(event.get("id") or ""), _name(event), value[0], value[1],
                                   names.get(attached, attached) if attached else None,
                                   event.get("cancelActivity") != "false"))
    return timers
