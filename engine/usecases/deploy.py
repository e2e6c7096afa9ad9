"""Deploying pathways: immutable, versioned definitions, one stored spec per version."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..application import CarePath, EngineConfig
from ..calendars import DeadlineError, deadline_syntax_problem
from ..definitions import ParsedPackage, ParsedProcess, SourceFile, parse_package
from ..definitions._assignment import DATE_KEYS
from ..definitions._identity import content_identity
from ..errors import DiagramInvalid, NotFound, Problem, ValidationFailed
from ..identity import Principal, group_for_lane
from ..persistence.tables import DeploymentFile, MessageCatchEvent, MessageStartEvent, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork
from ..rules import VERSION_RULES, check_role
from ..runtime.assignment import is_expression
from ..runtime.serializer import serializer_for
from ..views import DeployedProcess, DeployResult
from .deploy_sidecars import KeptSidecar, keep_sidecars
from .store import with_conflict_retries

# What the role checks call the two changes (pages ask the same check before they show a form).


def deploy_pathways(app: CarePath, principal: Principal, files: Sequence[SourceFile],
                    known_groups: set[str] | None = None) -> DeployResult:
    check_role(VERSION_RULES["deploy"], principal)
    if not files:
        raise ValidationFailed("no files were uploaded; send one or more .bpmn/.dmn files in the field 'files'")
    package = check_package(app.config, files, known_process_ids=deployed_keys(app), known_groups=known_groups)
    kept = keep_sidecars(app, package.processes)
    warnings = [*package.warnings, *(sidecar.warning for sidecar in kept.values())]

    def attempt() -> list[DeployedProcess]:
        with UnitOfWork(app) as uow:
            stored: dict[str, int] = {}
            deployment_id = str(uuid.uuid4())
            deployed = [_deploy_one(uow, principal, proc, files, stored, deployment_id, warnings, kept.get(proc.key))
                        for proc in package.processes]
            uow.commit()
            return deployed

    try:
        deployed = with_conflict_retries(app, attempt)
    except IntegrityError:  # a concurrent deploy of the same pathway took the version number: go again
        deployed = with_conflict_retries(app, attempt)
    return DeployResult(deployed, warnings)


def check_package(config: EngineConfig, files: Sequence[SourceFile], *, known_process_ids: Collection[str] = (),
                  known_groups: set[str] | None = None) -> ParsedPackage:
    """Everything a deploy checks before it stores anything, without a database: the importer, the
    calendars and dates, and (given the groups users belong to) the lanes. Raises DiagramInvalid."""
    package = parse_package(files, known_process_ids=known_process_ids,
                            unknown_service_tasks=config.unknown_service_tasks,
                            connector_destinations=config.connector_destinations)
    warnings = [*package.warnings, *lane_warnings(config, package.processes, known_groups)]
    try:
        _check_time_settings(config, package.processes)
    except DiagramInvalid as refused:
        raise DiagramInvalid(refused.message, refused.problems, warnings) from None
    return ParsedPackage(package.processes, warnings, package.translated_conditions, package.io_mappings)


def deployed_keys(app: CarePath) -> set[str]:
    with app.db.read() as session:
        return set(session.scalars(select(PathwayVersion.key).distinct()))


def _check_time_settings(config: EngineConfig, processes: Sequence[ParsedProcess]) -> None:
    """Each process's calendar and time zone must be configured, and every literal due and follow-up
    date must be one the product can work out: refused at deploy, not discovered on a patient's task."""
    problems = []
    for proc in processes:
        settings = proc.time_settings
        try:
            config.calendars.context(settings.get("calendar"), settings.get("timezone"))
        except DeadlineError as exc:
            problems.append(Problem(f"Process '{proc.key}': {exc}. Fix the process property, or configure the "
                                    "calendar in CAREPATH_CALENDARS.", file=proc.source_file, element_id=proc.key))
        for task_id, rule in proc.task_rules.items():
            for key in DATE_KEYS:
                value = str(rule.get(key) or "")
                problem = deadline_syntax_problem(value) if value and not is_expression(value) else None
                if problem:
                    problems.append(Problem(f"Task '{task_id}': {key.replace('_', ' ')} {problem}",
                                            file=proc.source_file, element_id=task_id, field=key))
            priority = str(rule.get("priority") or "").strip()
            if priority and not is_expression(priority) and not (priority.isdigit() and 0 <= int(priority) <= 100):
                problems.append(Problem(f"Task '{task_id}': priority '{priority}' must be a whole number from 0 to "
                                        "100 (default 50), or an expression", file=proc.source_file,
                                        element_id=task_id, field="priority"))
            form_problem = _form_problem(rule.get("form"))
            if form_problem:
                problems.append(Problem(f"Task '{task_id}': form {form_problem}", file=proc.source_file,
                                        element_id=task_id))
    if problems:
        raise DiagramInvalid(f"The upload cannot be deployed: {len(problems)} problem(s) found.", problems)


def _form_problem(form: Any) -> str | None:
    """A Camunda form whose fields do not make a valid JSON Schema (e.g. min="ten") would fail every
    completion; say which field and why at deploy."""
    if not isinstance(form, dict):
        return None
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        field = where.split("/")[1] if where.startswith("properties/") else where
        return f"field '{field}': {exc.message}. Fix the field's constraint in the diagram."
    return None


