"""Twilio SMS and WhatsApp: webhook verification and parsing, status callbacks, outbound send.

Everything on the wire goes through the official ``twilio`` SDK: ``RequestValidator`` for the
``X-Twilio-Signature`` check (constant-time) and the REST ``Client`` for sending.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from channels.base import (
    LATE,
    InboundEvent,
    Media,
    OutboundMessage,
    PayloadError,
    SendError,
    SendResult,
    StatusUpdate,
    WebhookRequest,
)

log = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10

# Lifecycle order of a message's status; a callback may only move a message forward.
# Terminal failures rank with delivered so a late "sent" never overwrites them.
STATUS_RANK: dict[str, int] = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "delivered": 6,
    "read": 7,
}

# Twilio error codes that mean the send can never succeed as it is.
OPTED_OUT_ERROR = "21610"
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
RETRYABLE_CODES = {"20429", "20500", "20503"}
# Looking up a message left in doubt: this many of the number's latest messages are read, and
# the provider's clock may differ from ours by this much.
LOOKUP_LIMIT = 20
LOOKUP_CLOCK_SKEW = timedelta(minutes=2)


def _strip_whatsapp(address: str) -> tuple[str, bool]:
    if address.lower().startswith(WHATSAPP_PREFIX):
        return address[len(WHATSAPP_PREFIX) :], True
    return address, False


def _form_value(form: dict[str, str], name: str, *, required: bool = False) -> str:
    value = form.get(name, "")
    if required and not value.strip():
        raise PayloadError(f"missing required field {name!r}")
    return value


class TwilioAdapter:
    """Twilio Programmable Messaging for SMS and WhatsApp."""

    name = "twilio"

    def __init__(
        self,
        *,
        auth_token: str,
        account_sid: str = "",
        messaging_service_sid: str = "",
        from_number: str = "",
        whatsapp_from: str = "",
        api_base_url: str = "",
        timeout: float = 10.0,
        connections: int = 10,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._messaging_service_sid = messaging_service_sid
        self._from_number = from_number
        self._whatsapp_from = whatsapp_from
        self._api_base_url = api_base_url
        self._timeout = timeout
        self._connections = connections
        self._client: Client | None = None

    # -- webhooks -------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        if not self._validator.validate(request.url, dict(request.form), signature):
            return False
        # A valid signature from another account's token cannot happen, but a request for an
        # account we do not serve (a shared token across sub-accounts) is refused too.
        account = request.form.get("AccountSid", "")
        return not (self._account_sid and account and account != self._account_sid)

    def parse(self, request: WebhookRequest) -> InboundEvent:
        form = dict(request.form)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if not sid.strip():
            raise PayloadError("missing required field 'MessageSid'")
        sender = _form_value(form, "From", required=True)
        recipient = _form_value(form, "To", required=True)
        phone, is_whatsapp = _strip_whatsapp(sender)
        return InboundEvent(
            provider=self.name,
            channel="whatsapp" if is_whatsapp else "sms",
            provider_message_id=sid.strip(),
            sender=sender,
            sender_phone=phone,
            recipient=_strip_whatsapp(recipient)[0],
            body=form.get("Body", ""),
            media=_parse_media(form),
            profile_name=form.get("ProfileName") or None,
            provider_opt_out=(form.get("OptOutType") or "").upper() or None,
            extra={
                key: form[key]
                for key in (
                    "MessagingServiceSid",
                    "NumSegments",
                    "FromCountry",
                    "FromCity",
                    "WaId",
                    "ButtonText",
                    "ButtonPayload",
                )
                if form.get(key)
            },
        )

    def parse_status(self, request: WebhookRequest) -> StatusUpdate:
        form = dict(request.form)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
        if not sid.strip():
            raise PayloadError("missing required field 'MessageSid'")
        if status not in STATUS_RANK:
            raise PayloadError(f"unknown MessageStatus {status!r}")
        query = parse_qs(urlsplit(request.url).query)
        interaction_id = None
        if query.get("interaction"):
            try:
                interaction_id = int(query["interaction"][0])
            except ValueError:
                raise PayloadError("interaction in the callback URL must be an integer") from None
        error_code = (form.get("ErrorCode") or "").strip() or None
        return StatusUpdate(
            provider=self.name,
            provider_message_id=sid.strip(),
            status=status,
            error_code=error_code,
            error_message=form.get("ErrorMessage") or None,
            interaction_id=interaction_id,
            opted_out=error_code == OPTED_OUT_ERROR,
        )

    # -- outbound -------------------------------------------------------------------------

    def _rest_client(self) -> Client:
        if self._client is None:
            http = TwilioHttpClient(timeout=self._timeout)
            # One kept-alive connection per sending thread: the SDK's own pool keeps
            # min(32, cores + 4) for https and requests' 10 for http, and a thread beyond that
            # opens (and for https, handshakes) a new connection for every message.
            if http.session is not None:
                for scheme in ("https://", "http://"):
                    http.session.mount(scheme, _DeadlineHTTPAdapter(pool_maxsize=self._connections))
                # requests reads the proxy and CA settings from the environment on every
                # request (a tenth of a campaign send's Python time): read them once.
                base = self._api_base_url or "https://api.twilio.com"
                http.proxy = requests.utils.get_environ_proxies(base)
                http.session.verify = (
                    os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
                )
                http.session.trust_env = False
            client = Client(self._account_sid, self._auth_token, http_client=http)
            if self._api_base_url:
                client.api.base_url = self._api_base_url
            self._client = client
        return self._client

    def prepare(self) -> None:
        """Build the REST client and import the messages API before threads send at once: the
        SDK imports it on first use, and threads meeting that import together would queue on
        it, then reach the provider all at once, bunched past the sender's rate."""
        self._rest_client().messages  # noqa: B018 (the attribute access is the import)

    def _sender_kwargs(self, channel: str, sender: str | None = None) -> dict[str, str]:
        if sender:
            if MESSAGING_SERVICE_SID.fullmatch(sender):
                return {"messaging_service_sid": sender}
            return {"from_": WHATSAPP_PREFIX + sender if channel == "whatsapp" else sender}
        if self._messaging_service_sid:
            return {"messaging_service_sid": self._messaging_service_sid}
        if channel == "whatsapp":
            if not self._whatsapp_from:
                raise SendError("no WhatsApp sender configured (TWILIO_WHATSAPP_FROM)")
            return {"from_": WHATSAPP_PREFIX + _strip_whatsapp(self._whatsapp_from)[0]}
        if not self._from_number:
            raise SendError("no SMS sender configured (TWILIO_FROM_NUMBER)")
        return {"from_": self._from_number}

    def _to(self, message: OutboundMessage) -> str:
        return WHATSAPP_PREFIX + message.to if message.channel == "whatsapp" else message.to

    def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Twilio's record of ``message``: the newest message to its number with its body (or
        its template, which Twilio lists with the rendered text: any message then) created at
        or after ``since``. Twilio lists a number's messages newest first, queued ones too."""
        try:
            found = self._rest_client().messages.list(to=self._to(message), limit=LOOKUP_LIMIT)
        except TwilioRestException as exc:
            raise SendError(exc.msg or str(exc), code=str(exc.code), retryable=True) from exc
        except TwilioException as exc:  # an answer that is not a page of messages
            raise SendError(f"Twilio lookup failed: {exc}", retryable=True) from exc
        except requests.RequestException as exc:
            raise SendError(
                f"Twilio unreachable: {exc.__class__.__name__}", retryable=True
            ) from exc
        cutoff = since - LOOKUP_CLOCK_SKEW
        for item in found:
            created = item.date_created
            if created is not None and created < cutoff:
                break  # newest first: the rest are older still
            if item.direction == "inbound" or (
                not message.content_sid and (item.body or "") != message.body
            ):
                continue
            return SendResult(
                provider=self.name,
                provider_message_id=item.sid or "",
                status=(item.status or "queued").lower(),
                sender=item.from_ or None,
            )
        return None

    def send(self, message: OutboundMessage) -> SendResult:
        to = WHATSAPP_PREFIX + message.to if message.channel == "whatsapp" else message.to
        kwargs: dict[str, object] = {
            "to": to,
            "body": message.body,
            **self._sender_kwargs(message.channel, message.sender),
        }
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        if message.media_urls:
            kwargs["media_url"] = list(message.media_urls)
        if message.content_sid:
            kwargs.pop("body")
            kwargs["content_sid"] = message.content_sid
            kwargs["content_variables"] = json.dumps(message.content_variables or {})
        _deadline.value = message.deadline
        try:
            created = self._rest_client().messages.create(**kwargs)  # type: ignore[arg-type]
        except _TooLate as exc:
            raise SendError("too late for its send slot", code=LATE, retryable=True) from exc
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code is not None else None
            retryable = exc.status == 429 or exc.status >= 500 or code in RETRYABLE_CODES
            raise SendError(
                exc.msg or str(exc),
                code=code,
                retryable=retryable,
                opted_out=code == OPTED_OUT_ERROR,
            ) from exc
        except requests.RequestException as exc:
            raise SendError(
                f"Twilio unreachable: {exc.__class__.__name__}",
                retryable=True,
                in_doubt=not _never_sent(exc),
            ) from exc
        finally:
            _deadline.value = None
        return SendResult(
            provider=self.name,
            provider_message_id=created.sid or "",
            status=(created.status or "queued").lower(),
            sender=created.from_ or None,
        )


