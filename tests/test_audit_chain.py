"""Tamper evidence: the history's hash chains and signed checkpoints catch every edit made straight in
the database, and concurrent writers never fork a chain."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence import migrate
from carepath.engine.persistence.chain import event_hash, hash_of_row
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import AuditCheckpoint, Event
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.scheduler import TimerScheduler
from carepath.engine.usecases.checkpoints import write_checkpoint
from carepath.engine.usecases.tasks import comment_on_task, complete_task
from carepath.engine.usecases.timers import fire_due_timers
from carepath.engine.usecases.verify_history import Verification, verify_history
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.tamper import EVENTS, as_owner, update_event

KEY = b"k" * 40
OTHER_KEY = b"x" * 40


def _history(api: ApiClient, clock: ManualClock) -> dict[str, str]:
    """A small but varied history: starts, completions, a buffered then delivered message, a fired timer."""
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")),
               ("t.bpmn", d.boundary_timers("t")))
    referral = api.start(lead, "ref", business_key="referral-1").json()
    early = api.post("/api/messages", lead, {"name": "report_received", "correlation_key": "referral-1",
                                             "data": {"report": "normal", "values": [1, 2.5, "ü"]}}).json()
    assert early["outcome"] == "buffered"
    done = api.post(f"/api/tasks/{referral['open_tasks'][0]['id']}/complete", lead, {"data": {"n": 1}}).json()
    assert [t["name"] for t in done["open_tasks"]] == ["Close"]
    timed = api.start(lead, "t").json()
    clock.advance(days=1, seconds=1)
    assert fire_due_timers(api.engine) == 1
    return {"referral": referral["id"], "timed": timed["id"]}


def _rows(app: CarePath, chain: str) -> list[Any]:
    with app.db.engine.connect() as connection:
        return list(connection.execute(sa.select(Event).where(Event.chain == chain).order_by(Event.seq)))


def _ring(key: bytes | None) -> dict[str, bytes]:
    return {"default": key} if key else {}


def _verify(app: CarePath, key: bytes | None) -> Verification:
    return verify_history(app, _ring(key))


def _broken(app: CarePath, key: bytes | None = KEY) -> str:
    result = _verify(app, key)
    assert not result.intact, "verify passed a tampered history"
    assert result.problem is not None
    return result.problem


def test_a_normal_history_verifies_clean_with_checkpoints(api: ApiClient, clock: ManualClock) -> None:
    ids = _history(api, clock)
    assert write_checkpoint(api.engine, KEY) is not None
    assert write_checkpoint(api.engine, KEY) is None  # nothing changed since
    api.post("/api/messages", api.user("admin"), {"name": "report_received", "correlation_key": "referral-1"})
    second = write_checkpoint(api.engine, KEY)
    assert second is not None and second.seq == 2 and ids["referral"] in second.heads
    result = _verify(api.engine, KEY)
    assert result.intact, result.problem
    assert result.checkpoints == 2 and result.warnings == []
    assert result.chains == 3  # the two instances and "system" (users, deploys, the buffered message)
    chain = _rows(api.engine, ids["referral"])
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert all(r.hash == hash_of_row(r) for r in chain)


def test_the_sweep_signs_new_history_when_a_key_is_configured(api: ApiClient, clock: ManualClock) -> None:
    _history(api, clock)
    TimerScheduler(api.engine).sweep()  # no key: nothing signed
    keyed = CarePath(api.engine.db, clock, replace(api.engine.config, audit_key=KEY))
    sweeper = TimerScheduler(keyed)
    sweeper.sweep()
    sweeper.sweep()  # nothing new since
    result = _verify(api.engine, KEY)
    assert result.intact and result.checkpoints == 1


def test_without_a_key_chains_are_still_verified_and_checkpoints_are_skipped(api: ApiClient,
                                                                            clock: ManualClock) -> None:
    _history(api, clock)
    assert write_checkpoint(api.engine) is None  # no key configured: none written
    result = _verify(api.engine, None)
    assert result.intact and result.checkpoints == 0
    assert "no audit key" in result.warnings[0]


TAMPERING = {
    "instance_id": lambda row: "someone-else",
    "task_id": lambda row: "forged-task",
    "pathway_version_id": lambda row: 999,
    "type": lambda row: "task_cancelled",
    "actor": lambda row: "mallory",
    "at": lambda row: row.at - timedelta(hours=1),
    "data": lambda row: {**row.data, "forged": True},
    "chain": lambda row: "forged-chain",
    "seq": lambda row: 1000,
    "prev_hash": lambda row: "f" * 64,
    "hash": lambda row: "e" * 64,
}


@pytest.mark.parametrize("column", sorted(TAMPERING))
def test_editing_any_column_of_an_event_is_found_and_named(api: ApiClient, clock: ManualClock, column: str) -> None:
    ids = _history(api, clock)
    write_checkpoint(api.engine, KEY)
    row = _rows(api.engine, ids["referral"])[1]
    update_event(api.engine, row.id, **{column: TAMPERING[column](row)})
    problem = _broken(api.engine)
    assert f"event {row.id}" in problem, problem


def test_a_deleted_event_is_found(api: ApiClient, clock: ManualClock) -> None:
    ids = _history(api, clock)
    rows = _rows(api.engine, ids["referral"])
    with as_owner(api.engine) as connection:
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.id == rows[1].id))
    problem = _broken(api.engine, None)  # found by the chain alone
    assert f"event {rows[2].id}" in problem and "expected seq 2" in problem and "missing" in problem


def test_deleting_the_last_events_or_a_whole_chain_is_found_by_the_checkpoint(api: ApiClient,
                                                                              clock: ManualClock) -> None:
    ids = _history(api, clock)
    write_checkpoint(api.engine, KEY)
    last = _rows(api.engine, ids["referral"])[-1]
    with as_owner(api.engine) as connection:
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.id == last.id))
    assert _verify(api.engine, None).intact  # the chain alone cannot tell a shorter chain
    assert f"ends at seq {last.seq - 1}" in _broken(api.engine)
    with as_owner(api.engine) as connection:
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.chain == ids["referral"]))
    assert f"chain {ids['referral']}" in _broken(api.engine) and "no events" in _broken(api.engine)


def test_a_forged_event_is_found(api: ApiClient, clock: ManualClock) -> None:
    ids = _history(api, clock)
    head = _rows(api.engine, ids["referral"])[-1]
    with api.engine.db.engine.begin() as connection:
        forged = connection.execute(sa.insert(EVENTS).values(
            instance_id=ids["referral"], task_id=None, pathway_version_id=head.pathway_version_id,
            type="cancelled", actor="admin", at=head.at, data={}, chain=ids["referral"], seq=head.seq + 1,
            prev_hash=head.hash, hash="a" * 64).returning(EVENTS.c.id)).scalar_one()
    assert f"event {forged}" in _broken(api.engine)


def test_a_chain_rewritten_consistently_without_the_key_is_caught_by_the_checkpoint(api: ApiClient,
                                                                                   clock: ManualClock) -> None:
    ids = _history(api, clock)
    write_checkpoint(api.engine, KEY)
    rows = _rows(api.engine, ids["referral"])
    prev = rows[0].hash
    for row in rows[1:]:  # what someone with write access to the database alone can do
        content = {c: getattr(row, c) for c in ("chain", "seq", "instance_id", "task_id", "pathway_version_id",
                                                "type", "actor", "at", "data")}
        if row.seq == 2:
            content["actor"] = "mallory"
        digest = event_hash(prev_hash=prev, **content)
        update_event(api.engine, row.id, actor=content["actor"], prev_hash=prev, hash=digest)
        prev = digest
    assert _verify(api.engine, None).intact  # consistent: the chains alone cannot tell
    problem = _broken(api.engine)
    assert f"chain {ids['referral']}" in problem and "signed by checkpoint 1" in problem


def test_a_checkpoint_checked_with_another_key_or_altered_fails(api: ApiClient, clock: ManualClock) -> None:
    _history(api, clock)
    checkpoint = write_checkpoint(api.engine, KEY)
    assert checkpoint is not None
    assert "checkpoint 1" in _broken(api.engine, OTHER_KEY) and "MAC does not match" in _broken(api.engine,
                                                                                                 OTHER_KEY)
    assert _verify(api.engine, KEY).intact
    table = AuditCheckpoint.__table__
    with as_owner(api.engine) as connection:
        connection.execute(sa.update(table).values(last_event_id=checkpoint.last_event_id - 1))
    assert "MAC does not match" in _broken(api.engine)


def test_concurrent_writers_to_one_instance_never_fork_its_chain(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    started = api.start(lead, "fu").json()
    task_id = started["open_tasks"][0]["id"]
    admin = Principal("admin", Role.ADMIN)
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def write(i: int) -> None:
        barrier.wait()
        try:
            for n in range(5):  # comments do not lock the instance: only the chain's own lock orders them
                comment_on_task(api.engine, admin, task_id, f"note {i}.{n}")
            if i == 0:
                complete_task(api.engine, admin, task_id, {})
            result = "ok"
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes[result] += 1

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert outcomes == Counter({"ok": threads})
    chain = _rows(api.engine, started["id"])
    assert sum(1 for r in chain if r.type == "task_comment") == threads * 5
    result = _verify(api.engine, None)
    assert result.intact, result.problem


def test_rows_of_a_savepoint_that_failed_leave_no_gap_in_the_chain(engine: CarePath) -> None:
    with UnitOfWork(engine) as uow:
        uow.record("kept", "a", instance_id="i1")
        for flush_inside in (False, True):
            with pytest.raises(RuntimeError), uow.savepoint():
                uow.record("undone", "a", instance_id="i1")
                if flush_inside:  # as when a measure reads this transaction's history
                    uow.flush_history()
                raise RuntimeError("this part fails alone")
        uow.record("kept too", "a", instance_id="i1")
        uow.commit()
    assert [(r.seq, r.type) for r in _rows(engine, "i1")] == [(1, "kept"), (2, "kept too")]
    assert _verify(engine, None).intact


def test_cli_verify_exits_0_when_intact_and_1_naming_the_broken_link(
        api: ApiClient, clock: ManualClock, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ids = _history(api, clock)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    monkeypatch.setenv("CAREPATH_DEPLOY_SHIPPED_PATHWAYS", "false")
    monkeypatch.setenv("CAREPATH_AUDIT_KEY", KEY.decode())
    assert main(["audit", "checkpoint"]) == 0
    assert "checkpoint 1" in capsys.readouterr().out
    assert main(["audit", "verify", "--key-from-env"]) == 0
    assert capsys.readouterr().out.startswith("intact: ")
    monkeypatch.delenv("CAREPATH_AUDIT_KEY")
    assert main(["audit", "verify"]) == 0
    assert "no audit key" in capsys.readouterr().err
    assert main(["audit", "verify", "--key-from-env"]) == 2
    row = _rows(api.engine, ids["timed"])[0]
    update_event(api.engine, row.id, actor="mallory")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN: event {row.id} (chain {ids['timed']}, seq 1)" in out and "hash does not match" in out


def test_upgrading_a_database_with_history_chains_its_existing_events(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(db.engine, "0008")
    old = sa.table("events", sa.column("instance_id"), sa.column("type"), sa.column("actor"), sa.column("at"),
                   sa.column("data", sa.JSON()))
    with db.engine.begin() as connection:
        connection.execute(old.insert(), [
            {"instance_id": i, "type": "x", "actor": "a", "at": f"2026-01-0{n + 1} 10:00:00.000001", "data": {"n": n}}
            for n, i in enumerate(["i1", None, "i2", "i1", None, "i1"])])
    migrate.upgrade(db.engine)
    app = CarePath(db, ManualClock())
    assert [r.seq for r in _rows(app, "i1")] == [1, 2, 3] and [r.seq for r in _rows(app, "system")] == [1, 2]
    assert _verify(app, None).intact
    db.dispose()
