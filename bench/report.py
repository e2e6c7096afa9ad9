"""Targets from the issue, judged on the measured figures, and the printed table."""

from __future__ import annotations

from typing import Any

WORKLIST_P95_TARGET_MS = 20.0
STATE_TARGET_BYTES = 20 * 1024
COMPLIANCE_P95_TARGET_MS = 1000.0  # issue 17: a year of 50,000 episodes within 1 s p95
WEB_WORKLIST_P95_TARGET_MS = 50.0
PAGE_WEIGHT_TARGET_BYTES = 100 * 1024
RESOURCE_SEARCH_P95_TARGET_MS = 50.0
CHAIN_COMPLETIONS_RATIO_TARGET = 1.0  # HTTP completions/s over the plain SpiffWorkflow loop's cycles/s
CHAIN_STARTS_RATIO_TARGET = 0.5
CHAIN_P99_TARGET_MS = {"postgresql": 500.0, "sqlite": 1000.0}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    judged: dict[str, Any] = {}
    if "http" in results:
        cycle = results["engine_cycle"]["cycles_per_second"]
        http = results["http"]["tasks_per_second"]
        judged["http_tasks_per_second_vs_engine_cycle"] = {"measured": http, "target": cycle, "met": http >= cycle}
    if "worklist" in results:
        largest = max(results["worklist"], key=int)
        worst = max(q["p95_ms"] for q in results["worklist"][largest].values())
        judged[f"worklist_p95_ms_at_{largest}_open_tasks"] = {
            "measured": worst, "target": WORKLIST_P95_TARGET_MS, "met": worst < WORKLIST_P95_TARGET_MS}
    if results.get("web_worklist"):
        judged.update(_web_worklist_targets(results["web_worklist"]))
    for run in results.get("timers", []):
        steady, drained = run["steady_lateness"]["p99_s"], run.get("burst_drained_seconds")
        judged[f"timer_lateness_p99_s_{run['workers']}_workers"] = {"measured": steady, "target": 1.0,
                                                                   "met": steady < 1.0}
        judged[f"timer_burst_{run['burst']}_drained_s_{run['workers']}_workers"] = {
            "measured": drained, "target": 60.0, "met": drained is not None and drained < 60.0}
    if "state" in results:
        shipped = results["state"]["by_pathway"].get("post-ed-follow-up", {})
        biggest = shipped.get("max_state_bytes", 0)
        judged["state_bytes_per_instance_shipped"] = {"measured": biggest, "target": STATE_TARGET_BYTES,
                                                      "met": 0 < biggest < STATE_TARGET_BYTES}
    if "memory" in results:
        memory = results["memory"]
        growth = memory["after_reading_instances_mb"] - memory["after_http_load_mb"]
        judged["memory_growth_mb_over_bulk_instances"] = {"measured": round(growth, 1), "target": 50.0,
                                                          "met": growth < 50.0}
    for total, run in results.get("compliance", {}).items():
        year = run["reports"]["year"]["p95_ms"]
        judged[f"compliance_year_p95_ms_at_{total}_episodes"] = {"measured": year, "target": COMPLIANCE_P95_TARGET_MS,
                                                                "met": year < COMPLIANCE_P95_TARGET_MS}
    if "resources" in results:
        run = results["resources"]
        worst = max(q["p95_ms"] for q in run["search"].values())
        judged[f"resource_search_p95_ms_at_{run['loaded']['services']}_services"] = {
            "measured": worst, "target": RESOURCE_SEARCH_P95_TARGET_MS, "met": worst < RESOURCE_SEARCH_P95_TARGET_MS}
    if "soak" in results:
        judged["soak_invariants_hold"] = {"measured": results["soak"]["passed"], "target": True,
                                          "met": results["soak"]["passed"]}
    if "chain" in results:
        judged.update(_chain_targets(results["chain"], results.get("database", "sqlite")))
    return judged


def _chain_targets(run: dict[str, Any], dialect: str) -> dict[str, Any]:
    ratios, p99 = run["ratios"], run["http"]["complete_latency"]["p99_ms"]
    limit = CHAIN_P99_TARGET_MS.get(dialect, CHAIN_P99_TARGET_MS["sqlite"])
    completions = ratios["completions_vs_plain_loop"]
    return {
        "chain_completions_vs_plain_loop": {"measured": completions, "target": CHAIN_COMPLETIONS_RATIO_TARGET,
                                            "met": completions >= CHAIN_COMPLETIONS_RATIO_TARGET},
        "chain_starts_vs_plain_loop": {"measured": ratios["starts_vs_plain_loop"], "target": CHAIN_STARTS_RATIO_TARGET,
                                       "met": ratios["starts_vs_plain_loop"] >= CHAIN_STARTS_RATIO_TARGET},
        f"chain_complete_p99_ms_{dialect}": {"measured": p99, "target": limit, "met": p99 < limit},
    }


