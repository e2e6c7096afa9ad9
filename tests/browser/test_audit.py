"""An auditor in a real browser: signs in, finds an episode by its patient, opens it (its diagram drawn under
the strict policy), reads who viewed the patient's record; every auditor screen passes an axe-core scan; a
script in a patient id is text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from tests.support.web import web_user

from .conftest import Visit, fill_sign_in

pytestmark = pytest.mark.browser
PATIENT = '<script>document.title="owned"</script>pat-7'
PATHWAY = Path(__file__).parents[2] / "bpmn"




def _episode(engine: CarePath) -> str:
    files = [SourceFile(name, (PATHWAY / name).read_bytes())
             for name in ("post-ed-follow-up.bpmn", "post-ed-follow-up.pathway.json",
                                 "ed-visit-classification.dmn")]
    deploy_pathways(engine, SYSTEM, files)
    data = json.loads((PATHWAY / "post-ed-follow-up.pathway.json").read_text())["example_data"]
    started = start_instance(engine, SYSTEM, "post-ed-follow-up", business_key="enc-77", patient_id=PATIENT,
                             data=data)
    record_access(engine, Principal("sam", Role.COORDINATOR, frozenset({"care-coordinator"})), "instance", started.id)
    return started.id


def test_an_auditor_finds_an_episode_opens_it_and_reads_who_viewed_the_record(engine: CarePath,
                                                                               visit: Visit) -> None:
    web_user(engine, "audrey", "auditor")
    web_user(engine, "sam", "coordinator", "care-coordinator")
    _episode(engine)
    page = visit.page
    page.goto(visit.url("/app/episodes"))
    fill_sign_in(page, "audrey")  # on the sign-in page the episodes sent us to
    page.wait_for_url("**/app/episodes")
    assert visit.serious("episodes") == []
    page.get_by_label("Patient id").fill(PATIENT)
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**/app/episodes?*")
    page.get_by_role("link", name="enc-77").click()
    page.wait_for_url("**/app/episodes/*")
    assert PATIENT in page.locator("dl.facts").first.inner_text() and page.title() != "owned"
    diagram = page.locator("figure.diagram img")
    diagram.wait_for()
    page.wait_for_function("() => document.querySelector('figure.diagram img').complete")
    assert diagram.evaluate("img => img.naturalWidth") > 300  # drawn, not the "no layout" line
    assert visit.serious("episode") == []
    page.get_by_role("link", name="Who viewed this patient's record").click()
    page.wait_for_url("**/views")
    readers = page.locator("table.views tbody td.who").all_inner_texts()
    assert readers == ["audrey", "sam"]  # the page view just made, then the coordinator's
    assert visit.serious("patient-views") == []
    assert visit.outside == [] and visit.console_errors == []


SHOTS = {"/app/compliance?pathway=post-ed-follow-up": "compliance", "/app/audit": "audit",
         "/app/audit/verify": "audit-verify", "REPORT": "episode-report"}


@pytest.mark.parametrize("path", ["/app/compliance", "/app/compliance?pathway=post-ed-follow-up", "/app/audit",
                                  "/app/audit?type=record_viewed", "/app/audit/verify", "REPORT"])
def test_every_auditor_screen_passes_an_axe_scan(engine: CarePath, visit: Visit, path: str) -> None:
    web_user(engine, "audrey", "auditor")
    web_user(engine, "sam", "coordinator", "care-coordinator")
    episode = _episode(engine)
    page = visit.sign_in("audrey")
    page.goto(visit.url(f"/app/episodes/{episode}/report" if path == "REPORT" else path))
    assert page.title() != "owned"
    assert visit.serious(SHOTS.get(path)) == []
    assert visit.outside == [] and visit.console_errors == []
