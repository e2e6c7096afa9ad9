"""Hostile expressions are refused with a SandboxError: no escape, no crash, no hang, no huge allocation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from carepath.engine.sandbox import (
    SandboxError,
    SandboxLimitExceeded,
    SandboxViolation,
    UndefinedName,
    evaluate_expression,
)

pytestmark = pytest.mark.timeout(60)

DATA = {"age": 40, "name": "ada", "items": [1, 2, 3], "when": datetime(2024, 1, 1),
        "huge_decimal": Decimal("7" * 50_000)}

ESCAPES = [
    "__import__('os').system('id')",
    "import os",
    "from os import system",
    "().__class__.__base__.__subclasses__()",
    "getattr((), '__class__')",
    "'{0.__class__}'.format(1)",
    "'{x.__class__}'.format_map({'x': 1})",
    "name.format(1)",
    "f'{().__class__}'",
    "(x for x in []).gi_frame.f_globals",
    "[x for x in []].gi_frame",
    "[].__class__.__mro__",
    "type(1)",
    "vars()",
    "globals()",
    "locals()",
    "eval('1')",
    "exec('1')",
    "compile('1', '<x>', 'eval')",
    "open('/etc/passwd').read()",
    "__builtins__",
    "__builtins__['eval']",
    "sys.modules",
    "os._exit(0)",
    "print('x' * 100)",
    "lambda: 1",
    "(lambda: 1)()",
    "len.__self__",
    "len.__call__",
    "len.foo",
    "max.__module__",
    "datetime.now",
    "datetime.now()",
    "when.__reduce__()",
    "items.append(4)",
    "items.__setitem__(0, 1)",
    "[y := 1]",
    "raise SystemExit",
    "while True: pass",
    "'%*d' % (10**9, 1)",
    "max(items, key=len)",
    "sorted(items, key=len)",
    "dict(**{'a': 1})",
    "len(*items)",
]

LIMITS = [
    "10**10**8",
    "2**(2**4096)",
    "'a' * 10**10",
    "[0] * 10**10",
    "(0,) * 10**10",
    "1 << 10**9",
    "list(range(10**12))",
    "range(10**12)",
    "[[0] * 1000] * 1000",
    "str([['a' * 1000] * 100] * 100)",
    "f'{[[1] * 300] * 300}'",
    "[x for x in range(100000) for y in range(100000)]",
    "[[x, x, x, x, x, x, x, x, x, x] for x in [[y, y, y, y, y, y, y, y, y, y] for y in [[0] * 1000]]]",
    "('a' * 50000).replace('a', 'a' * 50000)",
    "','.join(['a' * 50000] * 50000)",
    "'a'.ljust(10**10)",
    "f'{age:>1000000000}'",
    "int('9' * 4000) * int('9' * 4000)",
    "int(Decimal('1e999999'))",
    "round(Decimal('1e999999'))",
    "Decimal('9' * 99000) ** Decimal('0.5')",
    "(10**1200 - 1) ** Decimal('0.5')",
    "huge_decimal ** 0.5",
    "datetime.strptime('2024', '%Y' * 10000)",
    "sorted([[0] * 1000] * 1000)",
    "[[0] * 2000] * 2000 == [[0] * 2000] * 2000",
    "(" * 300 + "1" + ")" * 300,
    "-" * 9000 + "1",
    "not " * 2000 + "age",
    "[" * 150 + "]" * 150,
    "1+" * 500_000 + "1",
    "age" + " + age" * 5000,
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_attempt_is_refused(source: str) -> None:
    with pytest.raises(SandboxError):
        evaluate_expression(source, DATA)
    assert evaluate_expression("age + 1", DATA) == 41


@pytest.mark.parametrize("source", LIMITS)
def test_oversized_work_is_stopped_before_it_happens(source: str) -> None:
    with pytest.raises(SandboxError):
        evaluate_expression(source, DATA)
    assert evaluate_expression("age + 1", DATA) == 41


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("().__class__", "attribute access to '__class__' is not allowed"),
        ("__import__('os')", "function '__import__' is not available"),
        ("'{0.__class__}'.format(1)", "use an f-string"),
        ("10**10**8", "the limit is 4096"),
        ("[0] * 10**10", "the limit is 100000"),
        ("[s for s in range(10**5) for t in range(10**5)]", "more than 10000 iterations"),
        ("x" * 1_000_000, "characters long"),
    ],
)
def test_refusal_names_the_problem(source: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        evaluate_expression(source, DATA)


def test_refusal_classes_tell_violations_from_limits_and_missing_names() -> None:
    with pytest.raises(SandboxViolation):
        evaluate_expression("type(age)", DATA)
    with pytest.raises(SandboxLimitExceeded):
        evaluate_expression("'a' * 10**9", DATA)
    with pytest.raises(UndefinedName):
        evaluate_expression("os", DATA)


def test_deep_value_from_task_data_is_not_copied_by_comparison() -> None:
    # Shared references in task data must not let a cheap-looking comparison run for minutes.
    row = list(range(1000))
    grid = {"a": [list(row) for _ in range(1000)], "b": [list(row) for _ in range(1000)]}
    with pytest.raises(SandboxLimitExceeded):
        evaluate_expression("[a == b for i in range(1000)]", grid)
