"""What a campaign brought back: delivery, replies, opt-outs, handoffs and revenue.

Rates are over the messages sent. A reply is the recipient's first message on the campaign's
channel within the attribution window after it (``crm.attribution``); an opt-out is a consent
change to opted out on that channel after the message; a handoff is one created for the contact
within the window; revenue is won deals whose first- or last-touch campaign is this one, per
currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from crm.attribution import window
from crm.deals import load_pipeline
from crm.models import (
    Campaign,
    CampaignRecipient,
    ChannelConsent,
    ConsentStatus,
    Deal,
    Handoff,
    Interaction,
    RecipientState,
)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def results(session: Session, campaign: Campaign) -> dict[str, Any]:
    sent_rows = and_(
        CampaignRecipient.campaign_id == campaign.id,
        CampaignRecipient.state == RecipientState.SENT.value,
    )
    sent = session.scalar(select(func.count()).select_from(CampaignRecipient).where(sent_rows))
    sent = sent or 0
    delivered = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .join(Interaction, Interaction.id == CampaignRecipient.interaction_id)
        .where(sent_rows, Interaction.delivery_status.in_(("delivered", "read")))
    )
    replied = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(sent_rows, CampaignRecipient.replied_at.is_not(None))
    )
    opted_out = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .join(
            ChannelConsent,
            and_(
                ChannelConsent.contact_id == CampaignRecipient.contact_id,
                ChannelConsent.channel == campaign.channel,
            ),
        )
        .where(
            sent_rows,
            ChannelConsent.status == ConsentStatus.OPTED_OUT.value,
            ChannelConsent.changed_at >= CampaignRecipient.sent_at,
        )
    )
    # Date arithmetic differs between SQLite and PostgreSQL: the window's end is checked here.
    handoff_rows = session.execute(
        select(Handoff.created_at, CampaignRecipient.sent_at)
        .join(CampaignRecipient, CampaignRecipient.contact_id == Handoff.contact_id)
        .where(sent_rows, Handoff.created_at >= CampaignRecipient.sent_at)
    ).all()
    span = window()
    handoffs = sum(1 for created, sent_at in handoff_rows if created < sent_at + span)
    won = sorted(load_pipeline().won)
    revenue: dict[str, dict[str, Any]] = {}
    for touch, column in (
        ("first", Deal.first_touch_campaign_id),
        ("last", Deal.last_touch_campaign_id),
    ):
        for currency, count, amount in session.execute(
            select(Deal.currency, func.count(), func.sum(Deal.amount))
            .where(Deal.stage.in_(won), column == campaign.id)
            .group_by(Deal.currency)
        ):
            revenue.setdefault(touch, {})[currency] = {
                "deals": count,
                "revenue": str(Decimal(amount).quantize(Decimal("0.01"))),
            }
    return {
        "sent": sent,
        "delivered": delivered or 0,
        "replied": replied or 0,
        "opted_out": opted_out or 0,
        "handoffs": handoffs,
        "delivery_rate": _rate(delivered or 0, sent),
        "reply_rate": _rate(replied or 0, sent),
        "opt_out_rate": _rate(opted_out or 0, sent),
        "revenue": {"first_touch": revenue.get("first", {}), "last_touch": revenue.get("last", {})},
        "attribution_days": span.days,
    }
