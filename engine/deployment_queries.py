"""Deployments and their process definitions as SQL reads of `pathway_versions`, for answers shaped like
another engine's (the Camunda 7 REST API under /engine-rest): one row per version, never a workflow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .persistence.tables import DeploymentFile, PathwayVersion


@dataclass(frozen=True)
class DefinitionRow:
    key: str
    version: int
    name: str | None
    deployment_id: str
    resource: str  # the file the process was deployed from
    deployed_at: datetime
    retired: bool


@dataclass(frozen=True)
class DeploymentRow:
    id: str
    deployed_at: datetime


def _definitions(session: Session, *where: ColumnElement[bool]) -> list[DefinitionRow]:
    rows = session.execute(
        select(PathwayVersion.key, PathwayVersion.version, PathwayVersion.name, PathwayVersion.deployment_id,
               DeploymentFile.filename, PathwayVersion.deployed_at, PathwayVersion.retired)
        .join(DeploymentFile, DeploymentFile.id == PathwayVersion.source_file_id)
        .where(*where).order_by(PathwayVersion.key, PathwayVersion.version))
    return [DefinitionRow(*row) for row in rows]


def definitions_of(session: Session, versions: Sequence[tuple[str, int]]) -> list[DefinitionRow]:
    """The given (key, version) pairs, e.g. what a deploy created or found already deployed."""
    if not versions:
        return []
    found = {(d.key, d.version): d for d in _definitions(session, PathwayVersion.key.in_({k for k, _ in versions}))}
    return [found[pair] for pair in versions if pair in found]


def list_deployments(session: Session, first: int, limit: int) -> list[DeploymentRow]:
    """Deployments (uploads that created at least one version), oldest first, one page."""
    rows = session.execute(
        select(PathwayVersion.deployment_id, func.min(PathwayVersion.deployed_at).label("at"))
        .group_by(PathwayVersion.deployment_id).order_by("at", PathwayVersion.deployment_id)
        .offset(first).limit(limit))
    return [DeploymentRow(*row) for row in rows]
