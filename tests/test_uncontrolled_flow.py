"""Uncontrolled flow runs as the BPMN 2.0.2 specification describes it, case by case.

The specification's words, quoted in each test, are from BPMN 2.0.2 (formal/13-12-09): §10.2 (Activities,
"Sequence Flow Connections") and §8.4.13 (Sequence Flow). CarePath inserts the gateways they imply before
SpiffWorkflow reads the diagram (engine/definitions/_implicit_gateways.py); these tests only look at what a
user sees: which tasks open, the instance's data, the flows drawn as taken, and the history's element ids.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from lxml import etree

from carepath.api.cli import main
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.definitions._implicit_gateways import with_implicit_gateways
from carepath.engine.definitions._model import ImportLimits
from carepath.engine.definitions._safe_xml import load_documents
from carepath.engine.render import render_svg
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _deploy(api: ApiClient, key: str, *elements: str) -> str:
    lead = api.user("admin")
    response = api.deploy(lead, (f"{key}.bpmn", d.definitions(d.process(key, *elements))))
    assert response.status_code == 201, response.text
    return lead


def _open(instance: dict[str, Any]) -> Counter[str]:
    return Counter(task["element_id"] for task in instance["open_tasks"])


def _complete(api: ApiClient, user: str, instance: dict[str, Any], element_id: str,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    task = next(t for t in instance["open_tasks"] if t["element_id"] == element_id)
    response = api.post(f"/api/tasks/{task['id']}/complete", user, {"data": data or {}})
    assert response.status_code == 200, response.text
    return response.json()


def _split(condition_b: str | None, condition_c: str | None, default: str | None = None) -> tuple[str, ...]:
    """start -> A (user task) -> B and C (user tasks) -> end, the flows from A as given."""
    attrs = {"default": default} if default else {}
    return (d.node("startEvent", "start"), d.node("userTask", "a", "A", **attrs), d.node("userTask", "b", "B"),
            d.node("userTask", "c", "C"), d.node("endEvent", "end_b"), d.node("endEvent", "end_c"),
            d.flow("f0", "start", "a"), d.flow("to_b", "a", "b", condition_b), d.flow("to_c", "a", "c", condition_c),
            d.flow("fb", "b", "end_b"), d.flow("fc", "c", "end_c"))


def test_an_activity_with_two_unconditioned_flows_starts_both_paths(api: ApiClient) -> None:
    """§10.2: "If there are multiple outgoing Sequence Flows, then this means that a separate parallel path is
    being created for each Sequence Flow (i.e., tokens will be generated for each outgoing Sequence Flow from
    the Activity)." """
    lead = _deploy(api, "par", *_split(None, None))
    instance = _complete(api, lead, api.start(lead, "par").json(), "a")
    assert _open(instance) == Counter({"b": 1, "c": 1})
    assert api.workflow(instance["id"]).traversed_transitions() == {("start", "a"), ("a", "b"), ("a", "c")}
    instance = _complete(api, lead, _complete(api, lead, instance, "b"), "c")
    assert instance["status"] == "completed"


def test_conditional_flows_from_an_activity_are_each_taken_when_true(api: ApiClient) -> None:
    """§8.4.13: "A Sequence Flow can optionally define a condition Expression, indicating that the token will be
    passed down the Sequence Flow only if the Expression evaluates to true. This Expression is typically used
    when the source of the Sequence Flow is a Gateway or an Activity." Two true: two tokens; one true: one."""
    lead = _deploy(api, "cond", *_split("risk > 3", "risk > 6"))
    both = _complete(api, lead, api.start(lead, "cond").json(), "a", {"risk": 9})
    one = _complete(api, lead, api.start(lead, "cond").json(), "a", {"risk": 5})
    assert _open(both) == Counter({"b": 1, "c": 1})
    assert _open(one) == Counter({"b": 1})
    assert api.workflow(one["id"]).traversed_transitions() == {("start", "a"), ("a", "b")}


