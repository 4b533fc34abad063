"""A local HTTP server that speaks Twilio's Messages REST API, for the real SDK to talk to.

It checks HTTP basic auth like Twilio, answers ``POST /2010-04-01/Accounts/{sid}/Messages.json``
with a Message resource, and can be scripted to answer with Twilio's error bodies.

It also answers Twilio's "Read multiple Message resources" call, ``GET
/2010-04-01/Accounts/{sid}/Messages.json``, so that the SDK's ``client.messages.list()`` and
``.stream()`` work: the messages it accepted (answered 201; scripted errors are not stored),
most recent first, as the very resources the POST answered, in Twilio's page envelope::

    {"messages": [...], "start": 0, "end": 1, "page": 0, "page_size": 50,
     "uri": "...", "first_page_uri": "...", "previous_page_uri": null, "next_page_uri": null}

Filters: ``To`` and ``From`` (exact match), ``DateSent`` (that day, or that second),
``DateSent<`` (on or before) and ``DateSent>`` (on or after), each a ``YYYY-MM-DD`` date or an
ISO 8601 datetime (naive ones are UTC). A datetime at exactly midnight UTC counts as the whole
day, as the SDK sends a ``date`` that way (``2026-11-23T00:00:00Z``). This fake never sets
``date_sent``, so the date filters compare each message's ``date_created`` (the UTC second it
was accepted). Paging: ``PageSize`` (default 50, at most 1000) and a page number ``Page`` (from
0); ``next_page_uri`` and ``previous_page_uri`` carry ``Page=n`` instead of Twilio's opaque
``PageToken`` (which is ignored), so ``stream()`` reads every page. Pages are offsets into the
newest-first list at the time each is read: messages accepted while paging shift them.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_NOT_FOUND = {"code": 20404, "message": "The requested resource was not found", "status": 404}
_UNAUTHORIZED = {"code": 20003, "message": "Authenticate", "status": 401}


@dataclass
class ScriptedError:
    status: int
    code: int
    message: str


@dataclass
class _Accepted:
    created: datetime  # UTC, to the second
    to: str
    sender: str | None
    resource: dict[str, object]


class _Server(ThreadingHTTPServer):
    # A campaign job opens up to CAMPAIGN_THREADS connections at once; the default backlog of 5
    # refused some, which a real provider's load balancer never does.
    request_queue_size = 128


def rfc2822(moment: datetime) -> str:
    """``Mon, 23 Nov 2026 09:00:00 +0000``, as Twilio writes its dates."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


class BadQuery(ValueError):
    """A list query Twilio would refuse with a 400."""


def _moment(name: str, value: str) -> tuple[datetime, bool]:
    """The UTC moment a ``DateSent`` value names, and whether it names a whole day."""
    try:
        if _DAY.match(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC), True
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"Invalid {name}: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0), moment.time() == time()


def _date_filter(name: str, value: str) -> Callable[[datetime], bool]:
    moment, whole_day = _moment(name, value)
    if whole_day:
        day = moment.date()
        if name == "DateSent<":
            return lambda created: created.date() <= day
        if name == "DateSent>":
            return lambda created: created.date() >= day
        return lambda created: created.date() == day
    if name == "DateSent<":
        return lambda created: created <= moment
    if name == "DateSent>":
        return lambda created: created >= moment
    return lambda created: created == moment


