"""Resource directory search latency: generated HSDS services imported through the import use case, then
every filter of GET /api/resources asked over HTTP (docs/resources.md, docs/performance.md).

The directory is shaped like a county's 211 data, not uniform: a few hundred zip codes, services spread
over the five SDOH domains and others that are in none, most in English, some in Spanish and a few other
languages, weekly opening hours of different shapes, and organizations that run several services."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx

from carepath.api.bootstrap import system_clock
from carepath.engine.application import CarePath
from carepath.engine.directory import ResourceFiles
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.resources import import_resources

from .common import log, percentiles, timed_gets

TERMS = [("BD-1800.2000", "Food Pantries"), ("BD-5000.8300", "Soup Kitchens"), (None, "Free Meals"),
         ("BH-1800.8500", "Homeless Shelter"), ("BH-3800.7000", "Rent Payment Assistance"), (None, "Help Find Housing"),
         ("BT-4500.6500-500", "Medical Appointments Transportation"), (None, "Bus Passes"),
         ("BV-8900.9300-180", "Electric Service Payment Assistance"), (None, "Help Pay for Utilities"),
         ("RP-1500.1400-200", "Domestic Violence Hotlines"), (None, "Safety Planning"),
         ("LN-1500", "Health Screening"), ("ND-6500", "Job Training"), ("PH-1000", "Counseling")]
WORDS = ["community", "family", "senior", "youth", "county", "neighborhood", "emergency", "help", "center",
         "program", "outreach", "network", "alliance", "services", "project", "hope", "unity", "bridge"]
LANGUAGES = [("en", "English", 0.95), ("es", "Spanish", 0.35), ("vi", "Vietnamese", 0.05), ("zh", "Chinese", 0.05),
             ("ht", "Haitian Creole", 0.03)]
DAYS = ["MO,TU,WE,TH,FR", "MO,WE,FR", "TU,TH", "SA", "MO,TU,WE,TH,FR,SA,SU"]
HOURS = [("09:00", "17:00"), ("08:00", "12:00"), ("13:00", "19:00"), ("19:00", "07:00"), ("00:00", "23:59")]
ZIPS = [f"{10000 + n * 37:05d}" for n in range(300)]

# (name, query parameters): every filter, alone and combined the way a case manager combines them.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("all, first page", {}),
    ("domain=food", {"domain": "food"}),
    ("zip=", {"zip": ZIPS[42]}),
    ("domain=food, zip=", {"domain": "food", "zip": ZIPS[42]}),
    ("q=one word", {"q": "outreach"}),
    ("q=two words, domain", {"q": "family center", "domain": "housing"}),
    ("language=vi", {"language": "vi"}),
    ("language=Spanish, domain, zip", {"language": "Spanish", "domain": "transportation", "zip": ZIPS[7]}),
    ("open_now", {"open_now": "true"}),
    ("open_now, domain, zip", {"open_now": "true", "domain": "utilities", "zip": ZIPS[100]}),
    ("q=no match", {"q": "zzzz"}),
    ("page 20", {"domain": "food", "offset": 400}),
]


def generated_services(total: int, seed: int = 15) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    services = []
    for n in range(total):
        org = rng.randrange(max(1, total // 5))
        zip_code = rng.choice(ZIPS)
        term_code, term_name = rng.choice(TERMS)
        byday, (opens, closes) = rng.choice(DAYS), rng.choice(HOURS)
        title = " ".join(rng.sample(WORDS, 3)).title()
        services.append({
            "id": f"bench-svc-{n}", "name": f"{title} {term_name} {n}", "status": "active",
            "description": f"{term_name} for the {rng.choice(WORDS)} {rng.choice(WORDS)} of the county.",
            "organization": {"id": f"bench-org-{org}", "name": f"{rng.choice(WORDS).title()} Organization {org}"},
            "service_at_locations": [{"id": f"bench-sal-{n}", "location": {
                "id": f"bench-loc-{n}", "name": f"Site {n}", "addresses": [{
                    "id": f"bench-addr-{n}", "address_1": f"{n} Main Street", "city": "Benchville",
                    "state_province": "BV", "postal_code": zip_code, "country": "US", "address_type": "physical"}]}}],
            "service_areas": [{"id": f"bench-area-{n}", "name": ", ".join(rng.sample(ZIPS, 3))}],
            "languages": [{"id": f"bench-lang-{n}-{code}", "code": code, "name": name}
                          for code, name, share in LANGUAGES if rng.random() < share],
            "attributes": [{"id": f"bench-attr-{n}", "taxonomy_term": {
                "id": f"bench-term-{term_name}", "code": term_code, "name": term_name}}],
            "schedules": [{"id": f"bench-sched-{n}", "freq": "WEEKLY", "byday": byday, "opens_at": opens,
                           "closes_at": closes}]})
    return services


def load_directory(database_url: str, total: int) -> dict[str, Any]:
    app = CarePath(Database(database_url), system_clock)
    try:
        content = json.dumps(generated_services(total)).encode()
        started = time.perf_counter()
        result = import_resources(app, SYSTEM, ResourceFiles("bench-directory.json", json=content),
                                  progress=lambda done, all_: log(f"resources: {done:,} of {all_:,} imported"),
                                  every=2000)
        seconds = time.perf_counter() - started
        if app.db.dialect == "postgresql":
            with app.db.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
    finally:
        app.db.dispose()
    return {"services": result.created + result.updated, "skipped": result.skipped, "bytes": len(content),
            "import_seconds": round(seconds, 1), "services_per_second": round(total / seconds)}


def measure_search(client: httpx.Client, token: str, requests: int) -> dict[str, Any]:
    """p50/p95/p99 per query, with the page size and total each answered (a fast empty answer shows)."""
    results: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    for name, params in QUERIES:
        first, samples = timed_gets(client, "/api/resources", requests, params={"limit": 20, **params},
                                    headers=headers)
        body = first.json()
        results[name] = {**percentiles(samples), "items": len(body["items"]), "total": body["total"]}
        log(f"resources {name}: p95 {results[name]['p95_ms']} ms ({body['total']} found)")
    return results
