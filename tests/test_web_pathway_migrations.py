"""The pathway page's migration (api/web/pathway_migrations.py): a clinical lead sees the plan for moving an
older version's episodes to the newest version and runs it; a coordinator is not offered it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import get_instance_view, start_instance
from tests.support.migration_pathways import KEY, version_1, version_2, without_call
from tests.support.web import page, signed_in, text_of, web_user

BASE = f"/app/pathways/{KEY}/versions/1"


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


def _deploy(engine: CarePath, xml: str) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{KEY}.bpmn", xml.encode())])


def test_a_clinical_lead_sees_the_plan_and_moves_the_episodes(web: Any, engine: CarePath) -> None:
    _deploy(engine, version_1())
    episode = start_instance(engine, SYSTEM, KEY, business_key="enc-1")
    _deploy(engine, version_2())
    web_user(engine, "lena", "clinical_lead")
    browser = signed_in(web, "lena")
    version_page = page(browser.get(BASE))
    assert version_page.xpath(f'//a[@href="{BASE}/move"]')

    plan = page(browser.get(f"{BASE}/move"))
    [row] = plan.xpath('//tr[@data-outcome]')
    assert row.get("data-outcome") == "can_move" and "call" in text_of(row)
    assert "adds: survey" in text_of(plan)
    assert get_instance_view(engine, episode.id).version == 1  # the plan changed nothing

    moved = browser.submit(f"{BASE}/move", f"{BASE}/move")
    assert moved.status_code == 303
    after = page(browser.get(moved.headers["location"]))
    assert "Moved 1 episode from version 1 to version 2." in text_of(after.xpath('//*[@role="status"]')[0])
    assert get_instance_view(engine, episode.id).version == 2


def test_an_episode_that_cannot_move_is_shown_with_why_and_stays(web: Any, engine: CarePath) -> None:
    _deploy(engine, version_1())
    episode = start_instance(engine, SYSTEM, KEY, business_key="enc-2")
    _deploy(engine, without_call())
    web_user(engine, "lena", "clinical_lead")
    browser = signed_in(web, "lena")
    plan = page(browser.get(f"{BASE}/move"))
    [row] = plan.xpath('//tr[@data-outcome]')
    assert row.get("data-outcome") == "cannot_move"
    assert "'call' (Call patient) no longer exists" in text_of(row)
    assert not plan.xpath(f'//form[@action="{BASE}/move"]')  # nothing to move: no button
    assert get_instance_view(engine, episode.id).version == 1


def test_a_coordinator_is_neither_offered_nor_allowed_to_move_episodes(web: Any, engine: CarePath) -> None:
    _deploy(engine, version_1())
    start_instance(engine, SYSTEM, KEY, business_key="enc-3")
    _deploy(engine, version_2())
    web_user(engine, "cora", "coordinator")
    browser = signed_in(web, "cora")
    assert not page(browser.get(BASE)).xpath(f'//a[@href="{BASE}/move"]')
    assert browser.get(f"{BASE}/move").status_code == 403
