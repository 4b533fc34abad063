"""The contact aggregate: a person, their identities (phone numbers), consent and tags."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import Base, JSONType, UTCDateTime, utcnow


class LifecycleStage(enum.StrEnum):
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    DISQUALIFIED = "disqualified"


class ConsentStatus(enum.StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    lifecycle_stage: Mapped[str] = mapped_column(
        String(20), default=LifecycleStage.SUBSCRIBER.value
    )
    # score_points (decayed to score_at) + fit_points, rounded: the figure people see and filter.
    score: Mapped[int] = mapped_column(Integer, default=0)
    # The decayed sum of score events at score_at: a new event costs O(1) (crm.scoring).
    score_points: Mapped[float] = mapped_column(Float, default=0.0)
    score_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Fit (who the contact is: an email given, a business buyer...): does not decay.
    fit_points: Mapped[float] = mapped_column(Float, default=0.0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    first_touch_channel: Mapped[str | None] = mapped_column(String(20))
    # The campaigns table arrives with the campaigns issue; the foreign key is added then.
    first_touch_campaign_id: Mapped[int | None] = mapped_column(Integer)
    # The channel (and campaign, once campaigns exist) of the contact's latest inbound message.
    last_touch_channel: Mapped[str | None] = mapped_column(String(20))
    last_touch_campaign_id: Mapped[int | None] = mapped_column(Integer)
    last_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Set when this contact was merged into another one; the row stays as a tombstone so old
    # links (API clients, exports) can be redirected to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    # Rolled up from the model's signals on inbound messages (crm.enrichment).
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)  # moving average, [-1, 1]
    sentiment_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_intent: Mapped[str | None] = mapped_column(String(20))
    last_intent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the model read an opt-out in free text: marketing to the contact pauses until a
    # person confirms (opt out) or dismisses it. Keywords (STOP...) never wait for this.
    opt_out_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opt_out_review_interaction_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="contact", order_by="Identity.id"
    )
    consents: Mapped[list[ChannelConsent]] = relationship(back_populates="contact")
    tags: Mapped[list[ContactTag]] = relationship(
        back_populates="contact", order_by="ContactTag.tag", cascade="all, delete-orphan"
    )

    @property
    def tag_names(self) -> list[str]:
        return [t.tag for t in self.tags]


# The contacts list's usual filter (crm.contact_search): a stage, then a score range.
Index("ix_contacts_stage_score", Contact.lifecycle_stage, Contact.score)

Index(
    "ix_contacts_opt_out_review",
    Contact.opt_out_review_at,
    postgresql_where=text("opt_out_review_at IS NOT NULL"),
    sqlite_where=text("opt_out_review_at IS NOT NULL"),
)

# The dashboard's funnel and new contacts (crm.dashboard_stats): an index-only scan.
Index(
    "ix_contacts_live_stage_created",
    Contact.lifecycle_stage,
    Contact.created_at,
    postgresql_where=text("merged_into_id IS NULL"),
    sqlite_where=text("merged_into_id IS NULL"),
)


class Identity(Base):
    """A way to reach a contact. A phone number in E.164 is shared by SMS, WhatsApp, voice and
    USSD; each identity belongs to exactly one contact, a contact may hold several."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default="phone")
    value: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="identities")


class ChannelConsent(Base):
    """Current consent of one contact on one channel; no row means never asked."""

    __tablename__ = "channel_consents"
    __table_args__ = (UniqueConstraint("contact_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(50))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="consents")


class ContactTag(Base):
    __tablename__ = "contact_tags"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    contact: Mapped[Contact] = relationship(back_populates="tags")


Index("ix_contact_tags_tag", ContactTag.tag)
