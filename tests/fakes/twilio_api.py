"""A local HTTP server that speaks Twilio's Messages REST API, for the real SDK to talk to.

It checks HTTP basic auth like Twilio, answers ``POST /2010-04-01/Accounts/{sid}/Messages.json``
with a Message resource, and can be scripted to answer with Twilio's error bodies.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")


@dataclass
class ScriptedError:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    _errors: deque[ScriptedError] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, status: int, code: int, message: str, times: int = 1) -> None:
        for _ in range(times):
            self._errors.append(ScriptedError(status, code, message))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._errors.clear()

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                match = _MESSAGES.match(self.path)
                if not match:
                    self._reply(
                        404,
                        {
                            "code": 20404,
                            "message": "The requested resource was not found",
                            "status": 404,
                        },
                    )
                    return
                expected = base64.b64encode(
                    f"{fake.account_sid}:{fake.auth_token}".encode()
                ).decode()
                if (
                    self.headers.get("Authorization") != f"Basic {expected}"
                    or match.group(1) != fake.account_sid
                ):
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                with fake._lock:
                    fake.requests.append(form)
                    error = fake._errors.popleft() if fake._errors else None
                if error is not None:
                    self._reply(
                        error.status,
                        {
                            "code": error.code,
                            "message": error.message,
                            "status": error.status,
                            "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
                        },
                    )
                    return
                sid = "SM" + uuid.uuid4().hex
                sender = form.get("From", [None])[0]
                self._reply(
                    201,
                    {
                        "sid": sid,
                        "account_sid": fake.account_sid,
                        "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
                        "from": sender,
                        "to": form["To"][0],
                        "body": form.get("Body", [""])[0],
                        "status": "queued" if sender else "accepted",
                        "num_segments": "1",
                        "num_media": "0",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                        "price": None,
                        "price_unit": "USD",
                        "error_code": None,
                        "error_message": None,
                        "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json",
                        "date_created": "Mon, 23 Nov 2026 09:00:00 +0000",
                        "date_updated": "Mon, 23 Nov 2026 09:00:00 +0000",
                        "date_sent": None,
                        "subresource_uris": {},
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
