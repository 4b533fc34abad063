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


def _by_variant(session: Session, query: Any) -> dict[str, int]:
    return {variant: count for variant, count in session.execute(query)}


def results(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The campaign's figures, and the same per A/B variant (revenue is the campaign's alone:
    a deal records the campaign that touched it, not the variant)."""
    sent_rows = and_(
        CampaignRecipient.campaign_id == campaign.id,
        CampaignRecipient.state == RecipientState.SENT.value,
    )
    variant = CampaignRecipient.variant
    counted = select(variant, func.count()).select_from(CampaignRecipient).group_by(variant)
    sent = _by_variant(session, counted.where(sent_rows))
    delivered = _by_variant(
        session,
        counted.join(Interaction, Interaction.id == CampaignRecipient.interaction_id).where(
            sent_rows, Interaction.delivery_status.in_(("delivered", "read"))
        ),
    )
    replied = _by_variant(
        session, counted.where(sent_rows, CampaignRecipient.replied_at.is_not(None))
    )
    opted_out = _by_variant(
        session,
        counted.join(
            ChannelConsent,
            and_(
                ChannelConsent.contact_id == CampaignRecipient.contact_id,
                ChannelConsent.channel == campaign.channel,
            ),
        ).where(
            sent_rows,
            ChannelConsent.status == ConsentStatus.OPTED_OUT.value,
            ChannelConsent.changed_at >= CampaignRecipient.sent_at,
        ),
    )
    # Date arithmetic differs between SQLite and PostgreSQL: the window's end is checked here.
    handoff_rows = session.execute(
        select(variant, Handoff.created_at, CampaignRecipient.sent_at)
        .join(CampaignRecipient, CampaignRecipient.contact_id == Handoff.contact_id)
        .where(sent_rows, Handoff.created_at >= CampaignRecipient.sent_at)
    ).all()
    span = window()
    handoffs: dict[str, int] = {}
    for name, created, sent_at in handoff_rows:
        if created < sent_at + span:
            handoffs[name] = handoffs.get(name, 0) + 1
    figures = {
        "sent": sent,
        "delivered": delivered,
        "replied": replied,
        "opted_out": opted_out,
        "handoffs": handoffs,
    }
    names = sorted({v["name"] for v in campaign.variants or []} | set(sent))
    variants = [
        _rates({key: counts.get(name, 0) for key, counts in figures.items()}, name=name)
        for name in names
    ]
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
        **_rates({key: sum(counts.values()) for key, counts in figures.items()}),
        "revenue": {"first_touch": revenue.get("first", {}), "last_touch": revenue.get("last", {})},
        "attribution_days": span.days,
        "variants": variants,
    }


def _rates(counts: dict[str, int], **label: str) -> dict[str, Any]:
    sent = counts["sent"]
    return {
        **label,
        **counts,
        "delivery_rate": _rate(counts["delivered"], sent),
        "reply_rate": _rate(counts["replied"], sent),
        "opt_out_rate": _rate(counts["opted_out"], sent),
    }
