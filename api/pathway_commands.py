"""The authoring commands: `carepath validate` and `carepath simulate`, offline.

Both read the named files plus what they need from the same folder (DMN decisions, called
processes, forms), check them with the validator a deploy uses (`check_package`), and never create a
database. `validate` reads the configured database only if it already exists and answers, to check
lanes against the groups users belong to and calls against deployed pathways; otherwise it says the
lanes were not checked against users. `simulate` never opens a database.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.calendars import is_duration
from carepath.engine.definitions import (
    Companion,
    ParsedProcess,
    SourceFile,
    find_companions,
    read_example_data,
    sidecar_path,
)
from carepath.engine.errors import DiagramInvalid, Problem, ValidationFailed
from carepath.engine.forms import form_problems
from carepath.engine.identity import group_for_lane
from carepath.engine.persistence.database import Database, is_sqlite
from carepath.engine.sandbox import shutdown_script_pool
from carepath.engine.sandbox.spiff import make_script_engine
from carepath.engine.usecases.deploy import check_package, deployed_keys, stored_spec
from carepath.engine.usecases.simulate import Advance, Choose, Send, SimulationStep, check_steps, simulate
from carepath.engine.usecases.users import known_groups

from .settings import Settings
from .simulation_text import as_json, as_text

USAGE_ERROR = 2


class UsageError(Exception):
    """A command-line argument that cannot work (exit 2), said in words."""


# -- validate ----------------------------------------------------------------------------------

def validate(paths: list[Path], settings: Settings, *, offline: bool) -> int:
    sources, companions, display = _package_files(paths)
    config = settings.engine_config()
    groups, deployed, unchecked = _installation(settings, offline)
    try:
        package = check_package(config, sources, known_process_ids=deployed, known_groups=groups)
        for proc in package.processes:
            stored_spec(proc)  # a deploy refuses what it cannot store between steps
    except DiagramInvalid as exc:
        for companion in companions:
            print(f"note: read {companion.path} ({companion.provides}, found beside)", file=sys.stderr)
        print_problems(exc, display)
        return 1
    for companion in companions:
        print(f"found beside: {companion.path} ({companion.provides})")
    for warning in package.warnings:
        print(f"warning: {_located(warning, display)}{warning.message}")
    for condition in package.translated_conditions:
        where = Problem("", condition.file, condition.line, condition.element_id)
        print(f"expression: {_located(where, display)}{condition.original} -> {condition.translated}")
    for mapping in package.io_mappings:
        where = Problem("", mapping.file, mapping.line, mapping.element_id)
        print(f"{mapping.direction} parameter: {_located(where, display)}{mapping.name} = {mapping.shown}")
    for proc in package.processes:
        print(f"ok: {proc.key} ({proc.family}) from {display.get(proc.source_file, proc.source_file)}")
        for lane in proc.lanes:
            print(f"  lane '{lane}' -> group {group_for_lane(lane, config.lane_groups)}")
    if unchecked and any(proc.lanes for proc in package.processes):
        print(f"note: lanes were not checked against users ({unchecked})")
    return 0


def _installation(settings: Settings, offline: bool) -> tuple[set[str] | None, set[str], str | None]:
    """The groups users belong to and the deployed pathway keys, from a database that already exists;
    otherwise (None, nothing, why not). Nothing is created or migrated."""
    if offline:
        return None, set(), "--offline"
    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    if is_sqlite(settings.database_url):
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            return None, set(), f"no CarePath database at {shown}"
    elif "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": "5"})
    db = Database(url.render_as_string(hide_password=False))
    try:
        app = CarePath(db, lambda: datetime.now(UTC), settings.engine_config())
        return known_groups(app), deployed_keys(app), None
    except SQLAlchemyError as exc:
        return None, set(), f"the database at {shown} could not be read: {type(exc).__name__}"
    finally:
        db.dispose()


# -- simulate ----------------------------------------------------------------------------------

def simulate_command(args: argparse.Namespace, settings: Settings) -> int:
    sources, companions, display = _package_files([args.file])
    config = settings.engine_config()
    try:
        processes = check_package(config, sources).processes
    except DiagramInvalid as exc:
        print_problems(exc, display)
        return 1
    process = _process(processes, args.file.name, args.process)
    data, data_source = _start_data(args)
    misfit = form_problems(process.start_data, data)
    if misfit:  # a server would refuse this start (422)
        print_problems(ValidationFailed(f"the start data ({data_source}) does not fit what {process.key} needs to "
                                        "start", misfit), display)
        return 1
    start = _start_time(args.start, config, process)
    try:
        steps = check_steps(process, args.steps)
    except ValidationFailed as exc:
        raise UsageError(f"--choose: {exc.message}") from None
    script_engine = make_script_engine(script_timeout_s=config.script_timeout_s,
                                       script_memory_mb=config.script_memory_mb)
    try:
        result = simulate(process, data, steps, start=start, config=config, script_engine=script_engine)
    finally:
        shutdown_script_pool()  # the sandbox's worker processes must not outlive the command
    if args.json:
        print(as_json(result, [str(args.file), *(str(c.path) for c in companions)]))
    else:
        print(as_text(result, _header(process, args.file, companions), data_source))
    if result.stopped is not None:
        print(f"error: the simulation stopped: {result.stopped}", file=sys.stderr)
        for problem in result.problems:
            print(f"  {_located(problem, display)}{problem.message}", file=sys.stderr)
        return 1
    if result.status == "incident":
        incident = next((m.incident for m in reversed(result.moments) if m.incident is not None), None)
        where = f" at {incident.element_id}" if incident is not None and incident.element_id else ""
        print(f"error: the pathway stopped with an incident{where} (see above); production would hold the instance "
              "there", file=sys.stderr)
        return 1
    return 0


def story_step(option: str, value: str) -> SimulationStep:
    """One --choose TASK=DATA, --message NAME[=DATA] or --advance DURATION, as argparse reads it."""
    if option == "advance":
        if not is_duration(value.strip()):
            raise argparse.ArgumentTypeError(f"'{value}' is not a duration such as P3D, PT4H or P2BD (business days)")
        return Advance(value.strip())
    name, _, raw = value.partition("=")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"'{value}' names no {'task' if option == 'choose' else 'message'}; "
                                         f"write {'TASK' if option == 'choose' else 'NAME'}='{{\"field\": ...}}'")
    data = json_object(raw, f"the data for '{name.strip()}'") if raw.strip() else {}
    return Choose(name.strip(), data) if option == "choose" else Send(name.strip(), data)


def json_object(raw: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{what} is not valid JSON ({exc}): {raw}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{what} must be a JSON object such as '{{\"reached\": true}}', not {raw}")
    return value


def _process(processes: list[ParsedProcess], file_name: str, wanted: str | None) -> ParsedProcess:
    own = [p for p in processes if p.source_file == file_name]
    if wanted is not None:
        found = next((p for p in processes if p.key == wanted), None)
        if found is None:
            raise UsageError(f"--process: no executable process '{wanted}'; there are: "
                             f"{', '.join(p.key for p in processes)}")
        return found
    called = {key for p in own for key in p.subprocess_specs}
    starts = [p for p in own if p.key not in called]
    if len(starts) != 1:
        raise UsageError(f"{file_name} has {len(starts)} processes to start ({', '.join(p.key for p in starts)}); "
                         "choose one with --process")
    return starts[0]


def _start_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if args.data is not None:
        return args.data, "--data"
    example = read_example_data(args.file)
    if example is None:
        print(f"note: no start data given: starting with none ({{}}). Give --data '{{...}}', or document the "
              f"pathway's example start data in {sidecar_path(args.file)} as {{\"example_data\": {{...}}}}",
              file=sys.stderr)
        return {}, "none given (no --data, no example_data)"
    return example, f"the pathway's example data, {sidecar_path(args.file).name}"


def _start_time(value: datetime | None, config: EngineConfig, process: ParsedProcess) -> datetime:
    """--start, a naive time read in the pathway's zone; now (to the minute) when not given."""
    if value is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    context = config.calendars.context(process.time_settings.get("calendar"), process.time_settings.get("timezone"))
    return context.localize(value).astimezone(UTC)


