"""`carepath resources import PATH`: reads an HSDS 3.0 dataset from disk and hands it to the import use case."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carepath.engine.directory import ImportLimits, ResourceFiles
from carepath.engine.directory.hsds import check_size
from carepath.engine.errors import ValidationFailed
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.resources import import_resources

from .bootstrap import build_engine
from .settings import Settings


def add_resources_parser(sub: Any) -> None:
    resources = sub.add_parser("resources", help="the community resource directory (docs/resources.md)")
    resources_sub = resources.add_subparsers(dest="resources_command", required=True)
    load = resources_sub.add_parser(
        "import", help="load an HSDS 3.0 dataset: a JSON file (a list of services, or a paged GET /services "
        "answer) or a tabular data package folder (datapackage.json and CSV files); re-importing updates in place")
    load.add_argument("path", type=Path)
    load.add_argument("--every", type=int, default=500, metavar="N", help="show progress every N services")


def resources_command(args: argparse.Namespace, settings: Settings) -> int:
    files = read_dataset(args.path, settings.engine_config().resource_import.max_bytes)
    engine = build_engine(settings)

    def progress(done: int, total: int) -> None:
        print(f"{done} of {total} services", file=sys.stderr, flush=True)

    result = import_resources(engine, SYSTEM, files, progress=progress, every=max(1, args.every))
    for problem in result.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"{result.source}: {result.created} created, {result.updated} updated, {result.skipped} skipped")
    return 1 if result.problems else 0


def read_dataset(path: Path, max_bytes: int) -> ResourceFiles:
    """The file, or the package folder's files, read only after their size is checked against the bound."""
    if path.is_dir():
        found = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in (".json", ".csv")]
        check_size(f"the data package {path}", sum(p.stat().st_size for p in found), ImportLimits(max_bytes=max_bytes))
        return ResourceFiles(path.name, package={p.name: p.read_bytes() for p in found})
    if not path.is_file():
        raise ValidationFailed(f"{path} is neither a JSON file nor a data package folder")
    check_size(str(path), path.stat().st_size, ImportLimits(max_bytes=max_bytes))
    return ResourceFiles(path.name, json=path.read_bytes())

