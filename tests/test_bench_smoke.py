"""The benchmark's own pieces still run (no timing is asserted: figures belong in bench/)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

import carepath.pathways as carepath_pathways
from carepath.api.bootstrap import deploy_directory
from carepath.bench.__main__ import api_nodes
from carepath.bench.chain import (
    CHAIN_KEY,
    CHAIN_TASKS,
    chain_bpmn,
    measure_chain_http,
    measure_plain_loop,
    measure_product_cycle,
    ratios,
)
from carepath.bench.common import add_user, percentiles, running_servers
from carepath.bench.compliance import load_episodes, measure_reports
from carepath.bench.cycle import measure_engine_cycle
from carepath.bench.pathway import BPMN
from carepath.bench.report import render, targets
from carepath.bench.request_cpu import measure
from carepath.bench.web_worklist import WEB_PERSONAS, measure_web_worklist, set_passwords
from carepath.bench.worklist import add_personas, bulk_load
from carepath.engine.clock import ManualClock
from tests.support.api import ApiClient
from tests.support.web import Browser


def test_engine_cycle_measurement_runs_and_reports() -> None:
    results = {"quick": True, "engine_cycle": measure_engine_cycle(12)}
    assert results["engine_cycle"]["cycles"] == 12
    assert results["engine_cycle"]["state_bytes_after_5_completions"] > 0
    results["targets"] = targets(results)
    assert "bare engine cycle" in render(results)


def test_compliance_report_measurement_runs_and_reports(api: ApiClient, clock: ManualClock,
                                                        database_url: str) -> None:
    deploy_directory(api.engine, Path(carepath_pathways.__file__).parent)
    now = datetime(2026, 6, 15, 14, tzinfo=UTC)
    clock.set(now)
    loaded = load_episodes(database_url, 40, now)
    assert loaded["episodes"] == 40 and loaded["events"] > 40
    auditor = api.user("auditor")
    token = api.headers(auditor)["Authorization"].removeprefix("Bearer ")
    reports = measure_reports(api.client, token, now, requests=2)
    assert set(reports) == {"year", "month", "team's month", "year, csv"}
    assert all(q["n"] == 2 and q["p95_ms"] > 0 and q["bytes"] > 0 for q in reports.values())
    assert reports["year"]["decided"] > 0
    results = {"quick": True, "compliance": {"40": {"loaded": loaded, "reports": reports}}}
    results["targets"] = targets(results)
    assert "compliance report at 40 episodes" in render(results)


def test_web_worklist_page_measurement_runs_and_reports(api: ApiClient, database_url: str) -> None:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("bench.bpmn", BPMN)).status_code == 201
    tokens = add_personas(database_url)
    set_passwords(database_url, WEB_PERSONAS)
    bulk_load(database_url, 60, "{}")
    runs = measure_web_worklist(lambda: Browser(api.client.app).client, requests=2, api_token=tokens["wl-coordinator"])
    assert runs["view=mine-and-teams"]["rows"] > 0 and runs["view=mine-and-teams"]["html_bytes"] > 0
    assert all(q["n"] == 2 for name, q in runs.items() if name != "page weight")
    assert runs["poll, nothing moved (204)"]["status"] == 204
    assert runs["reference: GET /api/tasks?candidate=me"]["rows"] > 0
    weight = runs["page weight"]
    assert any("htmx.min.js" in path for path in weight["asset_bytes"])
    assert weight["total_bytes"] == weight["html_bytes"] + sum(weight["asset_bytes"].values())
    results = {"quick": True, "web_worklist": {"60": runs}}
    results["targets"] = targets(results)
    assert "web worklist page at 60 open tasks" in render(results)
    assert "web_worklist_page_weight_bytes" in results["targets"]


def test_chain_loops_walk_whole_chains_of_the_one_diagram(api: ApiClient, clock: ManualClock) -> None:
    """Issue 17's reference: the plain loop and the product's cycle run past the end of a chain (a new
    episode is started), and the product deploys and runs the very diagram the plain loop parsed."""
    plain = measure_plain_loop(cycles=CHAIN_TASKS + 3, starts=2)
    product = measure_product_cycle(cycles=CHAIN_TASKS + 3)
    assert plain["cycles"] == product["cycles"] == CHAIN_TASKS + 3
    assert plain["state_bytes_mid_chain"] > product["state_bytes_mid_chain"] > 0  # the spec rides in every save
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("chain.bpmn", chain_bpmn())).status_code == 201
    admin = api.user("admin")
    started = api.start(admin, CHAIN_KEY, data={}).json()
    assert [t["name"] for t in started["open_tasks"]] == ["Step 1"]
    after = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", admin, json={"data": {}}).json()
    assert [t["name"] for t in after["open_tasks"]] == ["Step 2"]
    timers = api.workflow(started["id"]).snapshot().timers
    assert len(timers) == 1 and timers[0].element_id == "task_02_reminder"
    assert timers[0].due_at == clock() + timedelta(days=7)
    http = {"tasks_per_second": 10.0, "instances_per_second": 5.0}
    results = {"quick": True, "database": "sqlite", "chain": {
        "plain_loop": plain, "product_cycle": product, "ratios": ratios(http, plain, product),
        "http": {**http, "clients": 1, "complete_latency": percentiles([0.1]), "start_latency": percentiles([0.1])}}}
    results["targets"] = targets(results)
    assert "chain_completions_vs_plain_loop" in results["targets"]
    assert "plain SpiffWorkflow loop" in render(results)


def test_request_cpu_measures_each_completion_of_the_chain(tmp_path: Path) -> None:
    profile = tmp_path / "completions.prof"
    # In a thread of its own: the browser tests' Playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        figures = pool.submit(asyncio.run, measure(f"sqlite:///{tmp_path / 'cpu.db'}", 3, str(profile))).result()
    assert figures["completions"] == 3 and figures["cpu_ms_median"] > 0
    assert profile.stat().st_size > 0


def test_request_cpu_measures_each_start_of_the_chain(tmp_path: Path) -> None:
    with ThreadPoolExecutor(1) as pool:
        figures = pool.submit(asyncio.run, measure(f"sqlite:///{tmp_path / 'cpu.db'}", 3, None, True)).result()
    assert figures["starts"] == 3 and figures["cpu_ms_median"] > 0


def test_chain_clients_are_spread_over_the_api_nodes(database_url: str, tmp_path: Path) -> None:
    """`--api-nodes 2`: two `carepath serve` processes on one database, client i on node i mod 2, every
    started episode walked to its end."""
    if database_url.startswith("sqlite"):  # one process only: whatever --api-nodes says, one node
        assert api_nodes(argparse.Namespace(api_nodes=3), database_url) == 1
        return
    assert api_nodes(argparse.Namespace(api_nodes=3), database_url) == 3
    admin = add_user(database_url, f"bench-admin-{uuid.uuid4().hex[:6]}", "admin")
    with running_servers(database_url, tmp_path, 2) as servers:
        deployed = httpx.post(f"{servers[0].url}/api/pathways", headers={"Authorization": f"Bearer {admin}"},
                              files=[("files", ("chain.bpmn", chain_bpmn().encode(), "application/xml"))])
        assert deployed.status_code == 201, deployed.text
        http = measure_chain_http([s.url for s in servers], admin, clients=2, instances=2, starts=4)
    assert http["instances_started"] == 4 and http["tasks_completed"] == 2 * CHAIN_TASKS
    for log_name in ("server.log", "server-2.log"):
        served = (tmp_path / log_name).read_text()
        assert served.count("POST /api/pathways/bench-chain/instances") == 1 + 2  # the warm-up, then two timed
        assert served.count("/complete") == CHAIN_TASKS
