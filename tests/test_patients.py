"""Patients: episodes belong to a patient found or created by its identifiers; merges link two identities
(history untouched) so that searches by either find both; unmerges separate them again; the migration
turns every existing free-text patient id into a patient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from carepath.engine.application import CarePath
from carepath.engine.audit import AuditFilter, list_audit_events
from carepath.engine.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from carepath.engine.identity import Principal, Role
from carepath.engine.patients import (
    DEFAULT_PATIENT_ID_SYSTEM,
    Demographics,
    Identifier,
    parse_token,
    v2_identifier_system,
)
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database, is_sqlite
from carepath.engine.persistence.tables import Event, Instance, PatientIdentifier
from carepath.engine.persistence.tables import Patient as PatientRow
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.queries import TaskFilter, list_tasks
from carepath.engine.usecases.patients import (
    find_or_create_by_identifiers,
    merge_patients,
    resolve,
    unmerge_patient,
    update_demographics,
)
from carepath.engine.usecases.verify_history import verify_history
from tests.support import diagrams as d
from tests.support.api import ApiClient

ADT = Principal("adt-feed", Role.INTEGRATION)
ADMIN = Principal("root", Role.ADMIN)
MRN = v2_identifier_system("GENHOSP")
WHY = "duplicate registration found by the records office"


def _default(value: str) -> Identifier:
    return Identifier(DEFAULT_PATIENT_ID_SYSTEM, value)


def _find_or_create(app: CarePath, *identifiers: Identifier, demographics: Demographics | None = None) -> str:
    with UnitOfWork(app) as uow:
        row = find_or_create_by_identifiers(uow, identifiers, demographics)
        uow.commit()
        return row.id


def _patient_of(app: CarePath, instance_id: str) -> str | None:
    with app.db.read() as session:
        return session.scalar(select(Instance.patient_ref).where(Instance.id == instance_id))


def _identifiers(app: CarePath, patient: str) -> set[tuple[str, str]]:
    with app.db.read() as session:
        return {(i.system, i.value) for i in session.scalars(
            select(PatientIdentifier).where(PatientIdentifier.patient_ref == patient))}


@pytest.fixture
def lead(api: ApiClient) -> str:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Ward A"))).status_code == 201
    return lead


def test_a_start_with_a_patient_id_finds_or_creates_that_patient_in_the_default_system(
        api: ApiClient, lead: str) -> None:
    first = api.start(lead, "fu", patient_id="pat-1").json()
    again = api.start(lead, "fu", patient_id="pat-1").json()
    other = api.start(lead, "fu", patient_id="pat-2").json()
    patient = _patient_of(api.engine, first["id"])
    assert patient is not None and _patient_of(api.engine, again["id"]) == patient == first["patient_ref"]
    listed = api.get("/api/instances", lead, params={"patient_id": "pat-1"}).json()["items"]
    assert {i["patient_ref"] for i in listed} == {patient}
    assert _patient_of(api.engine, other["id"]) not in (None, patient)
    assert _identifiers(api.engine, patient) == {(DEFAULT_PATIENT_ID_SYSTEM, "pat-1")}
    no_patient = api.start(lead, "fu").json()
    assert _patient_of(api.engine, no_patient["id"]) is None


def test_identifiers_find_the_patient_by_any_of_them_and_the_new_ones_are_added(engine: CarePath) -> None:
    patient = _find_or_create(engine, Identifier(MRN, "123"), demographics=Demographics(family="Müller"))
    # A later message carries the MRN and an account number: the MRN finds the patient, the number is added.
    account = Identifier(v2_identifier_system("GENHOSP", "AN"), "A-9")
    assert _find_or_create(engine, account, Identifier(MRN, "123"),
                           demographics=Demographics(family="Other", given="Zoë")) == patient
    assert _identifiers(engine, patient) == {(MRN, "123"), (account.system, "A-9")}
    with engine.db.read() as session:
        row = session.get(PatientRow, patient)
        assert row is not None and (row.family, row.given) == ("Müller", "Zoë")  # unknown ones filled, no overwrite


def test_a_patient_created_meanwhile_by_another_start_is_found_and_no_second_one_is_left(
        engine: CarePath, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of two starts for one new patient: the other start committed the patient between this one's
    look-up and its INSERT. The INSERT of the identifiers skips the one taken, the half-made patient is
    removed in the same transaction, and the other start's patient is answered, given the new identifier."""
    from carepath.engine.usecases import patients as module
    patient = _find_or_create(engine, Identifier(MRN, "123"))
    real, calls = module._matching_patient, []

    def missed_once(session: Any, identifiers: list[Identifier]) -> PatientRow | None:
        calls.append(1)
        return None if len(calls) == 1 else real(session, identifiers)

    monkeypatch.setattr(module, "_matching_patient", missed_once)
    account = Identifier(v2_identifier_system("GENHOSP", "AN"), "A-9")
    assert _find_or_create(engine, account, Identifier(MRN, "123")) == patient
    assert len(calls) == 2
    assert _identifiers(engine, patient) == {(MRN, "123"), (account.system, "A-9")}
    with engine.db.read() as session:
        assert session.scalars(select(PatientRow.id)).all() == [patient]


