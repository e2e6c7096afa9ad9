"""Settings from the environment (prefix CAREPATH_), with defaults that run on a fresh machine."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carepath.engine.application import EngineConfig


def shipped_pathways_dir() -> Path:
    import carepath.pathways as pathways

    return Path(pathways.__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREPATH_", extra="ignore")

    database_url: str = "sqlite:///./carepath.db"
    pathways_dir: str | None = None
    deploy_shipped_pathways: bool = True
    scheduler_enabled: bool = True
    sweep_seconds: float = 30.0
    message_ttl_seconds: int = 7 * 24 * 3600
    script_timeout_seconds: float = 5.0
    script_memory_mb: int = 256
    workflow_cache_size: int = 2000
    timer_max_attempts: int = 5
    timer_retry_seconds: float = 30.0
    lane_groups: str = "{}"
    max_upload_bytes: int = 20 * 1024 * 1024
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks: str | None = None
    oidc_username_claim: str = "preferred_username"
    oidc_roles_claim: str = "roles"
    oidc_groups_claim: str = "groups"

    @field_validator("lane_groups")
    @classmethod
    def _lane_groups_is_json(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError("CAREPATH_LANE_GROUPS must be a JSON object of lane name -> group") from None
        if not isinstance(parsed, dict):
            raise ValueError("CAREPATH_LANE_GROUPS must be a JSON object of lane name -> group")
        return value

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            message_ttl=timedelta(seconds=self.message_ttl_seconds),
            script_timeout_s=self.script_timeout_seconds,
            script_memory_mb=self.script_memory_mb,
            workflow_cache_size=self.workflow_cache_size,
            timer_max_attempts=self.timer_max_attempts,
            timer_retry_base=timedelta(seconds=self.timer_retry_seconds),
            lane_groups=json.loads(self.lane_groups),
        )

    def pathways_path(self) -> Path:
        return Path(self.pathways_dir) if self.pathways_dir else shipped_pathways_dir()
