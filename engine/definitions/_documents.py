"""A safely loaded BPMN or DMN file and the XML vocabulary the importer reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
ACTIVITI_NS = "http://activiti.org/bpmn"

# The DMN versions SpiffWorkflow's DMN parser was written for (SpiffWorkflow/dmn/parser).
DMN_VERSIONS = {
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "1.1",
    "http://www.omg.org/spec/DMN/20180521/MODEL/": "1.2",
    "https://www.omg.org/spec/DMN/20191111/MODEL/": "1.3",
}

NSMAP = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS, "spiffworkflow": SPIFF_NS, "zeebe": ZEEBE_NS}

Element: TypeAlias = etree._Element


def bpmn(local_name: str) -> str:
    """The Clark-notation tag of a BPMN element, e.g. bpmn("process")."""
    return f"{{{BPMN_NS}}}{local_name}"


def local_name(element: Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def is_bpmn(element: Element, *names: str) -> bool:
    """True for a BPMN element (with one of the local names, if any are given)."""
    if not isinstance(element.tag, str) or not element.tag.startswith(f"{{{BPMN_NS}}}"):
        return False
    return not names or element.tag in {bpmn(name) for name in names}


@dataclass(eq=False)
class Document:
    """One uploaded file, parsed by the safe XML loader; `root` stays referenced for SpiffWorkflow."""

    name: str
    root: Element
    kind: Literal["bpmn", "dmn"]
    _ids: dict[str, Element] | None = field(default=None, repr=False)

    def find(self, element_id: str | None) -> Element | None:
        if not element_id:
            return None
        if self._ids is None:
            self._ids = {}
            for element in self.root.iter():
                found_id = element.get("id") if isinstance(element.tag, str) else None
                if found_id is not None:
                    self._ids.setdefault(found_id, element)
        return self._ids.get(element_id)

    def xpath(self, path: str, element: Element | None = None) -> list[Element]:
        found = (self.root if element is None else element).xpath(path, namespaces=NSMAP)
        return list(found) if isinstance(found, list) else []

    def processes(self) -> list[Element]:
        return self.xpath(".//bpmn:process") if self.kind == "bpmn" else []


def iter_elements(element: Element) -> Iterator[Element]:
    """Every element below and including `element`, skipping comments and processing instructions."""
    for child in element.iter():
        if isinstance(child.tag, str):
            yield child
