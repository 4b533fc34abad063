"""Voice calls: the menu spoken over Twilio, a person on request, voicemail when no one answers.

Each call is one interaction (unique on the CallSid), updated at every step: the path through
the menu, what the caller pressed or said, who was dialled and how that ended, the voicemail's
recording and transcript, and the call's final status and duration. A call that reached no
one is marked missed, and a voicemail is also a timeline entry of its own so a rep sees it.

The menu position travels in the Gather action URL (the inputs so far), as USSD's does in the
gateway's ``text``; Twilio signs that URL, so it cannot be tampered with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.menu import Menu
from bot.menu_walk import walk
from bot.voice_menu import AGENT_WORDS, max_key_length, speech_to_input, spoken_prompt, wants_agent
from channels import twilio_voice
from channels.base import CallEvent
from crm import outbox
from crm.contacts import resolve_by_phone, touched
from crm.handoffs import record_first_touch
from crm.menu_actions import apply_effects, template_data
from crm.models import Channel, Contact, Direction, Interaction, Role, User
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.runtime import Runtime
from crm.scoring import Event, apply_events
from crm.sequence_triggers import note
from crm.signals import CALLBACK_REQUEST, record_signal
from crm.timeline import add_entry, insert_once

BASE = "/webhooks/twilio/voice"
NOTHING_HEARD = "Sorry, we did not hear a choice. Goodbye."
VOICEMAIL_PROMPT = (
    "Sorry, no one can take your call right now. Please leave your name and message after the "
    "tone, and we will call you back."
)
MISSED = frozenset({"busy", "no-answer", "failed", "canceled"})


def gather_url(inputs: list[str]) -> str:
    query = urlencode([("i", value) for value in inputs])
    return f"{BASE}/gather" + (f"?{query}" if query else "")


def _call(session: Session, runtime: Runtime, event: CallEvent) -> Interaction:
    """The call's interaction, created (with its contact) on the first webhook that names it."""
    found = session.scalar(
        select(Interaction).where(
            Interaction.provider == event.provider,
            Interaction.provider_message_id == event.call_sid,
        )
    )
    if found is not None:
        return found
    e164 = to_e164(event.caller, runtime.settings.default_region)
    contact = resolve_by_phone(
        session=session, e164=e164, name=event.caller_name, channel=Channel.VOICE
    ).contact
    touched(contact, Channel.VOICE.value, utcnow())
    insert_once(
        session,
        {
            "contact_id": contact.id,
            "channel": Channel.VOICE.value,
            "direction": Direction.INBOUND.value,
            "body": f"Call from {e164}",
            "provider": event.provider,
            "provider_message_id": event.call_sid,
            "address": event.called,
            "delivery_status": event.status,
            "metadata": {
                "from": e164,
                "caller_name": event.caller_name,
                "path": [],
                "inputs": [],
                "missed": False,
            },
            "created_at": utcnow(),
        },
    )
    return session.scalars(
        select(Interaction).where(
            Interaction.provider == event.provider,
            Interaction.provider_message_id == event.call_sid,
        )
    ).one()


def _update(call: Interaction, **changes: Any) -> None:
    call.meta = {**call.meta, **changes}


def _menu_twiml(
    menu: Menu, call: Interaction, contact: Contact, inputs: list[str], error: str | None
) -> str:
    result = walk(menu, inputs, paginate=False)
    node = menu.node(result.node_id)
    text = spoken_prompt(node, template_data(contact, call.meta.get("from", "")))
    if error:
        text = f"{error} {text}"
    if node.end:
        return twilio_voice.say_and_hang_up(text)
    hints = ", ".join([*(o.label for o in node.options), *sorted(AGENT_WORDS)])
    return twilio_voice.gather(
        text,
        action=gather_url(inputs),
        num_digits=max_key_length(menu, node) if node.options else None,
        hints=hints,
        fallback=NOTHING_HEARD,
    )


def answer_call(*, runtime: Runtime, event: CallEvent) -> str:
    """A new inbound call: the start of the menu."""
    with runtime.session() as session:
        call = _call(session, runtime, event)
        _update(call, path=[runtime.menu.start])
        contact = session.get_one(Contact, call.contact_id)
        return _menu_twiml(runtime.menu, call, contact, [], None)


def answer_gather(*, runtime: Runtime, event: CallEvent, inputs: list[str]) -> str:
    """The caller pressed keys or spoke at the menu position ``inputs``."""
    menu = runtime.menu
    with runtime.session() as session:
        call = _call(session, runtime, event)
        heard = {"digits": event.digits} if event.digits else {"speech": event.speech}
        if event.confidence is not None:
            heard["confidence"] = event.confidence
        _update(call, inputs=[*call.meta.get("inputs", []), heard])
        contact = session.get_one(Contact, call.contact_id)
        if wants_agent(event.digits, event.speech):
            return _connect_to_person(session, call, contact)
        node = menu.node(walk(menu, inputs, paginate=False).node_id)
        value = event.digits if event.digits else speech_to_input(node, event.speech or "")
        if value is None:
            return _menu_twiml(menu, call, contact, inputs, "Sorry, I did not catch that.")
        result = walk(menu, [*inputs, value], paginate=False)
        if result.error:
            return _menu_twiml(menu, call, contact, inputs, result.error)
        apply_effects(
            session=session,
            contact=contact,
            effects=result.effects,
            channel=Channel.VOICE,
            interaction_id=call.id,
            node_id=result.node_id,
        )
        note(session, "menu_node", contact, result.node_id)
        _update(call, path=list(result.path))
        session.flush()
        return _menu_twiml(menu, call, contact, [*inputs, value], None)


