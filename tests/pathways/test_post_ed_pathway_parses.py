"""The shipped pathway 'post-ed-follow-up' parses, validates and runs its timer-free paths on SpiffWorkflow.

These tests read bpmn/ directly with SpiffWorkflow's CamundaParser, so a broken shipped file fails
here with SpiffWorkflow's own message, independent of the product's importer. Timers are not run:
bare SpiffWorkflow evaluates timer expressions as Python and knows neither business days (`P1BD`)
nor dates relative to a variable (`P5D after ed_visit_date`), so the parsed spec's timers are set
to a moment far in the future before running. The product's own timer classes read the diagram's
values (engine/runtime/timers.py); tests/pathways/test_post_ed_scenarios.py fires them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition, TimerEventDefinition
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.serializer import DEFAULT_CONFIG
from SpiffWorkflow.util.task import TaskState

from tests.support.bpmn_checks import assert_exclusive_gateways_have_conditions

PATHWAYS_DIR = Path(__file__).resolve().parents[2] / "bpmn"
BPMN_FILE = PATHWAYS_DIR / "post-ed-follow-up.bpmn"
DMN_FILE = PATHWAYS_DIR / "ed-visit-classification.dmn"
PROCESS_ID = "post-ed-follow-up"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
}
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(DEFAULT_CONFIG))


# -- builders ------------------------------------------------------------------------------------

def parse_spec() -> BpmnProcessSpec:
    """Parse with schema validation on: the BPMN against the OMG XSD, the DMN against DMN 1.3."""
    parser = CamundaParser(validator=BpmnValidator())
    parser.add_bpmn_file(str(BPMN_FILE))
    parser.add_dmn_file(str(DMN_FILE))
    spec = parser.get_spec(PROCESS_ID)
    postpone_timers(spec)
    return spec


def event_definitions(task_spec: Any) -> list[Any]:
    """A task spec's event definitions; an event-based gateway holds those of the events after it."""
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def timer_definitions(spec: BpmnProcessSpec) -> list[TimerEventDefinition]:
    return [d for task_spec in spec.task_specs.values() for d in event_definitions(task_spec)
            if isinstance(d, TimerEventDefinition)]


def postpone_timers(spec: BpmnProcessSpec) -> None:
    # Bare SpiffWorkflow only: it cannot read the diagram's timer values (see the module docstring).
    for definition in timer_definitions(spec):
        far = "2999-12-31T00:00:00+00:00" if isinstance(definition, TimeDateEventDefinition) else "P100Y"
        definition.expression = repr(far)


def start(data: dict[str, Any]) -> BpmnWorkflow:
    """Start as the product does: the start data on the workflow and on the ready start task."""
    workflow = BpmnWorkflow(parse_spec())
    workflow.task_tree.data.update(data)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    return run(workflow)


def start_data(diagnosis_category: str = "mental_illness", chronic_conditions: int = 0) -> dict[str, Any]:
    """Every input given, so `intake_fields` (which the engine seeds) is empty."""
    return {"ed_visit_date": "2026-03-02", "diagnosis_category": diagnosis_category,
            "high_risk_chronic_conditions": chronic_conditions, "intake_fields": []}


def save_restore(workflow: BpmnWorkflow) -> BpmnWorkflow:
    """Round-trip through JSON, as SpiffWorkflow's own tests do, and check nothing changed."""
    before = SERIALIZER.to_dict(workflow)
    restored = SERIALIZER.from_dict(json.loads(json.dumps(before)))
    assert SERIALIZER.to_dict(restored) == before
    return restored


def run(workflow: BpmnWorkflow) -> BpmnWorkflow:
    workflow.do_engine_steps()
    return save_restore(workflow)


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def ready_names(workflow: BpmnWorkflow) -> list[str]:
    return sorted(task.task_spec.bpmn_name for task in ready_user_tasks(workflow))


def waiting_ids(workflow: BpmnWorkflow) -> list[str]:
    """The BPMN ids of the events the instance waits on (timers, messages, event-based gateways)."""
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.WAITING)
                  if event_definitions(t.task_spec))


def complete(workflow: BpmnWorkflow, name: str, **data: Any) -> BpmnWorkflow:
    matching = [task for task in ready_user_tasks(workflow) if task.task_spec.bpmn_name == name]
    assert len(matching) == 1, f"expected one ready task '{name}', found {ready_names(workflow)}"
    matching[0].data.update(data)
    matching[0].run()
    return run(workflow)


def deliver_message(workflow: BpmnWorkflow, name: str, payload: dict[str, Any]) -> BpmnWorkflow:
    """Send a Camunda-style message to the task waiting for it, inside an event-based gateway too."""
    for task in workflow.get_tasks(state=TaskState.WAITING):
        for candidate in event_definitions(task.task_spec):
            if isinstance(candidate, MessageEventDefinition) and candidate.name == name:
                workflow.catch(BpmnEvent(candidate, payload={"payload": payload, "result_var": None}))
                return run(workflow)
    raise AssertionError(f"no task waits for message '{name}'")


