"""python -m carepath.bench [--database-url URL] [--quick] [--skip-http] [--clients 16] [--out DIR]

Measures, in one run: the bare engine cycle; starts and completions over HTTP with concurrent
clients; worklist latency at 10,000 and 100,000 open tasks; stored bytes per instance; and the
server's resident memory as instances pile up. Writes JSON and prints a table (docs/benchmark.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

import carepath.pathways as carepath_pathways
from carepath.engine.persistence.database import Database, is_sqlite
from carepath.engine.persistence.tables import Instance

from .audit import measure_audit
from .chain import chain_bpmn, measure_chain_http, measure_plain_loop, measure_product_cycle, ratios
from .common import BENCH_DB, add_user, fresh_database, log, running_server, running_servers
from .compliance import load_episodes, measure_reports
from .cycle import measure_engine_cycle
from .footprint import start_shipped, state_sizes, touch_instances
from .load import measure_http
from .pathway import BPMN, KEY
from .report import render, targets
from .resources import load_directory, measure_search
from .soak import run_soak
from .timers import measure_timers
from .web_worklist import WEB_PERSONAS, measure_web_worklist, set_passwords
from .worklist import add_personas, bulk_load, explain, measure_worklist

FULL: dict[str, Any] = {"cycles": 3000, "instances": 800, "worklist": (10_000, 100_000), "requests": 200, "shipped": 50,
        "touch": 3000, "timers": {"pending": 100_000, "burst": 10_000, "steady": 300},
        "audit": 1_000_000, "episodes": (10_000, 50_000), "report_requests": 10, "resources": 10_000,
        "chain": {"cycles": 2000, "starts": 300, "instances": 160, "http_starts": 640},
        "soak": {"serves": 2, "workers": 2, "clients": 8, "episodes_per_client": 25, "kill_every_s": 4.0}}
QUICK: dict[str, Any] = {"cycles": 300, "instances": 64, "worklist": (2_000, 10_000), "requests": 30, "shipped": 5,
                         "touch": 200, "timers": {"pending": 5_000, "burst": 1_000, "steady": 50},
                         "audit": 20_000, "episodes": (500, 2_000), "report_requests": 3, "resources": 1_000,
                         "chain": {"cycles": 200, "starts": 50, "instances": 32, "http_starts": 64},
                         "soak": {"serves": 2, "workers": 2, "clients": 4, "episodes_per_client": 5,
                                  "kill_every_s": 4.0}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carepath.bench")
    parser.add_argument("--database-url", help="PostgreSQL server URL (a database 'carepath_bench' is "
                        "created there); default: a SQLite file")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of a minute or two")
    parser.add_argument("--skip-http", action="store_true", help="only the bare engine cycle")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--api-nodes", type=_at_least_one, default=None, metavar="N",
                        help="chain phase on PostgreSQL: N `carepath serve` processes, each client on one of them "
                        "(default: one per core; SQLite: always one)")
    parser.add_argument("--only", choices=["all", "worklist", "web-worklist", "timers", "audit", "compliance",
                                                   "resources", "chain", "soak"],
                        default="all",
                        help="one phase only: 'worklist' (worklist latency), 'web-worklist' (the web "
                        "worklist page with a session cookie, each quick view, and its weight), 'timers' "
                        "(timer lateness, PostgreSQL), 'audit' (a streamed export of 1,000,000 history rows, "
                        "the cost of recording a read) or 'compliance' (the compliance report over 10,000 and 50,000 "
                        "transition-of-care episodes), 'resources' (resource directory search over 10,000 generated "
                        "HSDS services), 'chain' (HTTP completions and starts on a 20-task chain with boundary timers, "
                        "held against the plain SpiffWorkflow loop and the product's own cycle on the same diagram), "
                        "'soak' (several serve and worker processes on PostgreSQL under a mixed load, killed "
                        "with SIGKILL and restarted, then every invariant checked); 'all' runs everything but "
                        "the timer, audit, compliance, resources, chain and soak phases")
    parser.add_argument("--timer-workers", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="worker process counts for the timer phase (default 1 2)")
    parser.add_argument("--open-tasks", type=int, nargs="+", metavar="N",
                        help="worklist sizes to measure (default 10000 100000; --quick 2000 10000)")
    parser.add_argument("--episodes", type=int, nargs="+", metavar="N",
                        help="episode counts for the compliance phase (default 10000 50000; --quick 500 2000)")
    parser.add_argument("--database-name", default=BENCH_DB,
                        help=f"the PostgreSQL database dropped and created for the run (default {BENCH_DB}); "
                        "when --database-url names this database, its schema is emptied in place instead")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    if args.open_tasks:
        sizes["worklist"] = tuple(sorted(args.open_tasks))
    if args.episodes:
        sizes["episodes"] = tuple(sorted(args.episodes))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick,
                               "clients": args.clients}
    if args.only == "timers":
        if args.database_url is None or is_sqlite(args.database_url):
            parser.error("the timer phase needs PostgreSQL: give --database-url postgresql+psycopg://...")
        results["database"] = "postgresql"
        results["timers"] = [measure_timers(lambda: fresh_database(args.database_url, args.out, args.database_name),
                                            n, **sizes["timers"]) for n in args.timer_workers]
    elif args.only == "audit":
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        _deploy_shipped(database_url)
        results["audit"] = measure_audit(database_url, args.out, sizes["audit"])
    elif args.only == "compliance":
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        _deploy_shipped(database_url)
        results["compliance"] = _compliance_phase(database_url, args, sizes)
    elif args.only == "resources":
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        results["resources"] = _resources_phase(database_url, args, sizes)
    elif args.only == "soak":
        if args.database_url is None or is_sqlite(args.database_url):
            parser.error("the soak phase needs PostgreSQL: give --database-url postgresql+psycopg://...")
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = "postgresql"
        results["soak"] = run_soak(database_url, args.out, **sizes["soak"])
    elif args.only == "chain":
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        results["chain"] = _chain_phase(database_url, args, sizes["chain"])
    elif args.only in ("worklist", "web-worklist"):
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        phase = _worklist_phase if args.only == "worklist" else _web_worklist_phase
        results.update(phase(database_url, args, sizes))
    else:
        log(f"engine cycle: {sizes['cycles']} cycles")
        results["engine_cycle"] = measure_engine_cycle(sizes["cycles"])
    if args.only == "all" and not args.skip_http:
        database_url = fresh_database(args.database_url, args.out, args.database_name)
        results["database"] = Database(database_url).dialect
        results.update(_http_phases(database_url, args, sizes))
    results["targets"] = targets(results)
    dialect = results.get("database", "engine-only")
    path = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-{dialect}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    log(f"wrote {path}")


def _http_phases(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    admin = add_user(database_url, "bench-admin", "admin")
    personas = add_personas(database_url)
    out: dict[str, Any] = {}
    with running_server(database_url, args.out) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}) as client:
            client.post("/api/pathways", files=[("files", ("bench.bpmn", BPMN.encode(), "application/xml"))])
        memory = {"server_start_mb": server.rss_mb()}
        out["http"], instance_ids = measure_http(server.url, admin, clients=args.clients,
                                                 instances=sizes["instances"])
        start_shipped(server.url, admin, sizes["shipped"])
        out["state"] = state_sizes(database_url)
        memory["after_http_load_mb"] = server.rss_mb()
        template = _template_state(database_url)
        out["worklist"] = {}
        for total in sizes["worklist"]:
            bulk_load(database_url, total, template)
            out["worklist"][str(total)] = measure_worklist(server.url, personas, sizes["requests"])
        out["worklist_plans"] = explain(database_url)
        memory["after_bulk_load_mb"] = server.rss_mb()
        touch_instances(server.url, admin, instance_ids + _bulk_ids(database_url), sizes["touch"])
        memory["after_reading_instances_mb"] = server.rss_mb()
        memory["instances_in_database"] = out["state"]["rows"]["instances"] + sum(
            int(n) for n in sizes["worklist"][-1:])
        out["memory"] = memory
    return out


def _worklist_phase(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    admin = add_user(database_url, "bench-admin", "admin")
    personas = add_personas(database_url)
    out: dict[str, Any] = {"worklist": {}}
    with running_server(database_url, args.out) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}) as client:
            client.post("/api/pathways", files=[("files", ("bench.bpmn", BPMN.encode(), "application/xml"))])
        for total in sizes["worklist"]:
            bulk_load(database_url, total, "{}")
            out["worklist"][str(total)] = measure_worklist(server.url, personas, sizes["requests"])
        out["worklist_plans"] = explain(database_url)
    return out


def _web_worklist_phase(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    admin = add_user(database_url, "bench-admin", "admin")
    tokens = add_personas(database_url)
    set_passwords(database_url, WEB_PERSONAS)
    out: dict[str, Any] = {"web_worklist": {}}
    with running_server(database_url, args.out) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}) as client:
            client.post("/api/pathways", files=[("files", ("bench.bpmn", BPMN.encode(), "application/xml"))])
        for total in sizes["worklist"]:
            bulk_load(database_url, total, "{}")
            out["web_worklist"][str(total)] = measure_web_worklist(
                lambda: httpx.Client(base_url=server.url, timeout=60), sizes["requests"], tokens["wl-coordinator"])
    return out


def _compliance_phase(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    """Episodes loaded step by step; at each size the report's latency and the server's memory, the
    server restarted so that each size starts from a cold process."""
    token = add_user(database_url, "bench-auditor", "auditor")
    out: dict[str, Any] = {}
    for total in sizes["episodes"]:
        now = datetime.now(UTC)
        loaded = load_episodes(database_url, total, now)
        with running_server(database_url, args.out) as server, \
                httpx.Client(base_url=server.url, timeout=600) as client:
            out[str(total)] = {"loaded": loaded, "reports": measure_reports(
                client, token, now, sizes["report_requests"], rss=server.rss_mb)}
    return out


def _resources_phase(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    token = add_user(database_url, "bench-case-manager", "coordinator", "case-manager")
    loaded = load_directory(database_url, sizes["resources"])
    with running_server(database_url, args.out) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        return {"loaded": loaded, "search": measure_search(client, token, sizes["requests"])}


def _chain_phase(database_url: str, args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    """The plain SpiffWorkflow loop, the product's cycle and HTTP, on one diagram in one run."""
    log(f"chain: plain SpiffWorkflow loop, {sizes['cycles']} cycles and {sizes['starts']} starts")
    plain = measure_plain_loop(sizes["cycles"], sizes["starts"])
    log(f"chain: the product's engine cycle, {sizes['cycles']} cycles")
    product = measure_product_cycle(sizes["cycles"])
    admin = add_user(database_url, "bench-admin", "admin")
    nodes = api_nodes(args, database_url)
    log(f"chain: {nodes} API node(s)")
    with running_servers(database_url, args.out, nodes) as servers:
        with httpx.Client(base_url=servers[0].url, headers={"Authorization": f"Bearer {admin}"}) as client:
            client.post("/api/pathways", files=[("files", ("chain.bpmn", chain_bpmn().encode(),
                                                           "application/xml"))]).raise_for_status()
        http = measure_chain_http([server.url for server in servers], admin, clients=args.clients,
                                  instances=sizes["instances"], starts=sizes["http_starts"])
    http["api_nodes"] = nodes
    return {"plain_loop": plain, "product_cycle": product, "http": http, "ratios": ratios(http, plain, product)}


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def api_nodes(args: argparse.Namespace, database_url: str) -> int:
    """`--api-nodes`, or by default one `serve` process per core on PostgreSQL (the deployment's topology,
    docs/deployment.md) and one on SQLite (one process only)."""
    if is_sqlite(database_url):
        return 1
    if args.api_nodes is not None:
        return int(args.api_nodes)
    return len(os.sched_getaffinity(0)) or 1  # the cores this process may use, not the machine's


def _deploy_shipped(database_url: str) -> None:
    """The shipped pathways, so bulk rows have a pathway version to point at."""
    from carepath.api.bootstrap import deploy_directory, system_clock
    from carepath.engine.application import CarePath

    app = CarePath(Database(database_url), system_clock)
    try:
        deploy_directory(app, Path(carepath_pathways.__file__).parent)
    finally:
        app.db.dispose()


def _template_state(database_url: str) -> str:
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            return connection.scalar(select(Instance.state).where(Instance.pathway_key == KEY).limit(1)) or "{}"
    finally:
        db.dispose()


def _bulk_ids(database_url: str, limit: int = 20_000) -> list[str]:
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            return list(connection.scalars(select(Instance.id).where(Instance.business_key.startswith("bulk-"))
                                           .limit(limit)))
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
