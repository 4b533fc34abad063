"""Notifications to people who use the CRM: a hot lead for a rep, an escalation for admins.

The row is the in-app notice (the rep's inbox); when the user has a phone number the same notice
goes out by SMS, tracked here with the same forward-only states as a message
(pending -> sending -> sent | failed), so a retried job never texts a rep twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # hot_lead | escalation
    body: Mapped[str] = mapped_column(String(480))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    handoff_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # SMS copy to the user's phone: None (no phone) | pending | sending | sent | failed | unknown
    sms_status: Mapped[str | None] = mapped_column(String(20))
    sms_error: Mapped[str | None] = mapped_column(String(200))
