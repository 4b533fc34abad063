"""Which campaign a customer's message answers: the last campaign message they got on the same
channel within the attribution window (default 7 days, ``ATTRIBUTION_DAYS``).

The enrichment batch calls :func:`attribute_replies` for its inbound messages (one query for the
batch): the recipient row records the reply (the campaign's reply rate), the contact's
last-touch campaign becomes that campaign (and its first-touch campaign, if it had none), and the
lead scores ``campaign_reply`` once per campaign. Deals copy these when they open and win, so
revenue is attributed too (``crm.reports``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from crm.models import Campaign, CampaignRecipient, Contact, RecipientState


def window() -> timedelta:
    return timedelta(days=float(os.environ.get("ATTRIBUTION_DAYS", "7") or 7))


@dataclass(frozen=True)
class Inbound:
    contact_id: int
    channel: str
    at: datetime


@dataclass(frozen=True)
class Reply:
    contact_id: int
    campaign_id: int
    recipient_id: int
    at: datetime


def attribute_replies(
    session: Session, messages: list[Inbound], contacts: dict[int, Contact]
) -> list[Reply]:
    """Attribute each inbound message to the campaign it answers, if any; the replies found."""
    if not messages:
        return []
    span = window()
    earliest = min(m.at for m in messages) - span
    sent = session.execute(
        select(
            CampaignRecipient.id,
            CampaignRecipient.contact_id,
            CampaignRecipient.campaign_id,
            CampaignRecipient.sent_at,
            CampaignRecipient.replied_at,
            Campaign.channel,
        )
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(
            CampaignRecipient.contact_id.in_({m.contact_id for m in messages}),
            CampaignRecipient.state == RecipientState.SENT.value,
            CampaignRecipient.sent_at >= earliest,
        )
        .order_by(CampaignRecipient.sent_at)
    ).all()
    if not sent:
        return []
    by_thread: dict[tuple[int, str], list[Any]] = {}
    for row in sent:  # ordered by sent_at
        by_thread.setdefault((row.contact_id, row.channel), []).append(row)
    replies: dict[int, Reply] = {}
    for message in sorted(messages, key=lambda m: m.at):
        answered = [
            row
            for row in by_thread.get((message.contact_id, message.channel), [])
            if row.sent_at <= message.at < row.sent_at + span
        ]
        if not answered:
            continue
        last = answered[-1]
        contact = contacts[message.contact_id]
        contact.last_touch_campaign_id = last.campaign_id
        if contact.first_touch_campaign_id is None:
            contact.first_touch_campaign_id = last.campaign_id
        if last.replied_at is None and last.id not in replies:
            replies[last.id] = Reply(message.contact_id, last.campaign_id, last.id, message.at)
    if replies:
        table = CampaignRecipient.__table__  # Core: an executemany UPDATE by bound id
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.replied_at.is_(None))
            .values(replied_at=bindparam("b_at")),
            [{"b_id": r.recipient_id, "b_at": r.at} for r in replies.values()],
        )
    return list(replies.values())
