"""Translate Camunda conditions (JUEL `${...}` / `#{...}`, Camunda 8 FEEL `=...`) into sandbox expressions.

Editors write conditions in Camunda's languages as a matter of course. CarePath never runs them as
Java or JavaScript: `_camunda_syntax` parses the simple forms into a syntax tree, and this module
writes the tree out as the Python-subset expression the sandbox evaluates, with parentheses where
Python's precedence differs from JUEL's (`!a == b`, `a < b == c`). The deploy stores the translated
text, so what runs is what `carepath validate` shows.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from ..sandbox.expression_functions import VARIABLE_FUNCTION
from ._camunda_syntax import (
    Binary,
    Choice,
    Constant,
    Dialect,
    Field,
    Index,
    Name,
    Node,
    OutsideSubset,
    Parser,
    Quantified,
    Unary,
)

SUPPORTED = ("CarePath translates JUEL ${...} / #{...} and Camunda 8 FEEL =... conditions made of variables, "
             "properties (a.b, a['b']), numbers, 'text', true, false, null, == != < > <= >= (eq ne lt gt le ge; "
             "= in FEEL), && || ! (and or not), empty, + - * / %, a ? b : c, execution.getVariable('name') "
             "and FEEL's some/every ... satisfies; or write the condition as a Python expression, e.g. "
             "approved == True")


@dataclass(frozen=True)
class Translation:
    dialect: Dialect
    original: str
    text: str


def camunda_dialect(text: str) -> Dialect | None:
    """Which Camunda language a condition is written in, by its markers; None for anything else."""
    stripped = text.strip()
    if stripped[:2] in {"${", "#{"}:
        return "juel"
    if stripped.startswith("=") and not stripped.startswith("=="):
        return "feel"
    return None


def translate(text: str) -> Translation:
    """The sandbox expression for a Camunda condition; raises OutsideSubset quoting what is not supported."""
    dialect = camunda_dialect(text)
    stripped = text.strip()
    if dialect is None:
        raise OutsideSubset("it is not a Camunda expression", stripped[:40])
    if dialect == "juel":
        if "}" not in stripped:
            raise OutsideSubset("the closing '}' is missing", stripped[-20:])
        if not stripped.endswith("}"):
            raise OutsideSubset("text after the closing '}' is not supported; write one expression for the "
                                "whole condition", stripped[stripped.rfind("}") + 1:].strip()[:40])
        body = stripped[2:-1]
    else:
        body = stripped[1:]
    try:
        return Translation(dialect, stripped, render(Parser(body, dialect).parse()))
    except RecursionError:  # a long chain such as a+a+a+... is a deep tree; refuse it, never crash
        raise OutsideSubset("the expression is too long to translate", stripped[:40]) from None


# -- writing the tree as a sandbox expression ------------------------------------------------------
# Python's levels, loosest first: x if c else y, or, and, not, comparisons, + -, * / %, unary -, atoms.
_CHOICE, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEGATE, _ATOM = range(9)
_LEVELS = {"or": _OR, "and": _AND, "==": _COMPARE, "!=": _COMPARE, "<": _COMPARE, ">": _COMPARE,
           "<=": _COMPARE, ">=": _COMPARE, "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "%": _PRODUCT}
_EMPTY_VALUES = "(None, '', [], {})"


def render(node: Node) -> str:
    return _written(node)[0]


def _at_least(node: Node, level: int) -> str:
    text, own = _written(node)
    return text if own >= level else f"({text})"


def _written(node: Node) -> tuple[str, int]:
    if isinstance(node, Constant):
        return repr(node.value), _ATOM
    if isinstance(node, Name):
        return _name(node), _ATOM
    if isinstance(node, Field):
        base = _at_least(node.base, _ATOM)
        return (f"{base}.{node.name}" if _plain_name(node.name) else f"{base}[{node.name!r}]"), _ATOM
    if isinstance(node, Index):
        return f"{_at_least(node.base, _ATOM)}[{_at_least(node.key, _CHOICE)}]", _ATOM
    if isinstance(node, Unary):
        return _unary(node)
    if isinstance(node, Binary):
        return _binary(node)
    if isinstance(node, Choice):
        return (f"{_at_least(node.then, _OR)} if {_at_least(node.test, _OR)} else "
                f"{_at_least(node.otherwise, _CHOICE)}"), _CHOICE
    return _quantified(node)


def _name(node: Name) -> str:
    if node.name.startswith("_"):
        raise OutsideSubset(f"the variable name '{node.name}' starts with '_', which CarePath reserves",
                            node.name)
    if node.may_be_absent or not _plain_name(node.name):
        return f"{VARIABLE_FUNCTION}({node.name!r})"
    return node.name


def _plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")


def _unary(node: Unary) -> tuple[str, int]:
    if node.op == "not":
        return f"not {_at_least(node.operand, _NOT)}", _NOT
    if node.op == "-":
        return f"-{_at_least(node.operand, _NEGATE)}", _NEGATE
    # JUEL's empty: null, '' and empty collections; never 0 or false.
    return f"{_at_least(node.operand, _SUM)} in {_EMPTY_VALUES}", _COMPARE


def _binary(node: Binary) -> tuple[str, int]:
    level = _LEVELS[node.op]
    if level == _COMPARE:  # Python would chain a < b == c; JUEL means (a < b) == c
        return f"{_at_least(node.left, _SUM)} {node.op} {_at_least(node.right, _SUM)}", level
    right_level = level if level in {_OR, _AND} else level + 1
    return f"{_at_least(node.left, level)} {node.op} {_at_least(node.right, right_level)}", level


def _quantified(node: Quantified) -> tuple[str, int]:
    if not _plain_name(node.variable):
        raise OutsideSubset(f"'{node.variable}' cannot name the item of some/every", node.variable)
    function = "any" if node.kind == "some" else "all"
    return (f"{function}({_at_least(node.condition, _OR)} for {node.variable} in "
            f"{_at_least(node.collection, _OR)})"), _ATOM
