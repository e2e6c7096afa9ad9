"""The history's tamper evidence over time: the database refuses to change or remove history rows, the
checkpoint key can be rotated (and the old one retired), and deleting the latest checkpoints is caught
by their copies outside the database or by the age of what no checkpoint signs."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from carepath.api.bootstrap import AnchorFile
from carepath.api.cli import main
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence import migrate
from carepath.engine.persistence.chain import checkpoint_mac, event_hash
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import AuditCheckpoint, Event
from carepath.engine.scheduler import TimerScheduler
from carepath.engine.usecases.checkpoints import CheckpointAnchor, write_checkpoint
from carepath.engine.usecases.verify_history import Anchor, verify_history
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.tamper import EVENTS, as_owner, update_event

OLD_KEY = b"o" * 40
NEW_KEY = b"n" * 40
CHECKPOINTS = AuditCheckpoint.__table__


def _keyed(app: CarePath, key: bytes, key_id: str, previous: dict[str, bytes] | None = None) -> CarePath:
    config = replace(app.config, audit_key=key, audit_key_id=key_id, audit_previous_keys=previous or {})
    return CarePath(app.db, app.clock, config)


def _episode(api: ApiClient, name: str = "Call patient") -> str:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", name, "Book visit")))
    started = api.start(lead, "fu").json()
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {"reached": True}})
    return str(started["id"])


def _rows(app: CarePath, chain: str) -> list[Any]:
    with app.db.engine.connect() as connection:
        return list(connection.execute(sa.select(Event).where(Event.chain == chain).order_by(Event.seq)))


def _checkpoints(app: CarePath) -> list[Any]:
    with app.db.engine.connect() as connection:
        return list(connection.execute(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


def _rewrite_consistently(app: CarePath, chain: str) -> None:
    """What someone with write access to the database but no key can do: change a row and recompute every
    hash after it."""
    rows = _rows(app, chain)
    prev = rows[0].hash
    for row in rows[1:]:
        content = {c: getattr(row, c) for c in ("chain", "seq", "instance_id", "task_id", "pathway_version_id",
                                                "type", "actor", "at", "data")}
        if row.seq == 2:
            content["actor"] = "mallory"
        digest = event_hash(prev_hash=prev, **content)
        update_event(app, row.id, actor=content["actor"], prev_hash=prev, hash=digest)
        prev = digest


# --- append-only ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_database_refuses_to_change_or_remove_history(api: ApiClient, statement: str) -> None:
    instance = _episode(api)
    write_checkpoint(_keyed(api.engine, NEW_KEY, "k1"))
    row = _rows(api.engine, instance)[1]
    changes = {"update": [sa.update(EVENTS).where(EVENTS.c.id == row.id).values(actor="mallory"),
                          sa.update(CHECKPOINTS).where(CHECKPOINTS.c.seq == 1).values(mac="0" * 64)],
               "delete": [sa.delete(EVENTS).where(EVENTS.c.id == row.id),
                          sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.seq == 1)]}
    for change in changes[statement]:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), api.engine.db.engine.begin() as connection:
            connection.execute(change)
    assert _rows(api.engine, instance)[1].actor == row.actor and len(_checkpoints(api.engine)) == 1
    assert verify_history(api.engine, {"k1": NEW_KEY}).intact


# --- key rotation -----------------------------------------------------------------------------------------

def test_rotating_the_key_writes_a_full_checkpoint_and_the_old_key_can_be_retired(api: ApiClient,
                                                                                 clock: ManualClock) -> None:
    quiet = _episode(api)  # changes before the rotation only
    old = _keyed(api.engine, OLD_KEY, "2026-a")
    assert write_checkpoint(old) is not None
    busy = _episode(api)
    assert write_checkpoint(old) is not None
    new = _keyed(api.engine, NEW_KEY, "2026-b", previous={"2026-a": OLD_KEY})
    sweeper = TimerScheduler(new)
    clock.advance(minutes=1)
    sweeper.sweep()  # nothing new, but the key changed: a full checkpoint with the new key
    sweeper.sweep()  # and then nothing more
    third = _checkpoints(api.engine)
    assert [(c.seq, c.key_id, c.full) for c in third] == [(1, "2026-a", True), (2, "2026-a", False),
                                                          (3, "2026-b", True)]
    assert set(third[2].heads) == {quiet, busy, "system"}
    assert third[2].heads[quiet] == [_rows(api.engine, quiet)[-1].seq, _rows(api.engine, quiet)[-1].hash]

    both = verify_history(api.engine, {"2026-a": OLD_KEY, "2026-b": NEW_KEY})
    assert both.intact and both.checkpoints == 3 and both.unchecked_checkpoints == 0 and both.warnings == []
    retired = verify_history(api.engine, {"2026-b": NEW_KEY})  # the old key thrown away
    assert retired.intact and (retired.checkpoints, retired.unchecked_checkpoints) == (1, 2)
    assert retired.warnings == ["checkpoints 1 to 2 signed with key '2026-a', not configured: not checked; full "
                                "checkpoint 3 (key '2026-b') vouches for every chain up to it"]
    lost = verify_history(api.engine, {"2026-a": OLD_KEY})  # an auditor without the current key
    assert not lost.intact and lost.problem is not None
    assert lost.problem.startswith("checkpoint 3: signed with key '2026-b', not configured")

    _rewrite_consistently(api.engine, quiet)  # signed only before the rotation: the full checkpoint still holds it
    problem = verify_history(api.engine, {"2026-b": NEW_KEY}).problem
    assert problem is not None and f"chain {quiet}" in problem and "signed by checkpoint 3" in problem


def test_a_checkpoint_relabelled_or_marked_full_without_the_key_fails(api: ApiClient) -> None:
    _episode(api)
    ring = {"k1": NEW_KEY}
    app = _keyed(api.engine, NEW_KEY, "k1")
    write_checkpoint(app)
    _episode(api, "Second call")
    write_checkpoint(app)
    with as_owner(api.engine) as connection:
        connection.execute(sa.update(CHECKPOINTS).where(CHECKPOINTS.c.seq == 2).values(full=True))
    problem = verify_history(api.engine, ring).problem
    assert problem is not None and problem.startswith("checkpoint 2 (id ") and "MAC does not match" in problem
    with as_owner(api.engine) as connection:  # hide checkpoint 1 behind a key nobody has
        connection.execute(sa.update(CHECKPOINTS).where(CHECKPOINTS.c.seq == 2).values(full=False))
        connection.execute(sa.update(CHECKPOINTS).where(CHECKPOINTS.c.seq == 1).values(key_id="lost"))
    problem = verify_history(api.engine, ring).problem
    assert problem is not None
    assert problem.startswith("checkpoint 1: signed with key 'lost', not configured") and "not a full one" in problem


def test_checkpoints_signed_before_key_names_still_verify(tmp_path: Path) -> None:
    """A database upgraded across migration 0011 keeps its format 1 checkpoints, signed with the key now
    named "default"; the next checkpoint, with that key, continues their MAC chain."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(db.engine)
    app = CarePath(db, ManualClock(), replace(CarePath(db, ManualClock()).config, audit_key=OLD_KEY))
    with app.db.engine.begin() as connection:
        connection.execute(sa.insert(EVENTS).values(
            instance_id="i1", task_id=None, pathway_version_id=None, type="x", actor="a", at=app.now(), data={},
            chain="i1", seq=1, prev_hash="0" * 64, hash=event_hash(
                chain="i1", seq=1, prev_hash="0" * 64, instance_id="i1", task_id=None, pathway_version_id=None,
                type="x", actor="a", at=app.now(), data={})))
        head = connection.execute(sa.select(Event.hash)).scalar_one()
        heads = {"i1": [1, head]}
        mac = checkpoint_mac(OLD_KEY, seq=1, at=app.now(), last_event_id=1, heads=heads, prev_mac="", format=1)
        connection.execute(sa.insert(CHECKPOINTS).values(seq=1, at=app.now(), last_event_id=1, heads=heads,
                                                         mac=mac, key_id="default", full=False, format=1))
    assert verify_history(app, {"default": OLD_KEY}).intact
    rotated = CarePath(db, app.clock, replace(app.config, audit_key=NEW_KEY, audit_key_id="2027",
                                              audit_previous_keys={"default": OLD_KEY}))
    assert write_checkpoint(rotated) is not None
    result = verify_history(app, {"2027": NEW_KEY})
    assert result.intact and (result.checkpoints, result.unchecked_checkpoints) == (1, 1)
    with as_owner(app) as connection:  # format 1 has no room for a key name: claiming one is tampering
        connection.execute(sa.update(CHECKPOINTS).where(CHECKPOINTS.c.seq == 1).values(key_id="2027"))
    assert "format 1 checkpoint names key '2027'" in str(verify_history(app, {"2027": NEW_KEY}).problem)
    db.dispose()


