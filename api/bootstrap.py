"""Wiring: settings -> database (migrated) -> the engine's CarePath -> shipped pathways."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from carepath.engine.application import CarePath
from carepath.engine.clock import Clock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.checkpoints import CheckpointAnchor
from carepath.engine.usecases.deploy import deploy_pathways

from .connector_http import ConnectorHttp
from .outbound_http import HttpPoster
from .settings import Settings

log = logging.getLogger("carepath")


def system_clock() -> datetime:
    return datetime.now(UTC)


def build_engine(settings: Settings, clock: Clock = system_clock, *, upgrade_schema: bool = True) -> CarePath:
    db = Database(settings.database_url, replica_url=settings.read_database_url)
    if upgrade_schema:
        migrate.upgrade(db.engine, patient_id_system=settings.patient_id_system)
    app = CarePath(db, clock, settings.engine_config(), channels=settings.notification_channels())
    app.outbound_poster = HttpPoster(timeout_s=settings.outbound_timeout_seconds)
    app.connector_sender = ConnectorHttp()
    if settings.audit_anchor_file:
        app.anchor_sinks.append(AnchorFile(Path(settings.audit_anchor_file)))
    return app


class AnchorFile:
    """Appends each audit checkpoint's anchor as a JSON line to a file outside the database (opened in
    append mode for every line, flushed to disk, so several processes can share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, anchor: CheckpointAnchor) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(anchor.as_json() + "\n")
            out.flush()
            os.fsync(out.fileno())


def deploy_directory(app: CarePath, directory: Path) -> list[str]:
    """Deploy every .bpmn/.dmn/.json in a directory as one package (idempotent: same content, same version),
    with each pathway's sidecar file (`*.pathway.json`: its measures and example data)."""
    files = [SourceFile(p.name, p.read_bytes()) for p in sorted(directory.iterdir())
             if p.suffix.lower() in (".bpmn", ".dmn", ".json")]
    if not files:
        return []
    result = deploy_pathways(app, SYSTEM, files)
    return [f"{p.key} v{p.version}{' (new)' if p.created else ''}" for p in result.processes]
