"""A local HTTP server that speaks Africa's Talking's SMS API, for the adapter's real HTTP path.

It checks the ``apiKey`` header and the ``username`` field like Africa's Talking (a plain-text
401 otherwise), answers ``POST /version1/messaging`` with an ``SMSMessageData`` JSON body, one
recipient per number in ``to``, and can be scripted to answer with a recipient-level
``statusCode``, an HTTP error, or any raw body.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from channels.africastalking import SEND_STATUS_CODES

MESSAGING_PATH = "/version1/messaging"
COST = "KES 0.8000"
UNAUTHORIZED = "The supplied authentication is invalid"


@dataclass
class ScriptedAnswer:
    http_status: int
    status_code: int | None  # recipient-level statusCode; None: answer ``body`` as it is
    body: str | None


@dataclass
class FakeAfricasTalking:
    username: str
    api_key: str
    # The form of each authenticated request, as parse_qs gives it, and its headers.
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _scripted: deque[ScriptedAnswer] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(
        self,
        status_code: int | None = None,
        *,
        http_status: int | None = None,
        body: str | None = None,
        times: int = 1,
    ) -> None:
        """Script the next answers: a recipient ``statusCode`` (any, success codes included:
        HTTP 201, or 409 for DoNotDisturbRejection as documented), or an HTTP error
        (``http_status``, with ``body`` or a plain-text reason), or a raw ``body`` (HTTP 201)."""
        if status_code is None and http_status is None and body is None:
            raise ValueError("give a status_code, an http_status or a body")
        if http_status is None:
            http_status = 409 if status_code == 409 else 201
        for _ in range(times):
            self._scripted.append(ScriptedAnswer(http_status, status_code, body))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self._scripted.clear()

    def start(self) -> FakeAfricasTalking:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def _reply(self, status: int, body: str, content_type: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _text(self, status: int, text: str) -> None:
                self._reply(status, text, "text/plain; charset=utf-8")

            def _json(self, status: int, body: object) -> None:
                self._reply(status, json.dumps(body), "application/json")

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != MESSAGING_PATH:
                    self._text(404, "Not Found")
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                if (
                    self.headers.get("apiKey") != fake.api_key
                    or form.get("username", [""])[0] != fake.username
                ):
                    self._text(401, UNAUTHORIZED)
                    return
                with fake._lock:
                    fake.requests.append(form)
                    fake.headers.append(dict(self.headers.items()))
                    scripted = fake._scripted.popleft() if fake._scripted else None
                numbers = [n.strip() for n in form.get("to", [""])[0].split(",") if n.strip()]
                if not numbers or not form.get("message", [""])[0]:
                    self._json(
                        400, {"SMSMessageData": {"Message": "InvalidRequest", "Recipients": []}}
                    )
                    return
                if scripted is None:
                    self._json(201, _answer(numbers, 101))
                elif scripted.status_code is not None:
                    self._json(scripted.http_status, _answer(numbers, scripted.status_code))
                elif scripted.body is not None:
                    self._reply(scripted.http_status, scripted.body, _content_type(scripted.body))
                else:
                    self._text(scripted.http_status, f"HTTP {scripted.http_status}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _answer(numbers: list[str], status_code: int) -> dict[str, object]:
    accepted = status_code in (100, 101, 102)
    status = "Success" if accepted else SEND_STATUS_CODES.get(status_code, "Failed")
    recipients = [
        {
            "statusCode": status_code,
            "number": number,
            "status": status,
            "cost": COST if accepted else "0",
            "messageId": "ATXid_" + uuid.uuid4().hex if accepted else "None",
            "messageParts": 1 if accepted else 0,
        }
        for number in numbers
    ]
    sent = len(recipients) if accepted else 0
    total = f"KES {0.8 * sent:.4f}" if sent else "0"
    return {
        "SMSMessageData": {
            "Message": f"Sent to {sent}/{len(recipients)} Total Cost: {total}",
            "Recipients": recipients,
        }
    }
