"""The web worklist PAGE (`GET /app/worklist` with a signed-in session cookie) at many open tasks: every
quick view and sort, a patient search, and the polling fragment, asked by the personas of bench/worklist.py
(same bulk-loaded data), with the page's weight (HTML + style sheets + scripts) beside its latency.

A persona opens a view once (`?view=...`: the choice is saved on the server), then the timed requests are
the plain page `GET /app/worklist`, as a user coming back to it: the saved choice is read, the page drawn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from carepath.engine.application import CarePath
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.passwords import set_password
from carepath.engine.worklist import SORTS, VIEWS

from .common import log, percentiles, timed_gets

PASSWORD = "bench worklist password"
# Who asks, by name (personas of bench/worklist.py): the big team's coordinator, a small team's, a claimer.
WEB_PERSONAS = ["wl-coordinator", "wl-social-worker", "nurse-7"]
ASSETS = re.compile(r'(?:href|src)="(/static/[^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def set_passwords(database_url: str, names: list[str]) -> None:
    app = CarePath(Database(database_url), lambda: datetime.now(UTC))
    try:
        for name in names:
            set_password(app, name, PASSWORD)
    finally:
        app.db.dispose()


def signed_in(client: httpx.Client, name: str) -> str:
    """Sign `client` in as `name` through the sign-in form (its cookies kept); the page's CSRF token."""
    form = client.get("/signin")
    token = CSRF.search(form.text)
    assert token, "no CSRF token on the sign-in form"
    client.post("/signin", data={"csrf_token": token[1], "username": name, "password": PASSWORD})
    page = client.get("/app/worklist")
    page.raise_for_status()
    found = CSRF.search(page.text)
    assert found, f"{name} is not signed in"
    return found[1]


def cases() -> list[tuple[str, str, dict[str, str]]]:
    """(name, persona, the choice saved before timing): every view (due sort), every sort, a search."""
    chosen = [(f"view={view}", "wl-coordinator", {"view": view, "sort": "due"}) for view in VIEWS]
    chosen += [(f"sort={sort}", "wl-coordinator", {"view": "mine-and-teams", "sort": sort}) for sort in SORTS]
    chosen += [("view=mine-and-teams, small team", "wl-social-worker", {"view": "mine-and-teams", "sort": "due"}),
               ("view=overdue, small team", "wl-social-worker", {"view": "overdue", "sort": "priority"}),
               ("view=mine, claimer", "nurse-7", {"view": "mine", "sort": "due"}),
               ("search patient", "wl-coordinator", {"view": "teams", "sort": "due", "q": "pat-4242"})]
    return chosen


def measure_web_worklist(new_client: Callable[[], httpx.Client], requests: int,
                         api_token: str | None = None) -> dict[str, Any]:
    """p50/p95/p99 of the page per case, its rows and HTML bytes; the quiet poll (204); the page weight.
    `new_client` gives a client of the server (one per persona: each keeps its own cookies). With the
    big team's coordinator's `api_token`, the JSON API's list of the same tasks is measured alongside, as a
    reference taken on the same machine at the same time (the machine's load moves both)."""
    results: dict[str, Any] = {}
    sessions: dict[str, tuple[httpx.Client, str]] = {}
    try:
        for name in WEB_PERSONAS:
            client = new_client()
            sessions[name] = (client, signed_in(client, name))
        for case, persona, choice in cases():
            client, csrf = sessions[persona]
            client.get("/app/worklist", params={k: v for k, v in choice.items() if k != "q"}).raise_for_status()
            client.post("/app/worklist/search", data={"csrf_token": csrf, "q": choice.get("q", "")})
            first, samples = timed_gets(client, "/app/worklist", requests)
            results[case] = {**percentiles(samples), "rows": first.text.count("<tr data-task-id="),
                             "html_bytes": len(first.content)}
            log(f"web worklist {case}: p95 {results[case]['p95_ms']} ms ({results[case]['rows']} rows, "
                f"{results[case]['html_bytes']:,} B)")
        client, csrf = sessions["wl-coordinator"]
        client.post("/app/worklist/search", data={"csrf_token": csrf, "q": ""})
        client.get("/app/worklist", params={"view": "mine-and-teams", "sort": "due"})  # a full page
        results["poll, nothing moved (204)"] = _quiet_poll(client, requests)
        if api_token:
            bearer = {"Authorization": f"Bearer {api_token}"}
            first, samples = timed_gets(client, "/api/tasks", requests, headers=bearer,
                                        params={"candidate": "me", "sort": "due", "limit": 50})
            results["reference: GET /api/tasks?candidate=me"] = {**percentiles(samples), "rows": len(
                first.json()["items"]), "html_bytes": len(first.content)}
        results["page weight"] = page_weight(client)
    finally:
        for client, _ in sessions.values():
            client.close()
    return results


def _quiet_poll(client: httpx.Client, requests: int) -> dict[str, Any]:
    page = client.get("/app/worklist").text
    cursor = re.search(r'id="worklist-cursor" name="cursor" value="([^"]+)"', page)
    poll = re.search(r'hx-get="([^"]+)"', page)
    assert cursor and poll, "no polling on the worklist page"
    url = poll[1].replace("&amp;", "&")
    settled = client.get(url, params={"cursor": cursor[1]})  # just drawn: checked once, the cursor settles
    quiet = re.search(r'value="([^"]+)"', settled.text)
    params = {"cursor": quiet[1] if quiet else cursor[1]}
    first, samples = timed_gets(client, url, requests, params=params)
    return {**percentiles(samples), "rows": 0, "html_bytes": len(first.content), "status": first.status_code}


def page_weight(client: httpx.Client) -> dict[str, Any]:
    """Bytes of the page's HTML and of every style sheet and script it loads, as sent over the wire (the
    static files gzip-compressed; the page is not) and uncompressed."""
    page = client.get("/app/worklist")
    fetched = {path: client.get(path, headers={"Accept-Encoding": "gzip"}) for path in ASSETS.findall(page.text)}
    assets = {path: response.num_bytes_downloaded for path, response in fetched.items()}
    plain = sum(len(response.content) for response in fetched.values())
    return {"html_bytes": len(page.content), "asset_bytes": assets,
            "total_bytes": page.num_bytes_downloaded + sum(assets.values()),
            "uncompressed_bytes": len(page.content) + plain}