def reach_scheduling() -> BpmnWorkflow:
    workflow = start(start_data())
    return complete(workflow, "Call patient", reached=True, call_notes="Feeling better; agreed to a visit")


# -- the files -----------------------------------------------------------------------------------

def test_bpmn_is_valid_against_the_omg_schema() -> None:
    BpmnValidator().validate(etree.parse(str(BPMN_FILE)).getroot(), str(BPMN_FILE))


def test_every_element_is_drawn_so_the_diagram_opens_tidy_in_bpmn_io() -> None:
    root = etree.parse(str(BPMN_FILE)).getroot()
    process = root.find(f"bpmn:process[@id='{PROCESS_ID}']", NS)
    assert process is not None and process.get("isExecutable") == "true"
    not_drawn = {"documentation", "extensionElements", "laneSet"}
    drawable = {e.get("id") for e in process if etree.QName(e).localname not in not_drawn}
    drawable |= {e.get("id") for e in root.iterfind(".//bpmn:lane", NS)}
    drawable |= {e.get("id") for e in root.iterfind(".//bpmn:participant", NS)}
    drawn = {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNShape", NS)}
    drawn |= {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert drawable - drawn == set()


def test_every_conditional_flow_out_of_an_exclusive_gateway_has_a_condition() -> None:
    assert_exclusive_gateways_have_conditions(etree.parse(str(BPMN_FILE)).getroot())


def test_timers_are_written_as_bare_values_like_camunda_modeler_does() -> None:
    root = etree.parse(str(BPMN_FILE)).getroot()
    timers = {event.get("id"): (etree.QName(value).localname, value.text)
              for event in root.iter() if event.find("bpmn:timerEventDefinition", NS) is not None
              for value in event.find("bpmn:timerEventDefinition", NS)}
    assert timers == {"call_reminder_timer": ("timeDuration", "P1BD"),
                      "call_escalation_timer": ("timeDuration", "P2BD"),
                      "follow_up_window_timer": ("timeDate", "P5D after ed_visit_date"),
                      "follow_up_window_timer_30": ("timeDate", "P28D after ed_visit_date")}


def test_every_human_task_has_a_due_date_and_a_form() -> None:
    root = etree.parse(str(BPMN_FILE)).getroot()
    camunda = "{http://camunda.org/schema/1.0/bpmn}"
    due = {task.get("id"): task.get(f"{camunda}dueDate") for task in root.iterfind(".//bpmn:userTask", NS)}
    assert due == {
        "complete_intake": "P1BD", "call_patient": "P1BD", "remind_call_patient": "P1BD",
        "escalate_not_reached": "P1BD end of day",
        "schedule_follow_up": "P1BD end of day", "confirm_visit": "P7D after ed_visit_date end of day",
        "schedule_follow_up_30": "P1BD end of day", "confirm_visit_30": "P30D after ed_visit_date end of day",
        "close_episode": "P1BD end of day"}
    without_form = [task.get("id") for task in root.iterfind(".//bpmn:userTask", NS)
                    if task.find(f".//{camunda}formField") is None]
    assert without_form == []


def test_the_reminder_timer_does_not_interrupt_the_call_and_the_escalation_timer_does() -> None:
    spec = parse_spec()
    assert spec.task_specs["call_reminder_timer"].cancel_activity is False
    assert spec.task_specs["call_escalation_timer"].cancel_activity is True


# -- running it ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("diagnosis_category", "chronic_conditions", "measure"), [
    ("mental_illness", 0, "FUM"),
    ("substance_use", 0, "FUA"),
    ("other", 2, "FMC"),
    ("other", 0, "general"),
    ("mental_illness", 3, "FUM"),  # FIRST hit policy: FUM outranks FMC, it adds the 30-day follow-up
    ("injury", 1, "general"),
])
def test_the_visit_is_classified_and_the_coordinator_calls_the_patient(
        diagnosis_category: str, chronic_conditions: int, measure: str) -> None:
    workflow = start(start_data(diagnosis_category, chronic_conditions))

    (call,) = ready_user_tasks(workflow)
    assert call.task_spec.bpmn_name == "Call patient"
    assert call.task_spec.lane == "Care Coordinator"
    assert call.data["measure"] == measure
    assert call.data["ed_visit_date"] == "2026-03-02"


def test_call_patient_offers_its_form_fields_and_requires_the_one_the_gateway_reads() -> None:
    (call,) = ready_user_tasks(start(start_data()))
    fields = [(f.id, f.type, [v.name for v in f.validation]) for f in call.task_spec.form.fields]
    assert fields == [("reached", "boolean", ["required"]), ("call_notes", "string", [])]


def test_the_call_waits_under_a_reminder_and_an_escalation_timer() -> None:
    workflow = start(start_data())
    assert waiting_ids(workflow) == ["call_escalation_timer", "call_reminder_timer", "ed_visit_admitted_reported"]