def test_identifiers_of_two_different_patients_are_refused_until_they_are_merged(engine: CarePath) -> None:
    one = _find_or_create(engine, Identifier(MRN, "1"))
    two = _find_or_create(engine, Identifier(MRN, "2"))
    with pytest.raises(Conflict, match="different patients"):
        _find_or_create(engine, Identifier(MRN, "1"), Identifier(MRN, "2"))
    merge_patients(engine, ADT, one, two, WHY)
    assert _find_or_create(engine, Identifier(MRN, "1"), Identifier(MRN, "2")) == one


@pytest.mark.parametrize("identifier", [
    Identifier(v2_identifier_system("SSA", "SS"), "123-45-6789"),
    Identifier("http://hl7.org/fhir/sid/us-ssn", "123456789"),
    Identifier("", "x"), Identifier("urn:x", ""), Identifier("urn:x", "v" * 256)])
def test_social_security_numbers_and_malformed_identifiers_are_refused(engine: CarePath,
                                                                      identifier: Identifier) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _find_or_create(engine, identifier)
    assert refused.value.problems[0].field == "identifiers[0]"


def test_the_system_of_a_v2_identifier_is_its_authority_and_type() -> None:
    assert v2_identifier_system("GENHOSP") == "urn:carepath:id:GENHOSP:MR"
    assert v2_identifier_system("2.16.840.1.113883.19.5", "an") == "urn:carepath:id:2.16.840.1.113883.19.5:AN"
    assert v2_identifier_system("St Mary's") == "urn:carepath:id:St%20Mary%27s:MR"
    assert parse_token("urn:x|P 1") == Identifier("urn:x", "P 1")
    with pytest.raises(ValidationFailed):
        parse_token("no-bar")


def test_demographics_updates_name_the_changed_fields_in_the_history(engine: CarePath) -> None:
    patient = _find_or_create(engine, _default("pat-7"))
    with UnitOfWork(engine) as uow:
        row = uow.session.get(PatientRow, patient)
        assert row is not None
        changed = update_demographics(uow, ADT, row, Demographics(family="Øvre", birth_date=date(1950, 2, 3),
                                                                  phone="+1 555 0100"))
        uow.commit()
    assert changed == ["family", "birth_date", "phone"]
    with engine.db.read() as session:
        event = session.scalars(select(Event).where(Event.type == "patient_updated")).one()
        assert (event.actor, event.data) == (ADT.name, {"patient": patient, "fields": changed})
    with UnitOfWork(engine) as uow, pytest.raises(ValidationFailed, match="patient.phone"):
        row = uow.session.get(PatientRow, patient)
        assert row is not None
        update_demographics(uow, ADT, row, Demographics(phone="call me maybe"))
    with UnitOfWork(engine) as uow, pytest.raises(PermissionDenied):
        row = uow.session.get(PatientRow, patient)
        assert row is not None
        update_demographics(uow, Principal("nurse", Role.COORDINATOR), row, Demographics(family="X"))