# --- checkpoints copied outside the database, and what no checkpoint signs ------------------------------

def test_a_deleted_or_replaced_latest_checkpoint_is_caught_by_its_copy(api: ApiClient, tmp_path: Path) -> None:
    app = _keyed(api.engine, NEW_KEY, "k1")
    anchors = tmp_path / "anchors.jsonl"
    app.anchor_sinks.append(AnchorFile(anchors))
    _episode(api)
    write_checkpoint(app)
    second = _episode(api, "Second call")
    write_checkpoint(app)
    lines = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert [(a["seq"], a["key_id"], a["full"]) for a in lines] == [(1, "k1", True), (2, "k1", False)]
    # the second signs every chain changed since the checkpoint before the last (none: since the start)
    assert lines[1]["mac"] == _checkpoints(api.engine)[1].mac and lines[1]["chains"] == 3
    copies = [Anchor(a["seq"], a["mac"], f"anchors.jsonl line {n}") for n, a in enumerate(lines, 1)]
    ring = {"k1": NEW_KEY}
    assert verify_history(api.engine, ring, anchors=copies).anchors == 2

    with as_owner(api.engine) as connection:  # the latest checkpoint and what only it signed
        connection.execute(sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.seq == 2))
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.chain == second))
    assert verify_history(api.engine, ring).intact  # the database alone cannot tell
    problem = verify_history(api.engine, ring, anchors=copies).problem
    assert problem == "checkpoint 2: copied to anchors.jsonl line 2, but not in the database (deleted)"
    replaced = [*copies[:1], Anchor(1, "f" * 64, "elsewhere line 7")]
    problem = verify_history(api.engine, ring, anchors=replaced).problem
    assert problem is not None and "not the checkpoint copied to elsewhere line 7 (replaced)" in problem


