"""Provider webhook routes: verify, parse, store, answer, enqueue. Nothing slow happens here.

One blueprint under ``/webhooks``; the routes live beside it by kind: ``messaging`` (SMS and
WhatsApp from every adapter, and their delivery statuses), ``ussd`` (Africa's Talking menus)
and ``voice`` (Twilio IVR calls).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from channels.base import ChannelAdapter, WebhookRequest
from crm.runtime import Runtime

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def runtime() -> Runtime:
    return current_app.extensions["crm"]


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def public_url(rt: Runtime) -> str:
    """The URL the provider called: rebuilt from PUBLIC_BASE_URL behind a proxy."""
    base = rt.settings.public_base_url
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def verified(adapter_name: str) -> tuple[ChannelAdapter, WebhookRequest] | None:
    """The adapter and the request, if the adapter exists and the request is genuine."""
    rt = runtime()
    adapter = rt.adapters.get(adapter_name)
    if adapter is None:
        return None
    incoming = WebhookRequest(
        url=public_url(rt),
        form=request.form.to_dict(flat=True),
        headers=request.headers,
        remote_addr=request.remote_addr,
    )
    return (adapter, incoming) if adapter.verify(incoming) else None


from crm.webhooks import messaging, ussd, voice  # noqa: E402,F401 - registers the routes
