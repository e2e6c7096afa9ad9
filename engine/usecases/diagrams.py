"""A pathway version's diagram as SVG, and for one episode the path it took drawn on it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..definitions import SourceFile
from ..errors import NotFound, ValidationFailed
from ..identity import Principal
from ..model import OPEN_TASK_STATES
from ..persistence.tables import DeploymentFile, Event, Instance, PathwayVersion, Task
from ..render import render_svg
from ..runtime.workflow import RunningWorkflow
from .measures import read_instance
from .specs import resolve_specs

# When an element is several things at once, the most telling wins.
_PRIORITY = {"done": 0, "current": 1, "fired": 2, "late": 3, "failed": 4}


def pathway_diagram(app: CarePath, principal: Principal, key: str, version: int,
                    instance_id: str | None = None) -> str:
    """The version's diagram as SVG; with an instance of that version, its path highlighted: elements
    completed (`done`), active (`current`), in error (`failed`), human tasks finished or still open
    after their due date (`late`), timers that fired (`fired`, e.g. an escalation), and the flows
    it actually took."""
    with app.db.read() as session:
        row = session.scalars(select(PathwayVersion).where(PathwayVersion.key == key,
                                                           PathwayVersion.version == version)).first()
        if row is None:
            raise NotFound(f"pathway '{key}' has no version {version}")
        instance = read_instance(session, principal, instance_id) if instance_id is not None else None
        if instance is not None and instance.pathway_version_id != row.id:
            running = session.get(PathwayVersion, instance.pathway_version_id)
            raise ValidationFailed(f"instance {instance_id} runs {running.key if running else '?'} version "
                                   f"{running.version if running else '?'}, not {key} version {version}")
        return draw_diagram(app, session, row, instance)


def instance_diagram(app: CarePath, principal: Principal, instance_id: str) -> str:
    """The diagram of the episode's own pathway version with its path highlighted (as `pathway_diagram`
    with the instance); NotFound when the principal may not read the episode."""
    with app.db.read() as session:
        instance = read_instance(session, principal, instance_id)
        version = session.get(PathwayVersion, instance.pathway_version_id)
        if version is None:
            raise NotFound(f"instance {instance_id} has no stored pathway version")
        return draw_diagram(app, session, version, instance)


def draw_diagram(app: CarePath, session: Session, version: PathwayVersion, instance: Instance | None) -> str:
    """The version's diagram, with the path of `instance` (an instance of that version) when given."""
    source = session.get(DeploymentFile, version.source_file_id)
    if source is None:
        raise NotFound(f"pathway '{version.key}' version {version.version} has no stored diagram")
    highlights, transitions = _path_of(app, session, instance, version) if instance is not None else ({}, set())
    title = f"{version.name or version.key} (version {version.version})"
    return render_svg([SourceFile(source.filename, source.content)], highlights=highlights, title=title,
                      transitions=transitions)


def _path_of(app: CarePath, session: Session, instance: Instance,
             version: PathwayVersion) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The marks of the instance's elements, and the transitions it made (read from its own workflow:
    one record, so the flows drawn are the ones taken, not guessed from the elements reached)."""
    resolved = resolve_specs(app, session, version, instance.call_bindings)
    workflow = RunningWorkflow.restore(instance.state, resolved.spec, resolved.subprocess_specs, resolved.family,
                                       app.script_engine, instance.business_key)
    marks = dict(workflow.element_states())
    now = app.now()
    for element_id, state, due, completed in session.execute(
            select(Task.element_id, Task.state, Task.due_date, Task.completed_at)
            .where(Task.instance_id == instance.id, Task.due_date.is_not(None))):
        if due is None:
            continue
        finished_late = completed is not None and completed > due
        open_late = state in OPEN_TASK_STATES and due < now
        if finished_late or open_late:
            _mark(marks, element_id, "late")
    for data in session.scalars(select(Event.data).where(Event.instance_id == instance.id,
                                                         Event.type == "timer_fired")):
        _mark(marks, str(data.get("element_id") or ""), "fired")
    if instance.incident and instance.incident.get("element_id"):
        _mark(marks, instance.incident["element_id"], "failed")
    return marks, workflow.traversed_transitions()


def _mark(marks: dict[str, str], element_id: str, kind: str) -> None:
    if element_id and _PRIORITY[kind] >= _PRIORITY.get(marks.get(element_id, ""), -1):
        marks[element_id] = kind
