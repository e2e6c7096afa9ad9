"""Lists name the patient (issue 13's "the id until the interop issue brings names"): the worklist, the team
lists, the episode search and the JSON API's task and instance lists show the patient's name, birth date and
MRN (the survivor's when the episode's patient was merged), read with the page in one batched query
(engine/patient_links.summaries_of_instances); names from messages are text, never markup; the worklist's
search finds a patient by an identifier value (an MRN), through the merge links."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.patients import (
    DEFAULT_PATIENT_ID_SYSTEM,
    Demographics,
    Identifier,
    PatientDetails,
    v2_identifier_system,
)
from carepath.engine.queries import TaskFilter, list_tasks
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.patients import merge_patients
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.web import page, signed_in, text_of, web_user

ADT = Principal("adt-feed", Role.INTEGRATION)
WHY = "duplicate registration found by the records office"
MRN = v2_identifier_system("GENHOSP")
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@dataclass
class World:
    tasks: dict[str, str]  # business key -> task id
    patients: dict[str, str]  # business key -> the patient the episode was started for


def _start(engine: CarePath, business_key: str, patient_id: str, mrn: str | None = None, family: str | None = None,
           given: str | None = None, born: date | None = None) -> tuple[str, str]:
    details = PatientDetails((Identifier(MRN, mrn),) if mrn else (), Demographics(family, given, born))
    started = start_instance(engine, SYSTEM, "fu", business_key=business_key, patient_id=patient_id, patient=details)
    assert started.patient_ref is not None
    return started.open_tasks[0].id, started.patient_ref


@pytest.fixture
def world(engine: CarePath) -> World:
    """enc-doe: Jane Doe (MRN M-100); enc-old: "Old Dupe" (MRN M-300), merged into Ann Smith of enc-smith
    (MRN M-200); enc-xss: a family name that is a script; enc-anon: a patient known by id only."""
    web_user(engine, "alice", "coordinator", "care-coordinator")
    web_user(engine, "sue", "supervisor", "care-coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", d.linear_user_tasks(
        "fu", "Call patient", lane="Care Coordinator").encode())])
    started = {
        "enc-doe": _start(engine, "enc-doe", "pat-doe", "M-100", "Doe", "Jane", date(1950, 3, 4)),
        "enc-smith": _start(engine, "enc-smith", "pat-smith", "M-200", "Smith", "Ann", date(1961, 12, 1)),
        "enc-old": _start(engine, "enc-old", "pat-old", "M-300", "Dupe", "Old", date(1970, 1, 1)),
        "enc-xss": _start(engine, "enc-xss", "pat-xss", None, SCRIPT, "Bob"),
        "enc-anon": _start(engine, "enc-anon", "pat-anon"),
    }
    merge_patients(engine, ADT, started["enc-smith"][1], f"{DEFAULT_PATIENT_ID_SYSTEM}|pat-old", WHY)
    return World({k: v[0] for k, v in started.items()}, {k: v[1] for k, v in started.items()})


def _cells(response: Any, attribute: str = "data-task-id") -> dict[str, Any]:
    """The patient cell of each row, by the row's task (or episode) id."""
    assert response.status_code == 200, response.text
    return {row.get(attribute): row.xpath("td[@class='patient']")[0] for row in page(response).xpath("//tbody/tr")}


def _name(cell: Any) -> str | None:
    names = cell.xpath("span[@class='patient-name']")
    return text_of(names[0]) if names else None


def test_a_worklist_row_names_the_patient_then_their_ids_in_smaller_text(web: Any, world: World) -> None:
    cells = _cells(signed_in(web, "alice").get("/app/worklist?view=teams"))
    doe = cells[world.tasks["enc-doe"]]
    assert _name(doe) == "Doe, Jane"
    assert doe.xpath("span[@class='patient-birth-date']/time/@datetime") == ["1950-03-04"]
    assert text_of(doe.xpath("span[@class='patient-birth-date']")[0]) == "born 4 Mar 1950"
    assert text_of(doe.xpath("small[@class='patient-ids']")[0]) == "MRN M-100 · id pat-doe"
    assert text_of(cells[world.tasks["enc-anon"]]) == "pat-anon"  # known by id only: the id, as before


def test_a_merged_patients_tasks_show_the_survivor(web: Any, world: World) -> None:
    cells = _cells(signed_in(web, "alice").get("/app/worklist?view=teams"))
    old = cells[world.tasks["enc-old"]]
    assert _name(old) == "Smith, Ann"
    assert text_of(old.xpath("small[@class='patient-ids']")[0]) == "MRN M-200 · id pat-old"  # the episode's own id


