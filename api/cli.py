"""The `carepath` command line. Every command brings the schema up to date first."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.errors import CarePathError, ValidationFailed
from carepath.engine.identity import SYSTEM, Role
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import is_sqlite

from .bootstrap import build_engine
from .settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carepath", description="CarePath care pathway orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API and the timer scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("worker", help="run only the timer scheduler (for larger deployments)")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
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
    for name, help_text in (("validate", "check BPMN/DMN files without deploying them"),
                            ("deploy", "deploy BPMN/DMN files as one package")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("files", nargs="+", type=Path)
    return parser


QUIET_LOGGERS = ("alembic", "spiff", "apscheduler")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:  # one line per engine step or migration check is noise to an operator
        logging.getLogger(name).setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    settings = Settings()
    try:
        return _dispatch(args, settings)
    except CarePathError as exc:
        _print_error(exc)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "validate":
        return _validate(args.files, settings)
    engine = build_engine(settings)
    if args.command == "db":
        if args.action == "current":
            print(migrate.current_revision(engine.db.engine) or "(empty)")
        return 0
    if args.command == "user":
        from carepath.engine.usecases.users import add_user, deactivate_user, issue_token

        if args.user_command == "token":
            print(f"new API token for '{args.name}':")
            print(issue_token(engine, args.name, expires_in_days=args.expires_days))
            return 0
        if args.user_command == "deactivate":
            deactivate_user(engine, SYSTEM, args.name)
            print(f"deactivated '{args.name}': tokens revoked, open tasks back in their groups' queues")
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
        return _worker(engine, settings)
    return 2


def _read(paths: list[Path]) -> list[SourceFile]:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValidationFailed(f"no such file: {', '.join(missing)}")
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def _validate(paths: list[Path], settings: Settings) -> int:
    from carepath.engine.usecases.deploy import lane_warnings
    from carepath.engine.usecases.users import known_groups

    package = parse_package(_read(paths))
    engine = build_engine(settings)  # lanes are checked against the groups this installation has
    for w in [*package.warnings, *lane_warnings(engine.config, package.processes, known_groups(engine))]:
        print(f"warning: {_located(w.file, w.line, w.element_id)}{w.message}")
    for p in package.processes:
        print(f"ok: {p.key} ({p.family}) from {p.source_file}")
    return 0


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
    migrate.upgrade(build_engine(settings, upgrade_schema=False).db.engine)
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


def _worker(engine: CarePath, settings: Settings) -> int:
    from carepath.engine.scheduler import TimerScheduler

    scheduler = TimerScheduler(engine, settings.sweep_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.start()
    print("worker running; Ctrl-C to stop", flush=True)
    stop.wait()
    scheduler.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
