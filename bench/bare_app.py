"""A bare Flask app answering the Twilio messaging webhook: verify, reply, store nothing.

The baseline for ``bench/webhooks.py``: ``gunicorn 'bench.bare_app:create_app()'``, configured by
``TWILIO_AUTH_TOKEN`` and ``PUBLIC_BASE_URL`` like the real app.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

PATH = "/webhooks/twilio/messaging"


def create_app() -> Flask:
    """The bare app: one signed webhook route and a readiness route."""
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + PATH
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

    return app
