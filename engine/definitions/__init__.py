"""Deploy-time importer for uploaded BPMN/DMN packages.

`parse_package` turns the files a clinical lead uploads into SpiffWorkflow process specs, or raises
`carepath.engine.errors.DiagramInvalid` listing every problem found, each located by file, line and
element id, in words the lead can act on. Nothing in a diagram is evaluated here.

The steps, each in its own module:
    _safe_xml        names, sizes, encoding, DOCTYPE refusal, element count and depth, well-formedness
    _schema          OMG BPMN 2.0 XSD (warnings only)
    _families        which SpiffWorkflow parser: plain BPMN + DMN, Camunda or SpiffWorkflow
    _static_checks   every known cause of a parse failure, all at once (_check_flow, _check_links)
    _library         the SpiffWorkflow parse itself, every call guarded (_translate explains failures)
    _process_info    specs of called processes, message starts, lanes, documentation

Authoring helpers (the CLI's validate and simulate): `find_companions` finds the DMN files, called
processes and forms a diagram needs beside it; `read_example_data` reads the pathway's sidecar file.
"""

from ._companions import Companion, find_companions
from ._connectors import CONFIG as CONNECTOR_CONFIG
from ._connectors import CONNECTOR_TOPICS
from ._connectors import TOPIC_PREFIX as CONNECTOR_TOPIC_PREFIX
from ._model import ImportLimits, ParsedPackage, ParsedProcess, ShownMapping, SourceFile, TranslatedCondition
from ._package import parse_package
from ._pathway_meta import is_sidecar, read_example_data, sidecar_path

__all__ = ["CONNECTOR_CONFIG", "CONNECTOR_TOPICS", "CONNECTOR_TOPIC_PREFIX",
           "Companion", "ImportLimits", "ParsedPackage", "ParsedProcess", "ShownMapping", "SourceFile",
           "TranslatedCondition",
           "find_companions", "is_sidecar", "parse_package", "read_example_data", "sidecar_path"]
