"""A patient withdraws consent to share information with a community organization
(`POST /api/referrals/{id}/withdraw-consent`; rule REFERRAL_RULES["withdraw_consent"]).

Per patient and organization (the referral's), in one transaction: the withdrawal is stored (so
`referral_steps.send_referral` refuses any later referral to that organization for the patient); each open
referral to it is cancelled with the statusReason "patient withdrew consent" through the same status change
as `POST /api/referrals/{id}/status`, and its pathway hears `referral_status` cancelled at once; the outbound
deliveries for those referrals not sent yet are withheld (`outbox.withhold_deliveries`); the history of the
referral's episode records the withdrawal. Withdrawing again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..application import CarePath
from ..errors import ValidationFailed
from ..identity import Principal
from ..persistence.consent_tables import ConsentWithdrawal, referral_keys, withdrawal
from ..persistence.referral_tables import Referral
from ..persistence.tables import Instance
from ..persistence.unit_of_work import UnitOfWork
from ..rules import REFERRAL_RULES, check
from .messages import deliver_in
from .outbox import withhold_deliveries
from .referral_steps import STATUS, change_referral, correlation_key, message_data
from .referrals import _facts, _readable
from .store import with_conflict_retries

WITHDRAWN = "patient withdrew consent"  # the cancelled referrals' statusReason
MAX_NOTE = 2000


@dataclass(frozen=True)
class WithdrawalView:
    referral_id: str
    organization_key: str
    organization_name: str | None
    withdrawn_by: str
    withdrawn_at: datetime
    note: str | None
    cancelled: list[str]  # the referrals this withdrawal cancelled (none when it was already withdrawn)


def withdraw_consent(app: CarePath, principal: Principal, referral_id: str, note: str | None = None) -> WithdrawalView:
    if note is not None and len(note) > MAX_NOTE:
        raise ValidationFailed(f"note is longer than {MAX_NOTE} characters")

    def attempt() -> WithdrawalView:
        with UnitOfWork(app) as uow:
            referral = _readable(uow.session, principal, referral_id)
            check(REFERRAL_RULES["withdraw_consent"], _facts(referral), principal)
            patient, organization = referral_keys(referral)
            existing = withdrawal(uow.session, patient, organization)
            if existing is not None:
                return _view(existing, [])
            row = ConsentWithdrawal(patient_key=patient, organization_key=organization,
                                    organization_name=referral.organization_name, referral_id=referral.id,
                                    note=note or None, withdrawn_by=principal.name, withdrawn_at=app.now())
            uow.session.add(row)
            _record(uow, referral, principal.name, note)
            cancelled = _cancel_open_referrals(uow, principal, patient, organization)
            uow.session.flush()
            view = _view(row, cancelled)
            uow.commit()
            return view

    return with_conflict_retries(app, attempt)


def _cancel_open_referrals(uow: UnitOfWork, principal: Principal, patient: str, organization: str) -> list[str]:
    """Every referral to the organization for the patient: the open ones cancelled (their pathways told), the
    deliveries not yet sent for any of them withheld."""
    candidates = uow.session.scalars(select(Referral).where(
        Referral.organization_id == organization if not organization.startswith("service:")
        else Referral.service_id == organization.removeprefix("service:")).order_by(Referral.created_at))
    cancelled = []
    for referral in [r for r in candidates if referral_keys(r) == (patient, organization)]:
        withhold_deliveries(uow, f"referral:{referral.id}:", WITHDRAWN)
        referral.consent = False
        if referral.status not in REFERRAL_RULES["cancel"].from_states:
            continue
        uow.session.get(Instance, referral.instance_id, with_for_update=True)  # the pathway's order
        uow.session.refresh(referral, with_for_update=True)
        change_referral(uow, referral, "cancelled", WITHDRAWN, None, principal.name)
        uow.session.flush()
        deliver_in(uow, principal, STATUS, correlation_key(referral), message_data(referral))
        cancelled.append(referral.id)
    return cancelled


def _record(uow: UnitOfWork, referral: Referral, actor: str, note: str | None) -> None:
    rule = REFERRAL_RULES["withdraw_consent"]
    instance = uow.session.get(Instance, referral.instance_id)
    uow.record(rule.event or rule.action, actor, instance_id=referral.instance_id,
               pathway_version_id=instance.pathway_version_id if instance else None,
               data={"referral_id": referral.id, "domain": referral.domain, "field": rule.field, "old": "given",
                     "new": "withdrawn", "organization_id": referral.organization_id,
                     "organization_name": referral.organization_name, "note": note})


def _view(row: ConsentWithdrawal, cancelled: list[str]) -> WithdrawalView:
    return WithdrawalView(referral_id=row.referral_id, organization_key=row.organization_key,
                          organization_name=row.organization_name, withdrawn_by=row.withdrawn_by,
                          withdrawn_at=row.withdrawn_at, note=row.note, cancelled=cancelled)
