"""The screens a community health worker uses on a tablet reflow at tablet width and at 200 % and 400 % zoom
(WCAG 1.4.10): the page never scrolls sideways (a data table may scroll inside its own box)."""

from __future__ import annotations

import pytest

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from tests.support import diagrams as d
from tests.support.web import web_user

from .conftest import Visit

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [768, 640, 320])
def test_the_worklist_task_and_episode_pages_reflow(engine: CarePath, visit: Visit, width: int) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call the patient about the follow-up visit", lane="Care Coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", xml.encode())])
    started = start_instance(engine, SYSTEM, "fu", business_key="enc-2026-000123", patient_id="MRN-000456789")
    [task] = started.open_tasks
    page = visit.page
    page.set_viewport_size({"width": width, "height": 800})
    visit.sign_in("sam")
    for path in ("/app/worklist", f"/app/tasks/{task.id}", f"/app/episodes/{started.id}"):
        page.goto(visit.url(path))
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, width, overflow)
