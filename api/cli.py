"""The `carepath` command line. Every command brings the schema up to date first."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.errors import CarePathError, ValidationFailed
from carepath.engine.identity import SYSTEM, Role
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import is_sqlite

from .bootstrap import build_engine
from .history_commands import add_audit_parser, audit_command
from .inbox_worker import PG_ROUTING_THREADS
from .partner_commands import add_partners_parser, partners_command
from .pathway_commands import USAGE_ERROR, UsageError, json_object, simulate_command, story_step, validate
from .resource_commands import add_resources_parser, resources_command
from .settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carepath", description="CarePath care pathway orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API and the timer scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--mllp-port", type=int, default=None,
                       help="also listen for HL7 v2 over MLLP on this port (one listener, whatever --workers says)")
    serve.add_argument("--mllp-host", default="127.0.0.1", help="the address the MLLP listener binds")
    mllp = sub.add_parser("mllp", help="listen for HL7 v2 ADT over MLLP and process the inbox (docs/interop.md)")
    mllp.add_argument("--port", type=int, required=True, help="the TCP port (2575 is usual)")
    mllp.add_argument("--host", default="127.0.0.1", help="the address to bind (default: loopback only)")
    mllp.add_argument("--routing-processes", type=int, default=None, metavar="N",
                      help="PostgreSQL: route the inbox in N processes of its own beside the listener (default 1); "
                      "0: the listener only stores and acknowledges, `carepath worker` routes. SQLite: not "
                      "taken, the listener routes on a thread of its own")
    mllp.add_argument("--routing-threads", type=int, default=PG_ROUTING_THREADS, metavar="T",
                      help=f"threads per routing process (default {PG_ROUTING_THREADS})")
    worker = sub.add_parser("worker", help="run the timer scheduler and route the inbox (for larger deployments)")
    worker.add_argument("--routing-threads", type=int, default=PG_ROUTING_THREADS, metavar="T",
                        help=f"PostgreSQL: threads routing the inbox as messages arrive (default "
                        f"{PG_ROUTING_THREADS}); SQLite: only the scheduler's sweep routes")
    inbox_worker = sub.add_parser("inbox-worker", help="only route the inbox as messages arrive (PostgreSQL; "
                                  "`carepath mllp` starts these itself)")
    inbox_worker.add_argument("--threads", type=int, default=PG_ROUTING_THREADS)
    inbox_worker.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N "
                              "(the listener starts its routing processes with 10: acknowledgements come first)")
    inbox_worker.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current", "project-measures"],
                    help="project-measures: write the measure standing of every episode without a current one "
                    "(after the upgrade that added it; the compliance report evaluates those live until then)")
    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user and print its API token on the last line")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--group", action="append", default=[], help="group membership (repeatable)")
    add.add_argument("--expires-days", type=int, default=None, help="the token expires after N days")
    token = user_sub.add_parser("token", help="issue a new API token for an existing user (printed last)")
    token.add_argument("name")
    token.add_argument("--expires-days", type=int, default=None, help="the token expires after N days")
    deactivate = user_sub.add_parser("deactivate", help="revoke a user's tokens and release their tasks")
    deactivate.add_argument("name")
    password = user_sub.add_parser("password", help="set the user's web sign-in password, read from standard "
                                   "input (asked twice, not shown, on a terminal)")
    password.add_argument("name")
    validate = sub.add_parser("validate", help="check BPMN/DMN files as a deploy would, without a server "
                              "(DMN files and called processes beside them are found); exit 1 on any error")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument("--offline", action="store_true",
                          help="do not read the configured database (users' groups, deployed pathways)")
    deploy = sub.add_parser("deploy", help="deploy BPMN/DMN files as one package")
    deploy.add_argument("files", nargs="+", type=Path)
    _simulate_parser(sub)
    add_audit_parser(sub)
    add_resources_parser(sub)
    add_partners_parser(sub)
    render = sub.add_parser("render", help="draw a BPMN diagram as a self-contained SVG (from its layout)")
    render.add_argument("file", type=Path, help="the .bpmn file")
    render.add_argument("-o", "--output", type=Path, help="write the SVG here (default: standard output)")
    render.add_argument("--highlight", action="append", default=[], metavar="ELEMENT=KIND",
                        help="highlight a BPMN element: KIND is current, done, failed, late or fired (repeatable)")
    docs = sub.add_parser("docs", help="print generated documentation (no database needed)")
    docs.add_argument("topic", choices=["rules"], help="rules: who may do what (docs/state-machine.md)")
    return parser


def _simulate_parser(sub: Any) -> None:
    simulate = sub.add_parser(
        "simulate", help="walk a pathway with no server and no database and print what happens",
        description="Walk a pathway with no server and no database. --choose, --message and --advance are "
                    "taken in the order given: complete a ready task, deliver a message the pathway waits "
                    "for, or move the clock (firing timers and deadline alerts in due order).")
    simulate.add_argument("file", type=Path, help="the pathway's .bpmn file (DMN files beside it are found)")
    simulate.add_argument("--data", type=_start_data, help="start data, a JSON object (default: the example_data "
                          "of the <name>.pathway.json file beside the BPMN)")
    simulate.add_argument("--choose", action=_StoryStep, metavar="TASK=DATA",
                          help="complete the ready user task TASK (BPMN id or name) with form data DATA (JSON)")
    simulate.add_argument("--message", action=_StoryStep, metavar="NAME[=DATA]",
                          help="deliver message NAME (optional JSON payload) that the pathway waits for")
    simulate.add_argument("--advance", action=_StoryStep, metavar="DURATION",
                          help="move the clock by an ISO 8601 duration (P3D, PT4H) or business days (P2BD)")
    simulate.add_argument("--start", type=_start_time, help="when the pathway starts, ISO 8601 (a time without "
                          "offset is in the pathway's time zone); default: now")
    simulate.add_argument("--process", help="the process to start, when the file has several")
    simulate.add_argument("--json", action="store_true", help="print JSON instead of text")
    simulate.set_defaults(steps=[])


class _StoryStep(argparse.Action):
    """--choose, --message and --advance go into one list, in the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        try:
            step = story_step(self.dest, str(values))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        namespace.steps = [*namespace.steps, step]