def _web_worklist_targets(runs: dict[str, Any]) -> dict[str, Any]:
    largest = max(runs, key=int)
    pages = [q for name, q in runs[largest].items() if name != "page weight" and not name.startswith("reference")]
    worst = max(q["p95_ms"] for q in pages)
    weight = runs[largest]["page weight"]["total_bytes"]
    return {f"web_worklist_page_p95_ms_at_{largest}_open_tasks": {
                "measured": worst, "target": WEB_WORKLIST_P95_TARGET_MS, "met": worst <= WEB_WORKLIST_P95_TARGET_MS},
            "web_worklist_page_weight_bytes": {"measured": weight, "target": PAGE_WEIGHT_TARGET_BYTES,
                                               "met": weight < PAGE_WEIGHT_TARGET_BYTES}}


def _render_web_worklist(runs: dict[str, Any]) -> list[str]:
    lines = []
    for total, cases in runs.items():
        lines.append(f"  web worklist page at {int(total):,} open tasks (p50 / p95 / p99 ms, rows, HTML bytes):")
        for name, q in cases.items():
            if name != "page weight":
                lines.append(f"    {name:<34} {q['p50_ms']:>7} {q['p95_ms']:>7} {q['p99_ms']:>7} {q['rows']:>4} "
                             f"{q['html_bytes']:>7}")
        weight = cases["page weight"]
        lines.append(f"    page weight on the wire: {weight['total_bytes']:,} B (HTML {weight['html_bytes']:,} B + "
                     + ", ".join(f"{path.split('?')[0]} {size:,} B" for path, size in weight["asset_bytes"].items())
                     + f"; uncompressed {weight.get('uncompressed_bytes', 0):,} B)")
    return lines


def render(results: dict[str, Any]) -> str:
    lines = [f"CarePath benchmark ({results.get('database', 'engine only')}, quick={results['quick']})"]
    if "engine_cycle" in results:
        cycle = results["engine_cycle"]
        lines.append(f"  bare engine cycle: {cycle['cycles_per_second']}/s ({cycle['mean_cycle_us']} us per cycle)")
    for total, queries in results.get("worklist", {}).items():
        lines.append(f"  worklist at {int(total):,} open tasks (p50 / p95 / p99 ms, rows on page, total):")
        for name, q in queries.items():
            lines.append(f"    {name:<30} {q['p50_ms']:>7} {q['p95_ms']:>7} {q['p99_ms']:>7} {q['items']:>5} "
                         f"{q['total']:>7}")
    lines += _render_web_worklist(results.get("web_worklist", {}))
    for run in results.get("timers", []):
        steady, burst = run["steady_lateness"], run["burst_lateness"]
        lines.append(f"  timers, {run['workers']} worker(s), {run['pending']:,} pending: steady lateness p50/p99 "
                     f"{steady['p50_s']}/{steady['p99_s']} s; burst of {run['burst']:,} drained in "
                     f"{run.get('burst_drained_seconds')} s ({run.get('burst_fired_per_second')}/s), "
                     f"burst lateness p50/p99 {burst['p50_s']}/{burst['p99_s']} s")
    if "http" in results:
        http = results["http"]
        lines.append(f"  HTTP, {http['clients']} clients: {http['instances_per_second']} starts/s "
                     f"(p50/p95/p99 {_lat(http['start_latency'])}), {http['tasks_per_second']} completions/s "
                     f"(p50/p95/p99 {_lat(http['complete_latency'])})")
        for key, size in results["state"]["by_pathway"].items():
            lines.append(f"  state {key}: avg {size['avg_state_bytes']} B, max {size['max_state_bytes']} B")
        memory = results["memory"]
        lines.append("  server RSS MB: " + ", ".join(f"{k} {v}" for k, v in memory.items()))
    audit = results.get("audit")
    if audit:
        lines.append(f"  audit trail: {audit['events']:,} chained history rows (loaded in {audit['load_seconds']} s)")
        for export in audit["exports"]:
            lines.append(f"    export {export['format']}: {export['lines']:,} lines, {export['megabytes']} MB in "
                         f"{export['seconds']} s ({export['rows_per_second']:,}/s, first byte "
                         f"{export['first_byte_s']} s); server RSS {export['server_rss_mb_before']} -> peak "
                         f"{export['server_rss_mb_peak']} MB")
        read = audit["recording_a_read"]
        lines.append(f"    recording one read of a record: p50 {read['p50_ms']} ms, p95 {read['p95_ms']} ms")
    for total, run in results.get("compliance", {}).items():
        loaded = run["loaded"]
        lines.append(f"  compliance report at {int(total):,} episodes ({loaded['events']:,} history rows, loaded in "
                     f"{loaded['load_seconds']} s): p50 / p95 ms, episodes decided, misses, bytes")
        for name, q in run["reports"].items():
            if name == "server_rss_mb":
                continue
            lines.append(f"    {name:<16} {q['p50_ms']:>9} {q['p95_ms']:>9} {q.get('decided', ''):>7} "
                         f"{q.get('misses', ''):>6} {q['bytes']:>9}")
        memory = run["reports"].get("server_rss_mb")
        if memory:
            lines.append(f"    server RSS MB: before {memory['before']}, peak {memory['peak']}, "
                         f"after {memory['after']}")
    lines += _render_resources(results.get("resources"))
    lines += _render_chain(results.get("chain"))
    lines += _render_soak(results.get("soak"))
    for name, target in results["targets"].items():
        lines.append(f"  target {name}: {target['measured']} vs {target['target']} -> "
                     f"{'met' if target['met'] else 'MISSED'}")
    return "\n".join(lines)


