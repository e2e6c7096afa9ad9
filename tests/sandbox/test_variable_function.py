"""variable('x'): a variable's value, or None when it is not set (what translated Camunda conditions read)."""

from __future__ import annotations

import pytest

from carepath.engine.sandbox import SandboxViolation, evaluate_expression


def test_variable_reads_a_set_value_and_none_for_an_unset_one() -> None:
    assert evaluate_expression("variable('score')", {"score": 4}) == 4
    assert evaluate_expression("variable('score')", {}) is None
    assert evaluate_expression("[variable('x') for x in [1, 2]]", {}) == [1, 2]  # comprehension names too


@pytest.mark.parametrize("expression", ["variable('_secret')", "variable(1)", "variable('a', 'b')",
                                        "[variable][0]('x')"])
def test_variable_refuses_reserved_names_and_other_uses(expression: str) -> None:
    with pytest.raises(SandboxViolation):
        evaluate_expression(expression, {"_secret": 1, "a": 1})


def test_data_named_variable_is_still_data() -> None:
    assert evaluate_expression("variable", {"variable": 3}) == 3
