"""Task data crossing to and from script workers keeps its types and rejects anything odd."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from carepath.engine.sandbox.transport import UnsupportedValue, from_wire, to_wire


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=-5)))},
        [date(2024, 2, 29), time(23, 59, 59), timedelta(days=-1, microseconds=5)],
        {"copay": Decimal("-0.010"), "id": UUID(int=42)},
        {"nested": {frozenset({1, 2}): ("a", {"b"})}},
        {"$sandbox": "looks like a tag"},
        {"text": "plain", "n": 1, "f": 1.5, "flag": True, "none": None},
    ],
)
def test_values_survive_a_trip_through_json(value: Any) -> None:
    assert from_wire(json.loads(json.dumps(to_wire(value)))) == value


def test_a_tuple_stays_a_tuple() -> None:
    assert type(from_wire(to_wire((1, 2)))) is tuple


@pytest.mark.parametrize("value", [object(), range(3), b"bytes", {"f": print}])
def test_values_without_a_json_form_are_refused(value: Any) -> None:
    with pytest.raises(UnsupportedValue):
        to_wire(value)


@pytest.mark.parametrize(
    "wire",
    [
        {"$sandbox": "pickle", "value": "..."},
        {"$sandbox": "datetime", "value": "not a date"},
        {"$sandbox": "dict", "items": [[["unhashable"], 1]]},
        {"$sandbox": "timedelta"},
    ],
)
def test_malformed_worker_output_is_refused(wire: Any) -> None:
    with pytest.raises(UnsupportedValue):
        from_wire(wire)


def test_nesting_is_bounded_in_both_directions() -> None:
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(UnsupportedValue):
        to_wire(deep)
    with pytest.raises(UnsupportedValue):
        from_wire(deep)