def test_a_name_with_markup_shows_as_text(web: Any, world: World) -> None:
    response = signed_in(web, "alice").get("/app/worklist?view=teams")
    assert _name(_cells(response)[world.tasks["enc-xss"]]) == f"{SCRIPT}, Bob"
    assert SCRIPT not in response.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in response.text
    assert not page(response).xpath("//td[@class='patient']//script")


@pytest.mark.parametrize(("search", "expected"), [
    ("M-100", ["enc-doe"]),
    ("M-200", ["enc-smith", "enc-old"]),  # the survivor's MRN finds the merged patient's episode too
    ("M-300", ["enc-smith", "enc-old"]),  # and the merged patient's MRN its survivor's
    ("pat-old", ["enc-smith", "enc-old"]),  # the patient id, as before
    ("M-10", []),  # exact values only
])
def test_the_worklist_search_finds_a_patient_by_an_identifier_value(web: Any, world: World, search: str,
                                                                    expected: list[str]) -> None:
    browser = signed_in(web, "alice")
    browser.submit("/app/worklist", "/app/worklist/search", q=search)
    html = page(browser.get("/app/worklist?view=teams"))
    keys = [text_of(c) for c in html.xpath("//tbody/tr/td[@class='episode']/span[@class='business-key']")]
    assert sorted(keys) == sorted(expected)


def test_the_team_list_names_the_patients(web: Any, world: World) -> None:
    cells = _cells(signed_in(web, "sue").get("/app/team/tasks?group=care-coordinator"))
    assert _name(cells[world.tasks["enc-doe"]]) == "Doe, Jane"
    assert _name(cells[world.tasks["enc-old"]]) == "Smith, Ann"
    assert _name(cells[world.tasks["enc-xss"]]) == f"{SCRIPT}, Bob"


def test_the_episode_search_names_the_patients(web: Any, world: World, engine: CarePath) -> None:
    response = signed_in(web, "sue").get("/app/episodes")
    assert SCRIPT not in response.text
    by_key = {text_of(row.xpath("td[@class='business-key']")[0]): row.xpath("td[@class='patient']")[0]
              for row in page(response).xpath("//tbody/tr")}
    assert _name(by_key["enc-doe"]) == "Doe, Jane"
    assert _name(by_key["enc-old"]) == "Smith, Ann"
    assert _name(by_key["enc-xss"]) == f"{SCRIPT}, Bob"


def test_api_list_items_carry_the_patient(web: Any, world: World, engine: CarePath) -> None:
    with TestClient(web, raise_server_exceptions=False) as client:
        api = ApiClient(client, engine)
        reader = api.user("coordinator", "care-coordinator")
        tasks = api.get("/api/tasks?candidate=me&limit=50", reader)
        instances = api.get("/api/instances?limit=50", api.user("clinical_lead"))
    assert tasks.status_code == 200, tasks.text
    by_task = {item["id"]: item["patient"] for item in tasks.json()["items"]}
    assert by_task[world.tasks["enc-old"]] == {"id": world.patients["enc-smith"], "family": "Smith", "given": "Ann",
                                               "birth_date": "1961-12-01", "mrn": "M-200"}
    assert by_task[world.tasks["enc-xss"]]["family"] == SCRIPT  # JSON carries the value; pages escape it
    assert instances.status_code == 200, instances.text
    by_key = {item["business_key"]: item for item in instances.json()["items"]}
    assert by_key["enc-doe"]["patient"] == {"id": world.patients["enc-doe"], "family": "Doe", "given": "Jane",
                                            "birth_date": "1950-03-04", "mrn": "M-100"}
    assert by_key["enc-old"]["patient_ref"] == world.patients["enc-old"]  # the episode's own patient, unchanged
    assert by_key["enc-old"]["patient"]["id"] == world.patients["enc-smith"]
    assert by_key["enc-anon"]["patient"] == {"id": world.patients["enc-anon"], "family": None, "given": None,
                                             "birth_date": None, "mrn": None}


def test_a_chain_of_merges_ends_at_the_last_survivor(engine: CarePath, world: World) -> None:
    """Smith (with Dupe merged into her) merged into Doe: every one of those episodes' tasks shows Doe."""
    merge_patients(engine, ADT, world.patients["enc-doe"], world.patients["enc-smith"], WHY)
    with engine.db.read() as session:
        found = list_tasks(session, TaskFilter(state=None, open_only=True), limit=50)
    shown = {t.business_key: t.patient.name if t.patient else None for t in found.items}
    assert shown == {"enc-doe": "Doe, Jane", "enc-smith": "Doe, Jane", "enc-old": "Doe, Jane",
                     "enc-xss": f"{SCRIPT}, Bob", "enc-anon": None}
