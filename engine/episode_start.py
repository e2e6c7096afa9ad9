"""How an episode began, as a task page shows it: the pathway version it runs, who started it, when, and
the data it started with (the `instance_started` history entry, as recorded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bounds import shown
from .labels import schema_titles
from .persistence.tables import Event, Instance, PathwayVersion


@dataclass(frozen=True)
class EpisodeStart:
    instance_id: str
    pathway_key: str
    pathway_name: str | None
    version: int
    status: str
    started_by: str
    started_at: datetime
    data: dict[str, Any]
    titles: dict[str, str]  # the start form's field titles, by key (labels.schema_titles)


def episode_start(session: Session, instance_id: str) -> EpisodeStart | None:
    """The caller has checked the reader may see the episode (through one of its tasks, or its instance)."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        return None
    version = session.get(PathwayVersion, instance.pathway_version_id)
    started = session.scalars(select(Event.data).where(Event.instance_id == instance_id,
                                                       Event.type == "instance_started")
                              .order_by(Event.id).limit(1)).first()
    data = (started or {}).get("data") or {}
    return EpisodeStart(instance_id=instance.id, pathway_key=instance.pathway_key,
                        pathway_name=version.name if version else None, version=version.version if version else 0,
                        status=instance.status, started_by=instance.started_by, started_at=instance.created_at,
                        data=shown(data) if isinstance(data, dict) else {},
                        titles=schema_titles(version.start_data if version else None))
