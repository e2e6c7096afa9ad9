"""A task row says whose task it is: the patient, the business key and the pathway's name, in lists and
in the task view, from columns of the task row itself (filled at creation, backfilled by 0013)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import select

from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Task
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.test_service import _insert_filled


def test_two_call_patient_rows_say_which_patient_episode_and_pathway_they_are(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    coordinator = api.user("coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator").replace(
        '<bpmn:process id="fu"', '<bpmn:process id="fu" name="Follow-up after an ED visit"')
    assert api.deploy(lead, ("fu.bpmn", xml)).status_code == 201
    for patient, key in (("pat-1", "enc-1"), ("pat-2", "enc-2")):
        assert api.start(lead, "fu", key, patient_id=patient).status_code == 201
    rows = api.get("/api/tasks?candidate=me", coordinator).json()["items"]
    assert sorted((r["name"], r["patient_id"], r["business_key"], r["pathway_key"], r["pathway_name"])
                  for r in rows) == [
        ("Call patient", "pat-1", "enc-1", "fu", "Follow-up after an ED visit"),
        ("Call patient", "pat-2", "enc-2", "fu", "Follow-up after an ED visit")]
    one = api.get(f"/api/tasks/{rows[0]['id']}", coordinator).json()
    assert (one["patient_id"], one["business_key"], one["pathway_name"]) == (
        rows[0]["patient_id"], rows[0]["business_key"], "Follow-up after an ED visit")


def test_migration_0013_backfills_the_rows_of_open_tasks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db.engine, "0011")
        with sqlite3.connect(path) as raw:
            _insert_filled(raw, "deployment_files", id=1, deployment_id="dep", filename="p.bpmn", content=b"x")
            _insert_filled(raw, "pathway_versions", id=1, source_file_id=1, key="p", name="Pathway P",
                           deployment_id="dep")
            _insert_filled(raw, "instances", id="i1", pathway_version_id=1, patient_id="pat-9", business_key="bk-9",
                           status="running")
            raw.execute("INSERT INTO tasks (id, instance_id, pathway_key, element_id, name, kind, state, priority, "
                        "created_at, audience) VALUES ('t1', 'i1', 'p', 'e', 'n', 'user', 'ready', 50, "
                        "'2026-01-01 00:00:00', '[]')")
            deltas = raw.execute("SELECT count(*) FROM task_count_deltas").fetchone()
        migrate.upgrade(db.engine)
        with db.engine.connect() as connection:
            row = connection.execute(select(Task.patient_id, Task.business_key, Task.pathway_name)).one()
        assert tuple(row) == ("pat-9", "bk-9", "Pathway P")
        with sqlite3.connect(path) as raw:  # the backfill is not a task changing state
            assert raw.execute("SELECT count(*) FROM task_count_deltas").fetchone() == deltas
    finally:
        db.dispose()
