"""PostgreSQL behind PgBouncer in transaction pooling mode (`?pgbouncer=true` on the URL).

Each transaction may run on another server connection there, so a statement psycopg prepared on one
is missing on the next: the flag turns automatic preparation off. The whole PostgreSQL suite also runs
through PgBouncer in CI (.ci/run); these tests show the pooler really is in transaction mode and the
flag is what makes it work.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from carepath.engine.persistence.database import Database, behind_pgbouncer, driver_url

from .conftest import PG_URL


def test_the_flag_is_read_and_never_reaches_the_driver() -> None:
    url = "postgresql+psycopg://carepath@db.example:6432/carepath?pgbouncer=true&sslmode=require"
    assert behind_pgbouncer(url)
    assert dict(driver_url(url).query) == {"sslmode": "require"}
    assert not behind_pgbouncer("postgresql+psycopg://carepath@db.example:5432/carepath")
    assert not behind_pgbouncer("postgresql+psycopg://carepath@db.example:5432/carepath?pgbouncer=false")


def _repeat_across_transactions(url: str, clients: int = 12, rounds: int = 40) -> list[str]:
    """Many clients repeat the same statements, one short transaction each time, so that PgBouncer
    hands their transactions to whichever server connection is free."""
    db, errors = Database(url), []

    def work() -> None:
        try:
            for i in range(rounds):
                with db.engine.connect() as connection, connection.begin():
                    assert connection.execute(text("SELECT CAST(:x AS integer) + 1"), {"x": i}).scalar() == i + 1
                    connection.execute(text("SELECT pg_sleep(0.001)"))
        except Exception as exc:  # collected: the test names the first
            errors.append(str(exc).splitlines()[0])

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.dispose()
    return errors


@pytest.mark.pgbouncer
def test_repeated_statements_survive_transaction_pooling() -> None:
    assert _repeat_across_transactions(PG_URL) == []


@pytest.mark.pgbouncer
def test_without_the_flag_prepared_statements_break_behind_the_pooler() -> None:
    """The control: the same load with psycopg preparing statements fails, so the pooler in front of
    these tests is really in transaction mode and the flag is what the suite's success rests on."""
    plain = make_url(PG_URL).difference_update_query(["pgbouncer"]).render_as_string(hide_password=False)
    errors = _repeat_across_transactions(plain)
    assert errors and all("prepared statement" in e for e in errors), errors[:3]
