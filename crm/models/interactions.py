"""Every message, call, session and note on a contact's timeline."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigID, JSONType, UTCDateTime, utcnow


class Channel(enum.StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    USSD = "ussd"
    NOTE = "note"
    SYSTEM = "system"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        # A provider's message id is stored once: retried webhooks insert nothing new.
        UniqueConstraint("provider", "provider_message_id"),
        # Timeline reads: one contact, newest first, keyset on (created_at, id).
        Index("ix_interactions_timeline", "contact_id", "created_at", "id"),
        # The sweeper's scan for USSD sessions still open (crm.ussd.close_stale_sessions).
        Index(
            "ix_interactions_open_ussd",
            "created_at",
            postgresql_where=text("channel = 'ussd' AND delivery_status = 'active'"),
            sqlite_where=text("channel = 'ussd' AND delivery_status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str | None] = mapped_column(String(30))
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    # The business number or sender the interaction went through (To of inbound, From of outbound).
    address: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enriched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Model signals (intelligence.classify), written by the enrichment job.
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String(20))
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))


# The dashboard's per-day counts of inbound interactions (crm.dashboard_stats): an index-only
# range scan by time, channel and sentiment included (PostgreSQL INCLUDE).
Index(
    "ix_interactions_inbound_created",
    Interaction.created_at,
    postgresql_include=["channel", "sentiment"],
    postgresql_where=text("direction = 'inbound'"),
    sqlite_where=text("direction = 'inbound'"),
)