def _deploy_one(uow: UnitOfWork, principal: Principal, proc: ParsedProcess, files: Sequence[SourceFile],
                stored: dict[str, int], deployment_id: str, warnings: list[Problem],
                kept: KeptSidecar | None) -> DeployedProcess:
    session = uow.session
    by_name = {f.name: f for f in files}
    uploaded_sidecar = by_name[proc.sidecar_file] if kept is None and proc.sidecar_file else None
    sidecar = kept.content if kept else uploaded_sidecar.content if uploaded_sidecar else None
    used = [by_name[name] for name in proc.used_files if name in by_name]
    content_hash = content_identity(proc.family, [f.content for f in used], sidecar)
    kept_from = kept.version if kept else None
    existing = session.scalars(select(PathwayVersion).where(
        PathwayVersion.key == proc.key, PathwayVersion.content_hash == content_hash)
        .order_by(PathwayVersion.version.desc())).first()
    if existing is not None:
        return DeployedProcess(proc.key, existing.version, False, existing.name, kept_from)
    spec_json = stored_spec(proc)
    latest = session.scalar(select(func.max(PathwayVersion.version)).where(PathwayVersion.key == proc.key)) or 0
    now = uow.app.now()
    source_id = _store_file(uow, by_name[proc.source_file], stored, deployment_id)
    for f in used:
        _store_file(uow, f, stored, deployment_id)
    sidecar_id = kept.file_id if kept else _store_file(uow, uploaded_sidecar, stored, deployment_id) \
        if uploaded_sidecar else None
    own_warnings = [w.as_dict() for w in warnings if w.file in (None, proc.source_file)]
    version = PathwayVersion(
        key=proc.key, version=latest + 1, name=proc.name, family=proc.family, content_hash=content_hash,
        spec_json=spec_json, source_file_id=source_id, deployment_id=deployment_id,
        external_calls=list(proc.external_calls), lanes=list(proc.lanes), warnings=own_warnings,
        documentation=proc.documentation, task_rules=dict(proc.task_rules), time_settings=dict(proc.time_settings),
        measures=list(proc.measures), example_data=proc.example_data, start_data=proc.start_data,
        sidecar_file_id=sidecar_id, retired=False, deployed_at=now, deployed_by=principal.name)
    session.add(version)
    session.flush()
    for name in sorted(set(proc.message_starts)):
        session.add(MessageStartEvent(pathway_version_id=version.id, message_name=name))
    for name in sorted(set(proc.message_catches)):
        session.add(MessageCatchEvent(pathway_version_id=version.id, message_name=name))
    uow.record("pathway_deployed", principal.name, pathway_version_id=version.id,
               data={"pathway": proc.key, "version": version.version, "content_hash": content_hash,
                     "deployment_id": deployment_id, **({"sidecar_kept_from": kept_from} if kept_from else {})})
    return DeployedProcess(proc.key, version.version, True, proc.name, kept_from)


def stored_spec(proc: ParsedProcess) -> str:
    """The spec as stored once per version; what cannot be stored and restored is not deployed."""
    serializer = serializer_for(proc.family)
    try:
        spec_json = serializer.spec_to_json(proc.spec, proc.subprocess_specs)
        serializer.spec_from_json(spec_json)
    except Exception as exc:  # a SpiffWorkflow class its serializer does not know
        raise DiagramInvalid("The upload cannot be deployed: 1 problem found.", [Problem(
            f"Process '{proc.key}' uses an element this engine cannot save between steps "
            f"({type(exc).__name__}: {str(exc)[:200]}). Remove or replace that element.",
            file=proc.source_file)]) from exc
    return spec_json


def _store_file(uow: UnitOfWork, source: SourceFile, stored: dict[str, int], deployment_id: str) -> int:
    if source.name not in stored:
        row = DeploymentFile(deployment_id=deployment_id, filename=source.name, content=source.content,
                             sha256=hashlib.sha256(source.content).hexdigest(), created_at=uow.app.now())
        uow.session.add(row)
        uow.session.flush()
        stored[source.name] = row.id
    return stored[source.name]


def lane_warnings(config: EngineConfig, processes: Sequence[ParsedProcess],
                  known_groups: set[str] | None) -> list[Problem]:
    """Lanes whose group no user belongs to; nothing when the groups are not known (no database)."""
    if known_groups is None:
        return []
    problems = []
    for proc in processes:
        for lane in proc.lanes:
            group = group_for_lane(lane, config.lane_groups)
            if group not in known_groups:
                problems.append(Problem(
                    f"Lane '{lane}' maps to group '{group}', which no user belongs to yet; its tasks will "
                    "wait unrouted until someone is added to that group.", file=proc.source_file))
    return problems


def retire_version(app: CarePath, principal: Principal, key: str, version: int) -> None:
    check_role(VERSION_RULES["retire"], principal)
    with UnitOfWork(app) as uow:
        row = uow.session.scalars(select(PathwayVersion).where(
            PathwayVersion.key == key, PathwayVersion.version == version)).first()
        if row is None:
            raise NotFound(f"pathway '{key}' has no version {version}")
        if not row.retired:
            row.retired = True
            uow.record("pathway_retired", principal.name, pathway_version_id=row.id,
                       data={"pathway": key, "version": version})
        uow.commit()