def test_no_true_condition_and_no_default_is_an_incident_at_the_activity(api: ApiClient) -> None:
    """With every condition false and no default flow no token can leave: the instance does not end quietly,
    it stops with an incident naming the activity the user drew."""
    lead = _deploy(api, "none_true", *_split("risk > 3", "risk > 6"))
    instance = _complete(api, lead, api.start(lead, "none_true").json(), "a", {"risk": 1})
    assert instance["status"] == "incident"
    assert instance["incident"]["element_id"] == "a"
    assert "a" in instance["incident"]["message"]


def test_the_default_flow_of_an_activity_is_taken_only_when_no_condition_is_true(api: ApiClient) -> None:
    """§8.4.13: "The default Sequence Flow is taken (a token is passed) only if all the other outgoing Sequence
    Flows from the Activity or Gateway are not valid (i.e., their condition Expressions are false)." """
    lead = _deploy(api, "dflt", *_split("risk > 3", None, default="to_c"))
    high = _complete(api, lead, api.start(lead, "dflt").json(), "a", {"risk": 9})
    low = _complete(api, lead, api.start(lead, "dflt").json(), "a", {"risk": 1})
    assert _open(high) == Counter({"b": 1})
    assert _open(low) == Counter({"c": 1})
    assert api.workflow(low["id"]).traversed_transitions() == {("start", "a"), ("a", "c")}


def test_an_unconditioned_flow_beside_a_conditional_one_is_always_taken(api: ApiClient) -> None:
    """Mixed: §10.2 gives every flow from an activity a token, §8.4.13 holds a conditional one back when its
    condition is false. So the unconditioned flow always runs, the conditional one only when true."""
    lead = _deploy(api, "mixed", *_split("risk > 3", None))
    high = _complete(api, lead, api.start(lead, "mixed").json(), "a", {"risk": 9})
    low = _complete(api, lead, api.start(lead, "mixed").json(), "a", {"risk": 1})
    assert _open(high) == Counter({"b": 1, "c": 1})
    assert _open(low) == Counter({"c": 1})


def _merge(*extra: str) -> tuple[str, ...]:
    """start -> split (parallel gateway) -> A and B (user tasks) -> both into Follow-up (user task) -> end."""
    return (d.node("startEvent", "start"), d.node("parallelGateway", "split"), d.node("userTask", "a", "A"),
            d.node("userTask", "b", "B"), d.node("userTask", "follow_up", "Follow-up"), d.node("endEvent", "end"),
            d.flow("f0", "start", "split"), d.flow("fa", "split", "a"), d.flow("fb", "split", "b"),
            d.flow("a_done", "a", "follow_up"), d.flow("b_done", "b", "follow_up"), d.flow("fe", "follow_up", "end"),
            *extra)


def test_an_activity_with_two_incoming_flows_runs_once_per_arriving_token(api: ApiClient) -> None:
    """§10.2: "If the Activity has multiple incoming Sequence Flows, then this is considered uncontrolled flow.
    This means that when a token arrives from one of the Paths, the Activity will be instantiated. It will not
    wait for the arrival of tokens from the other paths. If another token arrives from the same path or another
    path, then a separate instance of the Activity will be created." """
    lead = _deploy(api, "merge", *_merge())
    instance = _complete(api, lead, api.start(lead, "merge").json(), "a")
    assert _open(instance) == Counter({"b": 1, "follow_up": 1})  # it did not wait for B
    instance = _complete(api, lead, instance, "b")
    assert _open(instance) == Counter({"follow_up": 2})  # a second, separate instance
    assert {("a", "follow_up"), ("b", "follow_up")} <= api.workflow(instance["id"]).traversed_transitions()
    instance = _complete(api, lead, instance, "follow_up")
    assert _open(instance) == Counter({"follow_up": 1}) and instance["status"] == "running"
    assert _complete(api, lead, instance, "follow_up")["status"] == "completed"


