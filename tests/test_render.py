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
