"""The task page and every change to a task from the web app (api/web/tasks.py, forms.py, start.py): the
form drawn from the task's JSON Schema, refused values shown at their fields and kept, each action through
its form and seen by the engine, exactly the engine's allowed actions offered, one read recorded per page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.api.web.tasks import SAID, SMALL_ACTIONS
from carepath.engine.application import CarePath
from carepath.engine.audit import RECORD_VIEWED
from carepath.engine.bounds import MAX_COMMENT_CHARS
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.persistence.tables import Event
from carepath.engine.queries import task_comments, visible_task
from carepath.engine.usecases.instances import cancel_instance, get_instance_view
from carepath.engine.usecases.tasks import set_due_date
from tests.support.task_pathway import KEY, deploy_call_pathway, start_call
from tests.support.web import Browser, page, signed_in, text_of, web_user

VALID = {"reached": "true", "interpreter": "true", "outcome": "booked", "clinic": "clinic-C",
         "visit_date": "2026-03-05", "call_back_at": "2026-03-04T09:30", "attempts": "2", "weight": "71.5",
         "provider": "Dr Adams",
         "call_notes": "Booked for Thursday"}


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@pytest.fixture
def task_id(engine: CarePath) -> str:
    deploy_call_pathway(engine)
    return start_call(engine, "enc-1", "pat-1")


def _signed_in(web: Any, engine: CarePath, name: str, role: str = "coordinator",
               *groups: str) -> Browser:
    web_user(engine, name, role, *(groups or ("care-coordinator",)))
    return signed_in(web, name)


def _task(engine: CarePath, task_id: str) -> Any:
    with engine.db.read() as session:
        return visible_task(session, task_id, None)


def _reads(engine: CarePath, task_id: str) -> int:
    with engine.db.read() as session:
        return len(session.scalars(select(Event).where(Event.type == RECORD_VIEWED, Event.task_id == task_id)).all())


def _save_draft(browser: Browser, task_id: str, **fields: str) -> Any:
    """The "Save draft" button: the task form's fields posted to its formaction."""
    form = page(browser.get(f"/app/tasks/{task_id}")).xpath('//form[@id="task-form"]')[0]
    data = {field.name: field.value or "" for field in form.inputs if field.name}
    return browser.client.post(form.xpath(".//button/@formaction")[0], data={**data, **fields})


def _form_input(doc: Any, name: str) -> Any:
    found = doc.xpath(f'//form[@id="task-form"]//*[@name="{name}"]')
    assert found, f"no field {name}"
    return found


