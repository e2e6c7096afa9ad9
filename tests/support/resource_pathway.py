"""A pathway whose task asks for a community service from the resource directory (a form field with
`"format": "carepath-resource"`), started with a `domain` variable, and the shipped fictional directory
imported: for the directory search field's page and browser tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.directory import ResourceFiles
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.resources import import_resources

from . import diagrams as d
from .task_pathway import SPIFF

KEY = "choose-service"
LANE = "Care Coordinator"  # the group care-coordinator
TASK = "Choose a service — food"
EXAMPLE = Path(__file__).parents[2] / "engine" / "directory" / "examples" / "fictional-resources-example.json"
FORM: dict[str, Any] = {
    "type": "object", "required": ["service_id"],
    "properties": {"service_id": {"type": "string", "format": "carepath-resource", "title": "Service",
                                  "description": "The community service the patient is referred to"}},
}


def deploy_and_start(engine: CarePath, business_key: str = "ref-1", patient_id: str = "pat-r1",
                     domain: str | None = "food") -> str:
    """Import the example directory, deploy the pathway, start an episode; the id of its task."""
    import_resources(engine, SYSTEM, ResourceFiles(EXAMPLE.name, json=EXAMPLE.read_bytes()))
    form = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property '
            'name="formJsonSchemaFilename" value="service-form.json"/></spiffworkflow:properties>'
            '</bpmn:extensionElements>')
    xml = d.definitions(d.process(
        KEY, d.node("startEvent", "start"), d.node("userTask", "choose", TASK, body=form),
        d.node("endEvent", "end"), d.flow("f1", "start", "choose"), d.flow("f2", "choose", "end"),
        lanes={LANE: ["choose"]}))
    xml = xml.replace("<bpmn:definitions ", f"<bpmn:definitions {SPIFF} ", 1)
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{KEY}.bpmn", xml.encode()),
                                     SourceFile("service-form.json", json.dumps(FORM).encode())])
    view = start_instance(engine, SYSTEM, KEY, business_key=business_key, patient_id=patient_id,
                          data={"domain": domain} if domain else {})
    return view.open_tasks[0].id
