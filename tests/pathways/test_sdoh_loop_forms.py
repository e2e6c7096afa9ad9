"""Each need's loop of the social-needs pathway is a multi-instance subprocess: a task in one need's loop
shows that loop's values, never another need's (the episode's data holds the latest loop's). Broken, the
transportation form came filled with the food pantry chosen for food, and its directory search for food."""

from __future__ import annotations

from carepath.engine.clock import ManualClock
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory
from tests.support.api import ApiClient

__all__ = ["directory"]  # the fixture, imported for pytest


def test_a_needs_form_shows_its_own_loops_values_not_the_last_loops(directory: ApiClient,
                                                                      clock: ManualClock) -> None:
    case = Case(directory, clock)
    answered = case.complete("Confirm need and consent — transportation", case.manager, need_confirmed=True,
                             consent_to_share=True)
    assert answered.status_code == 200, answered.text
    assert _form(case, "Confirm need and consent — food") == {}  # not the transportation loop's answers
    case.consent_and_choose("food", "fict-svc-food-pantry")
    assert _form(case, "Choose a service — transportation") == {}  # not the food pantry chosen for food


def _form(case: Case, name: str) -> dict[str, object]:
    [task] = [t for t in case.view()["open_tasks"] if t["name"] == name]
    form = case.api.get(f"/api/tasks/{task['id']}/form", case.manager)
    assert form.status_code == 200, form.text
    return dict(form.json()["data"])
