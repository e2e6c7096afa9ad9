"""The triggers of the deployed pathways: the latest version of each pathway that is not retired, with
the triggers its sidecar declares (checked when it was deployed; engine/interop/triggers.py)."""

from __future__ import annotations

from sqlalchemy import select

from ..caches import LRUCache
from ..definitions._pathway_meta import parse_sidecar
from ..interop.triggers import Trigger, read_triggers
from ..persistence.tables import DeploymentFile, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork

# Sidecars by content (sha256): a stored file never changes, so its triggers are read once per process.
_BY_CONTENT: LRUCache[str, list[Trigger]] = LRUCache(256)


def deployed_triggers(uow: UnitOfWork) -> list[tuple[PathwayVersion, list[Trigger]]]:
    """(version, its triggers) for the latest version of every pathway that is not retired and declares some."""
    rows = uow.session.execute(select(PathwayVersion, DeploymentFile.id, DeploymentFile.sha256).join(
        DeploymentFile, DeploymentFile.id == PathwayVersion.sidecar_file_id).where(PathwayVersion.retired.is_(False))
        .order_by(PathwayVersion.key, PathwayVersion.version.desc())).all()
    latest: dict[str, tuple[PathwayVersion, int, str]] = {}
    for version, file_id, sha in rows:
        latest.setdefault(version.key, (version, file_id, sha))
    found = []
    for version, file_id, sha in latest.values():
        triggers = _triggers_of(uow, file_id, sha)
        if triggers:
            found.append((version, triggers))
    return found


def _triggers_of(uow: UnitOfWork, file_id: int, sha: str) -> list[Trigger]:
    cached = _BY_CONTENT.get(sha)
    if cached is not None:
        return cached
    row = uow.session.get(DeploymentFile, file_id)
    sidecar, _ = parse_sidecar(row.filename, row.content) if row is not None else ({}, [])
    triggers = read_triggers(sidecar.get("triggers"))
    _BY_CONTENT.put(sha, triggers)
    return triggers
