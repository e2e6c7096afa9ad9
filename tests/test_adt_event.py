"""Reading HL7 v2 ADT messages into AdtEvent: identifiers, names, times in the care setting's zone, the
principal diagnosis and its category, dispositions; realistic messages with missing optional parts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import hl7
import pytest

from carepath.engine.errors import ValidationFailed
from carepath.engine.interop.adt import Diagnosis, adt_event, diagnosis_category, local_date, principal_diagnosis
from tests.support.adt_messages import adt, segment

CHICAGO = ZoneInfo("America/Chicago")


def test_an_ed_discharge_names_the_patient_the_visit_and_its_times() -> None:
    event = adt_event(hl7.parse(adt("A03")), CHICAGO)
    assert event.trigger == "A03"
    assert [(i.value, i.authority, i.type_code) for i in event.identifiers] == [
        ("MRN12345", "GENHOSP", "MR"), ("E998877", "HIE", "PI")]
    assert (event.family_name, event.given_name) == ("Müller", "José")
    assert event.birth_date == date(1970, 1, 2)
    assert event.patient_class == "E" and event.visit_number == "V20261201-001"
    assert event.facility == "GENHOSP"
    # 10:45 in Chicago (UTC-6 in December) is 16:45 UTC
    assert event.discharged_at == datetime(2026, 12, 1, 16, 45, tzinfo=UTC)
    assert event.admitted_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert local_date(event.discharged_at, CHICAGO) == date(2026, 12, 1)
    assert event.phone == "(217) 5550123"
    assert event.address == "Hauptstraße 5, Apt 2, Springfield, IL 62704, USA"
    assert event.disposition == "01" and event.to_community


def test_social_security_numbers_are_never_kept() -> None:
    event = adt_event(hl7.parse(adt("A03")), CHICAGO)
    assert "123-45-6789" not in repr(event)


def test_a_time_with_an_offset_keeps_its_offset() -> None:
    event = adt_event(hl7.parse(adt("A03", discharged="202612011045-0500")), CHICAGO)
    assert event.discharged_at == datetime(2026, 12, 1, 15, 45, tzinfo=UTC)


def test_a_late_evening_discharge_is_on_the_local_day() -> None:
    event = adt_event(hl7.parse(adt("A03", discharged="20261201233000")), CHICAGO)
    assert event.discharged_at is not None and event.discharged_at.date() == date(2026, 12, 2)
    assert local_date(event.discharged_at, CHICAGO) == date(2026, 12, 1)


def test_missing_optional_segments_and_fields_are_empty_not_errors() -> None:
    event = adt_event(hl7.parse(adt("A08", include_pv1=False, diagnoses=(), name="", birth_date="",
                                    identifiers=("MRN1^^^GENHOSP^MR",))), CHICAGO)
    assert event.visit_number == "" and event.patient_class == "" and event.diagnoses == ()
    assert event.birth_date is None and event.family_name == "" and event.discharged_at is None
    assert event.facility == "GENHOSP"  # MSH-4 when PV1-3 is absent


def test_unreadable_dates_are_treated_as_missing() -> None:
    event = adt_event(hl7.parse(adt("A03", discharged="2026-12-01", birth_date="19701340")), CHICAGO)
    assert event.discharged_at is None and event.birth_date is None


def test_a_message_without_a_patient_is_refused_with_the_reason() -> None:
    text = "\r".join(line for line in adt("A03").split("\r") if not line.startswith("PID")) + "\r"
    with pytest.raises(ValidationFailed, match="no PID segment"):
        adt_event(hl7.parse(text), CHICAGO)


def test_a_patient_known_only_by_social_security_number_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="Social Security"):
        adt_event(hl7.parse(adt("A03", identifiers=("123-45-6789^^^SSA^SS",))), CHICAGO)


def test_merge_messages_carry_the_prior_identifiers() -> None:
    event = adt_event(hl7.parse(adt("A40", merged_from=("MRN999^^^GENHOSP^MR",), prior_visit="V1")), CHICAGO)
    assert [i.value for i in event.prior_identifiers] == ["MRN999"] and event.prior_visit_number == "V1"


def test_the_principal_diagnosis_is_priority_one_final_before_admitting() -> None:
    diagnoses = (("R45.851", "A", "1"), ("F10.20", "F", "2"), ("F32.9", "F", "1"))
    event = adt_event(hl7.parse(adt("A03", diagnoses=diagnoses)), CHICAGO)
    principal = event.principal_diagnosis
    assert principal is not None and principal.code == "F32.9"
    # no priority given: the first DG1, final before admitting
    unprioritised = (Diagnosis("R07.9", "I10", "", "A", None), Diagnosis("F11.20", "I10", "", "F", None))
    assert principal_diagnosis(unprioritised) == unprioritised[1]


@pytest.mark.parametrize(("code", "system", "category"), [
    ("F10.20", "I10", "substance_use"), ("F19.99", "I10", "substance_use"), ("f11.2", "I10", "substance_use"),
    ("F32.9", "I10", "mental_illness"), ("F20.0", "ICD10", "mental_illness"), ("F03.90", "", "mental_illness"),
    ("X78.0XXA", "I10", "mental_illness"), ("X84", "I10", "other"), ("F09", "I10", "mental_illness"),
    ("S06.0X0A", "I10", "other"), ("F32.9", "SNOMED", "other"), ("???", "I10", "other"),
])
def test_diagnosis_categories_follow_the_documented_table(code: str, system: str, category: str) -> None:
    assert diagnosis_category(Diagnosis(code, system, "", "F", 1)) == category


def test_no_diagnosis_is_other() -> None:
    assert diagnosis_category(None) == "other"


def test_segment_builder_counts_msh_as_the_standard_does() -> None:
    text = segment("MSH", {2: "^~\\&", 9: "ADT^A01", 10: "X"}) + "\r"
    parsed = hl7.parse(text)
    assert str(parsed.segment("MSH")[9]) == "ADT^A01" and str(parsed.segment("MSH")[10]) == "X"