def _start_data(raw: str) -> dict[str, Any]:
    return json_object(raw, "--data")


def _start_time(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{raw}' is not an ISO 8601 date-time such as 2026-03-06T09:00 or "
                                         "2026-03-06T09:00-05:00") from None


HIGHLIGHTS = ("current", "done", "failed", "late", "fired")


def _render(args: argparse.Namespace) -> int:
    from carepath.engine.render import DIAGRAM_SUFFIXES, render_svg, unknown_elements

    highlights = {}
    for item in args.highlight:
        element, _, kind = item.partition("=")
        if not element or kind not in HIGHLIGHTS:
            print(f"error: --highlight '{item}' must be ELEMENT=KIND with KIND one of {', '.join(HIGHLIGHTS)}",
                  file=sys.stderr)
            return USAGE_ERROR
        highlights[element] = kind
    if not args.file.name.lower().endswith(DIAGRAM_SUFFIXES):
        kind = "a DMN decision file, which has no diagram to draw" if args.file.name.lower().endswith(".dmn") \
            else "not a .bpmn file"
        raise UsageError(f"render draws BPMN diagrams (.bpmn, .bpmn20.xml, .xml); {args.file} is {kind}")
    try:
        content = args.file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    files = [SourceFile(args.file.name, content)]
    unknown = unknown_elements(files, highlights)
    if unknown:
        raise UsageError(f"--highlight: {', '.join(repr(e) for e in unknown)} "
                         f"{'is' if len(unknown) == 1 else 'are'} not in the diagram {args.file}; "
                         "give the BPMN id of an element it draws")
    svg = render_svg(files, highlights=highlights, title=args.file.stem)
    if args.output is None:
        sys.stdout.write(svg)
    else:
        args.output.write_text(svg, encoding="utf-8")
    return 0