def test_the_form_has_a_labelled_field_of_the_right_kind_for_each_type(web: Any, engine: CarePath,
                                                                       task_id: str) -> None:
    browser = _signed_in(web, engine, "sam")
    doc = page(browser.get(f"/app/tasks/{task_id}"))
    kinds = {name: (el := _form_input(doc, name)[0]).tag + (f":{el.get('type')}" if el.tag == "input" else "")
             for name in ("reached", "interpreter", "outcome", "clinic", "visit_date", "call_back_at", "attempts",
                          "weight", "provider", "call_notes")}
    assert kinds == {"reached": "input:radio", "interpreter": "input:checkbox", "outcome": "input:radio",
                     "clinic": "select",
                     "visit_date": "input:date", "call_back_at": "input:datetime-local",
                     "attempts": "input:number", "weight": "input:number", "provider": "input:text",
                     "call_notes": "textarea"}
    assert _form_input(doc, "attempts")[0].get("step") == "1" and _form_input(doc, "attempts")[0].get("min") == "0"
    assert _form_input(doc, "weight")[0].get("step") == "any"
    assert [o.get("value") for o in _form_input(doc, "outcome")] == ["booked", "declined", "unreachable"]
    # A required yes/no question is two radios (an answer given); an optional one a checkbox.
    assert [text_of(label) for label in doc.xpath('//fieldset[@id="field-reached"]//label')] == ["Yes", "No"]
    assert [text_of(o) for o in doc.xpath('//select[@name="clinic"]/option')][1:] == [
        "Clinic A", "Clinic B", "Clinic C", "Clinic D", "Clinic E"]
    # Every input has a label; the required ones say so; help text is tied to its field.
    for el in doc.xpath('//form[@id="task-form"]//input[@type!="hidden"] | //form[@id="task-form"]//select'
                        ' | //form[@id="task-form"]//textarea'):
        assert doc.xpath(f'//label[@for="{el.get("id")}"]'), el.get("name")
    assert "(required)" in text_of(doc.xpath('//label[@for="field-visit_date"]')[0])
    assert "(required)" not in text_of(doc.xpath('//label[@for="field-provider"]')[0])
    assert "(required)" in text_of(doc.xpath('//fieldset[@id="field-outcome"]/legend')[0])
    clinic = doc.xpath('//select[@name="clinic"]')[0]
    assert text_of(doc.xpath(f'//*[@id="{clinic.get("aria-describedby")}"]')[0]) == "Where the visit is booked"
    # What to do, for whom, by when.
    assert text_of(doc.xpath("//h1")[0]) == "Call patient"
    assert "Phone the patient" in text_of(doc.xpath('//div[@class="documentation"]')[0])
    facts = text_of(doc.xpath('//dl[@class="facts"]')[0])
    assert "pat-1" in facts and "enc-1" in facts and f"{KEY}, version 1" in facts and "due tomorrow" in facts
    assert engine.time_context().tz.key in facts
    assert doc.xpath(f'//a[@href="/app/episodes/{_task(engine, task_id).instance_id}"]')
    assert doc.xpath('//img[contains(@src, "/diagram.svg")]/@alt')[0]
    # The episode's start data by the start form's titles, in words.
    start = doc.xpath('//dl[contains(@class, "start-data")]')[0]
    assert dict(zip(start.xpath("dt/text()"), start.xpath("dd/text()"), strict=True)) == {
        "Date of the ED visit": "2026-03-02", "High-risk chronic conditions": "1"}


def test_refused_values_are_shown_at_their_fields_and_everything_typed_is_kept(web: Any, engine: CarePath,
                                                                             task_id: str) -> None:
    browser = _signed_in(web, engine, "sam")
    typed = {**VALID, "attempts": "two", "visit_date": "", "provider": "Dr <b>Bold</b>"}
    refused = browser.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/complete", **typed)
    assert refused.status_code == 422
    doc = page(refused)
    summary = doc.xpath('//div[@role="alert"]')[0]
    assert {a.get("href") for a in summary.xpath(".//a")} == {"#field-attempts", "#field-visit_date"}
    for name in ("attempts", "visit_date"):
        field = doc.xpath(f'//*[@id="field-{name}"]')[0]
        assert field.get("aria-invalid") == "true"
        error = doc.xpath(f'//*[@id="field-{name}-error"]')[0]
        assert f"field-{name}-error" in field.get("aria-describedby").split()
    assert "whole number" in text_of(doc.xpath('//*[@id="field-attempts-error"]')[0])
    assert "required" in text_of(error)
    assert doc.xpath('//input[@name="attempts"]/@value') == ["two"]
    assert doc.xpath('//input[@name="provider"]/@value') == ["Dr <b>Bold</b>"]
    assert doc.xpath('//input[@name="weight"]/@value') == ["71.5"]
    assert doc.xpath('//input[@name="reached"][@checked]/@value') == ["true"]
    assert doc.xpath('//input[@name="interpreter"]/@checked') == ["checked"]
    assert doc.xpath('//input[@name="outcome"][@checked]/@value') == ["booked"]
    assert doc.xpath('//select[@name="clinic"]/option[@selected]/@value') == ["clinic-C"]
    assert text_of(doc.xpath('//textarea[@name="call_notes"]')[0]) == "Booked for Thursday"
    assert _task(engine, task_id).state == "ready"  # nothing was completed


