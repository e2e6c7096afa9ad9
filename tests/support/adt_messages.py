"""Realistic HL7 v2.5.1 ADT messages for tests: built field by field, so a test names what it changes.

`adt("A03", patient_class="E", ...)` returns the message text (segments ending in CR, no MLLP frame).
Defaults are an ED discharge at General Hospital of a patient with a non-ASCII name, an MRN, an
enterprise id and a Social Security number in PID-3 (which CarePath must not keep)."""

from __future__ import annotations

from collections.abc import Sequence


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with field n at position n (MSH counted as the standard counts it: MSH-2 follows MSH-1,
    the field separator itself)."""
    last = max(fields) if fields else 0
    if name == "MSH":
        values = [fields.get(n, "") for n in range(2, last + 1)]
        return "MSH|" + "|".join(values)
    values = [fields.get(n, "") for n in range(1, last + 1)]
    return "|".join([name, *values])


def adt(trigger: str = "A03", *, control_id: str = "MSG00001", sender: str = "EPIC", facility: str = "GENHOSP",
        patient_class: str = "E", visit_number: str = "V20261201-001",
        identifiers: Sequence[str] = ("MRN12345^^^GENHOSP^MR", "E998877^^^HIE^PI", "123-45-6789^^^SSA^SS"),
        name: str = "Müller^José^Ángel^^^^L", birth_date: str = "19700102",
        admitted: str = "20261201080000", discharged: str = "20261201104500", disposition: str = "01",
        diagnoses: Sequence[tuple[str, str, str]] = (("F32.9", "F", "1"),), charset: str = "UNICODE UTF-8",
        version: str = "2.5.1", processing_id: str = "P", event_time: str = "20261201104500",
        merged_from: Sequence[str] = (), prior_visit: str = "", include_pv1: bool = True,
        extra: Sequence[str] = ()) -> str:
    structure = {"A01": "ADT_A01", "A04": "ADT_A01", "A08": "ADT_A01", "A03": "ADT_A03", "A06": "ADT_A06",
                 "A11": "ADT_A09", "A13": "ADT_A01", "A40": "ADT_A39", "A37": "ADT_A37"}.get(trigger, "ADT_A01")
    segments = [
        segment("MSH", {2: "^~\\&", 3: sender, 4: facility, 5: "CAREPATH", 6: "CAREPATH", 7: event_time,
                        9: f"ADT^{trigger}^{structure}", 10: control_id, 11: processing_id, 12: version,
                        18: charset}),
        segment("EVN", {1: trigger, 2: event_time, 6: event_time}),
        segment("PID", {1: "1", 3: "~".join(identifiers), 5: name, 7: birth_date, 8: "M",
                        11: "Hauptstraße 5^Apt 2^Springfield^IL^62704^USA", 13: "^PRN^PH^^^217^5550123",
                        19: "123-45-6789"}),
    ]
    if merged_from:
        segments.append(segment("MRG", {1: "~".join(merged_from), 5: prior_visit}))
    if include_pv1:
        segments.append(segment("PV1", {1: "1", 2: patient_class, 3: f"ED^01^A^{facility}", 7: "1234^Osei^Ama",
                                        19: f"{visit_number}^^^{facility}^VN", 36: disposition, 44: admitted,
                                        45: discharged}))
    for i, (code, kind, priority) in enumerate(diagnoses, start=1):
        segments.append(segment("DG1", {1: str(i), 2: "I10", 3: f"{code}^^I10", 6: kind, 15: priority}))
    segments.extend(extra)
    return "\r".join(segments) + "\r"
