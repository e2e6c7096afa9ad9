"""Web sign-in through OpenID Connect (authorization code flow with PKCE) against a fake provider served by a
real uvicorn on a loopback port, with keys the test makes: the whole dance, and each way it must fail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.oidc_signin import code_challenge
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.tables import Event, WebSession
from carepath.engine.usecases.users import add_user, deactivate_user, get_user, set_groups
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, rsa_key, s256
from tests.support.server import running
from tests.support.web import Browser, page, text_of

ADMIN = Principal("root", Role.ADMIN, frozenset())


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    signing, published = rsa_key("k1")
    stranger, _ = rsa_key("k2")
    return {"signing": signing, "published": published, "stranger": stranger}


@pytest.fixture
def provider(keys: dict[str, Any]) -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(keys["signing"], keys["published"])
    with running(fake.app()) as url:
        yield fake, url


def _settings(database_url: str, issuer: str, **more: Any) -> Settings:
    return Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                    oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
                    oidc_roles_claim="realm_access.roles", oidc_provider_name="Hospital Login", **more)


@pytest.fixture
def browser(engine: CarePath, database_url: str, provider: tuple[FakeProvider, str]) -> Browser:
    return Browser(create_app(_settings(database_url, provider[1]), engine))


def _leave(browser: Browser, back_to: str = "") -> str:
    """Follow 'Sign in with ...': the provider's authorization URL the browser is sent to."""
    started = browser.get("/signin/oidc" + (f"?next={back_to}" if back_to else ""))
    assert started.status_code == 302, started.text
    return started.headers["location"]


def _at_provider(authorize_url: str) -> str:
    """The provider signs the user in and sends the browser back: the callback's path and query."""
    answer = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def _dance(browser: Browser, back_to: str = "") -> httpx.Response:
    return browser.get(_at_provider(_leave(browser, back_to)))


def _sessions(engine: CarePath) -> int:
    with engine.db.read() as session:
        return len(session.scalars(select(WebSession.id)).all())


def _events(engine: CarePath, kind: str) -> list[Event]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def test_the_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    # RFC 7636, appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_signing_in_through_the_provider_opens_a_session_and_lands_on_the_worklist(
        browser: Browser, engine: CarePath, provider: tuple[FakeProvider, str]) -> None:
    fake, issuer = provider
    sign_in = page(browser.get("/signin"))
    link = sign_in.xpath('//a[starts-with(@href, "/signin/oidc")]')
    assert link and text_of(link[0]) == "Sign in with Hospital Login"
    authorize = _leave(browser)
    asked = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(issuer + "/authorize?")
    assert {k: v[0] for k, v in asked.items() if k in ("response_type", "client_id", "code_challenge_method")} == {
        "response_type": "code", "client_id": CLIENT_ID, "code_challenge_method": "S256"}
    assert asked["redirect_uri"] == ["http://testserver/signin/oidc/callback"]
    assert "openid" in asked["scope"][0].split() and asked["state"][0] and asked["nonce"][0]
    cookie = browser.client.cookies.get("carepath_oidc")
    assert cookie and asked["state"][0] not in authorize.split("state=")[0]
    landed = browser.get(_at_provider(authorize))
    assert (landed.status_code, landed.headers["location"]) == (303, "/app/worklist")
    assert "httponly" in landed.headers["set-cookie"].lower()
    (exchange,) = fake.exchanges
    assert s256(exchange["code_verifier"]) == asked["code_challenge"][0]  # PKCE: the provider checked it
    assert exchange["grant_type"] == "authorization_code" and exchange["authorization"].startswith("Basic ")
    worklist = browser.get("/app/worklist")
    assert worklist.status_code == 200 and "dr-ng" in text_of(page(worklist).xpath("//header")[0])
    assert get_user(engine, ADMIN, "dr-ng").role == "supervisor"
    assert get_user(engine, ADMIN, "dr-ng").groups == ["care-coordinator"]
    signed = _events(engine, "signed_in")[-1]
    assert (signed.actor, signed.data["method"]) == ("dr-ng", "oidc")
    assert _events(engine, "user_added")[-1].data["by"] == "oidc"


