"""List, set and dict comprehensions and generator expressions, evaluated eagerly and bounded.

A generator expression becomes a list: `any(x > 5 for x in xs)` behaves the same, and no
generator object (with its `gi_frame`) ever exists inside the sandbox.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ExpressionFailed, SandboxLimitExceeded, SandboxViolation

if TYPE_CHECKING:
    from .expressions import Evaluator

Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


class _Loop:
    """State shared by all `for` clauses of one comprehension."""

    def __init__(self, evaluator: Evaluator, node: Comprehension) -> None:
        self.evaluator = evaluator
        self.node = node
        self.scope: dict[str, Any] = {}
        self.results: list[Any] = []
        self.iterations = 0

    def tick(self) -> None:
        self.iterations += 1
        limit = self.evaluator.budget.limits.max_iterations
        if self.iterations > limit:
            raise SandboxLimitExceeded(f"a comprehension ran more than {limit} iterations")
        self.evaluator.budget.charge(1)


def evaluate_comprehension(evaluator: Evaluator, node: Comprehension) -> Any:
    loop = _Loop(evaluator, node)
    evaluator.scopes.append(loop.scope)
    try:
        _run_clause(loop, 0)
    finally:
        evaluator.scopes.pop()
    if isinstance(node, ast.SetComp):
        return set(loop.results)
    if isinstance(node, ast.DictComp):
        return dict(loop.results)
    return loop.results


def _run_clause(loop: _Loop, index: int) -> None:
    evaluator = loop.evaluator
    clause = loop.node.generators[index]
    for item in _iterable(evaluator.evaluate(clause.iter)):
        loop.tick()
        _bind(clause.target, item, loop.scope)
        if not all(evaluator.evaluate(condition) for condition in clause.ifs):
            continue
        if index + 1 < len(loop.node.generators):
            _run_clause(loop, index + 1)
        else:
            loop.results.append(_element(loop))
            evaluator.budget.check_length(len(loop.results), "comprehension result")


def _element(loop: _Loop) -> Any:
    node = loop.node
    if isinstance(node, ast.DictComp):
        return loop.evaluator.evaluate(node.key), loop.evaluator.evaluate(node.value)
    return loop.evaluator.evaluate(node.elt)


def _iterable(value: Any) -> Iterable[Any]:
    if not isinstance(value, list | tuple | str | set | frozenset | range | Mapping):
        raise SandboxViolation(f"cannot loop over a {type(value).__name__} value")
    return value


def _bind(target: ast.expr, value: Any, scope: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return
    assert isinstance(target, ast.Tuple | ast.List)  # guaranteed by the static check
    if not isinstance(value, list | tuple | str) or len(value) != len(target.elts):
        raise ExpressionFailed(f"cannot unpack {_describe(value)} into {len(target.elts)} names")
    for element, item in zip(target.elts, value, strict=True):
        _bind(element, item, scope)


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple | str):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__} value"
