"""ADT routing driven directly (as the inbox calls it) with realistic messages on a real database: which
events start or move which pathways, patients found, updated, merged and unmerged, cancellations, and
deploy refusing triggers that cannot work."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.errors import Conflict, PermissionDenied, ValidationFailed
from carepath.engine.identity import Principal, Role
from carepath.engine.interop.adt import COMMUNITY_DISPOSITIONS, NON_COMMUNITY_DISPOSITIONS
from carepath.engine.interop.triggers import CONDITIONS, EVENTS, FACTS
from carepath.engine.patient_links import patient_with_identifier, survivor_of
from carepath.engine.patients import Identifier, PatientDetails, v2_identifier_system
from carepath.engine.persistence.tables import Instance, Patient
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.adt_routing import AdtOutcome, Notification, RoutingState, route_adt, route_notification
from tests.support.adt_messages import adt
from tests.support.api import ApiClient

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
POST_ED, TCM = "post-ed-follow-up", "transition-of-care"
MRN = v2_identifier_system("GENHOSP", "MR")
ENTERPRISE = v2_identifier_system("HIE", "PI")
FEED = Principal("adt-feed", Role.INTEGRATION)


@pytest.fixture
def feed(shipped: ApiClient, clock: ManualClock) -> ApiClient:
    clock.set(datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    shipped.user("integration", name=FEED.name)
    return shipped


def route(engine: CarePath, text: str, principal: Principal = FEED) -> AdtOutcome:
    with UnitOfWork(engine) as uow:
        outcome = route_adt(uow, principal, text, engine.clock)
        uow.commit()
    return outcome


def episode(engine: CarePath, instance_id: str) -> Instance:
    with engine.db.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        session.expunge(row)
        return row


def patient_of(engine: CarePath, system: str, value: str) -> Patient:
    with engine.db.read() as session:
        ref = patient_with_identifier(session, system, value)
        assert ref is not None, value
        row = session.get(Patient, ref)
        assert row is not None
        session.expunge(row)
        return row


def view(api: ApiClient, instance_id: str) -> dict[str, Any]:
    lead = api.user("clinical_lead")
    return dict(api.get(f"/api/instances/{instance_id}", lead).json())


def history(api: ApiClient, instance_id: str) -> list[dict[str, Any]]:
    lead = api.user("clinical_lead")
    return list(api.get(f"/api/instances/{instance_id}/history", lead).json()["items"])


def complete(api: ApiClient, instance_id: str, element_id: str, data: dict[str, Any]) -> None:
    coordinator = api.user("coordinator", "care-coordinator")
    [task] = [t for t in view(api, instance_id)["open_tasks"] if t["element_id"] == element_id]
    done = api.post(f"/api/tasks/{task['id']}/complete", coordinator, {"data": data})
    assert done.status_code == 200, done.text


def complete_intake(api: ApiClient, instance_id: str) -> None:
    complete(api, instance_id, "complete_intake", {"high_risk_chronic_conditions": 0})


# -- post-ED ---------------------------------------------------------------------------------------

def test_an_ed_discharge_starts_post_ed_for_the_patient_with_the_care_setting_date(feed: ApiClient) -> None:
    # 00:30 UTC on 2 December is still 1 December in New York, the care setting's zone
    outcome = route(feed.engine, adt("A03", patient_class="E", visit_number="V-ED-1",
                                     discharged="20261202003000+0000", diagnoses=[("F11.20", "F", "1")]))
    assert outcome.state is RoutingState.STARTED, outcome.text
    [instance_id] = outcome.instance_ids
    assert f"started {POST_ED} episode {instance_id} for visit V-ED-1" in outcome.text
    row = episode(feed.engine, instance_id)
    assert (row.pathway_key, row.business_key, row.started_by) == (POST_ED, "V-ED-1", FEED.name)
    assert row.patient_ref == patient_of(feed.engine, MRN, "MRN12345").id
    data = view(feed, instance_id)["data"]
    assert data["ed_visit_date"] == "2026-12-01"
    assert data["diagnosis_category"] == "substance_use"
    assert data["intake_fields"] == ["high_risk_chronic_conditions"]  # from the coordinator's intake task
    [started] = [e for e in history(feed, instance_id) if e["type"] == "instance_started"]
    assert started["actor"] == FEED.name


def test_a_second_discharge_for_the_same_visit_starts_nothing_more(feed: ApiClient) -> None:
    first = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-2"))
    again = route(feed.engine, adt("A03", control_id="M2", visit_number="V-ED-2"))
    assert again.state is RoutingState.NOTHING_TO_DO and not again.instance_ids
    assert f"episode {first.instance_ids[0]} was already started for visit V-ED-2" in again.text
    with feed.engine.db.read() as session:
        assert len(session.scalars(select(Instance).where(Instance.business_key == "V-ED-2")).all()) == 1


def test_a_discharge_no_trigger_matches_is_nothing_to_do_with_the_reason(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A03", patient_class="O", visit_number="V-OP-1"))
    assert outcome.state is RoutingState.NOTHING_TO_DO
    assert outcome.text.startswith("no pathway starts or moves on an A03 with patient class O (outpatient)")
    assert "post-ed-follow-up 'ed-discharge': patient_class is 'O', not 'E'" in outcome.text
    patient_of(feed.engine, MRN, "MRN12345")  # the patient is known all the same


def test_without_a_diagnosis_the_category_is_other(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A03", visit_number="V-ED-3", diagnoses=()))
    assert outcome.state is RoutingState.STARTED
    assert view(feed, outcome.instance_ids[0])["data"]["diagnosis_category"] == "other"


def test_without_a_discharge_time_the_discharge_event_dates_the_visit(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A03", visit_number="V-ED-10", discharged="", event_time="20261130221500"))
    assert outcome.state is RoutingState.STARTED, outcome.text
    assert view(feed, outcome.instance_ids[0])["data"]["ed_visit_date"] == "2026-11-30"


def test_without_pv1_nothing_starts_and_the_outcome_says_why(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A03", include_pv1=False))
    assert outcome.state is RoutingState.NOTHING_TO_DO
    assert "no patient class (no PV1-2)" in outcome.text
    assert patient_of(feed.engine, MRN, "MRN12345").family == "Müller"


def test_an_admission_excludes_the_post_ed_measures(feed: ApiClient) -> None:
    started = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-4"))
    admitted = route(feed.engine, adt("A06", control_id="M2", patient_class="I", visit_number="V-IP-4"))
    assert admitted.state is RoutingState.DELIVERED, admitted.text
    assert admitted.instance_ids == started.instance_ids
    # the episode is still in its intake task: the boundary event on the intake catches the message at once
    assert f"ed_visit_admitted delivered to {POST_ED} episode {started.instance_ids[0]}" in admitted.text
    after = view(feed, started.instance_ids[0])
    assert (after["status"], after["open_tasks"]) == ("completed", [])
    assert after["data"]["ed_visit_admitted"] is True
    assert after["data"]["admitted_during_intake_Response"]["visit_number"] == "V-IP-4"


def test_a_clinic_registration_reports_the_follow_up_visit(feed: ApiClient) -> None:
    started = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-5"))
    complete_intake(feed, started.instance_ids[0])
    complete(feed, started.instance_ids[0], "call_patient", {"reached": True})
    visit = route(feed.engine, adt("A04", control_id="M2", patient_class="O", visit_number="V-CL-5",
                                   event_time="20261203093000"))
    assert visit.state is RoutingState.DELIVERED, visit.text
    assert "visit_completed buffered until" in visit.text  # the visit came before the booking was recorded
    complete(feed, started.instance_ids[0], "schedule_follow_up",
             {"follow_up_provider": "Dr. Osei", "follow_up_date": "2026-12-03"})
    assert view(feed, started.instance_ids[0])["data"]["follow_up_visit_date"] == "2026-12-03"


# -- transition of care ---------------------------------------------------------------------------

def test_an_inpatient_discharge_home_starts_tcm(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A03", patient_class="I", visit_number="V-IP-1", disposition="06"))
    assert outcome.state is RoutingState.STARTED, outcome.text
    instance = view(feed, outcome.instance_ids[0])
    assert instance["pathway_key"] == TCM
    assert (instance["data"]["discharge_date"], instance["data"]["discharge_setting"]) == ("2026-12-01", "inpatient")
    assert instance["data"]["intake_fields"] == ["mdm_level", "lace_score"]


@pytest.mark.parametrize(("disposition", "said"), [("03", "03 (transferred to a skilled nursing facility)"),
                                                   ("20", "20 (expired)")])
def test_a_discharge_to_a_snf_or_a_death_starts_nothing(feed: ApiClient, disposition: str, said: str) -> None:
    outcome = route(feed.engine, adt("A03", patient_class="I", visit_number="V-IP-2", disposition=disposition))
    assert outcome.state is RoutingState.NOTHING_TO_DO and not outcome.instance_ids
    assert f"disposition {said}" in outcome.text
    assert "transition-of-care 'inpatient-discharge-home': to_community is false" in outcome.text


def test_leaving_a_configured_snf_for_home_starts_tcm_with_the_snf_setting(feed: ApiClient) -> None:
    feed.engine.config = dataclasses.replace(feed.engine.config, adt_snf_facilities=frozenset({"SUNNYSNF"}))
    outcome = route(feed.engine, adt("A03", facility="SUNNYSNF", patient_class="R", visit_number="V-SNF-1",
                                     identifiers=("S-77^^^SUNNYSNF^MR", "E998877^^^HIE^PI")))
    assert outcome.state is RoutingState.STARTED, outcome.text
    assert view(feed, outcome.instance_ids[0])["data"]["discharge_setting"] == "snf"
    # the enterprise id found the patient the hospital knows as MRN12345 later on
    route(feed.engine, adt("A08", control_id="M9"))
    assert patient_of(feed.engine, MRN, "MRN12345").id == patient_of(feed.engine, ENTERPRISE, "E998877").id


def test_a_readmission_ends_the_tcm_work(feed: ApiClient) -> None:
    started = route(feed.engine, adt("A03", control_id="M1", patient_class="I", visit_number="V-IP-3"))
    readmitted = route(feed.engine, adt("A01", control_id="M2", patient_class="I", visit_number="V-IP-9"))
    assert readmitted.state is RoutingState.DELIVERED, readmitted.text
    assert readmitted.instance_ids == started.instance_ids
    # the episode is still in its intake task: the boundary event on the intake catches the readmission
    assert f"readmission delivered to {TCM} episode {started.instance_ids[0]}" in readmitted.text
    after = view(feed, started.instance_ids[0])
    assert (after["status"], after["open_tasks"]) == ("completed", [])
    assert after["data"]["readmitted"] is True
    assert after["data"]["readmitted_during_intake_Response"]["visit_number"] == "V-IP-9"
    [received] = [e for e in history(feed, started.instance_ids[0]) if e["type"] == "message_received"]
    assert received["data"]["sender"] == FEED.name


# -- cancellations ---------------------------------------------------------------------------------

def test_a_cancelled_discharge_cancels_the_episode_it_started(feed: ApiClient) -> None:
    started = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-6"))
    cancelled = route(feed.engine, adt("A13", control_id="M2", visit_number="V-ED-6"))
    assert cancelled.state is RoutingState.DELIVERED, cancelled.text
    assert cancelled.instance_ids == started.instance_ids
    assert view(feed, started.instance_ids[0])["status"] == "cancelled"
    [event] = [e for e in history(feed, started.instance_ids[0]) if e["type"] == "cancelled"]
    assert event["actor"] == FEED.name
    assert event["data"]["reason"] == ("ADT A13: the A03 of visit V-ED-6 that started this episode was cancelled")
    # the corrected discharge starts it again
    assert route(feed.engine, adt("A03", control_id="M3", visit_number="V-ED-6")).state is RoutingState.STARTED


def test_a_cancel_for_another_visit_cancels_nothing(feed: ApiClient) -> None:
    started = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-7"))
    outcome = route(feed.engine, adt("A13", control_id="M2", visit_number="V-ED-OTHER"))
    assert outcome.state is RoutingState.NOTHING_TO_DO and "nothing to cancel" in outcome.text
    assert view(feed, started.instance_ids[0])["status"] == "running"


# -- patients --------------------------------------------------------------------------------------

def test_an_update_changes_the_name_and_keeps_non_ascii(feed: ApiClient) -> None:
    route(feed.engine, adt("A03", control_id="M1", patient_class="O"))
    outcome = route(feed.engine, adt("A08", control_id="M2", name="Nguyễn^Zoë^^^^^L"))
    assert outcome.state is RoutingState.NOTHING_TO_DO and "demographics updated family, given" in outcome.text
    patient = patient_of(feed.engine, MRN, "MRN12345")
    assert (patient.family, patient.given) == ("Nguyễn", "Zoë")


def test_repeated_identifiers_name_one_patient_and_ssns_are_not_kept(feed: ApiClient) -> None:
    route(feed.engine, adt("A03", patient_class="O"))
    patient = patient_of(feed.engine, MRN, "MRN12345")
    assert patient_of(feed.engine, ENTERPRISE, "E998877").id == patient.id
    with feed.engine.db.read() as session:
        assert patient_with_identifier(session, v2_identifier_system("SSA", "SS"), "123-45-6789") is None


def test_a_merge_and_an_unmerge(feed: ApiClient) -> None:
    old = route(feed.engine, adt("A03", control_id="M1", visit_number="V-ED-8",
                                 identifiers=("OLD-1^^^GENHOSP^MR",)))
    route(feed.engine, adt("A03", control_id="M2", patient_class="O", identifiers=("MRN12345^^^GENHOSP^MR",)))
    merged = route(feed.engine, adt("A40", control_id="M3", identifiers=("MRN12345^^^GENHOSP^MR",),
                                    merged_from=("OLD-1^^^GENHOSP^MR",)))
    old_patient, survivor = patient_of(feed.engine, MRN, "OLD-1"), patient_of(feed.engine, MRN, "MRN12345")
    assert f"patient {old_patient.id} merged into patient {survivor.id}" in merged.text
    with feed.engine.db.read() as session:
        assert survivor_of(session, old_patient.id) == survivor.id
    # the old identity's open episode now follows the survivor: an admission under the new MRN reaches it
    admitted = route(feed.engine, adt("A01", control_id="M4", patient_class="I", visit_number="V-IP-8",
                                      identifiers=("MRN12345^^^GENHOSP^MR",)))
    assert admitted.instance_ids == old.instance_ids
    unlinked = route(feed.engine, adt("A37", control_id="M5", identifiers=("MRN12345^^^GENHOSP^MR",),
                                      merged_from=("OLD-1^^^GENHOSP^MR",)))
    assert f"patient {old_patient.id} unlinked from patient {survivor.id}" in unlinked.text
    assert patient_of(feed.engine, MRN, "OLD-1").merged_into is None
    again = route(feed.engine, adt("A37", control_id="M6", identifiers=("MRN12345^^^GENHOSP^MR",),
                                   merged_from=("OLD-1^^^GENHOSP^MR",)))
    assert "nothing to unlink" in again.text


def test_an_unparseable_message_fails_with_the_reason(feed: ApiClient) -> None:
    with pytest.raises(ValidationFailed, match="no PID segment"):
        route(feed.engine, "MSH|^~\\&|EPIC|GENHOSP|CAREPATH|CAREPATH|20261201||ADT^A03|X|P|2.5.1\r")


# -- deploy ----------------------------------------------------------------------------------------

def _deploy_with_triggers(api: ApiClient, triggers: list[dict[str, Any]]) -> Any:
    sidecar = json.loads((SHIPPED / f"{POST_ED}.pathway.json").read_text())
    sidecar["triggers"] = triggers
    return api.deploy(api.user("clinical_lead"), (f"{POST_ED}.bpmn", (SHIPPED / f"{POST_ED}.bpmn").read_bytes()),
                      ("ed-visit-classification.dmn", (SHIPPED / "ed-visit-classification.dmn").read_bytes()),
                      (f"{POST_ED}.pathway.json", json.dumps(sidecar)))


@pytest.mark.parametrize(("trigger", "said"), [
    ({"id": "t1", "on": ["ADT^A03"], "action": "start",
      "start_data": {"ed_visit_date": "discharge_day", "diagnosis_category": "diagnosis_category"}},
     "trigger 't1': unknown fact 'discharge_day' for 'ed_visit_date'"),
    ({"id": "t2", "on": ["ADT^A03"], "when": {"ward": ["3N"]}, "action": "start",
      "start_data": {"ed_visit_date": "discharge_date", "diagnosis_category": "diagnosis_category"}},
     "trigger 't2': unknown condition 'ward'"),
    ({"id": "t3", "on": ["ADT^A99"], "action": "deliver", "message": "visit_completed"},
     "trigger 't3': unknown event 'ADT^A99'"),
    ({"id": "t4", "on": ["ADT^A03"], "action": "start",
      "start_data": {"ed_date": "discharge_date", "diagnosis_category": "diagnosis_category"}},
     "trigger 't4': start_data field 'ed_date' is not in the pathway's start data"),
    ({"id": "t5", "on": ["ADT^A03"], "action": "start", "start_data": {"diagnosis_category": "diagnosis_category"}},
     "trigger 't5': the pathway's start data requires 'ed_visit_date', which the trigger does not give"),
    ({"id": "t6", "on": ["ADT^A01"], "action": "deliver", "message": "readmission"},
     "trigger 't6': the pathway does not catch a message named 'readmission'"),
])
def test_deploy_refuses_a_trigger_that_cannot_work(api: ApiClient, trigger: dict[str, Any], said: str) -> None:
    refused = _deploy_with_triggers(api, [trigger])
    assert refused.status_code == 422, refused.text
    assert said in refused.text


def test_deploy_takes_the_shipped_triggers(api: ApiClient) -> None:
    sidecar = json.loads((SHIPPED / f"{POST_ED}.pathway.json").read_text())
    assert _deploy_with_triggers(api, sidecar["triggers"]).status_code == 201


def test_the_routing_doc_lists_the_whole_vocabulary_and_the_tables() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "adt-routing.md").read_text()
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| `")}
    for name in [*FACTS, *CONDITIONS, *EVENTS, *COMMUNITY_DISPOSITIONS, *NON_COMMUNITY_DISPOSITIONS]:
        assert f"`{name}`" in rows, name
    for shipped in (POST_ED, TCM):
        for trigger in json.loads((SHIPPED / f"{shipped}.pathway.json").read_text())["triggers"]:
            assert f"`{trigger['id']}`" in rows, trigger["id"]


def test_only_an_integration_account_routes_messages(feed: ApiClient) -> None:
    with pytest.raises(PermissionDenied, match="integration account"):
        route(feed.engine, adt("A03"), Principal("someone", Role.COORDINATOR))


def test_identifiers_of_two_different_patients_fail_the_message(feed: ApiClient) -> None:
    route(feed.engine, adt("A03", control_id="M1", patient_class="O", identifiers=("A-1^^^GENHOSP^MR",)))
    route(feed.engine, adt("A03", control_id="M2", patient_class="O", identifiers=("E-1^^^HIE^PI",)))
    with pytest.raises(Conflict, match="the identifiers name different patients"):
        route(feed.engine, adt("A03", control_id="M3", identifiers=("A-1^^^GENHOSP^MR", "E-1^^^HIE^PI")))


def test_a_cancelled_admission_started_nothing_to_cancel(feed: ApiClient) -> None:
    outcome = route(feed.engine, adt("A11", patient_class="I", visit_number="V-IP-11"))
    assert outcome.state is RoutingState.NOTHING_TO_DO
    assert "no open episode was started by the A01 or A04 of visit V-IP-11" in outcome.text


def test_another_source_of_the_same_event_goes_through_the_same_triggers(feed: ApiClient) -> None:
    # what a FHIR Encounter (class EMER, period.end, the VN identifier) maps onto: the same facts
    notification = Notification(
        "ADT^A03", {"patient_class": "E", "visit_number": "ENC-9", "discharge_date": "2026-12-01",
                    "diagnosis_category": "other", "to_community": True},
        PatientDetails((Identifier(MRN, "MRN-F1"),)), "GENHOSP:MRN-F1", "an Encounter (EMER) at GENHOSP")
    with UnitOfWork(feed.engine) as uow:
        outcome = route_notification(uow, FEED, notification)
        uow.commit()
    assert outcome.state is RoutingState.STARTED, outcome.text
    assert episode(feed.engine, outcome.instance_ids[0]).patient_ref == patient_of(feed.engine, MRN, "MRN-F1").id