def test_an_activity_that_merges_and_splits_keeps_each_tokens_branches(api: ApiClient) -> None:
    """Both at once: Follow-up, reached twice, splits twice; the second run's split leaves the first run's
    branches alone (SpiffWorkflow's own gateways would join them)."""
    lead = _deploy(api, "both", *_merge(d.node("userTask", "call", "Call"), d.node("endEvent", "end_call"),
                                        d.flow("f_call", "follow_up", "call"), d.flow("fce", "call", "end_call")))
    instance = _complete(api, lead, _complete(api, lead, api.start(lead, "both").json(), "a"), "b")
    instance = _complete(api, lead, instance, "follow_up")
    assert _open(instance) == Counter({"follow_up": 1, "call": 1})
    instance = _complete(api, lead, instance, "follow_up")
    assert _open(instance) == Counter({"call": 2})


def test_an_end_event_reached_twice_ends_each_token(api: ApiClient) -> None:
    """An end event is a flow node like an activity: two incoming flows merge uncontrolled, and the process
    completes when no token is left (§10.2: "When the Activity ends and there are no other parallel paths
    active, then the Process MUST be completed")."""
    lead = _deploy(api, "end2", d.node("startEvent", "start"), d.node("userTask", "a", "A"),
                   d.node("userTask", "b", "B"), d.node("endEvent", "end"), d.flow("f0", "start", "a"),
                   d.flow("f1", "start", "b"), d.flow("fa", "a", "end"), d.flow("fb", "b", "end"))
    instance = api.start(lead, "end2").json()
    assert _open(instance) == Counter({"a": 1, "b": 1})  # a start event with two flows splits as well
    instance = _complete(api, lead, instance, "a")
    assert instance["status"] == "running"
    assert _complete(api, lead, instance, "b")["status"] == "completed"


