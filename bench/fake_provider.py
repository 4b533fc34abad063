"""A local server that speaks Twilio's Messages REST API with a provider's latency and rate limit,
for bench/campaigns.py. Run in its own process (it shares no GIL with the workers):

    python -m bench.fake_provider --account-sid AC... --auth-token T --log arrivals.tsv

One asyncio loop, HTTP/1.1 with keep-alive, stdlib only: it holds hundreds of requests in
flight for the price of a coroutine each. Each ``POST /2010-04-01/Accounts/{sid}/Messages.json``
is checked for HTTP basic auth like Twilio, stamped on arrival (``time.time()``, once its body
is read), answered after ``--latency-ms``: 201 with a Message resource, or 429 (code 20429) when
``--rate`` requests were already accepted in the last second (a moving window). Every such
send (a POST past the path and auth checks) is logged as ``arrival<TAB>To<TAB>status`` to
``--log``, flushed every half second and on SIGTERM/SIGINT. The port it listens on is printed as
the first line of stdout.

``GET`` on the same path answers Twilio's "Read multiple Message resources" (the SDK's
``client.messages.list()`` / ``.stream()``), after the same auth check and latency, and is
neither logged nor counted against ``--rate``: 200 with the accepted (201) messages, newest
first, each the resource its POST answered, in Twilio's envelope ``{"messages": [...], "start",
"end", "page", "page_size", "uri", "first_page_uri", "previous_page_uri", "next_page_uri"}``.
Filters: ``To``, ``From`` (exact), ``DateSent`` (that day or second), ``DateSent<`` (on or
before), ``DateSent>`` (on or after), each ``YYYY-MM-DD`` or an ISO 8601 datetime (naive: UTC;
midnight UTC: the whole day, as the SDK sends a ``date``); ``date_sent`` is never set, so they
compare ``date_created``, the UTC second of acceptance. Paging: ``PageSize`` (default 50, at
most 1000) and a page number ``Page`` from 0, which the page URIs carry instead of Twilio's
``PageToken`` (ignored); pages are offsets into the list as it is when each is read. Every
accepted message is kept in memory for this, indexed by ``To`` (about 0.65 KB each: some 65 MB
per 100,000); a list filtered by ``From`` or date but not ``To`` scans them all, in the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import re
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import NamedTuple, TextIO
from urllib.parse import parse_qs, urlencode

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")
REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
}
MAX_BODY = 1 << 20
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class Message(NamedTuple):
    """An accepted message, as little as rebuilds the resource its POST answered."""

    created: int  # epoch second (UTC) of acceptance
    sid: str
    to: str
    sender: str | None
    body: str
    service: str | None


def _shared(value: str | None) -> str | None:
    """One copy of a sender or service SID for all the messages kept."""
    return None if value is None else sys.intern(value)


class BadQuery(ValueError):
    """A list query Twilio would refuse with a 400."""


def _date_filter(name: str, value: str) -> Callable[[int], bool]:
    """``DateSent``, ``DateSent<`` or ``DateSent>`` over an epoch second of acceptance."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"Invalid {name}: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if not (moment.hour or moment.minute or moment.second or moment.microsecond):
        # a whole day (a YYYY-MM-DD, or the SDK's serialized date), [low, high)
        low = int(moment.timestamp())
        high = low + 86400
    else:  # a second
        low = math.floor(moment.timestamp())
        high = low + 1
    if name == "DateSent<":
        return lambda created: created < high
    if name == "DateSent>":
        return lambda created: created >= low
    return lambda created: low <= created < high


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
        self.messages: list[Message] = []  # every accepted one, oldest first
        self.by_to: dict[str, list[Message]] = {}
        self._stamp = (-1, "")  # the last second formatted, and its RFC 2822 form

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
        message = Message(
            created=int(now),
            sid="SM" + uuid.uuid4().hex,
            to=to,
            sender=_shared(form.get("From", [None])[0]),
            body=form.get("Body", [""])[0],
            service=_shared(form.get("MessagingServiceSid", [None])[0]),
        )
        self.messages.append(message)
        self.by_to.setdefault(to, []).append(message)
        return 201, self.resource(message)

    def stamp(self, second: int) -> str:
        """``Mon, 23 Nov 2026 09:00:00 +0000`` for an epoch second (the last one is cached)."""
        if self._stamp[0] != second:
            self._stamp = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
        return self._stamp[1]

    def resource(self, message: Message) -> dict[str, object]:
        """The Message resource, as the POST answered it and the list repeats it."""
        stamp = self.stamp(message.created)
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": message.service,
            "from": message.sender,
            "to": message.to,
            "body": message.body,
            "status": "accepted",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}.json",
            "date_created": stamp,
            "date_updated": stamp,
            "date_sent": None,
            "subresource_uris": {},
        }

    def listing(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        """``GET Messages.json``: a page of the accepted messages, newest first. Not a send:
        neither logged nor counted against the rate."""
        path, _, query = target.partition("?")
        match = _MESSAGES.match(path)
        if not match:
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        if headers.get("authorization") != self.auth or match.group(1) != self.account_sid:
            return 401, {"code": 20003, "message": "Authenticate"}
        try:
            return 200, self.page(path, parse_qs(query, keep_blank_values=True))
        except BadQuery as error:
            return 400, {"code": 20001, "message": str(error)}

    def page(self, path: str, params: dict[str, list[str]]) -> dict[str, object]:
        def one(name: str) -> str | None:
            return params.get(name, [""])[0].strip() or None

        def number(name: str, default: int, low: int) -> int:
            raw = one(name)
            if raw is None:
                return default
            if not raw.isdigit() or int(raw) < low:
                raise BadQuery(f"Invalid {name}: {raw!r}")
            return int(raw)

        echo = [
            (name, value)
            for name in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if (value := one(name)) is not None
        ]
        dates = [_date_filter(name, value) for name, value in echo if name.startswith("Date")]
        page_no = number("Page", 0, 0)
        size = min(number("PageSize", DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        to, sender = one("To"), one("From")
        start = page_no * size
        wanted = start + size + 1  # one more tells whether a next page exists
        found: list[Message] = []
        for message in reversed(self.messages if to is None else self.by_to.get(to, [])):
            if (sender is None or message.sender == sender) and all(
                check(message.created) for check in dates
            ):
                found.append(message)
                if len(found) == wanted:
                    break
        records = [self.resource(message) for message in found[start : start + size]]

        def uri(n: int) -> str:
            return f"{path}?" + urlencode([*echo, ("PageSize", str(size)), ("Page", str(n))])

        return {
            "messages": records,
            "end": start + len(records) - 1 if records else start,
            "first_page_uri": uri(0),
            "next_page_uri": uri(page_no + 1) if len(found) == wanted else None,
            "page": page_no,
            "page_size": size,
            "previous_page_uri": uri(page_no - 1) if page_no > 0 else None,
            "start": start,
            "uri": uri(page_no),
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
                elif method == "GET":
                    status, payload = self.listing(path, headers)
                else:
                    status, payload = 404, {"code": 20404, "message": "Not found"}
                if status >= 400:
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
