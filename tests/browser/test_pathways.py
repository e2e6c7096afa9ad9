"""A clinical lead in a real browser: signs in, deploys a bad package through the upload form and sees each
error at its file, line and element with the element marked in the preview, fixes it and deploys, lands on
the new version's page with its diagram drawn; the list, the refused upload and the version page pass an
axe-core scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from carepath.engine.application import CarePath
from tests.support import laid_out
from tests.support.web import web_user

from .conftest import Visit, fill_sign_in

pytestmark = pytest.mark.browser
STEPS = [("startEvent", "start", ""), ("exclusiveGateway", "risk", "Risk?"), ("userTask", "call", "Call patient"),
         ("endEvent", "end", "")]




def test_a_lead_deploys_a_bad_then_a_good_package_through_the_form(engine: CarePath, visit: Visit,
                                                                    tmp_path: Path) -> None:
    web_user(engine, "lena", "clinical_lead", "care-coordinator")
    bad = tmp_path / "triage.bpmn"
    bad.write_text(laid_out.chain("triage", STEPS, extra_flows=[("f_skip", "risk", "end")]))
    good = tmp_path / "fixed" / "triage.bpmn"
    good.parent.mkdir()
    good.write_text(laid_out.chain("triage", [STEPS[0], *STEPS[2:]], name="Triage"))
    page = visit.page
    page.goto(visit.url("/app/pathways"))
    fill_sign_in(page, "lena")
    page.wait_for_url("**/app/pathways")
    assert visit.serious("pathways") == []

    page.click("text=Upload a package")
    page.set_input_files("#diagram", str(bad))
    page.click("text=Check and deploy")
    alert = page.locator("[role=alert]")
    assert "not deployed" in alert.inner_text()
    row = page.locator("tr.severity-error")
    assert row.count() == 1
    assert [row.locator(f"td.{c}").inner_text().split()[0] for c in ("file", "line", "element")] == \
        ["triage.bpmn", "5", "risk"]
    preview = page.locator("figure.preview img")
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")  # the marked diagram is drawn
    assert visit.serious("pathway-upload-errors") == []

    page.set_input_files("#diagram", str(good))
    page.click("text=Check and deploy")
    page.click("ul.deployed a")
    page.wait_for_url("**/app/pathways/triage/versions/1")
    assert page.locator("h1").inner_text() == "Triage, version 1"
    diagram = page.locator("figure.diagram img")
    assert diagram.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator('table.tasks tr[data-element-id="call"]').count() == 1
    assert visit.serious("pathway-version") == []
    assert visit.outside == []
    # The refused upload answers 422, which Chromium logs as a failed load; nothing else may be in the console.
    assert [e for e in visit.console_errors if "422" not in e] == []
