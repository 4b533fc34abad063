"""Deals: a sale in progress with one contact, moving through the pipeline's stages.

Each deal carries the contact's first- and last-touch channel and campaign, copied when it is
created and the last touch again when it is won, so "revenue won by channel" is one GROUP BY on
this table, unaffected by later changes to the contact.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, UTCDateTime, utcnow


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_contact", "contact_id"),
        Index("ix_deals_owner_stage", "owner_id", "stage"),
        # The revenue report: won deals by close date.
        Index("ix_deals_stage_closed", "stage", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expected_close_on: Mapped[date | None] = mapped_column(Date)
    lost_reason: Mapped[str | None] = mapped_column(String(40))
    first_touch_channel: Mapped[str | None] = mapped_column(String(20))
    first_touch_campaign_id: Mapped[int | None] = mapped_column(Integer)
    last_touch_channel: Mapped[str | None] = mapped_column(String(20))
    last_touch_campaign_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # won or lost
