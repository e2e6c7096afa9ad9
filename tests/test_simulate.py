# ruff: noqa: E501 (the expected output is the command's own lines, which can be longer)
"""`carepath simulate`: the shipped post-ED pathway walked with no server and no database, its timers
fired as the simulated clock passes them, due dates from the business calendar, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from carepath.api.bootstrap import deploy_directory
from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.persistence.tables import PathwayVersion
from tests.support import diagrams as d

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
POST_ED = SHIPPED / "post-ed-follow-up.bpmn"
FRIDAY_NIGHT = "2026-03-06T23:30:00-05:00"  # the night before the clocks go forward in New York

HEADER = f"""\
Pathway: Follow-up after an emergency department visit (post-ed-follow-up), from {POST_ED}
Also read: {SHIPPED / 'ed-visit-classification.dmn'} (decision 'ed_visit_classification', found beside it)
Also read: {SHIPPED / 'post-ed-follow-up.pathway.json'} (its measures and example data, found beside it)
Times: America/New_York, business calendar us-federal
Start data (the pathway's example data, post-ed-follow-up.pathway.json):
  ed_visit_date = "2026-03-02"
  diagnosis_category = "mental_illness"
  high_risk_chronic_conditions = 0

Fri 2026-03-06 23:30 EST  Started
  passed      ED discharge reported (start event)
  passed      Clinical inputs complete? (exclusive gateway)
  passed      intake_merge (exclusive gateway)
  passed      Classify ED visit (business rule task)
  passed      Open follow-up record (script task)
  passed      Work the episode and watch for an admission (parallel gateway)
  task ready  Call patient [call_patient]
              offered to group care-coordinator (lane Care Coordinator); due Mon 2026-03-09 23:30 EDT
  timer set   1 business day, call not done: due Mon 2026-03-09 23:30 EDT
  timer set   2 business days, call not done: due Tue 2026-03-10 23:30 EDT
  alert set   reminder about 'Call patient' at Sun 2026-03-08 12:00 EDT, to group care-coordinator
  alert set   'Call patient' overdue at Mon 2026-03-09 23:30 EDT, to supervisors of group care-coordinator
  waits for   message ed_visit_admitted
"""

@pytest.fixture(autouse=True)
def no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """simulate never opens a database: the configured one must not even be created."""
    database = tmp_path / "must-not-exist.db"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.delenv("CAREPATH_LANE_GROUPS", raising=False)
    return database


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["simulate", *args])
    except SystemExit as exc:  # argparse refuses the arguments
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_happy_path_from_the_example_data_to_the_closed_episode(capsys: pytest.CaptureFixture[str],
                                                                no_database: Path) -> None:
    code, out, err = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT,
                         "--choose", 'call_patient={"reached": true, "call_notes": "spoke with patient"}',
                         "--choose",
                         'Schedule follow-up visit={"follow_up_provider": "Dr Lee", "follow_up_date": "2026-03-09"}',
                         "--message", 'visit_completed={"visit_date": "2026-03-09"}',
                         "--choose", "close_episode")
    assert (code, err) == (0, "")
    assert out == HEADER + """
Fri 2026-03-06 23:30 EST  Completed 'Call patient' with reached=true, call_notes="spoke with patient"
  passed      Call patient (user task)
  passed      Patient reached? (exclusive gateway)
  passed      schedule_merge (exclusive gateway)
  timer off   1 business day, call not done
  timer off   2 business days, call not done
  task ready  Schedule follow-up visit [schedule_follow_up]
              offered to group care-coordinator (lane Care Coordinator); due Mon 2026-03-09 23:59:59 EDT
  alert set   reminder about 'Schedule follow-up visit' at Sun 2026-03-08 12:14:59 EDT, to group care-coordinator
  alert set   'Schedule follow-up visit' overdue at Mon 2026-03-09 23:59:59 EDT, to supervisors of group care-coordinator

Fri 2026-03-06 23:30 EST  Completed 'Schedule follow-up visit' with follow_up_provider="Dr Lee", follow_up_date="2026-03-09"
  passed      Schedule follow-up visit (user task)
  timer set   5 days after the ED visit, no visit reported: due Sat 2026-03-07 23:59:59 EST
  waits for   message visit_completed

Fri 2026-03-06 23:30 EST  Message 'visit_completed' arrived with visit_date="2026-03-09"
  passed      Wait for the visit (event based gateway)
  passed      Follow-up visit completed (intermediate catch event)
  passed      Record visit date (script task)
  passed      visit_outcome_merge (exclusive gateway)
  passed      30-day follow-up needed? (exclusive gateway)
  passed      close_merge (exclusive gateway)
  timer off   5 days after the ED visit, no visit reported
  task ready  Close episode [close_episode]
              offered to group care-coordinator (lane Care Coordinator); due Mon 2026-03-09 23:59:59 EDT
  alert set   reminder about 'Close episode' at Sun 2026-03-08 12:14:59 EDT, to group care-coordinator
  alert set   'Close episode' overdue at Mon 2026-03-09 23:59:59 EDT, to supervisors of group care-coordinator

Fri 2026-03-06 23:30 EST  Completed 'Close episode' with no data
  passed      Close episode (user task)
  passed      Episode closed (terminate end event)

End: Fri 2026-03-06 23:30 EST, the pathway has ended
  data        measure = "FUM"
  data        follow_up_visit_date = "2026-03-09"
  data        ed_visit_admitted = false
  data        reached = true
  data        call_notes = "spoke with patient"
  data        follow_up_provider = "Dr Lee"
  data        follow_up_date = "2026-03-09"
  data        await_visit_gateway_Response = {"visit_date": "2026-03-09"}
  data        visit_attended = true

Path taken: ED discharge reported > Clinical inputs complete? > intake_merge > Classify ED visit > Open
  follow-up record > Work the episode and watch for an admission > Call patient > Patient reached? >
  schedule_merge > Schedule follow-up visit > Wait for the visit > Follow-up visit completed > Record visit
  date > visit_outcome_merge > 30-day follow-up needed? > close_merge > Close episode > Episode closed
"""
    assert not no_database.exists()


def test_advancing_four_days_fires_the_business_day_reminder_then_the_escalation_across_the_clock_change(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT, "--advance", "P4D",
                       "--choose", 'escalate_not_reached={"follow_up_possible": false}')
    assert code == 0
    assert out == HEADER + """
Fri 2026-03-06 23:30 EST  Clock advances by P4D, to Tue 2026-03-10 23:30 EDT

Sun 2026-03-08 12:00 EDT  Deadline alert: reminder about 'Call patient'
  alert sent  reminder about 'Call patient', to group care-coordinator

Mon 2026-03-09 23:30 EDT  Deadline alert: 'Call patient' overdue
  alert sent  'Call patient' overdue, to supervisors of group care-coordinator

Mon 2026-03-09 23:30 EDT  Timer fired: 1 business day, call not done
  passed      1 business day, call not done (timer boundary event)
  task ready  Reminder: call patient not yet done [remind_call_patient]
              offered to group care-coordinator (lane Care Coordinator); due Tue 2026-03-10 23:30 EDT
  alert set   reminder about 'Reminder: call patient not yet done' at Tue 2026-03-10 11:30 EDT, to group care-coordinator
  alert set   'Reminder: call patient not yet done' overdue at Tue 2026-03-10 23:30 EDT, to supervisors of group care-coordinator

Tue 2026-03-10 11:30 EDT  Deadline alert: reminder about 'Reminder: call patient not yet done'
  alert sent  reminder about 'Reminder: call patient not yet done', to group care-coordinator

Tue 2026-03-10 23:30 EDT  Deadline alert: 'Reminder: call patient not yet done' overdue
  alert sent  'Reminder: call patient not yet done' overdue, to supervisors of group care-coordinator

Tue 2026-03-10 23:30 EDT  Timer fired: 2 business days, call not done
  passed      2 business days, call not done (timer boundary event)
  passed      escalation_merge (exclusive gateway)
  cancelled   Call patient [call_patient]
  task ready  Escalation: patient not reached [escalate_not_reached]
              offered to group care-team-supervisor (lane Care Team Supervisor); due Wed 2026-03-11 23:59:59 EDT
  alert set   reminder about 'Escalation: patient not reached' at Wed 2026-03-11 11:44:59 EDT, to group care-team-supervisor
  alert set   'Escalation: patient not reached' overdue at Wed 2026-03-11 23:59:59 EDT, to supervisors of group care-team-supervisor

Tue 2026-03-10 23:30 EDT  Completed 'Escalation: patient not reached' with follow_up_possible=false
  passed      Escalation: patient not reached (user task)
  passed      Follow-up still possible? (exclusive gateway)
  passed      Closed: patient not reached (terminate end event)
  cancelled   Reminder: call patient not yet done [remind_call_patient]

End: Tue 2026-03-10 23:30 EDT, the pathway has ended
  data        measure = "FUM"
  data        follow_up_visit_date = null
  data        ed_visit_admitted = false
  data        follow_up_possible = false

Path taken: ED discharge reported > Clinical inputs complete? > intake_merge > Classify ED visit > Open
  follow-up record > Work the episode and watch for an admission > 1 business day, call not done > 2 business
  days, call not done > escalation_merge > Escalation: patient not reached > Follow-up still possible? >
  Closed: patient not reached
"""


def test_steps_run_in_the_order_given_so_the_call_can_come_after_the_reminder(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT, "--advance", "P3D",
                       "--choose", "remind_call_patient", "--choose", 'call_patient={"reached": true}',
                       "--advance", "P3D", "--json")
    assert code == 0
    result = json.loads(out)
    moments = [(m["at"], m["cause"], m["subject"]) for m in result["moments"]]
    assert moments == [
        ("2026-03-07T04:30:00+00:00", "start", None),
        ("2026-03-07T04:30:00+00:00", "advance", "P3D"),
        ("2026-03-08T16:00:00+00:00", "alert", None),  # half the call's time gone
        ("2026-03-10T03:30:00+00:00", "alert", None),  # the call is overdue: Monday 23:30, 1 business day
        ("2026-03-10T03:30:00+00:00", "timer", "1 business day, call not done"),
        ("2026-03-10T03:30:00+00:00", "complete", "Reminder: call patient not yet done"),
        ("2026-03-10T03:30:00+00:00", "complete", "Call patient"),
        ("2026-03-10T03:30:00+00:00", "advance", "P3D"),
        ("2026-03-10T15:44:59.500000+00:00", "alert", None),  # scheduling: half its time gone
        ("2026-03-11T03:59:59+00:00", "alert", None),  # scheduling overdue at the end of Tuesday
    ]
    called = result["moments"][6]
    assert [t["name"] for t in called["timers_cancelled"]] == ["2 business days, call not done"]
    assert [t["element_id"] for t in result["open_tasks"]] == ["schedule_follow_up"]
    assert result["ended_at"] == "2026-03-13T03:30:00+00:00"
    assert result["files"] == [str(POST_ED), str(SHIPPED / "ed-visit-classification.dmn"),
                               str(SHIPPED / "post-ed-follow-up.pathway.json")]


DATED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://carepath.test">
  <bpmn:process id="tcm-contact" name="TCM contact" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="Care Coordinator">
      <bpmn:flowNodeRef>contact</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="discharged" name="Discharged"/>
    <bpmn:scriptTask id="risk" name="Work out risk">
      <bpmn:script>risk = "high" if readmissions &gt; 1 else "low"</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="contact" name="Contact patient" camunda:dueDate="P2BD after discharge_at end of day"
                   camunda:priority="${80 if risk == 'high' else 50}"/>
    <bpmn:endEvent id="contacted" name="Contacted"/>
    <bpmn:sequenceFlow id="f1" sourceRef="discharged" targetRef="risk"/>
    <bpmn:sequenceFlow id="f2" sourceRef="risk" targetRef="contact"/>
    <bpmn:sequenceFlow id="f3" sourceRef="contact" targetRef="contacted"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def dated(tmp_path: Path) -> Path:
    """Discharged on the Thursday before the Independence Day holiday (observed Friday 3 July 2026)."""
    folder = tmp_path / "pathways"
    folder.mkdir()
    (folder / "tcm-contact.bpmn").write_text(DATED)
    (folder / "tcm-contact.pathway.json").write_text(json.dumps(
        {"example_data": {"discharge_at": "2026-07-02T15:00:00", "readmissions": 2}}))
    return folder / "tcm-contact.bpmn"


def test_due_dates_count_business_days_and_deadline_alerts_fire_as_time_passes(
        capsys: pytest.CaptureFixture[str], dated: Path) -> None:
    code, out, _ = run(capsys, str(dated), "--start", "2026-07-02T23:59:59", "--advance", "P6D")
    assert code == 0
    assert out.split("\n\n", 1)[1] == """\
Thu 2026-07-02 23:59:59 EDT  Started
  passed      Discharged (start event)
  passed      Work out risk (script task)
  task ready  Contact patient [contact]
              offered to group care-coordinator (lane Care Coordinator); due Tue 2026-07-07 23:59:59 EDT; priority 80
  alert set   reminder about 'Contact patient' at Sun 2026-07-05 11:59:59 EDT, to group care-coordinator
  alert set   'Contact patient' overdue at Tue 2026-07-07 23:59:59 EDT, to supervisors of group care-coordinator

Thu 2026-07-02 23:59:59 EDT  Clock advances by P6D, to Wed 2026-07-08 23:59:59 EDT

Sun 2026-07-05 11:59:59 EDT  Deadline alert: reminder about 'Contact patient'
  alert sent  reminder about 'Contact patient', to group care-coordinator

Tue 2026-07-07 23:59:59 EDT  Deadline alert: 'Contact patient' overdue
  alert sent  'Contact patient' overdue, to supervisors of group care-coordinator

End: Wed 2026-07-08 23:59:59 EDT, the pathway is waiting
  open task   Contact patient [contact]
              offered to group care-coordinator (lane Care Coordinator); due Tue 2026-07-07 23:59:59 EDT; priority 80
  data        risk = "high"

Path taken: Discharged > Work out risk
"""


def test_lane_groups_come_from_the_configuration(capsys: pytest.CaptureFixture[str], dated: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_LANE_GROUPS", '{"Care Coordinator": "tcm-nurses"}')
    code, out, _ = run(capsys, str(dated), "--start", "2026-07-02T23:59:59", "--choose", "Contact patient")
    assert code == 0
    assert "offered to group tcm-nurses (lane Care Coordinator)" in out
    assert "End: Thu 2026-07-02 23:59:59 EDT, the pathway has ended" in out


def test_the_command_exits_cleanly_after_running_scripts_in_the_sandbox(dated: Path, tmp_path: Path) -> None:
    env = {"CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "carepath.api.cli", "simulate", str(dated), "--start",
                             "2026-07-02T09:00", "--choose", "contact"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Work out risk (script task)" in result.stdout and "the pathway has ended" in result.stdout
    assert "Traceback" not in result.stderr and not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "{ed_visit_date: 2026-03-02}"], "argument --data: --data is not valid JSON"),
    (["--data", "[1, 2]"], "--data must be a JSON object"),
    (["--choose", "call_patient={reached: true}"], "the data for 'call_patient' is not valid JSON"),
    (["--choose", 'call_patient=["yes"]'], "the data for 'call_patient' must be a JSON object"),
    (["--choose", '={"reached": true}'], "names no task"),
    (["--advance", "3 days"], "'3 days' is not a duration such as P3D"),
    (["--start", "Friday night"], "'Friday night' is not an ISO 8601 date-time"),
    (["--choose", "phone_patient"], "the pathway has no user task 'phone_patient'; its user tasks are: "
                                    "complete_intake (Complete the intake: chronic conditions), "
                                    "call_patient (Call patient), remind_call_patient"),
])
def test_bad_arguments_are_usage_errors_not_tracebacks(capsys: pytest.CaptureFixture[str], args: list[str],
                                                       message: str) -> None:
    code, out, err = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT, *args)
    assert code == 2
    assert message in err and out == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--choose", "escalate_not_reached"], "task 'Escalation: patient not reached' (escalate_not_reached) is not "
                                           "ready at 2026-03-06T23:30:00-05:00; ready: Call patient; next timer: "
                                           "'1 business day, call not done' at 2026-03-09T23:30:00-04:00"),
    (["--choose", 'call_patient={"reached": "yes"}'], "'reached': 'yes' is not of type 'boolean'"),
    (["--choose", 'call_patient={"reched": true}'], "('reched' was unexpected); the form's fields are: "
                                                    "call_notes, reached"),
    (["--message", "visit_completed"], "the pathway is not waiting for message 'visit_completed'"),
])
def test_a_step_that_does_not_fit_stops_the_walk_with_exit_1(capsys: pytest.CaptureFixture[str], args: list[str],
                                                            message: str) -> None:
    code, out, err = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT, *args)
    assert code == 1
    assert message in err
    assert "Started" in out  # the story up to the step that did not fit is still told


def test_an_incident_stops_the_walk_with_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    failing = tmp_path / "failing.bpmn"
    failing.write_text(d.script_then_task("failing", "risk = undefined_score * 2"))
    code, out, err = run(capsys, str(failing), "--start", FRIDAY_NIGHT)
    assert code == 1 and "the pathway stopped with an incident" in err and "Started" in out


def test_start_data_that_does_not_fit_the_pathway_is_refused_before_the_walk(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(POST_ED), "--start", FRIDAY_NIGHT, "--data", '{"ed_visit_date": "2026-03-02"}')
    assert code == 1 and out == ""
    assert "does not fit what post-ed-follow-up needs to start" in err and "'diagnosis_category' is required" in err


def test_without_data_or_example_data_it_starts_with_none_and_says_where_to_put_them(
        capsys: pytest.CaptureFixture[str], dated: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.bpmn"
    bare.write_text(d.linear_user_tasks("bare", "Call patient"))
    code, out, err = run(capsys, str(bare))
    assert code == 0 and "Call patient" in out
    assert "note: no start data given: starting with none ({})" in err
    assert f"document the pathway's example start data in {tmp_path / 'bare.pathway.json'}" in err
    (tmp_path / "bare.pathway.json").write_text('{"example_data": [1]}')
    code, _, err = run(capsys, str(bare))
    assert code == 1 and '"example_data" must be a JSON object' in err


def test_the_shipped_example_data_is_the_start_data_the_pathway_documentation_documents() -> None:
    page = (SHIPPED.parent / "docs" / "pathways" / "post-ed-follow-up.md").read_text()
    documented = json.loads(page.split("## Start data\n\n```json\n", 1)[1].split("```", 1)[0])
    sidecar = json.loads((SHIPPED / "post-ed-follow-up.pathway.json").read_text())
    assert sidecar["example_data"] == documented


def test_the_shipped_folder_deploys_each_pathway_with_its_sidecar(engine: CarePath) -> None:
    """The sidecar carries the measures and example data: deployed with the pathway, once."""
    keys = ["post-ed-follow-up", "sdoh-screening-referral", "specialist-referral", "transition-of-care"]
    assert sorted(deploy_directory(engine, SHIPPED)) == [f"{key} v1 (new)" for key in keys]
    assert sorted(deploy_directory(engine, SHIPPED)) == [f"{key} v1" for key in keys]  # same content: no v2
    with engine.db.read() as session:
        for key in keys:
            version = session.scalars(select(PathwayVersion).where(PathwayVersion.key == key)).one()
            sidecar = json.loads((SHIPPED / f"{key}.pathway.json").read_text())
            assert version.example_data == sidecar["example_data"]
            assert [m["id"] for m in version.measures] == [m["id"] for m in sidecar.get("measures", [])]


def test_a_called_process_beside_the_pathway_is_walked_into(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    (tmp_path / "parent.bpmn").write_text(d.call_activity("parent", "child"))
    (tmp_path / "child.bpmn").write_text(d.linear_user_tasks("child", "Child step"))
    code, out, _ = run(capsys, str(tmp_path / "parent.bpmn"), "--data", "{}", "--start", "2026-01-05T09:00",
                       "--choose", "Child step")
    assert code == 0
    assert f"Also read: {tmp_path / 'child.bpmn'} (process 'child', found beside it)" in out
    assert """
Mon 2026-01-05 09:00 EST  Completed 'Child step' with no data
  passed      Child step (user task, in child)
  passed      end (end event, in child)
  passed      Run sub-pathway (call activity)
  task ready  After call [after]
              offered to everyone; no due date
""" in out
