"""A local server that speaks Twilio's Messages REST API with a provider's latency and rate limit,
for bench/campaigns.py. Run in its own process (it shares no GIL with the workers):

    python -m bench.fake_provider --account-sid AC... --auth-token T --log arrivals.tsv

One asyncio loop, HTTP/1.1 with keep-alive, stdlib only: it holds hundreds of requests in
flight for the price of a coroutine each. Each ``POST /2010-04-01/Accounts/{sid}/Messages.json``
is checked for HTTP basic auth like Twilio, stamped on arrival (``time.time()``, once its body
is read), answered after ``--latency-ms``: 201 with a Message resource, or 429 (code 20429) when
``--rate`` requests were already accepted in the last second (a moving window). Every request
is logged as ``arrival<TAB>To<TAB>status`` to ``--log``, flushed every half second and on
SIGTERM/SIGINT. The port it listens on is printed as the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import signal
import sys
import time
import uuid
from collections import deque
from typing import TextIO
from urllib.parse import parse_qs

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")
REASONS = {201: "Created", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
MAX_BODY = 1 << 20


class Provider:
    """The state shared by every connection: credentials, the moving window, the log."""

    def __init__(
        self, account_sid: str, auth_token: str, rate: int, latency: float, log: TextIO
    ) -> None:
        self.account_sid = account_sid
        self.auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.rate = rate  # 0: no limit
        self.latency = latency
        self.accepted: deque[float] = deque()  # arrival times of accepted requests, last second
        self.log = log
        self.lines: list[str] = []

    def admit(self, now: float) -> bool:
        """Whether a request arriving ``now`` is under the rate (accepted ones in the last 1 s)."""
        if not self.rate:
            return True
        window = self.accepted
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.rate:
            return False
        window.append(now)
        return True

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, object]]:
        match = _MESSAGES.match(path)
        if not match:
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        if headers.get("authorization") != self.auth or match.group(1) != self.account_sid:
            return 401, {"code": 20003, "message": "Authenticate"}
        now = time.time()
        form = parse_qs(body.decode(), keep_blank_values=True)
        to = form.get("To", [""])[0]
        if not self.admit(now):
            self.lines.append(f"{now:.6f}\t{to}\t429\n")
            return 429, {
                "code": 20429,
                "message": "Too Many Requests",
                "more_info": "https://www.twilio.com/docs/errors/20429",
            }
        self.lines.append(f"{now:.6f}\t{to}\t201\n")
        sid = "SM" + uuid.uuid4().hex
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
            "from": form.get("From", [None])[0],
            "to": to,
            "body": form.get("Body", [""])[0],
            "status": "accepted",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "date_created": "Mon, 23 Nov 2026 09:00:00 +0000",
            "date_updated": "Mon, 23 Nov 2026 09:00:00 +0000",
            "date_sent": None,
            "subresource_uris": {},
        }

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            self.log.write("".join(lines))
            self.log.flush()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests one after another (keep-alive) until the client closes."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    break
                body = await reader.readexactly(length) if length else b""
                if method == "POST":
                    status, payload = self.answer(path, headers, body)
                else:
                    status, payload = 404, {"code": 20404, "message": "Not found"}
                if status != 201:
                    payload["status"] = status
                await asyncio.sleep(self.latency)
                data = json.dumps(payload).encode()
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                writer.write(
                    (
                        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                        "Content-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n"
                        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
                    ).encode()
                    + data
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def run(args: argparse.Namespace) -> None:
    with open(args.log, "a", encoding="ascii") as log:
        provider = Provider(
            args.account_sid, args.auth_token, args.rate, args.latency_ms / 1000, log
        )
        server = await asyncio.start_server(
            provider.serve, args.host, args.port, backlog=1024, limit=MAX_BODY
        )
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                provider.flush()
        provider.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--rate", type=int, default=200, help="per second; 0: no limit")
    parser.add_argument("--log", required=True, help="file the arrivals are appended to")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
