"""The registry of partner organizations (admins): the community organizations CarePath sends referrals to.

A partner is the only source of an outbound endpoint (never imported directory data, never a diagram), and
names the integration account that acts for it (its status updates) and the resource-directory organizations
it is. Its signing secret is answered once, when made or replaced, and never read back: it is derived from the
server's key (engine/partner_signing.py), so the database holds nothing that signs.
Rules: PARTNER_RULES in engine/rules.py; docs/partners.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from ..application import CarePath
from ..bounds import nul_field, nul_refused
from ..errors import Conflict, Problem, ValidationFailed
from ..identity import Principal, Role
from ..model import PartnerState
from ..partner_signing import checked_endpoint, derive_secret, fingerprint, new_salt
from ..persistence.partner_tables import PartnerDirectoryOrganization, PartnerOrganization
from ..persistence.tables import User
from ..persistence.unit_of_work import UnitOfWork
from ..rules import PARTNER_RULES, PartnerFacts, check, check_partner_reader, check_role

PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,59}")
MAX_DIRECTORY_ORGANIZATIONS = 50
CHANGEABLE = ("name", "endpoint_url", "account", "directory_organizations")


@dataclass(frozen=True)
class PartnerView:
    id: str
    name: str
    endpoint_url: str | None
    account: str | None
    directory_organizations: tuple[str, ...]
    state: PartnerState
    secret_fingerprint: str
    secret_rotated_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PartnerWithSecret:
    """A partner just added or whose secret was just replaced, with the secret: shown this once."""

    partner: PartnerView
    secret: str


def add_partner(app: CarePath, principal: Principal, partner_id: str, name: str, *, endpoint_url: str | None = None,
                account: str | None = None, directory_organizations: Iterable[str] = ()) -> PartnerWithSecret:
    rule = PARTNER_RULES["add"]
    check_role(rule, principal)
    _refuse_nul({"id": partner_id, "name": name, "endpoint_url": endpoint_url, "account": account,
                 "directory_organizations": list(directory_organizations)})
    partner_id = _checked_id(partner_id)
    with UnitOfWork(app) as uow:
        if uow.session.get(PartnerOrganization, partner_id) is not None:
            raise Conflict(f"partner organization '{partner_id}' exists already")
        now, salt = app.now(), new_salt()
        secret = derive_secret(app.config.partner_secret_key, partner_id, salt)
        row = PartnerOrganization(id=partner_id, name=_checked_name(name), active=True, secret_salt=salt,
                                  secret_fingerprint=fingerprint(secret), secret_rotated_at=now, created_at=now,
                                  updated_at=now)
        uow.session.add(row)
        uow.session.flush()
        _apply(uow, row, {"endpoint_url": endpoint_url, "account": account,
                          "directory_organizations": list(directory_organizations)})
        uow.record(rule.event or "", principal.name, data={"partner": partner_id, **_recorded(uow, row)})
        view = _view(uow, row)
        uow.commit()
    return PartnerWithSecret(view, secret)


def update_partner(app: CarePath, principal: Principal, partner_id: str, changes: Mapping[str, Any]) -> PartnerView:
    """Change the fields given (name, endpoint_url, account, directory_organizations; None clears the endpoint
    or the account); the event names the fields that changed."""
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ValidationFailed(f"{unknown[0]}: not a field of a partner that can be changed (known: "
                               f"{', '.join(CHANGEABLE)})", [Problem("unknown field", field=unknown[0])])
    _refuse_nul(dict(changes))
    with UnitOfWork(app) as uow:
        row = _locked(uow, principal, "update", partner_id)
        before = _recorded(uow, row)
        if "name" in changes:
            row.name = _checked_name(changes["name"])
        _apply(uow, row, {k: v for k, v in changes.items() if k != "name"})
        after = _recorded(uow, row)
        changed = sorted(k for k in after if after[k] != before[k])
        if changed:
            row.updated_at = app.now()
            uow.record(PARTNER_RULES["update"].event or "", principal.name,
                       data={"partner": partner_id, "fields": changed, "new": {k: after[k] for k in changed}})
        view = _view(uow, row)
        uow.commit()
    return view


def rotate_secret(app: CarePath, principal: Principal, partner_id: str) -> PartnerWithSecret:
    with UnitOfWork(app) as uow:
        row = _locked(uow, principal, "rotate_secret", partner_id)
        salt = new_salt()
        secret = derive_secret(app.config.partner_secret_key, partner_id, salt)
        old = row.secret_fingerprint
        row.secret_salt, row.secret_fingerprint = salt, fingerprint(secret)
        row.secret_rotated_at = row.updated_at = app.now()
        uow.record(PARTNER_RULES["rotate_secret"].event or "", principal.name,
                   data={"partner": partner_id, "old": old, "new": row.secret_fingerprint})
        view = _view(uow, row)
        uow.commit()
    return PartnerWithSecret(view, secret)


def deactivate_partner(app: CarePath, principal: Principal, partner_id: str) -> PartnerView:
    return _set_active(app, principal, partner_id, "deactivate", False)


def activate_partner(app: CarePath, principal: Principal, partner_id: str) -> PartnerView:
    return _set_active(app, principal, partner_id, "activate", True)


def _set_active(app: CarePath, principal: Principal, partner_id: str, action: str, active: bool) -> PartnerView:
    with UnitOfWork(app) as uow:
        row = _locked(uow, principal, action, partner_id)
        row.active, row.updated_at = active, app.now()
        uow.record(PARTNER_RULES[action].event or "", principal.name,
                   data={"partner": partner_id, "field": "active", "old": not active, "new": active})
        view = _view(uow, row)
        uow.commit()
    return view


def list_partners(app: CarePath, principal: Principal, *, active: bool | None = None) -> list[PartnerView]:
    check_partner_reader(principal)
    with UnitOfWork(app) as uow:
        query = select(PartnerOrganization).order_by(PartnerOrganization.id)
        if active is not None:
            query = query.where(PartnerOrganization.active.is_(active))
        return [_view(uow, row) for row in uow.session.scalars(query)]


def get_partner(app: CarePath, principal: Principal, partner_id: str) -> PartnerView:
    check_partner_reader(principal)
    with UnitOfWork(app) as uow:
        row = uow.session.get(PartnerOrganization, partner_id)
        if row is None:
            raise PartnerFacts(partner_id, PartnerState.ACTIVE).not_found()
        return _view(uow, row)


def partner_for_account(uow: UnitOfWork, username: str) -> str | None:
    """The active partner this integration account acts for, if any (a referral Task it may update is one
    this partner owns)."""
    return uow.session.scalar(select(PartnerOrganization.id).where(
        PartnerOrganization.account == username, PartnerOrganization.active.is_(True)))


def partner_for_directory_organization(uow: UnitOfWork, organization_id: str) -> str | None:
    """The active partner a resource-directory organization (HSDS id) is, if any: where its referrals go."""
    return uow.session.scalar(select(PartnerOrganization.id).join(
        PartnerDirectoryOrganization, PartnerDirectoryOrganization.partner_id == PartnerOrganization.id).where(
        PartnerDirectoryOrganization.organization_id == organization_id, PartnerOrganization.active.is_(True)))


def signing_secret(app: CarePath, row: PartnerOrganization) -> str:
    return derive_secret(app.config.partner_secret_key, row.id, row.secret_salt)


def _locked(uow: UnitOfWork, principal: Principal, action: str, partner_id: str) -> PartnerOrganization:
    rule = PARTNER_RULES[action]
    check_role(rule, principal)
    row = uow.session.get(PartnerOrganization, partner_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise PartnerFacts(partner_id, PartnerState.ACTIVE).not_found()
    check(rule, PartnerFacts(row.id, _state(row)), principal)
    return row


def _apply(uow: UnitOfWork, row: PartnerOrganization, changes: Mapping[str, Any]) -> None:
    if "endpoint_url" in changes:
        url = changes["endpoint_url"]
        row.endpoint_url = None if url in (None, "") else checked_endpoint(
            str(url), allow_http_loopback=uow.app.config.partner_allow_http_loopback)
    if "account" in changes:
        row.account = None if changes["account"] in (None, "") else _checked_account(uow, row.id, changes["account"])
    if "directory_organizations" in changes:
        _set_directory_organizations(uow, row.id, changes["directory_organizations"] or [])


def _checked_account(uow: UnitOfWork, partner_id: str, name: str) -> str:
    user = uow.session.scalar(select(User).where(User.name == name))
    if user is None or user.role != Role.INTEGRATION.value or not user.active:
        why = "there is no such user" if user is None else "it is deactivated" if not user.active else \
            f"its role is {user.role}"
        raise _invalid("account", f"'{name}' cannot act for a partner: {why} (it must be an active user of role "
                                  "integration: `carepath user add NAME --role integration`)")
    other = uow.session.scalar(select(PartnerOrganization.id).where(
        PartnerOrganization.account == name, PartnerOrganization.id != partner_id))
    if other is not None:
        raise _invalid("account", f"'{name}' acts for partner '{other}' already")
    return name


def _set_directory_organizations(uow: UnitOfWork, partner_id: str, ids: Iterable[str]) -> None:
    wanted = sorted({str(i).strip() for i in ids} - {""})
    if len(wanted) > MAX_DIRECTORY_ORGANIZATIONS or any(len(i) > 100 for i in wanted):
        raise _invalid("directory_organizations", f"at most {MAX_DIRECTORY_ORGANIZATIONS} organization ids, each "
                                                  "at most 100 characters")
    taken = uow.session.execute(select(PartnerDirectoryOrganization.organization_id,
                                       PartnerDirectoryOrganization.partner_id).where(
        PartnerDirectoryOrganization.organization_id.in_(wanted),
        PartnerDirectoryOrganization.partner_id != partner_id)).first()
    if taken is not None:
        raise _invalid("directory_organizations", f"directory organization '{taken[0]}' is partner '{taken[1]}' "
                                                  "already")
    uow.session.execute(delete(PartnerDirectoryOrganization).where(
        PartnerDirectoryOrganization.partner_id == partner_id))
    uow.session.add_all(PartnerDirectoryOrganization(organization_id=i, partner_id=partner_id) for i in wanted)
    uow.session.flush()


def _directory_organizations(uow: UnitOfWork, partner_id: str) -> tuple[str, ...]:
    return tuple(uow.session.scalars(select(PartnerDirectoryOrganization.organization_id).where(
        PartnerDirectoryOrganization.partner_id == partner_id).order_by(PartnerDirectoryOrganization.organization_id)))


def _checked_id(partner_id: str) -> str:
    if not PARTNER_ID.fullmatch(partner_id or ""):
        raise _invalid("id", "a partner's id is 2 to 60 lower-case letters, digits and hyphens, starting with a "
                             "letter or digit (e.g. 'eastside-food-bank')")
    return partner_id


def _checked_name(name: Any) -> str:
    text = str(name or "").strip()
    if not text or len(text) > 300:
        raise _invalid("name", "a partner's name is 1 to 300 characters")
    return text


def _refuse_nul(fields: dict[str, Any]) -> None:
    """A NUL character cannot be stored (PostgreSQL refuses it): a 422 naming the field, not a 500."""
    where = nul_field(fields)
    if where is not None:
        raise nul_refused(where)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", [Problem(message, field=field)])


def _state(row: PartnerOrganization) -> PartnerState:
    return PartnerState.ACTIVE if row.active else PartnerState.INACTIVE


def _recorded(uow: UnitOfWork, row: PartnerOrganization) -> dict[str, Any]:
    """What the history keeps of a partner (never its secret)."""
    return {"name": row.name, "endpoint_url": row.endpoint_url, "account": row.account,
            "directory_organizations": list(_directory_organizations(uow, row.id))}


def _view(uow: UnitOfWork, row: PartnerOrganization) -> PartnerView:
    return PartnerView(id=row.id, name=row.name, endpoint_url=row.endpoint_url, account=row.account,
                       directory_organizations=_directory_organizations(uow, row.id), state=_state(row),
                       secret_fingerprint=row.secret_fingerprint, secret_rotated_at=row.secret_rotated_at,
                       created_at=row.created_at, updated_at=row.updated_at)
