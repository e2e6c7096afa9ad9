"""A JSON Schema form read back from posted text (api/web/forms.py): typed as the schema says, a value that
is not of its type refused at its field, date-times in the care setting's zone both ways."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from carepath.api.web.forms import form_fields, typed_values, widget_of

ZONE = ZoneInfo("America/New_York")
SCHEMA = {"type": "object", "required": ["answer"], "properties": {
    "answer": {"type": "boolean"}, "flag": {"type": "boolean"},
    "count": {"type": "integer"}, "dose": {"type": "number"},
    "at": {"type": "string", "format": "date-time"},
    "level": {"enum": [1, 2, 3]}, "tags": {"type": "array", "items": {"type": "string"}},
    "summary": {"type": "string", "maxLength": 2000}, "code": {"type": "string", "maxLength": 20}}}


def test_posted_text_becomes_the_types_the_schema_names() -> None:
    posted = typed_values(SCHEMA, {"answer": "false", "count": "3", "dose": "2.5", "at": "2026-03-04T09:30",
                                   "level": "2", "tags": '["a", "b"]', "code": " X1 ", "ignored": "x"}, ZONE)
    assert posted.errors == {}
    assert posted.values == {"answer": False, "flag": False, "count": 3, "dose": 2.5,
                             "at": "2026-03-04T09:30:00-05:00", "level": 2, "tags": ["a", "b"], "code": "X1"}


@pytest.mark.parametrize(("name", "text", "says"), [
    ("count", "2.5", "whole number"), ("count", "three", "whole number"), ("dose", "nan", "number"),
    ("dose", "1e999", "number"), ("level", "7", "choose one"), ("tags", "[oops", "JSON"),
    ("at", "tomorrow", "date and time"), ("answer", "maybe", "choose one")])
def test_a_value_not_of_its_type_is_refused_at_its_field_and_kept(name: str, text: str, says: str) -> None:
    posted = typed_values(SCHEMA, {name: text}, ZONE)
    assert says in posted.errors[name] and name not in posted.values and posted.raw[name] == text


def test_fields_show_stored_values_in_the_care_settings_zone() -> None:
    fields = {f.name: f for f in form_fields(SCHEMA, {"at": "2026-03-04T14:30:00+00:00", "level": 2,
                                                       "answer": True}, ZONE)}
    assert fields["at"].value == "2026-03-04T09:30" and fields["at"].widget == "datetime-local"
    assert fields["level"].value == "2" and fields["level"].widget == "radios"
    assert fields["answer"].widget == "radios" and fields["answer"].value == "true"  # required yes/no
    assert fields["flag"].widget == "checkbox"
    assert (fields["summary"].widget, fields["code"].widget, fields["tags"].widget) == ("textarea", "text", "json")


def test_a_note_field_is_a_textarea_whatever_its_length() -> None:
    assert widget_of("call_notes", {"type": "string"}) == "textarea"
    assert widget_of("provider", {"type": "string"}) == "text"
