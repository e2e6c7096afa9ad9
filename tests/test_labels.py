"""The product's names in words (engine/labels.py) and durations as people say them (engine/calendars.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from carepath.engine.calendars import deadline_words, duration_words
from carepath.engine.identity import Role
from carepath.engine.labels import EVENT_LABELS, ROLE_LABELS, event_label, role_label, value_words
from carepath.engine.model import EVENT_TYPES


def test_every_event_type_and_every_role_has_words_and_no_more() -> None:
    assert set(EVENT_LABELS) == set(EVENT_TYPES)
    assert set(ROLE_LABELS) == {r.value for r in Role}
    assert role_label(Role.CLINICAL_LEAD) == role_label("clinical_lead") == "Clinical lead"
    assert event_label("task_claimed") == "Task claimed"
    for words in [*EVENT_LABELS.values(), *ROLE_LABELS.values()]:
        assert "_" not in words and "." not in words and words[0].isupper(), words


@pytest.mark.parametrize(("value", "words"), [
    (None, "—"), (True, "Yes"), (False, "No"), ([], "none"), ({}, "none"), ([1, "a", None], "1, a, —"),
    ({"first_name": "Ann", "seen": [True]}, "First name: Ann; Seen: Yes"), (3.5, "3.5"), ("text", "text"),
    ("2026-07-01T12:00:00Z", "01 Jul 2026 08:00"), ("2026-07-01", "2026-07-01"),
])
def test_a_recorded_value_in_words(value: object, words: str) -> None:
    assert value_words(value, ZoneInfo("America/New_York")) == words


@pytest.mark.parametrize(("text", "words"), [
    ("P1BD", "1 business day"), ("P3BD", "3 business days"), ("PT4H", "4 hours"), ("P2D", "2 days"),
    ("P1DT2H30M", "1 day 2 hours 30 minutes"), ("P1W", "1 week"), ("PT0S", "no time"), ("soon", None),
])
def test_a_duration_in_words_by_the_calendar_parser(text: str, words: str | None) -> None:
    assert duration_words(text) == words


@pytest.mark.parametrize(("text", "words"), [
    ("P7D after ed_visit_date end of day", "7 days after Date of the ED visit, at the end of that day"),
    ("P2BD after discharge_at", "2 business days after Discharge at"), ("PT4H", "4 hours"),
    ("discharge_at end of day", "the end of the day of Discharge at"), ("R3/PT1H", "every 1 hour, 3 times"),
    ("${due}", "${due}"), ("2026-03-01", "2026-03-01"),
])
def test_a_deadline_in_words(text: str, words: str) -> None:
    assert deadline_words(text, {"ed_visit_date": "Date of the ED visit"}) == words


def test_every_part_of_a_record_read_has_words() -> None:
    from carepath.engine.audit import VIEWABLE
    from carepath.engine.labels import RECORD_PART_LABELS
    assert set(RECORD_PART_LABELS) == set(VIEWABLE)


def test_a_role_and_a_change_in_an_events_details_read_in_words() -> None:
    from carepath.engine.labels import labelled_values
    assert labelled_values({"user": "lena", "role": "clinical_lead"}) == [("User", "lena"), ("Role", "Clinical lead")]
    assert labelled_values({"field": "role", "old": "coordinator", "new": "clinical_lead"}) == [
        ("Field", "role"), ("Old", "Coordinator"), ("New", "Clinical lead")]
    assert labelled_values({"changes": {"reached": {"old": None, "new": True}}}) == [("Changes", "Reached: — → Yes")]


def test_an_events_change_reads_as_old_to_new() -> None:
    from carepath.engine.labels import event_details
    assert event_details({"field": "status", "old": "running", "new": "completed", "reason": None}) == (
        "Status: running → completed", [("Reason", "—")])
    assert event_details({"name": "Call"}) == (None, [("Name", "Call")])
