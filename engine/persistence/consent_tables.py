"""Withdrawn consents to share a patient's information with a community organization
(engine/usecases/consent.py): one row per patient and organization, kept for good, so nothing later is sent
to that organization for that patient.

Keys: the patient id (`case:<business key>` for an episode without one) and the directory organization id
(`service:<service id>` for a service without one), so a referral always has both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .referral_tables import Referral
from .tables import Base


class ConsentWithdrawal(Base):
    __tablename__ = "consent_withdrawals"
    __table_args__ = (UniqueConstraint("patient_key", "organization_key",
                                       name="uq_consent_withdrawals_patient_organization"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_key: Mapped[str] = mapped_column(String(300))
    organization_key: Mapped[str] = mapped_column(String(300))
    organization_name: Mapped[str | None] = mapped_column(String(500))
    referral_id: Mapped[str] = mapped_column(String(36))  # the referral it was withdrawn from
    note: Mapped[str | None] = mapped_column(Text)
    withdrawn_by: Mapped[str] = mapped_column(String(255))
    withdrawn_at: Mapped[datetime]


def patient_key(patient_id: str | None, case_id: str) -> str:
    return patient_id or f"case:{case_id}"


def organization_key(organization_id: str | None, service_id: str) -> str:
    return organization_id or f"service:{service_id}"


def referral_keys(referral: Referral) -> tuple[str, str]:
    return (patient_key(referral.patient_id, referral.case_id),
            organization_key(referral.organization_id, referral.service_id))


def withdrawal(session: Session, patient: str, organization: str) -> ConsentWithdrawal | None:
    return session.scalars(select(ConsentWithdrawal).where(ConsentWithdrawal.patient_key == patient,
                                                           ConsentWithdrawal.organization_key == organization)).first()
