"""The sign-in throttle counts in the database: every process (and machine) sees the same counts, concurrent
failures are each counted, a locked key is refused before the password's hash, and old rows are pruned."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, SignInAttempt
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.sign_in_throttle import SignInThrottle
from carepath.engine.usecases import basic_credentials
from tests.support.web import Browser, web_user


def _app(engine: CarePath, database_url: str) -> Any:
    return create_app(Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False),
                      engine)


def _locks(engine: CarePath) -> list[Event]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type == "sign_in_locked")))


def test_failures_in_two_processes_add_up(engine: CarePath, database_url: str, clock: ManualClock) -> None:
    """Two applications (as two worker processes or machines) on one database share one count: 3 + 2
    failures lock the account, where each process counting its own would have allowed 2 x 5."""
    web_user(engine, "alice", "coordinator")
    other = CarePath(Database(database_url), clock)
    try:
        first, second = Browser(_app(engine, database_url), "10.0.0.1"), Browser(_app(other, database_url),
                                                                                  "10.0.0.2")
        for _ in range(3):
            assert first.sign_in("alice", "wrong password!").status_code == 401
        for _ in range(2):
            assert second.sign_in("alice", "wrong password!").status_code == 401
        assert [e.data["key"] for e in _locks(engine)] == ["user:alice"]
        assert first.sign_in("alice").status_code == 401  # the right password, refused in the first process
        clock.advance(minutes=16)
        assert first.sign_in("alice").status_code == 303
    finally:
        other.db.dispose()


def test_a_locked_key_is_refused_before_the_password_is_hashed(engine: CarePath, database_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    web_user(engine, "alice", "coordinator")
    browser = Browser(_app(engine, database_url), "10.0.0.3")
    for _ in range(5):
        browser.sign_in("alice", "wrong password!")
    hashed: list[str] = []
    real = basic_credentials.verified_user

    def counting(app: CarePath, name: str, password: str) -> Any:
        hashed.append(name)
        return real(app, name, password)

    monkeypatch.setattr(basic_credentials, "verified_user", counting)
    assert browser.sign_in("alice").status_code == 401
    assert hashed == []


def test_concurrent_failures_are_each_counted_and_start_one_lockout(engine: CarePath, database_url: str,
                                                                     clock: ManualClock) -> None:
    """Failures at the same moment on separate connections (on PostgreSQL: concurrent transactions): none
    is lost, and exactly one of them reaches the threshold and starts the lockout."""
    throttle, now, count = SignInThrottle(max_failures=5), clock(), 24
    barrier, started, errors = threading.Barrier(count), [], []

    def fail() -> None:
        try:
            barrier.wait()
            with UnitOfWork(engine) as uow:
                started.extend(throttle.failed(uow.session, ("user:bob",), now))
                uow.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.db.read() as session:
        row = session.get(SignInAttempt, "user:bob")
        assert row is not None and row.failures == count
        assert row.locked_until == now + throttle.window
        assert throttle.refused(session, ("host:x", "user:bob"), now)
    assert [lockout.failures for lockout in started] == [5]


def test_rows_whose_window_and_lockout_ended_are_pruned(engine: CarePath, clock: ManualClock) -> None:
    throttle = SignInThrottle(max_failures=3, window=timedelta(minutes=15))
    with UnitOfWork(engine) as uow:
        for name in ("a", "b", "c"):
            throttle.failed(uow.session, (f"user:{name}",), clock())
        for _ in range(2):
            throttle.failed(uow.session, ("user:locked",), clock())
        assert throttle.failed(uow.session, ("user:locked",), clock())  # the third starts a lockout
        uow.commit()
    clock.advance(minutes=15)
    with UnitOfWork(engine) as uow:
        throttle.failed(uow.session, ("user:new",), clock())
        uow.commit()
    with engine.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SignInAttempt)) == 1
        row = session.get(SignInAttempt, "user:new")
        assert row is not None and row.failures == 1


def test_a_failure_after_the_window_counts_from_one_again(engine: CarePath, clock: ManualClock) -> None:
    throttle = SignInThrottle(max_failures=3, window=timedelta(minutes=15))
    for minutes in (0, 10, 10):  # failures at 0, 10 and 20 minutes: the third is in a new window
        clock.advance(minutes=minutes)
        with UnitOfWork(engine) as uow:
            assert throttle.failed(uow.session, ("user:dave",), clock()) == []
            uow.commit()
    with engine.db.read() as session:
        row = session.get(SignInAttempt, "user:dave")
        assert row is not None and row.failures == 1 and row.window_start == clock()
        assert not throttle.refused(session, ("user:dave",), clock())