class SandboxTwilioAdapter(TwilioAdapter):
    """Used when no Twilio credentials are set: webhooks are verified and parsed exactly as
    Twilio's, but outbound messages are only recorded (on the timeline, and in the log), so the
    app works end to end with no account."""

    def send(self, message: OutboundMessage) -> SendResult:
        sid = "SM" + uuid.uuid4().hex
        log.info(
            "sandbox: recorded outbound %s message to %s (%s)", message.channel, message.to, sid
        )
        return SendResult(
            provider="sandbox", provider_message_id=sid, status="sent", sender="sandbox"
        )

    def prepare(self) -> None:
        return None

    def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        return None  # nothing left the machine: a send in doubt is simply made again


class _TooLate(requests.RequestException):
    """Raised before a request's first byte leaves, when its deadline has passed."""


_deadline = threading.local()


class _DeadlineHTTPAdapter(HTTPAdapter):
    """requests' adapter with one last check of the sending thread's deadline, right before
    the request goes on the wire: the SDK's work in between (building the request, waiting for
    the GIL) no longer moves the moment it reaches Twilio."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_deadline, "value", None)
        if deadline is not None and time.monotonic() > deadline:
            raise _TooLate("past its send deadline", request=request)
        return super().send(request, *args, **kwargs)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely never reached Twilio: no connection could be made. A read
    timeout or a connection dropped after the request went out leaves the message in doubt."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _parse_media(form: dict[str, str]) -> tuple[Media, ...]:
    raw = form.get("NumMedia", "0") or "0"
    try:
        count = int(raw)
    except ValueError:
        raise PayloadError(f"NumMedia must be an integer, got {raw!r}") from None
    if not 0 <= count <= MAX_MEDIA:
        raise PayloadError(f"NumMedia must be between 0 and {MAX_MEDIA}")
    media = []
    for i in range(count):
        url = form.get(f"MediaUrl{i}", "")
        if not url:
            raise PayloadError(f"NumMedia is {count} but MediaUrl{i} is missing")
        media.append(Media(url=url, content_type=form.get(f"MediaContentType{i}", "")))
    return tuple(media)
