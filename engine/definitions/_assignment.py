"""Who a human task goes to, as the diagram says it: read from the XML, because SpiffWorkflow's
CamundaParser drops assignee and candidates and its Spiff parser keeps them only as raw properties.

Values stay raw strings here (literals, comma-separated lists, or `${...}` expressions over instance
data); the runtime evaluates them in the sandbox when the task becomes ready.
"""

from __future__ import annotations

from typing import Any

from ._documents import Element, bpmn
from ._forms import camunda_form
from ._io_mappings import has_input_parameters

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
HUMAN_TASKS = ("userTask", "manualTask")
RULE_KEYS = ("assignee", "candidate_users", "candidate_groups", "priority", "due_date", "follow_up_date")
DATE_KEYS = ("due_date", "follow_up_date")
_CAMUNDA_ATTRS = {"assignee": "assignee", "candidateUsers": "candidate_users",
                  "candidateGroups": "candidate_groups", "priority": "priority", "dueDate": "due_date",
                  "followUpDate": "follow_up_date"}
_SPIFF_PROPERTIES = {"assignee": "assignee", "candidateUsers": "candidate_users",
                     "candidateGroups": "candidate_groups", "priority": "priority", "dueDate": "due_date",
                     "followUpDate": "follow_up_date"}
# Process-level properties (camunda:properties or spiffworkflow:properties on the process) that say how
# the pathway counts time.
_TIME_PROPERTIES = {"calendar": "calendar", "timezone": "timezone", "timeZone": "timezone",
                    "time_zone": "timezone"}


def task_rules(scopes: list[Element]) -> dict[str, dict[str, Any]]:
    """{user task id: {assignee, candidate_users, candidate_groups, priority}} for every human task."""
    rules: dict[str, dict[str, Any]] = {}
    for scope in scopes:
        looped = _in_multi_instance(scope)
        for tag in HUMAN_TASKS:
            for task in scope.iter(bpmn(tag)):
                rule = _camunda_rule(task) | _spiff_rule(task)
                form = camunda_form(task)
                if form is not None:
                    rule["form"] = form
                if has_input_parameters(task):
                    rule["local_inputs"] = True  # its form shows them: usecases/task_forms.py
                if id(task) in looped:
                    rule["instance_data"] = True  # its form shows its own instance's data: ditto
                if rule and task.get("id"):
                    rules[task.get("id") or ""] = rule
    return rules


def _in_multi_instance(scope: Element) -> set[int]:
    """The elements (by id()) inside a multi-instance activity, or multi-instance themselves: each instance
    has its own values (the item, what its steps set), which the episode's data shows only for the latest."""
    inside: set[int] = set()
    for element in scope.iter():
        if element.find(bpmn("multiInstanceLoopCharacteristics")) is not None:
            inside.update(id(e) for e in element.iter())
    return inside


def time_settings(process: Element) -> dict[str, str]:
    """{"calendar": name, "timezone": IANA zone} from the process's own extension properties."""
    settings: dict[str, str] = {}
    for extensions in process.findall(bpmn("extensionElements")):
        for container in extensions:
            if container.tag not in (f"{{{CAMUNDA_NS}}}properties", f"{{{SPIFF_NS}}}properties"):
                continue
            for prop in container:
                key = _TIME_PROPERTIES.get(prop.get("name") or "")
                value = (prop.get("value") or "").strip()
                if key and value:
                    settings[key] = value
    return settings


def _camunda_rule(task: Element) -> dict[str, Any]:
    rule = {}
    for attribute, key in _CAMUNDA_ATTRS.items():
        value = (task.get(f"{{{CAMUNDA_NS}}}{attribute}") or "").strip()
        if value:
            rule[key] = value
    form_file = json_form_key(task.get(f"{{{CAMUNDA_NS}}}formKey"))
    if form_file:
        rule["form_file"] = form_file  # resolved against the uploaded .json files, as spiff-arena's forms are
    return rule


def json_form_key(value: str | None) -> str | None:
    """The JSON Schema form file a Camunda `formKey` names ("deployment:screening.json", as Camunda 7 names
    a form deployed with the diagram); None for other form keys (embedded HTML, Camunda Forms)."""
    name = (value or "").strip().rsplit(":", 1)[-1].strip()
    return name if name.lower().endswith(".json") and "/" not in name else None


def form_file_name(value: object) -> str:
    """A form file as a diagram names it: spiff-arena's file name, or the file of a Camunda `formKey`."""
    text = str(value).strip()
    return json_form_key(text) or text


def _spiff_rule(task: Element) -> dict[str, Any]:
    rule = {}
    for prop in task.iter(f"{{{SPIFF_NS}}}property"):
        name = prop.get("name") or ""
        key = _SPIFF_PROPERTIES.get(name)
        value = (prop.get("value") or "").strip()
        if key and value:
            rule[key] = value
        elif name == "formJsonSchemaFilename" and value:
            rule["form_file"] = value  # resolved against the uploaded .json files (_json_forms.py)
    return rule
