"""The message inbox page (/app/inbox): admins see the failed messages with their outcome and reprocess
them; the raw payload is on a message's own page while it is kept; nobody else sees any of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.inbox import process_inbox, purge_raw_payloads
from tests.support.mllp_messages import adt
from tests.support.web import Browser, page, signed_in, text_of, web_user
from tests.test_inbox import Recorder, rows, send


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@pytest.fixture
def admin(web: Any, engine: CarePath) -> Browser:
    return signed_in(web, web_user(engine, "ada", "admin"))


def test_an_admin_sees_failed_messages_and_reprocesses_one(admin: Browser, engine: CarePath) -> None:
    send(engine, adt(control_id="BAD-1", name="Müller^Jörg"))
    send(engine, adt(control_id="OK-1", mrn="OTHER"))
    process_inbox(engine, Recorder(failing={"BAD-1"}))
    listing = page(admin.get("/app/inbox"))
    assert listing.xpath('//nav//a[@href="/app/inbox"]')  # in the main navigation
    [row] = listing.xpath("//tr[@data-message]")
    assert "BAD-1" in text_of(row) and "no mapping for facility EPIC^GENHOSP" in text_of(row)
    assert "Müller" not in text_of(listing)  # no payload in the list
    message_id = row.get("data-message")
    detail = page(admin.get(f"/app/inbox/{message_id}"))
    assert "Müller^Jörg" in text_of(detail)
    done = admin.submit("/app/inbox", f"/app/inbox/{message_id}/reprocess")
    assert done.status_code == 303
    after = text_of(page(admin.get(done.headers["location"])))
    assert "reprocessed: it is now nothing to do" in after
    assert "no pathway starts or moves on an A03" in after
    assert not page(admin.get("/app/inbox")).xpath("//tr[@data-message]")


def test_a_purged_payload_is_not_shown(web: Any, engine: CarePath, clock: ManualClock) -> None:
    send(engine, adt(control_id="OLD", name="Müller^Jörg"))
    process_inbox(engine, Recorder(failing={"OLD"}))
    clock.advance(timedelta(days=31))
    purge_raw_payloads(engine)
    admin = signed_in(web, web_user(engine, "ada", "admin"))
    [row] = rows(engine)
    detail = admin.get(f"/app/inbox/{row.id}")
    assert "Müller" not in detail.text and "Dropped after the retention period" in text_of(page(detail))
    refused = admin.submit(f"/app/inbox/{row.id}", f"/app/inbox/{row.id}/reprocess")
    assert refused.status_code == 409 and "dropped after the retention period" in text_of(page(refused))


def test_only_admins_see_the_inbox(web: Any, engine: CarePath) -> None:
    send(engine, adt(control_id="BAD-1"))
    process_inbox(engine, Recorder(failing={"BAD-1"}))
    [row] = rows(engine)
    for role in ("coordinator", "supervisor", "auditor", "clinical_lead"):
        browser = signed_in(web, web_user(engine, role, role))
        for path in ("/app/inbox", f"/app/inbox/{row.id}"):
            assert browser.get(path).status_code == 403, (role, path)
        assert not page(browser.get("/app/worklist")).xpath('//a[@href="/app/inbox"]')
        token = page(browser.get("/app/worklist")).xpath('//input[@name="csrf_token"]')[0].get("value")
        assert browser.client.post(f"/app/inbox/{row.id}/reprocess", data={"csrf_token": token}).status_code == 403
    assert rows(engine)[0].state == "failed"
