"""Checks on what elements point to: decisions, called processes, messages, data objects and stores."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ..errors import Problem
from ._describe import describe, label_of, problem_at
from ._documents import CAMUNDA_NS, NSMAP, Document, Element, bpmn, is_bpmn, local_name
from ._executability import NOT_EXECUTABLE_FIX, declared, has_steps, is_executable
from ._index import enclosing_scope
from ._io_mappings import io_mapping_problems
from ._service_tasks import implementation_of, service_task_problems, service_task_warnings
from ._walk import Site

_EVENT_REFERENCES = {
    "messageEventDefinition": ("messageRef", "message"),
    "signalEventDefinition": ("signalRef", "signal"),
    "errorEventDefinition": ("errorRef", "error"),
    "escalationEventDefinition": ("escalationRef", "escalation"),
}


def decision_ref(element: Element, family: str) -> str | None:
    """The decision a business rule task names, where the family's parser looks for it."""
    if family == "camunda":
        return element.get(f"{{{CAMUNDA_NS}}}decisionRef")
    if family == "spiff":
        found = element.xpath("./bpmn:extensionElements/spiffworkflow:calledDecisionId",
                              namespaces=NSMAP)
        return ((found[0].text or "").strip() or None) if found else None
    return None


def missing_decision_ref(site: Site) -> Problem:
    where = {
        "spiff": "In the SpiffWorkflow editor select the task and choose the decision in 'Decision ID'.",
        "camunda": "In Camunda Modeler select the task, set Implementation to 'DMN' and enter the decision "
                   "id as 'Decision reference'.",
        "bpmn": "Plain BPMN has no place to say so: in Camunda Modeler select the task, set Implementation "
                "to 'DMN' and enter the decision id as 'Decision reference'.",
    }[site.index.family]
    return site.problem(f"{describe(site.element)} does not say which DMN decision it uses. {where}")


def _business_rule(site: Site) -> Iterator[Problem]:
    if local_name(site.element) != "businessRuleTask":
        return
    ref = decision_ref(site.element, site.index.family)
    if ref is None:
        yield missing_decision_ref(site)
        return
    found = site.index.decisions.get(ref)
    if found is None:
        yield site.problem(f"{describe(site.element)} refers to decision '{ref}' but no uploaded DMN file "
                           "defines it. Upload the .dmn file together with the .bpmn file.")
        return
    dmn, decision = found
    decisions = dmn.root.xpath(".//*[local-name()='decision']")
    if len(decisions) > 1:
        yield site.problem(f"{describe(site.element)} refers to decision '{ref}' in '{dmn.name}', which "
                           f"holds {len(decisions)} decisions; CarePath reads DMN files with a single "
                           "decision. Save each decision in its own .dmn file.")
    elif not any(local_name(child) == "decisionTable" for child in decision):
        yield site.problem(f"{describe(site.element)} refers to decision '{ref}' in '{dmn.name}', which is "
                           "not a decision table. CarePath runs decision tables only.")


def _call_activity(site: Site) -> Iterator[Problem]:
    if local_name(site.element) != "callActivity":
        return
    called = (site.element.get("calledElement") or "").strip()
    if not called:
        yield site.problem(_no_called_element_message(site.element))
    elif "${" in called or "#{" in called:
        yield site.problem(f"{describe(site.element)} chooses the process to call with the expression "
                           f"'{called}'. CarePath needs the fixed id of the process to call.")
    elif called in site.index.processes:
        target = site.index.processes[called][1]
        if not is_executable(target) and declared(target) is None and not has_steps(target):
            yield site.problem(f"{describe(site.element)} calls process '{called}', which has no start event "
                               "or activity, so there is nothing to run. Draw its steps, or call another process.")
        elif not is_executable(target):
            yield site.problem(f"{describe(site.element)} calls process '{called}', which is not marked "
                               f"executable. {NOT_EXECUTABLE_FIX}")
    elif (global_task := _global_task(site, called)) is not None:
        yield site.problem(f"{describe(site.element)} calls '{called}', which is a {global_task}: a task defined "
                           "once for reuse, which CarePath does not run. CarePath calls processes: draw the task "
                           "in the process instead, or make it a process of its own and call that.")
    elif called not in site.index.known_process_ids:
        yield site.problem(f"{describe(site.element)} calls process '{called}', which is neither in this "
                           f"upload nor deployed. Upload the file that defines '{called}' in the same "
                           "package, or deploy it first.")


def _global_task(site: Site, called: str) -> str | None:
    """'global user task' when `called` is a BPMN globalUserTask (globalTask, globalScriptTask, ...)."""
    for document in site.index.documents:
        element = document.find(called)
        if element is not None and local_name(element).startswith("global"):
            words = re.sub(r"(?<!^)([A-Z])", r" \1", local_name(element)).lower()
            return words
    return None


def _no_called_element_message(element: Element) -> str:
    zeebe = element.xpath(".//zeebe:calledElement/@processId", namespaces=NSMAP)
    if zeebe:
        return (f"{describe(element)} names the process to call ('{zeebe[0]}') the Camunda 8 way, which "
                "CarePath does not read. Set the BPMN 'calledElement' attribute (Camunda 7 / plain BPMN) "
                f"to '{zeebe[0]}'.")
    return (f"{describe(element)} does not say which process it calls. Set 'Called element' in the "
            "properties panel to the id of the process to call.")


