"""The worklist page (/app/worklist): each quick view lists exactly its tasks for a coordinator, the sorts
(undated last), the patient or episode search, the choice kept on the server across sign-ins, bad
choices answered with a page that says what is wrong, and the polling fragment (204 when nothing moved,
the table when something shown did) that never lists another team's work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.persistence.tables import WebSession
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.tasks import assign_task, claim_task, hold_task, set_due_date, set_priority
from carepath.engine.worklist import VIEWS
from tests.support import diagrams as d
from tests.support.web import page, signed_in, text_of, web_user

ALICE = Principal("alice", Role.COORDINATOR, frozenset({"care-coordinator"}))


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@dataclass
class World:
    tasks: dict[str, str]  # business key -> task id


def _start(engine: CarePath, clock: ManualClock, key: str, business_key: str) -> str:
    clock.advance(minutes=1)  # created one after the other: the age order is the order of starting
    started = start_instance(engine, SYSTEM, key, business_key=business_key, patient_id=f"pat-{business_key[4:]}")
    return started.open_tasks[0].id


@pytest.fixture
def world(engine: CarePath, clock: ManualClock) -> World:
    """Alice (care coordinator) and her colleague Bob; at 09:06 UTC on Monday 5 January (04:06 in New York):

    enc-mine: hers, due in 3 days, priority 50       enc-open: her team's, nobody's, due today, priority 80
    enc-bob: Bob's, overdue 2 h (due today)          enc-hold: hers, on hold, undated, priority 50
    enc-undated: her team's, nobody's, undated, 30   enc-pharm: the pharmacists', nobody's, overdue
    """
    for name, groups in (("alice", ("care-coordinator",)), ("bob", ("care-coordinator",)),
                         ("phil", ("pharmacist",))):
        web_user(engine, name, "coordinator", *groups)
    deploy_pathways(engine, SYSTEM, [
        SourceFile("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator").encode()),
        SourceFile("ph.bpmn", d.linear_user_tasks("ph", "Review medicines", lane="Pharmacist").encode())])
    tasks = {key: _start(engine, clock, "fu", key) for key in ("enc-mine", "enc-open", "enc-bob", "enc-hold",
                                                              "enc-undated")}
    tasks["enc-pharm"] = _start(engine, clock, "ph", "enc-pharm")
    now = clock()
    for key, due in (("enc-mine", now + timedelta(days=3)), ("enc-open", now + timedelta(hours=6)),
                     ("enc-bob", now - timedelta(hours=2)), ("enc-pharm", now - timedelta(hours=1))):
        set_due_date(engine, SYSTEM, tasks[key], due.isoformat(), "agreed with the patient")
    for key, priority in (("enc-open", 80), ("enc-undated", 30)):
        set_priority(engine, SYSTEM, tasks[key], priority)
    claim_task(engine, ALICE, tasks["enc-mine"])
    claim_task(engine, ALICE, tasks["enc-hold"])
    hold_task(engine, ALICE, tasks["enc-hold"], "waiting for the patient to call back")
    assign_task(engine, SYSTEM, tasks["enc-bob"], "bob")
    return World(tasks)


def _keys(response: Any) -> list[str]:
    html = page(response)
    return [text_of(cell) for cell in html.xpath("//tbody/tr/td[@class='episode']/span[@class='business-key']")]


EXPECTED = {
    "mine-and-teams": ["enc-open", "enc-mine", "enc-hold", "enc-undated"],
    "mine": ["enc-mine", "enc-hold"],
    "teams": ["enc-bob", "enc-open", "enc-mine", "enc-hold", "enc-undated"],
    "unassigned": ["enc-open", "enc-undated"],
    "due-today": ["enc-bob", "enc-open"],
    "overdue": ["enc-bob"],
    "on-hold": ["enc-hold"],
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_each_quick_view_lists_exactly_its_tasks_soonest_due_first(web: Any, world: World, view: str) -> None:
    browser = signed_in(web, "alice")
    response = browser.get(f"/app/worklist?view={view}")
    assert response.status_code == 200
    assert _keys(response) == EXPECTED[view]
    html = page(response)
    assert html.xpath("//nav[@aria-label='Quick views']//a[@aria-current='page']/@href") == \
        [f"/app/worklist?view={view}"]
    assert "enc-pharm" not in response.text  # another team's task, in no view


def test_rows_say_whose_task_it_is_and_link_to_the_task_page(web: Any, world: World) -> None:
    html = page(signed_in(web, "alice").get("/app/worklist?view=teams"))
    row = html.xpath(f"//tr[@data-task-id='{world.tasks['enc-bob']}']")[0]
    assert text_of(row.xpath("td[@class='patient']")[0]) == "pat-bob"
    assert row.xpath("td[@class='task']/a/@href") == [f"/app/tasks/{world.tasks['enc-bob']}"]
    assert text_of(row.xpath("td[@class='due']//span")[0]) == "overdue 2 h"
    assert text_of(row.xpath("td[@class='due']/time")[0]) == "Mon 05 Jan 2026 02:06"  # New York time
    assert [text_of(row.xpath(f"td[@class='{c}']")[0]) for c in ("priority", "state", "holder")] == \
        ["50", "Ready", "bob"]
    open_row = html.xpath(f"//tr[@data-task-id='{world.tasks['enc-open']}']")[0]
    assert text_of(open_row.xpath("td[@class='holder']")[0]) == "open to care-coordinator"


@pytest.mark.parametrize(("sort", "expected"), [
    ("due", ["enc-open", "enc-mine", "enc-hold", "enc-undated"]),  # undated last, oldest first among them
    ("priority", ["enc-open", "enc-mine", "enc-hold", "enc-undated"]),  # 80, 50 due in 3 days, 50 undated, 30
    ("age", ["enc-mine", "enc-open", "enc-hold", "enc-undated"]),
])
def test_sorts(web: Any, world: World, engine: CarePath, sort: str, expected: list[str]) -> None:
    browser = signed_in(web, "alice")
    assert _keys(browser.get(f"/app/worklist?sort={sort}")) == expected


def test_priority_puts_undated_last_within_a_priority(web: Any, world: World, engine: CarePath) -> None:
    set_priority(engine, SYSTEM, world.tasks["enc-mine"], 80)  # now 80 like enc-open, and due later
    set_priority(engine, SYSTEM, world.tasks["enc-hold"], 80)  # 80 and undated: after both
    browser = signed_in(web, "alice")
    assert _keys(browser.get("/app/worklist?sort=priority")) == ["enc-open", "enc-mine", "enc-hold", "enc-undated"]
    assert _keys(browser.get("/app/worklist?sort=due")) == ["enc-open", "enc-mine", "enc-hold", "enc-undated"]


def test_search_by_patient_or_episode_is_posted_kept_and_cleared(web: Any, world: World) -> None:
    browser = signed_in(web, "alice")
    found = browser.submit("/app/worklist", "/app/worklist/search", q=" pat-open ")
    assert (found.status_code, found.headers["location"]) == (303, "/app/worklist")  # the id is not in the URL
    assert _keys(browser.get("/app/worklist")) == ["enc-open"]
    assert page(browser.get("/app/worklist")).xpath("//input[@id='wl-q']/@value") == ["pat-open"]
    browser.submit("/app/worklist", "/app/worklist/search", q="enc-mine")
    assert _keys(browser.get("/app/worklist")) == ["enc-mine"]
    assert _keys(browser.get("/app/worklist?view=overdue")) == []  # the search narrows every view
    browser.submit("/app/worklist", "/app/worklist/search", q="enc-pharm")
    assert _keys(browser.get("/app/worklist?view=teams")) == []  # another team's episode is not found
    browser.submit("/app/worklist", "/app/worklist/search", clear="1")
    assert _keys(browser.get("/app/worklist?view=mine")) == EXPECTED["mine"]


def test_a_search_in_a_link_is_kept_and_taken_out_of_the_address(web: Any, world: World) -> None:
    browser = signed_in(web, "alice")
    response = browser.get("/app/worklist?view=teams&q=enc-bob")
    assert (response.status_code, response.headers["location"]) == (303, "/app/worklist?view=teams&sort=due")
    assert _keys(browser.get(response.headers["location"])) == ["enc-bob"]


def test_the_choice_is_kept_on_the_server_across_sign_ins_until_reset(web: Any, world: World) -> None:
    first = signed_in(web, "alice")
    assert _keys(first.get("/app/worklist?view=teams&sort=age")) == \
        ["enc-mine", "enc-open", "enc-bob", "enc-hold", "enc-undated"]
    first.submit("/app/worklist", "/signout")
    second = signed_in(web, "alice")  # another browser, a new session
    html = page(second.get("/app/worklist"))
    assert html.xpath("//a[@aria-current='page']/@href") == ["/app/worklist?view=teams"]
    assert html.xpath("//select[@id='wl-sort']/option[@selected]/@value") == ["age"]
    assert page(signed_in(web, "bob").get("/app/worklist")).xpath("//a[@aria-current='page']/@href") == \
        ["/app/worklist?view=mine-and-teams"]  # Bob's worklist is his own
    reset = second.submit("/app/worklist", "/app/worklist/reset")
    assert reset.headers["location"] == "/app/worklist"
    assert _keys(second.get("/app/worklist")) == EXPECTED["mine-and-teams"]


@pytest.mark.parametrize("query", ["view=everything", "sort=colour", "view=mine&sort=%3Cscript%3E"])
def test_a_bad_view_or_sort_is_a_page_saying_so_and_keeps_the_saved_choice(web: Any, world: World,
                                                                           query: str) -> None:
    browser = signed_in(web, "alice")
    browser.get("/app/worklist?view=overdue")
    response = browser.get(f"/app/worklist?{query}")
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    html = page(response)
    summary = text_of(html.xpath("//*[@role='alert']")[0])
    assert "choose one of" in summary and "<script>" not in response.text
    assert _keys(response) == EXPECTED["overdue"]  # the saved view, still shown
    assert _keys(browser.get("/app/worklist")) == EXPECTED["overdue"]  # and still saved


@pytest.mark.parametrize("query", ["page=0", "page=21", "page=x", f"view={'x' * 41}", f"q={'x' * 256}"])
def test_out_of_bounds_values_are_4xx_pages(web: Any, world: World, query: str) -> None:
    response = signed_in(web, "alice").get(f"/app/worklist?{query}")
    assert 400 <= response.status_code < 500 and response.headers["content-type"].startswith("text/html")


def test_a_too_long_search_is_refused_at_its_field(web: Any, world: World) -> None:
    browser = signed_in(web, "alice")
    response = browser.submit("/app/worklist", "/app/worklist/search", q="x" * 256)
    assert response.status_code == 422
    field = page(response).xpath("//input[@id='wl-q']")[0]
    assert field.get("aria-invalid") == "true" and "wl-q-error" in field.get("aria-describedby")
    assert page(response).xpath("//*[@role='alert']//a/@href") == ["#wl-q"]


def _cursor(response: Any) -> str:
    return str(page(response).xpath("//input[@id='worklist-cursor']/@value")[0])


def test_polling_answers_204_until_something_shown_changes(web: Any, world: World, engine: CarePath,
                                                           clock: ManualClock) -> None:
    browser = signed_in(web, "alice")
    drawn = browser.get("/app/worklist")
    poller = page(drawn).xpath("//*[@id='worklist-poller']")[0]
    assert poller.get("hx-trigger") == "every 15s" and poller.get("hx-include") == "#worklist-cursor"
    rows_url = poller.get("hx-get")
    # Just drawn: checked once against the rows (unchanged: only the cursor moves on, no table swapped).
    checked = browser.get(f"{rows_url}&cursor={_cursor(drawn)}")
    assert (checked.status_code, checked.headers["hx-reswap"]) == (200, "none")
    assert not page(checked).xpath("//table")
    cursor = page(checked).xpath("//input[@id='worklist-cursor']")[0]
    assert cursor.get("hx-swap-oob") == "true" and not cursor.get("value").endswith(".v")
    quiet = browser.get(f"{rows_url}&cursor={cursor.get('value')}")
    assert quiet.status_code == 204 and quiet.content == b""
    # Another team's task moves: something changed, but nothing this page shows.
    set_priority(engine, SYSTEM, world.tasks["enc-pharm"], 90)
    elsewhere = browser.get(f"{rows_url}&cursor={cursor.get('value')}")
    assert (elsewhere.status_code, elsewhere.headers["hx-reswap"]) == (200, "none")
    assert "enc-pharm" not in elsewhere.text
    # Work arrives for her team: the results come back, announced politely.
    clock.advance(minutes=1)
    new_task = start_instance(engine, SYSTEM, "fu", business_key="enc-new", patient_id="pat-new").open_tasks[0].id
    moved = browser.get(f"{rows_url}&cursor={_cursor(elsewhere)}")
    assert moved.status_code == 200 and "hx-reswap" not in moved.headers
    html = page(moved)
    assert html.xpath(f"//tr[@data-task-id='{new_task}']")
    assert html.xpath("//*[@id='worklist-status']/@hx-swap-oob") == ["innerHTML"]
    assert text_of(html.xpath("//*[@id='worklist-status']")[0]).startswith("Worklist updated")
    assert "enc-pharm" not in moved.text


def test_a_malformed_cursor_gets_the_rows_and_a_signed_out_poll_goes_to_sign_in(web: Any, world: World) -> None:
    browser = signed_in(web, "alice")
    assert _keys(browser.get("/app/worklist/rows?cursor=nonsense")) == EXPECTED["mine-and-teams"]
    browser.submit("/app/worklist", "/signout")
    signed_out = browser.get("/app/worklist/rows?cursor=1.0123456789abcdef")
    assert (signed_out.status_code, signed_out.headers["hx-redirect"]) == (204, "/signin")


def test_polling_is_not_activity_and_does_not_hold_off_the_automatic_logoff(web: Any, world: World,
                                                                            engine: CarePath,
                                                                            clock: ManualClock) -> None:
    browser = signed_in(web, "alice")
    cursor = _cursor(browser.get("/app/worklist"))
    with engine.db.read() as session:
        seen = session.scalars(select(WebSession.last_seen_at)).one()
    clock.advance(minutes=5)
    assert browser.get(f"/app/worklist/rows?cursor={cursor}").status_code == 200
    with engine.db.read() as session:
        assert session.scalars(select(WebSession.last_seen_at)).one() == seen
    clock.advance(minutes=11)  # 16 minutes without the user doing anything: signed out
    assert browser.get(f"/app/worklist/rows?cursor={cursor}").headers["hx-redirect"] == "/signin"


def test_a_full_page_stays_light(web: Any, engine: CarePath, clock: ManualClock) -> None:
    """A page of 50 rows with long names is bounded, and with its style sheets and scripts stays under 100 KB."""
    web_user(engine, "alice", "coordinator", "care-coordinator")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", d.linear_user_tasks(
        "fu", "Call the patient about the follow-up visit", lane="Care Coordinator").encode())])
    for n in range(55):
        start_instance(engine, SYSTEM, "fu", business_key=f"encounter-2026-{n:06d}", patient_id=f"MRN-{n:09d}")
    response = signed_in(web, "alice").get("/app/worklist")
    assert len(page(response).xpath("//tbody/tr")) == 50
    assert page(response).xpath("//a[@rel='next']/@href") == ["/app/worklist?page=2"]
    html_bytes = len(response.content)
    # Every style sheet and script the page loads, as sent to a browser (static files are gzip-compressed).
    browser = signed_in(web, "alice")
    assets = [browser.client.get(url, headers={"Accept-Encoding": "gzip"})
              for url in page(response).xpath("//link[@rel='stylesheet']/@href | //script/@src")]
    assert len(assets) >= 4 and all(a.status_code == 200 for a in assets)
    assert any(a.headers.get("content-encoding") == "gzip" for a in assets)
    sent = sum(a.num_bytes_downloaded for a in assets)
    assert html_bytes < 40_000, html_bytes
    assert html_bytes + sent < 100_000, html_bytes + sent


def test_migration_0016_adds_the_settings_and_goes_back(tmp_path: Any) -> None:
    from carepath.engine.persistence import migrate
    from carepath.engine.persistence.database import Database
    from carepath.engine.usecases.worklist_settings import WorklistChoice, save_worklist_choice, worklist_choice

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db.engine, "0015")
        engine = CarePath(db, ManualClock())
        web_user(engine, "alice", "coordinator", "care-coordinator")  # a user from before the revision
        migrate.upgrade(db.engine)
        assert worklist_choice(engine, ALICE) == WorklistChoice()  # never chose: the default
        save_worklist_choice(engine, ALICE, WorklistChoice("overdue", "age"))
        assert worklist_choice(engine, ALICE) == WorklistChoice("overdue", "age")
        migrate.downgrade(db.engine, "0015")
        migrate.upgrade(db.engine)
        assert worklist_choice(engine, ALICE) == WorklistChoice()
    finally:
        db.dispose()


def test_two_tabs_saving_the_first_choice_at_once_both_succeed(engine: CarePath,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The second insert of the user's row fails on its key; the save then updates the row the first made."""
    from sqlalchemy.exc import IntegrityError

    from carepath.engine.usecases import worklist_settings as settings
    from carepath.engine.usecases.worklist_settings import WorklistChoice, save_worklist_choice, worklist_choice

    web_user(engine, "alice", "coordinator", "care-coordinator")
    real_store, calls = settings._store, []

    def racing(app: CarePath, principal: Principal, choice: WorklistChoice) -> None:
        calls.append(choice)
        if len(calls) == 1:  # the other tab wins the insert
            real_store(app, principal, WorklistChoice("mine", "age"))
            raise IntegrityError("INSERT INTO worklist_settings", {}, Exception("duplicate key"))
        real_store(app, principal, choice)

    monkeypatch.setattr(settings, "_store", racing)
    assert save_worklist_choice(engine, ALICE, WorklistChoice("overdue", "priority")).view == "overdue"
    assert worklist_choice(engine, ALICE) == WorklistChoice("overdue", "priority") and len(calls) == 2
