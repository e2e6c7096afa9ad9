"""Script tasks run in worker processes and turn task data into new task data."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from multiprocessing.process import BaseProcess
from uuid import UUID

import pytest

from carepath.engine.sandbox import (
    SandboxError,
    SandboxLimitExceeded,
    SandboxSyntaxError,
    SandboxViolation,
    ScriptFailed,
    check_script,
    configure_script_pool,
    run_script,
)

pytestmark = pytest.mark.timeout(120)


def test_top_level_assignments_become_the_new_task_data() -> None:
    script = "risk = 'high' if age >= 65 and visits > 2 else 'low'\nvisits += 1"
    assert run_script(script, {"age": 70, "visits": 3}) == {"age": 70, "visits": 4, "risk": "high"}


def test_the_input_mapping_is_not_modified() -> None:
    data = {"meds": ["a"]}
    run_script("meds.append('b')", data)
    assert data == {"meds": ["a"]}


def test_date_arithmetic_keeps_python_types() -> None:
    script = (
        "from datetime import timedelta\n"
        "follow_up = discharge + timedelta(days=7)\n"
        "follow_up_day = follow_up.date()\n"
    )
    result = run_script(script, {"discharge": datetime(2024, 3, 28, 14, 30, tzinfo=UTC)})
    assert result["follow_up"] == datetime(2024, 4, 4, 14, 30, tzinfo=UTC)
    assert result["follow_up_day"] == date(2024, 4, 4)


def test_values_json_lacks_come_back_as_the_same_types() -> None:
    data = {
        "at": datetime(2024, 1, 2, 3, 4, 5, 6), "on": date(2024, 1, 2), "clock": time(7, 30),
        "stay": timedelta(days=2, seconds=5), "copay": Decimal("12.50"), "ref": UUID(int=7),
        "pair": (1, "a"), "codes": {"x", "y"}, "by_id": {1: "one", (2, 3): "pair"},
        "tagged": {"$sandbox": "datetime", "value": "not a tag"}, "nothing": None, "ratio": 0.5,
    }
    assert run_script("", data) == data


def test_functions_and_modules_are_not_stored() -> None:
    script = "import math\ndef double(x):\n    return x * 2\nresult = double(math.floor(2.7))"
    assert run_script(script, {}) == {"result": 4}


def test_deleted_variables_disappear_from_the_result() -> None:
    assert run_script("del scratch", {"scratch": 1, "keep": 2}) == {"keep": 2}


def test_fields_a_script_cannot_name_are_passed_through_untouched() -> None:
    opaque = object()
    data = {"_internal": opaque, "not an identifier": [1], "x": 1}
    result = run_script("x = 2", data)
    assert result["_internal"] is opaque
    assert result["not an identifier"] == [1]
    assert result["x"] == 2


def test_task_data_that_cannot_cross_to_a_worker_is_named() -> None:
    with pytest.raises(SandboxError, match="task data field 'callback'"):
        run_script("x = 1", {"callback": object()})


def test_a_result_that_cannot_be_stored_names_the_variable() -> None:
    with pytest.raises(ScriptFailed, match="variable 'span'"):
        run_script("span = range(3)", {})


def test_a_failing_script_reports_line_and_error_class() -> None:
    with pytest.raises(ScriptFailed) as caught:
        run_script("a = 1\nb = 2\nc = a / (b - 2)", {})
    assert caught.value.line == 3
    assert caught.value.error_class == "ZeroDivisionError"
    assert "division by zero" in caught.value.message


def test_allowed_modules_can_be_imported() -> None:
    script = (
        "import json\nimport statistics\nfrom decimal import Decimal, ROUND_HALF_UP\n"
        "avg = statistics.mean(scores)\nblob = json.dumps({'n': len(scores)})\n"
        "fee = Decimal('2.345').quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)"
    )
    result = run_script(script, {"scores": [1, 2, 3]})
    assert (result["avg"], result["blob"], result["fee"]) == (2, '{"n": 3}', Decimal("2.35"))


def test_print_output_is_available_to_the_script_only(capfd: pytest.CaptureFixture[str]) -> None:
    result = run_script("print('visible-in-script')\nlog = printed", {})
    assert result["log"] == "visible-in-script\n"
    captured = capfd.readouterr()
    assert "visible-in-script" not in captured.out + captured.err


def test_scripts_from_many_threads_all_get_their_own_answer() -> None:
    def square(n: int) -> int:
        return run_script("y = n * n", {"n": n})["y"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(square, range(24))) == [n * n for n in range(24)]


def test_check_script_accepts_a_valid_script() -> None:
    check_script("import math\ntotal = 0\nfor s in scores:\n    total += math.ceil(s)\n")


@pytest.mark.parametrize(
    ("source", "error", "line"),
    [
        ("x = 1\ny = (", SandboxSyntaxError, 2),
        ("x = 1\nimport os", SandboxViolation, 2),
        ("from datetime import sys", SandboxViolation, 1),
        ("x = 1\n\ny = x.__class__", SandboxViolation, 3),
        ("class Patient:\n    pass", SandboxViolation, 1),
        ("x = eval('1')", SandboxViolation, 1),
    ],
)
def test_check_script_rejects_with_the_line(source: str, error: type[SandboxError], line: int) -> None:
    with pytest.raises(error) as caught:
        check_script(source)
    assert caught.value.line == line


def test_the_same_problems_are_refused_at_run_time() -> None:
    with pytest.raises(SandboxViolation) as caught:
        run_script("x = 1\nimport os", {})
    assert caught.value.line == 2


def test_an_oversized_script_is_refused_before_it_is_sent() -> None:
    with pytest.raises(SandboxLimitExceeded, match="characters long"):
        run_script("x = 1\n" * 200_000, {})


def script_workers() -> list[BaseProcess]:
    return [child for child in multiprocessing.active_children() if child.name == "carepath-script-worker"]


def test_a_worker_that_died_while_idle_is_replaced() -> None:
    run_script("x = 1", {})
    for worker in script_workers():
        worker.kill()
        worker.join(10)
    assert run_script("y = x * 2", {"x": 21}) == {"x": 21, "y": 42}


def test_a_pool_of_one_worker_serves_callers_in_turn() -> None:
    configure_script_pool(size=1)
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda n: run_script("y = n + 1", {"n": n})["y"], range(6)))
        assert results == [1, 2, 3, 4, 5, 6]
        assert len(script_workers()) == 1
    finally:
        configure_script_pool(size=2)
