"""The projection of service tasks waiting for external workers: what fetch-and-lock queries and locks.

One row per SpiffWorkflow task (its id is the external task's id): written by the projection after every engine
step (usecases/external_task_projection.py), claimed by workers (usecases/external_tasks.py). A worker's fetch
never deserializes a workflow: it reads and locks these rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..model import ExternalTaskState
from .tables import Base, states


class ExternalTask(Base):
    __tablename__ = "external_tasks"
    __table_args__ = (
        # fetch-and-lock: the fetchable rows of some topics, highest priority and oldest first
        Index("ix_external_tasks_topic_state_lock_expires_at", "topic", "state", "lock_expires_at"),
        Index("ix_external_tasks_instance_id_state", "instance_id", "state"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    topic: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(states(ExternalTaskState, "state"))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    # Until when no other worker may fetch it: the holder's lock, or the retry timeout after a failure.
    lock_expires_at: Mapped[datetime | None]
    retries: Mapped[int | None] = mapped_column(Integer)  # None until the first failure (as Camunda)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    # The variables handed to its worker, as the diagram asks (carepath:variables); None: every variable.
    variables: Mapped[list[Any] | None] = mapped_column(JSON)
    business_key: Mapped[str] = mapped_column(String(255))
    pathway_key: Mapped[str] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}
