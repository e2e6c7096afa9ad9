"""The engine's composition root: database, clock, caches and the script sandbox, wired once.

HTTP routes, the CLI and the scheduler all hold one `CarePath` and call the use-case functions
in `carepath.engine.usecases` with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .bounds import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH
from .caches import ExpiringCache, LRUCache
from .calendars import Calendars, TimeContext
from .clock import Clock
from .directory.hsds import ImportLimits
from .notifications import DeadlineAlerts, NotificationChannel, OutboxChannel, alerts_by_pathway
from .patients import DEFAULT_PATIENT_ID_SYSTEM
from .persistence.database import Database


@dataclass(frozen=True)
class EngineConfig:
    message_ttl: timedelta = timedelta(days=7)
    script_timeout_s: float = 5.0
    script_memory_mb: int = 256
    workflow_cache_size: int = 2000
    spec_cache_size: int = 256
    # Who a bearer token stands for (user, role, groups, break-glass grants) is kept this long per process
    # (usecases/token_principals.py); 0: read on every request. Changes made in this process clear it.
    principal_cache_seconds: float = 5.0
    principal_cache_size: int = 4096
    timer_max_attempts: int = 5
    timer_retry_base: timedelta = timedelta(seconds=30)
    conflict_retries: int = 5
    lane_groups: dict[str, str] = field(default_factory=dict)
    # The identifier system of the free-text `patient_id` episodes are started with (engine/patients.py).
    patient_id_system: str = DEFAULT_PATIENT_ID_SYSTEM
    # Facilities whose ADT feed is a skilled nursing facility's (a discharge from them sets the setting snf).
    adt_snf_facilities: frozenset[str] = frozenset()
    # Business calendars by name; pathways choose one (and a time zone) with process properties.
    calendars: Calendars = field(default_factory=lambda: Calendars.from_settings(None))
    # Deadline alerts per pathway key ("*": the rest), and how notifications are retried.
    deadline_alerts: dict[str, DeadlineAlerts] = field(default_factory=lambda: alerts_by_pathway(None))
    notification_max_attempts: int = 5
    notification_retry_base: timedelta = timedelta(seconds=30)
    # Signs the history's checkpoints (HMAC-SHA256); never stored in the database. None: no checkpoints.
    audit_key: bytes | None = None
    # The signing key's name, written on each checkpoint; keys it replaced, by name, to verify older ones.
    audit_key_id: str = "default"
    audit_previous_keys: dict[str, bytes] = field(default_factory=dict)
    # Bounds on every JSON value that enters (engine/bounds.py): nesting depth and encoded size.
    max_json_depth: int = DEFAULT_MAX_DEPTH
    max_json_bytes: int = DEFAULT_MAX_BYTES
    # How long the raw payload of an inbox message (PHI) is kept; its metadata stays (usecases/inbox.py).
    inbox_retention: timedelta = timedelta(days=30)
    # The resource directory (engine/directory/): a replacement taxonomy -> SDOH domain map, import bounds.
    resource_taxonomy_map: Path | None = None
    resource_import: ImportLimits = field(default_factory=ImportLimits)
    # Partner organizations (usecases/partners.py): the key their signing secrets are derived from (never
    # stored; None: no partner can be added), and whether an endpoint may be plain http to a loopback address.
    partner_secret_key: bytes | None = None
    partner_allow_http_loopback: bool = False
    # The outbound deliveries to them (usecases/outbox.py): attempts before a delivery is dead, and backoff.
    outbound_max_attempts: int = 8
    outbound_retry_base: timedelta = timedelta(seconds=30)
    outbound_retry_max: timedelta = timedelta(hours=1)
    # A service task CarePath cannot run (a Java class, an unknown connector): "refuse" it at deploy, or deploy
    # it as an "external" task on a topic named after it (CAREPATH_UNKNOWN_SERVICE_TASKS).
    unknown_service_tasks: str = "refuse"
    # Built-in connectors (usecases/connector_calls.py, docs/connectors.md): where HTTP and FHIR calls may go
    # (name -> connector_destinations.Destination), a call's timeout, and the backoff between its attempts.
    connector_destinations: dict[str, Any] = field(default_factory=dict)
    connector_timeout_s: float = 30.0
    connector_retry_base: timedelta = timedelta(seconds=30)
    connector_retry_max: timedelta = timedelta(hours=1)
    # The longest a worker's fetch-and-lock waits for a task to appear (Camunda's asyncResponseTimeout cap).
    external_task_max_wait_s: float = 60.0

    def audit_keyring(self) -> dict[str, bytes]:
        """Every key checkpoints may be verified with, by name (the signing key under its own)."""
        ring = dict(self.audit_previous_keys)
        if self.audit_key:
            ring[self.audit_key_id] = self.audit_key
        return ring

    def alerts_for(self, pathway_key: str) -> DeadlineAlerts:
        return self.deadline_alerts.get(pathway_key) or self.deadline_alerts.get("*") or DeadlineAlerts()


class CarePath:
    def __init__(self, db: Database, clock: Clock, config: EngineConfig | None = None,
                 worker_id: str | None = None, channels: list[NotificationChannel] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.config = config or EngineConfig()
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.specs: LRUCache[int, Any] = LRUCache(self.config.spec_cache_size)
        self.workflows: LRUCache[str, Any] = LRUCache(self.config.workflow_cache_size)
        self.version_numbers: LRUCache[int, int] = LRUCache(self.config.spec_cache_size)  # id -> number
        self.principals: ExpiringCache[str, Any] = ExpiringCache(self.config.principal_cache_size)
        self._timer_listeners: list[Callable[[datetime], None]] = []
        self._script_engine: Any = None
        self.channels: list[NotificationChannel] = channels if channels is not None else [OutboxChannel()]
        # Called with each audit checkpoint written (a CheckpointAnchor), after its commit: copies kept
        # outside the database, so that deleting the latest checkpoints is noticed.
        self.anchor_sinks: list[Callable[[Any], None]] = []
        # What processing an inbox message does (usecases/inbox.Router); None: the pathways' triggers, for HL7
        # v2 ADT and FHIR notifications alike (usecases/inbox.route_by_triggers). Tests put another in.
        self.inbox_router: Callable[..., Any] | None = None
        # Sends an outbound delivery (usecases/outbox.OutboundPoster): api/outbound_http.py's, with httpx;
        # None: deliveries wait (the engine itself never talks to the network).
        self.outbound_poster: Callable[[str, bytes, dict[str, str]], int] | None = None
        # Sends a connector's HTTP request (usecases/connector_calls.ConnectorSender): api/connector_http.py's;
        # None: HTTP and FHIR connector calls wait.
        self.connector_sender: Callable[[Any], Any] | None = None

    def time_context(self, settings: dict[str, str] | None = None) -> TimeContext:
        """How a pathway counts time: its calendar and zone (checked at deploy), else the defaults."""
        settings = settings or {}
        return self.config.calendars.context(settings.get("calendar"), settings.get("timezone"))

    @property
    def script_engine(self) -> Any:
        if self._script_engine is None:
            from .sandbox.spiff import make_script_engine

            self._script_engine = make_script_engine(
                script_timeout_s=self.config.script_timeout_s, script_memory_mb=self.config.script_memory_mb)
        return self._script_engine

    def now(self) -> datetime:
        return self.clock()

    def on_timer_scheduled(self, listener: Callable[[datetime], None]) -> None:
        """Called with the due time of every timer a committed change creates (wakes the scheduler)."""
        self._timer_listeners.append(listener)

    def timers_scheduled(self, due_times: list[datetime]) -> None:
        if due_times:
            earliest = min(due_times)
            for listener in self._timer_listeners:
                listener(earliest)
