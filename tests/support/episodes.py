"""A few episodes for the auditor's page tests: the team_call pathway with its measure, episodes of two
teams started on known days, one completed late, one cancelled, one running; users who sign in to the web
app and also hold API tokens (to compare a page with the API's answer)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.passwords import set_password

from . import diagrams as d
from .api import ApiClient
from .web import PASSWORD, Browser, signed_in

SCRIPT_PATIENT = '<script>document.title="owned"</script>pat-x'


@dataclass
class Episodes:
    api: ApiClient
    lead: str
    auditor: str
    east: str  # a coordinator of the east team
    west: str  # a coordinator of the west team
    ids: dict[str, str] = field(default_factory=dict)  # business key -> instance id

    def browser(self, name: str) -> Browser:
        return signed_in(self.api.client.app, name)


def web_and_api_user(api: ApiClient, role: str, *groups: str, name: str) -> str:
    api.user(role, *groups, name=name)
    set_password(api.engine, name, PASSWORD)
    return name


def episodes(api: ApiClient, clock: ManualClock) -> Episodes:
    """enc-1 (pat-1, east, started 5 Jan 2026: call completed 10 days late), enc-2 (pat-2, west, 6 Jan:
    cancelled), enc-3 (the script patient, east, 20 Jan: running); pathway `cohort` with CALL_MEASURE, and a
    plain pathway `other` with enc-4 (pat-1, 21 Jan, running)."""
    made = Episodes(api, web_and_api_user(api, "clinical_lead", name="lena"),
                    web_and_api_user(api, "auditor", name="audrey"),
                    web_and_api_user(api, "coordinator", "east", name="ana"),
                    web_and_api_user(api, "coordinator", "west", name="raj"))
    sidecar = json.dumps({"measures": [d.CALL_MEASURE]})
    assert api.deploy(made.lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    other = d.linear_user_tasks("other", "Review", lane="Care Coordinator")
    assert api.deploy(made.lead, ("other.bpmn", other)).status_code == 201
    for key, patient, team, day in (("enc-1", "pat-1", "east", 5), ("enc-2", "pat-2", "west", 6),
                                    ("enc-3", SCRIPT_PATIENT, "east", 20)):
        clock.set(datetime(2026, 1, day, 15, tzinfo=UTC))
        started = api.start(made.lead, "cohort", key, patient_id=patient,
                            data={"visit_date": f"2026-01-{day:02d}", "team": team})
        assert started.status_code == 201, started.text
        made.ids[key] = started.json()["id"]
    clock.set(datetime(2026, 1, 21, 15, tzinfo=UTC))
    started = api.start(made.lead, "other", "enc-4", patient_id="pat-1")
    assert started.status_code == 201, started.text
    made.ids["enc-4"] = started.json()["id"]
    clock.set(datetime(2026, 1, 22, 15, tzinfo=UTC))
    task = api.get(f"/api/instances/{made.ids['enc-1']}", made.lead).json()["open_tasks"][0]["id"]
    done = api.post(f"/api/tasks/{task}/complete", made.east, {"data": {"reached": True}})
    assert done.status_code == 200, done.text
    cancelled = api.post(f"/api/instances/{made.ids['enc-2']}/cancel", made.lead, {"reason": "declined"})
    assert cancelled.status_code == 200, cancelled.text
    clock.set(datetime(2026, 2, 1, 12, tzinfo=UTC))
    return made
