"""The upload form's files and, for a refused upload, what the page shows: every error and warning with its
file, line and element, and the diagram drawn from the upload with the elements at fault marked."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile

from carepath.engine.definitions import SourceFile
from carepath.engine.errors import DiagramInvalid, Problem
from carepath.engine.render import DIAGRAM_SUFFIXES, render_svg

DIAGRAM_FIELD = "diagram"
COMPANIONS_FIELD = "files"
DIAGRAM_TYPES = ".bpmn"
COMPANION_TYPES = ".bpmn,.dmn,.json"
# How the preview marks an element (render.py's highlight classes): an error as failed, a warning as current.
MARKS = {"error": "failed", "warning": "current"}


def uploaded_files(form: FormData) -> list[UploadFile]:
    """The diagram first (it is the one previewed), then the other files; a file field left empty is
    sent by browsers as a part without a name and nothing in it, and skipped."""
    chosen = [*form.getlist(DIAGRAM_FIELD), *form.getlist(COMPANIONS_FIELD)]
    return [f for f in chosen if isinstance(f, UploadFile) and (f.filename or f.size)]


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    problem: Problem
    marked: bool  # drawn as marked in the preview


@dataclass(frozen=True)
class Preview:
    data_uri: str | None  # the marked diagram as an SVG image (data: URI), None when it cannot be drawn
    drawn_file: str | None
    why_not: str | None  # when there is no picture: why, in words


@dataclass(frozen=True)
class Refusal:
    message: str
    findings: list[Finding]
    preview: Preview


def refusal(exc: DiagramInvalid, sources: Sequence[SourceFile]) -> Refusal:
    errors = [("error", p) for p in exc.problems]
    warnings = [("warning", p) for p in exc.warnings]
    drawn = next((s for s in sources if s.name.lower().endswith(DIAGRAM_SUFFIXES)), None)
    on_drawing = [(severity, p) for severity, p in [*warnings, *errors]
                  if drawn is not None and p.element_id and p.file in (None, drawn.name)]
    # Errors last, so an element with an error and a warning is marked as an error.
    marks = {str(p.element_id): MARKS[severity] for severity, p in on_drawing}
    preview = _preview(drawn, marks)
    findings = [Finding(severity, p, preview.data_uri is not None and (severity, p) in on_drawing)
                for severity, p in [*errors, *warnings]]
    return Refusal(exc.message, findings, preview)


def _preview(drawn: SourceFile | None, marks: dict[str, str]) -> Preview:
    if drawn is None:
        return Preview(None, None, "The upload has no .bpmn diagram to draw.")
    try:
        svg = render_svg([drawn], highlights=marks, title=f"{drawn.name} as uploaded, problems marked")
    except DiagramInvalid as exc:
        return Preview(None, drawn.name, f"The diagram cannot be previewed: {exc.message}")
    except (ValueError, TypeError):  # an unforeseen shape in an untrusted file: no picture, the list stands
        return Preview(None, drawn.name, "The diagram cannot be previewed: its layout could not be read.")
    # An image (not inline SVG): nothing in it runs, and its own style sheet needs no exception in the policy.
    encoded = base64.b64encode(svg.encode()).decode()
    return Preview(f"data:image/svg+xml;base64,{encoded}", drawn.name, None)
