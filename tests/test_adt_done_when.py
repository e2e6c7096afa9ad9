"""Issue 14's "done when", end to end over a real socket: an ED discharge sent as an HL7 v2 A03 over MLLP
starts the post-ED pathway for the right patient with the right dates, the ACK says AA for that message, a
resent copy starts nothing more, and the coordinator's task is visible as a FHIR Task for that patient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from carepath.api.mllp import ListenerConfig
from carepath.engine.clock import ManualClock
from carepath.engine.patient_links import patient_with_identifier
from carepath.engine.patients import v2_identifier_system
from carepath.engine.persistence.tables import Instance
from tests.support.adt_messages import adt
from tests.support.api import ApiClient
from tests.support.mllp_peer import Running, exchange, settled

CONFIG = ListenerConfig(max_frame_bytes=65536, read_timeout=2.0, idle_timeout=10.0, sweep_seconds=0.2)


@pytest.fixture
def listener(shipped: ApiClient, clock: ManualClock) -> Iterator[Running]:
    clock.set(datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    running = Running(shipped.engine, CONFIG)
    yield running
    running.close()


def test_an_ed_discharge_over_mllp_starts_post_ed_once_and_its_task_is_a_fhir_task(
        shipped: ApiClient, listener: Running) -> None:
    message = adt("A03", control_id="ADT-77001", patient_class="E", visit_number="V-ED-77",
                  discharged="20261201221500", diagnoses=[("F32.9", "F", "1")]).encode("utf-8")
    with listener.connect() as sock:
        assert exchange(sock, message) == ["MSA", "AA", "ADT-77001"]
    with listener.connect() as sock:  # the ACK was lost: the EHR sends the same message again
        assert exchange(sock, message) == ["MSA", "AA", "ADT-77001"]
    [row] = settled(shipped.engine)
    assert row.state == "started", row.outcome

    with shipped.engine.db.read() as session:
        [episode] = session.scalars(select(Instance).where(Instance.business_key == "V-ED-77")).all()
        patient = patient_with_identifier(session, v2_identifier_system("GENHOSP", "MR"), "MRN12345")
    assert episode.pathway_key == "post-ed-follow-up" and episode.patient_ref == patient is not None

    lead = shipped.user("clinical_lead")
    data = shipped.get(f"/api/instances/{episode.id}", lead).json()["data"]
    # 22:15 on 1 December, the hospital's local time (the care setting's zone): the ED visit date
    assert data["ed_visit_date"] == "2026-12-01" and data["diagnosis_category"] == "mental_illness"

    coordinator = shipped.user("coordinator", "care-coordinator")
    found = shipped.get("/fhir/Task", coordinator, params={"patient": f"Patient/{patient}"})
    assert found.status_code == 200, found.text
    tasks = [entry["resource"] for entry in found.json().get("entry", [])]
    assert [t["for"]["reference"] for t in tasks] == [f"Patient/{patient}"]
    assert tasks[0]["status"] == "ready" and tasks[0]["basedOn"][0]["reference"] == f"CarePlan/{episode.id}"
    person = shipped.get(f"/fhir/Patient/{patient}", coordinator).json()
    assert person["name"][0]["family"] == "Müller"
