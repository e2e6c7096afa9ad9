"""Who a bearer token stands for is kept a few seconds per process (usecases/token_principals.py): a change
made in this process is honoured at the next request, one made in another process within that time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import SYSTEM, Principal
from carepath.engine.usecases.break_glass import end_grant
from carepath.engine.usecases.token_principals import principal_of_token
from carepath.engine.usecases.users import deactivate_user, revoke_token
from tests.support.api import ApiClient


@pytest.fixture
def elsewhere(api: ApiClient) -> Iterator[CarePath]:
    """Another process on the same database: its own caches, the same clock."""
    yield CarePath(api.engine.db, api.engine.clock, api.engine.config)


def _token_ids(api: ApiClient, admin: str, user: str) -> list[int]:
    return [t["id"] for t in api.get(f"/api/users/{user}/tokens", admin).json()]


def test_a_revoked_token_is_refused_at_once_here(api: ApiClient) -> None:
    admin = api.user("admin")
    lee = api.user("coordinator", "care-coordinator", name="lee")
    assert api.get("/api/tasks", lee).status_code == 200  # cached
    [token] = _token_ids(api, admin, lee)
    assert api.client.delete(f"/api/users/lee/tokens/{token}", headers=api.headers(admin)).status_code == 204
    assert api.get("/api/tasks", lee).status_code == 401


def test_a_deactivated_user_is_refused_at_once_here(api: ApiClient) -> None:
    admin = api.user("admin")
    sam = api.user("coordinator", "care-coordinator", name="sam")
    assert api.get("/api/tasks", sam).status_code == 200
    assert api.post("/api/users/sam/deactivate", admin).status_code == 200
    assert api.get("/api/tasks", sam).status_code == 401


def test_new_groups_are_served_at_once_here(api: ApiClient) -> None:
    admin = api.user("admin")
    kim = api.user("coordinator", "care-coordinator", name="kim")
    assert _principal(api, kim).groups == {"care-coordinator"}
    changed = api.client.put("/api/users/kim/groups", headers=api.headers(admin), json={"groups": ["wound-care"]})
    assert changed.status_code == 200, changed.text
    assert _principal(api, kim).groups == {"wound-care"}


def _principal(api: ApiClient, user: str) -> Principal:
    return principal_of_token(api.engine, api.headers(user)["Authorization"].removeprefix("Bearer "))


@pytest.mark.parametrize("change", ["revoke", "deactivate"])
def test_a_change_in_another_process_is_honoured_within_the_cache_time(api: ApiClient, elsewhere: CarePath,
                                                                        clock: ManualClock, change: str) -> None:
    admin = api.user("admin")
    ash = api.user("coordinator", "care-coordinator", name="ash")
    assert api.get("/api/tasks", ash).status_code == 200
    if change == "revoke":
        revoke_token(elsewhere, SYSTEM, "ash", _token_ids(api, admin, ash)[0])
    else:
        deactivate_user(elsewhere, SYSTEM, "ash")
    clock.advance(seconds=api.engine.config.principal_cache_seconds - 1)
    assert api.get("/api/tasks", ash).status_code == 200  # still served here, for at most the cache time
    clock.advance(seconds=1)
    assert api.get("/api/tasks", ash).status_code == 401


def test_a_caller_with_a_running_grant_is_read_on_every_request(api: ApiClient, elsewhere: CarePath) -> None:
    """A grant ended elsewhere widens nothing from the next request on: such callers are not kept; a grant
    given here is in the next request's principal."""
    boss = api.user("supervisor", "care-coordinator", name="boss")
    assert _principal(api, boss).break_glass == ()
    grant = api.post("/api/break-glass", boss, {"patient_id": "pat-9", "reason": "patient collapsed in the "
                                                                                 "waiting room, chart needed"})
    assert grant.status_code == 201, grant.text
    assert _principal(api, boss).break_glass == (("pat-9", grant.json()["id"]),)
    end_grant(elsewhere, SYSTEM, grant.json()["id"])
    assert _principal(api, boss).break_glass == ()


def test_no_cache_time_reads_every_request(api: ApiClient, elsewhere: CarePath) -> None:
    from dataclasses import replace

    api.engine.config = replace(api.engine.config, principal_cache_seconds=0)
    dee = api.user("coordinator", "care-coordinator", name="dee")
    assert api.get("/api/tasks", dee).status_code == 200
    deactivate_user(elsewhere, SYSTEM, "dee")
    assert api.get("/api/tasks", dee).status_code == 401
