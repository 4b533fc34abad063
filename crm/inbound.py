"""An inbound message, from normalized event to stored interaction and bot reply.

:func:`receive_inbound` is what webhooks call. Most messages come from a known contact and are
not a keyword; on PostgreSQL those are stored by one autocommit statement (``crm.ingest``), and
need no reply. Everything else (a new number, STOP/START/HELP, SQLite) takes
:func:`handle_inbound`: one transaction that resolves or creates the contact, inserts the
interaction once, applies keywords to consent and decides the reply (recorded on the timeline
too). Either way the enrichment job is written to the outbox with the interaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.auto_replies import AutoReplies
from bot.keywords import Keyword, match_keyword, provider_keyword
from bot.replies import InboundFacts, ReplyTexts, decide_reply
from channels.base import InboundEvent
from crm import outbox
from crm.consent import set_consent
from crm.contacts import resolve_by_phone
from crm.ingest import Message, one_statement, store_inbound, store_known_sender
from crm.messaging import queue_bot_reply
from crm.models import ConsentStatus, Contact, Direction
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.runtime import Runtime
from crm.signals import HUMAN_REQUEST, record_signal
from crm.timeline import add_entry, rep_is_handling


@dataclass(frozen=True)
class InboundResult:
    interaction_id: int | None  # None: a duplicate delivery, nothing stored
    contact_id: int
    reply: str | None

    @property
    def duplicate(self) -> bool:
        return self.interaction_id is None


def receive_inbound(
    *, runtime: Runtime, event: InboundEvent, inline_reply: bool = True
) -> InboundResult:
    """Store ``event`` once and decide the answer, on the cheapest path that is correct.

    With ``inline_reply`` the answer goes back in the webhook's response (TwiML); otherwise it
    is queued and sent through the provider's API. Raises InvalidPhoneNumber for a bad sender.
    """
    e164 = to_e164(event.sender_phone, runtime.settings.default_region)
    plain = _keyword(event) is None and runtime.auto_replies.match(event.body) is None
    if plain and one_statement(runtime.engine):
        with runtime.autocommit() as connection:
            stored = store_known_sender(connection, phone=e164, message=_message(event))
        if stored is not None:
            if stored.outbox_id is not None:
                outbox.announce(runtime.redis, [stored.outbox_id])
            # No keyword, no rule, not a first contact: the bot has nothing to say.
            return InboundResult(stored.interaction_id, stored.contact_id, reply=None)
    with runtime.session() as session:
        return handle_inbound(
            session=session,
            event=event,
            default_region=runtime.settings.default_region,
            texts=runtime.reply_texts,
            auto_replies=runtime.auto_replies,
            rep_handling_hours=runtime.settings.rep_handling_hours,
            inline_reply=inline_reply,
        )


def _keyword(event: InboundEvent) -> Keyword | None:
    return provider_keyword(event.provider_opt_out) or match_keyword(event.body)


def _message(event: InboundEvent) -> Message:
    meta: dict[str, object] = {"from": event.sender, **event.extra}
    if event.media:
        meta["media"] = [{"url": m.url, "content_type": m.content_type} for m in event.media]
    if event.profile_name:
        meta["profile_name"] = event.profile_name
    return Message(
        channel=event.channel,
        body=event.body,
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        address=event.recipient,
        metadata=meta,
        created_at=utcnow(),
        profile_name=event.profile_name,
    )


def handle_inbound(
    *,
    session: Session,
    event: InboundEvent,
    default_region: str,
    texts: ReplyTexts,
    auto_replies: AutoReplies | None = None,
    rep_handling_hours: int = 24,
    inline_reply: bool = True,
) -> InboundResult:
    """Store ``event`` once and decide the answer in the session's transaction.

    Raises InvalidPhoneNumber for a bad sender.
    """
    e164 = to_e164(event.sender_phone, default_region)
    message = _message(event)
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

    rule = auto_replies.match(event.body) if auto_replies and keyword is None else None
    if rule is not None and rule.handoff:
        record_signal(
            session=session,
            contact_id=sender.contact_id,
            kind=HUMAN_REQUEST,
            source_channel=event.channel,
            source_interaction_id=interaction_id,
            summary=f"Asked for a person ({event.channel.upper()}): {event.body[:80]}",
        )
    opted_out = consent == ConsentStatus.OPTED_OUT
    reply = decide_reply(
        InboundFacts(
            keyword=keyword,
            handled_by_provider=by_provider is not None,
            opted_out=opted_out,
            first_contact=created,
            auto_reply=rule.reply if rule else None,
            rep_handling=(
                rule is not None
                and rep_is_handling(session, sender.contact_id, hours=rep_handling_hours)
            ),
        ),
        texts,
    )
    meta = {
        "event": "bot_reply",
        "in_reply_to": interaction_id,
        "keyword": str(keyword) if keyword else None,
        "rule": rule.rule if rule else None,
    }
    if reply and not inline_reply:
        queue_bot_reply(
            session=session,
            contact_id=sender.contact_id,
            channel=event.channel,
            body=reply,
            provider=event.provider,
            to=e164,
            meta=meta,
            consent_exempt=keyword is Keyword.OPT_OUT,
        )
        return InboundResult(interaction_id, sender.contact_id, reply=reply)
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
            meta=meta,
        )
    return InboundResult(interaction_id, sender.contact_id, reply=reply)
