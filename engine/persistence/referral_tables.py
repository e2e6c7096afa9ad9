"""Referrals to community organizations (engine/usecases/referrals.py): one row per referral Task.

A referral is sent when a pathway's referral step completes (the case manager chose a service with the
patient's consent) and is then moved by the organization's status updates or the case manager's. The
status is the Gravity referral Task's; `lock_version` keeps concurrent updates from losing one another;
`history` keeps every change (who, when, from, to, reason) beside the audit history's events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_patient_created", "patient_id", "created_at"),
        Index("ix_referrals_status_created", "status", "created_at"),
        Index("ix_referrals_instance_domain", "instance_id", "domain"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    case_id: Mapped[str] = mapped_column(String(255))  # the episode's business key
    patient_id: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(40))  # food, housing, transportation, utilities, safety
    service_id: Mapped[str] = mapped_column(String(100))  # the directory's HSDS service id
    service_name: Mapped[str] = mapped_column(String(500))
    organization_id: Mapped[str | None] = mapped_column(String(100), index=True)
    organization_name: Mapped[str | None] = mapped_column(String(500))
    # The integration account of the organization (the partner registry's), the only one that may set the
    # organization's statuses; None: the organization has no system, updates come by phone.
    partner_account: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(40))
    status_reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(40))
    consent: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}
