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
    started = shipped.start(lead, KEY, data={"ed_visit_date": "2026-01-08", "diagnosis_category": "other",
                                             "high_risk_chronic_conditions": 0}).json()
    hidden = shipped.get(f"/api/pathways/{KEY}/versions/1/diagram.svg", outsider, params={"instance": started["id"]})
    assert hidden.status_code == 404  # like an instance that does not exist


def test_an_instance_report_is_one_self_contained_page(shipped: ApiClient, clock: ManualClock) -> None:
    from lxml import html

    clock.set(datetime(2026, 1, 9, 15, 0, tzinfo=UTC))
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator", name="ana")
    started = shipped.start(lead, KEY, patient_id="pat-<b>7</b>", business_key="enc-<script>alert(1)</script>", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0})
    instance = started.json()
    call = instance["open_tasks"][0]["id"]
    assert shipped.post(f"/api/tasks/{call}/claim", coordinator).status_code == 200
    clock.set(datetime(2026, 1, 12, 20, 0, tzinfo=UTC))  # Monday 15:00 NY: five hours after the call was due
    fire_due_timers(shipped.engine)
    done = shipped.post(f"/api/tasks/{call}/complete", coordinator, {"data": {"reached": True}})
    assert done.status_code == 200, done.text
    response = shipped.get(f"/api/instances/{instance['id']}/report.html", lead)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = html.fromstring(response.text)
    assert not page.xpath("//script") and "<script>alert" not in response.text  # escaped, nothing to run
    assert "enc-&lt;script&gt;" in response.text
    row = page.xpath("//tr[@data-element-id='call_patient']")[0]
    cells = [c.text_content() for c in row.xpath("td")]
    assert cells[0] == "Call patient" and cells[3] == "09 Jan 2026 10:00"  # the care setting's zone (New York)
    assert cells[4] == "09 Jan 2026 10:00 by ana" and cells[6] == "ana" and cells[9] == "5 h 00 min"
    drawn = response.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert 'class="activity userTask highlight-late" data-element-id="call_patient"' in drawn
    statuses = {r.get("data-measure-id"): r.xpath("td")[2].text_content() for r in page.xpath("//tr[@data-measure-id]")}
    assert statuses == {"fum-7": "open", "fum-30": "open", "fua-7": "not applicable", "fua-30": "not applicable",
                        "fmc-7": "not applicable"}
    history = shipped.get(f"/api/instances/{instance['id']}/history", lead).json()
    assert len(page.xpath("//tr[@data-event-id]")) == history["total"]
    [timeline] = [t for t in history["tasks"] if t["element_id"] == "call_patient"]
    assert (timeline["claimed_by"], timeline["completed_by"], timeline["offered_to"]) == ("ana", "ana",
                                                                                        ["care-coordinator"])
    assert timeline["waited_seconds"] == (3 * 24 + 5) * 3600 and timeline["late_by_seconds"] == 5 * 3600
    outsider = shipped.user("coordinator", "elsewhere")
    assert shipped.get(f"/api/instances/{instance['id']}/report.html", outsider).status_code == 404
    auditor = shipped.user("auditor")
    viewed = shipped.get("/api/audit/events", auditor, params={"instance_id": instance["id"], "type": "record_viewed",
                                                               "limit": 100}).json()["items"]
    assert {(v["actor"], v["data"]["what"]) for v in viewed} >= {(lead, "report"), (lead, "history")}
    assert (outsider, "report") not in {(v["actor"], v["data"]["what"]) for v in viewed}  # refused: not recorded


def test_a_diagram_without_layout_is_refused_but_its_episodes_still_get_a_report(shipped: ApiClient) -> None:
    from tests.support import diagrams as d

    lead = shipped.user("clinical_lead")
    assert shipped.deploy(lead, ("nodi.bpmn", d.linear_user_tasks("nodi", "Call"))).status_code == 201
    picture = shipped.get("/api/pathways/nodi/versions/1/diagram.svg", lead)
    assert picture.status_code == 422 and "no layout" in picture.json()["message"]
    started = shipped.start(lead, "nodi").json()
    report = shipped.get(f"/api/instances/{started['id']}/report.html", lead)
    assert report.status_code == 200 and "no layout" in report.text and "<svg" not in report.text
    assert 'data-element-id="task_0"' in report.text  # the task table is there