def _header(process: ParsedProcess, file: Path, companions: list[Companion]) -> list[str]:
    lines = [f"Pathway: {process.name or process.key} ({process.key}), from {file}"]
    return lines + [f"Also read: {c.path} ({c.provides}, found beside it)" for c in companions]


# -- shared ------------------------------------------------------------------------------------

def _package_files(paths: list[Path]) -> tuple[list[SourceFile], list[Companion], dict[str, str]]:
    """The named files and the ones found beside them, and the path to show for each file name."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValidationFailed(f"no such file: {', '.join(missing)}")
    companions, unreadable = find_companions(paths)
    for note in unreadable:
        print(f"note: {_located(note, {})}{note.message}", file=sys.stderr)
    every = [*paths, *(c.path for c in companions)]
    return [SourceFile(p.name, p.read_bytes()) for p in every], companions, {p.name: str(p) for p in every}


def print_problems(exc: ValidationFailed, display: dict[str, str]) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {_located(problem, display)}{problem.message}", file=sys.stderr)
    for warning in exc.warnings if isinstance(exc, DiagramInvalid) else []:
        print(f"warning: {_located(warning, display)}{warning.message}", file=sys.stderr)


def _located(problem: Problem, display: dict[str, str]) -> str:
    file = display.get(problem.file, problem.file) if problem.file else None
    parts = [part for part in (file, f"line {problem.line}" if problem.line else None, problem.element_id) if part]
    return f"{', '.join(parts)}: " if parts else ""
