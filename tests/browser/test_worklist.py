"""A coordinator in a real browser, keyboard only: signs in through the form and finds the patient's task on
the worklist; the sign-in page and the worklist pass an axe-core scan; a script in a patient id is text."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from tests.support import diagrams as d
from tests.support.web import PASSWORD, web_user

from .conftest import Visit

pytestmark = pytest.mark.browser
PATIENT = '<script>document.title="owned"</script>pat-7'


def _serious(visit: Visit) -> list[tuple[str, str]]:
    violations = Axe().run(visit.page).response["violations"]
    return [(v["id"], v["impact"]) for v in violations if v["impact"] in ("serious", "critical")]


def test_a_coordinator_signs_in_with_the_keyboard_and_finds_the_patients_task(engine: CarePath,
                                                                               visit: Visit) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", xml.encode())])
    start_instance(engine, SYSTEM, "fu", business_key="enc-77", patient_id=PATIENT)
    page = visit.page
    page.goto(visit.url("/"))
    assert page.url.endswith("/signin")
    assert _serious(visit) == []
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
    assert page.title() != "owned"  # the patient id was shown as text, not run
    assert _serious(visit) == []
    assert visit.outside == [] and visit.console_errors == []
