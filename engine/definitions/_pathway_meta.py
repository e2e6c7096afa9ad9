"""The sidecar file beside a pathway's BPMN (`<name>.pathway.json`): what the diagram cannot say.

Today it holds one key, `example_data`: the start data the pathway documents, which
`carepath simulate` uses when no `--data` is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ValidationFailed

SIDECAR_SUFFIX = ".pathway.json"
_BPMN_SUFFIXES = (".bpmn20.xml", ".bpmn", ".xml")
MAX_SIDECAR_BYTES = 1024 * 1024


def sidecar_path(bpmn_file: Path) -> Path:
    """post-ed-follow-up.bpmn -> post-ed-follow-up.pathway.json, in the same folder."""
    name = bpmn_file.name
    stem = next((name[: -len(s)] for s in _BPMN_SUFFIXES if name.lower().endswith(s)), bpmn_file.stem)
    return bpmn_file.with_name(stem + SIDECAR_SUFFIX)


def is_sidecar(name: str) -> bool:
    return name.lower().endswith(SIDECAR_SUFFIX)


def read_example_data(bpmn_file: Path) -> dict[str, Any] | None:
    """The pathway's documented example start data, or None when it has no sidecar or the sidecar none."""
    path = sidecar_path(bpmn_file)
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise ValidationFailed(f"{path}: the file is larger than {MAX_SIDECAR_BYTES // 1024} KB")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise ValidationFailed(f"{path} must hold a JSON object such as {{\"example_data\": {{...}}}}")
    example = content.get("example_data")
    if example is not None and not isinstance(example, dict):
        raise ValidationFailed(f"{path}: \"example_data\" must be a JSON object of start data")
    return example
