"""Segments, campaigns and their recipients.

A segment is a saved filter over contacts (``crm.segments`` compiles it to one query). A
campaign sends one message (or A/B variants) on SMS or WhatsApp to a segment. Launching
materializes one recipient row per campaign x contact (unique), which is what makes the fan-out
exactly-once: each row moves pending -> sending -> sent | failed, and carries the idempotency
key its send uses.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigID, JSONType, UTCDateTime, utcnow


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LAUNCHING = "launching"  # launch requested: a worker is writing the recipients
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class RecipientState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # excluded at send time (opted out since launch, cancelled)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # {"stages": [...], "score_min": 40, "tags": [...], "consent": {"whatsapp": "opted_in"}, ...}
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))  # sms | whatsapp
    sender: Mapped[str | None] = mapped_column(String(64))  # a number or messaging service SID
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    # Variants: [{"name": "A", "body": "...", "weight": 50}, ...]; one variant without A/B.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # WhatsApp outside the 24 h window: an approved template and its variables.
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.DRAFT.value)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: now
    in_contact_timezone: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Local HH:MM, default 20:00-08:00 (set by crm.campaigns); None: no quiet hours. No column
    # default: SQLAlchemy would put it back in place of an explicit None.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # At launch: recipients, excluded by reason, parts and estimated cost (crm.campaign_launch).
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A sequence's send step sends through a campaign of its own (crm.sequence_campaigns): the
    # same claim, rate limits, quiet hours, consent checks and attribution as a broadcast.
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    sequence_step: Mapped[str | None] = mapped_column(String(40))


Index(
    "uq_campaigns_sequence_step",
    Campaign.sequence_id,
    Campaign.sequence_step,
    unique=True,
    postgresql_where=text("sequence_id IS NOT NULL"),
    sqlite_where=text("sequence_id IS NOT NULL"),
)


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (
        # One message per contact per campaign; a sequence's send step sends one per step run
        # (round: the run's id; 0 for a one-shot campaign).
        UniqueConstraint("campaign_id", "contact_id", "round"),
        Index("ix_campaign_recipients_state", "campaign_id", "state", "not_before"),
        # Attribution: the campaign messages a contact got lately.
        Index("ix_campaign_recipients_contact_sent", "contact_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(20), default="A")
    body: Mapped[str] = mapped_column(Text, default="")  # rendered at launch
    round: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # A sequence's WhatsApp template variables, rendered for this contact (None: the campaign's).
    content_variables: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(10), default=RecipientState.PENDING.value)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())  # quiet hours, schedule
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last marked sending
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    interaction_id: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str | None] = mapped_column(String(60))  # what a permanent error led to
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The contact's first message within the attribution window after this one (a reply).
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