def test_a_boundary_event_with_two_outgoing_flows_starts_both_paths(tmp_path: Any, capsys: Any,
                                                                   monkeypatch: Any) -> None:
    """A boundary event is an event like any other: its two flows are two parallel paths (§10.2), here when
    the non-interrupting timer on A fires; both paths end at one end event, an uncontrolled merge."""
    boundary = d.node("boundaryEvent", "late", body=d.timer("timeDuration", "PT1H"), attachedToRef="a",
                      cancelActivity="false")
    xml = d.definitions(d.process(
        "bnd", d.node("startEvent", "start"), d.node("userTask", "a", "A"), boundary, d.node("userTask", "b", "B"),
        d.node("userTask", "c", "C"), d.node("endEvent", "end"), d.flow("f0", "start", "a"),
        d.flow("fa", "a", "end"), d.flow("lb", "late", "b"), d.flow("lc", "late", "c"), d.flow("fb", "b", "end"),
        d.flow("fc", "c", "end")))
    [process] = parse_package([SourceFile("bnd.bpmn", xml.encode())]).processes
    assert {"late__split", "end__merge"} <= set(process.spec.task_specs)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    (tmp_path / "bnd.bpmn").write_text(xml)
    assert main(["simulate", str(tmp_path / "bnd.bpmn"), "--advance", "PT2H", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(task["element_id"] for task in result["open_tasks"]) == ["a", "b", "c"]


def test_the_diagram_keeps_the_users_ids_and_its_layout(tmp_path: Any) -> None:
    """Every element the user drew keeps its id (the flows now leave the generated split); generated elements
    are named after the element they serve; the stored file, and so its drawing, is the one uploaded."""
    xml = d.definitions(d.process("ids", *_split("risk > 3", None, default="to_c")))
    [document], _ = load_documents([SourceFile("ids.bpmn", xml.encode())], ImportLimits())
    before = {e.get("id") for e in document.root.iter() if isinstance(e.tag, str) and e.get("id")}
    normalized = with_implicit_gateways(document.root)
    after = {e.get("id"): e for e in normalized.iter() if isinstance(e.tag, str) and e.get("id")}
    assert before <= set(after)
    assert set(after) - before == {"a__split", "a__to_split"}
    assert after["to_b"].get("sourceRef") == after["to_c"].get("sourceRef") == "a__split"
    assert after["a__split"].get("default") == "to_c" and after["a"].get("default") is None
    assert document.root is not normalized and document.root.find(".//*[@id='a__split']") is None
    assert with_implicit_gateways(load_documents([SourceFile(
        "plain.bpmn", d.linear_user_tasks("plain", "One").encode())], ImportLimits())[0][0].root) is not None


def test_a_generated_id_never_collides_with_one_the_user_drew() -> None:
    xml = d.definitions(d.process("clash", *_split(None, None), d.node("task", "a__split")))
    [document], _ = load_documents([SourceFile("clash.bpmn", xml.encode())], ImportLimits())
    ids = [e.get("id") for e in with_implicit_gateways(document.root).iter() if isinstance(e.tag, str)]
    assert "a__split_2" in ids and ids.count("a__split") == 1


def test_the_history_names_only_the_users_elements(api: ApiClient) -> None:
    lead = _deploy(api, "hist", *_merge())
    instance = _complete(api, lead, _complete(api, lead, api.start(lead, "hist").json(), "a"), "b")
    states = api.workflow(instance["id"]).element_states()
    assert not [element for element in states if "__" in element]
    history = api.get(f"/api/instances/{instance['id']}/history", lead).json()
    assert "__" not in str(history)


def _with_layout(xml: str, process_id: str) -> str:
    """The diagram with a BPMNDI layout: each node a box in a row, each flow a straight edge."""
    ids = re.findall(r'<bpmn:(?!sequenceFlow|process|definitions|conditionExpression)\w+ id="([^"]+)"', xml)
    flows = re.findall(r'<bpmn:sequenceFlow id="([^"]+)"', xml)
    shapes = "".join(f'<bpmndi:BPMNShape id="{i}_di" bpmnElement="{i}"><dc:Bounds x="{100 * n}" y="100" '
                     'width="80" height="60"/></bpmndi:BPMNShape>' for n, i in enumerate(ids))
    edges = "".join(f'<bpmndi:BPMNEdge id="{f}_di" bpmnElement="{f}"><di:waypoint x="{100 * n}" y="130"/>'
                    f'<di:waypoint x="{100 * n + 90}" y="130"/></bpmndi:BPMNEdge>' for n, f in enumerate(flows))
    layout = ('<bpmndi:BPMNDiagram id="D" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
              'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI">'
              f'<bpmndi:BPMNPlane id="P" bpmnElement="{process_id}">'
              f"{shapes}{edges}</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>")
    return xml.replace("</bpmn:definitions>", f"{layout}</bpmn:definitions>")


def test_the_drawing_shows_the_users_flows_taken(api: ApiClient, tmp_path: Any) -> None:
    """`carepath render` draws the uploaded diagram; a run's transitions light the user's own flows."""
    xml = _with_layout(d.definitions(d.process("drawn", *_split("risk > 3", None, default="to_c"))), "drawn")
    lead = api.user("admin")
    assert api.deploy(lead, ("drawn.bpmn", xml)).status_code == 201
    instance = _complete(api, lead, api.start(lead, "drawn").json(), "a", {"risk": 1})
    transitions = api.workflow(instance["id"]).traversed_transitions()
    svg = render_svg([SourceFile("drawn.bpmn", xml.encode())], transitions=transitions)
    taken = {g.get("data-element-id") for g in etree.fromstring(svg.encode()).iter("{http://www.w3.org/2000/svg}g")
             if "highlight-done" in (g.get("class") or "") and "flow" in (g.get("class") or "").split()}
    assert taken == {"f0", "to_c"}
    (tmp_path / "drawn.bpmn").write_text(xml)
    assert main(["render", str(tmp_path / "drawn.bpmn"), "-o", str(tmp_path / "drawn.svg")]) == 0
