"""Conditions as editors write them: translated before SpiffWorkflow reads the diagram, or explained.

Camunda conditions (JUEL, FEEL) in sequence flows, conditional events and loop / completion
conditions are rewritten in the trees before anything else reads them, so the checks, the
SpiffWorkflow parse and the stored spec all see the sandbox expression (a serialized spec keeps
the text it was parsed with). One that cannot be translated is left as written; the condition
check then refuses it with `condition_refusal`, which also explains the other languages modellers
use: XPath's getDataObject, JavaScript, and plain words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._camunda_expressions import SUPPORTED, camunda_dialect, translate
from ._camunda_syntax import OutsideSubset
from ._documents import Document, Element, bpmn, local_name
from ._model import TranslatedCondition

CONDITION_TAGS = ("conditionExpression", "condition", "completionCondition", "loopCondition")
_PYTHON_LANGUAGES = frozenset({"", "python", "python3", "text/python", "text/x-python"})
_XPATH_DATA = re.compile(r"(?:\w+:)?getDataObject\(\s*['\"]([^'\"]+)['\"]\s*\)")
# Words, a comparison, a value: `Service Level == 'Premium'`, `Risk score >= 3`.
_PLAIN_WORDS = re.compile(r"^\s*([A-Za-z][\w ]*?\w)\s*(==|!=|<=|>=|<|>|=)\s*(.+?)\s*$")


def translate_conditions(documents: Sequence[Document]) -> list[TranslatedCondition]:
    """Rewrite every translatable Camunda condition of the BPMN documents in place; say what was rewritten."""
    done: list[TranslatedCondition] = []
    for document in documents:
        if document.kind != "bpmn":
            continue
        for element in document.root.iter(*(bpmn(tag) for tag in CONDITION_TAGS)):
            text = element.text or ""
            if camunda_dialect(text) is None:
                continue
            try:
                translation = translate(text)
            except OutsideSubset:
                continue  # left as written: the condition check refuses it with the reason
            element.text = translation.text
            element.attrib.pop("language", None)  # editors stamp one at random; the text is the sandbox's now
            process = next(element.iterancestors(bpmn("process")), None)
            done.append(TranslatedCondition(document.name, process.get("id") if process is not None else None,
                                            element.sourceline, owner_id(element), translation.original,
                                            translation.text))
    return done


def owner_id(element: Element) -> str | None:
    """The id of the flow, event or activity the condition belongs to (the one a user clicks in the editor)."""
    current = element.getparent()
    while current is not None:
        name = local_name(current)
        if current.get("id") and not name.endswith(("Definition", "Characteristics")):
            return current.get("id")
        current = current.getparent()
    return None


def condition_refusal(text: str, language: str | None, reason: str) -> str:
    """Why a condition cannot run and how to write it, quoting it; `reason` is the sandbox's own."""
    quoted = _quote(text)
    dialect = camunda_dialect(text)
    if dialect is not None:
        try:
            translate(text)
        except OutsideSubset as outside:
            what = "JUEL" if dialect == "juel" else "FEEL"
            return (f"the {what} expression {quoted} uses '{_short(outside.fragment)}': {outside.message}. "
                    f"{SUPPORTED}.")
        return f"the expression {quoted} is translated to '{_short(translate(text).text)}', which fails: {reason}."
    other = _other_language(text, (language or "").strip())
    if other is not None:
        return other
    return f"{quoted} is not an expression CarePath can evaluate ({reason}). {_how_to_write(text)}"


def other_language(text: str, language: str | None) -> str | None:
    """Why a condition that may parse as Python is still not run: it says it is written in another language."""
    return _other_language(text, (language or "").strip())


def _other_language(text: str, language: str) -> str | None:
    quoted = _quote(text)
    data = _XPATH_DATA.search(text)
    if data is not None:
        return (f"the condition {quoted} is written in XPath (getDataObject), which CarePath does not evaluate. "
                "Write it as a Python expression over the pathway's data, naming the data object directly: "
                f"e.g. {_xpath_example(text)}.")
    lowered = language.lower()
    if lowered and lowered not in _PYTHON_LANGUAGES and "xpath" not in lowered and "feel" not in lowered:
        return (f"the condition {quoted} is written in '{language}', which CarePath does not run. Write it "
                "as a Python expression over the pathway's data, e.g. approved == True, or as a Camunda "
                "expression such as ${approved}.")
    return None


def _xpath_example(text: str) -> str:
    example = _XPATH_DATA.sub(lambda match: _snake(match.group(1)), text)
    example = re.sub(r"(?<![=!<>])=(?!=)", "==", example)
    example = re.sub(r"\bnot\((.*)\)$", r"not (\1)", example.strip())
    return example


def _how_to_write(text: str) -> str:
    words = _PLAIN_WORDS.match(text)
    if words is not None and " " in words.group(1):
        operator = "==" if words.group(2) == "=" else words.group(2)
        value = words.group(3)
        if value.isidentifier() and value.lower() not in {"true", "false", "none", "null"}:
            value = repr(value)  # a bare word on the right is text to compare with
        example = f"{_snake(words.group(1))} {operator} {value}"
        return (f"It reads as words rather than an expression: a variable's name has no spaces. Write it as "
                f"an expression over the pathway's data, e.g. {example}, with the name of the form field or "
                "variable that holds the value.")
    return ("Write it as a Python expression over the pathway's data (e.g. approved == True) or as a Camunda "
            "expression (e.g. ${approved}).")


def _snake(name: str) -> str:
    return re.sub(r"\W+", "_", name.strip()).strip("_").lower() or "value"


def _quote(text: str) -> str:
    return f"'{_short(' '.join(text.split()))}'"


def _short(text: str, length: int = 120) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