def test_the_engine_validation_refuses_at_the_field(web: Any, engine: CarePath, task_id: str) -> None:
    browser = _signed_in(web, engine, "sam")
    refused = browser.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/complete",
                             **{**VALID, "attempts": "-1"})
    assert refused.status_code == 422
    doc = page(refused)
    assert doc.xpath('//input[@name="attempts"]/@aria-invalid') == ["true"]
    assert "minimum" in text_of(doc.xpath('//*[@id="field-attempts-error"]')[0])
    assert doc.xpath('//input[@name="attempts"]/@value') == ["-1"]
    unanswered = {k: v for k, v in VALID.items() if k != "reached"}
    refused = browser.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/complete", **unanswered)
    assert refused.status_code == 422  # a required yes/no left unanswered is not taken as "no"
    question = page(refused).xpath('//fieldset[@id="field-reached"]')[0]
    assert question.get("aria-invalid") == "true" and "required" in text_of(question)


def test_completing_types_the_values_and_offers_the_next_task(web: Any, engine: CarePath,
                                                             task_id: str) -> None:
    other = start_call(engine, "enc-2", "pat-2")
    browser = _signed_in(web, engine, "sam")
    done = browser.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/complete",
                          **{**VALID, "interpreter": ""})
    assert done.status_code == 303 and done.headers["location"] == f"/app/tasks/{task_id}/done"
    task = _task(engine, task_id)
    assert task.state == "completed" and task.completed_by == "sam"
    data = get_instance_view(engine, task.instance_id).data
    assert data["reached"] is True and data["interpreter"] is False and data["attempts"] == 2 and data["weight"] == 71.5
    assert data["clinic"] == "clinic-C" and data["visit_date"] == "2026-03-05"
    assert data["call_back_at"].startswith("2026-03-04T09:30:00")
    with engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == RECORD_VIEWED,
                                                    Event.instance_id == task.instance_id)).all()
    doc = page(browser.get(done.headers["location"]))
    with engine.db.read() as session:
        after = session.scalars(select(Event).where(Event.type == RECORD_VIEWED,
                                                    Event.instance_id == task.instance_id)).all()
    assert len(after) == len(reads) + 1  # the done page shows the episode: one read
    next_link = doc.xpath('//a[@id="next-task"]')[0]
    assert next_link.get("autofocus") is not None and next_link.get("href") == f"/app/tasks/{other}"
    assert "Review the call" in text_of(doc.xpath("//section")[0])  # the episode moved on