def _merged_pair(api: ApiClient, lead: str) -> tuple[dict, dict, str, str]:
    old = api.start(lead, "fu", patient_id="pat-old").json()
    new = api.start(lead, "fu", patient_id="pat-new").json()
    return old, new, str(_patient_of(api.engine, old["id"])), str(_patient_of(api.engine, new["id"]))


def _episodes(api: ApiClient, user: str, patient_id: str) -> set[str]:
    return {i["id"] for i in api.get("/api/instances", user, params={"patient_id": patient_id}).json()["items"]}


def _tasks(api: ApiClient, user: str, patient_id: str) -> set[str]:
    return {t["instance_id"] for t in api.get("/api/tasks", user, params={"patient_id": patient_id}).json()["items"]}


def test_a_merge_links_the_identities_so_either_finds_both_and_an_unmerge_separates_them(
        api: ApiClient, lead: str) -> None:
    old, new, merged, survivor = _merged_pair(api, lead)
    app = api.engine
    assert _episodes(api, lead, "pat-new") == {new["id"]}

    merge_patients(app, ADT, survivor, f"{DEFAULT_PATIENT_ID_SYSTEM}|pat-old", WHY)
    both = {old["id"], new["id"]}
    assert _episodes(api, lead, "pat-new") == both == _episodes(api, lead, "pat-old")
    assert _tasks(api, api.user("auditor"), "pat-new") == both
    with app.db.read() as session:  # the worklist's search box: a patient id or a business key
        found = list_tasks(session, TaskFilter(patient_or_episode="pat-old")).items
        assert {t.instance_id for t in found} == both
    with app.db.read() as session:
        assert resolve(session, merged) == survivor and resolve(session, survivor) == survivor
        viewed = list_audit_events(session, AuditFilter(patient_id="pat-new")).items
        assert {e.instance_id for e in viewed} >= both
        # nothing moved: each episode still links to the patient it was started for
        assert _patient_of(app, old["id"]) == merged
        event = session.scalars(select(Event).where(Event.type == "patient_merged")).one()
        assert (event.actor, event.data["reason"], event.data["patient"], event.data["survivor"]) == (
            ADT.name, WHY, merged, survivor)

    unmerge_patient(app, ADMIN, merged, "merged the wrong patient")
    assert _episodes(api, lead, "pat-new") == {new["id"]}
    assert _episodes(api, lead, "pat-old") == {old["id"]}
    with app.db.read() as session:
        assert resolve(session, merged) == merged
        assert session.scalars(select(Event.actor).where(Event.type == "patient_unmerged")).all() == [ADMIN.name]
    assert verify_history(app, {}).intact


def test_merges_chain_and_never_loop(engine: CarePath) -> None:
    a, b, c = (_find_or_create(engine, _default(f"p-{n}")) for n in "abc")
    with pytest.raises(Conflict, match="into itself"):
        merge_patients(engine, ADT, a, a, WHY)
    merge_patients(engine, ADT, b, a, WHY)  # a -> b
    with pytest.raises(Conflict, match="loop"):
        merge_patients(engine, ADT, a, b, WHY)
    merge_patients(engine, ADT, c, b, WHY)  # a -> b -> c
    with pytest.raises(Conflict, match="loop"):
        merge_patients(engine, ADT, a, c, WHY)
    with pytest.raises(InvalidTransition, match="already merged"):
        merge_patients(engine, ADT, c, a, WHY)
    with engine.db.read() as session:
        assert resolve(session, a) == c
    with pytest.raises(InvalidTransition, match="not merged"):
        unmerge_patient(engine, ADT, c, WHY)
    with pytest.raises(NotFound):
        merge_patients(engine, ADT, c, "no-such-patient", WHY)
    with pytest.raises(NotFound):
        merge_patients(engine, ADT, c, "urn:x|nobody", WHY)


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.SUPERVISOR, Role.CLINICAL_LEAD, Role.AUDITOR])
def test_only_integration_accounts_and_admins_merge(engine: CarePath, role: Role) -> None:
    a, b = (_find_or_create(engine, _default(f"p-{n}")) for n in "ab")
    with pytest.raises(PermissionDenied):
        merge_patients(engine, Principal("someone", role), a, b, WHY)
    with pytest.raises(PermissionDenied):
        unmerge_patient(engine, Principal("someone", role), a, WHY)


