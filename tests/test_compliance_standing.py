"""The `measure_states` projection: each episode's standing on its measures, written with its state, so
that the compliance report counts running episodes in SQL. It must give the figures evaluating every
episode live gives, at any time: a window that closes between the last write and the report is a
miss though nothing was written, and a row the instance has changed since is not used."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.tables import Instance, MeasureOutcome, MeasureState
from carepath.engine.usecases import reports
from carepath.engine.usecases.measure_states import project_all
from carepath.engine.usecases.reports import compliance_report
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.measure_counting import CountingEvaluations

AUDITOR = Principal("auditor-1", Role.AUDITOR)
VISIT = d.VISIT_MEASURE


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingEvaluations:
    counter = CountingEvaluations()
    monkeypatch.setattr(reports, "evaluate", counter)
    return counter


def _both(app: CarePath, counting: CountingEvaluations, **filters: Any) -> tuple[list[dict[str, Any]], int]:
    """The report counted from the projections, checked equal to evaluating every episode live; with
    how many evaluations the projected report made."""
    counting.calls = 0
    projected = [row.as_dict() for row in compliance_report(app, AUDITOR, **filters)]
    calls = counting.calls
    assert projected == [row.as_dict() for row in compliance_report(app, AUDITOR, use_recorded=False, **filters)]
    return projected, calls


def _running_cohort(api: ApiClient, clock: ManualClock) -> list[str]:
    """Twelve episodes still running on 2026-01-05: calls made in time, too late or not at all, some
    follow-ups already dated, some declined (the visit measure does not apply)."""
    lead, caller = api.user("clinical_lead"), api.user("coordinator", "east")
    sidecar = json.dumps({"measures": [d.CALL_MEASURE, VISIT]})
    assert api.deploy(lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    ids = []
    for n in range(12):
        visit = date(2026, 1, 5) + timedelta(days=n % 4)
        data: dict[str, Any] = {"visit_date": visit.isoformat(), "team": "east", "declined": n % 5 == 0}
        if n % 3 == 0:
            data["follow_up_date"] = (visit + timedelta(days=4 * (n % 6))).isoformat()
        clock.set(datetime(2026, 1, 5, 12, tzinfo=UTC))
        started = api.start(lead, "cohort", patient_id=f"pat-{n}", business_key=f"enc-{n:02}", data=data)
        assert started.status_code == 201, started.text
        ids.append(started.json()["id"])
        if n % 4 == 1:  # the call: the next day (in time) or a week later (late), reached or not
            clock.set(datetime(2026, 1, 6 + 7 * (n % 8 == 5), 15, tzinfo=UTC))
            task_id = started.json()["open_tasks"][0]["id"]
            done = api.post(f"/api/tasks/{task_id}/complete", caller, {"data": {"reached": n % 3 != 2}})
            assert done.status_code == 200, done.text
    return ids


def _states(app: CarePath) -> dict[tuple[str, str], tuple[Any, ...]]:
    with app.db.read() as session:
        return {(r.instance_id, r.measure_id): (r.lock_version, r.status, r.clock_started, r.met_at, r.deadline,
                                                r.detail, r.days_to_meet)
                for r in session.scalars(select(MeasureState))}


def _final(app: CarePath) -> set[str]:
    with app.db.read() as session:
        return set(session.scalars(select(MeasureOutcome.instance_id).where(MeasureOutcome.final.is_(True))))


def test_a_window_closing_after_the_last_write_is_a_miss_without_any_write(
        api: ApiClient, clock: ManualClock, counting: CountingEvaluations) -> None:
    ids = _running_cohort(api, clock)
    states = _states(api.engine)
    # written with each episode's state; none for an episode that ended with final outcomes (counted from those)
    assert {i for i, _ in states} == set(ids) - _final(api.engine) and len(ids) - len({i for i, _ in states}) == 2
    standing = []
    # After the calls' deadlines (2 business days) with the visits' windows open, after the first
    # visits' deadline (14 days), after all: nothing is written in between, the report's clock alone moves.
    for moment in (datetime(2026, 1, 13, 16, tzinfo=UTC), datetime(2026, 1, 20, 12, tzinfo=UTC),
                   datetime(2026, 2, 5, 12, tzinfo=UTC)):
        clock.set(moment)
        for filters in ({}, {"start": datetime(2026, 1, 6, 5, tzinfo=UTC)}, {"group": "east"}):
            rows, calls = _both(api.engine, counting, **filters)
            assert calls == 0  # every episode counted from a projection
        standing.append({row["measure_id"]: (row["not_met"], row["open"]) for row in rows})
    assert _states(api.engine) == states
    assert standing[0]["call-2bd"][1] == 0 and standing[0]["visit-14"][1] > 0
    assert standing[0]["visit-14"][0] < standing[1]["visit-14"][0] < standing[2]["visit-14"][0]
    assert standing[1]["visit-14"][1] > 0 and standing[2]["visit-14"][1] == 0


def test_a_change_the_projection_did_not_see_is_evaluated_live(
        api: ApiClient, clock: ManualClock, counting: CountingEvaluations) -> None:
    ids = _running_cohort(api, clock)
    clock.set(datetime(2026, 1, 22, 12, tzinfo=UTC))
    before, _ = _both(api.engine, counting)
    # Facts changed outside the state-saving path (its lock version moves with any change of the row):
    # the follow-up of an episode that had none, now dated in time.
    with api.engine.db.engine.begin() as connection:
        data = connection.scalar(select(Instance.data).where(Instance.id == ids[1]))
        connection.execute(update(Instance).where(Instance.id == ids[1]).values(
            data={**data, "follow_up_date": "2026-01-08"}, lock_version=Instance.lock_version + 1))
    after, calls = _both(api.engine, counting)
    assert calls == 2  # that episode's two measures, live
    visit = {row["measure_id"]: row for row in after}["visit-14"]
    assert visit["met"] == {row["measure_id"]: row for row in before}["visit-14"]["met"] + 1
    with api.engine.db.engine.begin() as connection:  # an episode without rows: evaluated live too
        connection.execute(delete(MeasureState).where(MeasureState.instance_id == ids[2]))
    assert _both(api.engine, counting) == (after, 4)


def test_final_outcomes_replace_the_standing_and_the_rows_can_be_rebuilt(
        api: ApiClient, clock: ManualClock, counting: CountingEvaluations) -> None:
    ids = _running_cohort(api, clock)
    admin = api.user("admin")
    clock.set(datetime(2026, 1, 14, 12, tzinfo=UTC))
    for n in (0, 2, 3, 4):  # ended: outcomes recorded, some final, some waiting for the visit's window
        assert api.post(f"/api/instances/{ids[n]}/cancel", admin, {"reason": "readmitted"}).status_code == 200
    clock.set(datetime(2026, 2, 1, 12, tzinfo=UTC))
    while fire_due_timers(api.engine):
        pass  # the windows' timers: every ended episode's outcomes final
    states = _states(api.engine)
    ended = {ids[n] for n in (0, 1, 2, 3, 4, 5, 9)}  # cancelled, or completed by the call
    assert _final(api.engine) == ended and {i for i, _ in states} == set(ids) - ended  # counted once, from one table
    rows, calls = _both(api.engine, counting)
    assert calls == 0 and sum(row["excluded"] for row in rows) > 0

    with api.engine.db.engine.begin() as connection:  # as after the migration that added the table
        connection.execute(delete(MeasureState))
    assert _both(api.engine, counting)[1] == 10  # five running episodes' two measures, live
    assert project_all(api.engine) == 5
    assert _states(api.engine) == states
    assert _both(api.engine, counting) == (rows, 0)
