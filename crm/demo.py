"""Demo data for `crm run`: an admin and a rep with API tokens, and a few contacts with
timelines.

Inbound messages go through the same path as a real webhook (``handle_inbound``), so the demo
shows what the product does, not hand-made rows.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.replies import ReplyTexts
from channels.base import InboundEvent
from crm.contacts import set_tags
from crm.inbound import handle_inbound
from crm.models import Contact, Role, User
from crm.scoring import refit
from crm.users import create_token, create_user

DEMO_EMAIL = "admin@example.com"
DEMO_REP_EMAIL = "rep@example.com"

_CONVERSATIONS = [
    (
        "+233241234567",
        "sms",
        "Ama Mensah",
        [
            "Hi, how much is the solar lamp?",
            "Can I pay with mobile money?",
            "I want to buy 3 for my shop, can someone from your team call me?",
        ],
        ["lead"],
    ),
    (
        "+254712345678",
        "whatsapp",
        "Wanjiru Kamau",
        ["Habari! Is the 50kg bag in stock?"],
        ["wholesale"],
    ),
    (
        "+2348031234567",
        "sms",
        "Chinedu Okafor",
        ["My order never arrived, I am not happy", "STOP"],
        [],
    ),
]


@dataclass(frozen=True)
class DemoCredentials:
    email: str
    password: str
    token: str
    rep_email: str = DEMO_REP_EMAIL
    rep_token: str = ""


def seed(*, session: Session, default_region: str, texts: ReplyTexts) -> DemoCredentials | None:
    """Seed an empty database; returns the credentials it created, or None if already seeded."""
    if session.scalar(select(func.count(User.id))):
        return None
    password = secrets.token_urlsafe(12)
    admin = create_user(
        session=session, email=DEMO_EMAIL, role=Role.ADMIN, password=password, name="Demo Admin"
    )
    token = create_token(session=session, user=admin, name="demo").token
    # A rep, so hot leads in the demo are routed to somebody (same password as the admin).
    rep = create_user(
        session=session, email=DEMO_REP_EMAIL, role=Role.REP, password=password, name="Esi Boateng"
    )
    rep_token = create_token(session=session, user=rep, name="demo").token
    for phone, channel, name, messages, tags in _CONVERSATIONS:
        for body in messages:
            result = handle_inbound(
                session=session,
                event=InboundEvent(
                    provider="demo",
                    channel=channel,
                    provider_message_id="DM" + uuid.uuid4().hex,
                    sender=("whatsapp:" if channel == "whatsapp" else "") + phone,
                    sender_phone=phone,
                    recipient="+15005550006",
                    body=body,
                    profile_name=name,
                ),
                default_region=default_region,
                texts=texts,
            )
        contact = session.get_one(Contact, result.contact_id)
        set_tags(session=session, contact=contact, tags=tags)
        refit(contact)
    return DemoCredentials(DEMO_EMAIL, password, token, DEMO_REP_EMAIL, rep_token)
