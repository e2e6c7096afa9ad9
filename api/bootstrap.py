"""Wiring: settings -> database (migrated) -> the engine's CarePath -> shipped pathways."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from carepath.engine.application import CarePath
from carepath.engine.clock import Clock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.deploy import deploy_pathways

from .settings import Settings

log = logging.getLogger("carepath")


def system_clock() -> datetime:
    return datetime.now(UTC)


def build_engine(settings: Settings, clock: Clock = system_clock, *, upgrade_schema: bool = True) -> CarePath:
    db = Database(settings.database_url)
    if upgrade_schema:
        migrate.upgrade(db.engine)
    return CarePath(db, clock, settings.engine_config(), channels=settings.notification_channels())


def deploy_directory(app: CarePath, directory: Path) -> list[str]:
    """Deploy every .bpmn/.dmn/.json in a directory as one package (idempotent: same content, same version),
    with each pathway's sidecar file (`*.pathway.json`: its measures and example data)."""
    files = [SourceFile(p.name, p.read_bytes()) for p in sorted(directory.iterdir())
             if p.suffix.lower() in (".bpmn", ".dmn", ".json")]
    if not files:
        return []
    result = deploy_pathways(app, SYSTEM, files)
    return [f"{p.key} v{p.version}{' (new)' if p.created else ''}" for p in result.processes]