def test_a_reached_patient_goes_to_scheduling() -> None:
    workflow = reach_scheduling()

    assert ready_names(workflow) == ["Schedule follow-up visit"]
    assert ready_user_tasks(workflow)[0].task_spec.lane == "Care Coordinator"
    assert waiting_ids(workflow) == ["ed_visit_admitted_reported"]  # reaching the patient cancelled both call timers


def test_a_patient_not_reached_goes_to_the_supervisor() -> None:
    workflow = complete(start(start_data()), "Call patient", reached=False, call_notes="No answer twice")

    (escalation,) = ready_user_tasks(workflow)
    assert escalation.task_spec.bpmn_name == "Escalation: patient not reached"
    assert escalation.task_spec.lane == "Care Team Supervisor"


def test_the_supervisor_can_send_the_patient_back_to_scheduling() -> None:
    workflow = complete(start(start_data()), "Call patient", reached=False)
    workflow = complete(workflow, "Escalation: patient not reached", follow_up_possible=True)

    assert ready_names(workflow) == ["Schedule follow-up visit"]


def test_the_supervisor_can_close_the_episode_when_the_patient_cannot_be_reached() -> None:
    workflow = complete(start(start_data()), "Call patient", reached=False)
    workflow = complete(workflow, "Escalation: patient not reached", follow_up_possible=False)

    assert workflow.is_completed()
    ends = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if t.task_spec.bpmn_id in ("closed_not_reached", "episode_closed")]
    assert ends == ["closed_not_reached"]


def test_after_scheduling_the_pathway_waits_for_the_visit_or_the_5_day_check() -> None:
    workflow = complete(reach_scheduling(), "Schedule follow-up visit",
                        follow_up_date="2026-03-06", follow_up_provider="Riverside Behavioral Health")

    assert ready_user_tasks(workflow) == []
    assert waiting_ids(workflow) == ["await_visit_gateway", "ed_visit_admitted_reported"]
    (gateway,) = [t for t in workflow.get_tasks(state=TaskState.WAITING)
                  if t.task_spec.bpmn_id == "await_visit_gateway"]
    kinds = sorted(type(d).__name__ for d in event_definitions(gateway.task_spec))
    assert kinds == ["MessageEventDefinition", "TimeDateEventDefinition"]


def test_a_completed_visit_message_leads_to_closing_the_episode() -> None:
    workflow = complete(reach_scheduling(), "Schedule follow-up visit", follow_up_date="2026-03-06",
                        follow_up_provider="Riverside Behavioral Health")

    workflow = deliver_message(workflow, "visit_completed", {"visit_date": "2026-03-06"})

    (close,) = ready_user_tasks(workflow)
    assert close.task_spec.bpmn_name == "Close episode"
    # SpiffWorkflow's Camunda family stores a caught payload under "<catching element>_Response";
    # the script task copies the date to the variable the measures read.
    assert close.data["await_visit_gateway_Response"] == {"visit_date": "2026-03-06"}
    assert close.data["follow_up_visit_date"] == "2026-03-06" and close.data["visit_attended"] is True
    workflow = complete(workflow, "Close episode", closing_notes="Seen on day 4")
    assert workflow.is_completed()


def test_a_start_without_the_chronic_conditions_asks_the_coordinator_first() -> None:
    data = {**start_data("other"), "intake_fields": ["high_risk_chronic_conditions"]}
    del data["high_risk_chronic_conditions"]
    workflow = start(data)
    (intake,) = ready_user_tasks(workflow)
    assert (intake.task_spec.bpmn_name, intake.task_spec.lane) == (
        "Complete the intake: chronic conditions", "Care Coordinator")
    fields = [(f.id, f.type, [(v.name, v.config) for v in f.validation]) for f in intake.task_spec.form.fields]
    assert fields == [("high_risk_chronic_conditions", "long", [("required", None), ("min", "0")])]
    assert waiting_ids(workflow) == ["admitted_during_intake"]  # an admission ends the intake too
    (call,) = ready_user_tasks(complete(workflow, "Complete the intake: chronic conditions",
                                        high_risk_chronic_conditions=2))
    assert (call.task_spec.bpmn_name, call.data["measure"]) == ("Call patient", "FMC")


def test_an_ed_visit_that_became_an_admission_ends_every_open_task() -> None:
    workflow = complete(reach_scheduling(), "Schedule follow-up visit", follow_up_date="2026-03-06",
                        follow_up_provider="Riverside Behavioral Health")
    assert workflow.get_tasks(state=TaskState.COMPLETED)[-1].data["ed_visit_admitted"] is False

    workflow = deliver_message(workflow, "ed_visit_admitted", {"admit_date": "2026-03-04"})

    assert workflow.is_completed() and ready_user_tasks(workflow) == [] and waiting_ids(workflow) == []
    assert workflow.data["ed_visit_admitted"] is True
    ends = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if t.task_spec.bpmn_id in ("episode_closed", "closed_not_reached", "episode_ended_admitted")]
    assert ends == ["episode_ended_admitted"]