def rep_phone(session: Session, contact: Contact) -> str | None:
    """Whom to dial: the contact's owner, else the first active rep with a phone."""
    if contact.owner_id is not None:
        owner = session.get(User, contact.owner_id)
        if owner is not None and owner.active and owner.phone:
            return owner.phone
    return session.scalar(
        select(User.phone)
        .where(User.active.is_(True), User.role == Role.REP.value, User.phone.is_not(None))
        .order_by(User.id)
        .limit(1)
    )


def _connect_to_person(session: Session, call: Interaction, contact: Contact) -> str:
    record_signal(
        session=session,
        contact_id=contact.id,
        kind=CALLBACK_REQUEST,
        source_channel=Channel.VOICE,
        source_interaction_id=call.id,
        summary="Asked for a person on a call",
    )
    number = rep_phone(session, contact)
    if number is None:
        _update(call, dial={"to": None, "status": "no-rep"})
        return _voicemail_twiml()
    _update(call, dial={"to": number, "status": "dialling"})
    return twilio_voice.dial(
        number, text="Connecting you to one of our team.", action=f"{BASE}/dial-status"
    )


def _voicemail_twiml() -> str:
    return twilio_voice.voicemail(
        VOICEMAIL_PROMPT, action=f"{BASE}/recording", transcribe_callback=f"{BASE}/transcription"
    )


def answer_dial_outcome(*, runtime: Runtime, event: CallEvent) -> str:
    """The rep's phone answered, or not: on no answer, voicemail."""
    with runtime.session() as session:
        call = _call(session, runtime, event)
        dialled = call.meta.get("dial") or {}
        _update(
            call,
            dial={**dialled, "status": event.dial_status, "duration_s": event.dial_duration_s},
        )
        if event.dial_status == "completed":
            _talked_to_a_person(session, call, dialled.get("to"))
            return twilio_voice.say_and_hang_up("Thank you for calling. Goodbye.")
        _update(call, missed=True)
        return _voicemail_twiml()


def _talked_to_a_person(session: Session, call: Interaction, rep_number: str | None) -> None:
    """A rep picked up: the lead scores for a call answered, and it is the rep's first touch."""
    contact = session.get_one(Contact, call.contact_id)
    apply_events(
        session, {contact: [Event("call_answered", f"call:{call.id}", utcnow(), Channel.VOICE)]}
    )
    rep_id = session.scalar(select(User.id).where(User.phone == rep_number)) if rep_number else None
    if rep_id is not None:
        record_first_touch(session, contact.id, rep_id)


def record_voicemail(*, runtime: Runtime, event: CallEvent) -> str:
    """The caller left a message: on the call, and as its own timeline entry."""
    with runtime.session() as session:
        call = _call(session, runtime, event)
        _update(
            call,
            missed=True,
            voicemail={"url": event.recording_url, "duration_s": event.recording_duration_s},
        )
        already = session.scalar(
            select(Interaction.id).where(
                Interaction.provider == "twilio-voicemail",
                Interaction.provider_message_id == event.call_sid,
            )
        )
        if already is not None:  # Twilio retried the webhook
            return twilio_voice.say_and_hang_up("Thank you, we got your message. Goodbye.")
        add_entry(
            session=session,
            contact_id=call.contact_id,
            channel=Channel.VOICE,
            direction=Direction.INBOUND,
            body=f"Voicemail ({event.recording_duration_s or 0} s)",
            provider="twilio-voicemail",
            provider_message_id=event.call_sid,
            meta={
                "event": "voicemail",
                "call_interaction_id": call.id,
                "recording_url": event.recording_url,
            },
        )
    return twilio_voice.say_and_hang_up("Thank you, we got your message. Goodbye.")


def record_transcription(*, runtime: Runtime, event: CallEvent) -> None:
    """The voicemail's transcript: on the call and the voicemail entry, then enriched."""
    with runtime.session() as session:
        call = _call(session, runtime, event)
        _update(call, transcript=event.transcription, transcription=event.transcription_status)
        entry = session.scalar(
            select(Interaction).where(
                Interaction.provider == "twilio-voicemail",
                Interaction.provider_message_id == event.call_sid,
            )
        )
        if entry is not None and event.transcription:
            entry.body = event.transcription
            entry.meta = {**entry.meta, "transcript": event.transcription}
            outbox.add(session, "enrich", interaction_id=entry.id)


def record_call_status(*, runtime: Runtime, event: CallEvent) -> Interaction:
    """The call's status callback: its final status and duration; unanswered calls are missed."""
    with runtime.session() as session:
        call = _call(session, runtime, event)
        call.delivery_status = event.status
        changes: dict[str, Any] = {"duration_s": event.duration_s}
        if event.status in MISSED:
            changes["missed"] = True
        if event.recording_url:
            changes["recording_url"] = event.recording_url
        _update(call, **changes)
        call.body = _summary(call)
        return call


def _summary(call: Interaction) -> str:
    meta = call.meta
    parts = [f"Call from {meta.get('from', '')} ({call.delivery_status}"]
    if meta.get("duration_s") is not None:
        parts[0] += f", {meta['duration_s']} s"
    parts[0] += ")"
    if meta.get("missed"):
        parts.append("missed")
    if meta.get("voicemail"):
        parts.append("voicemail left")
    if len(meta.get("path") or []) > 1:
        parts.append("menu: " + " > ".join(meta["path"]))
    return "; ".join(parts)
