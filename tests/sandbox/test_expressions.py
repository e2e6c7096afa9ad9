"""Expressions a clinical lead writes in conditions, timers and DMN cells give the expected values."""

from __future__ import annotations

from collections import ChainMap
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from carepath.engine.sandbox import (
    ExpressionFailed,
    Limits,
    SandboxLimitExceeded,
    SandboxSyntaxError,
    SandboxViolation,
    UndefinedName,
    check_expression,
    evaluate_expression,
)


def visit(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "age": 67,
        "visit_type": "ED",
        "patient": {
            "name": "Ada Lovelace", "pcp": {"name": "Dr Who", "phone": "555"}, "allergies": ["latex"],
        },
        "discharge": datetime(2024, 3, 28, 14, 30),
        "scores": [3, 9, 4, 12],
        "copay": Decimal("12.50"),
        "length_of_stay": timedelta(days=3),
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('age >= 18 and visit_type == "ED"', True),
        ('age < 18 or visit_type != "ED"', False),
        ("patient.pcp.name", "Dr Who"),
        ('patient["pcp"]["phone"]', "555"),
        ('"latex" in patient.allergies', True),
        ('"iodine" not in patient.allergies', True),
        ("[s * 2 for s in scores if s > 5]", [18, 24]),
        ("{s for s in scores if s % 2 == 0}", {4, 12}),
        ("{name: len(name) for name in ['a', 'bb']}", {"a": 1, "bb": 2}),
        ("any(s > 10 for s in scores)", True),
        ("all(s > 1 for s in scores)", True),
        ("sum(scores) / len(scores)", 7.0),
        ("max(scores) - min(scores)", 9),
        ("sorted(scores, reverse=True)[:2]", [12, 9]),
        ("discharge + timedelta(days=7)", datetime(2024, 4, 4, 14, 30)),
        ("(discharge + length_of_stay).date()", date(2024, 3, 31)),
        ("discharge.date() > date(2024, 1, 1)", True),
        ("discharge.weekday()", 3),
        ("discharge.isoformat()", "2024-03-28T14:30:00"),
        ('datetime.fromisoformat("2024-03-01T08:00") < discharge', True),
        ("length_of_stay.days * 24", 72),
        ("copay * 2", Decimal("25.00")),
        ('"high" if age > 65 else "standard"', "high"),
        ('f"{patient.name.upper()} ({age:d} y)"', "ADA LOVELACE (67 y)"),
        ('patient.name.split(" ")[-1].lower()', "lovelace"),
        ('patient.get("mrn", "unknown")', "unknown"),
        ("[*scores[:1], *patient.allergies]", [3, "latex"]),
        ('{**patient.pcp, "role": "pcp"}', {"name": "Dr Who", "phone": "555", "role": "pcp"}),
        ("list(range(3))", [0, 1, 2]),
        ("round(copay / 3, 2)", Decimal("4.17")),
        ("-age", -67),
        ("1 < age <= 67", True),
        ("age is None", False),
        ('"PT1H"', "PT1H"),
        ("  age > 5  ", True),
    ],
)
def test_expression_gives_the_expected_value(source: str, expected: Any) -> None:
    assert evaluate_expression(source, visit()) == expected


def test_task_data_shadows_a_function_of_the_same_name() -> None:
    assert evaluate_expression("date", visit(date="2024-01-02")) == "2024-01-02"


def test_dict_method_names_still_work_as_methods_on_data() -> None:
    order = {"items": ["a", "b"], "count": 2}
    assert evaluate_expression("order.items", {"order": order}) == ["a", "b"]
    assert evaluate_expression("order.get('count')", {"order": order}) == 2


def test_a_mapping_that_is_not_a_dict_is_read_like_one() -> None:
    context = ChainMap({"age": 3}, {"dmninputexpr": 5})
    assert evaluate_expression("dmninputexpr > age", context) is True


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing_field > 3", "name 'missing_field' is not defined"),
        ("patient.mrn", "'patient' has no field 'mrn'"),
    ],
)
def test_missing_data_is_reported_as_undefined(source: str, message: str) -> None:
    with pytest.raises(UndefinedName, match=message):
        evaluate_expression(source, visit())


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / 0", "division by zero"),
        ('age > "ten"', "not supported between"),
        ('patient["mrn"]', "key 'mrn' is not present"),
        ("scores[10]", "index out of range"),
    ],
)
def test_ordinary_errors_are_reported_in_plain_words(source: str, message: str) -> None:
    with pytest.raises(ExpressionFailed, match=message):
        evaluate_expression(source, visit())


def test_check_expression_accepts_valid_text_without_data() -> None:
    check_expression('age >= 18 and patient.pcp.name.startswith("Dr")')


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("age >=", SandboxSyntaxError),
        ("> 5", SandboxSyntaxError),
        ("open('x')", SandboxViolation),
        ("patient.__dict__", SandboxViolation),
        ("lambda: 1", SandboxViolation),
        ("(y := 3)", SandboxViolation),
        ("x" * 20_000, SandboxLimitExceeded),
    ],
)
def test_check_expression_rejects_bad_text_at_deploy_time(source: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_expression(source)


def test_stricter_limits_can_be_passed_per_call() -> None:
    tight = Limits(max_steps=50)
    assert evaluate_expression("age + 1", visit(), limits=tight) == 68
    with pytest.raises(SandboxLimitExceeded, match="exceeded 50 evaluation steps"):
        evaluate_expression("[s for s in range(100)]", visit(), limits=tight)


def test_evaluation_does_not_modify_task_data() -> None:
    data = visit()
    evaluate_expression("sorted(scores) + [1]", data)
    assert data["scores"] == [3, 9, 4, 12]
