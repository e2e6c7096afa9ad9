"""`carepath audit verify` and `carepath audit checkpoint`: the history's tamper evidence."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from carepath.engine.audit import utc_instant
from carepath.engine.usecases.checkpoints import write_checkpoint
from carepath.engine.usecases.verify_history import Anchor, Verification, verify_history

from .bootstrap import build_engine
from .pathway_commands import USAGE_ERROR
from .settings import Settings, check_audit_key, check_key_id

DEFAULT_KEY_VARIABLE = "CAREPATH_AUDIT_KEY"


def add_audit_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="tamper evidence of the history (hash chains, signed checkpoints)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="recompute every history chain and checkpoint; exit 1 at the "
                                  "first broken link, naming it")
    verify.add_argument("--key-from-env", nargs="?", const=DEFAULT_KEY_VARIABLE, metavar="VARIABLE",
                        help="take the checkpoint key from this environment variable (default "
                             f"{DEFAULT_KEY_VARIABLE}) and refuse to run without it, instead of only warning")
    verify.add_argument("--key-id", metavar="NAME",
                        help="the name of that key (default CAREPATH_AUDIT_KEY_ID); keys it replaced come from "
                             "CAREPATH_AUDIT_PREVIOUS_KEYS")
    verify.add_argument("--anchors", action="append", default=[], metavar="FILE",
                        help="checkpoint copies kept outside the database (CAREPATH_AUDIT_ANCHOR_FILE); every "
                             "one must still be in the database, unchanged. Repeatable")
    verify.add_argument("--max-unsigned-age", type=int, metavar="SECONDS",
                        help="fail if an event older than this is signed by no checkpoint (the latest checkpoints "
                             "deleted, or none written); a few sweeps, e.g. 600")
    verify.add_argument("--progress-every", type=int, default=10_000, metavar="CHAINS",
                        help="report progress on standard error every CHAINS chains")
    checkpoint = audit_sub.add_parser("checkpoint", help="sign the heads of the chains changed since the last "
                                      "checkpoint")
    checkpoint.add_argument("--full", action="store_true",
                            help="sign the head of every chain (done by itself after a key rotation)")


def audit_command(args: argparse.Namespace, settings: Settings) -> int:
    keys = _keys(args, settings)
    if isinstance(keys, int):
        return keys
    app = build_engine(settings)
    if args.audit_command == "checkpoint":
        if not app.config.audit_key:
            print("error: no audit key configured (CAREPATH_AUDIT_KEY); checkpoints need one", file=sys.stderr)
            return USAGE_ERROR
        checkpoint = write_checkpoint(app, full=args.full)
        if checkpoint is None:
            print("no new events since the last checkpoint")
        else:
            print(f"checkpoint {checkpoint.seq}{' (full)' if checkpoint.full else ''}, key {checkpoint.key_id!r}: "
                  f"{len(checkpoint.heads)} chain head(s) signed, up to event {checkpoint.last_event_id}")
        return 0
    anchors = _anchors(args.anchors)
    if isinstance(anchors, int):
        return anchors
    if args.max_unsigned_age is not None and args.max_unsigned_age < 0:
        print("error: --max-unsigned-age must be 0 or more seconds", file=sys.stderr)
        return USAGE_ERROR
    signed_before = (app.now() - timedelta(seconds=args.max_unsigned_age)
                     if args.max_unsigned_age is not None else None)
    result = verify_history(app, keys, progress=_progress, progress_every=max(args.progress_every, 1),
                            anchors=anchors, signed_before=signed_before)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not result.intact:
        print(f"BROKEN: {result.problem}")
        print(f"(checked {result.events} event(s) in {result.chains} chain(s) before it)", file=sys.stderr)
        return 1
    print(f"intact: {result.events} event(s) in {result.chains} chain(s), {_checkpoints(result)}")
    if result.oldest_unsigned is not None:
        oldest = result.oldest_unsigned
        print(f"not yet signed by a checkpoint: {result.unsigned_events} event(s), the oldest event {oldest.event_id} "
              f"at {utc_instant(oldest.at)}")
    return 0


def _checkpoints(result: Verification) -> str:
    text = f"{result.checkpoints} checkpoint(s) checked"
    if result.unchecked_checkpoints:
        text += f", {result.unchecked_checkpoints} signed with retired keys not checked"
    if result.anchors:
        text += f", {result.anchors} matching their copies outside the database"
    return text


def _keys(args: argparse.Namespace, settings: Settings) -> dict[str, bytes] | int:
    """The key ring: the configured one, or the signing key from --key-from-env named --key-id."""
    config = settings.engine_config()
    variable = getattr(args, "key_from_env", None)
    key_id = getattr(args, "key_id", None) or settings.audit_key_id
    try:
        check_key_id(key_id, "--key-id")
        value = None if variable is None else os.environ.get(variable)
        if variable is not None and not value:
            raise ValueError(f"{variable} is not set")
        check_audit_key(value, variable or "CAREPATH_AUDIT_KEY")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    key = value.encode() if value else config.audit_key
    return replace(config, audit_key=key, audit_key_id=key_id).audit_keyring()


def _anchors(paths: list[str]) -> list[Anchor] | int:
    anchors = []
    for name in paths:
        try:
            lines = Path(name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: --anchors {name}: {exc}", file=sys.stderr)
            return USAGE_ERROR
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                copy = json.loads(line)
                anchors.append(Anchor(seq=int(copy["seq"]), mac=str(copy["mac"]), where=f"{name} line {number}"))
            except (ValueError, KeyError, TypeError):
                print(f"error: --anchors {name} line {number}: not a checkpoint copy (a JSON object with seq and "
                      "mac)", file=sys.stderr)
                return USAGE_ERROR
    return anchors


def _progress(result: Verification) -> None:
    print(f"... {result.chains} chain(s), {result.events} event(s) verified", file=sys.stderr, flush=True)
