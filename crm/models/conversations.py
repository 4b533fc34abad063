"""Conversations: one thread per contact and channel, with an assignee, a status and unread state.

A conversation is the rep's view of a contact on one channel (the inbox lists these). The
messages stay on the contact's timeline; the conversation keeps only what the inbox filters and
sorts on. Unread is ``last_inbound_at > last_read_at``: a new inbound message makes it unread
without touching a counter, and opening or answering it marks it read.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, UTCDateTime, utcnow


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    SNOOZED = "snoozed"  # until snoozed_until, or the customer's next message
    CLOSED = "closed"  # reopens on the customer's next message


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("contact_id", "channel"),
        Index("ix_conversations_inbox", "status", "last_inbound_at"),
        Index("ix_conversations_assignee", "assignee_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=ConversationStatus.OPEN.value)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def unread(self) -> bool:
        if self.last_inbound_at is None:
            return False
        return self.last_read_at is None or self.last_inbound_at > self.last_read_at