def test_a_merge_needs_a_reason(engine: CarePath) -> None:
    a, b = (_find_or_create(engine, _default(f"p-{n}")) for n in "ab")
    with pytest.raises(ValidationFailed) as refused:
        merge_patients(engine, ADT, a, b, "  ")
    assert refused.value.problems[0].field == "reason"


def test_a_break_glass_grant_for_the_survivor_reads_the_merged_identity_too(api: ApiClient, lead: str) -> None:
    old, new, merged, survivor = _merged_pair(api, lead)
    nurse = api.user("coordinator", "ward-b")
    grant = {"patient_id": "pat-new", "reason": "patient in the emergency room, team unreachable"}
    granted = api.post("/api/break-glass", nurse, grant).json()
    assert api.get(f"/api/instances/{old['id']}", nurse).status_code == 404
    merge_patients(api.engine, ADT, survivor, merged, WHY)
    assert api.get(f"/api/instances/{old['id']}", nurse).status_code == 200
    assert _episodes(api, nurse, "pat-new") == {old["id"], new["id"]}
    with api.engine.db.read() as session:  # the read of the merged identity's episode is marked with the grant
        read = session.scalars(select(Event).where(Event.type == "record_viewed", Event.instance_id == old["id"],
                                                   Event.actor == nurse)).one()
        assert read.data["break_glass"] == granted["id"]
    unmerge_patient(api.engine, ADT, merged, WHY)
    assert api.get(f"/api/instances/{old['id']}", nurse).status_code == 404


# -- the migration ---------------------------------------------------------------------------------------

@pytest.fixture
def old_database(tmp_path: Path, database_url: str) -> Iterator[Database]:
    """A database at revision 0018 (SQLite: a new file; PostgreSQL: a schema of its own)."""
    if is_sqlite(database_url):
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    with Database(database_url).engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS migration_0019 CASCADE"))
        connection.execute(text("CREATE SCHEMA migration_0019"))
    separator = "&" if "?" in database_url else "?"
    db = Database(f"{database_url}{separator}options=-csearch_path%3Dmigration_0019")
    yield db
    db.dispose()
    with Database(database_url).engine.begin() as connection:
        connection.execute(text("DROP SCHEMA migration_0019 CASCADE"))


def _insert(connection: Any, table: str, **values: Any) -> None:
    """A row with the given values and a placeholder in every other NOT NULL column."""
    for column in inspect(connection).get_columns(table):
        name, kind = column["name"], str(column["type"]).upper()
        if not column["nullable"] and column.get("default") is None and name not in values:
            values[name] = (0 if "INT" in kind or "BOOL" in kind else "{}" if "JSON" in kind
                            else datetime(2026, 1, 1, tzinfo=UTC) if "TIME" in kind else "x")
    if "retired" in values:
        values["retired"] = False
    names = ", ".join(values)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in values)})"), values)


