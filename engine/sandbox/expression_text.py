"""The `{...}` parts of f-strings.

Only the value expression can read data, and it passed the same checks as any other expression.
The format spec (after `:`) cannot read attributes, but its width can allocate, so it is bounded.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import SandboxLimitExceeded

if TYPE_CHECKING:
    from .expressions import Evaluator

_MAX_SPEC_LENGTH = 64
_MAX_SPEC_NUMBER = 1_000
_NUMBERS = re.compile(r"\d+")
_CONVERSIONS: dict[int, Callable[[Any], str]] = {ord("s"): str, ord("r"): repr, ord("a"): ascii}


def format_value(evaluator: Evaluator, node: ast.FormattedValue) -> str:
    value = evaluator.evaluate(node.value)
    spec = "" if node.format_spec is None else evaluator.evaluate(node.format_spec)
    _check_spec(spec)
    evaluator.budget.check_text_size(value)
    convert = _CONVERSIONS.get(node.conversion)
    if convert is not None:
        value = evaluator.budget.admit(convert(value))
    return evaluator.budget.admit(format(value, spec))


def _check_spec(spec: str) -> None:
    if len(spec) > _MAX_SPEC_LENGTH:
        raise SandboxLimitExceeded(f"an f-string format may be at most {_MAX_SPEC_LENGTH} characters long")
    if any(len(number) > 4 or int(number) > _MAX_SPEC_NUMBER for number in _NUMBERS.findall(spec)):
        raise SandboxLimitExceeded(f"an f-string width or precision may be at most {_MAX_SPEC_NUMBER}")
