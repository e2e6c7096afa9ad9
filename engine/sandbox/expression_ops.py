"""Operators for the expression evaluator, with size checks made *before* Python does the work.

`10 ** 10 ** 8`, `'a' * 10 ** 10` and `1 << 10 ** 9` are refused by predicting the size of the
result from the operands; nothing is allocated first.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .budget import Budget
from .errors import SandboxLimitExceeded, SandboxViolation

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor, ast.BitAnd: operator.and_, ast.MatMult: operator.matmul,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda left, right: left in right, ast.NotIn: lambda left, right: left not in right,
}
_SEQUENCES = (str, bytes, list, tuple)
_MAX_POWER_DIGITS = 200


def _kind(value: Any) -> str:
    return "text" if isinstance(value, str | bytes) else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int)  # bool included: True * 'a' is 'a'


def _check_power(budget: Budget, base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        # A lower bound (2 ** 4095 fits); admit() checks the exact size of the result.
        budget.check_int_bits((base.bit_length() - 1) * exponent + 1)
    elif isinstance(base, Decimal) or isinstance(exponent, Decimal):
        # Fractional decimal powers cost roughly the cube of the operands' digits.
        digits = max(_decimal_digits(base), _decimal_digits(exponent))
        if digits > _MAX_POWER_DIGITS:
            raise SandboxLimitExceeded(f"a decimal power may use at most {_MAX_POWER_DIGITS} digits")


def _decimal_digits(value: Any) -> int:
    if isinstance(value, Decimal):
        return len(value.as_tuple().digits)
    return value.bit_length() // 3 + 1 if _is_int(value) else 0


def _check_multiply(budget: Budget, left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        budget.check_int_bits(left.bit_length() + right.bit_length())
    elif isinstance(left, _SEQUENCES) and _is_int(right):
        budget.check_length(len(left) * max(right, 0), _kind(left))
    elif _is_int(left) and isinstance(right, _SEQUENCES):
        budget.check_length(len(right) * max(left, 0), _kind(right))


def _check_add(budget: Budget, left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        budget.check_int_bits(max(left.bit_length(), right.bit_length()) + 1)
    elif isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        budget.check_length(len(left) + len(right), _kind(left))


def _check_shift(budget: Budget, left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right) and right > 0:
        budget.check_int_bits(left.bit_length() + right)


def _check_modulo(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, str | bytes):
        # '%*d' % (10**9, 1) would pad to a gigabyte.
        raise SandboxViolation("'%' formatting of text is not allowed; use an f-string instead")


_PRE_CHECKS: dict[type[ast.operator], Callable[[Budget, Any, Any], None]] = {
    ast.Pow: _check_power, ast.Mult: _check_multiply, ast.Add: _check_add, ast.LShift: _check_shift,
    ast.Mod: _check_modulo,
}


def binary(budget: Budget, op: ast.operator, left: Any, right: Any) -> Any:
    check = _PRE_CHECKS.get(type(op))
    if check is not None:
        check(budget, left, right)
    budget.charge_for(left, right)
    return budget.admit(_BINARY[type(op)](left, right))


def unary(budget: Budget, op: ast.unaryop, operand: Any) -> Any:
    return budget.admit(_UNARY[type(op)](operand))


def compare(budget: Budget, op: ast.cmpop, left: Any, right: Any) -> Any:
    budget.charge_for(left, right)
    return _COMPARE[type(op)](left, right)
