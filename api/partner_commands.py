"""`carepath partners add|list|rotate-secret|deactivate`: the partner registry from the server's machine
(its operator acts as the system admin), through the same use cases as /api/partners (docs/partners.md)."""

from __future__ import annotations

import argparse
from typing import Any

from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.partners import (
    PartnerView,
    PartnerWithSecret,
    add_partner,
    deactivate_partner,
    list_partners,
    rotate_secret,
)

from .bootstrap import build_engine
from .settings import Settings


def add_partners_parser(sub: Any) -> None:
    partners = sub.add_parser("partners", help="the partner organizations referrals are sent to (docs/partners.md)")
    partners_sub = partners.add_subparsers(dest="partners_command", required=True)
    add = partners_sub.add_parser("add", help="register a partner organization; prints its signing secret once, "
                                  "on the last line")
    add.add_argument("id", help="a slug: lower-case letters, digits and hyphens (e.g. eastside-food-bank)")
    add.add_argument("--name", required=True)
    add.add_argument("--endpoint", default=None, help="its webhook URL (https)")
    add.add_argument("--account", default=None, help="the integration account that acts for it")
    add.add_argument("--directory-org", action="append", default=[], metavar="ID",
                     help="a resource-directory organization id (HSDS) it is (repeatable)")
    partners_sub.add_parser("list", help="the registered partner organizations")
    rotate = partners_sub.add_parser("rotate-secret", help="replace a partner's signing secret; prints the new one "
                                     "once, on the last line")
    rotate.add_argument("id")
    deactivate = partners_sub.add_parser("deactivate", help="send nothing more to a partner")
    deactivate.add_argument("id")


def partners_command(args: argparse.Namespace, settings: Settings) -> int:
    engine = build_engine(settings)
    command = args.partners_command
    if command == "add":
        made = add_partner(engine, SYSTEM, args.id, args.name, endpoint_url=args.endpoint, account=args.account,
                           directory_organizations=args.directory_org)
        _print_secret(made, "registered")
    elif command == "rotate-secret":
        _print_secret(rotate_secret(engine, SYSTEM, args.id), "replaced the signing secret of")
    elif command == "deactivate":
        print(f"deactivated {_line(deactivate_partner(engine, SYSTEM, args.id))}")
    else:
        for partner in list_partners(engine, SYSTEM):
            print(_line(partner))
    return 0


def _line(partner: PartnerView) -> str:
    orgs = ",".join(partner.directory_organizations) or "-"
    return (f"{partner.id}\t{partner.state.value}\t{partner.name}\t{partner.endpoint_url or '-'}\t"
            f"account={partner.account or '-'}\tdirectory={orgs}\tsecret={partner.secret_fingerprint}")


def _print_secret(made: PartnerWithSecret, done: str) -> None:
    print(f"{done} {_line(made.partner)}")
    print("signing secret (shown this once: give it to the partner now; fingerprint "
          f"{made.partner.secret_fingerprint}):")
    print(made.secret)