def _taken(api: ApiClient, instance_id: str) -> set[str]:
    """The ids of the sequence flows drawn as taken for an instance."""
    lead = api.user("clinical_lead")
    svg = api.get(f"/api/pathways/{KEY}/versions/1/diagram.svg", lead, params={"instance": instance_id}).text
    flows = {f.get("id") for f in etree.parse(str(SHIPPED / f"{KEY}.bpmn")).getroot().iter(
        "{http://www.omg.org/spec/BPMN/20100524/MODEL}sequenceFlow")}
    return {element for element, mark in _marks(svg).items() if element in flows and mark}


# The flows from the start to the call, with every clinical input given (the intake gateway's default
# flow, not the one to the intake task), forking into the call and the wait for an admission.
START = {"flow_to_intake_check", "flow_inputs_complete", "flow_to_classify", "flow_to_open_record", "flow_to_fork",
         "flow_to_call", "flow_to_admission_wait"}
# The flows of the 7-day timer path up to the confirm task: reached on the call (a conditional flow
# out of patient_reached_gateway, not its default), scheduled, the window timer fired.
TO_CONFIRM = START | {"flow_to_reached_gateway", "flow_reached",
              "flow_to_schedule", "flow_to_await_visit", "flow_to_window_timer", "flow_timer_to_confirm",
              "flow_to_confirm"}
# Out of the confirmation with the visit not attended (the default flow out of visit_date_known), and
# FMC has no 30-day round: on to closing the episode.
TO_CLOSE = {"flow_to_date_known", "flow_date_known", "flow_outcome", "flow_no_thirty_day", "flow_to_close_episode"}


def test_only_the_flows_an_episode_took_are_drawn_as_taken(shipped: ApiClient, clock: ManualClock) -> None:
    """The timer path passes confirm_merge and visit_date_known, which the loop-back flow
    flow_date_missing joins: it is drawn only when the loop was taken."""
    from tests.pathways.test_post_ed_scenarios import Story, ny

    story = Story(shipped, clock, "other", 2)
    story.reach_and_schedule(visit_on="2026-01-13")
    story.at(ny(1, 13, 23, 59, 59))  # the 7-day window timer fires: confirm the visit
    assert _taken(shipped, story.id) == TO_CONFIRM  # not flow_to_visit_completed: the message never came
    story.complete("confirm_visit", visit_attended=False, confirm_notes="patient did not show")
    assert _taken(shipped, story.id) == TO_CONFIRM | TO_CLOSE  # the default "yes" flow, not flow_date_missing
    story.complete("close_episode")
    assert _taken(shipped, story.id) == TO_CONFIRM | TO_CLOSE | {"flow_to_episode_closed"}


def test_a_loop_taken_twice_and_both_branches_of_a_gateway_are_drawn(shipped: ApiClient,
                                                                      clock: ManualClock) -> None:
    from tests.pathways.test_post_ed_scenarios import Story, ny

    story = Story(shipped, clock, "other", 2)
    story.reach_and_schedule(visit_on="2026-01-13")
    story.at(ny(1, 13, 23, 59, 59))
    story.complete("confirm_visit", visit_attended=True)  # attended, no date: the conditional flow loops back
    assert _taken(shipped, story.id) == TO_CONFIRM | {"flow_to_date_known", "flow_date_missing"}
    story.complete("confirm_visit", visit_attended=True)  # round the loop a second time
    assert _taken(shipped, story.id) == TO_CONFIRM | {"flow_to_date_known", "flow_date_missing"}
    story.complete("confirm_visit", visit_attended=False)  # and out by the default flow
    assert _taken(shipped, story.id) == TO_CONFIRM | TO_CLOSE | {"flow_date_missing"}


def test_the_escalation_path_draws_the_timer_s_flow_not_the_call_s(shipped: ApiClient, clock: ManualClock) -> None:
    """An interrupting boundary timer takes the call away: the flow out of the call is not taken, the
    flow out of the timer is, and the gateway's default "no" flow (towards the same merge) is not."""
    from tests.pathways.test_post_ed_scenarios import Story, ny

    story = Story(shipped, clock, "substance_use")
    story.at(ny(1, 13, 10, 0, 0))  # the reminder (non-interrupting) and the escalation fire
    start = START
    assert _taken(shipped, story.id) == start | {"flow_to_reminder", "flow_timeout_to_escalation", "flow_to_escalation"}
    story.complete("escalate_not_reached", story.supervisor, follow_up_possible=False)
    assert _taken(shipped, story.id) == start | {"flow_to_reminder", "flow_timeout_to_escalation",
                                                 "flow_to_escalation", "flow_to_possible_gateway", "flow_not_possible"}
