"""`carepath validate`: the deploy's checks without a server, with the files a diagram needs found beside
it, located errors and a non-zero exit for a pathway repository's CI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.usecases.users import add_user
from tests.support import diagrams as d

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"


@pytest.fixture
def no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "not-there.db"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{database}")
    return database


def validate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_the_dmn_beside_the_bpmn_is_found_and_nothing_needs_a_database(capsys: pytest.CaptureFixture[str],
                                                                       no_database: Path) -> None:
    code, out, err = validate(capsys, SHIPPED / "post-ed-follow-up.bpmn")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"found beside: {SHIPPED / 'ed-visit-classification.dmn'} (decision 'ed_visit_classification')",
        f"found beside: {SHIPPED / 'post-ed-follow-up.pathway.json'} (its measures and example data)",
        f"ok: post-ed-follow-up (camunda) from {SHIPPED / 'post-ed-follow-up.bpmn'}",
        "  lane 'Care Coordinator' -> group care-coordinator",
        "  lane 'Care Team Supervisor' -> group care-team-supervisor",
        f"note: lanes were not checked against users (no CarePath database at sqlite:///{no_database})",
    ]
    assert not no_database.exists()  # validate never creates one


def test_a_diagram_whose_decision_is_missing_fails_with_its_location(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path, no_database: Path) -> None:
    lonely = tmp_path / "post-ed-follow-up.bpmn"
    shutil.copy(SHIPPED / "post-ed-follow-up.bpmn", lonely)
    (tmp_path / "notes.dmn").write_text("not a diagram")  # unreadable files beside it are named, not fatal
    code, out, err = validate(capsys, lonely)
    assert code == 1 and out == ""
    assert f"note: {tmp_path / 'notes.dmn'}, line 1: not searched: The file does not contain XML." in err
    assert "error: The upload cannot be deployed: 1 problem found." in err
    assert (f"  {lonely}, line 108, classify_ed_visit: Business rule task 'classify_ed_visit' (Classify ED visit) "
            "at line 108 refers to decision 'ed_visit_classification' but no uploaded DMN file defines it") in err


def test_every_refusal_a_deploy_would_give_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       no_database: Path) -> None:
    dated = tmp_path / "dated.bpmn"
    dated.write_text(d.linear_user_tasks("dated", "Call").replace(
        '<bpmn:userTask id="task_0"', '<bpmn:userTask xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'camunda:dueDate="soon" id="task_0"'))
    code, _, err = validate(capsys, dated)
    assert code == 1  # the calendar check of a deploy, which the importer alone does not make
    assert f"  {dated}, task_0: Task 'task_0': due date 'soon' is not an ISO 8601 date-time" in err


def test_a_called_process_beside_the_caller_is_found(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     no_database: Path) -> None:
    (tmp_path / "parent.bpmn").write_text(d.call_activity("parent", "child"))
    (tmp_path / "child.bpmn").write_text(d.linear_user_tasks("child", "Child step"))
    (tmp_path / "unrelated.bpmn").write_text(d.linear_user_tasks("child", "A second child"))  # same id, later name
    code, out, _ = validate(capsys, tmp_path / "parent.bpmn")
    assert code == 0
    assert out.splitlines()[:3] == [
        f"found beside: {tmp_path / 'child.bpmn'} (process 'child')",
        f"ok: parent (bpmn) from {tmp_path / 'parent.bpmn'}",
        f"ok: child (bpmn) from {tmp_path / 'child.bpmn'}",
    ]
    (tmp_path / "child.bpmn").unlink()
    (tmp_path / "unrelated.bpmn").unlink()
    code, _, err = validate(capsys, tmp_path / "parent.bpmn")
    assert code == 1 and "calls process 'child', which is neither in this upload nor deployed" in err


def test_with_the_installation_database_lanes_are_checked_against_users(
        capsys: pytest.CaptureFixture[str], engine: CarePath, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    add_user(engine, "sam", "coordinator", ["care-coordinator"])
    code, out, _ = validate(capsys, SHIPPED / "post-ed-follow-up.bpmn")
    assert code == 0
    assert (f"warning: {SHIPPED / 'post-ed-follow-up.bpmn'}: Lane 'Care Team Supervisor' maps to group "
            "'care-team-supervisor', which no user belongs to yet") in out
    assert "Care Coordinator' maps" not in out and "not checked" not in out
    code, out, _ = validate(capsys, "--offline", SHIPPED / "post-ed-follow-up.bpmn")
    assert code == 0 and "warning" not in out and "note: lanes were not checked against users (--offline)" in out


def test_a_bad_setting_is_an_error_message(capsys: pytest.CaptureFixture[str], no_database: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_LANE_GROUPS", "[1]")
    code, _, err = validate(capsys, SHIPPED / "post-ed-follow-up.bpmn")
    assert code == 2
    assert err == "error: the configuration is not valid: CAREPATH_LANE_GROUPS must be a JSON object of lane " \
                  "name -> group\n"
