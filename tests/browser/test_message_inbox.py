"""An admin in a real browser finds a failed HL7 message in the message inbox, reads it and reprocesses it;
the inbox and the message's page pass an axe-core scan."""

from __future__ import annotations

import pytest

from carepath.engine.application import CarePath
from carepath.engine.usecases.inbox import process_inbox
from tests.support.mllp_messages import adt
from tests.support.web import PASSWORD, web_user
from tests.test_inbox import Recorder, rows, send

from .conftest import Visit

pytestmark = pytest.mark.browser


def test_an_admin_reprocesses_a_failed_message(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "ada", "admin")
    send(engine, adt(control_id="BAD-1", name="Müller^Jörg"))
    process_inbox(engine, Recorder(failing={"BAD-1"}))
    page = visit.page
    page.goto(visit.url("/signin"))
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/worklist")
    page.get_by_role("link", name="Message inbox").click()
    page.wait_for_url("**/app/inbox")
    assert "no mapping for facility" in page.locator("tr[data-message]").inner_text()
    assert visit.serious("message-inbox") == []
    page.locator("tr[data-message] th a").click()
    page.wait_for_url("**/app/inbox/*")
    assert "Müller^Jörg" in page.locator("pre").inner_text()
    assert visit.serious() == []
    page.get_by_role("button", name="Reprocess").click()
    page.wait_for_url("**reprocessed=1")
    assert "it is now nothing to do" in page.get_by_role("status").inner_text()
    assert visit.serious() == []
    assert rows(engine)[0].state == "nothing_to_do"