QUIET_LOGGERS = ("alembic", "spiff", "apscheduler")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:  # one line per engine step or migration check is noise to an operator
        logging.getLogger(name).setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except PydanticValidationError as exc:  # a CAREPATH_ setting that cannot work
        _print_settings_errors(exc)
        return USAGE_ERROR
    try:
        return _dispatch(args, settings)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except CarePathError as exc:
        _print_error(exc)
        return 1
    except BrokenPipeError:  # the output was piped into `head` or similar, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "validate":
        return validate(args.files, settings, offline=args.offline)
    if args.command == "simulate":
        return simulate_command(args, settings)
    if args.command == "render":
        return _render(args)
    if args.command == "docs":
        from carepath.engine.rules import render_markdown

        print(render_markdown(), end="")
        return 0
    if args.command == "audit":
        return audit_command(args, settings)
    if args.command == "resources":
        return resources_command(args, settings)
    if args.command == "partners":
        return partners_command(args, settings)
    engine = build_engine(settings)
    if args.command == "db":
        if args.action == "current":
            print(migrate.current_revision(engine.db.engine) or "(empty)")
        if args.action == "project-measures":
            from carepath.engine.usecases.measure_states import project_all

            print(f"measure standing written for {project_all(engine):,} episodes")
        return 0
    if args.command == "user":
        from carepath.engine.usecases.users import add_user, deactivate_user, issue_token

        if args.user_command == "token":
            print(f"new API token for '{args.name}':")
            print(issue_token(engine, args.name, expires_in_days=args.expires_days))
            return 0
        if args.user_command == "password":
            from carepath.engine.usecases.passwords import set_password

            set_password(engine, args.name, _read_password())
            print(f"password set for '{args.name}': they can sign in at the server's address")
            return 0
        if args.user_command == "deactivate":
            deactivate_user(engine, SYSTEM, args.name)
            print(f"deactivated '{args.name}': tokens revoked, open tasks back to whoever delegated them, "
                  "else to their groups' queues")
            return 0
        token = add_user(engine, args.name, args.role, args.group, expires_in_days=args.expires_days)
        print(f"created user '{args.name}' with role {args.role}; API token:")
        print(token)
        return 0
    if args.command == "deploy":
        from carepath.engine.usecases.deploy import deploy_pathways

        result = deploy_pathways(engine, SYSTEM, _read(args.files))
        for w in result.warnings:
            print(f"warning: {_located(w.file, w.line, w.element_id)}{w.message}")
        for p in result.processes:
            print(f"{p.key} version {p.version} ({'new' if p.created else 'unchanged'})")
        return 0
    if args.command == "worker":
        return _worker(engine, settings, args.routing_threads)
    if args.command == "inbox-worker":
        os.nice(max(args.nice, 0))
        return _inbox_worker(engine, settings, args.threads, args.parent)
    if args.command == "mllp":
        return _mllp(engine, settings, args)
    return 2


