"""A version's identity is what its pathway uses (diagram, DMN, forms, sidecar); a deploy without the
sidecar keeps the latest version's, and says so; migration 0013 recomputes stored identities."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, text

from carepath.api.bootstrap import deploy_directory
from carepath.api.settings import shipped_pathways_dir
from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import PathwayVersion
from tests.support import diagrams as d
from tests.support.api import ApiClient

BPMN = shipped_pathways_dir()
MEASURE = {"id": "fu-7", "name": "Follow-up within 7 days", "source": "test",
           "clock_starts": {"variable": "visit_date", "event": "ED visit"},
           "met_by": {"task": "task_0", "event": "patient seen"}, "deadline": "P7D after visit_date end of day"}


def _file(name: str) -> tuple[str, bytes]:
    return name, (BPMN / name).read_bytes()


def test_readme_step_2_redeploy_answers_the_existing_version_with_its_measures(shipped: ApiClient) -> None:
    lead = shipped.user("clinical_lead")
    again = shipped.deploy(lead, _file("post-ed-follow-up.bpmn"), _file("ed-visit-classification.dmn"))
    assert again.status_code == 200, again.text
    [deployed] = again.json()["processes"]
    assert (deployed["version"], deployed["created"], deployed["sidecar_kept_from"]) == (1, False, 1)
    assert any("keeps the sidecar of version 1" in w["message"] for w in again.json()["warnings"])
    # The whole folder (other pathways' sidecars and DMN) is the same identity as the pathway alone.
    with_sidecar = shipped.deploy(lead, _file("post-ed-follow-up.bpmn"), _file("ed-visit-classification.dmn"),
                                  _file("post-ed-follow-up.pathway.json"))
    assert with_sidecar.status_code == 200 and with_sidecar.json()["processes"][0]["sidecar_kept_from"] is None
    started = shipped.start(lead, "post-ed-follow-up", data=json.loads(
        (BPMN / "post-ed-follow-up.pathway.json").read_text())["example_data"]).json()
    assert started["version"] == 1
    measures = shipped.get(f"/api/instances/{started['id']}/measures", lead).json()
    assert {m["measure_id"] for m in measures} >= {"fum-7", "fum-30"}


def test_an_edited_diagram_without_its_sidecar_keeps_the_measures_and_a_sidecar_changes_them(
        api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    sidecar = json.dumps({"measures": [MEASURE], "example_data": {"visit_date": "2026-03-02"}})
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up")), ("fu.pathway.json", sidecar))
    edited = api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up", "Book visit")))
    assert edited.status_code == 201, edited.text
    assert edited.json()["processes"][0]["sidecar_kept_from"] == 1
    dropped = api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up", "Book visit")),
                         ("fu.pathway.json", json.dumps({"measures": []})))
    assert dropped.json()["processes"][0] == {"key": "fu", "version": 3, "created": True, "name": None,
                                              "sidecar_kept_from": None}
    versions = api.get("/api/pathways/fu", lead).json()["versions"]
    assert [([m["id"] for m in v["measures"]], v["example_data"]) for v in versions] == [
        (["fu-7"], {"visit_date": "2026-03-02"}), (["fu-7"], {"visit_date": "2026-03-02"}), ([], None)]
    # Version 3's sidecar (no measures) is the one kept from now on.
    assert api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call"))).json()["processes"][0][
        "sidecar_kept_from"] == 3


def test_a_kept_sidecar_that_no_longer_fits_the_diagram_is_refused_naming_it(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Follow up")),
               ("fu.pathway.json", json.dumps({"measures": [MEASURE]})))
    renamed = d.linear_user_tasks("fu", "Follow up").replace('"task_0"', '"call"').replace(">task_0<", ">call<")
    refused = api.deploy(lead, ("fu.bpmn", renamed))
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert "keep the sidecar of version 1" in error["message"] and "'task_0'" in error["message"]
    assert len(api.get("/api/pathways/fu", lead).json()["versions"]) == 1


def _old_content_hash(key: str, family: str, source: str, files: list[SourceFile]) -> str:
    """How versions were identified before 0013: the diagram and every .dmn and .json of the upload."""
    digest = hashlib.sha256(family.encode())
    for f in sorted(files, key=lambda f: f.name):
        if f.name == source or f.name.lower().endswith((".dmn", ".json")):
            digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.content).digest())
    return digest.hexdigest()


def test_migration_0013_recomputes_identities_so_the_next_start_up_deploy_creates_nothing(
        tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(db.engine, "0011")
    files = [SourceFile(p.name, p.read_bytes()) for p in sorted(BPMN.iterdir())
             if p.suffix.lower() in (".bpmn", ".dmn", ".json")]
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with db.engine.begin() as connection:  # the start-up deploy as CarePath before 0013 stored it
        deployment = str(uuid.uuid4())
        ids = {}
        for f in files:
            if f.name.endswith((".dmn", ".json")) or f.name.endswith(".bpmn"):
                ids[f.name] = connection.execute(text(
                    "INSERT INTO deployment_files (deployment_id, filename, sha256, content, created_at) "
                    "VALUES (:d, :n, :s, :c, :t) RETURNING id"), {"d": deployment, "n": f.name, "c": f.content,
                                                                  "s": "", "t": now}).scalar_one()
        for proc in parse_package(files).processes:
            connection.execute(insert(PathwayVersion.__table__).values(
                key=proc.key, version=1, name=proc.name, family=proc.family, spec_json="{}",
                content_hash=_old_content_hash(proc.key, proc.family, proc.source_file, files),
                source_file_id=ids[proc.source_file], deployment_id=deployment, external_calls=[], lanes=[],
                warnings=[], task_rules={}, time_settings={}, measures=proc.measures, example_data=None,
                retired=False, deployed_at=now, deployed_by="system"))
    migrate.upgrade(db.engine)
    app = CarePath(db, ManualClock(), EngineConfig())
    assert not any("(new)" in line for line in deploy_directory(app, BPMN))
    with db.read() as session:
        versions = session.execute(select(PathwayVersion.key, PathwayVersion.version, PathwayVersion.sidecar_file_id))
        assert all(version == 1 and sidecar for _, version, sidecar in versions)
    db.dispose()
