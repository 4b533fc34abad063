"""Africa's Talking USSD: one hop per request, answered ``CON ...`` or ``END ...`` as text.

The gateway ends the session on the handset for anything but a ``CON``/``END`` answer, so a
refused or malformed request gets a plain-text ``END`` with the HTTP error status.
"""

from __future__ import annotations

import logging

from flask import Response

from channels.africastalking import AfricasTalkingAdapter
from channels.base import PayloadError
from crm.phones import InvalidPhoneNumber
from crm.ussd import answer_hop, record_session_end
from crm.webhooks import runtime, verified, webhooks

log = logging.getLogger(__name__)

PROVIDER = "africastalking"
REFUSED = "missing or wrong callback key, or address not allowed"


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


@webhooks.post("/africastalking/ussd")
def ussd_hop():  # type: ignore[no-untyped-def]
    checked = verified(PROVIDER)
    if checked is None:
        return _text(f"END {REFUSED}", 403)
    adapter, incoming = checked
    if not isinstance(adapter, AfricasTalkingAdapter):
        return _text("END USSD is not configured", 404)
    rt = runtime()
    try:
        hop = adapter.parse_ussd(incoming)
        answer = answer_hop(runtime=rt, menu=rt.menu, hop=hop)
    except PayloadError as exc:
        return _text(f"END Sorry, we could not read that request ({exc}).", 400)
    except InvalidPhoneNumber as exc:
        return _text(f"END Sorry, we could not read your number ({exc}).", 400)
    return _text(answer.body)


@webhooks.post("/africastalking/ussd/events")
def ussd_session_end():  # type: ignore[no-untyped-def]
    checked = verified(PROVIDER)
    if checked is None:
        return _text(REFUSED, 403)
    adapter, incoming = checked
    if not isinstance(adapter, AfricasTalkingAdapter):
        return _text("USSD is not configured", 404)
    try:
        end = adapter.parse_ussd_end(incoming)
        interaction = record_session_end(runtime=runtime(), end=end)
    except (PayloadError, InvalidPhoneNumber) as exc:
        return _text(str(exc), 400)
    log.info("USSD session %s ended: %s", end.session_id, interaction.delivery_status)
    return _text("OK")
