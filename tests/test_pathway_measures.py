"""Measures declared in a pathway's sidecar file: checked at deploy, stored with the version, evaluated
for each episode and recorded in the history when it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import Event
from tests.support import diagrams as d
from tests.support.api import ApiClient

FOLLOW_UP = {"id": "fu-7", "name": "Follow-up within 7 days", "source": "test",
             "clock_starts": {"variable": "visit_date", "event": "ED visit"},
             "met_by": {"task": "task_0", "when": "seen == True", "event": "patient seen"},
             "deadline": "P7D after visit_date end of day"}


def _files(measures: object, example: object = None, stem: str = "fu") -> list[tuple[str, str]]:
    sidecar: dict[str, object] = {"measures": measures}
    if example is not None:
        sidecar["example_data"] = example
    return [(f"{stem}.bpmn", d.linear_user_tasks("fu", "Follow up", lane="Care Coordinator")),
            (f"{stem}.pathway.json", json.dumps(sidecar))]


def test_measures_are_stored_with_the_version_and_evaluated_per_episode(api: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    lead = api.user("clinical_lead")
    deployed = api.deploy(lead, *_files([FOLLOW_UP], {"visit_date": "2026-03-02"}))
    assert deployed.status_code == 201, deployed.text
    version = api.get("/api/pathways/fu", lead).json()["versions"][0]
    assert [m["id"] for m in version["measures"]] == ["fu-7"]
    assert version["example_data"] == {"visit_date": "2026-03-02"}
    started = api.start(lead, "fu", data={"visit_date": "2026-03-02"}).json()
    [status] = api.get(f"/api/instances/{started['id']}/measures", lead).json()
    # The end of 9 March in New York, on daylight time since the 8th.
    assert status["status"] == "open" and status["deadline"].startswith("2026-03-10T03:59:59")
    task = started["open_tasks"][0]["id"]
    coordinator = api.user("coordinator", "care-coordinator")
    assert api.post(f"/api/tasks/{task}/complete", coordinator, {"data": {"seen": True}}).status_code == 200
    [status] = api.get(f"/api/instances/{started['id']}/measures", lead).json()
    assert status["status"] == "met" and status["met_at"].startswith("2026-03-03T15:00")
    with api.engine.db.read() as session:
        recorded = session.scalars(select(Event.data).where(Event.instance_id == started["id"],
                                                            Event.type == "measure_outcomes")).one()
    assert [(m["measure_id"], m["status"]) for m in recorded["measures"]] == [("fu-7", "met")]


def test_a_missed_window_is_not_met_and_a_cancelled_episode_is_excluded(api: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    lead = api.user("clinical_lead")
    api.deploy(lead, *_files([FOLLOW_UP]))
    late = api.start(lead, "fu", data={"visit_date": "2026-03-02"}).json()
    cancelled = api.start(lead, "fu", data={"visit_date": "2026-03-02"}).json()
    assert api.post(f"/api/instances/{cancelled['id']}/cancel", lead, {"reason": "readmitted"}).status_code == 200
    clock.set(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))  # 01:00 on 10 March in New York: the window has closed
    [status] = api.get(f"/api/instances/{late['id']}/measures", lead).json()
    assert status["status"] == "not_met" and "window closed" in status["detail"]
    [excluded] = api.get(f"/api/instances/{cancelled['id']}/measures", lead).json()
    assert excluded["status"] == "excluded"
    other = api.user("coordinator", "elsewhere")
    assert api.get(f"/api/instances/{late['id']}/measures", other).status_code == 404


def test_bad_sidecars_are_refused_at_deploy_naming_the_file_and_the_measure(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    bad = api.deploy(lead, *_files([{**FOLLOW_UP, "met_by": {"task": "nope"}, "deadline": "P7D"}]))
    assert bad.status_code == 422
    messages = [e["message"] for e in bad.json()["errors"]]
    assert all(e["file"] == "fu.pathway.json" for e in bad.json()["errors"])
    assert any("'nope'" in m for m in messages) and any("must count from the clock" in m for m in messages)
    orphan = api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up")),
                        ("other.pathway.json", json.dumps({"measures": []})))
    assert orphan.status_code == 422 and "other.bpmn" in orphan.json()["errors"][0]["message"]
    not_json = api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up")), ("fu.pathway.json", "{"))
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["errors"][0]["message"]


def test_an_episode_closed_before_its_window_closes_gets_its_final_outcome_recorded_then(
        api: ApiClient, clock: ManualClock) -> None:
    from carepath.engine.usecases.timers import fire_due_timers

    clock.set(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    lead = api.user("clinical_lead")
    api.deploy(lead, *_files([FOLLOW_UP]))
    started = api.start(lead, "fu", data={"visit_date": "2026-03-02"}).json()
    coordinator = api.user("coordinator", "care-coordinator")
    task = started["open_tasks"][0]["id"]
    assert api.post(f"/api/tasks/{task}/complete", coordinator, {"data": {"seen": False}}).status_code == 200

    def recorded() -> list[str]:
        with api.engine.db.read() as session:
            rows = session.scalars(select(Event.data).where(Event.instance_id == started["id"],
                                                            Event.type == "measure_outcomes").order_by(Event.id))
            return [row["measures"][0]["status"] for row in rows]

    assert recorded() == ["open"]  # the episode ended; the 7-day window has not
    assert fire_due_timers(api.engine) == 0
    clock.set(datetime(2026, 3, 10, 3, 59, 59, tzinfo=UTC))  # the last second of 9 March in New York
    assert fire_due_timers(api.engine) == 0
    clock.set(datetime(2026, 3, 10, 4, 0, 1, tzinfo=UTC))
    assert fire_due_timers(api.engine) == 1
    assert recorded() == ["open", "not_met"]
    clock.set(datetime(2026, 4, 10, tzinfo=UTC))
    assert fire_due_timers(api.engine) == 0  # final: nothing more to record
