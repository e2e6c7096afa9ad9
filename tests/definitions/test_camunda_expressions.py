"""The translator of Camunda conditions: JUEL and FEEL text in, the sandbox expression out, and what the
translated expression gives on real data (evaluated by the sandbox, as the engine will)."""

from __future__ import annotations

from typing import Any

import pytest

from carepath.engine.definitions._camunda_expressions import translate
from carepath.engine.definitions._camunda_syntax import OutsideSubset
from carepath.engine.sandbox import UndefinedName, evaluate_expression


def run(text: str, **data: Any) -> Any:
    return evaluate_expression(translate(text).text, data)


@pytest.mark.parametrize(("camunda", "sandbox"), [
    ("${approved}", "approved"),
    ("#{approved}", "approved"),
    ("${!approved}", "not approved"),
    ("${not approved}", "not approved"),
    ("${a == 1}", "a == 1"), ("${a eq 1}", "a == 1"),
    ("${a != 1}", "a != 1"), ("${a ne 1}", "a != 1"),
    ("${a < 1}", "a < 1"), ("${a lt 1}", "a < 1"),
    ("${a > 1}", "a > 1"), ("${a gt 1}", "a > 1"),
    ("${a <= 1}", "a <= 1"), ("${a le 1}", "a <= 1"),
    ("${a >= 1}", "a >= 1"), ("${a ge 1}", "a >= 1"),
    ("${a && b}", "a and b"), ("${a and b}", "a and b"),
    ("${a || b}", "a or b"), ("${a or b}", "a or b"),
    ("${x div 2 mod 3 + 1 - 2 * 4 / 5 % 6}", "x / 2 % 3 + 1 - 2 * 4 / 5 % 6"),
    ("${-x > -1.5e3}", "-x > -1500.0"),
    ("${a ? 'yes' : 'no'}", "'yes' if a else 'no'"),
    ("${empty notes}", "notes in (None, '', [], {})"),
    ("${patient.address.city == 'Leeds'}", "patient.address.city == 'Leeds'"),
    ("${patient['first name'] == 'Ann'}", "patient['first name'] == 'Ann'"),
    ("${invoiceId != null}", "invoiceId != None"),
    ("${flag == true || flag == false}", "flag == True or flag == False"),
    ("${execution.getVariable('isSober') == true}", "variable('isSober') == True"),
    ('${execution.getVariable("score") >= 3}', "variable('score') >= 3"),
    ("=x > 5", "variable('x') > 5"),
    ("= approved", "variable('approved')"),
    ("=a and b", "variable('a') and variable('b')"),
    ('=status = "done"', "variable('status') == 'done'"),
    ("=x != null", "variable('x') != None"),
    ("= not(approved)", "not variable('approved')"),
    ('= some risk in riskLevels satisfies risk = "red"', "any(risk == 'red' for risk in variable('riskLevels'))"),
    ('= every r in levels satisfies r = "yellow"', "all(r == 'yellow' for r in variable('levels'))"),
])
def test_each_operator_and_keyword_is_written_as_the_sandbox_expression(camunda: str, sandbox: str) -> None:
    assert translate(camunda).text == sandbox


@pytest.mark.parametrize(("camunda", "sandbox"), [
    ("${!a == b}", "(not a) == b"),  # JUEL's ! binds tighter than ==; Python's not does not
    ("${a < b == true}", "(a < b) == True"),  # Python would chain the comparisons
    ("${a || b && c}", "a or b and c"),
    ("${(a || b) && c}", "(a or b) and c"),
    ("${(a + b) * c}", "(a + b) * c"),
    ("${a - (b - c)}", "a - (b - c)"),
    ("${!(a && b)}", "not (a and b)"),
    ("${not empty x.y}", "not x.y in (None, '', [], {})"),
    ("${a ? b : c ? d : e}", "b if a else d if c else e"),
])
def test_precedence_follows_juel_and_parentheses_appear_where_python_differs(camunda: str, sandbox: str) -> None:
    assert translate(camunda).text == sandbox