def test_each_action_goes_through_its_form_and_the_engine_sees_it(web: Any, engine: CarePath,
                                                                 task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    web_user(engine, "kim", "coordinator", "care-coordinator")
    url = f"/app/tasks/{task_id}"
    assert sam.submit(url, f"{url}/claim").status_code == 303
    assert _task(engine, task_id).assignee == "sam"
    assert sam.submit(url, f"{url}/comment", text="left voicemail").status_code == 303
    with engine.db.read() as session:
        assert [c["text"] for c in task_comments(session, task_id)] == ["left voicemail"]
    assert sam.submit(url, f"{url}/hold", reason="patient calls back").status_code == 303
    assert _task(engine, task_id).state == "on-hold"
    assert sam.submit(url, f"{url}/resume", reason="called back").status_code == 303
    assert _task(engine, task_id).state == "ready"
    delegate_form = page(sam.get(url)).xpath(f'//form[@action="{url}/delegate"]//select/option/@value')
    assert delegate_form == ["", "kim"]  # colleagues who may work it, not the holder
    assert sam.submit(url, f"{url}/delegate", to="kim").status_code == 303
    assert (_task(engine, task_id).assignee, _task(engine, task_id).owner) == ("kim", "sam")
    kim = Browser(web)
    kim.sign_in("kim")
    assert kim.submit(url, f"{url}/resolve").status_code == 303
    assert _task(engine, task_id).assignee == "sam"
    assert sam.submit(url, f"{url}/unclaim").status_code == 303
    assert _task(engine, task_id).assignee is None
    # A supervisor: assign, priority, due date with a reason.
    boss = _signed_in(web, engine, "bea", "supervisor", "care-coordinator")
    assert boss.submit(url, f"{url}/assign", assignee="kim").status_code == 303
    assert _task(engine, task_id).assignee == "kim"
    assert boss.submit(url, f"{url}/priority", priority="80").status_code == 303
    assert _task(engine, task_id).priority == 80
    moved = boss.submit(url, f"{url}/due-date", due="2030-01-02T10:00", reason="patient away",
                        back="/app/worklist")
    assert moved.status_code == 303 and moved.headers["location"] == "/app/worklist"
    due = _task(engine, task_id).due_date.astimezone(engine.time_context().tz)
    assert (due.year, due.month, due.day, due.hour) == (2030, 1, 2, 10)


def test_a_refused_action_value_is_shown_beside_its_field(web: Any, engine: CarePath, task_id: str) -> None:
    boss = _signed_in(web, engine, "bea", "supervisor", "care-coordinator")
    url = f"/app/tasks/{task_id}"
    refused = boss.submit(url, f"{url}/priority", priority="lots")
    assert refused.status_code == 422
    field = page(refused).xpath('//input[@id="action-set_priority-priority"]')[0]
    assert field.get("aria-invalid") == "true"
    assert "whole number" in text_of(page(refused).xpath(f'//*[@id="{field.get("aria-describedby")}"]')[0])
    assert _task(engine, task_id).priority == 50
    # A new due date without its reason: the error at the reason, the date typed kept.
    undated = boss.submit(url, f"{url}/due-date", due="2030-03-04T09:30", reason="")
    assert undated.status_code == 422
    html = page(undated)
    assert html.xpath('//input[@id="action-set_due_date-due"]/@value') == ["2030-03-04T09:30"]
    assert html.xpath('//input[@id="action-set_due_date-due"]/@aria-invalid') == []
    reason = html.xpath('//input[@id="action-set_due_date-reason"]')[0]
    assert reason.get("aria-invalid") == "true"
    assert "reason" in text_of(html.xpath(f'//*[@id="{reason.get("aria-describedby")}"]')[0])


def _offered(browser: Browser, task_id: str) -> set[str]:
    doc = page(browser.get(f"/app/tasks/{task_id}"))
    actions = {a.rsplit("/", 1)[1] for a in doc.xpath("//form/@action") if a.startswith(f"/app/tasks/{task_id}/")}
    actions |= {a.rsplit("/", 1)[1] for a in doc.xpath("//button/@formaction")}
    return actions


PATHS = {"claim": "claim", "unclaim": "unclaim", "assign": "assign", "delegate": "delegate", "resolve": "resolve",
         "hold": "hold", "resume": "resume", "save_draft": "draft", "complete": "complete", "comment": "comment",
         "set_priority": "priority", "set_due_date": "due-date"}


def test_the_actions_offered_are_exactly_the_engines_allowed_actions(web: Any, engine: CarePath,
                                                                    task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    boss = _signed_in(web, engine, "bea", "supervisor", "care-coordinator")
    for browser, name, role in ((sam, "sam", "coordinator"), (boss, "bea", "supervisor")):
        with engine.db.read() as session:
            who = Principal(name, Role(role), frozenset({"care-coordinator"}))
            allowed = visible_task(session, task_id, None, reader=who).actions
        assert _offered(browser, task_id) == {PATHS[a] for a in allowed}, name
    assert _offered(sam, task_id) >= {"claim", "complete", "draft", "comment", "hold"}
    assert "assign" in _offered(boss, task_id) and "assign" not in _offered(sam, task_id)
    sam.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/claim")
    assert "unclaim" in _offered(sam, task_id) and "claim" not in _offered(sam, task_id)
    outsider = _signed_in(web, engine, "olu", "coordinator", "pharmacy")
    hidden = outsider.get(f"/app/tasks/{task_id}")
    assert hidden.status_code == 404 and "does not exist" in text_of(page(hidden).xpath("//main")[0])
    assert outsider.client.post(f"/app/tasks/{task_id}/claim", data={
        "csrf_token": page(outsider.get("/app/worklist")).xpath('//input[@name="csrf_token"]/@value')[0]
    }).status_code == 404
    assert _task(engine, task_id).assignee == "sam"


def test_a_form_without_its_csrf_token_changes_nothing(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    for action, fields in (("claim", {}), ("complete", VALID), ("comment", {"text": "x"})):
        refused = sam.client.post(f"/app/tasks/{task_id}/{action}", data={**fields, "csrf_token": "forged"})
        assert refused.status_code == 403, action
    task = _task(engine, task_id)
    assert task.assignee is None and task.state == "ready"
    with engine.db.read() as session:
        assert task_comments(session, task_id) == []


def test_a_script_in_a_comment_and_in_form_data_shows_as_text(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    script = '<script>alert("x")</script>'
    url = f"/app/tasks/{task_id}"
    sam.submit(url, f"{url}/comment", text=script)
    _save_draft(sam, task_id, **{**VALID, "provider": script})
    response = sam.get(url)
    doc = page(response)
    assert doc.xpath("//script[contains(., 'alert')]") == []
    assert text_of(doc.xpath('//p[@class="comment-text"]')[0]) == script
    assert doc.xpath('//input[@name="provider"]/@value') == [script]
    assert "&lt;script&gt;" in response.text


def test_one_read_is_recorded_per_page_view(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    before = _reads(engine, task_id)
    sam.get(f"/app/tasks/{task_id}")
    assert _reads(engine, task_id) == before + 1
    sam.get(f"/app/tasks/{task_id}")
    assert _reads(engine, task_id) == before + 2


def test_a_draft_is_kept_as_a_history_entry_and_prefills_the_form(web: Any, engine: CarePath,
                                                                 task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    url = f"/app/tasks/{task_id}"
    # Without JavaScript: the "Save draft" button posts the form to /draft and comes back.
    doc = page(sam.get(url))
    assert doc.xpath('//button[@formaction]/@formaction') == [f"{url}/draft"]
    form = doc.xpath('//form[@id="task-form"]')[0]
    assert form.get("hx-post") == f"{url}/draft" and "change" in form.get("hx-trigger")
    saved = _save_draft(sam, task_id, attempts="3", call_notes="no answer")
    assert saved.status_code == 303 and saved.headers["location"] == url
    assert text_of(page(sam.get(url)).xpath('//*[@id="page-status"][@role="status"]')[0]) == "Draft saved."
    task = _task(engine, task_id)
    assert task.draft == {"attempts": 3, "call_notes": "no answer", "interpreter": False}
    assert task.state == "in-progress" and task.assignee == "sam"
    refilled = page(sam.get(url))
    assert refilled.xpath('//input[@name="attempts"]/@value') == ["3"]
    # With htmx: a status line to announce, and one history entry per save.
    token = refilled.xpath('//input[@name="csrf_token"]/@value')[0]
    answer = sam.client.post(f"{url}/draft", data={"csrf_token": token, "attempts": "4"},
                             headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.text.strip().startswith("Draft saved")
    with engine.db.read() as session:
        saves = session.scalars(select(Event).where(Event.type == "task_draft_saved", Event.task_id == task_id)).all()
    assert len(saves) == 2


def test_a_coordinator_starts_an_episode_with_the_start_form(web: Any, engine: CarePath) -> None:
    deploy_call_pathway(engine)
    lead = _signed_in(web, engine, "lee", "clinical_lead")
    url = f"/app/pathways/{KEY}/start"
    doc = page(lead.get(url))
    assert doc.xpath('//input[@name="ed_visit_date"]/@type') == ["date"]
    assert doc.xpath('//input[@name="conditions"]/@type') == ["number"]
    refused = lead.submit(url, url, **{"episode-business_key": "", "episode-patient_id": "pat-9",
                                       "ed_visit_date": "", "conditions": "many"})
    assert refused.status_code == 422
    bad = page(refused)
    assert {a.get("href") for a in bad.xpath('//div[@role="alert"]//a')} == {
        "#field-conditions", "#field-ed_visit_date"}
    assert bad.xpath('//input[@name="episode-patient_id"]/@value') == ["pat-9"]
    assert bad.xpath('//input[@name="conditions"]/@value') == ["many"]
    no_key = page(lead.submit(url, url, **{"episode-business_key": "", "ed_visit_date": "2026-03-02",
                                           "conditions": "-1"}))
    # Every problem at once: the episode's key and the start data's.
    assert no_key.xpath('//input[@name="episode-business_key"]/@aria-invalid') == ["true"]
    assert text_of(no_key.xpath('//*[@id="field-episode-business_key-error"]')[0]) == "Error: This field is required"
    assert no_key.xpath('//input[@name="conditions"]/@aria-invalid') == ["true"]
    started = lead.submit(url, url, **{"episode-business_key": "enc-9", "episode-patient_id": "pat-9",
                                       "ed_visit_date": "2026-03-02", "conditions": "2"})
    assert started.status_code == 303 and started.headers["location"].startswith("/app/episodes/")
    view = get_instance_view(engine, started.headers["location"].rsplit("/", 1)[1])
    assert (view.business_key, view.patient_id, view.data["conditions"]) == ("enc-9", "pat-9", 2)
    auditor = _signed_in(web, engine, "aud", "auditor")
    assert auditor.get(url).status_code == 403


def test_a_delegated_task_lists_only_colleagues_who_may_work_it(web: Any, engine: CarePath, task_id: str) -> None:
    web_user(engine, "kim", "coordinator", "care-coordinator")
    web_user(engine, "ola", "coordinator", "pharmacy")
    web_user(engine, "aud", "auditor")
    sam = _signed_in(web, engine, "sam")
    sam.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/claim")
    options = page(sam.get(f"/app/tasks/{task_id}")).xpath('//select[@name="to"]/option/@value')
    assert options == ["", "kim"]


def test_a_task_claimed_by_another_meanwhile_keeps_what_was_typed(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    kim = _signed_in(web, engine, "kim")
    url = f"/app/tasks/{task_id}"
    form = page(sam.get(url)).xpath('//form[@id="task-form"]')[0]
    assert kim.submit(url, f"{url}/claim").status_code == 303
    data = {field.name: field.value or "" for field in form.inputs if field.name}
    refused = sam.client.post(f"{url}/complete", data={**data, **VALID})
    assert refused.status_code == 409
    doc = page(refused)
    assert "claimed by kim" in text_of(doc.xpath('//div[@role="alert"]')[0])
    assert doc.xpath('//input[@name="provider"]/@value') == ["Dr Adams"]
    assert _task(engine, task_id).state == "ready"


def test_a_task_without_a_form_is_completed_with_its_button(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    sam.submit(f"/app/tasks/{task_id}", f"/app/tasks/{task_id}/complete", **VALID)
    review = get_instance_view(engine, _task(engine, task_id).instance_id).open_tasks[0]
    doc = page(sam.get(f"/app/tasks/{review.id}"))
    assert text_of(doc.xpath('//h2[@id="form-title"]')[0]) == "Complete the task"
    form = doc.xpath('//form[@id="task-form"]')[0]
    assert [i.get("name") for i in form.xpath(".//input | .//select | .//textarea")] == ["csrf_token"]
    done = sam.submit(f"/app/tasks/{review.id}", f"/app/tasks/{review.id}/complete")
    assert done.status_code == 303
    assert get_instance_view(engine, review.instance_id).status == "completed"
    assert "completed" in text_of(page(sam.get(done.headers["location"])).xpath("//main")[0])


def test_a_comment_over_the_engines_limit_is_refused_at_its_field_with_the_text_kept(
        web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    url = f"/app/tasks/{task_id}"
    [box] = page(sam.get(url)).xpath('//textarea[@name="text"]')
    assert box.get("maxlength") is None and box.get("data-max-chars") == str(MAX_COMMENT_CHARS)  # not cut
    [hint] = page(sam.get(url)).xpath(f'//*[@id="{box.get("aria-describedby")}"]')
    assert text_of(hint) == f"Up to {MAX_COMMENT_CHARS:,} characters."
    long = "left voicemail; " * (MAX_COMMENT_CHARS // 16) + "x"
    refused = sam.submit(url, f"{url}/comment", text=long)
    assert refused.status_code == 422
    doc = page(refused)
    [box] = doc.xpath('//textarea[@name="text"]')
    assert box.text == long and box.get("aria-invalid") == "true"
    error = text_of(doc.xpath('//*[@id="action-comment-text-error"]')[0])
    assert f"at most {MAX_COMMENT_CHARS:,} characters" in error and "shorten it by 1" in error
    assert sam.submit(url, f"{url}/comment", text=long[:-1]).status_code == 303  # exactly the limit is kept
    with engine.db.read() as session:
        assert [c["text"] for c in task_comments(session, task_id)] == [long[:-1]]


def test_a_completed_task_reads_as_a_record_without_a_form_or_due_marks(web: Any, engine: CarePath,
                                                                        task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    url = f"/app/tasks/{task_id}"
    assert page(sam.get(url)).xpath('//form[@id="task-form"]') and page(sam.get(url)).xpath('//*[@class="required"]')
    set_due_date(engine, SYSTEM, task_id, "2026-03-01T09:00", "clinic date")  # long past: overdue when open
    assert sam.submit(url, f"{url}/complete", **VALID).status_code == 303
    doc = page(sam.get(url))  # Back, or a link: the task page again
    # The only form left is the comment's (the engine allows a note on a task in any state).
    assert doc.xpath("//main//form/@action") == [f"{url}/comment"]
    assert not doc.xpath('//*[contains(@class, "required")] | //*[contains(@class, "overdue")]')
    assert not doc.xpath('//*[contains(@class, "due-words")]') and "(required)" not in text_of(doc)
    assert text_of(doc.xpath('//h2[@id="form-title"]')[0]) == "What was recorded"
    recorded = {dd.get("data-field"): text_of(dd) for dd in doc.xpath('//dl[contains(@class, "recorded")]/dd')}
    assert recorded["provider"] == "Dr Adams" and recorded["call_notes"] == "Booked for Thursday"
    assert recorded["interpreter"] == "Yes" and recorded["attempts"] == "2"
    assert text_of(doc.xpath('//dd[@class="ended"]')[0]).startswith("by sam, ")


def test_every_small_action_has_its_status_message() -> None:
    assert set(SAID) == set(SMALL_ACTIONS)


def test_a_cancelled_task_reads_as_ended_with_what_was_saved(web: Any, engine: CarePath, task_id: str) -> None:
    sam = _signed_in(web, engine, "sam")
    url = f"/app/tasks/{task_id}"
    assert _save_draft(sam, task_id, provider="Dr Adams").status_code == 303
    cancel_instance(engine, SYSTEM, _task(engine, task_id).instance_id, "patient moved away")
    doc = page(sam.get(url))
    assert not doc.xpath('//form[@id="task-form"]') and not doc.xpath('//*[contains(@class, "required")]')
    assert text_of(doc.xpath('//h2[@id="form-title"]')[0]) == "What was saved"
    assert text_of(doc.xpath('//dd[@data-field="provider"]')[0]) == "Dr Adams"
    assert text_of(doc.xpath('//dd[@class="ended"]')[0]).startswith("by the pathway, not done")
