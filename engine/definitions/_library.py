"""Feed the package to one SpiffWorkflow parser, guarding every call that can fail.

The parser gets our already-parsed, safe lxml trees (never a path). Where a file holds processes
that are not executable, or data stores (SpiffWorkflow has no implementation for any), it gets a
pruned copy: the library would otherwise refuse the whole file for elements that never run, and
the checks have already reported the ones that matter. Copies keep their source line numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from functools import partial
from types import FrameType
from typing import Any, TypeVar

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

from ..errors import Problem
from ._documents import Document, Element
from ._executability import is_executable
from ._families import new_parser
from ._implicit_gateways import prepare_parser, with_implicit_gateways
from ._index import PackageIndex
from ._translate import Place, translate

T = TypeVar("T")


class LibraryRun:
    """One parser for the package, and the problems its calls raised (already translated)."""

    def __init__(self, index: PackageIndex, quiet_files: set[str | None],
                 skipped_scopes: set[str | None], seconds: float) -> None:
        self.index = index
        self._deadline = time.monotonic() + seconds
        self._seconds = seconds
        self._out_of_time = False
        self.parser = new_parser(index.family)
        prepare_parser(self.parser)
        self.problems: list[Problem] = []
        # Files and scopes the checks already refused: the library's first error there says less.
        self._quiet_files = quiet_files
        self._skipped_scopes = skipped_scopes
        # SpiffWorkflow indexes lanes by id() of the root element, so every tree it sees stays alive.
        self._trees: list[Element] = []
        self._specs: dict[str, BpmnProcessSpec | None] = {}

    def add_documents(self) -> None:
        for document in self.index.documents:
            quiet = document.name in self._quiet_files
            if document.kind == "dmn":
                if not quiet:
                    add_dmn = partial(self.parser.add_dmn_xml, document.root, document.name)
                    self._guard(add_dmn, Place(document))
                continue
            tree = library_tree(document)
            self._trees.append(tree)
            self._guard(partial(self.parser.add_bpmn_xml, tree, document.name), Place(document), quiet)
        # Our rule for executability (_executability) replaces the library's.
        for process_parser in self.parser.process_parsers.values():
            process_parser.process_executable = True

    def has_process(self, process_id: str) -> bool:
        return process_id in self.parser.process_parsers

    def spec(self, process_id: str) -> BpmnProcessSpec | None:
        """The parsed spec, or None when it failed (a problem was recorded) or was refused beforehand."""
        if process_id in self._specs:
            return self._specs[process_id]
        self._specs[process_id] = None
        if process_id in self._skipped_scopes or not self.has_process(process_id):
            return None
        self._specs[process_id] = self._guard(partial(self.parser.get_spec, process_id),
                                              self._place_of(process_id))
        return self._specs[process_id]

    def _place_of(self, process_id: str) -> Place:
        process_parser = self.parser.process_parsers[process_id]
        located = self.index.locate(process_parser.filename, process_id)
        if located is not None:
            return Place(*located)
        document = self.index.document_named(process_parser.filename) or self.index.documents[0]
        return Place(document)

    def _guard(self, call: Callable[[], T], place: Place, quiet: bool = False) -> T | None:
        if self._out_of_time:
            return None
        try:
            with _time_budget(self._deadline):
                return call()
        except _OutOfTime:
            self._out_of_time = True
            self.problems.append(Problem(
                f"Reading the diagram took longer than {self._seconds:.0f} seconds, so CarePath stopped. The "
                "diagram is probably very large or has a shape SpiffWorkflow cannot handle; split it into "
                "smaller processes.", place.document.name))
        except Exception as error:  # the library raises anything on odd diagrams; see _translate
            if not quiet:
                self.problems.append(translate(error, self.index, place))
        return None


class _OutOfTime(BaseException):
    """A BaseException, so that no `except Exception` inside SpiffWorkflow swallows it."""


@contextmanager
def _time_budget(deadline: float) -> Iterator[None]:
    """Stop a SpiffWorkflow call that runs past the deadline, even inside a loop that never ends.

    SpiffWorkflow 3.2 has at least one lookup that loops forever (NodeParser._resolve_data_object_ref);
    the checks refuse the shape that triggers it, and this is the guard for any shape they do not know.
    The profile hook sees every call in this thread only, and looks at the clock every few thousand calls.
    """
    calls = 0

    def watch(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += 1
        if calls & 0xFFF == 0 and time.monotonic() > deadline:
            raise _OutOfTime()

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        yield
    finally:
        sys.setprofile(previous)


def library_tree(document: Document) -> Element:
    """The document as SpiffWorkflow should see it: without processes that do not run, or data stores, and
    with the gateways an activity's several outgoing or incoming flows imply (_implicit_gateways)."""
    return with_implicit_gateways(_pruned(document))


def _pruned(document: Document) -> Element:
    dropped = [process for process in document.processes() if not is_executable(process)]
    dropped += document.xpath(".//bpmn:dataStore")
    if not dropped:
        return document.root
    copy = deepcopy(document.root)
    for element in copy.xpath(".//bpmn:process | .//bpmn:dataStore", namespaces=_NAMESPACES):
        if element.tag.endswith("}process") and is_executable(element):
            continue
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return copy


_NAMESPACES = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
