"""An inbound message, from normalized event to stored interaction and bot reply.

Runs inside the webhook's one transaction: resolve the contact by identity, insert the
interaction once, apply keywords to consent, decide the reply (recorded on the timeline too),
with the enrichment job written to the outbox in the same transaction (``crm.ingest``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.keywords import Keyword, match_keyword, provider_keyword
from bot.replies import InboundFacts, ReplyTexts, decide_reply
from channels.base import InboundEvent
from crm.consent import set_consent
from crm.contacts import resolve_by_phone
from crm.ingest import Message, store_inbound
from crm.models import ConsentStatus, Contact, Direction
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.timeline import add_entry


@dataclass(frozen=True)
class InboundResult:
    interaction_id: int | None  # None: a duplicate delivery, nothing stored
    contact_id: int
    reply: str | None

    @property
    def duplicate(self) -> bool:
        return self.interaction_id is None


def handle_inbound(
    *, session: Session, event: InboundEvent, default_region: str, texts: ReplyTexts
) -> InboundResult:
    """Store ``event`` once and decide the answer. Raises InvalidPhoneNumber for a bad sender."""
    e164 = to_e164(event.sender_phone, default_region)
    meta: dict[str, object] = {"from": event.sender, **event.extra}
    if event.media:
        meta["media"] = [{"url": m.url, "content_type": m.content_type} for m in event.media]
    if event.profile_name:
        meta["profile_name"] = event.profile_name
    message = Message(
        channel=event.channel,
        body=event.body,
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        address=event.recipient,
        metadata=meta,
        created_at=utcnow(),
    )
    created = False
    sender = store_inbound(session=session, phone=e164, message=message)
    if sender is None:  # a new number: create its contact, then store as usual
        created = resolve_by_phone(
            session=session, e164=e164, name=event.profile_name, channel=event.channel
        ).created
        sender = store_inbound(session=session, phone=e164, message=message)
        assert sender is not None
    interaction_id = sender.interaction_id
    if interaction_id is None:
        return InboundResult(None, sender.contact_id, reply=None)

    if event.profile_name and not sender.name:
        session.execute(
            update(Contact)
            .where(Contact.id == sender.contact_id, Contact.name.is_(None))
            .values(name=event.profile_name)
        )

    by_provider = provider_keyword(event.provider_opt_out)
    keyword = by_provider or match_keyword(event.body)
    consent = sender.consent
    if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        consent = ConsentStatus.OPTED_OUT if keyword is Keyword.OPT_OUT else ConsentStatus.OPTED_IN
        set_consent(
            session=session,
            contact=session.get_one(Contact, sender.contact_id),
            channel=event.channel,
            status=consent,
            source=f"keyword:{event.body.strip()[:20]}",
        )

    reply = decide_reply(
        InboundFacts(
            keyword=keyword,
            handled_by_provider=by_provider is not None,
            opted_out=consent == ConsentStatus.OPTED_OUT,
            first_contact=created,
        ),
        texts,
    )
    if reply:
        add_entry(
            session=session,
            contact_id=sender.contact_id,
            channel=event.channel,
            direction=Direction.OUTBOUND,
            body=reply,
            provider=event.provider,
            delivery_status="replied",
            address=event.recipient,
            meta={
                "event": "bot_reply",
                "in_reply_to": interaction_id,
                "keyword": str(keyword) if keyword else None,
            },
        )
    return InboundResult(interaction_id, sender.contact_id, reply=reply)
