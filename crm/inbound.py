"""An inbound message, from normalized event to stored interaction and bot reply.

Runs inside the webhook's one transaction: resolve the contact by identity, insert the
interaction once, apply keywords to consent, decide the reply (recorded on the timeline too),
and write the enrichment job to the outbox (enqueued by the caller's session after commit).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.keywords import Keyword, match_keyword, provider_keyword
from bot.replies import InboundFacts, ReplyTexts, decide_reply
from channels.base import InboundEvent
from crm import outbox
from crm.consent import is_opted_out, set_consent
from crm.contacts import resolve_by_phone
from crm.models import ConsentStatus, Direction
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.timeline import add_entry, insert_once


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
    resolved = resolve_by_phone(
        session=session, e164=e164, name=event.profile_name, channel=event.channel
    )
    contact = resolved.contact
    meta: dict[str, object] = {"from": event.sender, **event.extra}
    if event.media:
        meta["media"] = [{"url": m.url, "content_type": m.content_type} for m in event.media]
    if event.profile_name:
        meta["profile_name"] = event.profile_name
    interaction_id = insert_once(
        session,
        {
            "contact_id": contact.id,
            "channel": event.channel,
            "direction": Direction.INBOUND.value,
            "body": event.body,
            "provider": event.provider,
            "provider_message_id": event.provider_message_id,
            "address": event.recipient,
            "delivery_status": "received",
            "meta": meta,
            "created_at": utcnow(),
        },
    )
    if interaction_id is None:
        return InboundResult(None, contact.id, reply=None)

    if event.profile_name and not contact.name:
        contact.name = event.profile_name

    by_provider = provider_keyword(event.provider_opt_out)
    keyword = by_provider or match_keyword(event.body)
    if keyword is Keyword.OPT_OUT:
        set_consent(
            session=session,
            contact=contact,
            channel=event.channel,
            status=ConsentStatus.OPTED_OUT,
            source=f"keyword:{event.body.strip()[:20]}",
        )
    elif keyword is Keyword.OPT_IN:
        set_consent(
            session=session,
            contact=contact,
            channel=event.channel,
            status=ConsentStatus.OPTED_IN,
            source=f"keyword:{event.body.strip()[:20]}",
        )

    reply = decide_reply(
        InboundFacts(
            keyword=keyword,
            handled_by_provider=by_provider is not None,
            opted_out=is_opted_out(session, contact.id, event.channel),
            first_contact=resolved.created,
        ),
        texts,
    )
    if reply:
        add_entry(
            session=session,
            contact_id=contact.id,
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
    outbox.add(session, "enrich", interaction_id=interaction_id)
    return InboundResult(interaction_id, contact.id, reply=reply)