def test_events_that_no_checkpoint_signs_are_counted_and_fail_once_too_old(api: ApiClient,
                                                                           clock: ManualClock) -> None:
    app = _keyed(api.engine, NEW_KEY, "k1")
    first = _episode(api)
    checkpoint_one = write_checkpoint(app)
    assert checkpoint_one is not None
    ring = {"k1": NEW_KEY}
    clean = verify_history(api.engine, ring, signed_before=clock() + timedelta(days=1))
    assert clean.intact and clean.unsigned_events == 0 and clean.oldest_unsigned is None
    clock.advance(minutes=5)
    second = _episode(api, "Second call")
    write_checkpoint(app)
    with as_owner(api.engine) as connection:  # the checkpoint that signed the second episode, gone
        connection.execute(sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.seq == 2))
    oldest = _rows(api.engine, second)[0]
    result = verify_history(api.engine, ring)
    unsigned_system = [r.type for r in _rows(api.engine, "system") if r.seq > checkpoint_one.heads["system"][0]]
    assert unsigned_system == ["user_added", "pathway_deployed"]  # the second _episode: its lead, its deploy
    assert result.intact and result.unsigned_events == len(_rows(api.engine, second)) + 2
    assert first not in checkpoint_one.heads or checkpoint_one.heads[first][0] == len(_rows(api.engine, first))
    assert result.oldest_unsigned is not None and result.oldest_unsigned.at <= oldest.at
    clock.advance(minutes=30)
    assert verify_history(api.engine, ring, signed_before=clock() - timedelta(hours=1)).intact
    problem = verify_history(api.engine, ring, signed_before=clock() - timedelta(minutes=10)).problem
    assert problem is not None and f"event {result.oldest_unsigned.event_id} " in problem
    assert "no checkpoint signs it" in problem and "deleted" in problem


def test_cli_rotation_anchors_and_unsigned_age(api: ApiClient, database_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _episode(api)
    anchors = tmp_path / "anchors.jsonl"
    for name, value in {"CAREPATH_DATABASE_URL": database_url, "CAREPATH_DEPLOY_SHIPPED_PATHWAYS": "false",
                        "CAREPATH_AUDIT_KEY": OLD_KEY.decode(), "CAREPATH_AUDIT_KEY_ID": "2026",
                        "CAREPATH_AUDIT_ANCHOR_FILE": str(anchors)}.items():
        monkeypatch.setenv(name, value)
    assert main(["audit", "checkpoint"]) == 0
    assert capsys.readouterr().out.startswith("checkpoint 1 (full), key '2026': 2 chain head(s) signed")
    monkeypatch.setenv("CAREPATH_AUDIT_KEY", NEW_KEY.decode())
    monkeypatch.setenv("CAREPATH_AUDIT_KEY_ID", "2027")
    monkeypatch.setenv("CAREPATH_AUDIT_PREVIOUS_KEYS", json.dumps({"2026": OLD_KEY.decode()}))
    assert main(["audit", "checkpoint"]) == 0  # nothing new, but a new key
    assert capsys.readouterr().out.startswith("checkpoint 2 (full), key '2027'")
    assert main(["audit", "verify", "--anchors", str(anchors), "--max-unsigned-age", "600"]) == 0
    assert capsys.readouterr().out == ("intact: 7 event(s) in 2 chain(s), 2 checkpoint(s) checked, 2 matching their "
                                       "copies outside the database\n")
    monkeypatch.setenv("CAREPATH_AUDIT_PREVIOUS_KEYS", "{}")
    assert main(["audit", "verify"]) == 0
    captured = capsys.readouterr()
    assert "1 signed with retired keys not checked" in captured.out and "key '2026', not configured" in captured.err

    with as_owner(api.engine) as connection:
        connection.execute(sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.seq == 2))
    assert main(["audit", "verify", "--anchors", str(anchors)]) == 1
    assert "BROKEN: checkpoint 2: copied to" in capsys.readouterr().out
    anchors.write_text(anchors.read_text() + "not json\n")
    assert main(["audit", "verify", "--anchors", str(anchors)]) == 2
    assert f"{anchors} line 3: not a checkpoint copy" in capsys.readouterr().err
    assert main(["audit", "verify", "--max-unsigned-age", "-1"]) == 2
    assert main(["audit", "verify", "--key-id", "has space"]) == 2


