"""SMS and WhatsApp: inbound messages and delivery statuses, for every messaging adapter.

Twilio takes the bot's answer as TwiML in the response; Africa's Talking takes none, so its
answers are queued and sent through its API.
"""

from __future__ import annotations

import logging

from flask import Response
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import ChannelAdapter, PayloadError, WebhookRequest
from crm.inbound import receive_inbound
from crm.messaging import apply_status
from crm.phones import InvalidPhoneNumber
from crm.webhooks import error, runtime, verified, webhooks

log = logging.getLogger(__name__)

# Adapters whose webhook response can carry the reply (TwiML).
INLINE_REPLY = {"twilio"}


def _twiml(reply: str | None) -> Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), mimetype="text/xml")


@webhooks.post("/<adapter_name>/messaging")
def messaging(adapter_name: str):  # type: ignore[no-untyped-def]
    checked = verified(adapter_name)
    if checked is None:
        return error(403, "invalid or missing webhook signature")
    return _inbound(*checked)


@webhooks.post("/africastalking/sms")
def africastalking_sms():  # type: ignore[no-untyped-def]
    checked = verified("africastalking")
    if checked is None:
        return error(403, "missing or wrong callback key, or address not allowed")
    return _inbound(*checked)


def _inbound(adapter: ChannelAdapter, incoming: WebhookRequest):  # type: ignore[no-untyped-def]
    try:
        event = adapter.parse(incoming)
    except PayloadError as exc:
        return error(400, str(exc))
    inline = adapter.name in INLINE_REPLY
    try:
        result = receive_inbound(runtime=runtime(), event=event, inline_reply=inline)
    except InvalidPhoneNumber as exc:
        return error(400, f"sender: {exc}")
    if result.duplicate:
        log.info("duplicate delivery of %s %s ignored", event.provider, event.provider_message_id)
    return _twiml(result.reply) if inline else Response(status=200)


@webhooks.post("/<adapter_name>/status")
def status(adapter_name: str):  # type: ignore[no-untyped-def]
    checked = verified(adapter_name)
    if checked is None:
        return error(403, "invalid or missing webhook signature")
    return _status(*checked)


@webhooks.post("/africastalking/sms/delivery")
def africastalking_delivery():  # type: ignore[no-untyped-def]
    checked = verified("africastalking")
    if checked is None:
        return error(403, "missing or wrong callback key, or address not allowed")
    return _status(*checked)


def _status(adapter: ChannelAdapter, incoming: WebhookRequest):  # type: ignore[no-untyped-def]
    try:
        update = adapter.parse_status(incoming)
    except PayloadError as exc:
        return error(400, str(exc))
    with runtime().session() as session:
        changed = apply_status(session=session, update=update)
    if changed is None:
        log.info(
            "status %s for %s changed nothing (unknown message or not newer)",
            update.status,
            update.provider_message_id,
        )
    return Response(status=204)
