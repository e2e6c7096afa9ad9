"""Tamper evidence for the history: every event row carries a hash over its content and the previous
row's hash, in one chain per instance ("system" for the rare events with no instance).

Format v1: `hash = sha256(canonical JSON of {chain, seq, prev_hash, instance_id, task_id,
pathway_version_id, type, actor, at, data})`, where canonical JSON has sorted keys, no spaces, UTF-8,
and `at` is ISO 8601 in UTC with microseconds. The row id is left out: the database assigns it at
insert, and the chain's order is `seq`. The first row of a chain has `prev_hash = GENESIS`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from .tables import Event

SYSTEM_CHAIN = "system"
GENESIS = "0" * 64


def chain_of(instance_id: str | None) -> str:
    return instance_id or SYSTEM_CHAIN


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """The data as it reads back from a JSON column (tuples become lists, keys strings), so that the
    hash taken at write time is the one recomputed from the row."""
    stored: dict[str, Any] = json.loads(json.dumps(data))
    return stored


def event_hash(*, chain: str, seq: int, prev_hash: str, instance_id: str | None, task_id: str | None,
               pathway_version_id: int | None, type: str, actor: str, at: datetime,
               data: dict[str, Any]) -> str:
    content = {"chain": chain, "seq": seq, "prev_hash": prev_hash, "instance_id": instance_id,
               "task_id": task_id, "pathway_version_id": pathway_version_id, "type": type, "actor": actor,
               "at": at.astimezone(UTC).isoformat(timespec="microseconds"), "data": data}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def hash_of_row(row: Any) -> str:
    """The hash an event row (ORM object or result row) should carry."""
    return event_hash(chain=row.chain, seq=row.seq, prev_hash=row.prev_hash, instance_id=row.instance_id,
                      task_id=row.task_id, pathway_version_id=row.pathway_version_id, type=row.type,
                      actor=row.actor, at=row.at, data=row.data)


CHECKPOINT_FORMAT = 2


def checkpoint_mac(key: bytes, *, seq: int, at: datetime, last_event_id: int, heads: dict[str, Any],
                   prev_mac: str, format: int = CHECKPOINT_FORMAT, key_id: str = "default", full: bool = False) -> str:
    """HMAC-SHA256 over the checkpoint's canonical JSON. Format 1 (checkpoints written before key rings):
    {seq, at, last_event_id, heads, prev_mac}; format 2 adds {format, key_id, full}, so that neither which
    key signed it nor whether it covers every chain can be changed without the key."""
    content: dict[str, Any] = {"seq": seq, "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
                               "last_event_id": last_event_id, "heads": heads, "prev_mac": prev_mac}
    if format != 1:
        content.update(format=format, key_id=key_id, full=full)
    return hmac.new(key, canonical_json(content).encode(), hashlib.sha256).hexdigest()


def mac_of_checkpoint(key: bytes, row: Any, prev_mac: str) -> str:
    """The MAC a checkpoint row should carry, given the MAC of the one before."""
    return checkpoint_mac(key, seq=row.seq, at=row.at, last_event_id=row.last_event_id, heads=row.heads,
                          prev_mac=prev_mac, format=row.format, key_id=row.key_id, full=row.full)


def lock_key(chain: str) -> int:
    """A PostgreSQL advisory lock key for a chain (a collision only makes two chains wait for each other)."""
    return int.from_bytes(hashlib.sha256(b"carepath-chain:" + chain.encode()).digest()[:8], "big", signed=True)


# Built once: every change appends to a chain, and building these cost about what running them did.
_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(:key)")
_HEAD_OF_CHAIN = (select(Event.seq, Event.hash).where(Event.chain == bindparam("chain"))
                  .order_by(Event.seq.desc()).limit(1))


def read_head(session: Session, chain: str) -> tuple[int, str]:
    """The chain's last (seq, hash), locked for the rest of the transaction so that no other writer can
    append to it meanwhile: an advisory lock on PostgreSQL (read committed, so the read that follows sees
    the latest commit); SQLite writes are serialized by BEGIN IMMEDIATE already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_CHAIN, {"key": lock_key(chain)})
    head = session.execute(_HEAD_OF_CHAIN, {"chain": chain}).first()
    return (head[0], head[1]) if head else (0, GENESIS)


def read_heads(session: Session, chains: list[str]) -> dict[str, tuple[int, str]]:
    """`read_head` of several chains (a batch of timers writes one per instance), in two statements on
    PostgreSQL whatever their number: every lock first, in the given order, then every head, in a second
    statement that sees what was committed before the last lock was granted (read committed)."""
    if session.get_bind().dialect.name != "postgresql" or len(chains) < 2:
        return {chain: read_head(session, chain) for chain in chains}
    session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) AS k"),
                    {"keys": [lock_key(chain) for chain in chains]})  # a function scan: in array order
    rows = session.execute(text(
        "SELECT c.chain, e.seq, e.hash FROM unnest(CAST(:chains AS VARCHAR[])) AS c(chain) "
        "CROSS JOIN LATERAL (SELECT seq, hash FROM events WHERE events.chain = c.chain "
        "ORDER BY seq DESC LIMIT 1) AS e"), {"chains": chains})
    heads = {chain: (seq, hash_) for chain, seq, hash_ in rows}
    return {chain: heads.get(chain, (0, GENESIS)) for chain in chains}
