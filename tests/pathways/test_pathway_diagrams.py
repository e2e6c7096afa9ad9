"""GET /api/pathways/{key}/versions/{n}/diagram.svg: the diagram, and an episode's path drawn on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "post-ed-follow-up"
SHIPPED = Path(__file__).resolve().parents[2] / "bpmn"
SVG = "{http://www.w3.org/2000/svg}"


def _marks(svg: str) -> dict[str, str]:
    """element id -> highlight kind ('' when not highlighted)."""
    out = {}
    for g in etree.fromstring(svg.encode()).iter(f"{SVG}g"):
        classes = (g.get("class") or "").split()
        out[g.get("data-element-id")] = next((c[len("highlight-"):] for c in classes if c.startswith("highlight-")), "")
    return out


def test_an_episode_s_path_is_drawn_on_its_diagram(shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 1, 9, 15, 0, tzinfo=UTC))  # Friday 10:00 in New York
    lead = shipped.user("clinical_lead")
    started = shipped.start(lead, KEY, patient_id="pat-1", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0})
    assert started.status_code == 201, started.text
    instance = started.json()
    url = f"/api/pathways/{KEY}/versions/1/diagram.svg"
    plain = shipped.get(url, lead)
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("image/svg+xml")
    assert set(_marks(plain.text).values()) == {""}

    marks = _marks(shipped.get(url, lead, params={"instance": instance["id"]}).text)
    assert marks["ed_visit_reported"] == marks["classify_ed_visit"] == marks["open_follow_up_record"] == "done"
    assert marks["flow_to_open_record"] == "done"  # a flow between two reached elements was taken
    assert marks["call_patient"] == "current" and marks["schedule_follow_up"] == ""

    clock.set(datetime(2026, 1, 12, 15, 0, 1, tzinfo=UTC))  # Monday 10:00:01: the call is due, the reminder fires
    assert fire_due_timers(shipped.engine) >= 1
    marks = _marks(shipped.get(url, lead, params={"instance": instance["id"]}).text)
    assert marks["call_patient"] == "late" and marks["call_reminder_timer"] == "fired"
    assert marks["call_escalation_timer"] in ("current", "")  # still waiting, not fired


def test_diagram_requests_that_do_not_fit_are_refused_with_a_reason(shipped: ApiClient) -> None:
    lead = shipped.user("clinical_lead")
    assert shipped.get(f"/api/pathways/{KEY}/versions/99/diagram.svg", lead).status_code == 404
    example = json.loads((SHIPPED / "specialist-referral.pathway.json").read_text())["example_data"]
    other = shipped.start(lead, "specialist-referral", business_key="REF-1", data=example)
    assert other.status_code == 201, other.text
    wrong = shipped.get(f"/api/pathways/{KEY}/versions/1/diagram.svg", lead, params={"instance": other.json()["id"]})
    assert wrong.status_code == 422 and "specialist-referral version 1" in wrong.json()["message"]
    missing = shipped.get(f"/api/pathways/{KEY}/versions/1/diagram.svg", lead,
                          params={"instance": "00000000-0000-0000-0000-000000000000"})
    assert missing.status_code == 404
    outsider = shipped.user("coordinator", "elsewhere")
    started = shipped.start(lead, KEY, data={"ed_visit_date": "2026-01-08", "diagnosis_category": "x",
                                             "high_risk_chronic_conditions": 0}).json()
    hidden = shipped.get(f"/api/pathways/{KEY}/versions/1/diagram.svg", outsider, params={"instance": started["id"]})
    assert hidden.status_code == 404  # like an instance that does not exist