def _read_password() -> str:
    """From a terminal: asked twice without echo; otherwise the first line of standard input (a pipe)."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise ValidationFailed("the two passwords differ; nothing was changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _read(paths: list[Path]) -> list[SourceFile]:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValidationFailed(f"no such file: {', '.join(missing)}")
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def _print_settings_errors(exc: PydanticValidationError) -> None:
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        name = f"CAREPATH_{str(error['loc'][0]).upper()}" if error["loc"] else ""
        named = message if not name or name in message else f"{name}: {message}"
        print(f"error: the configuration is not valid: {named}", file=sys.stderr)


def _located(file: str | None, line: int | None, element: str | None) -> str:
    parts = [part for part in (file, f"line {line}" if line else None, element) if part]
    return f"{', '.join(parts)}: " if parts else ""


def _print_error(exc: CarePathError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    for p in getattr(exc, "problems", []):
        print(f"  {_located(p.file, p.line, p.element_id)}{p.message}", file=sys.stderr)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if is_sqlite(settings.database_url):
        if args.workers > 1:
            print("error: --workers above 1 needs PostgreSQL (set CAREPATH_DATABASE_URL); SQLite is for one "
                  "process", file=sys.stderr)
            return 2
        lock = _lock_sqlite(settings.database_url)
        if lock is None:
            print("error: another CarePath server is already using this SQLite database; SQLite is for one "
                  "process (use PostgreSQL to run several)", file=sys.stderr)
            return 2
    engine = build_engine(settings, upgrade_schema=False)
    migrate.upgrade(engine.db.engine, patient_id_system=settings.patient_id_system)
    if args.mllp_port is not None:
        from .mllp import ListenerConfig, start_beside_api

        try:
            start_beside_api(engine, ListenerConfig.from_settings(settings), args.mllp_host, args.mllp_port)
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    uvicorn.run("carepath.api.asgi:app", host=args.host, port=args.port, workers=args.workers,
                log_level="info")
    return 0


def _lock_sqlite(url: str) -> object | None:
    """Hold an exclusive lock beside the database file for as long as this process serves it."""
    import fcntl

    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return object()
    handle = open(f"{database}.serve.lock", "w")  # noqa: SIM115 - held open until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def _worker(engine: CarePath, settings: Settings, routing_threads: int) -> int:
    """The timer scheduler and, on PostgreSQL, the inbox routed as messages arrive (api/inbox_worker.py)."""
    from carepath.engine.scheduler import TimerScheduler

    from .inbox_worker import run_inbox_worker

    scheduler = TimerScheduler(engine, settings.sweep_seconds)
    stop = _stop_on_signals()
    scheduler.start()
    print("worker running; Ctrl-C to stop", flush=True)
    if engine.db.dialect == "postgresql":
        run_inbox_worker(engine, stop, threads=routing_threads)
    else:  # SQLite: the listener routes; the scheduler's sweep takes what a dead listener left
        stop.wait()
    scheduler.shutdown()
    return 0


def _inbox_worker(engine: CarePath, settings: Settings, threads: int, parent: int | None) -> int:
    from .inbox_worker import run_inbox_worker

    if engine.db.dialect != "postgresql":
        print("error: inbox-worker needs PostgreSQL; with SQLite the listener routes the inbox itself",
              file=sys.stderr)
        return 2
    run_inbox_worker(engine, _stop_on_signals(), threads=threads, parent=parent)
    return 0


def _routing_processes(engine: CarePath, requested: int | None) -> int | None:
    """How many routing processes `carepath mllp` starts: None routes in the listener (SQLite)."""
    if engine.db.dialect != "postgresql":
        if requested is not None:
            raise UsageError("--routing-processes needs PostgreSQL; with SQLite the listener routes the inbox itself")
        return None
    if requested is not None and requested < 0:
        raise UsageError("--routing-processes is 0 or more")
    return 1 if requested is None else requested


def _mllp(engine: CarePath, settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .inbox_worker import RoutingProcesses
    from .mllp import ListenerConfig, MllpListener, run_listener

    host, port = args.host, args.port
    stop = _stop_on_signals()
    processes = _routing_processes(engine, args.routing_processes)
    config = replace(ListenerConfig.from_settings(settings), routing=processes is None)
    routing = RoutingProcesses(processes or 0, args.routing_threads)
    supervisor: threading.Thread | None = None
    try:
        MllpListener(engine, config).prepare()  # the accounts, before anything listens
        routing.start()
        supervisor = routing.supervise(stop)
        where = {None: "routing on this process", 0: "routing left to `carepath worker`"}.get(
            processes, f"routing in {processes} process(es)")
        print(f"MLLP listener on {host}:{port} ({where}); Ctrl-C to stop", flush=True)
        run_listener(engine, config, host, port, stop)
    except OSError as exc:
        print(f"error: the MLLP listener could not listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        if supervisor is not None:
            supervisor.join()  # it starts no child once stopped
        routing.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
