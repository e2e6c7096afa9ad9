"""Partner organizations (the admin-managed registry, usecases/partners.py) and the outbound deliveries sent to
their endpoints (usecases/outbox.py).

A partner's signing secret is not stored: it is derived from the server's partner key
(CAREPATH_PARTNER_SECRET_KEY, never in the database) and the row's random `secret_salt`, so a copy of the
database signs nothing. `secret_fingerprint` lets an admin and the partner check they hold the same secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..model import DeliveryState
from .tables import Base, BigId, states


class PartnerOrganization(Base):
    __tablename__ = "partner_organizations"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # a slug: "eastside-food-bank"
    name: Mapped[str] = mapped_column(String(300))
    endpoint_url: Mapped[str | None] = mapped_column(String(1000))
    # The integration account that acts for the organization (updates its referral Tasks); one partner each.
    account: Mapped[str | None] = mapped_column(ForeignKey("users.name"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_salt: Mapped[str] = mapped_column(String(64))
    secret_fingerprint: Mapped[str] = mapped_column(String(16))
    secret_rotated_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PartnerDirectoryOrganization(Base):
    """A resource-directory organization (HSDS id, `resource_organizations.id`, not a foreign key: the
    directory may be imported after the partner is registered) that is this partner; each at most one."""

    __tablename__ = "partner_directory_organizations"
    organization_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner_organizations.id", ondelete="CASCADE"), index=True)


class OutboundDelivery(Base):
    __tablename__ = "outbound_deliveries"
    __table_args__ = (Index("ix_outbound_deliveries_state_next_attempt_at", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner_organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(states(DeliveryState, "state"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