def test_the_migration_makes_a_patient_per_patient_id_and_links_every_episode(old_database: Database) -> None:
    migrate.upgrade(old_database.engine, "0018")
    with old_database.engine.begin() as connection:
        _insert(connection, "deployment_files", id=1, deployment_id="dep", filename="p.bpmn", content=b"x")
        _insert(connection, "pathway_versions", id=1, source_file_id=1, key="p", deployment_id="dep",
                external_calls="[]", lanes="[]", warnings="[]", measures="[]")
        patients = ["pat-1", "pat-2", "pat-1", "Zoë Ω", None, "pat-2", "pat-1"]
        for n, patient in enumerate(patients):
            _insert(connection, "instances", id=f"i{n}", pathway_version_id=1, pathway_key="p",
                    business_key=f"b{n}", patient_id=patient, status="completed", lock_version=1,
                    created_at=datetime(2026, 1, 1 + n, tzinfo=UTC))
    migrate.upgrade(old_database.engine, patient_id_system="urn:example:mpi")
    with old_database.read() as session:
        identifiers = {i.value: (i.system, i.patient_ref) for i in session.scalars(select(PatientIdentifier))}
        assert sorted(identifiers) == ["Zoë Ω", "pat-1", "pat-2"]
        assert {system for system, _ in identifiers.values()} == {"urn:example:mpi"}
        links = {row.id: row.patient_ref for row in session.execute(select(Instance.id, Instance.patient_ref))}
        for n, patient in enumerate(patients):
            assert links[f"i{n}"] == (identifiers[patient][1] if patient else None)
        rows = {p.id: p for p in session.scalars(select(PatientRow))}
        assert len(rows) == 3 and len({len(p) for p in rows}) == 1  # UUIDs
        first = rows[identifiers["pat-2"][1]]
        assert first.created_at == datetime(2026, 1, 2, tzinfo=UTC) and first.merged_into is None


# -- the API ---------------------------------------------------------------------------------------------

PATIENT = {"identifiers": [{"system": MRN, "value": "MRN-77"}], "name": {"family": "Ñúñez", "given": "José"},
           "birth_date": "1948-07-01", "phone": "+1 (555) 010-7788", "address": "1 Main St, Springfield"}


def test_a_start_with_a_patient_object_creates_the_patient_and_the_patient_api_reads_it(
        api: ApiClient, lead: str) -> None:
    started = api.start(lead, "fu", patient_id="pat-77", patient=PATIENT)
    assert started.status_code == 201, started.text
    patient = _patient_of(api.engine, started.json()["id"])
    # A later start by the MRN alone finds the same patient, and the episode gets its patient id.
    by_mrn = api.start(lead, "fu", patient={"identifiers": PATIENT["identifiers"]}).json()
    assert by_mrn["patient_id"] == "pat-77" and _patient_of(api.engine, by_mrn["id"]) == patient

    read = api.get(f"/api/patients/{patient}", lead)
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["name"] == {"family": "Ñúñez", "given": "José"} and body["birth_date"] == "1948-07-01"
    assert body["phone"] == PATIENT["phone"] and body["survivor"] == patient and body["merged_into"] is None
    assert {(i["system"], i["value"]) for i in body["identifiers"]} == {(MRN, "MRN-77"),
                                                                      (DEFAULT_PATIENT_ID_SYSTEM, "pat-77")}
    assert set(body["episodes"]) == {started.json()["id"], by_mrn["id"]}
    with api.engine.db.read() as session:
        viewed = session.scalars(select(Event).where(Event.type == "record_viewed")).all()
        assert [(e.actor, e.data["what"], e.data["patient"]) for e in viewed] == [(lead, "patient", patient)]

    for params in ({"identifier": f"{MRN}|MRN-77"}, {"name": "ñú"}, {"name": "JOSÉ", "birthdate": "1948-07-01"}):
        found = api.get("/api/patients", lead, params=params)
        assert [p["id"] for p in found.json()] == [patient], (params, found.text)
    assert api.get("/api/patients", lead, params={"birthdate": "1948-07-02"}).json() == []
    assert api.get("/api/patients", lead, params={"identifier": "urn:x|nobody"}).json() == []
    assert api.get("/api/patients", lead).status_code == 422  # no criterion: not a list of every patient


