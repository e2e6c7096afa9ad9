"""Bodies of POST /api/pathways/{key}/migrations (moving running episodes to another version)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.usecases.migrations import DEFAULT_PAGE, MAX_EPISODES

from .params import MAX_INT_ID


class MigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_version: int = Field(ge=1, le=MAX_INT_ID)
    to_version: int = Field(ge=1, le=MAX_INT_ID)
    instance_ids: list[Annotated[str, Field(min_length=1, max_length=36)]] | None = Field(
        default=None, max_length=MAX_EPISODES,
        description="the episodes to move; without it, the running episodes of from_version, a page at a time")
    dry_run: bool = Field(default=True, description="answer the plan and change nothing")
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_EPISODES, description="episodes per page")
    after: str | None = Field(default=None, max_length=36, description="next_after of the previous page")


class StepMappingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    task_id: str
    element_id: str
    to_element_id: str
    kind: str
    changed: list[str]


class MigrationPlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    can_move: bool
    reasons: list[str]
    steps: list[StepMappingOut] = Field(description="each open or waiting step and the element it continues as")
    added: list[str] = Field(description="element ids the new version adds")
    removed: list[str] = Field(description="element ids the new version no longer has")
    not_kept: list[str] = Field(description="what moving cannot keep as it is")
    restarted: list[str] = Field(description="steps whose wait began again when moved (a moved episode only)")


class EpisodeMoveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    instance_id: str
    business_key: str | None
    outcome: str = Field(description="can_move or cannot_move (dry run); moved or not_moved")
    reasons: list[str]
    plan: MigrationPlanOut | None


class MigrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    pathway: str
    from_version: int
    to_version: int
    dry_run: bool
    episodes: list[EpisodeMoveOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last")
