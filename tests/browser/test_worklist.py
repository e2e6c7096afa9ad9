"""A coordinator in a real browser, keyboard only: signs in through the form and finds the patient's task on
the worklist; the sign-in page and every quick view of the worklist pass an axe-core scan; a script in a
patient id or name is text; the worklist shows a task started through the API by itself, without a reload and
without taking the focus from where the user is typing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.patients import Demographics, Identifier, PatientDetails, v2_identifier_system
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.users import add_user
from carepath.engine.worklist import VIEWS
from tests.support import diagrams as d
from tests.support.web import PASSWORD, web_user

from ..support.server import running
from .conftest import Visit

pytestmark = pytest.mark.browser
PATIENT = '<script>document.title="owned"</script>pat-7'
FAMILY = '<script>document.title="owned by a name"</script>Doe'  # names come from HL7 messages


@pytest.fixture
def server(engine: CarePath, database_url: str) -> Iterator[str]:
    """The app as `carepath serve` runs it, its worklist polling every second (15 by default)."""
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        web_worklist_poll_seconds=1)
    with running(create_app(settings, engine)) as url:
        yield url




def test_a_coordinator_signs_in_with_the_keyboard_and_finds_the_patients_task(engine: CarePath,
                                                                               visit: Visit) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", xml.encode())])
    start_instance(engine, SYSTEM, "fu", business_key="enc-77", patient_id=PATIENT, patient=PatientDetails(
        (Identifier(v2_identifier_system("GENHOSP"), "M-77"),), Demographics(FAMILY, "Jane", date(1950, 3, 4))))
    page = visit.page
    page.goto(visit.url("/"))
    assert page.url.endswith("/signin")
    assert visit.serious("signin") == []
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the brand link: the first field
    page.keyboard.type("sam")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/worklist")
    row = page.locator("tr", has_text="Call patient")
    assert row.count() == 1 and PATIENT in row.inner_text() and "enc-77" in row.inner_text()
    assert row.locator(".patient-name").inner_text() == f"{FAMILY}, Jane"
    assert "born 4 Mar 1950" in row.inner_text() and "MRN M-77" in row.inner_text()
    assert page.title() not in ("owned", "owned by a name")  # the patient id and name were shown as text, not run
    assert visit.serious("worklist") == []
    assert visit.outside == [] and visit.console_errors == []


def test_the_worklist_shows_work_started_through_the_api_by_itself(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    token = add_user(engine, "ada", "clinical_lead", [])
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", xml.encode())])
    start_instance(engine, SYSTEM, "fu", business_key="enc-1", patient_id="pat-1")
    visit.sign_in("sam")
    page = visit.page
    assert page.locator("tbody tr").count() == 1
    page.focus("#wl-q")
    page.keyboard.type("pat-")  # the user is typing a search when the work arrives
    started = httpx.post(visit.url("/api/pathways/fu/instances"), headers={"Authorization": f"Bearer {token}"},
                         json={"business_key": "enc-2", "patient_id": "pat-2"})
    assert started.status_code == 201, started.text
    page.locator("tbody tr", has_text="enc-2").wait_for(timeout=10_000)
    assert page.locator("tbody tr").count() == 2
    assert page.locator("#worklist-status").inner_text().startswith("Worklist updated")
    assert page.evaluate("() => document.activeElement.id") == "wl-q"  # the focus stayed where it was
    assert page.input_value("#wl-q") == "pat-"
    assert visit.console_errors == [] and visit.outside == []


def test_every_quick_view_passes_an_axe_scan(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", xml.encode())])
    start_instance(engine, SYSTEM, "fu", business_key="enc-1", patient_id="pat-1")
    visit.sign_in("sam")
    for view in VIEWS:
        visit.page.goto(visit.url(f"/app/worklist?view={view}"))
        assert visit.serious() == [], view
    assert visit.console_errors == [] and visit.outside == []
    visit.page.goto(visit.url("/app/worklist?view=nonsense"))  # the page with its error summary (a 422)
    assert visit.page.locator("[role=alert]").count() == 1
    assert visit.serious() == []
