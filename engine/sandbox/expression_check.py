"""Static check of an expression: parse it and refuse every construct outside the allow-list.

Runs at deploy time (through `check_expression`) and again before each evaluation, so the
evaluator only ever sees trees made of the node types it knows.
"""

from __future__ import annotations

import ast

from .errors import SandboxLimitExceeded, SandboxSyntaxError, SandboxViolation
from .expression_functions import CLASS_METHOD_NAMES, SAFE_FUNCTIONS
from .expression_methods import METHOD_NAMES
from .limits import Limits

_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.BinOp,
    ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.JoinedStr,
    ast.FormattedValue, ast.Call, ast.keyword, ast.Starred, ast.operator, ast.unaryop, ast.boolop,
    ast.cmpop, ast.expr_context,
)
_FRIENDLY_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda function",
    ast.NamedExpr: "the := operator",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}
_FORMAT_METHODS = frozenset({"format", "format_map"})
_CALLABLE_ATTRIBUTES = METHOD_NAMES | CLASS_METHOD_NAMES


def parse_expression(source: str, limits: Limits) -> ast.Expression:
    """The checked syntax tree of `source`; raises a SandboxError subclass if it is not allowed."""
    if not isinstance(source, str):
        raise SandboxSyntaxError(f"an expression must be text, not {type(source).__name__}")
    if len(source) > limits.max_source_chars:
        raise SandboxLimitExceeded(
            f"the expression is {len(source)} characters long; the limit is {limits.max_source_chars}")
    try:
        # eval() ignores leading blanks too; DMN cells and conditions often carry them.
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise SandboxSyntaxError(f"invalid expression: {exc.msg}", line=exc.lineno) from None
    except ValueError as exc:  # e.g. a NUL character in the source
        raise SandboxSyntaxError(f"invalid expression: {exc}") from None
    except (MemoryError, RecursionError):
        raise SandboxLimitExceeded("the expression is nested too deeply") from None
    _check_tree(tree, limits)
    return tree


def _check_tree(tree: ast.Expression, limits: Limits) -> None:
    # Iterative walk: a deep tree must not exhaust the checker's own stack.
    pending: list[tuple[ast.AST, int, ast.AST | None]] = [(tree, 0, None)]
    count = 0
    while pending:
        node, depth, parent = pending.pop()
        count += 1
        if count > limits.max_nodes:
            raise SandboxLimitExceeded(f"the expression has more than {limits.max_nodes} parts")
        if depth > limits.max_depth:
            raise SandboxLimitExceeded(f"the expression is nested more than {limits.max_depth} levels deep")
        _check_node(node, parent, limits)
        # Reversed so that siblings are checked left to right, as the author reads them.
        pending.extend((child, depth + 1, node) for child in reversed(list(ast.iter_child_nodes(node))))


def _check_node(node: ast.AST, parent: ast.AST | None, limits: Limits) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        what = _FRIENDLY_NAMES.get(type(node), type(node).__name__)
        raise SandboxViolation(f"{what} is not allowed in expressions", line=getattr(node, "lineno", None))
    if isinstance(node, ast.Name):
        _check_identifier(node.id, "name")
    elif isinstance(node, ast.Attribute):
        _check_attribute(node.attr)
    elif isinstance(node, ast.keyword):
        if node.arg is None:
            raise SandboxViolation("**arguments are not allowed in expressions")
        _check_identifier(node.arg, "argument name")
    elif isinstance(node, ast.Call):
        _check_call(node)
    elif isinstance(node, ast.Starred):
        if not isinstance(parent, ast.List | ast.Tuple | ast.Set) or not isinstance(node.ctx, ast.Load):
            raise SandboxViolation("* unpacking is only allowed inside [...], (...) and {...}")
    elif isinstance(node, ast.comprehension):
        _check_comprehension(node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        if node.value.bit_length() > limits.max_int_bits:
            raise SandboxLimitExceeded(f"a number in the expression exceeds {limits.max_int_bits} bits")


def _check_identifier(name: str, what: str) -> None:
    if name.startswith("_"):
        raise SandboxViolation(f"{what} '{name}' is not allowed: names starting with '_' are reserved")


def _check_attribute(name: str) -> None:
    if name.startswith("_"):
        raise SandboxViolation(f"attribute access to '{name}' is not allowed")
    if name in _FORMAT_METHODS:
        raise SandboxViolation(f"'.{name}()' is not allowed; use an f-string such as f\"{{name}}\" instead")


def _check_call(node: ast.Call) -> None:
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        raise SandboxViolation("*arguments are not allowed in calls")
    function = node.func
    if isinstance(function, ast.Name):
        if function.id not in SAFE_FUNCTIONS:
            raise SandboxViolation(f"function '{function.id}' is not available in expressions")
    elif isinstance(function, ast.Attribute):
        if function.attr not in _CALLABLE_ATTRIBUTES and not function.attr.startswith("_"):
            if function.attr not in _FORMAT_METHODS:
                raise SandboxViolation(f"method '{function.attr}' is not available in expressions")
    else:
        raise SandboxViolation("only functions and methods called by name are allowed")


def _check_comprehension(node: ast.comprehension) -> None:
    if node.is_async:
        raise SandboxViolation("async comprehensions are not allowed in expressions")
    targets = [node.target]
    while targets:
        target = targets.pop()
        if isinstance(target, ast.Tuple | ast.List):
            targets.extend(target.elts)
        elif not isinstance(target, ast.Name):
            raise SandboxViolation("a comprehension may only assign to plain names, e.g. 'for a, b in pairs'")