@pytest.mark.parametrize(("patient", "field"), [
    ({"identifiers": [{"system": v2_identifier_system("SSA", "SS"), "value": "123-45-6789"}]},
     "patient.identifiers[0]"),
    ({"phone": "call me maybe"}, "patient.phone"),
    ({"birth_date": "yesterday"}, "birth_date"),
    ({"birth_date": "2999-01-01"}, "patient.birth_date"),
    ({"identifiers": [{"system": "urn:x", "value": "v"}] * 21}, "identifiers"),
    ({"ssn": "123-45-6789"}, "ssn"),
])
def test_a_patient_beyond_its_bounds_is_refused_naming_the_field(api: ApiClient, lead: str, patient: dict,
                                                                 field: str) -> None:
    response = api.start(lead, "fu", patient_id="pat-1", patient=patient)
    assert response.status_code == 422, response.text
    assert field in response.text
    with api.engine.db.read() as session:
        assert session.scalars(select(PatientRow)).all() == []


def test_patients_are_read_by_who_may_read_one_of_their_episodes(api: ApiClient, lead: str) -> None:
    started = api.start(lead, "fu", patient_id="pat-1", patient=PATIENT).json()
    patient = _patient_of(api.engine, started["id"])
    ward = api.user("coordinator", "ward-a")
    stranger = api.user("coordinator", "ward-b")
    feed = api.user("integration")
    assert api.get(f"/api/patients/{patient}", ward).status_code == 200
    assert api.get(f"/api/patients/{patient}", api.user("auditor")).status_code == 200
    assert api.get(f"/api/patients/{patient}", stranger).status_code == 404
    assert api.get("/api/patients", stranger, params={"name": "Ñ"}).json() == []
    assert api.get(f"/api/patients/{patient}", feed).status_code == 403
    assert api.get("/api/patients/no-such-patient", lead).status_code == 404


def test_merge_and_unmerge_over_the_api(api: ApiClient, lead: str) -> None:
    old, new, merged, survivor = _merged_pair(api, lead)
    feed = api.user("integration")
    body = {"merged": f"{DEFAULT_PATIENT_ID_SYSTEM}|pat-old", "reason": WHY}
    assert api.post(f"/api/patients/{survivor}/merge", lead, body).status_code == 403
    done = api.post(f"/api/patients/{survivor}/merge", feed, body)
    assert done.status_code == 200, done.text
    assert done.json() == {"patient": merged, "merged_into": survivor, "previous": None}
    again = api.post(f"/api/patients/{survivor}/merge", feed, body)
    assert again.status_code == 409 and "already merged" in again.text
    assert api.post(f"/api/patients/{merged}/merge", feed, {"merged": survivor, "reason": WHY}).status_code == 409
    assert api.post(f"/api/patients/{survivor}/merge", feed, {"merged": "nobody", "reason": WHY}).status_code == 404
    assert api.post(f"/api/patients/{survivor}/merge", feed, {"merged": "a|b"}).status_code == 422
    read = api.get(f"/api/patients/{merged}", lead).json()
    assert read["survivor"] == survivor and set(read["episodes"]) == {old["id"], new["id"]}
    assert api.get(f"/api/patients/{survivor}", lead).json()["merged"] == [merged]

    undone = api.post(f"/api/patients/{merged}/unmerge", feed, {"reason": "wrong patient merged"})
    assert undone.json() == {"patient": merged, "merged_into": None, "previous": survivor}
    assert api.post(f"/api/patients/{merged}/unmerge", feed, {"reason": "again"}).status_code == 409
    assert api.get(f"/api/patients/{merged}", lead).json()["episodes"] == [old["id"]]


# -- the web app -----------------------------------------------------------------------------------------

def test_the_episode_and_task_pages_show_who_the_patient_is(api: ApiClient, clock: Any) -> None:
    from tests.support.episodes import episodes
    from tests.support.web import page, text_of

    made = episodes(api, clock)
    started = api.start(made.lead, "other", "enc-9", patient_id="pat-9", patient=PATIENT)
    assert started.status_code == 201, started.text
    browser = made.browser(made.auditor)
    shown = page(browser.get(f"/app/episodes/{started.json()['id']}"))
    facts = {text_of(dt): text_of(dd) for dt, dd in zip(shown.xpath('//dl[@class="facts"][1]/dt'),
                                                        shown.xpath('//dl[@class="facts"][1]/dd'), strict=True)}
    assert (facts["Patient"], facts["Name"], facts["Birth date"], facts["MRN"], facts["Phone"]) == (
        "pat-9", "José Ñúñez", "1 July 1948", "MRN-77", "+1 (555) 010-7788")
    task = started.json()["open_tasks"][0]["id"]
    shown = page(browser.get(f"/app/tasks/{task}"))
    about = text_of(shown.xpath('//section[@aria-labelledby="about-title"]')[0])
    assert "José Ñúñez" in about and "MRN-77" in about and "+1 (555) 010-7788" in about
    # an episode whose patient is known only by its id shows just that
    plain = page(browser.get(f"/app/episodes/{made.ids['enc-1']}"))
    assert not plain.xpath('//dd[@class="patient-name"]')
    assert text_of(plain.xpath('//dd[@class="patient"]')[0]) == "pat-1"


