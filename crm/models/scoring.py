"""Score events: why a contact's lead score is what it is, one row per rule and source event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigID, UTCDateTime, utcnow


class ScoreEvent(Base):
    __tablename__ = "score_events"
    __table_args__ = (
        # The same event counts once, however often it is seen (re-enrichment, retries).
        UniqueConstraint("contact_id", "rule", "source"),
        Index("ix_score_events_contact", "contact_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(60))
    points: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(80))  # e.g. "interaction:123"
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