def _render_resources(run: dict[str, Any] | None) -> list[str]:
    if not run:
        return []
    loaded = run["loaded"]
    lines = [f"  resource directory, {loaded['services']:,} services ({loaded['bytes']:,} B of HSDS JSON imported in "
             f"{loaded['import_seconds']} s, {loaded['services_per_second']}/s): p50 / p95 / p99 ms, page, total"]
    for name, q in run["search"].items():
        lines.append(f"    {name:<34} {q['p50_ms']:>7} {q['p95_ms']:>7} {q['p99_ms']:>7} {q['items']:>4} "
                     f"{q['total']:>6}")
    return lines


def _render_soak(run: dict[str, Any] | None) -> list[str]:
    if not run:
        return []
    lines = [f"  soak: {run['serves']} serve + {run['workers']} worker processes, {run['clients']} clients, "
             f"{run['kills']} SIGKILLs in {run['load_seconds']} s: {run['episodes_started']} episodes, "
             f"{run['completions_answered_200']} completions answered 200 "
             f"(+{run['completions_answered_409_after_a_lost_answer']} 409 after a lost answer), "
             f"{run['messages_accepted']} messages, {run['requests_retried_after_a_kill']} requests retried"]
    for name, check in run["invariants"].items():
        lines.append(f"    {name:<32} {'ok' if check['ok'] else 'BROKEN'} {check}")
    lines += [f"    client error: {e}" for e in run["client_errors"]]
    lines += [f"    restart failure: {e}" for e in run.get("restart_failures", [])]
    return lines


def _render_chain(run: dict[str, Any] | None) -> list[str]:
    if not run:
        return []
    plain, product, http, ratios = run["plain_loop"], run["product_cycle"], run["http"], run["ratios"]
    return [f"  {plain['tasks']}-task chain with boundary timers:",
            f"    plain SpiffWorkflow loop (spec in every save): {plain['cycles_per_second']} cycles/s, "
            f"{plain['starts_per_second']} starts/s, {plain['state_bytes_mid_chain']:,} B state",
            f"    the product's cycle (spec-free state): {product['cycles_per_second']} cycles/s, "
            f"{product['state_bytes_mid_chain']:,} B state",
            f"    HTTP, {http.get('api_nodes', 1)} API node(s), {http['clients']} clients: "
            f"{http['tasks_per_second']} completions/s (p50/p95/p99 "
            f"{_lat(http['complete_latency'])}), {http['instances_per_second']} starts/s (p50/p95/p99 "
            f"{_lat(http['start_latency'])})",
            f"    ratios: completions {ratios['completions_vs_plain_loop']}x the plain loop, "
            f"{ratios['completions_vs_product_cycle']}x the product's cycle; starts "
            f"{ratios['starts_vs_plain_loop']}x the plain loop"]


def _lat(lat: dict[str, Any]) -> str:
    return f"{lat['p50_ms']}/{lat['p95_ms']}/{lat['p99_ms']} ms"