def _event_references(site: Site) -> Iterator[Problem]:
    references = [(site.element.get("messageRef"), "message")] if local_name(site.element) in {
        "sendTask", "receiveTask"} else []
    for child in site.element:
        attribute, kind = _EVENT_REFERENCES.get(local_name(child) if is_bpmn(child) else "", (None, None))
        if attribute and kind:
            references.append((child.get(attribute), kind))
    for ref, kind in references:
        if not ref:
            continue
        definition = site.index.definition(site.document, ref, kind)
        if definition is None:
            wide = _looks_up_package_wide(site.index.family, kind)
            where = "in this upload" if wide else "in the same file"
            yield site.problem(f"{describe(site.element)} refers to {kind} '{ref}', which is not defined "
                               f"{where}. Choose the {kind} again in the properties panel, or create it.")
        elif kind == "message" and not (definition.get("name") or "").strip():
            yield site.problem(f"{describe(site.element)} uses message '{ref}', which has no name. CarePath "
                               "matches messages by name: give the message a name in the properties panel.")


def _looks_up_package_wide(family: str, kind: str) -> bool:
    return family == "bpmn" or (family == "camunda" and kind != "message")


def _service_task(site: Site) -> Iterator[Problem]:
    if site.index.family != "spiff" or local_name(site.element) != "serviceTask":
        return
    if implementation_of(site.element) is None:
        yield site.problem(f"{describe(site.element)} does not say which service to call. Give it the topic its "
                           "external workers fetch (the attribute carepath:topic, docs/external-tasks.md), or "
                           "change it to a plain task.")


def _data_associations(site: Site) -> Iterator[Problem]:
    paths = "./bpmn:dataInputAssociation/bpmn:sourceRef | ./bpmn:dataOutputAssociation/bpmn:targetRef"
    for reference in site.element.xpath(paths, namespaces=NSMAP):
        problem = _association_problem(site, (reference.text or "").strip())
        if problem is not None:
            yield problem


def _association_problem(site: Site, ref: str) -> Problem | None:
    target = _find_in_scope_then_file(site, ref, "dataObjectReference")
    if target is not None:
        return _data_object_problem(site, target)
    store = _find_in_scope_then_file(site, ref, "dataStoreReference")
    if store is None:
        return site.problem(_unresolved_association_message(site, ref))
    if enclosing_scope(store) is site.scope:
        return None  # reported once, at the data store itself
    return site.problem(f"{describe(site.element)} reads or writes {describe(store)}, but CarePath has no "
                        "connection to data stores. Remove the data association.")


def _unresolved_association_message(site: Site, ref: str) -> str:
    other = site.document.find(ref)
    if other is None:
        return (f"{describe(site.element)} has a data association to '{ref}', which does not exist in the "
                "diagram. Reconnect the association to a data object, or remove it.")
    return (f"{describe(site.element)} has a data association to {describe(other)}, but CarePath passes "
            "data only through data objects of the same process. Connect the association to a data object, "
            "or remove it.")


def _data_object_problem(site: Site, reference: Element) -> Problem | None:
    object_id = reference.get("dataObjectRef")
    if object_id in _data_object_ids(site.scope):
        return None
    parent = enclosing_scope(site.scope) if local_name(site.scope) != "process" else None
    if parent is not None and object_id in _data_object_ids(parent):
        return None
    # SpiffWorkflow looks in the task's own (sub)process and the one directly around it; anything
    # further out makes its lookup loop forever, so it must be refused here.
    return site.problem(f"{describe(site.element)} uses {describe(reference, with_line=False)}, whose data "
                        f"object '{object_id}' is defined neither in "
                        f"{describe(site.scope, with_line=False)} nor in the process or subprocess directly "
                        "around it. Add the data object there.")


def _data_object_ids(scope: Element) -> set[str | None]:
    return {child.get("id") for child in scope if is_bpmn(child, "dataObject")}


def _find_in_scope_then_file(site: Site, ref: str, tag: str) -> Element | None:
    for element in site.scope.iter(bpmn(tag)):
        if element.get("id") == ref:
            return element
    found = site.document.find(ref)
    return found if found is not None and found.tag == bpmn(tag) else None


def data_store_problems(document: Document, scope: Element) -> list[Problem]:
    return [problem_at(document, store, f"{describe(store)} cannot be used: CarePath has no connection to "
                                        "data "
                       f"stores{_store_name(document, store)}. Remove it from the diagram and keep the "
                       "information in form fields or process variables instead.")
            for store in scope if is_bpmn(store, "dataStoreReference")]


def _store_name(document: Document, reference: Element) -> str:
    store = document.find(reference.get("dataStoreRef"))
    label = label_of(store) if store is not None else None
    return f" such as '{label}'" if label else ""


LINK_WARNINGS: tuple[Callable[[Site], Iterator[Problem]], ...] = (service_task_warnings,)


LINK_CHECKS: tuple[Callable[[Site], Iterator[Problem]], ...] = (
    _business_rule, _call_activity, _event_references, _service_task, _data_associations, service_task_problems,
    io_mapping_problems,
)
