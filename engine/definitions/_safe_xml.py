"""Turn uploaded bytes into XML trees without trusting them.

Everything here runs before SpiffWorkflow sees a file: the name, the size, the encoding, a DOCTYPE
(refused outright: it is how entity-expansion bombs get in), well-formedness, and the number and
nesting depth of elements, counted while the file is parsed so a hostile file is dropped early.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from lxml import etree

from ..errors import Problem
from ._documents import BPMN_NS, DMN_VERSIONS, Document, Element
from ._model import MEGABYTE, ImportLimits, SourceFile

ALLOWED_SUFFIXES = (".bpmn", ".bpmn20.xml", ".xml", ".dmn")
_CHUNK_BYTES = 64 * 1024


class _Refused(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_documents(files: Sequence[SourceFile], limits: ImportLimits) -> tuple[list[Document], list[Problem]]:
    """The files that could be read safely, and a problem for each one that could not."""
    problems = _package_problems(files, limits)
    if problems:
        return [], problems
    documents: list[Document] = []
    for source in files:
        try:
            documents.append(_load_document(source, limits))
        except _Refused as refused:
            problems.append(Problem(refused.message, source.name, refused.line))
    return documents, problems


def _package_problems(files: Sequence[SourceFile], limits: ImportLimits) -> list[Problem]:
    if not files:
        return [Problem("The upload contains no files. Upload at least one .bpmn file.")]
    if len(files) > limits.max_files:
        return [Problem(f"The upload has {len(files)} files; CarePath accepts at most {limits.max_files} in "
                        "one package.")]
    total = sum(len(source.content) for source in files)
    if total > limits.max_package_bytes:
        return [Problem(f"The upload is {total / MEGABYTE:.1f} MB in total; CarePath accepts at most "
                        f"{limits.max_package_bytes / MEGABYTE:.0f} MB per package.")]
    counts = Counter(source.name for source in files)
    return [Problem(f"{count} uploaded files are named '{name}'. Give each file its own name.", name)
            for name, count in counts.items() if count > 1]


def _load_document(source: SourceFile, limits: ImportLimits) -> Document:
    _check_name_and_size(source, limits)
    text = _decoded_text(source.content)
    doctype_line = _doctype_line(text)
    if doctype_line is not None:
        raise _Refused(_DOCTYPE_MESSAGE.format(line=doctype_line), doctype_line)
    root = _parse_within_limits(source.content, limits)
    return Document(source.name, root, _document_kind(root))


_DOCTYPE_MESSAGE = (
    "The file contains a DOCTYPE declaration at line {line}. BPMN and DMN files never need one, and "
    "CarePath refuses them because they can hide entity-expansion attacks. Remove the <!DOCTYPE ...> "
    "declaration, or export the diagram again from your modelling tool."
)


def _check_name_and_size(source: SourceFile, limits: ImportLimits) -> None:
    if not source.name.lower().endswith(ALLOWED_SUFFIXES):
        raise _Refused(f"'{source.name}' is not a BPMN or DMN file. Upload files ending in .bpmn, "
                       ".bpmn20.xml, .xml or .dmn (and .json for form schemas).")
    size = len(source.content)
    if size > limits.max_file_bytes:
        raise _Refused(f"The file is {size / MEGABYTE:.1f} MB; CarePath accepts files up to "
                       f"{limits.max_file_bytes / MEGABYTE:.0f} MB. Remove embedded images or documents, or "
                       "split the pathway into several files.")
    if not source.content.strip():
        raise _Refused("The file is empty. Export the diagram again from your modelling tool.", 1)


def _decoded_text(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise _Refused(
            f"The file is not UTF-8 text (unreadable bytes at line {line}). If it is a diagram, export it "
            "again from your modelling tool as UTF-8 XML; otherwise remove it from the upload.", line
        ) from None


def _doctype_line(text: str) -> int | None:
    """The line of a DOCTYPE in the prolog (before the root element), if there is one."""
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if text.startswith("<!DOCTYPE", position):
            return text.count("\n", 0, position) + 1
        closing = {"<?": "?>", "<!--": "-->"}
        opener = next((start for start in closing if text.startswith(start, position)), None)
        if opener is None:
            return None
        end = text.find(closing[opener], position + len(opener))
        if end < 0:
            return None
        position = end + len(closing[opener])


def _parse_within_limits(content: bytes, limits: ImportLimits) -> Element:
    parser = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False,
        dtd_validation=False, huge_tree=False, remove_comments=False,
    )
    counter = _ShapeCounter(limits)
    try:
        for offset in range(0, len(content), _CHUNK_BYTES):
            parser.feed(content[offset:offset + _CHUNK_BYTES])
            counter.consume(parser.read_events())
        root = parser.close()
    except etree.XMLSyntaxError as error:
        raise _syntax_refusal(error, limits) from None
    if root.getroottree().docinfo.doctype:
        raise _Refused(_DOCTYPE_MESSAGE.format(line=1), 1)
    return root


class _ShapeCounter:
    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.elements = 0
        self.depth = 0

    def consume(self, events: Iterable[tuple[str, Element]]) -> None:
        for event, element in events:
            if event == "end":
                self.depth -= 1
                continue
            self.elements += 1
            self.depth += 1
            if self.depth > self.limits.max_depth:
                raise _Refused(_depth_message(self.limits), element.sourceline)
            if self.elements > self.limits.max_elements:
                raise _Refused(f"The file has more than {self.limits.max_elements:,} XML elements; CarePath "
                               "refuses it to protect the server. Split the pathway into several files.",
                               element.sourceline)


def _depth_message(limits: ImportLimits) -> str:
    return (f"The XML nests deeper than {limits.max_depth} levels; no real diagram does, so CarePath "
            "refuses the file to protect the server.")


def _syntax_refusal(error: etree.XMLSyntaxError, limits: ImportLimits) -> _Refused:
    line = error.lineno or None
    message = str(error.msg or error)
    if "Excessive depth" in message:
        return _Refused(_depth_message(limits), line)
    if "Document is empty" in message or "Start tag expected" in message:
        return _Refused("The file does not contain XML. If it is a diagram, export it again from your "
                        "modelling tool; otherwise remove it from the upload.", line)
    where = f" at line {line}" if line else ""
    return _Refused(f"The file is not well-formed XML{where} ({message}). It may be cut short or edited by "
                    "hand; export it again from your modelling tool.", line)


def _document_kind(root: Element) -> Literal["bpmn", "dmn"]:
    namespace = etree.QName(root).namespace if isinstance(root.tag, str) else None
    name = etree.QName(root).localname if isinstance(root.tag, str) else "?"
    if name == "definitions" and namespace == BPMN_NS:
        return "bpmn"
    if name == "definitions" and namespace in DMN_VERSIONS:
        return "dmn"
    if name == "definitions" and namespace and "/spec/DMN/" in namespace:
        raise _Refused("The file is a DMN file of a version CarePath cannot read yet. Save or export it as "
                       "DMN 1.3 (Camunda Modeler and bpmn.io do this by default).", root.sourceline)
    raise _Refused(f"The file is XML but not a BPMN or DMN diagram: its top element is <{name}>. Export the "
                   "diagram as BPMN 2.0 XML, or remove the file from the upload.", root.sourceline)
