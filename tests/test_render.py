"""BPMN diagrams drawn as SVG from their own layout: the shipped pathways, highlights, real editors' files."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest
from lxml import etree

from carepath.api.cli import main
from carepath.engine.definitions import SourceFile
from carepath.engine.errors import DiagramInvalid
from carepath.engine.render import render_svg
from tests.support import diagrams as d

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
SVG = "{http://www.w3.org/2000/svg}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
DRAWN = ("task", "userTask", "scriptTask", "businessRuleTask", "serviceTask", "sendTask", "receiveTask",
         "manualTask", "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent",
         "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway", "inclusiveGateway",
         "eventBasedGateway", "sequenceFlow", "lane")


def _drawn_ids(svg: str) -> dict[str, str]:
    root = etree.fromstring(svg.encode())
    return {g.get("data-element-id"): g.get("class") for g in root.iter(f"{SVG}g")}


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.bpmn")), ids=lambda p: p.name)
def test_every_element_of_a_shipped_pathway_is_drawn_with_its_id(path: Path) -> None:
    svg = render_svg([SourceFile(path.name, path.read_bytes())])
    drawn = _drawn_ids(svg)
    model = etree.parse(str(path)).getroot()
    expected = {e.get("id") for tag in DRAWN for e in model.iter(f"{BPMN}{tag}")}
    assert expected and expected <= set(drawn), expected - set(drawn)


def test_highlights_mark_the_elements_named() -> None:
    path = SHIPPED / "post-ed-follow-up.bpmn"
    svg = render_svg([SourceFile(path.name, path.read_bytes())],
                     highlights={"call_patient": "current", "classify_ed_visit": "done"})
    drawn = _drawn_ids(svg)
    assert "highlight-current" in drawn["call_patient"] and "highlight-done" in drawn["classify_ed_visit"]
    assert "highlight" not in drawn["ed_visit_reported"]
    assert "<script" not in svg and "href=" not in svg  # self-contained: nothing to fetch or run


def test_a_diagram_without_layout_is_refused_with_a_reason(tmp_path: Path) -> None:
    no_layout = d.linear_user_tasks("p", "Call")
    with pytest.raises(DiagramInvalid, match="no layout"):
        render_svg([SourceFile("p.bpmn", no_layout.encode())])
    (tmp_path / "p.bpmn").write_text(no_layout)
    assert main(["render", str(tmp_path / "p.bpmn")]) == 1
    assert main(["render", str(SHIPPED / "post-ed-follow-up.bpmn"), "--highlight", "call_patient=purple"]) == 2
    out = tmp_path / "out.svg"
    assert main(["render", str(SHIPPED / "post-ed-follow-up.bpmn"), "-o", str(out),
                 "--highlight", "call_patient=current"]) == 0
    assert "highlight-current" in _drawn_ids(out.read_text())["call_patient"]


@pytest.mark.corpus
def test_real_editors_diagrams_render_without_error() -> None:
    """Every corpus file with a layout (MANIFEST has_di) that parses as XML renders, or is refused as
    unsafe: never a crash."""
    corpus = os.environ.get("CAREPATH_CORPUS_DIR", "")  # unset: conftest skips this test with the reason
    root = Path(corpus)
    assert root.is_dir(), f"CAREPATH_CORPUS_DIR={corpus} is not a folder"
    with (root / "MANIFEST.tsv").open(newline="") as manifest:
        rows = [r for r in csv.DictReader(manifest, delimiter="\t")
                if r["has_di"] == "True" and r["xml_wellformed"] == "True" and r["kind"] == "bpmn"]
    assert len(rows) > 100
    drawn = 0
    for row in rows:
        path = root / row["path"]
        try:
            svg = render_svg([SourceFile(path.name, path.read_bytes())])
        except DiagramInvalid:
            continue
        etree.fromstring(svg.encode())  # well-formed SVG
        drawn += 1
    assert drawn >= len(rows) * 0.9, f"{drawn} of {len(rows)} drawn"


def test_flows_inside_an_expanded_subprocess_are_drawn_over_its_box() -> None:
    path = SHIPPED / "transition-of-care.bpmn"
    svg = render_svg([SourceFile(path.name, path.read_bytes())])
    order = [g.get("data-element-id") for g in etree.fromstring(svg.encode()).iter(f"{SVG}g")]
    model = etree.parse(str(path)).getroot()
    for sub in model.iter(f"{BPMN}subProcess"):
        inner = [f.get("id") for f in sub.iter(f"{BPMN}sequenceFlow")]
        assert inner and all(order.index(f) > order.index(sub.get("id")) for f in inner)


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.bpmn")), ids=lambda p: p.name)
def test_each_pathway_document_shows_the_current_diagram(path: Path) -> None:
    """docs/pathways/<name>.svg is the picture of the shipped diagram as it is now (re-draw it with
    `carepath render` after changing the BPMN)."""
    picture = SHIPPED.parent / "docs" / "pathways" / f"{path.stem}.svg"
    assert picture.read_text() == render_svg([SourceFile(path.name, path.read_bytes())], title=path.stem)
    assert f"]({path.stem}.svg)" in picture.with_suffix(".md").read_text().replace("./", "")


def test_non_numeric_coordinates_are_left_out_not_drawn_as_nan() -> None:
    path = SHIPPED / "post-ed-follow-up.bpmn"
    broken = path.read_text().replace('x="232"', 'x="nan"', 1).replace('y="302"', 'y="inf"', 1)
    root = etree.fromstring(render_svg([SourceFile(path.name, broken.encode())]).encode())
    assert all(math.isfinite(float(v)) for v in root.get("viewBox").split())
    assert "ed_visit_reported" not in _drawn_ids(etree.tostring(root).decode())  # its bounds are unusable


def _label_of(svg: str, element_id: str) -> etree._Element | None:
    """The <text> drawn in an element's group (its name), if any."""
    root = etree.fromstring(svg.encode())
    group = next(g for g in root.iter(f"{SVG}g") if g.get("data-element-id") == element_id)
    return next((t for t in group.iter(f"{SVG}text") if t.get("class") != "mark"), None)


