"""Evaluate untrusted one-line expressions (conditions, timers, DMN cells, correlation keys).

The source is parsed with `ast` and checked against an allow-list; the evaluator then walks the
tree itself. Nothing here calls eval/compile on user text, and only the functions in
`expression_functions` and the methods in `expression_methods` can ever be called.

`a.b` on a dict reads key `b` (as spiff-arena's Box does), so `patient.pcp` works on task data.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from decimal import DecimalException
from functools import lru_cache
from typing import Any

from .budget import Budget
from .errors import ExpressionFailed, SandboxError, SandboxLimitExceeded, SandboxViolation, UndefinedName
from .expression_check import parse_expression
from .expression_comprehensions import evaluate_comprehension
from .expression_functions import SAFE_FUNCTIONS, VARIABLE_FUNCTION, SafeFunction
from .expression_methods import MAPPING_METHOD_NAMES, has_field, method_for
from .expression_ops import binary, compare, unary
from .expression_text import format_value
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["Limits", "check_expression", "evaluate_expression"]


def check_expression(source: str, *, limits: Limits | None = None) -> None:
    """Deploy-time check: raises SandboxSyntaxError, SandboxViolation or SandboxLimitExceeded."""
    _checked_tree(source, limits or DEFAULT_LIMITS)


def evaluate_expression(source: str, context: Mapping[str, Any], *, limits: Limits | None = None) -> Any:
    """The value of `source` with the names in `context` as variables."""
    limits = limits or DEFAULT_LIMITS
    tree = _checked_tree(source, limits)
    try:
        return Evaluator(context, Budget(limits)).evaluate(tree.body)
    except SandboxError:
        raise
    except (RecursionError, MemoryError):
        raise SandboxLimitExceeded("the expression needed too much memory or nesting") from None
    except Exception as exc:
        raise ExpressionFailed(_describe_failure(exc)) from exc


@lru_cache(maxsize=2048)
def _checked_tree(source: str, limits: Limits) -> ast.Expression:
    # Conditions are evaluated again and again; parse and check each distinct text once.
    return parse_expression(source, limits)


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, DecimalException):
        conditions = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [type(exc)]
        names = ", ".join(getattr(condition, "__name__", str(condition)) for condition in conditions)
        return f"the decimal calculation is not possible ({names})"
    if isinstance(exc, KeyError):
        return f"key {exc.args[0]!r} is not present" if exc.args else "a key is not present"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Evaluator:
    """Walks one checked expression tree; create a new one per evaluation."""

    def __init__(self, context: Mapping[str, Any], budget: Budget) -> None:
        self.context = context
        self.budget = budget
        # Comprehension variables, innermost last.
        self.scopes: list[dict[str, Any]] = []
        self._handlers: dict[type[ast.AST], Callable[[Any], Any]] = {
            ast.Constant: lambda node: node.value,
            ast.Name: self._name,
            ast.Attribute: self._attribute,
            ast.Subscript: self._subscript,
            ast.Slice: self._slice,
            ast.BinOp: lambda node: binary(self.budget, node.op, self.evaluate(node.left),
                                           self.evaluate(node.right)),
            ast.UnaryOp: lambda node: unary(self.budget, node.op, self.evaluate(node.operand)),
            ast.BoolOp: self._bool_op,
            ast.Compare: self._compare,
            ast.IfExp: lambda node: self.evaluate(node.body if self.evaluate(node.test) else node.orelse),
            ast.List: lambda node: self.budget.admit(self._elements(node.elts)),
            ast.Tuple: lambda node: self.budget.admit(tuple(self._elements(node.elts))),
            ast.Set: lambda node: self.budget.admit(set(self._elements(node.elts))),
            ast.Dict: self._dict,
            ast.ListComp: self._comprehension,
            ast.SetComp: self._comprehension,
            ast.DictComp: self._comprehension,
            ast.GeneratorExp: self._comprehension,
            ast.JoinedStr: self._joined_str,
            ast.FormattedValue: lambda node: format_value(self, node),
            ast.Call: self._call,
        }

    def evaluate(self, node: ast.AST) -> Any:
        self.budget.charge(1)
        handler = self._handlers.get(type(node))
        if handler is None:  # the static check makes this unreachable; never fall through silently
            raise SandboxViolation(f"{type(node).__name__} is not allowed in expressions")
        return handler(node)

    def _name(self, node: ast.Name) -> Any:
        for scope in reversed(self.scopes):
            if node.id in scope:
                return scope[node.id]
        if node.id in self.context:
            return self.context[node.id]
        if node.id in SAFE_FUNCTIONS:
            return SAFE_FUNCTIONS[node.id]
        raise UndefinedName(f"name '{node.id}' is not defined")

    def _attribute(self, node: ast.Attribute) -> Any:
        return self._read_attribute(self.evaluate(node.value), node)

    def _read_attribute(self, value: Any, node: ast.Attribute) -> Any:
        name = node.attr
        if isinstance(value, Mapping):
            if name in value:
                return value[name]
            raise UndefinedName(f"'{_source_of(node.value)}' has no field '{name}'")
        if isinstance(value, SafeFunction):
            if name in value.class_methods:
                return value.class_methods[name]
            raise SandboxViolation(f"'{name}' is not available on the function {value.name}")
        if has_field(value, name):
            return getattr(value, name)
        if method_for(value, name) is not None:
            raise SandboxViolation(f"'{name}' is a method; call it as {name}(...)")
        raise SandboxViolation(f"attribute '{name}' is not available on a {type(value).__name__} value")

    def _subscript(self, node: ast.Subscript) -> Any:
        container = self.evaluate(node.value)
        key = self.evaluate(node.slice)
        if not isinstance(container, list | tuple | str | bytes | range | Mapping):
            raise SandboxViolation(f"a {type(container).__name__} value cannot be indexed with [...]")
        if isinstance(key, slice):
            return self.budget.admit(container[key])
        return container[key]

    def _slice(self, node: ast.Slice) -> slice:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else self.evaluate(part) for part in parts))

    def _bool_op(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.evaluate(operand)
            if bool(value) is isinstance(node.op, ast.Or):
                return value
        return value

    def _compare(self, node: ast.Compare) -> Any:
        left = self.evaluate(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.evaluate(right_node)
            result = compare(self.budget, op, left, right)
            if not result:
                return result
            left = right
        return result

    def _elements(self, nodes: Iterable[ast.expr]) -> list[Any]:
        values: list[Any] = []
        for node in nodes:
            if isinstance(node, ast.Starred):
                values.extend(self._unpacked(self.evaluate(node.value)))
            else:
                values.append(self.evaluate(node))
            self.budget.check_length(len(values), "collection")
        return values

    def _unpacked(self, value: Any) -> Any:
        if not isinstance(value, list | tuple | str | set | frozenset | range | Mapping):
            raise SandboxViolation(f"a {type(value).__name__} value cannot be unpacked with *")
        self.budget.check_length(len(value), type(value).__name__)
        return value

    def _dict(self, node: ast.Dict) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:  # {**other}
                other = self.evaluate(value_node)
                if not isinstance(other, Mapping):
                    raise SandboxViolation(f"a {type(other).__name__} value cannot be unpacked with **")
                self.budget.check_length(len(other) + len(result), "dict")
                result.update(other)
            else:
                result[self.evaluate(key_node)] = self.evaluate(value_node)
        return self.budget.admit(result)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> Any:
        return self.budget.admit(evaluate_comprehension(self, node))

    def _joined_str(self, node: ast.JoinedStr) -> str:
        parts = [self.evaluate(part) for part in node.values]
        self.budget.check_length(sum(len(part) for part in parts), "text")
        return self.budget.admit("".join(parts))

    def _call(self, node: ast.Call) -> Any:
        function = node.func
        if isinstance(function, ast.Attribute):
            target = self.evaluate(function.value)
            method = _method(target, function.attr)
            if method is not None:
                args, kwargs = self._arguments(node, target)
                return self.budget.admit(method(self.budget, target, *args, **kwargs))
            callee = self._read_attribute(target, function)
        else:
            callee = self.evaluate(function)
        if callee is SAFE_FUNCTIONS[VARIABLE_FUNCTION]:
            return self._variable(node)
        if not isinstance(callee, SafeFunction):
            raise SandboxViolation(f"'{_source_of(function)}' is not a function that can be called")
        args, kwargs = self._arguments(node)
        return self.budget.admit(callee(self.budget, *args, **kwargs))

    def _variable(self, node: ast.Call) -> Any:
        """variable('x'): a data value by name, None when it is not set (Camunda's getVariable, FEEL's null)."""
        args, kwargs = self._arguments(node)
        if kwargs or len(args) != 1 or not isinstance(args[0], str):
            raise SandboxViolation(f"{VARIABLE_FUNCTION}() takes the name of one variable, as {VARIABLE_FUNCTION}('x')")
        name = args[0]
        if name.startswith("_"):
            raise SandboxViolation(f"name '{name}' is not allowed: names starting with '_' are reserved")
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return self.context.get(name)

    def _arguments(self, node: ast.Call, *receiver: Any) -> tuple[list[Any], dict[str, Any]]:
        args = [self.evaluate(arg) for arg in node.args]
        kwargs = {keyword.arg: self.evaluate(keyword.value) for keyword in node.keywords if keyword.arg}
        self.budget.charge_for(*receiver, *args, *kwargs.values())
        return args, kwargs


def _method(target: Any, name: str) -> Callable[..., Any] | None:
    # Box semantics: dict methods win over keys of the same name, as attribute lookup does in Python.
    if isinstance(target, Mapping) and name not in MAPPING_METHOD_NAMES:
        return None
    return method_for(target, name)


def _source_of(node: ast.AST) -> str:
    return ast.unparse(node)