def test_translated_conditions_evaluate_as_camunda_would() -> None:
    assert run("${!a == b}", a=True, b=False) is True
    assert run("${a < b == true}", a=1, b=2) is True
    assert run("${a || b && c}", a=False, b=True, c=False) is False
    assert run("${score ge 3 and risk ne 'low'}", score=3, risk="high") is True
    assert run("${x div 4}", x=2) == 0.5
    assert run("${patient.address.city == 'Leeds'}", patient={"address": {"city": "Leeds"}}) is True


@pytest.mark.parametrize(("value", "empty"), [
    (None, True), ("", True), ([], True), ({}, True), ("x", False), ([0], False), (0, False), (False, False)])
def test_empty_is_true_for_null_empty_text_and_empty_collections_only(value: object, empty: bool) -> None:
    assert run("${empty notes}", notes=value) is empty
    assert run("${!empty notes}", notes=value) is not empty


def test_string_escapes_in_both_quotes() -> None:
    assert translate(r"${name == 'O\'Brien'}").text == '''name == "O'Brien"'''
    assert translate(r'${q == "say \"hi\""}').text == """q == 'say "hi"'"""
    assert translate(r"${p == 'a\\b'}").text == r"p == 'a\\b'"
    assert run(r"${name == 'O\'Brien'}", name="O'Brien") is True
    assert run(r'=q = "a \"b\""', q='a "b"') is True


def test_nulls_unset_variables_and_get_variable() -> None:
    assert run("${invoiceId != null}", invoiceId=None) is False
    assert run("${invoiceId != null}", invoiceId="INV-1") is True
    with pytest.raises(UndefinedName):  # JUEL, as in Camunda 7: an unknown variable is an error
        run("${invoiceId != null}")
    # execution.getVariable and FEEL read a variable that is not set as null
    assert run("${execution.getVariable('isSober') == true}") is False
    assert run("${execution.getVariable('isSober') == true}", isSober=True) is True
    assert run("=x != null") is False
    assert run("=x != null", x=3) is True
    assert run('= some risk in riskLevels satisfies risk = "red"', riskLevels=["yellow", "red"]) is True
    assert run('= every risk in riskLevels satisfies risk = "red"', riskLevels=["yellow", "red"]) is False


@pytest.mark.parametrize(("camunda", "fragment", "says"), [
    ('${S(x).prop("status").stringValue() == "YES"}', 'S(x).prop("status")', "calling 'S(...)' is not supported"),
    ('${customer.prop("age").numberValue() >= 21}', 'customer.prop("age")', "calling 'customer.prop(...)'"),
    ("${a} and ${b}", "} and ${b", "composite expression"),
    ("${a +}", "a +", "a value is missing before the end"),
    ("${a == 'x}", "'x", "not closed"),
    ("${x instanceof Foo}", "instanceof Foo", "'instanceof' is not supported"),
    ("${_secret}", "_secret", "starts with '_'"),
    ("${}", "", "empty"),
    ("=x in [1, 2]", "in [1, 2]", "'in' is not supported"),
    ("=date(x) > y", "date(x)", "calling 'date(...)'"),
    ("${a ~ b}", "~ b", "the character '~'"),
    ("${a} text", "text", "text after the closing"),
    ("${" + "(" * 200 + "a" + ")" * 200 + "}", "(((", "nests more than 32 levels"),
    ("${" + "!" * 200 + "a}", "!!!", "nests more than 32 levels"),
    ("${" + "a + " * 300 + "a}", "a + a", "more than 500 parts"),
    ("${x > " + "9" * 5000 + "}", "9999", "at most 40 digits"),
    ("${a == 1", "${a == 1", "the closing '}' is missing"),
])
def test_what_is_outside_the_subset_is_refused_quoting_it(camunda: str, fragment: str, says: str) -> None:
    with pytest.raises(OutsideSubset) as refused:
        translate(camunda)
    assert says in refused.value.message
    assert refused.value.fragment.startswith(fragment)
