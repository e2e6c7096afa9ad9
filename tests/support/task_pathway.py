"""A pathway whose first task has a form with every kind of field (a spiff-arena JSON Schema form file),
for the web app's task page and start page tests."""

from __future__ import annotations

import json
from typing import Any

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance

from . import diagrams as d

KEY = "callfu"
LANE = "Care Coordinator"  # the group care-coordinator
CLINICS = [{"const": f"clinic-{n}", "title": f"Clinic {n}"} for n in "ABCDE"]
CALL_FORM: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["reached", "outcome", "visit_date"],
    "properties": {
        "reached": {"type": "boolean", "title": "Patient reached"},
        "interpreter": {"type": "boolean", "title": "Interpreter needed"},
        "outcome": {"enum": ["booked", "declined", "unreachable"], "title": "Outcome"},
        "clinic": {"oneOf": CLINICS, "title": "Clinic", "description": "Where the visit is booked"},
        "visit_date": {"type": "string", "format": "date", "title": "Visit date"},
        "call_back_at": {"type": "string", "format": "date-time", "title": "Call back at"},
        "attempts": {"type": "integer", "minimum": 0, "title": "Call attempts"},
        "weight": {"type": "number", "title": "Weight (kg)"},
        "provider": {"type": "string", "title": "Provider"},
        "call_notes": {"type": "string", "title": "Call notes"},
    },
}
START_DATA: dict[str, Any] = {
    "type": "object", "required": ["ed_visit_date", "conditions"],
    "properties": {
        "ed_visit_date": {"type": "string", "format": "date", "title": "Date of the ED visit"},
        "conditions": {"type": "integer", "minimum": 0, "title": "High-risk chronic conditions"},
    },
}
SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'


def call_pathway_files() -> list[SourceFile]:
    form = ('<bpmn:documentation>Phone the patient and book a follow-up visit.</bpmn:documentation>'
            '<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property '
            'name="formJsonSchemaFilename" value="call-form.json"/></spiffworkflow:properties>'
            '</bpmn:extensionElements>')
    xml = d.definitions(d.process(
        KEY, d.node("startEvent", "start"),
        d.node("userTask", "call", "Call patient", body=form, **{"camunda:dueDate": "P1D"}),
        d.node("userTask", "review", "Review the call"), d.node("endEvent", "end"),
        d.flow("f1", "start", "call"), d.flow("f2", "call", "review"), d.flow("f3", "review", "end"),
        lanes={LANE: ["call", "review"]}))
    xml = xml.replace("<bpmn:definitions ", f"<bpmn:definitions {SPIFF} {CAMUNDA} ", 1)
    sidecar = {"start_data": START_DATA}
    return [SourceFile(f"{KEY}.bpmn", xml.encode()), SourceFile("call-form.json", json.dumps(CALL_FORM).encode()),
            SourceFile(f"{KEY}.pathway.json", json.dumps(sidecar).encode())]


def deploy_call_pathway(engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, call_pathway_files())


def start_call(engine: CarePath, business_key: str, patient_id: str) -> str:
    """Start an episode; the id of its first task (Call patient)."""
    view = start_instance(engine, SYSTEM, KEY, business_key=business_key, patient_id=patient_id,
                          data={"ed_visit_date": "2026-03-02", "conditions": 1})
    return view.open_tasks[0].id
