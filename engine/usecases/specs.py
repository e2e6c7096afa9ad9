"""Restoring a pathway version's spec, with the pathways its call activities bind to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import Conflict, NotFound
from ..persistence.tables import PathwayVersion
from ..runtime.serializer import serializer_for


@dataclass(frozen=True)
class RestoredSpec:
    family: str
    spec: Any
    subprocess_specs: dict[str, Any]
    external_calls: tuple[str, ...]
    task_rules: dict[str, dict[str, Any]]
    time_settings: dict[str, str]
    name: str | None = None  # the pathway's name (for task rows)
    measures: tuple[dict[str, Any], ...] = ()  # the quality measures the version declares


@dataclass(frozen=True)
class ResolvedSpecs:
    family: str
    spec: Any
    subprocess_specs: dict[str, Any]
    bound_versions: dict[str, int]  # called pathway key -> pathway_versions.id used
    task_rules: dict[str, dict[str, Any]]
    time_settings: dict[str, str]  # the calling (root) pathway's calendar and zone apply throughout


def restored_spec(app: CarePath, version: PathwayVersion) -> RestoredSpec:
    cached = app.specs.get(version.id)
    if cached is None:  # spec_json is deferred: it is read from the database only here
        spec, subs = serializer_for(version.family).spec_from_json(version.spec_json)
        cached = RestoredSpec(version.family, spec, subs, tuple(version.external_calls), dict(version.task_rules),
                              dict(version.time_settings or {}), version.name,
                              tuple(version.measures or ()))
        app.specs.put(version.id, cached)
    return cached


def pathway_name(app: CarePath, session: Session, version_id: int) -> str | None:
    """A version's name, from the spec cache (filled when the workflow was loaded): no statement."""
    cached = app.specs.get(version_id)
    if cached is not None:
        return cached.name
    row = session.get(PathwayVersion, version_id)
    return row.name if row is not None else None


def latest_version(session: Session, key: str, *, include_retired: bool = False) -> PathwayVersion | None:
    query = select(PathwayVersion).where(PathwayVersion.key == key)
    if not include_retired:
        query = query.where(PathwayVersion.retired.is_(False))
    return session.scalars(query.order_by(PathwayVersion.version.desc()).limit(1)).first()


def resolve_specs(app: CarePath, session: Session, version: PathwayVersion | int,
                  bindings: dict[str, Any]) -> ResolvedSpecs:
    """The version's spec plus every called pathway: pinned versions where bound, else the latest."""
    root = app.specs.get(version) if isinstance(version, int) else None
    if root is None:
        row = session.get(PathwayVersion, version) if isinstance(version, int) else version
        if row is None:
            raise NotFound(f"pathway version {version} does not exist")
        root = restored_spec(app, row)
    root_key = version if isinstance(version, int) else version.id
    subs: dict[str, Any] = dict(root.subprocess_specs)
    bound: dict[str, int] = {}
    rules = dict(root.task_rules)
    pending = list(root.external_calls)
    while pending:
        key = pending.pop()
        if key in bound or key in subs:
            continue
        called = _called_version(session, key, bindings.get(key))
        restored = restored_spec(app, called)
        if restored.family != root.family:
            raise Conflict(f"pathway version {root_key} calls '{key}', which was drawn for a different "
                           f"engine dialect ({restored.family}, not {root.family})")
        subs[key] = restored.spec
        subs.update({k: v for k, v in restored.subprocess_specs.items() if k not in subs})
        bound[key] = called.id
        rules = {**restored.task_rules, **rules}
        pending.extend(restored.external_calls)
    return ResolvedSpecs(root.family, root.spec, subs, bound, rules, root.time_settings)


def _called_version(session: Session, key: str, pinned_id: Any) -> PathwayVersion:
    if pinned_id is not None:
        pinned = session.get(PathwayVersion, int(pinned_id))
        if pinned is not None:
            return pinned
    latest = latest_version(session, key)
    if latest is None:
        raise NotFound(f"called pathway '{key}' is not deployed (or all its versions are retired)")
    return latest
