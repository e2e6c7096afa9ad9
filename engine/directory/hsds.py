"""Reading HSDS 3.0 datasets into service objects shaped as `GET /services/{id}` answers them.

Three inputs: a JSON list of such services, a paged `GET /services` answer (`{"contents": [...], ...}`), and
a tabular data package (`datapackage.json` and CSV files), whose rows are joined into the same shape. Each
service comes with where it was found (`services.json item 3`, `services.csv row 4`) so that a bad one is
reported there. Everything here is bounded: the bytes, the services and the nesting depth.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PayloadTooLarge, ValidationFailed

# The tabular package's files by HSDS resource name, when datapackage.json does not say otherwise.
TABLE_FILES = {"service": "services.csv", "organization": "organizations.csv", "location": "locations.csv",
               "address": "addresses.csv", "service_at_location": "service_at_location.csv",
               "service_area": "service_areas.csv", "language": "languages.csv", "attribute": "attributes.csv",
               "taxonomy_term": "taxonomy_terms.csv", "schedule": "schedules.csv", "phone": "phones.csv"}


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = 50 * 1024 * 1024  # the file, or the package's files together
    max_services: int = 50_000
    max_depth: int = 16


@dataclass(frozen=True)
class ServiceInput:
    where: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class ImportProblem:
    where: str
    service_id: str | None
    reason: str

    def __str__(self) -> str:
        service = f" (service {self.service_id})" if self.service_id else ""
        return f"{self.where}{service}: {self.reason}"


def check_size(name: str, size: int, limits: ImportLimits) -> None:
    if size > limits.max_bytes:
        raise PayloadTooLarge(f"{name} is {size:,} bytes; a resource import takes at most {limits.max_bytes:,} "
                              "bytes (CAREPATH_RESOURCE_IMPORT_MAX_BYTES)")


def read_json(name: str, content: bytes, limits: ImportLimits) -> list[ServiceInput]:
    """The services of a JSON list or a paged answer. ValidationFailed when the file is not one of them."""
    check_size(name, len(content), limits)
    try:
        value = json.loads(content.decode("utf-8-sig"))
    except RecursionError:
        raise ValidationFailed(f"{name} is nested deeper than {limits.max_depth} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(f"{name} is not UTF-8 JSON: {exc}") from None
    _check_depth(name, value, limits.max_depth)
    if isinstance(value, dict) and isinstance(value.get("contents"), list):
        items, label = value["contents"], "contents item"
    elif isinstance(value, list):
        items, label = value, "item"
    elif isinstance(value, dict) and "id" in value and "name" in value:
        items, label = [value], "service"
    else:
        raise ValidationFailed(f"{name} holds neither a list of HSDS services nor a paged GET /services answer "
                               "(an object with 'contents')")
    _check_count(name, len(items), limits)
    return [ServiceInput(f"{name} {label} {number}", item if isinstance(item, dict) else {"_not_object": item})
            for number, item in enumerate(items, start=1)]


def read_tabular(files: Mapping[str, bytes], limits: ImportLimits) -> list[ServiceInput]:
    """The services of a tabular data package: `files` maps each file name to its bytes."""
    check_size("the data package", sum(len(c) for c in files.values()), limits)
    if "datapackage.json" not in files:
        raise ValidationFailed("the data package has no datapackage.json")
    paths = dict(TABLE_FILES)
    try:
        package = json.loads(files["datapackage.json"].decode("utf-8-sig"))
        for resource in package.get("resources", []):
            if isinstance(resource, dict) and resource.get("name") in paths and isinstance(resource.get("path"), str):
                paths[resource["name"]] = resource["path"].rsplit("/", 1)[-1]
    except (UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ValidationFailed(f"datapackage.json is not a data package descriptor: {exc}") from None
    if paths["service"] not in files:
        raise ValidationFailed(f"the data package has no {paths['service']}")
    tables = {name: _rows(path, files.get(path), limits) for name, path in paths.items()}
    _check_count(paths["service"], len(tables["service"]), limits)
    return _join(tables, paths["service"])


def _rows(name: str, content: bytes | None, limits: ImportLimits) -> list[dict[str, str]]:
    if content is None:
        return []
    try:
        reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline=""))
        rows = []
        for row in reader:
            rows.append({k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)
                         and isinstance(v, str)})
            if len(rows) > limits.max_services * 20:
                raise ValidationFailed(f"{name} has more than {limits.max_services * 20:,} rows")
        return rows
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{name} is not UTF-8: {exc}") from None
    except csv.Error as exc:
        raise ValidationFailed(f"{name} row {reader.line_num}: {exc}") from None


def _join(tables: dict[str, list[dict[str, str]]], services_file: str) -> list[ServiceInput]:
    by_id = {name: {row["id"]: row for row in rows if row.get("id")} for name, rows in tables.items()}
    addresses = _group(tables["address"], "location_id")
    terms = by_id["taxonomy_term"]
    linked_terms = defaultdict(list)
    for attribute in tables["attribute"]:
        if attribute.get("link_id") and attribute.get("taxonomy_term_id") in terms:
            linked_terms[attribute["link_id"]].append({"taxonomy_term": terms[attribute["taxonomy_term_id"]]})
    at_location = _group(tables["service_at_location"], "service_id")
    service_of_sal = {row["id"]: row.get("service_id") for row in tables["service_at_location"] if row.get("id")}
    schedules = _group(tables["schedule"], "service_id")
    for row in tables["schedule"]:
        owner = service_of_sal.get(row.get("service_at_location_id") or "")
        if not row.get("service_id") and owner:
            schedules[owner].append(row)
    areas, languages, phones = (_group(tables[t], "service_id") for t in ("service_area", "language", "phone"))
    inputs = []
    for number, row in enumerate(tables["service"], start=2):  # row 1 is the header
        service_id = row.get("id", "")
        locations = []
        for link in at_location.get(service_id, []):
            location = by_id["location"].get(link.get("location_id", ""))
            if location is not None:
                locations.append({"id": link.get("id"), "location": {
                    **location, "addresses": addresses.get(location["id"], [])}})
        service: dict[str, Any] = {
            **row, "organization": by_id["organization"].get(row.get("organization_id", "")),
            "service_at_locations": locations, "service_areas": areas.get(service_id, []),
            "languages": languages.get(service_id, []), "attributes": linked_terms.get(service_id, []),
            "schedules": schedules.get(service_id, []), "phones": phones.get(service_id, [])}
        inputs.append(ServiceInput(f"{services_file} row {number}", service))
    return inputs


def _group(rows: list[dict[str, str]], key: str) -> defaultdict[str, list[dict[str, str]]]:
    grouped: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row.get(key):
            grouped[row[key]].append(row)
    return grouped


def _check_count(name: str, count: int, limits: ImportLimits) -> None:
    if count > limits.max_services:
        raise PayloadTooLarge(f"{name} holds {count:,} services; a resource import takes at most "
                              f"{limits.max_services:,} (CAREPATH_RESOURCE_IMPORT_MAX_SERVICES)")


def _check_depth(name: str, value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValidationFailed(f"{name} is nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


@dataclass(frozen=True)
class ResourceFiles:
    """What an import reads, as the CLI or an upload hands it over: one JSON file, or a data package's files."""

    name: str
    json: bytes | None = None
    package: Mapping[str, bytes] | None = None

    def services(self, limits: ImportLimits) -> list[ServiceInput]:
        if self.package is not None:
            return read_tabular(self.package, limits)
        return read_json(self.name, self.json or b"", limits)
