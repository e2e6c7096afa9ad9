"""The soak test's invariant checks (bench/soak_checks.py) find what they look for: each is shown
passing on a sound database and failing on one broken in the way it guards against."""

from __future__ import annotations

from sqlalchemy import delete, select

from carepath.bench.soak import SOAK_BPMN, SOAK_KEY
from carepath.bench.soak_checks import check_invariants
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import Event, Task
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient
from tests.support.tamper import update_event


def _episode_with_a_completion(api: ApiClient, clock: ManualClock) -> tuple[str, str]:
    lead, admin = api.user("clinical_lead"), api.user("admin")
    assert api.deploy(lead, ("soak.bpmn", SOAK_BPMN)).status_code == 201
    started = api.start(admin, SOAK_KEY, business_key="soak-1", data={})
    assert started.status_code == 201, started.text
    clock.advance(seconds=2)
    fire_due_timers(api.engine)
    [call] = api.get(f"/api/tasks?instance_id={started.json()['id']}", admin).json()["items"]
    assert api.post(f"/api/tasks/{call['id']}/complete", admin, json={"data": {}}).status_code == 200
    return started.json()["id"], call["id"]


def test_a_sound_run_passes_every_check(api: ApiClient, clock: ManualClock, database_url: str) -> None:
    _, completed = _episode_with_a_completion(api, clock)
    checks = check_invariants(database_url, [completed])
    assert {name: c["ok"] for name, c in checks.items()} == dict.fromkeys(checks, True)
    assert checks["projections_equal_engine_state"]["checked"] == 1  # waiting for its message


def test_each_check_fails_on_what_it_guards(api: ApiClient, clock: ManualClock, database_url: str) -> None:
    _, completed = _episode_with_a_completion(api, clock)
    waiting = api.start(api.user("admin", name="admin2"), SOAK_KEY, business_key="soak-2", data={}).json()["id"]
    clock.advance(seconds=2)
    fire_due_timers(api.engine)  # its call task opens
    with api.engine.db.write_sessions() as session, session.begin():  # and its projection row is lost
        assert session.execute(delete(Task).where(Task.instance_id == waiting)).rowcount == 1
    with api.engine.db.read() as session:
        fired = session.scalar(select(Event.id).where(Event.type == "timer_fired").limit(1))
    update_event(api.engine, fired, type="task_completed", task_id=completed)  # a second completion, forged
    checks = check_invariants(database_url, [completed, "a-completion-answered-200-but-never-recorded"])
    assert not checks["each_200_in_history_once"]["ok"]
    assert not checks["no_task_completed_twice"]["ok"]
    assert not checks["projections_equal_engine_state"]["ok"]
    assert checks["projections_equal_engine_state"]["bad"] == [waiting]
    assert not checks["audit_verify_intact"]["ok"]