@pytest.mark.parametrize(("variables", "message"), [
    ({"CAREPATH_AUDIT_KEY_ID": "two words"}, "CAREPATH_AUDIT_KEY_ID 'two words' must be"),
    ({"CAREPATH_AUDIT_PREVIOUS_KEYS": "[1]"}, "CAREPATH_AUDIT_PREVIOUS_KEYS must be a JSON object"),
    ({"CAREPATH_AUDIT_PREVIOUS_KEYS": '{"old": "short"}'}, "key 'old' must be at least 32 characters"),
    ({"CAREPATH_AUDIT_PREVIOUS_KEYS": '{"old": 5}'}, "key 'old' must be a string"),
    ({"CAREPATH_AUDIT_KEY": "k" * 40, "CAREPATH_AUDIT_PREVIOUS_KEYS": json.dumps({"default": "o" * 40})},
     "give the new key a new CAREPATH_AUDIT_KEY_ID"),
    ({"CAREPATH_AUDIT_ANCHOR_FILE": "/no/such/folder/anchors.jsonl"}, "its folder does not exist"),
])
def test_key_ring_settings_are_checked(variables: dict[str, str], message: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Settings()


def test_anchor_line_names_no_patient() -> None:
    anchor = CheckpointAnchor(seq=3, at="2026-11-25T10:00:00.000000Z", key_id="k1", full=False, last_event_id=9,
                              chains=2, mac="a" * 64)
    assert json.loads(anchor.as_json()) == {"seq": 3, "at": "2026-11-25T10:00:00.000000Z", "key_id": "k1",
                                            "full": False, "last_event_id": 9, "chains": 2, "mac": "a" * 64}


def test_a_process_left_on_the_old_key_stops_signing_once_the_new_key_has(api: ApiClient,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A rolling restart: for a while one process signs with the old key, another with the new. The new
    key's first checkpoint is full; the old process then stops (no full checkpoints back and forth)."""
    _episode(api)
    old = _keyed(api.engine, OLD_KEY, "a")
    new = _keyed(api.engine, NEW_KEY, "b", previous={"a": OLD_KEY})
    assert write_checkpoint(old) is not None
    assert write_checkpoint(new) is not None
    caplog.set_level(logging.WARNING)
    assert write_checkpoint(old) is None
    assert "audit key 'a' was replaced by 'b'" in caplog.text
    _episode(api, "Second call")
    assert write_checkpoint(old) is None
    third = write_checkpoint(new)
    assert third is not None and not third.full
    assert [(c.seq, c.key_id, c.full) for c in _checkpoints(api.engine)] == [(1, "a", True), (2, "b", True),
                                                                             (3, "b", False)]
    assert verify_history(api.engine, {"b": NEW_KEY}).intact


@pytest.mark.postgres_only
def test_an_event_committed_after_a_checkpoint_with_higher_ids_is_signed_by_the_next(api: ApiClient) -> None:
    """Ids are handed out at insert, rows committed in any order: a row with a smaller id committed after
    a checkpoint that saw larger ids is still signed by the next one, even if nothing else happens."""
    _episode(api)
    app = _keyed(api.engine, NEW_KEY, "k1")
    write_checkpoint(app)
    at = app.now()
    content = {"chain": "late", "seq": 1, "prev_hash": "0" * 64, "instance_id": "late", "task_id": None,
               "pathway_version_id": None, "type": "x", "actor": "a", "at": at, "data": {}}
    with app.db.engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(sa.insert(EVENTS).values(**content, hash=event_hash(**content)))  # id taken, not committed
        _episode(api, "Second call")  # larger ids, committed
        assert write_checkpoint(app) is not None
        transaction.commit()
    latest = write_checkpoint(app)
    assert latest is not None and latest.heads["late"][0] == 1
    assert write_checkpoint(app) is None  # and then nothing more
    result = verify_history(api.engine, {"k1": NEW_KEY}, signed_before=app.now() + timedelta(seconds=1))
    assert result.intact and result.unsigned_events == 0
