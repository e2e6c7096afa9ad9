"""The flows an instance took, read from its own workflow (not guessed from the elements it reached),
and how the renderer turns those transitions into the sequence flows it draws as taken."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from carepath.engine.definitions import SourceFile
from carepath.engine.definitions._model import ImportLimits
from carepath.engine.definitions._safe_xml import load_documents
from carepath.engine.render import render_svg, taken_flows
from tests.support import diagrams as d
from tests.support.api import ApiClient

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
SVG = "{http://www.w3.org/2000/svg}"


def _complete(api: ApiClient, user: str, instance: dict, name: str, data: dict | None = None) -> dict:
    task = next(t for t in instance["open_tasks"] if t["name"] == name)
    response = api.post(f"/api/tasks/{task['id']}/complete", user, {"data": data or {}})
    assert response.status_code == 200, response.text
    return response.json()


def test_each_branch_into_a_parallel_join_is_a_transition_once_it_arrived(api: ApiClient) -> None:
    lead = api.user("admin")
    xml = d.definitions(d.process(
        "par", d.node("startEvent", "start"), d.node("parallelGateway", "split"), d.node("userTask", "a", "A"),
        d.node("userTask", "b", "B"), d.node("parallelGateway", "join"), d.node("userTask", "last", "Last"),
        d.node("endEvent", "end"), d.flow("f0", "start", "split"), d.flow("fa", "split", "a"),
        d.flow("fb", "split", "b"), d.flow("ja", "a", "join"), d.flow("jb", "b", "join"),
        d.flow("fl", "join", "last"), d.flow("fe", "last", "end")))
    assert api.deploy(lead, ("par.bpmn", xml)).status_code == 201
    instance = api.start(lead, "par").json()
    opened = {("start", "split"), ("split", "a"), ("split", "b")}
    assert api.workflow(instance["id"]).traversed_transitions() == opened
    instance = _complete(api, lead, instance, "A")
    arrived = opened | {("a", "join")}  # A waits at the join: it arrived there
    assert api.workflow(instance["id"]).traversed_transitions() == arrived
    instance = _complete(api, lead, instance, "B")
    assert api.workflow(instance["id"]).traversed_transitions() == arrived | {("b", "join"), ("join", "last")}


def test_the_default_and_the_conditional_flow_are_told_apart(api: ApiClient) -> None:
    lead = api.user("admin")
    xml = d.definitions(d.process(
        "gw", d.node("startEvent", "start"), d.node("exclusiveGateway", "g", default="f_no"),
        d.node("userTask", "yes", "Yes"), d.node("userTask", "no", "No"), d.node("endEvent", "end"),
        d.flow("f0", "start", "g"), d.flow("f_yes", "g", "yes", "risk > 5"), d.flow("f_no", "g", "no"),
        d.flow("f1", "yes", "end"), d.flow("f2", "no", "end")))
    assert api.deploy(lead, ("gw.bpmn", xml)).status_code == 201
    high = api.start(lead, "gw", data={"risk": 9}).json()
    low = api.start(lead, "gw", data={"risk": 1}).json()
    assert api.workflow(high["id"]).traversed_transitions() == {("start", "g"), ("g", "yes")}
    assert api.workflow(low["id"]).traversed_transitions() == {("start", "g"), ("g", "no")}


def _taken(svg: str) -> set[str]:
    return {g.get("data-element-id") for g in etree.fromstring(svg.encode()).iter(f"{SVG}g")
            if "flow" in (g.get("class") or "").split() and "highlight-done" in (g.get("class") or "")}


def test_a_transition_is_drawn_on_its_own_flow_only() -> None:
    path = SHIPPED / "post-ed-follow-up.bpmn"
    source = SourceFile(path.name, path.read_bytes())
    marks = {"confirm_merge": "done", "confirm_visit": "done", "visit_date_known": "done",
             "visit_outcome_merge": "current"}
    svg = render_svg([source], highlights=marks, transitions=[("confirm_merge", "confirm_visit"),
                                                              ("confirm_visit", "visit_date_known"),
                                                              ("visit_date_known", "visit_outcome_merge")])
    assert _taken(svg) == {"flow_to_confirm", "flow_to_date_known", "flow_date_known"}  # not flow_date_missing
    assert _taken(render_svg([source], highlights=marks)) == set()  # reached elements alone draw no flow
    assert _taken(render_svg([source], transitions=[("nowhere", "confirm_visit")])) == set()


def test_two_flows_between_the_same_pair_are_resolved_by_the_kind_of_source() -> None:
    """From a gateway, one flow (the first conditional one in document order); from a task, every one."""
    xml = d.definitions(d.process(
        "p", d.node("exclusiveGateway", "g", default="g_default"), d.node("task", "t"), d.node("task", "u"),
        d.flow("g_default", "g", "t"), d.flow("g_first", "g", "t", "a"), d.flow("g_second", "g", "t", "b"),
        d.flow("u1", "u", "t"), d.flow("u2", "u", "t")))
    [document], _ = load_documents([SourceFile("p.bpmn", xml.encode())], ImportLimits())
    elements = {e.get("id"): e for e in document.root.iter() if isinstance(e.tag, str) and e.get("id")}
    assert taken_flows(document.root, elements, [("g", "t")]) == ["g_first"]
    assert taken_flows(document.root, elements, [("u", "t"), ("u", "t")]) == ["u1", "u2"]
