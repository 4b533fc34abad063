"""A bare Flask app answering the provider webhooks: verify, reply, store nothing.

The baseline for ``bench/webhooks.py`` (Twilio messaging) and ``bench/ussd.py`` (Africa's
Talking USSD): ``gunicorn 'bench.bare_app:create_app()'``, configured by ``TWILIO_AUTH_TOKEN``,
``AT_WEBHOOK_SECRET`` and ``PUBLIC_BASE_URL`` like the real app.
"""

from __future__ import annotations

import hmac
import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

PATH = "/webhooks/twilio/messaging"
USSD_PATH = "/webhooks/africastalking/ussd"
USSD_SCREEN = (
    "CON Welcome to Sunrise Solar.\n1 Products and prices\n2 My account\n"
    "3 Update my details\n4 Request a call back\n5 Stop promotions"
)


def create_app() -> Flask:
    """The bare app: a signed Twilio route, a USSD route behind the callback key, a ready route."""
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + PATH
    at_secret = os.environ.get("AT_WEBHOOK_SECRET", "").encode()
    app = Flask(__name__)

    @app.get("/")
    def ready() -> str:
        return "ok"

    @app.post(PATH)
    def messaging() -> Response | tuple[str, int]:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, request.form.to_dict(flat=True), signature):
            return "invalid signature", 403
        return Response(str(MessagingResponse()), mimetype="text/xml")

    @app.post(USSD_PATH)
    def ussd() -> Response:
        keys = request.args.getlist("key")
        if not at_secret or len(keys) != 1 or not hmac.compare_digest(keys[0].encode(), at_secret):
            return Response("END refused", status=403, mimetype="text/plain")
        form = request.form
        session_id, phone, _text = form.get("sessionId"), form.get("phoneNumber"), form.get("text")
        if not session_id or not phone:
            return Response("END bad request", status=400, mimetype="text/plain")
        return Response(USSD_SCREEN, mimetype="text/plain")

    return app
