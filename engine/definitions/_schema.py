"""Check BPMN files against the OMG BPMN 2.0 schema that SpiffWorkflow ships.

Schema violations are warnings: editors routinely write things the strict schema rejects (vendor
extensions, missing optional attributes) that run perfectly well. When a violation really breaks
a diagram, the SpiffWorkflow parse refuses it with a specific problem anyway.
"""

from __future__ import annotations

import re
import threading

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH

from ..errors import Problem
from ._documents import Document

_schema: etree.XMLSchema | None = None
# One compiled schema per process; lxml keeps the error log on it, so validations take turns.
_schema_lock = threading.Lock()

_KNOWN_PREFIXES = {
    "http://www.omg.org/spec/BPMN/20100524/MODEL": "bpmn:",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi:",
    "http://www.omg.org/spec/DD/20100524/DC": "dc:",
    "http://www.omg.org/spec/DD/20100524/DI": "di:",
}
_CLARK_NAME = re.compile(r"\{([^}]*)\}")


def _bpmn_schema() -> etree.XMLSchema:
    global _schema
    if _schema is None:
        _schema = etree.XMLSchema(etree.parse(XSD_PATH))
    return _schema


def schema_warnings(document: Document, max_warnings: int) -> list[Problem]:
    """Warnings for one BPMN document; rewrites bpmn.io's correlation expressions as SpiffWorkflow does."""
    warnings = _rewrite_correlation_expressions(document)
    with _schema_lock:
        schema = _bpmn_schema()
        schema.validate(document.root)
        errors = [(error.line, error.message) for error in schema.error_log]
    for line, message in errors[:max_warnings]:
        warnings.append(Problem(
            f"Line {line} does not follow the BPMN 2.0 standard, but CarePath can still run it: "
            f"{_readable(message)}", document.name, line or None))
    if len(errors) > max_warnings:
        warnings.append(Problem(f"...and {len(errors) - max_warnings} more places that do not follow the "
                                "BPMN 2.0 standard.", document.name))
    return warnings


def _rewrite_correlation_expressions(document: Document) -> list[Problem]:
    """The same preprocessing as SpiffWorkflow's BpmnValidator.preprocess, reported instead of silent."""
    expressions = document.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression")
    if not expressions:
        return []
    first_line = expressions[0].sourceline
    for expression in expressions:
        expression.tag = "{http://www.omg.org/spec/BPMN/20100524/MODEL}messagePath"
    return [Problem(
        f"{len(expressions)} message correlation expression(s), first at line {first_line}, are written as "
        "<formalExpression> (as bpmn.io does) where BPMN 2.0 expects <messagePath>. CarePath reads them as "
        "message paths; nothing needs changing.", document.name, first_line)]


def _readable(message: str) -> str:
    return _CLARK_NAME.sub(lambda match: _KNOWN_PREFIXES.get(match.group(1), match.group(0)), message)
