"""The web app's sign-in and first page, through the ASGI app with the HTML parsed: sessions in the
database, cookies for the web routes only, CSRF on every form, throttled failures, idle logoff."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from carepath.api.app import create_app
from carepath.api.cli import main
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.audit import AuditRecord
from carepath.engine.audit_fhir import fhir_audit_event
from carepath.engine.clock import ManualClock
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, User, WebSession
from carepath.engine.usecases.passwords import verified_user
from carepath.engine.usecases.web_sessions import SIGN_IN_REFUSED
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.web import PASSWORD, Browser, page, text_of, web_user


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


def _events(engine: CarePath, *types: str) -> list[Event]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type.in_(types)).order_by(Event.id)))


def _event_count(engine: CarePath) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def test_root_leads_to_sign_in_then_to_the_worklist(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator", "care-coordinator")
    browser = Browser(web)
    assert browser.get("/").headers["location"] == "/signin"
    assert browser.get("/app/worklist").headers["location"] == "/signin"
    form = page(browser.get("/signin"))
    assert form.get("lang") == "en"
    assert form.xpath('//a[@href="#main"]') and form.xpath('//main[@id="main"]')
    for field in form.xpath("//input[@type!='hidden']"):  # every field has its label
        assert form.xpath(f'//label[@for="{field.get("id")}"]'), field.get("name")
    signed = browser.sign_in("alice")
    assert (signed.status_code, signed.headers["location"]) == (303, "/app/worklist")
    assert browser.get("/").headers["location"] == "/app/worklist"
    worklist = browser.get("/app/worklist")
    assert worklist.status_code == 200
    assert text_of(page(worklist).xpath("//h1")[0]) == "Worklist"
    assert browser.get("/signin").headers["location"] == "/app/worklist"


def test_the_session_cookie_is_http_only_lax_and_secure_over_https(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator")
    plain = Browser(web).sign_in("alice").headers["set-cookie"].lower()
    assert "carepath_session=" in plain and "httponly" in plain and "samesite=lax" in plain
    assert "secure" not in plain
    secure = Browser(web, base_url="https://testserver").sign_in("alice").headers["set-cookie"].lower()
    assert "httponly" in secure and "secure" in secure
    forwarded = Browser(web)
    forwarded.client.headers["X-Forwarded-Proto"] = "https"
    assert "secure" not in forwarded.sign_in("alice").headers["set-cookie"].lower()  # not trusted by default
    web.state.settings = web.state.settings.model_copy(update={"web_trust_forwarded_proto": True})
    forwarded.client.cookies.clear()
    assert "secure" in forwarded.get("/signin").headers["set-cookie"].lower()


def test_sign_in_is_recorded_and_the_password_stored_as_argon2id(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator")
    with engine.db.read() as session:
        stored = session.scalars(select(User.password_hash).where(User.name == "alice")).one()
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    Browser(web, host="10.0.0.7").sign_in("alice")
    [event] = _events(engine, "signed_in")
    assert (event.actor, event.data["client"]["host"]) == ("alice", "10.0.0.7")
    record = AuditRecord(event.id, event.at, event.type, event.actor, None, None, None, None, event.data)
    fhir = fhir_audit_event(record, "https://carepath.example")
    assert fhir["type"]["code"] == "110114" and fhir["subtype"][0]["code"] == "110122"
    assert fhir["agent"][0]["network"]["address"] == "10.0.0.7"


@pytest.mark.parametrize("name, password", [("alice", "wrong password here"), ("nobody", PASSWORD),
                                            ("bob", PASSWORD)])  # bob has no password
def test_a_refused_sign_in_says_the_same_whatever_was_wrong(web: Any, engine: CarePath, name: str,
                                                            password: str) -> None:
    web_user(engine, "alice", "coordinator")
    engine_user = ApiClient(Browser(web).client, engine)
    engine_user.user("coordinator", name="bob")
    browser = Browser(web)
    response = browser.sign_in(name, password)
    assert response.status_code == 401
    html = page(response)
    message = html.xpath('//*[@id="sign-in-error"]')[0]
    assert SIGN_IN_REFUSED in text_of(message)
    assert html.xpath('//input[@id="username"]')[0].get("aria-describedby") == "sign-in-error"
    assert html.xpath('//input[@id="username"]')[0].get("value") == name
    assert "carepath_session" not in browser.client.cookies
    assert browser.get("/app/worklist").headers["location"] == "/signin"


def test_repeated_failures_lock_the_account_and_the_address_with_one_entry_each(web: Any, engine: CarePath,
                                                                                clock: ManualClock) -> None:
    web_user(engine, "alice", "coordinator")
    web_user(engine, "carol", "coordinator")
    attacker = Browser(web, host="10.0.0.66")
    before = _event_count(engine)
    for _ in range(4):
        assert attacker.sign_in("alice", "not the password!").status_code == 401
    assert _event_count(engine) == before  # failures alone write nothing
    assert attacker.sign_in("alice", "not the password!").status_code == 401
    locks = _events(engine, "sign_in_locked")
    assert sorted(e.data["key"] for e in locks) == ["host:10.0.0.66", "user:alice"]
    assert all(e.data["failures"] == 5 for e in locks)
    for _ in range(20):  # a flood adds nothing more
        attacker.sign_in("alice", "not the password!")
    assert len(_events(engine, "sign_in_locked")) == 2
    # Locked: the right password is refused too, with the same message, from anywhere; the address is
    # locked for other accounts.
    refused = Browser(web, host="10.0.0.8").sign_in("alice")
    assert refused.status_code == 401 and SIGN_IN_REFUSED in text_of(page(refused))
    assert attacker.sign_in("carol").status_code == 401
    assert Browser(web, host="10.0.0.9").sign_in("carol").status_code == 303
    clock.advance(minutes=16)
    assert Browser(web, host="10.0.0.8").sign_in("alice").status_code == 303


def test_a_form_without_its_csrf_token_is_refused_with_a_page_saying_why(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator")
    browser = Browser(web)
    browser.get("/signin")
    forged = browser.client.post("/signin", data={"username": "alice", "password": PASSWORD})
    assert forged.status_code == 403
    assert "refused" in text_of(page(forged).xpath("//h1")[0])
    assert "carepath_session" not in browser.client.cookies
    assert browser.sign_in("alice").status_code == 303
    for token in ({}, {"csrf_token": "forged"}):
        response = browser.client.post("/signout", data=token)
        assert response.status_code == 403, token
    assert browser.get("/app/worklist").status_code == 200  # still signed in
    own = page(browser.get("/app/sessions")).xpath("//form[contains(@action, '/end')]")[0].get("action")
    assert browser.client.post(own, data={"csrf_token": "forged"}).status_code == 403
    assert browser.submit("/app/worklist", "/signout").headers["location"] == "/signin"
    assert browser.get("/app/worklist").headers["location"] == "/signin"
    assert [e.data["reason"] for e in _events(engine, "signed_out")] == ["signed out"]


def test_a_session_idle_for_the_limit_is_signed_out(web: Any, engine: CarePath, clock: ManualClock) -> None:
    web_user(engine, "alice", "coordinator")
    browser = Browser(web)
    browser.sign_in("alice")

    def last_seen() -> Any:
        with engine.db.read() as session:
            return session.scalars(select(WebSession.last_seen_at)).one()

    signed_in_at = last_seen()
    clock.advance(seconds=30)
    assert browser.get("/app/worklist").status_code == 200
    assert last_seen() == signed_in_at  # at most one write a minute
    clock.advance(minutes=14)
    assert browser.get("/app/worklist").status_code == 200
    assert last_seen() == clock()
    clock.advance(minutes=14, seconds=59)
    assert browser.get("/app/worklist").status_code == 200  # activity kept it alive
    clock.advance(minutes=15)
    assert browser.get("/app/worklist").headers["location"] == "/signin"
    [logoff] = _events(engine, "signed_out")
    assert (logoff.actor, logoff.data["reason"], logoff.data["user"]) == ("system", "inactivity", "alice")
    assert browser.get("/app/worklist").headers["location"] == "/signin"
    assert len(_events(engine, "signed_out")) == 1


def test_the_idle_limit_is_configurable(engine: CarePath, database_url: str, clock: ManualClock) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        web_idle_minutes=5)
    web_user(engine, "alice", "coordinator")
    browser = Browser(create_app(settings, engine))
    browser.sign_in("alice")
    notice = page(browser.get("/app/worklist")).xpath('//*[@id="idle-notice"]')[0]
    assert "after 5 minutes without activity" in text_of(notice)
    clock.advance(minutes=5)
    assert browser.get("/app/worklist").headers["location"] == "/signin"


def _session_rows(browser: Browser) -> dict[str, str]:
    rows = page(browser.get("/app/sessions")).xpath("//tbody/tr")
    return {row.get("data-session-id"): text_of(row.xpath("td")[0]) for row in rows}


def test_users_list_and_end_their_sessions_and_an_admin_ends_anyones(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator")
    web_user(engine, "root", "admin")
    web_user(engine, "mallory", "coordinator")
    desk, tablet, admin, other = Browser(web), Browser(web), Browser(web), Browser(web)
    for browser, name in ((desk, "alice"), (tablet, "alice"), (admin, "root"), (other, "mallory")):
        assert browser.sign_in(name).status_code == 303
    mine = _session_rows(desk)
    assert sorted(mine.values()) == ["alice", "alice (this browser)"]
    zone = engine.time_context().tz
    shown = page(desk.get("/app/sessions"))
    assert shown.xpath("//thead/tr/th[2]/text()") == [f"Signed in ({zone.key})"]
    assert text_of(shown.xpath("//tbody/tr/td[2]")[0]) == engine.now().astimezone(zone).strftime("%d %b %Y %H:%M")
    tablet_id = next(sid for sid, who in mine.items() if who == "alice")
    # Another user cannot end it (nor learn that it exists).
    token = page(other.get("/app/sessions")).xpath("//input[@name='csrf_token']")[0].get("value")
    assert other.client.post(f"/app/sessions/{tablet_id}/end", data={"csrf_token": token}).status_code == 404
    assert set(_session_rows(other).values()) == {"mallory (this browser)"}
    assert desk.submit("/app/sessions", f"/app/sessions/{tablet_id}/end").headers["location"] == "/app/sessions"
    assert tablet.get("/app/worklist").headers["location"] == "/signin"
    assert sorted(_session_rows(admin).values()) == ["alice", "mallory", "root (this browser)"]
    desk_id = next(sid for sid, who in _session_rows(admin).items() if who == "alice")
    assert admin.submit("/app/sessions", f"/app/sessions/{desk_id}/end").status_code == 303
    assert desk.get("/app/worklist").headers["location"] == "/signin"
    ended = _events(engine, "session_ended")
    assert [(e.actor, e.data["user"]) for e in ended] == [("alice", "alice"), ("root", "alice")]
    assert _events(engine, "session_ended")[1].data["reason"] == "ended by root"


def test_the_session_cookie_does_not_authenticate_the_api(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator")
    browser = Browser(web)
    browser.sign_in("alice")
    assert browser.get("/app/worklist").status_code == 200
    for path in ("/api/tasks", "/api/instances", "/api/users/alice"):
        assert browser.get(path).status_code == 401, path


def test_the_worklist_shows_the_users_and_their_teams_tasks_escaped(web: Any, engine: CarePath,
                                                                    clock: ManualClock) -> None:
    api = ApiClient(Browser(web).client, engine)
    lead, admin = api.user("clinical_lead"), api.user("admin")
    web_user(engine, "alice", "coordinator", "care-coordinator")
    xml = d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator").replace(
        '<bpmn:process id="fu"', '<bpmn:process id="fu" name="Follow-up after an ED visit"')
    other = d.linear_user_tasks("pharm", "Review medicines", lane="Pharmacist")
    assert api.deploy(lead, ("fu.bpmn", xml), ("pharm.bpmn", other)).status_code == 201
    script = "<script>alert(1)</script>"
    assert api.start(lead, "fu", "enc-1", patient_id=script).status_code == 201
    assert api.start(lead, "fu", "enc-2", patient_id="pat-2").status_code == 201
    assert api.start(lead, "pharm", "enc-3", patient_id="pat-3").status_code == 201
    tasks = {t["business_key"]: t["id"] for t in api.get("/api/tasks?state=ready", admin).json()["items"]}
    late = (clock() - timedelta(hours=2)).isoformat()
    tomorrow = (clock() + timedelta(days=1)).isoformat()
    for key, due in (("enc-1", late), ("enc-2", tomorrow)):
        response = api.post(f"/api/tasks/{tasks[key]}/due-date", admin, {"due_date": due, "reason": "test"})
        assert response.status_code == 200, response.text
    browser = Browser(web)
    browser.sign_in("alice")
    before = _event_count(engine)
    html = page(browser.get("/app/worklist"))
    assert _event_count(engine) == before  # a list is not a record read
    assert not html.xpath("//body//script")
    rows = {text_of(r.xpath(".//span[@class='business-key']")[0]): r for r in html.xpath("//tbody/tr")}
    assert sorted(rows) == ["enc-1", "enc-2"]  # the pharmacists' task is not hers
    first = rows["enc-1"]
    assert text_of(first.xpath("td[@class='patient']")[0]) == script
    assert "Follow-up after an ED visit" in text_of(first.xpath("td[@class='episode']")[0])
    assert text_of(first.xpath("td[@class='task']")[0]) == "Call patient"
    assert first.xpath("td[@class='task']/a/@href") == [f"/app/tasks/{tasks['enc-1']}"]
    assert text_of(first.xpath(".//span[contains(@class, 'due-words')]")[0]) == "overdue 2 h"
    assert first.xpath(".//time")[0].get("datetime") == (clock() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%MZ")
    assert text_of(rows["enc-2"].xpath(".//span[contains(@class, 'due-words')]")[0]) == "due tomorrow"
    assert [text_of(r.xpath("td[@class='state']")[0]) for r in html.xpath("//tbody/tr")] == ["Ready", "Ready"]
    assert "America/New_York" in text_of(html.xpath("//main/p")[0])
    assert [text_of(r.xpath(".//span[@class='business-key']")[0]) for r in html.xpath("//tbody/tr")] == \
        ["enc-1", "enc-2"]  # soonest due first


def test_user_password_reads_standard_input_and_refuses_a_short_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    assert main(["user", "add", "alice", "--role", "coordinator"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert main(["user", "password", "alice"]) == 1
    assert "12 to 1000 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["user", "password", "alice"]) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["user", "password", "alice"]) == 0
    engine = CarePath(Database(url), ManualClock())
    try:
        assert verified_user(engine, "alice", PASSWORD) is not None
        assert verified_user(engine, "alice", PASSWORD + "\n") is None
        [event] = _events(engine, "password_set")
        assert event.data == {"user": "alice"} and PASSWORD not in str(event.data)
    finally:
        engine.db.dispose()


def test_migration_0015_keeps_existing_users_without_a_password(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db.engine, "0014")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO users (name, role, active, created_at) "
                                    "VALUES ('old', 'coordinator', 1, '2026-01-01 00:00:00')"))
        migrate.upgrade(db.engine)
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT name, password_hash FROM users")).all() == [("old", None)]
            assert connection.execute(text("SELECT count(*) FROM web_sessions")).scalar() == 0
    finally:
        db.dispose()


@pytest.mark.parametrize("event_type, subtype, outcome", [
    ("signed_in", "110122", "0"), ("sign_in_locked", "110122", "4"),
    ("signed_out", "110123", "0"), ("session_ended", "110123", "0")])
def test_sign_in_events_are_fhir_user_authentication(event_type: str, subtype: str, outcome: str) -> None:
    record = AuditRecord(1, ManualClock()(), event_type, "alice", None, None, None, None, {"user": "alice"})
    fhir = fhir_audit_event(record, "https://carepath.example")
    assert fhir["type"] == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114",
                            "display": "User Authentication"}
    assert [c["code"] for c in fhir["subtype"]] == [subtype, event_type]
    assert (fhir["action"], fhir["outcome"]) == ("E", outcome)


def test_an_integration_account_gets_no_password_and_cannot_sign_in(web: Any, engine: CarePath) -> None:
    """A system calls the API with a token; it has no business in the web app."""
    from argon2 import PasswordHasher

    from carepath.engine.errors import Conflict
    from carepath.engine.usecases.passwords import set_password
    from carepath.engine.usecases.users import add_user

    add_user(engine, "scheduler-feed", "integration", [])
    with pytest.raises(Conflict, match="integration account"):
        set_password(engine, "scheduler-feed", PASSWORD)
    with engine.db.write_sessions() as session:  # a password set before such accounts were refused one
        row = session.scalars(select(User).where(User.name == "scheduler-feed")).one()
        row.password_hash = PasswordHasher().hash(PASSWORD)
        session.commit()
    assert verified_user(engine, "scheduler-feed", PASSWORD) is None
    assert Browser(web).sign_in("scheduler-feed").status_code == 401


def test_a_name_with_a_nul_character_is_refused_like_any_wrong_name(web: Any, engine: CarePath) -> None:
    """It answered 500 on PostgreSQL (a NUL cannot be looked up); now the generic refusal, nothing written."""
    web_user(engine, "alice", "coordinator")
    for _ in range(7):  # past the lockout threshold too: a lockout entry must not carry the NUL either
        response = Browser(web).sign_in("ali\x00ce")
        assert response.status_code == 401
        assert SIGN_IN_REFUSED in text_of(page(response).xpath('//*[@id="sign-in-error"]')[0])