def test_a_later_sign_in_brings_role_and_groups_in_line_with_the_provider(
        browser: Browser, engine: CarePath, provider: tuple[FakeProvider, str]) -> None:
    fake, _ = provider
    assert _dance(browser).status_code == 303
    fake.claims = {**fake.claims, "realm_access": {"roles": ["coordinator"]}, "groups": ["/nursing", "Domain Users"]}
    again = Browser(browser.client.app)
    assert _dance(again, "/app/sessions").headers["location"] == "/app/sessions"
    user = get_user(engine, ADMIN, "dr-ng")
    assert (user.role, user.groups) == ("coordinator", ["nursing"])  # a group no CarePath name can be is left out
    assert _events(engine, "user_role_changed")[-1].data["new"] == "coordinator"
    assert _events(engine, "user_groups_changed")[-1].data["new"] == ["nursing"]


@pytest.mark.parametrize("override", [{"azp": CLIENT_ID}, {"aud": [CLIENT_ID, "another-app"], "azp": CLIENT_ID}])
def test_an_id_token_issued_to_us_with_azp_is_accepted(browser: Browser, provider: tuple[FakeProvider, str],
                                                       override: dict[str, Any]) -> None:
    provider[0].overrides = override
    assert _dance(browser).status_code == 303


def test_with_roles_not_from_the_provider_a_later_sign_in_keeps_what_an_admin_set(
        engine: CarePath, database_url: str, provider: tuple[FakeProvider, str]) -> None:
    fake, issuer = provider
    app = create_app(_settings(database_url, issuer, oidc_roles_from_provider=False), engine)
    assert _dance(Browser(app)).status_code == 303  # the first sign-in makes the user from the claims
    assert (get_user(engine, ADMIN, "dr-ng").role, get_user(engine, ADMIN, "dr-ng").groups) == (
        "supervisor", ["care-coordinator"])
    set_groups(engine, ADMIN, "dr-ng", ["nursing"])
    fake.claims = {**fake.claims, "realm_access": {"roles": ["admin"]}, "groups": ["/pharmacy"]}
    again = Browser(app)
    assert _dance(again).status_code == 303
    user = get_user(engine, ADMIN, "dr-ng")
    assert (user.role, user.groups) == ("supervisor", ["nursing"])
    assert _events(engine, "user_role_changed") == []
    assert [e.actor for e in _events(engine, "user_groups_changed")] == ["root"]  # the admin's change only
    assert again.get("/app/admin/users").status_code == 403  # signed in as the local record says, not admin


def test_a_state_that_does_not_match_is_refused(browser: Browser, engine: CarePath) -> None:
    back = _at_provider(_leave(browser))
    forged = back.replace("state=", "state=x")
    answer = browser.get(forged)
    assert answer.status_code == 400 and "state" in text_of(page(answer).xpath('//*[@role="alert"]')[0])
    assert _sessions(engine) == 0
    assert browser.get(back).status_code == 400  # the flow is spent after a failure (its cookie is cleared)
    other = Browser(browser.client.app)  # a browser that never started a sign-in
    assert other.get(back).status_code == 400 and _sessions(engine) == 0


@pytest.mark.parametrize(("override", "says"), [
    ({"nonce": "not-this-sign-in"}, "nonce"),
    ({"exp": 1_000_000}, "expired"),
    ({"aud": "another-app"}, "audience"),
    ({"iss": "https://elsewhere.test"}, "issuer"),
    # issued to another client that lists us among its audiences
    ({"aud": [CLIENT_ID, "another-app"], "azp": "another-app"}, "not issued to this client"),
    ({"aud": [CLIENT_ID, "another-app"]}, "several audiences, no azp"),
    ({"azp": "another-app"}, "not issued to this client"),
])
def test_an_id_token_that_cannot_be_trusted_is_refused(browser: Browser, engine: CarePath,
                                                        provider: tuple[FakeProvider, str],
                                                        override: dict[str, Any], says: str) -> None:
    provider[0].overrides = override
    answer = _dance(browser)
    assert answer.status_code == 401
    assert says in text_of(page(answer).xpath('//*[@role="alert"]')[0]).lower()
    assert _sessions(engine) == 0


def test_an_id_token_signed_with_another_key_is_refused(browser: Browser, engine: CarePath,
                                                         provider: tuple[FakeProvider, str],
                                                         keys: dict[str, Any]) -> None:
    provider[0].sign_with = keys["stranger"]
    assert _dance(browser).status_code == 401 and _sessions(engine) == 0


