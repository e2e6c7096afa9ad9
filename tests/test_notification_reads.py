"""Read marks on notifications (usecases/notification_reads.py, migration 0017): per user,
idempotent, only for notifications the user may see; the team dashboard's who-supervises rule and the
assignees a task may be given to (engine/rules.py, engine/team_queries.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.errors import NotFound, PermissionDenied
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.persistence import migrate
from carepath.engine.persistence.tables import NotificationRead
from carepath.engine.queries import list_notifications
from carepath.engine.rules import supervised_groups
from carepath.engine.team_queries import unread_count, user_id
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.notification_reads import ALL, mark_read
from carepath.engine.usecases.tasks import set_due_date
from carepath.engine.usecases.timers import fire_due_timers
from carepath.engine.usecases.users import add_user
from tests.support import diagrams as d
from tests.support.api import ApiClient

SUE = Principal("sue", Role.SUPERVISOR, frozenset({"care-coordinator"}))
OLGA = Principal("olga", Role.SUPERVISOR, frozenset({"pharmacy"}))
ADA = Principal("ada", Role.ADMIN)


def _overdue_task(engine: CarePath, clock: ManualClock, key: str, lane: str) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{key}.bpmn", d.linear_user_tasks(key, "Call", lane=lane).encode())])
    [task] = start_instance(engine, SYSTEM, key, business_key=f"enc-{key}").open_tasks
    set_due_date(engine, SYSTEM, task.id, (clock() + timedelta(hours=1)).isoformat(), "urgent")


def _world(engine: CarePath, clock: ManualClock) -> None:
    for name, role, group in (("sue", "supervisor", "care-coordinator"), ("olga", "supervisor", "pharmacy"),
                              ("ada", "admin", None), ("cam", "coordinator", "care-coordinator")):
        add_user(engine, name, role, [group] if group else [])
    _overdue_task(engine, clock, "cc", "Care Coordinator")
    _overdue_task(engine, clock, "ph", "Pharmacy")
    clock.advance(hours=2)
    fire_due_timers(engine)


def _unread(engine: CarePath, who: Principal) -> int:
    with engine.db.read() as session:
        reader = user_id(session, who.name)
        assert reader is not None
        return unread_count(session, reader, None if who.is_admin else (who.name, who.groups))


def _visible_ids(engine: CarePath, who: Principal) -> list[int]:
    with engine.db.read() as session:
        return [n.id for n in list_notifications(session, visible_to=(who.name, who.groups)).items]


def test_marking_read_is_per_user_idempotent_and_only_for_what_the_user_sees(engine: CarePath,
                                                                             clock: ManualClock) -> None:
    _world(engine, clock)
    mine, theirs = _visible_ids(engine, SUE), _visible_ids(engine, OLGA)
    assert len(mine) == 2 and len(theirs) == 2 and not set(mine) & set(theirs)  # a reminder and an escalation each
    assert _unread(engine, SUE) == 2 and _unread(engine, ADA) == 4
    assert mark_read(engine, SUE, mine[0]) == 1
    assert mark_read(engine, SUE, mine[0]) == 0  # again: nothing changes
    assert _unread(engine, SUE) == 1 and _unread(engine, ADA) == 4 and _unread(engine, OLGA) == 2
    with pytest.raises(NotFound):
        mark_read(engine, SUE, theirs[0])
    with pytest.raises(NotFound):
        mark_read(engine, SUE, 10**12)
    assert mark_read(engine, SUE, ALL) == 1  # all of hers, none of olga's
    assert _unread(engine, SUE) == 0 and _unread(engine, OLGA) == 2
    with pytest.raises(PermissionDenied):
        mark_read(engine, Principal("cam", Role.COORDINATOR, frozenset({"care-coordinator"})), ALL)
    with engine.db.read() as session:
        marks = session.scalars(select(NotificationRead.notification_id)).all()
    assert sorted(marks) == sorted(mine)


def test_mark_all_stops_at_the_newest_notification_the_page_showed(engine: CarePath, clock: ManualClock) -> None:
    _world(engine, clock)
    oldest, newest = sorted(_visible_ids(engine, SUE))
    assert mark_read(engine, SUE, ALL, up_to=oldest) == 1  # one arrived after the page was drawn: still unread
    assert _unread(engine, SUE) == 1
    with engine.db.read() as session:
        reader = user_id(session, "sue")
        unread = list_notifications(session, visible_to=(SUE.name, SUE.groups), unread_by=reader).items
    assert [n.id for n in unread] == [newest]


def test_supervised_groups_come_from_the_supervisors_rows(engine: CarePath) -> None:
    assert supervised_groups(SUE) == frozenset({"care-coordinator"})
    assert supervised_groups(ADA) is None  # every group
    for role in (Role.COORDINATOR, Role.CLINICAL_LEAD, Role.AUDITOR, Role.INTEGRATION):
        with pytest.raises(PermissionDenied, match="supervisor, admin"):
            supervised_groups(Principal("x", role, frozenset({"care-coordinator"})))


def test_migration_0017_adds_the_read_marks_and_keeps_the_notifications(engine: CarePath,
                                                                        clock: ManualClock) -> None:
    """Down to the revision before it and up again, on the test database (SQLite or PostgreSQL)."""
    _world(engine, clock)
    mark_read(engine, SUE, ALL)
    db = engine.db.engine
    before = ScriptDirectory.from_config(migrate.alembic_config()).get_revision("0017").down_revision
    migrate.downgrade(db, str(before))
    assert "notification_reads" not in inspect(db).get_table_names()
    migrate.upgrade(db)
    assert migrate.is_current(db)
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM notifications")).scalar() == 4
        assert connection.execute(text("SELECT count(*) FROM notification_reads")).scalar() == 0
    assert _unread(engine, SUE) == 2
    assert mark_read(engine, SUE, ALL) == 2


def test_the_api_marks_read_through_the_same_use_case(api: ApiClient, engine: CarePath, clock: ManualClock) -> None:
    _world(engine, clock)
    sue, olga, cam = (api.user(role, *groups, name=name) for name, role, groups in (
        ("sue2", "supervisor", ("care-coordinator",)), ("olga2", "supervisor", ("pharmacy",)),
        ("cam2", "coordinator", ("care-coordinator",))))
    mine, theirs = _visible_ids(engine, SUE), _visible_ids(engine, OLGA)
    assert api.post(f"/api/notifications/{mine[0]}/read", sue).json() == {"marked": 1}
    assert api.post(f"/api/notifications/{mine[0]}/read", sue).json() == {"marked": 0}
    assert api.post(f"/api/notifications/{theirs[0]}/read", sue).status_code == 404
    assert api.post("/api/notifications/read", cam, json={}).status_code == 403
    assert api.post("/api/notifications/read", sue, json={"up_to": 0}).status_code == 422
    assert api.post("/api/notifications/read", sue, json={}).json() == {"marked": 1}
    assert api.post("/api/notifications/read", olga, json={"up_to": min(theirs)}).json() == {"marked": 1}
