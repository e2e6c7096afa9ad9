"""Hostile or broken uploads are refused with a located problem before SpiffWorkflow sees them."""

from __future__ import annotations

import pytest

from carepath.engine.definitions import ImportLimits, SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid, Problem

from .builders import definitions, line_of, linear_process, source, user_task


def refusal(*files: SourceFile, limits: ImportLimits | None = None) -> list[Problem]:
    with pytest.raises(DiagramInvalid) as raised:
        parse_package(files, limits=limits)
    assert raised.value.problems, "a refusal must say why"
    return raised.value.problems


def valid_diagram() -> str:
    return definitions(linear_process("Pathway", user_task(0)))


def test_a_doctype_with_an_entity_bomb_is_refused_at_its_line() -> None:
    bomb = ('<?xml version="1.0"?>\n<!-- exported -->\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n<lolz>&lol2;</lolz>\n')

    [problem] = refusal(source("bomb.bpmn", bomb))

    assert problem.file == "bomb.bpmn"
    assert problem.line == 3
    assert "DOCTYPE" in problem.message


def test_a_doctype_inside_a_valid_diagram_is_refused_too() -> None:
    text = valid_diagram().replace("\n", '\n<!DOCTYPE definitions SYSTEM "http://evil.test/x.dtd">\n', 1)

    [problem] = refusal(source("remote.bpmn", text))

    assert "DOCTYPE" in problem.message and problem.line == 2


def test_malformed_xml_is_located_at_the_broken_line() -> None:
    text = valid_diagram().replace("</bpmn:process>", "</bpmn:proces>")

    [problem] = refusal(source("broken.bpmn", text))

    assert problem.file == "broken.bpmn"
    assert problem.line == line_of(text, "</bpmn:proces>")
    assert "not well-formed XML" in problem.message


@pytest.mark.parametrize(("content", "words"), [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
    (b"just some notes, not a diagram", "does not contain XML"),
    (b"<html><body>hello</body></html>", "not a BPMN or DMN diagram"),
])
def test_files_that_are_not_diagrams_are_refused_in_plain_words(content: bytes, words: str) -> None:
    [problem] = refusal(SourceFile("upload.bpmn", content))

    assert words in problem.message
    assert problem.file == "upload.bpmn"


def test_a_latin1_file_is_refused_with_the_line_of_the_first_bad_byte() -> None:
    text = valid_diagram().replace('name="Review"', 'name="Prüfung"').encode("latin-1")

    [problem] = refusal(SourceFile("latin.bpmn", text))

    assert "not UTF-8" in problem.message
    assert problem.line == line_of(text.decode("latin-1"), "Prüfung")


def test_only_bpmn_and_dmn_file_names_are_accepted() -> None:
    [problem] = refusal(source("pathway.docx", valid_diagram()))

    assert "not a BPMN or DMN file" in problem.message


def test_bpmn20_xml_and_xml_names_are_accepted() -> None:
    package = parse_package([source("pathway.bpmn20.xml", valid_diagram())])

    assert [process.key for process in package.processes] == ["Pathway"]


def test_a_file_over_the_size_cap_is_refused() -> None:
    limits = ImportLimits(max_file_bytes=1000)

    [problem] = refusal(source("big.bpmn", valid_diagram() + " " * 1000), limits=limits)

    assert "CarePath accepts files up to" in problem.message


def test_a_package_over_the_total_size_cap_is_refused() -> None:
    files = [source(f"p{index}.bpmn", valid_diagram().replace("Pathway", f"P{index}")) for index in range(3)]
    limits = ImportLimits(max_package_bytes=2 * len(files[0].content) + 10)

    [problem] = refusal(*files, limits=limits)

    assert "per package" in problem.message


def test_nesting_deeper_than_the_cap_is_refused() -> None:
    deep = valid_diagram().replace("<bpmn:userTask", "<x:a xmlns:x='urn:x'>" * 20 + "<bpmn:userTask")
    deep = deep.replace("</bpmn:userTask>", "</bpmn:userTask>" + "</x:a>" * 20)

    [problem] = refusal(source("deep.bpmn", deep), limits=ImportLimits(max_depth=10))

    assert "nests deeper than 10 levels" in problem.message


def test_nesting_beyond_what_libxml2_allows_is_refused_as_too_deep() -> None:
    deep = "<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'>" + "<a>" * 300

    [problem] = refusal(source("deep.bpmn", deep + "</a>" * 300 + "</bpmn:definitions>"))

    assert "nests deeper than" in problem.message


def test_more_elements_than_the_cap_are_refused() -> None:
    [problem] = refusal(source("many.bpmn", valid_diagram()), limits=ImportLimits(max_elements=5))

    assert "more than 5 XML elements" in problem.message


def test_two_files_with_the_same_name_are_refused() -> None:
    problems = refusal(source("a.bpmn", valid_diagram()), source("a.bpmn", valid_diagram()))

    assert "named 'a.bpmn'" in problems[0].message


def test_every_unreadable_file_is_reported_not_just_the_first() -> None:
    problems = refusal(source("a.bpmn", b""), source("b.bpmn", b"<oops"), source("c.txt", valid_diagram()))

    assert [problem.file for problem in problems] == ["a.bpmn", "b.bpmn", "c.txt"]