@dataclass
class ListQuery:
    """A parsed ``GET Messages.json`` query string."""

    to: str | None
    sender: str | None
    dates: list[Callable[[datetime], bool]]
    page: int
    page_size: int
    echo: list[tuple[str, str]]  # the filters, as given, for the page URIs

    @classmethod
    def parse(cls, query: str) -> ListQuery:
        params = parse_qs(query, keep_blank_values=True)

        def one(name: str) -> str | None:
            value = params.get(name, [""])[0].strip()
            return value or None

        def number(name: str, default: int, low: int) -> int:
            raw = one(name)
            if raw is None:
                return default
            if not raw.isdigit() or int(raw) < low:
                raise BadQuery(f"Invalid {name}: {raw!r}")
            return int(raw)

        echo = []
        dates = []
        for name in ("To", "From", "DateSent", "DateSent<", "DateSent>"):
            value = one(name)
            if value is None:
                continue
            echo.append((name, value))
            if name.startswith("DateSent"):
                dates.append(_date_filter(name, value))
        return cls(
            to=one("To"),
            sender=one("From"),
            dates=dates,
            page=number("Page", 0, 0),
            page_size=min(number("PageSize", DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE),
            echo=echo,
        )

    def matches(self, to: str, sender: str | None, created: datetime) -> bool:
        return (
            (self.to is None or to == self.to)
            and (self.sender is None or sender == self.sender)
            and all(check(created) for check in self.dates)
        )

    def envelope(
        self, path: str, records: list[dict[str, object]], more: bool
    ) -> dict[str, object]:
        """Twilio's page of ``records`` (this page's), ``more``: whether a next page has any."""

        def uri(page: int) -> str:
            return f"{path}?" + urlencode(
                [*self.echo, ("PageSize", str(self.page_size)), ("Page", str(page))]
            )

        start = self.page * self.page_size
        return {
            "messages": records,
            "end": start + len(records) - 1 if records else start,
            "first_page_uri": uri(0),
            "next_page_uri": uri(self.page + 1) if more else None,
            "page": self.page,
            "page_size": self.page_size,
            "previous_page_uri": uri(self.page - 1) if self.page > 0 else None,
            "start": start,
            "uri": uri(self.page),
        }


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    _errors: deque[ScriptedError] = field(default_factory=deque)
    _accepted: list[_Accepted] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # Seconds between accepting a message and answering: the provider's round trip, in which a
    # sender can die with the message accepted but its answer never read.
    latency: float = 0.0

    def __post_init__(self) -> None:
        self._accepted_changed = threading.Condition(self._lock)

    def wait_for_accepted(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` messages were accepted; False after ``timeout`` s."""
        with self._accepted_changed:
            return self._accepted_changed.wait_for(lambda: len(self._accepted) >= count, timeout)

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
            self._accepted.clear()
        self.latency = 0.0

    def accepted_messages(self) -> list[dict[str, object]]:
        """Copies of the Message resources answered with 201, in the order they were accepted
        (oldest first; the list API answers newest first)."""
        with self._lock:
            return [copy.deepcopy(message.resource) for message in self._accepted]

    def _list(self, path: str, query: ListQuery) -> dict[str, object]:
        start = query.page * query.page_size
        wanted = start + query.page_size + 1  # one more tells whether a next page exists
        found: list[dict[str, object]] = []
        with self._lock:
            for message in reversed(self._accepted):
                if query.matches(message.to, message.sender, message.created):
                    found.append(copy.deepcopy(message.resource))
                    if len(found) == wanted:
                        break
        page = found[start : start + query.page_size]
        return query.envelope(path, page, more=len(found) == wanted)

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

            def _authorized(self, match: re.Match[str]) -> bool:
                expected = base64.b64encode(
                    f"{fake.account_sid}:{fake.auth_token}".encode()
                ).decode()
                return (
                    self.headers.get("Authorization") == f"Basic {expected}"
                    and match.group(1) == fake.account_sid
                )

            def _messages_resource(self, path: str) -> bool:
                """Whether ``path`` is this account's Messages resource, asked with its
                credentials; else the 404 or 401 has been answered."""
                match = _MESSAGES.match(path)
                if not match:
                    self._reply(404, _NOT_FOUND)
                    return False
                if not self._authorized(match):
                    self._reply(401, _UNAUTHORIZED)
                    return False
                return True

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if not self._messages_resource(url.path):
                    return
                try:
                    query = ListQuery.parse(url.query)
                except BadQuery as error:
                    self._reply(400, {"code": 20001, "message": str(error), "status": 400})
                    return
                self._reply(200, fake._list(url.path, query))

            def do_POST(self) -> None:
                if not self._messages_resource(self.path):
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
                to = form["To"][0]
                with fake._lock:
                    created = datetime.now(UTC).replace(microsecond=0)
                    stamp = rfc2822(created)
                    resource: dict[str, object] = {
                        "sid": sid,
                        "account_sid": fake.account_sid,
                        "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
                        "from": sender,
                        "to": to,
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
                        "date_created": stamp,
                        "date_updated": stamp,
                        "date_sent": None,
                        "subresource_uris": {},
                    }
                    fake._accepted.append(_Accepted(created, to, sender, copy.deepcopy(resource)))
                    fake._accepted_changed.notify_all()
                if fake.latency:
                    threading.Event().wait(fake.latency)  # the round trip, not a test wait
                self._reply(201, resource)

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
