"""Provider webhook routes: verify, parse, store, answer, enqueue. Nothing slow happens here.

Routes are generated from the adapters list: ``/webhooks/<adapter>/messaging`` and
``/webhooks/<adapter>/status``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import ChannelAdapter, PayloadError, WebhookRequest
from crm.inbound import receive_inbound
from crm.messaging import apply_status
from crm.phones import InvalidPhoneNumber
from crm.runtime import Runtime

log = logging.getLogger(__name__)

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _runtime() -> Runtime:
    return current_app.extensions["crm"]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def _public_url(runtime: Runtime) -> str:
    """The URL the provider signed: rebuilt from PUBLIC_BASE_URL behind a proxy."""
    base = runtime.settings.public_base_url
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def _verified(adapter_name: str) -> tuple[ChannelAdapter, WebhookRequest] | None:
    runtime = _runtime()
    adapter = runtime.adapters.get(adapter_name)
    if adapter is None:
        return None
    incoming = WebhookRequest(
        url=_public_url(runtime),
        form=request.form.to_dict(flat=True),
        headers=request.headers,
        remote_addr=request.remote_addr,
    )
    return (adapter, incoming) if adapter.verify(incoming) else None


def _twiml(reply: str | None) -> Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), mimetype="text/xml")


@webhooks.post("/<adapter_name>/messaging")
def messaging(adapter_name: str):  # type: ignore[no-untyped-def]
    runtime = _runtime()
    verified = _verified(adapter_name)
    if verified is None:
        return _error(403, "invalid or missing webhook signature")
    adapter, incoming = verified
    try:
        event = adapter.parse(incoming)
    except PayloadError as exc:
        return _error(400, str(exc))
    try:
        result = receive_inbound(runtime=runtime, event=event)
    except InvalidPhoneNumber as exc:
        return _error(400, f"sender: {exc}")
    if result.duplicate:
        log.info("duplicate delivery of %s %s ignored", event.provider, event.provider_message_id)
    return _twiml(result.reply)


@webhooks.post("/<adapter_name>/status")
def status(adapter_name: str):  # type: ignore[no-untyped-def]
    runtime = _runtime()
    verified = _verified(adapter_name)
    if verified is None:
        return _error(403, "invalid or missing webhook signature")
    adapter, incoming = verified
    try:
        update = adapter.parse_status(incoming)
    except PayloadError as exc:
        return _error(400, str(exc))
    with runtime.session() as session:
        changed = apply_status(session=session, update=update)
    if changed is None:
        log.info(
            "status %s for %s changed nothing (unknown message or not newer)",
            update.status,
            update.provider_message_id,
        )
    return Response(status=204)