def test_two_starts_naming_a_new_patient_at_the_same_time_make_one_patient(engine: CarePath) -> None:
    """The second waits for the first's identifier (PostgreSQL: the unique index; SQLite: the write lock),
    then finds the patient the first created instead of failing."""
    import threading

    second: list[str] = []
    with UnitOfWork(engine) as uow:
        first = find_or_create_by_identifiers(uow, [Identifier(MRN, "same")]).id
        thread = threading.Thread(target=lambda: second.append(_find_or_create(engine, Identifier(MRN, "same"))))
        thread.start()
        thread.join(0.5)  # it waits for this transaction
        uow.commit()
    thread.join(30)
    assert second == [first]
    with engine.db.read() as session:
        assert len(session.scalars(select(PatientRow)).all()) == 1


def test_a_merge_inside_a_message_s_transaction_is_undone_with_it(engine: CarePath) -> None:
    from carepath.engine.usecases.patients import merge_in, unmerge_in

    a, b = (_find_or_create(engine, Identifier(MRN, n)) for n in ("A1", "B1"))
    with UnitOfWork(engine) as uow:  # the message fails after the merge: nothing of it stays
        merge_in(uow, ADT, a, f"{MRN}|B1", WHY)
    with engine.db.read() as session:
        assert resolve(session, b) == b
        assert not session.scalars(select(Event).where(Event.type == "patient_merged")).all()
    with UnitOfWork(engine) as uow:
        merge_in(uow, ADT, a, f"{MRN}|B1", WHY)
        uow.commit()
    with UnitOfWork(engine) as uow:
        assert unmerge_in(uow, ADT, f"{MRN}|B1", "A37 unlink").previous == a
        uow.commit()
    with engine.db.read() as session:
        assert resolve(session, b) == b


def test_the_web_start_form_finds_the_patient_by_its_id(api: ApiClient, clock: Any) -> None:
    from tests.support.episodes import episodes

    made = episodes(api, clock)
    browser = made.browser(made.lead)
    url = "/app/pathways/other/start"
    done = browser.submit(url, url, **{"episode-patient_id": "pat-1", "episode-business_key": "enc-web"})
    assert done.status_code == 303, done.text
    instance_id = done.headers["location"].rsplit("/", 1)[-1]
    assert _patient_of(api.engine, instance_id) == _patient_of(api.engine, made.ids["enc-1"]) is not None


def test_a_merge_and_a_patient_read_name_the_patient_in_the_fhir_audit_events(api: ApiClient, lead: str) -> None:
    from carepath.engine.audit_fhir import fhir_audit_event

    old, new, merged, survivor = _merged_pair(api, lead)
    merge_patients(api.engine, ADT, survivor, merged, WHY)
    assert api.get(f"/api/patients/{survivor}", lead).status_code == 200
    with api.engine.db.read() as session:
        records = list_audit_events(session, AuditFilter(types=("patient_merged", "record_viewed"))).items
    named = {r.type: [e["what"]["identifier"] for e in fhir_audit_event(r, "carepath")["entity"] if "what" in e]
             for r in records}
    assert {"system": "urn:carepath:patient", "value": merged} in named["patient_merged"]
    assert {"system": "urn:carepath:patient", "value": survivor} in named["record_viewed"]