def test_a_sign_in_that_took_too_long_is_refused(browser: Browser, engine: CarePath, clock: ManualClock) -> None:
    authorize = _leave(browser)
    clock.advance(timedelta(minutes=11))
    answer = browser.get(_at_provider(authorize))
    assert answer.status_code == 400 and "too long" in text_of(page(answer))
    assert _sessions(engine) == 0


def test_the_providers_refusals_are_pages(browser: Browser, engine: CarePath,
                                          provider: tuple[FakeProvider, str]) -> None:
    _leave(browser)
    denied = browser.get("/signin/oidc/callback?error=access_denied&error_description=%3Cscript%3Ex%3C/script%3E")
    assert denied.status_code == 403 and "access_denied" in text_of(page(denied))
    assert "<script>x</script>" in text_of(page(denied)) and not page(denied).xpath("//main//script")
    provider[0].token_error = "invalid_grant"
    refused = _dance(browser)
    assert refused.status_code == 401 and "invalid_grant" in text_of(page(refused))
    assert _sessions(engine) == 0


def test_users_the_web_app_refuses_are_refused(browser: Browser, engine: CarePath,
                                               provider: tuple[FakeProvider, str]) -> None:
    add_user(engine, "root", "admin")
    add_user(engine, "dr-ng", "supervisor")
    deactivate_user(engine, ADMIN, "dr-ng")
    answer = _dance(browser)
    assert answer.status_code == 403 and "deactivated" in text_of(page(answer))
    provider[0].claims = {**provider[0].claims, "preferred_username": "feed",
                          "realm_access": {"roles": ["integration"]}}
    assert _dance(browser).status_code == 403
    provider[0].claims = {**provider[0].claims, "preferred_username": "no role", "realm_access": {"roles": []}}
    assert _dance(browser).status_code == 401
    assert _sessions(engine) == 0


def test_a_provider_that_cannot_be_reached_is_a_502_page(engine: CarePath, database_url: str) -> None:
    with running(lambda scope, receive, send: None) as url:
        closed = url
    browser = Browser(create_app(_settings(database_url, closed, oidc_timeout_seconds=2), engine))
    answer = browser.get("/signin/oidc")
    assert answer.status_code == 502 and answer.headers["content-type"].startswith("text/html")
    assert "could not be reached" in text_of(page(answer))


def test_without_a_client_id_there_is_no_provider_sign_in(engine: CarePath, database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        oidc_issuer="https://login.hospital.test", oidc_audience="carepath")
    browser = Browser(create_app(settings, engine))
    assert not page(browser.get("/signin")).xpath('//a[starts-with(@href, "/signin/oidc")]')
    assert browser.get("/signin/oidc").status_code == 404
    assert browser.get("/signin/oidc/callback?state=a&code=b").status_code == 404


def test_settings_refuse_a_relative_redirect_uri_and_scopes_without_openid() -> None:
    with pytest.raises(ValueError, match="absolute"):
        Settings(oidc_redirect_uri="/signin/oidc/callback")
    with pytest.raises(ValueError, match="openid"):
        Settings(oidc_scopes="profile email")


def test_a_first_sign_in_racing_another_for_the_same_new_user_is_tried_again(
        engine: CarePath, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import IntegrityError

    from carepath.engine.usecases import users, web_sessions
    from carepath.engine.usecases.access import Client

    real, calls = users.sync_provider_user, []

    def racing(uow: Any, principal: Principal, provider: str, roles_from_provider: bool = True) -> Any:
        calls.append(principal.name)
        if len(calls) == 1:  # the other browser made the record between our look and our insert
            raise IntegrityError("INSERT INTO users", None, Exception("duplicate key"))
        return real(uow, principal, provider, roles_from_provider)

    monkeypatch.setattr(users, "sync_provider_user", racing)
    signed = web_sessions.sign_in_from_provider(engine, Principal("dr-ng", Role.SUPERVISOR, frozenset()),
                                                Client(host="10.0.0.1", user_agent=None))
    assert calls == ["dr-ng", "dr-ng"] and signed.principal.name == "dr-ng" and _sessions(engine) == 1