def _words(text: etree._Element | None) -> str:
    return " ".join(" ".join(text.itertext()).split()) if text is not None else ""


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.bpmn")), ids=lambda p: p.name)
def test_every_named_element_of_a_shipped_pathway_shows_its_name(path: Path) -> None:
    """With or without label bounds in the layout (transition-of-care.bpmn has none for its events,
    gateways and flows), every named element drawn carries its whole name."""
    svg = render_svg([SourceFile(path.name, path.read_bytes())])
    model = etree.parse(str(path)).getroot()
    laid_out = {di.get("bpmnElement") for di in model.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape",
                                                           "{http://www.omg.org/spec/BPMN/20100524/DI}BPMNEdge")}
    named = {e.get("id"): " ".join(e.get("name").split()) for e in model.iter()
             if isinstance(e.tag, str) and e.get("name") and e.get("id") in laid_out}
    assert len(named) > 20
    missing = {element_id: name for element_id, name in named.items() if _words(_label_of(svg, element_id)) != name}
    assert not missing


def test_labels_without_bounds_go_where_bpmn_io_puts_them() -> None:
    path = SHIPPED / "transition-of-care.bpmn"
    svg = render_svg([SourceFile(path.name, path.read_bytes())])
    start = _label_of(svg, "discharge_reported")  # the event at x=180 y=162, 36 x 36: centred just under it
    assert start is not None and start.get("text-anchor") == "middle"
    assert float(start.get("x")) == 198 and 198 < float(start.get("y")) <= 198 + 14
    snf = _label_of(svg, "flow_snf")  # (1575,205) (1575,360) (1630,360): beside the middle of its vertical leg
    assert snf is not None and snf.get("text-anchor") == "start"
    assert 1575 < float(snf.get("x")) <= 1575 + 10 and abs(float(snf.get("y")) - (205 + 360) / 2) < 10
    fork = _label_of(svg, "episode_fork")  # a long name is wrapped to bpmn.io's label width
    assert fork is not None and len(fork) > 1 and all(len(line.text) <= 14 for line in fork)


def test_a_label_with_bounds_in_the_layout_is_drawn_in_them() -> None:
    path = SHIPPED / "post-ed-follow-up.bpmn"
    label = _label_of(render_svg([SourceFile(path.name, path.read_bytes())]), "flow_date_missing")
    [di] = etree.parse(str(path)).getroot().xpath(
        "//*[@bpmnElement='flow_date_missing']/*[local-name()='BPMNLabel']/*[local-name()='Bounds']")
    x, y, width = (float(di.get(a)) for a in ("x", "y", "width"))
    assert label is not None and float(label.get("x")) == x + width / 2 and float(label.get("y")) == y + 11


def test_a_data_object_s_name_goes_under_it_and_a_flow_s_above_its_middle() -> None:
    process = d.process("p", d.node("task", "t", "Write"), d.node("endEvent", "e"), d.flow("f", "t", "e"),
                        d.node("dataObjectReference", "doc", "Discharge summary", dataObjectRef="obj"),
                        '<bpmn:dataObject id="obj"/>').replace('<bpmn:sequenceFlow id="f"',
                                                                 '<bpmn:sequenceFlow id="f" name="done"')
    layout = ('<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
              'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI">'
              '<bpmndi:BPMNPlane bpmnElement="p">'
              '<bpmndi:BPMNShape bpmnElement="t"><dc:Bounds x="100" y="100" width="100" height="80"/>'
              '</bpmndi:BPMNShape>'
              '<bpmndi:BPMNShape bpmnElement="e"><dc:Bounds x="300" y="122" width="36" height="36"/></bpmndi:BPMNShape>'
              '<bpmndi:BPMNShape bpmnElement="doc"><dc:Bounds x="132" y="250" width="36" height="50"/>'
              '</bpmndi:BPMNShape><bpmndi:BPMNEdge bpmnElement="f"><di:waypoint x="200" y="140"/>'
              '<di:waypoint x="300" y="140"/></bpmndi:BPMNEdge></bpmndi:BPMNPlane></bpmndi:BPMNDiagram>')
    svg = render_svg([SourceFile("p.bpmn", d.definitions(process, extra="").replace(
        "</bpmn:definitions>", layout + "</bpmn:definitions>").encode())])
    doc = _label_of(svg, "doc")
    assert _words(doc) == "Discharge summary" and float(doc.get("x")) == 150 and 300 < float(doc.get("y")) <= 314
    flow = _label_of(svg, "f")
    assert _words(flow) == "done" and float(flow.get("x")) == 250 and 125 < float(flow.get("y")) < 140


def test_render_of_a_dmn_file_or_an_unknown_highlight_is_a_usage_error_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(SHIPPED / "ed-visit-classification.dmn")]) == 2
    assert "render draws BPMN diagrams" in capsys.readouterr().err
    with pytest.raises(DiagramInvalid, match="a DMN file has no diagram to draw"):
        render_svg([SourceFile("x.dmn", (SHIPPED / "ed-visit-classification.dmn").read_bytes())])
    out = tmp_path / "out.svg"
    assert main(["render", str(SHIPPED / "post-ed-follow-up.bpmn"), "-o", str(out),
                 "--highlight", "call_patient=current", "--highlight", "call_patinet=done"]) == 2
    err = capsys.readouterr().err
    assert "'call_patinet' is not in the diagram" in err and "call_patient'" not in err
    assert not out.exists()
