"""Settings from the environment (prefix CAREPATH_), with defaults that run on a fresh machine."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carepath.engine.application import EngineConfig
from carepath.engine.bounds import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, SHOWN_DEPTH
from carepath.engine.calendars import Calendars, DeadlineError, parse_retry
from carepath.engine.connector_destinations import Destination, parse_destinations
from carepath.engine.directory import ImportLimits, load_taxonomy_map
from carepath.engine.errors import ValidationFailed
from carepath.engine.notifications import NotificationChannel, alerts_by_pathway
from carepath.engine.patients import DEFAULT_PATIENT_ID_SYSTEM
from carepath.engine.persistence.database import is_sqlite

from .channels import channels_from_settings


def _json_object(value: str, name: str, shape: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object of {shape}")
    return parsed


def connector_destinations(value: str) -> dict[str, Destination]:
    try:
        return parse_destinations(_json_object(value, "CAREPATH_CONNECTOR_DESTINATIONS", "name -> destination"))
    except ValueError as exc:
        raise ValueError(f"CAREPATH_CONNECTOR_DESTINATIONS: {exc}") from None


MIN_AUDIT_KEY_LENGTH = 32


KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_audit_key(value: str | None, name: str = "CAREPATH_AUDIT_KEY") -> str | None:
    if value is not None and len(value.strip()) < MIN_AUDIT_KEY_LENGTH:
        raise ValueError(f"{name} must be at least {MIN_AUDIT_KEY_LENGTH} characters (for example "
                         "the output of `openssl rand -hex 32`)")
    return value


def check_key_id(value: str, name: str = "CAREPATH_AUDIT_KEY_ID") -> str:
    if not KEY_ID.fullmatch(value):
        raise ValueError(f"{name} {value!r} must be 1 to 64 letters, digits or . _ : -")
    return value


def previous_audit_keys(value: str) -> dict[str, bytes]:
    """CAREPATH_AUDIT_PREVIOUS_KEYS: a JSON object of key name -> key, the keys that signed older checkpoints."""
    keys = _json_object(value, "CAREPATH_AUDIT_PREVIOUS_KEYS", "key name -> key")
    ring = {}
    for key_id, key in keys.items():
        check_key_id(key_id, "CAREPATH_AUDIT_PREVIOUS_KEYS: key name")
        if not isinstance(key, str):
            raise ValueError(f"CAREPATH_AUDIT_PREVIOUS_KEYS: key {key_id!r} must be a string")
        check_audit_key(key, f"CAREPATH_AUDIT_PREVIOUS_KEYS: key {key_id!r}")
        ring[key_id] = key.encode()
    return ring


def mllp_senders(value: str) -> dict[str, str]:
    """CAREPATH_MLLP_SENDERS: "APP^FACILITY=account,..." -> {"APP^FACILITY": "account"}."""
    pairs = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        sender, _, account = item.partition("=")
        if not re.fullmatch(r"[^=^]*\^[^=^]*", sender.strip()) or not account.strip():
            raise ValueError(f"CAREPATH_MLLP_SENDERS: '{item}' must read SENDING_APPLICATION^SENDING_FACILITY=account")
        pairs[sender.strip()] = account.strip()
    return pairs


def mllp_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CAREPATH_MLLP_ALLOWED_PEERS: addresses or networks (CIDR), comma-separated."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"CAREPATH_MLLP_ALLOWED_PEERS: '{item}' is not an address or a network "
                             "(e.g. 10.20.0.0/16)") from None
    return tuple(networks)


def shipped_pathways_dir() -> Path:
    import carepath.pathways as pathways

    return Path(pathways.__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREPATH_", extra="ignore")

    database_url: str = "sqlite:///./carepath.db"
    read_database_url: str | None = None  # a read replica for reports, audit searches and exports
    pathways_dir: str | None = None
    deploy_shipped_pathways: bool = True
    scheduler_enabled: bool = True
    sweep_seconds: float = 30.0
    message_ttl_seconds: int = 7 * 24 * 3600
    script_timeout_seconds: float = 5.0
    script_memory_mb: int = 256
    workflow_cache_size: int = 2000
    # Who a bearer token stands for is kept this long per process (engine/usecases/token_principals.py); 0: off.
    principal_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # Requests a process works on at once (its thread pool; more wait their turn): a few threads hand the GIL
    # round far less than anyio's default of 40 under load (docs/performance.md, issue 17). Unset: 4 on
    # PostgreSQL, 2 on SQLite (one writer at a time anyway), see request_thread_count().
    request_threads: int | None = Field(default=None, ge=1, le=200)
    timer_max_attempts: int = 5
    timer_retry_seconds: float = 30.0
    lane_groups: str = "{}"
    # The identifier system of the free-text patient ids episodes are started with (engine/patients.py): a URI.
    patient_id_system: str = Field(default=DEFAULT_PATIENT_ID_SYSTEM, min_length=4, max_length=255,
                                   pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
    # Facilities (PV1-3.4, else MSH-4) that are skilled nursing facilities, comma-separated: a discharge from
    # them to the community starts transition of care with the setting snf (docs/adt-routing.md).
    adt_snf_facilities: str = Field(default="", max_length=4000)
    # Business calendars: JSON {"name": {"timezone", "country", "subdivision", "closures", "weekend"}}; the
    # built-in "us-federal" (US federal holidays, America/New_York) is always there and can be overridden.
    calendars: str = "{}"
    default_calendar: str = "us-federal"
    # Deadline alerts: JSON {"*": {"remind_at_percent": 50, "notify_supervisors_when_overdue": true},
    # "<pathway key>": {...}}; "*" applies to pathways not named.
    deadline_alerts: str = "{}"
    # Notification channels, comma-separated: outbox (records, readable at /api/notifications) and webhook.
    notify_channels: str = "outbox"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # Retries of a failing timer: R<attempts>/<first delay>, doubling each time (overrides the two above).
    timer_retry: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    # A service task CarePath cannot run (camunda:class, a delegate expression, an unknown connector): refused at
    # deploy ("refuse"), or deployed as an external task on a topic named after it ("external").
    unknown_service_tasks: Literal["refuse", "external"] = "refuse"
    # Built-in connectors (docs/connectors.md): JSON {"name": {"base_url": "https://lab.example.org/api",
    # "bearer_token_env": "LAB_API_TOKEN", "headers": {...}}}, the only places HTTP and FHIR connectors may call
    # (the FHIR connector's server is the destination named "fhir"); a call's timeout, and the backoff between
    # its attempts (doubling from it unless the diagram's retryBackoff says otherwise, capped).
    connector_destinations: str = "{}"
    connector_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    connector_retry_seconds: float = Field(default=30.0, gt=0)
    connector_retry_max_seconds: float = Field(default=3600.0, gt=0)
    # The longest a fetch-and-lock long poll waits (asyncResponseTimeout beyond it is cut to it), in seconds.
    external_task_max_wait_seconds: float = Field(default=60.0, ge=0, le=1800)
    # Every other request body (JSON): larger ones answer 413 before they are parsed.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Every JSON value that enters the engine (start data, completions, drafts, messages, comments, retry
    # data): nesting depth (1 to 64) and encoded size; beyond them 422 naming the limit.
    max_json_depth: int = Field(default=DEFAULT_MAX_DEPTH, ge=1, le=SHOWN_DEPTH)
    max_json_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    # The resource directory (docs/resources.md): a JSON file replacing the shipped taxonomy -> SDOH domain
    # map, and the bounds of an import (the file or the package's files together; services in one import).
    resource_taxonomy_map: Path | None = None
    resource_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    resource_import_max_services: int = Field(default=50_000, ge=1)
    # Partner organizations and the outbound deliveries to them (docs/partners.md): the key their signing
    # secrets are derived from (never stored in the database; needed to add a partner), http to loopback
    # endpoints (tests, development), and how deliveries are sent and retried.
    partner_secret_key: str | None = Field(default=None, min_length=32)
    partner_allow_http_loopback: bool = False
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    outbound_max_attempts: int = Field(default=8, ge=1, le=100)
    outbound_retry_seconds: float = Field(default=30.0, gt=0)
    outbound_retry_max_seconds: float = Field(default=3600.0, gt=0)
    # Signs the history's checkpoints (HMAC-SHA256). Keep it outside the database (a secret store, the
    # environment); without it no checkpoints are written and `carepath audit verify` warns.
    audit_key: str | None = None
    # The signing key's name, written on every checkpoint; change it with the key (key rotation).
    audit_key_id: str = "default"
    # JSON {"key name": "key"}: the keys that signed older checkpoints, for `carepath audit verify`.
    audit_previous_keys: str = "{}"
    # A file outside the database where every checkpoint's number and MAC is also appended (JSON lines),
    # for `carepath audit verify --anchors`.
    audit_anchor_file: str | None = None
    # Web app: a browser session idle this long is signed out (HIPAA automatic logoff).
    web_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # ... and warned this many seconds before (api/web/static/session.js; at most half the idle time).
    web_idle_warning_seconds: int = Field(default=120, ge=5, le=3600)
    # Behind a reverse proxy that terminates HTTPS: trust its X-Forwarded-Proto header, so that session
    # cookies are marked Secure. Only when every request comes through that proxy.
    web_trust_forwarded_proto: bool = False
    # Web app: how often an open worklist asks whether anything moved (seconds; a cheap query when nothing did).
    web_worklist_poll_seconds: int = Field(default=15, ge=1, le=3600)
    # HL7 v2 over MLLP (api/mllp.py, docs/interop.md). Peers that may connect: addresses or networks,
    # comma-separated (others are closed before anything is read); loopback only by default.
    mllp_allowed_peers: str = "127.0.0.0/8,::1"
    # Senders (MSH-3^MSH-4) -> the integration account each acts under: "EPIC^GENHOSP=epic-feed,...".
    # Unmapped senders from loopback act under the built-in account `mllp-local`; from elsewhere they get AR.
    mllp_senders: str = ""
    # Mutual TLS: the listener's certificate and key (PEM), and the CA that signs the senders' certificates.
    mllp_tls_cert: str | None = None
    mllp_tls_key: str | None = None
    mllp_tls_client_ca: str | None = None
    mllp_max_frame_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # A frame begun must be finished within this many seconds between reads; an idle connection is closed
    # after the second.
    mllp_read_timeout_seconds: float = Field(default=30.0, gt=0)
    mllp_idle_timeout_seconds: float = Field(default=600.0, gt=0)
    # MSH-11 processing ids taken (P production; add T training or D debugging for a test feed).
    mllp_processing_ids: str = "P"
    # How long the raw payload of an inbox message (PHI) is kept before it is reduced to its metadata.
    inbox_retention_days: int = Field(default=30, ge=1)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks: str | None = None
    oidc_username_claim: str = "preferred_username"
    oidc_roles_claim: str = "roles"
    oidc_groups_claim: str = "groups"
    # True: the provider's claims are the user's role and groups (a change is written to the local record and
    # recorded); False: they make the local record at the first sign-in only, and admins change it.
    oidc_roles_from_provider: bool = True
    # Web sign-in through the provider (authorization code flow with PKCE) when the issuer and a client id
    # are set: the client registered at the provider for CarePath's web app (a confidential client adds its
    # secret), the address the provider sends the browser back to (default: this server's
    # /signin/oidc/callback as the browser reached it), the scopes asked for and the button's name.
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid profile email"
    oidc_provider_name: str = "your organization's account"
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("resource_taxonomy_map")
    @classmethod
    def _taxonomy_map_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                load_taxonomy_map(value)
            except ValidationFailed as exc:
                raise ValueError(f"CAREPATH_RESOURCE_TAXONOMY_MAP: {exc.message}") from None
        return value

    @field_validator("oidc_redirect_uri")
    @classmethod
    def _redirect_uri_is_absolute(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("CAREPATH_OIDC_REDIRECT_URI must be an absolute http(s) address ending in "
                             "/signin/oidc/callback")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes_ask_for_openid(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("CAREPATH_OIDC_SCOPES must include openid (space-separated scopes)")
        return value

    def oidc_web_sign_in(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @field_validator("lane_groups")
    @classmethod
    def _lane_groups_is_json(cls, value: str) -> str:
        _json_object(value, "CAREPATH_LANE_GROUPS", "lane name -> group")
        return value

    @field_validator("calendars")
    @classmethod
    def _calendars_are_valid(cls, value: str) -> str:
        parsed = _json_object(value, "CAREPATH_CALENDARS", "calendar name -> settings")
        if not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError("CAREPATH_CALENDARS must be a JSON object of calendar name -> settings")
        try:
            Calendars.from_settings(parsed)
        except DeadlineError as exc:
            raise ValueError(f"CAREPATH_CALENDARS: {exc}") from None
        return value

    @field_validator("deadline_alerts")
    @classmethod
    def _deadline_alerts_are_valid(cls, value: str) -> str:
        try:
            alerts_by_pathway(_json_object(value, "CAREPATH_DEADLINE_ALERTS", "pathway key -> alert settings"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"CAREPATH_DEADLINE_ALERTS: {exc}") from None
        return value

    @field_validator("connector_destinations")
    @classmethod
    def _connector_destinations_are_valid(cls, value: str) -> str:
        connector_destinations(value)
        return value

    @field_validator("audit_key")
    @classmethod
    def _audit_key_is_strong(cls, value: str | None) -> str | None:
        return check_audit_key(value)

    @field_validator("audit_key_id")
    @classmethod
    def _audit_key_id_is_a_name(cls, value: str) -> str:
        return check_key_id(value)

    @field_validator("audit_previous_keys")
    @classmethod
    def _previous_audit_keys_are_valid(cls, value: str) -> str:
        previous_audit_keys(value)
        return value

    @field_validator("timer_retry")
    @classmethod
    def _timer_retry_is_iso(cls, value: str | None) -> str | None:
        if value is not None:
            parse_retry(value)
        return value

    def notification_channels(self) -> list[NotificationChannel]:
        names = [n.strip() for n in self.notify_channels.split(",") if n.strip()]
        return channels_from_settings(names, self.webhook_url, self.webhook_secret)

    @model_validator(mode="after")
    def _channels_are_configured(self) -> Settings:
        self.notification_channels()  # a ValueError names the problem
        return self

    @field_validator("audit_anchor_file")
    @classmethod
    def _anchor_file_can_be_written(cls, value: str | None) -> str | None:
        if value and not Path(value).expanduser().resolve().parent.is_dir():
            raise ValueError(f"CAREPATH_AUDIT_ANCHOR_FILE {value!r}: its folder does not exist")
        return value

    @model_validator(mode="after")
    def _signing_key_is_not_a_previous_one(self) -> Settings:
        previous = previous_audit_keys(self.audit_previous_keys)
        if self.audit_key and self.audit_key_id in previous:
            raise ValueError(f"CAREPATH_AUDIT_PREVIOUS_KEYS names {self.audit_key_id!r}, the name of the signing key "
                             "CAREPATH_AUDIT_KEY: give the new key a new CAREPATH_AUDIT_KEY_ID")
        return self

    @model_validator(mode="after")
    def _default_calendar_is_configured(self) -> Settings:
        try:
            Calendars.from_settings(json.loads(self.calendars), self.default_calendar)
        except DeadlineError as exc:
            raise ValueError(f"CAREPATH_DEFAULT_CALENDAR: {exc}") from None
        return self

    def engine_config(self) -> EngineConfig:
        attempts, retry_base = self.timer_max_attempts, timedelta(seconds=self.timer_retry_seconds)
        if self.timer_retry:
            attempts, retry_base = parse_retry(self.timer_retry)
        return EngineConfig(
            message_ttl=timedelta(seconds=self.message_ttl_seconds),
            script_timeout_s=self.script_timeout_seconds,
            script_memory_mb=self.script_memory_mb,
            workflow_cache_size=self.workflow_cache_size,
            principal_cache_seconds=self.principal_cache_seconds,
            timer_max_attempts=attempts,
            timer_retry_base=retry_base,
            lane_groups=json.loads(self.lane_groups),
            patient_id_system=self.patient_id_system,
            adt_snf_facilities=frozenset(f.strip() for f in self.adt_snf_facilities.split(",") if f.strip()),
            calendars=Calendars.from_settings(json.loads(self.calendars), self.default_calendar),
            deadline_alerts=alerts_by_pathway(json.loads(self.deadline_alerts)),
            audit_key=self.audit_key.encode() if self.audit_key else None,
            audit_key_id=self.audit_key_id,
            audit_previous_keys=previous_audit_keys(self.audit_previous_keys),
            max_json_depth=self.max_json_depth,
            max_json_bytes=self.max_json_bytes,
            inbox_retention=timedelta(days=self.inbox_retention_days),
            resource_taxonomy_map=self.resource_taxonomy_map,
            resource_import=ImportLimits(max_bytes=self.resource_import_max_bytes,
                                         max_services=self.resource_import_max_services),
            partner_secret_key=self.partner_secret_key.encode() if self.partner_secret_key else None,
            partner_allow_http_loopback=self.partner_allow_http_loopback,
            outbound_max_attempts=self.outbound_max_attempts,
            outbound_retry_base=timedelta(seconds=self.outbound_retry_seconds),
            outbound_retry_max=timedelta(seconds=self.outbound_retry_max_seconds),
            unknown_service_tasks=self.unknown_service_tasks,
            external_task_max_wait_s=self.external_task_max_wait_seconds,
            connector_destinations=connector_destinations(self.connector_destinations),
            connector_timeout_s=self.connector_timeout_seconds,
            connector_retry_base=timedelta(seconds=self.connector_retry_seconds),
            connector_retry_max=timedelta(seconds=self.connector_retry_max_seconds),
        )

    @field_validator("mllp_senders")
    @classmethod
    def _mllp_senders_are_pairs(cls, value: str) -> str:
        mllp_senders(value)
        return value

    @field_validator("mllp_allowed_peers")
    @classmethod
    def _mllp_peers_are_addresses(cls, value: str) -> str:
        mllp_networks(value)
        return value

    @field_validator("mllp_processing_ids")
    @classmethod
    def _mllp_processing_ids_are_known(cls, value: str) -> str:
        unknown = {p.strip().upper() for p in value.split(",") if p.strip()} - {"P", "T", "D"}
        if unknown or not value.strip():
            raise ValueError("CAREPATH_MLLP_PROCESSING_IDS must be P, T or D, comma-separated")
        return value

    @model_validator(mode="after")
    def _mllp_tls_is_complete(self) -> Settings:
        if bool(self.mllp_tls_cert) != bool(self.mllp_tls_key) or (self.mllp_tls_client_ca and not self.mllp_tls_cert):
            raise ValueError("CAREPATH_MLLP_TLS_CERT and CAREPATH_MLLP_TLS_KEY go together (and "
                             "CAREPATH_MLLP_TLS_CLIENT_CA needs both)")
        return self

    def request_thread_count(self) -> int:
        if self.request_threads is not None:
            return self.request_threads
        return 2 if is_sqlite(self.database_url) else 4

    def pathways_path(self) -> Path:
        return Path(self.pathways_dir) if self.pathways_dir else shipped_pathways_dir()
