"""The resource directory: HSDS 3.0 imports (JSON list, paged answer, tabular package), search, bounds, rights."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.directory import ImportLimits, ResourceFiles, load_taxonomy_map
from carepath.engine.errors import PayloadTooLarge, PermissionDenied, ValidationFailed
from carepath.engine.identity import SYSTEM, Principal, Role
from carepath.engine.persistence.directory_tables import ResourceService
from carepath.engine.usecases import resources as resource_usecase
from carepath.engine.usecases.resources import import_resources
from tests.support.api import ApiClient

EXAMPLE = Path(__file__).parents[1] / "engine" / "directory" / "examples" / "fictional-resources-example.json"
TABULAR = Path(__file__).parent / "fixtures" / "hsds-tabular-fictional"


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def service(service_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": service_id, "name": name, **extra}


def load(engine: CarePath, value: Any, name: str = "services.json") -> resource_usecase.ImportResult:
    return import_resources(engine, SYSTEM, ResourceFiles(name, json=json.dumps(value).encode()))


def package() -> ResourceFiles:
    return ResourceFiles("tabular", package={p.name: p.read_bytes() for p in TABULAR.iterdir()})


def names(api: ApiClient, user: str, **params: Any) -> list[str]:
    response = api.get("/api/resources", user, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def count_services(engine: CarePath) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(ResourceService)) or 0


def test_a_paged_answer_imports_with_domains_from_codes_and_names(api: ApiClient) -> None:
    result = load(api.engine, example(), "fictional-resources-example.json")
    assert (result.created, result.updated, result.problems) == (7, 0, [])
    worker = api.user("coordinator")
    found = api.get("/api/resources/fict-svc-food-pantry", worker).json()
    assert found["organization"] == "Northside Neighbors (fictional)" and found["domains"] == ["food"]
    assert found["locations"][0]["postal_code"] == "99990"
    assert [s["byday"] for s in found["details"]["schedules"]] == ["MO,WE,FR"]
    assert names(api, worker, domain="food") == ["fict-svc-meals", "fict-svc-food-pantry"]  # by name; defunct hidden
    assert names(api, worker, domain="safety") == ["fict-svc-dv-hotline"]  # Open Eligibility, by term name
    assert names(api, worker, domain="utilities") == ["fict-svc-utilities"]
    assert names(api, worker, domain="transportation") == ["fict-svc-rides"]
    assert names(api, worker, domain="housing") == ["fict-svc-shelter"]


def test_a_json_list_imports_and_a_second_import_updates_in_place(api: ApiClient) -> None:
    first = [service("s1", "Pantry One", attributes=[{"taxonomy_term": {"id": "t", "code": "BD-1800.2000",
                                                                        "name": "Food Pantries"}}])]
    assert load(api.engine, first).created == 1
    renamed = [service("s1", "Pantry Renamed", attributes=[], languages=[{"id": "l", "code": "ES", "name": "Spanish"}])]
    result = load(api.engine, renamed)
    assert (result.created, result.updated) == (0, 1)
    worker = api.user("supervisor")
    found = api.get("/api/resources/s1", worker).json()
    assert found["name"] == "Pantry Renamed" and found["domains"] == [] and found["details"]["taxonomy_terms"] == []
    assert found["languages"] == [{"code": "es", "name": "Spanish"}]
    assert count_services(api.engine) == 1


def test_a_part_left_out_keeps_what_was_stored_and_a_part_given_replaces_it(api: ApiClient) -> None:
    full = [s for s in example()["contents"] if s["id"] == "fict-svc-food-pantry"]
    load(api.engine, full)
    load(api.engine, [service("fict-svc-food-pantry", "Pantry, as a GET /services list answers it")])
    worker = api.user("coordinator")
    kept = api.get("/api/resources/fict-svc-food-pantry", worker).json()
    assert kept["name"] == "Pantry, as a GET /services list answers it" and kept["domains"] == ["food"]
    assert kept["locations"][0]["postal_code"] == "99990" and len(kept["details"]["schedules"]) == 1
    assert names(api, worker, zip="99991") == ["fict-svc-food-pantry"]  # from its service area
    load(api.engine, [service("fict-svc-food-pantry", "Pantry", service_areas=[], languages=[])])
    assert names(api, worker, zip="99991") == [] and names(api, worker, zip="99990") == ["fict-svc-food-pantry"]
    assert api.get("/api/resources/fict-svc-food-pantry", worker).json()["languages"] == []


def test_a_tabular_package_joins_its_tables_and_reports_the_bad_row(api: ApiClient) -> None:
    result = import_resources(api.engine, SYSTEM, package())
    assert result.created == 2
    [problem] = result.problems
    assert (problem.where, problem.service_id) == ("services.csv row 4", "tab-svc-bad")
    assert "'XX' is not one of MO" in problem.reason
    worker = api.user("coordinator")
    assert names(api, worker, zip="99992") == ["tab-svc-pantry"]  # the location's ZIP+4, as a 5-digit zip
    assert names(api, worker, zip="99993") == ["tab-svc-bus"]  # named in a service area
    assert names(api, worker, domain="transportation") == ["tab-svc-bus"]  # "Bus Passes" by name
    assert names(api, worker, language="vi") == names(api, worker, language="Vietnamese") == ["tab-svc-pantry"]
    assert api.get("/api/resources/tab-svc-bad", worker).status_code == 404


def test_a_bad_record_is_skipped_with_where_and_why_and_the_rest_imported(api: ApiClient) -> None:
    result = load(api.engine, [service("ok", "Fine"), {"id": "no-name"}, "not an object",
                               service("bad-status", "X", status="closed"), service("ok", "Again")])
    assert result.created == 1
    assert [str(p) for p in result.problems] == [
        "services.json item 2 (service no-name): has no name",
        "services.json item 3: is not a JSON object",
        "services.json item 4 (service bad-status): status 'closed' is not one of active, defunct, inactive, "
        "temporarily closed",
        "services.json item 5 (service ok): the same service id appears earlier in this import"]


def test_nothing_is_half_imported_when_the_transaction_fails(engine: CarePath, monkeypatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(resource_usecase.UnitOfWork, "commit", fail)
    with pytest.raises(RuntimeError):
        load(engine, [service("a", "A"), service("b", "B")])
    assert count_services(engine) == 0


def test_a_service_the_database_refuses_is_rolled_back_alone(engine: CarePath, monkeypatch) -> None:
    original = resource_usecase._store

    def refuse_b(session: Any, app: Any, record: Any, *rest: Any) -> bool:
        created = original(session, app, record, *rest)
        if record.id == "b":  # its rows are written, then the database refuses: the savepoint undoes them
            session.execute(select(func.count()).select_from(ResourceService).where(
                func.nonexistent_function(ResourceService.id) == 1))
        return created

    monkeypatch.setattr(resource_usecase, "_store", refuse_b)
    result = load(engine, [service("a", "A"), service("b", "B"), service("c", "C")])
    assert result.created == 2 and [p.service_id for p in result.problems] == ["b"]
    assert "the database refused it" in result.problems[0].reason
    with engine.db.read() as session:
        assert sorted(session.scalars(select(ResourceService.id))) == ["a", "c"]


def test_search_by_q_zip_language_and_open_now(api: ApiClient, clock: ManualClock) -> None:
    load(api.engine, example())
    worker = api.user("clinical_lead")
    assert names(api, worker, q="HARBOR") == ["fict-svc-shelter", "fict-svc-dv-hotline"]  # organization too
    assert names(api, worker, q="electric bill") == ["fict-svc-utilities"]
    assert names(api, worker, q="100%_") == []
    assert names(api, worker, zip="99991") == [
        "fict-svc-meals", "fict-svc-utilities", "fict-svc-rides", "fict-svc-food-pantry"]
    assert names(api, worker, language="es", domain="food") == ["fict-svc-food-pantry"]
    clock.set(datetime(2026, 1, 5, 15, 0, tzinfo=UTC))  # Monday 10:00 in New York (the default calendar's zone)
    assert names(api, worker, open_now="true") == ["fict-svc-rides", "fict-svc-food-pantry", "fict-svc-dv-hotline"]
    clock.set(datetime(2026, 1, 6, 5, 0, tzinfo=UTC))  # Tuesday 00:00: the shelter opened Monday 19:00
    assert names(api, worker, open_now="true", domain="housing") == ["fict-svc-shelter"]
    page = api.get("/api/resources", worker, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 6 and len(page["items"]) == 2


def test_schedule_offsets_are_read_in_their_own_zone(api: ApiClient, clock: ManualClock) -> None:
    load(api.engine, [service("utc", "Open 09-10 UTC", schedules=[
        {"id": "x", "freq": "WEEKLY", "byday": "MO", "opens_at": "09:00Z", "closes_at": "10:00Z"}])])
    worker = api.user("coordinator")
    clock.set(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    assert names(api, worker, open_now="true") == ["utc"]
    clock.set(datetime(2026, 1, 5, 10, 30, tzinfo=UTC))
    assert names(api, worker, open_now="true") == []
    load(api.engine, [service("utc", "Open 09-10 at UTC-5, in 2025 only", schedules=[
        {"id": "x", "byday": "MO", "opens_at": "09:00", "closes_at": "10:00", "timezone": -5,
         "valid_to": "2025-12-31"}])])
    clock.set(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))  # 09:30 at UTC-5, but past valid_to
    assert names(api, worker, open_now="true") == []
    clock.set(datetime(2025, 12, 29, 14, 30, tzinfo=UTC))  # a Monday, 09:30 at UTC-5, in 2025
    assert names(api, worker, open_now="true") == ["utc"]


def test_the_total_is_counted_up_to_100_unless_asked_exactly(api: ApiClient) -> None:
    load(api.engine, [service(f"s{n:03d}", f"Service {n:03d}") for n in range(105)])
    worker = api.user("coordinator")
    page = api.get("/api/resources", worker, params={"limit": 5, "offset": 10}).json()
    assert (page["total"], page["total_exact"], [i["id"] for i in page["items"]]) == (
        100, False, ["s010", "s011", "s012", "s013", "s014"])
    page = api.get("/api/resources", worker, params={"limit": 5, "offset": 100}).json()  # the end of the page
    assert (page["total"], page["total_exact"], len(page["items"])) == (105, True, 5)
    page = api.get("/api/resources", worker, params={"exact_total": "true"}).json()
    assert (page["total"], page["total_exact"]) == (105, True)


def test_search_refuses_an_unknown_domain(api: ApiClient) -> None:
    response = api.get("/api/resources", api.user("coordinator"), params={"domain": "money"})
    assert response.status_code == 422 and "food, housing, transportation, utilities, safety" in response.text


def test_only_admins_import(api: ApiClient) -> None:
    body = [service("p", "P")]
    for role in ("coordinator", "supervisor", "clinical_lead", "auditor"):
        response = api.post("/api/resources/import", api.user(role), json=body)
        assert response.status_code == 403, role
    with pytest.raises(PermissionDenied):
        import_resources(api.engine, Principal("c", Role.COORDINATOR), ResourceFiles("x", json=b"[]"))
    admin = api.user("admin")
    response = api.post("/api/resources/import", admin, json=body)
    assert response.status_code == 200 and response.json()["created"] == 1
    upload = [("files", (p.name, p.read_bytes(), "text/csv")) for p in sorted(TABULAR.iterdir())]
    response = api.client.post("/api/resources/import", headers=api.headers(admin), files=upload)
    assert response.status_code == 200 and response.json()["created"] == 2
    assert response.json()["problems"][0]["where"] == "services.csv row 4"


def test_workers_and_admins_search_and_auditors_may_not(api: ApiClient) -> None:
    load(api.engine, [service("p", "P")])
    for role in ("coordinator", "supervisor", "clinical_lead", "admin"):
        assert api.get("/api/resources", api.user(role)).status_code == 200, role
    auditor = api.user("auditor")
    for path in ("/api/resources", "/api/resources/p"):
        response = api.get(path, auditor)
        assert response.status_code == 403 and "searching the resource directory" in response.json()["message"]
    assert api.get("/api/resources", api.user("integration")).status_code == 403


def test_bounds_are_clear_errors(api: ApiClient, engine: CarePath, tmp_path: Path, monkeypatch, capsys) -> None:
    admin = api.user("admin")
    huge = b"[" + b" " * (21 * 1024 * 1024) + b"]"
    response = api.client.post("/api/resources/import", headers={**api.headers(admin),
                                                                  "Content-Type": "application/json"}, content=huge)
    assert response.status_code == 413
    limits = ImportLimits(max_bytes=1000, max_services=2, max_depth=5)
    with pytest.raises(PayloadTooLarge, match="at most 1,000 bytes"):
        ResourceFiles("big.json", json=b" " * 1001).services(limits)
    with pytest.raises(PayloadTooLarge, match="at most 2"):
        ResourceFiles("many.json", json=b"[{}, {}, {}]").services(limits)
    with pytest.raises(ValidationFailed, match="nested deeper than 5"):
        ResourceFiles("deep.json", json=b"[[[[[[1]]]]]]").services(limits)
    with pytest.raises(ValidationFailed, match="neither a list"):
        ResourceFiles("odd.json", json=b'{"hello": 1}').services(limits)
    big = tmp_path / "big.json"
    big.write_bytes(b"[]" + b" " * 2048)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CAREPATH_RESOURCE_IMPORT_MAX_BYTES", "1024")
    assert main(["resources", "import", str(big)]) == 1
    assert "at most 1,024 bytes (CAREPATH_RESOURCE_IMPORT_MAX_BYTES)" in capsys.readouterr().err


def test_the_cli_imports_a_file_and_a_package_with_progress(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["resources", "import", str(EXAMPLE), "--every", "3"]) == 0
    captured = capsys.readouterr()
    assert "3 of 7 services" in captured.err and "7 created, 0 updated, 0 skipped" in captured.out
    assert main(["resources", "import", str(TABULAR)]) == 1  # one bad row: reported, and the exit says so
    captured = capsys.readouterr()
    assert "skipped: services.csv row 4 (service tab-svc-bad)" in captured.err
    assert "2 created, 0 updated, 1 skipped" in captured.out


def test_the_taxonomy_map_is_data_and_can_be_replaced(tmp_path: Path) -> None:
    shipped = load_taxonomy_map()
    assert shipped.domains_of([("bd-1800.2000", None, None)]) == {"food"}
    assert shipped.domains_of([("BH-1800.1500-100", "Domestic Violence Shelters", None)]) == {"housing", "safety"}
    assert shipped.domains_of([(None, "Help Pay for Utilities", None)]) == {"utilities"}
    assert shipped.domains_of([("BV-8900.9300", "Utility Service Payment Assistance", None)]) == {"utilities"}
    assert shipped.domains_of([("RP-1500.1400-200", "Domestic Violence Hotlines", None)]) == {"safety"}
    assert shipped.domains_of([(None, "Substance Abuse Counseling", None)]) == set()
    # Open Eligibility's numeric codes, for that taxonomy (or a term naming none), not for another one
    assert shipped.domains_of([("1130", None, "Open Eligibility")]) == {"food"}
    assert shipped.domains_of([("1124", None, None)]) == {"safety"}
    assert shipped.domains_of([("1130", None, "Our county's own list")]) == set()
    assert [g.code for g in shipped.gravity_codes("housing")] == ["housing-instability", "homelessness",
                                                                  "inadequate-housing"]
    assert shipped.gravity_system.endswith("/SDOHCC-CodeSystemTemporaryCodes")
    replacement = tmp_path / "map.json"
    replacement.write_text(json.dumps({"domains": {"food": {"code_prefixes": ["ZZ"], "names": []}}}))
    assert load_taxonomy_map(replacement).domains_of([("ZZ-1", None, None), ("BD-1", None, None)]) == {"food"}
    replacement.write_text(json.dumps({"domains": {"money": {}}}))
    with pytest.raises(ValidationFailed, match="unknown domains"):
        load_taxonomy_map(replacement)


def test_the_benchmark_pieces_run(api: ApiClient, database_url: str) -> None:
    """No timing asserted (figures belong in bench/): the generated directory imports whole and every query
    of the search benchmark answers."""
    from carepath.bench.resources import QUERIES, generated_services, load_directory, measure_search

    assert len({s["id"] for s in generated_services(50)}) == 50
    loaded = load_directory(database_url, 60)
    assert loaded["services"] == 60 and loaded["skipped"] == 0
    token = api.headers(api.user("coordinator"))["Authorization"].removeprefix("Bearer ")
    results = measure_search(api.client, token, requests=1)
    assert set(results) == {name for name, _ in QUERIES} and results["all, first page"]["items"] == 20


@pytest.mark.postgres_only
def test_two_imports_at_once_both_succeed(engine: CarePath) -> None:
    """Without the import lock the second import's new services collide with the first's (duplicate key)."""
    from concurrent.futures import ThreadPoolExecutor

    batch = [service(f"c{n}", f"Concurrent {n}") for n in range(200)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: load(engine, batch), range(2)))
    assert sorted((r.created, r.updated, r.skipped) for r in results) == [(0, 200, 0), (200, 0, 0)]
