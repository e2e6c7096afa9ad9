"""`carepath audit verify` and `carepath audit checkpoint`: the history's tamper evidence."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from carepath.engine.usecases.checkpoints import write_checkpoint
from carepath.engine.usecases.verify_history import Verification, verify_history

from .bootstrap import build_engine
from .pathway_commands import USAGE_ERROR
from .settings import Settings, check_audit_key

DEFAULT_KEY_VARIABLE = "CAREPATH_AUDIT_KEY"


def add_audit_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="tamper evidence of the history (hash chains, signed checkpoints)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="recompute every history chain and checkpoint; exit 1 at the "
                                  "first broken link, naming it")
    verify.add_argument("--key-from-env", nargs="?", const=DEFAULT_KEY_VARIABLE, metavar="VARIABLE",
                        help="take the checkpoint key from this environment variable (default "
                             f"{DEFAULT_KEY_VARIABLE}) and refuse to run without it, instead of only warning")
    verify.add_argument("--progress-every", type=int, default=10_000, metavar="CHAINS",
                        help="report progress on standard error every CHAINS chains")
    audit_sub.add_parser("checkpoint", help="sign the heads of the chains changed since the last checkpoint")


def audit_command(args: argparse.Namespace, settings: Settings) -> int:
    key = _key(args, settings)
    if isinstance(key, int):
        return key
    app = build_engine(settings)
    if args.audit_command == "checkpoint":
        if key is None:
            print("error: no audit key configured (CAREPATH_AUDIT_KEY); checkpoints need one", file=sys.stderr)
            return USAGE_ERROR
        checkpoint = write_checkpoint(app, key)
        if checkpoint is None:
            print("no new events since the last checkpoint")
        else:
            print(f"checkpoint {checkpoint.seq}: {len(checkpoint.heads)} chain head(s) signed, up to event "
                  f"{checkpoint.last_event_id}")
        return 0
    result = verify_history(app, key, progress=_progress, progress_every=max(args.progress_every, 1))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not result.intact:
        print(f"BROKEN: {result.problem}")
        print(f"(checked {result.events} event(s) in {result.chains} chain(s) before it)", file=sys.stderr)
        return 1
    print(f"intact: {result.events} event(s) in {result.chains} chain(s), {result.checkpoints} checkpoint(s)")
    return 0


def _key(args: argparse.Namespace, settings: Settings) -> bytes | None | int:
    variable = getattr(args, "key_from_env", None)
    if variable is None:
        return settings.audit_key.encode() if settings.audit_key else None
    value = os.environ.get(variable)
    if not value:
        print(f"error: {variable} is not set", file=sys.stderr)
        return USAGE_ERROR
    try:
        check_audit_key(value)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return value.encode()


def _progress(result: Verification) -> None:
    print(f"... {result.chains} chain(s), {result.events} event(s) verified", file=sys.stderr, flush=True)
