"""Handoffs: a hot lead given to a rep, with a deadline for the first touch."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, UTCDateTime, utcnow


class HandoffStatus(enum.StrEnum):
    OPEN = "open"  # assigned, waiting for the rep
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ESCALATED = "escalated"  # the SLA ran out
    DONE = "done"  # the rep touched the lead


ACTIVE = (HandoffStatus.OPEN.value, HandoffStatus.ACCEPTED.value)
ACTIVE_SQL = text("status IN ('open', 'accepted')")


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        # One active handoff per contact: two triggers at once (a callback request while the
        # score crosses the threshold) produce one.
        Index(
            "ux_handoffs_active_contact",
            "contact_id",
            unique=True,
            postgresql_where=ACTIVE_SQL,
            sqlite_where=ACTIVE_SQL,
        ),
        Index("ix_handoffs_rep_status", "rep_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(40))  # mql | human_request | callback_request
    summary: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default=HandoffStatus.OPEN.value)
    source_interaction_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    speed_to_lead_s: Mapped[int | None] = mapped_column(Integer)
    reject_reason: Mapped[str | None] = mapped_column(String(40))
