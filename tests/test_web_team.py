"""The supervisors' screens (api/web/team.py, api/web/inbox.py): the team dashboard's counts per group and
state, the lists they link to with the rows' quick-action forms, the unrouted queue, the notifications
inbox with what is unread; who may open them (the engine's role rules) and bad query values."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.api.web.cookies import CSRF_FIELD
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.notifications import OutboxChannel
from carepath.engine.persistence.tables import NotificationRecord
from carepath.engine.queries import TaskFilter, list_tasks
from carepath.engine.rules import sees_unrouted
from carepath.engine.team_queries import team_counts
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.tasks import claim_task, hold_task, save_draft, set_due_date
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.web import Browser, page, signed_in, text_of, web_user

PATIENT = '<script>document.title="owned"</script>pat-1'
CAM = Principal("cam", Role.COORDINATOR, frozenset({"care-coordinator"}))
SUE = Principal("sue", Role.SUPERVISOR, frozenset({"care-coordinator", "social-work"}))


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@dataclass
class Team:
    """Tasks of care-coordinator (cc_*), social-work (sw), pharmacy (ph, another supervisor's) and
    dietitian (un: nobody is in that group, so it is unrouted)."""

    cc_free: str  # ready, nobody holds it, due in two days
    cc_late: str  # ready, held by cam, overdue
    cc_draft: str  # in progress (cam saved a draft)
    cc_held: str  # on hold, nobody holds it
    sw: str  # ready, nobody holds it
    ph: str
    un: str


def _task(engine: CarePath, lane: str, key: str, patient: str = "pat-2") -> str:
    xml = d.linear_user_tasks(key, "Call patient", lane=lane)
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{key}.bpmn", xml.encode())])
    started = start_instance(engine, SYSTEM, key, business_key=f"enc-{key}", patient_id=patient)
    [task] = started.open_tasks
    return task.id


def team(engine: CarePath, clock: ManualClock) -> Team:
    web_user(engine, "sue", "supervisor", "care-coordinator", "social-work")
    web_user(engine, "cam", "coordinator", "care-coordinator")
    web_user(engine, "nina", "coordinator", "social-work")
    web_user(engine, "olga", "supervisor", "pharmacy")
    web_user(engine, "pete", "coordinator", "pharmacy")
    found = Team(*(_task(engine, "Care Coordinator", f"cc{i}", PATIENT if i == 0 else "pat-2") for i in range(4)),
                 sw=_task(engine, "Social Work", "sw"), ph=_task(engine, "Pharmacy", "ph"),
                 un=_task(engine, "Dietitian", "un", PATIENT))
    now = clock()
    set_due_date(engine, SYSTEM, found.cc_free, (now + timedelta(days=2)).isoformat(), "clinic date")
    claim_task(engine, CAM, found.cc_late)
    set_due_date(engine, SYSTEM, found.cc_late, (now + timedelta(hours=1)).isoformat(), "urgent")
    save_draft(engine, CAM, found.cc_draft, {})
    hold_task(engine, CAM, found.cc_held, "waiting for the patient")
    set_due_date(engine, SYSTEM, found.ph, (now + timedelta(hours=1)).isoformat(), "urgent")
    clock.advance(hours=2)  # cc_late and ph are overdue now, by the engine's clock
    return found


def _counts(html: Any) -> dict[str, dict[str, str]]:
    out = {}
    for row in html.xpath('//table[contains(@class, "team-counts")]/tbody/tr'):
        cells = {cell.get("class"): text_of(cell.xpath(".//a")[0]).split()[0] for cell in row.xpath("td")
                 if cell.get("class") != "state"}
        cells |= {cell.get("data-state"): text_of(cell.xpath(".//a")[0]).split()[0]
                  for cell in row.xpath('td[@class="state"]')}
        out[row.get("data-group")] = cells
    return out


def _row_ids(html: Any) -> list[str]:
    return html.xpath('//table[contains(@class, "team-tasks")]/tbody/tr/@data-task-id')


def test_the_dashboard_counts_each_supervised_group_exactly(web: Any, engine: CarePath, clock: ManualClock) -> None:
    team(engine, clock)
    html = page(signed_in(web, "sue").get("/app/team"))
    assert _counts(html) == {
        "care-coordinator": {"open": "4", "overdue": "1", "unassigned": "2", "ready": "2", "in-progress": "1",
                             "on-hold": "1"},
        "social-work": {"open": "1", "overdue": "0", "unassigned": "1", "ready": "1", "in-progress": "0",
                        "on-hold": "0"}}  # not pharmacy: sue does not supervise it
    clock.advance(days=3)  # cc_free's due date passes too
    assert _counts(page(signed_in(web, "sue").get("/app/team")))["care-coordinator"]["overdue"] == "2"


def test_an_admin_sees_every_group_with_open_tasks(web: Any, engine: CarePath, clock: ManualClock) -> None:
    tasks = team(engine, clock)
    web_user(engine, "ada", "admin")
    browser = signed_in(web, "ada")
    counts = _counts(page(browser.get("/app/team")))
    assert sorted(counts) == ["care-coordinator", "dietitian", "pharmacy", "social-work"]
    assert counts["pharmacy"]["overdue"] == "1" and counts["dietitian"]["unassigned"] == "1"
    assert _row_ids(page(browser.get("/app/team/tasks?group=pharmacy"))) == [tasks.ph]


def test_each_number_links_to_a_list_of_exactly_those_tasks(web: Any, engine: CarePath, clock: ManualClock) -> None:
    tasks = team(engine, clock)
    browser = signed_in(web, "sue")
    html = page(browser.get("/app/team"))
    expected = {"open": {tasks.cc_free, tasks.cc_late, tasks.cc_draft, tasks.cc_held}, "overdue": {tasks.cc_late},
                "unassigned": {tasks.cc_free, tasks.cc_held}, "ready": {tasks.cc_free, tasks.cc_late},
                "in-progress": {tasks.cc_draft}, "on-hold": {tasks.cc_held}}
    row = html.xpath('//tr[@data-group="care-coordinator"]')[0]
    for cell in row.xpath("td"):
        which = cell.get("data-state") or cell.get("class")
        link = cell.xpath(".//a/@href")[0]
        listed = page(browser.get(link))
        assert set(_row_ids(listed)) == expected[which], which
        assert len(expected[which]) == int(text_of(cell).split()[0])
    assert set(_row_ids(page(browser.get("/app/team/tasks?group=social-work")))) == {tasks.sw}


def test_the_rows_offer_only_the_actions_the_engine_allows_as_forms_to_the_task_routes(
        web: Any, engine: CarePath, clock: ManualClock) -> None:
    tasks = team(engine, clock)
    browser = signed_in(web, "sue")
    listed = "/app/team/tasks?group=care-coordinator"
    html = page(browser.get(listed))
    with engine.db.read() as session:
        allowed = {t.id: set(t.actions) for t in list_tasks(
            session, TaskFilter(state=None, open_only=True, group="care-coordinator"), limit=50, reader=SUE).items}
    routes = {"assign": "assign", "set_priority": "priority", "set_due_date": "due-date"}
    for task_id in _row_ids(html):
        forms = html.xpath(f'//tr[@data-task-id="{task_id}"]//form')
        actions = {form.get("action") for form in forms}
        assert actions == {f"/app/tasks/{task_id}/{routes[a]}" for a in allowed[task_id] if a in routes}
        for form in forms:
            fields = {field.name: field for field in form.inputs if field.name}
            assert form.get("method") == "post" and fields["back"].value == listed and fields[CSRF_FIELD].value
    held = {form.get("action") for form in html.xpath(f'//tr[@data-task-id="{tasks.cc_held}"]//form')}
    assert held == {f"/app/tasks/{tasks.cc_held}/priority", f"/app/tasks/{tasks.cc_held}/due-date"}  # no assign
    [assign] = html.xpath(f'//form[@action="/app/tasks/{tasks.cc_free}/assign"]')
    assert assign.xpath(".//select[@name='assignee']/option/@value") == ["", "cam", "sue"]  # the group's workers
    [due] = html.xpath(f'//form[@action="/app/tasks/{tasks.cc_free}/due-date"]')
    fields = {field.name: field for field in due.inputs if field.name}
    local = (clock() - timedelta(hours=2) + timedelta(days=2)).astimezone(engine.time_context().tz)
    assert fields["due"].value == local.strftime("%Y-%m-%dT%H:%M") and fields["due"].get("type") == "datetime-local"
    assert "reason" in fields and fields["reason"].get("required") is not None
    [priority] = html.xpath(f'//form[@action="/app/tasks/{tasks.cc_free}/priority"]')
    assert priority.xpath(".//input[@name='priority']/@value") == ["50"]
    for control in html.xpath("//form[@method='post']//*[self::select or self::input[not(@type='hidden')]]"):
        assert html.xpath(f'//label[@for="{control.get("id")}"]'), control.get("name")  # every field labelled


def test_a_coordinator_sees_no_action_forms_and_no_team_screens(web: Any, engine: CarePath,
                                                                 clock: ManualClock) -> None:
    team(engine, clock)
    browser = signed_in(web, "cam")
    for path in ("/app/team", "/app/team/unrouted", "/app/team/tasks?group=care-coordinator", "/app/notifications"):
        refused = browser.get(path)
        assert refused.status_code == 403, path
        assert "coordinator" in text_of(page(refused).xpath("//main")[0])
    sue = signed_in(web, "sue")
    other = sue.get("/app/team/tasks?group=pharmacy")  # not one of her teams
    assert other.status_code == 404 and "pharmacy" in text_of(page(other).xpath("//main")[0])


def test_the_unrouted_queue_lists_exactly_the_tasks_nobody_can_pick_up(web: Any, engine: CarePath,
                                                                       clock: ManualClock) -> None:
    tasks = team(engine, clock)
    html = page(signed_in(web, "sue").get("/app/team/unrouted"))
    with engine.db.read() as session:
        api_says = list_tasks(session, TaskFilter(state=None, open_only=True, unrouted=True,
                                                  visible_to=(SUE.name, SUE.groups), sees_unrouted=sees_unrouted(SUE)))
    assert _row_ids(html) == [t.id for t in api_says.items] == [tasks.un]
    [assign] = html.xpath(f'//form[@action="/app/tasks/{tasks.un}/assign"]')
    # Nobody is in its group: every active worker may be given it.
    assert assign.xpath(".//option/@value") == ["", "cam", "nina", "olga", "pete", "sue"]
    assert assign.xpath(".//input[@name='back']/@value") == ["/app/team/unrouted"]
    web_user(engine, "dina", "coordinator", "dietitian")  # the group is staffed now: routed
    assert _row_ids(page(signed_in(web, "sue").get("/app/team/unrouted"))) == []


def test_a_script_in_a_patient_id_shows_as_text(web: Any, engine: CarePath, clock: ManualClock) -> None:
    tasks = team(engine, clock)
    browser = signed_in(web, "sue")
    for path, task_id in (("/app/team/tasks?group=care-coordinator", tasks.cc_free), ("/app/team/unrouted", tasks.un)):
        html = page(browser.get(path))
        [cell] = html.xpath(f'//tr[@data-task-id="{task_id}"]/td[@class="patient"]')
        assert text_of(cell) == PATIENT
        assert [s.get("src") for s in html.xpath("//script")] == [s.get("src") for s in html.xpath("//head/script")]


@pytest.mark.parametrize("path", [
    "/app/team/tasks", "/app/team/tasks?group=care-coordinator&state=completed",
    "/app/team/tasks?group=care-coordinator&overdue=maybe", "/app/team/tasks?group=care-coordinator&offset=-1",
    "/app/team/tasks?group=" + "x" * 201, "/app/team/tasks?group=a%00b", "/app/team/unrouted?offset=abc",
    "/app/notifications?show=everything", "/app/notifications?offset=100001"])
def test_bad_query_values_answer_a_page_naming_the_problem(web: Any, engine: CarePath, clock: ManualClock,
                                                          path: str) -> None:
    web_user(engine, "sue", "supervisor", "care-coordinator")
    answer = signed_in(web, "sue").get(path)
    assert 400 <= answer.status_code < 500 and answer.headers["content-type"].startswith("text/html")
    assert page(answer).xpath('//*[@role="alert"]')


def _alerts(engine: CarePath, clock: ManualClock) -> Team:
    tasks = team(engine, clock)
    assert fire_due_timers(engine) > 0  # reminders and the overdue escalations of cc_late and ph
    return tasks


def _inbox(browser: Browser, path: str = "/app/notifications") -> tuple[Any, dict[str, bool]]:
    html = page(browser.get(path))
    items = {li.get("data-notification-id"): "unread" in li.get("class")
             for li in html.xpath("//li[@data-notification-id]")}
    return html, items


def test_the_inbox_shows_what_is_unread_and_marks_it_read_only_when_asked(web: Any, engine: CarePath,
                                                                          clock: ManualClock) -> None:
    tasks = _alerts(engine, clock)
    browser = signed_in(web, "sue")
    html, items = _inbox(browser)
    assert len(items) == 2 and all(items.values())  # cc_late's reminder and escalation; ph's are not hers
    assert text_of(html.xpath('//*[contains(@class, "unread-count")]')[0]) == "2"
    links = set(html.xpath("//li[@data-notification-id]//h2/a/@href"))
    assert links == {f"/app/tasks/{tasks.cc_late}"}
    assert _inbox(browser)[1] == items  # opening it again marked nothing
    first = sorted(items)[0]
    done = browser.submit("/app/notifications", f"/app/notifications/{first}/read")
    assert done.status_code == 303 and done.headers["location"] == "/app/notifications"
    html, unread = _inbox(browser)
    assert set(unread) == set(items) - {first}
    assert text_of(html.xpath('//*[contains(@class, "unread-count")]')[0]) == "1"
    _, everything = _inbox(browser, "/app/notifications?show=all")
    assert everything == {first: False, **unread}
    assert text_of(page(browser.get("/app/team")).xpath('//*[contains(@class, "unread-count")]')[0]) == "1"
    browser.submit("/app/notifications", "/app/notifications/read")
    assert _inbox(browser)[1] == {} and all(not v for v in _inbox(browser, "/app/notifications?show=all")[1].values())


def test_an_alert_title_reads_in_the_care_settings_zone_even_when_stored_with_a_utc_time(
        web: Any, engine: CarePath, clock: ManualClock) -> None:
    _alerts(engine, clock)
    with engine.db.write_sessions() as session, session.begin():  # alerts made before titles were in the zone
        rows = list(session.scalars(select(NotificationRecord)))
        for row in rows:
            row.subject = f"Overdue: '{row.payload['task_name']}' was due {row.payload['due_date']}"
    html, _ = _inbox(signed_in(web, "sue"), "/app/notifications?show=all")
    titles = [text_of(h) for h in html.xpath("//li[@data-notification-id]//h2/a")]
    due = datetime.fromisoformat(rows[0].payload["due_date"]).astimezone(ZoneInfo("America/New_York"))
    assert titles and all("+00:00" not in t and "UTC" not in t for t in titles)
    assert any(f"{due:%d %b %Y %H:%M} (America/New_York)" in t for t in titles)


def test_another_teams_notification_is_not_found_and_stays_unread_for_its_team(web: Any, engine: CarePath,
                                                                                clock: ManualClock) -> None:
    _alerts(engine, clock)
    olga = signed_in(web, "olga")
    _, theirs = _inbox(olga)
    assert theirs and all(theirs.values())
    sue = signed_in(web, "sue")
    for notification_id in theirs:
        html = page(sue.get("/app/notifications"))
        token = html.xpath(f"//input[@name='{CSRF_FIELD}']/@value")[0]
        refused = sue.client.post(f"/app/notifications/{notification_id}/read", data={CSRF_FIELD: token})
        assert refused.status_code == 404
    sue.submit("/app/notifications", "/app/notifications/read")  # "all" means all of hers
    assert _inbox(olga)[1] == theirs


def test_a_mark_read_form_without_its_values_is_refused_as_a_page(web: Any, engine: CarePath,
                                                                  clock: ManualClock) -> None:
    _alerts(engine, clock)
    browser = signed_in(web, "sue")
    token = page(browser.get("/app/notifications")).xpath(f"//input[@name='{CSRF_FIELD}']/@value")[0]
    for up_to in ("", "abc", "²", "0", "9" * 30):
        bad = browser.client.post("/app/notifications/read", data={CSRF_FIELD: token, "up_to": up_to})
        assert bad.status_code == 422 and "up_to" in text_of(page(bad).xpath("//main")[0]), up_to
    too_big = browser.client.post("/app/notifications/99999999999999999999/read", data={CSRF_FIELD: token})
    assert too_big.status_code == 404
    assert browser.client.post("/app/notifications/1/read", data={}).status_code == 403  # no CSRF token
    outside = browser.client.post(f"/app/notifications/{sorted(_inbox(browser)[1])[0]}/read",
                                  data={CSRF_FIELD: token, "back": "https://evil.example/"})
    assert outside.headers["location"] == "/app/notifications"


class _Pager:
    """A second delivery channel: every alert gets a row for it too."""

    name = "pager"

    def deliver(self, notification: Any) -> None:
        pass


def test_an_alert_delivered_on_two_channels_is_one_item_of_the_inbox(web: Any, engine: CarePath,
                                                                     clock: ManualClock) -> None:
    engine.channels = [OutboxChannel(), _Pager()]
    _alerts(engine, clock)
    browser = signed_in(web, "sue")
    html, items = _inbox(browser)
    assert len(items) == 2 and text_of(html.xpath('//*[contains(@class, "unread-count")]')[0]) == "2"
    browser.submit("/app/notifications", f"/app/notifications/{sorted(items)[0]}/read")
    html, unread = _inbox(browser)
    assert len(unread) == 1 and text_of(html.xpath('//*[contains(@class, "unread-count")]')[0]) == "1"
    assert text_of(page(browser.get("/app/team")).xpath('//*[contains(@class, "unread-count")]')[0]) == "1"


def test_the_counts_of_several_groups_come_from_one_grouped_query(engine: CarePath, clock: ManualClock) -> None:
    """A task offered to two groups counts in both; each group's numbers are exactly its list's."""
    deploy_pathways(engine, SYSTEM, [SourceFile("cohort.bpmn", d.team_call().encode())])
    ids = [start_instance(engine, SYSTEM, "cohort", business_key=f"enc-{n}", data={"team": team}).open_tasks[0].id
           for n, team in enumerate(["alpha", "beta", "alpha,beta", "gamma", "alpha"])]
    set_due_date(engine, SYSTEM, ids[2], (clock() + timedelta(hours=1)).isoformat(), "soon")
    hold_task(engine, SYSTEM, ids[3], "waiting")
    claim_task(engine, Principal("al", Role.COORDINATOR, frozenset({"alpha"})), ids[4])
    clock.advance(hours=2)
    with engine.db.read() as session:
        counts = {c.group: (c.states, c.open, c.overdue, c.unassigned)
                  for c in team_counts(session, None, clock())}
        chosen = team_counts(session, frozenset({"beta", "nobody-here"}), clock())
    assert counts == {"alpha": ({"ready": 3}, 3, 1, 2), "beta": ({"ready": 2}, 2, 1, 2),
                      "gamma": ({"on-hold": 1}, 1, 0, 1)}
    assert [(c.group, c.open, c.overdue) for c in chosen] == [("beta", 2, 1), ("nobody-here", 0, 0)]


def _said(html: Any) -> str:
    [status] = html.xpath('//*[@id="page-status"][@role="status"]')
    return text_of(status)


def test_each_quick_action_says_what_it_did_once_back_on_the_list(web: Any, engine: CarePath,
                                                                   clock: ManualClock) -> None:
    tasks = team(engine, clock)
    browser = signed_in(web, "sue")
    listed = "/app/team/tasks?group=care-coordinator"
    assert _said(page(browser.get(listed))) == ""  # the region is there, empty
    assigned = browser.submit(listed, f"/app/tasks/{tasks.cc_free}/assign", assignee="cam")
    assert (assigned.status_code, assigned.headers["location"]) == (303, listed)
    assert _said(page(browser.get(listed))) == "Assigned 'Call patient' to cam."
    assert _said(page(browser.get(listed))) == ""  # said once: a reload does not say it again
    browser.submit(listed, f"/app/tasks/{tasks.cc_free}/due-date", due="2026-12-12T10:00", reason="clinic moved")
    assert _said(page(browser.get(listed))) == "Due date of 'Call patient' moved to 12 Dec 10:00."
    browser.submit(listed, f"/app/tasks/{tasks.cc_free}/priority", priority="70")
    assert _said(page(browser.get(listed))) == "Priority of 'Call patient' set to 70."
    refused = browser.submit(listed, f"/app/tasks/{tasks.cc_free}/priority", priority="700")
    assert refused.status_code == 422 and _said(page(browser.get(listed))) == ""  # nothing done, nothing said


def test_a_status_message_another_session_set_or_altered_is_not_shown(web: Any, engine: CarePath,
                                                                     clock: ManualClock) -> None:
    tasks = team(engine, clock)
    browser = signed_in(web, "sue")
    listed = "/app/team/tasks?group=care-coordinator"
    browser.submit(listed, f"/app/tasks/{tasks.cc_free}/priority", priority="60")
    signed = browser.client.cookies["carepath_status"]
    text, signature = signed.split(".")
    forged = base64.urlsafe_b64encode(b"<b>Call 0800 FAKE</b>").decode()
    browser.client.cookies.set("carepath_status", f"{forged}.{signature}")
    assert _said(page(browser.get(listed))) == ""
    other = signed_in(web, "sue")  # another session of the same user
    other.client.cookies.set("carepath_status", signed)
    assert _said(page(other.get(listed))) == ""
