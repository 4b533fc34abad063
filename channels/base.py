"""The small interface every provider adapter implements, and the normalized events.

Adapters know the provider's wire format and nothing of the database or business rules:
``verify`` a webhook, ``parse`` it into an :class:`InboundEvent`, ``parse_status`` into a
:class:`StatusUpdate`, and ``send`` an :class:`OutboundMessage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class PayloadError(ValueError):
    """The webhook payload is malformed; the message says what is wrong (answered with 400)."""


class SendError(Exception):
    """A provider refused or failed a send.

    ``retryable`` is true for rate limits, timeouts and server errors; false for permanent
    errors such as an invalid number or an opted-out recipient. ``opted_out`` is true when the
    provider refused because the recipient opted out or blacklisted the sender. ``in_doubt``
    is true when the request may have reached the provider but its answer was lost (a read
    timeout, a connection dropped mid-answer): sending it again could send it twice.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool = False,
        opted_out: bool = False,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.opted_out = opted_out
        self.in_doubt = in_doubt


@dataclass(frozen=True)
class WebhookRequest:
    """What an adapter needs from an HTTP request, free of any web framework."""

    url: str
    form: Mapping[str, str]
    headers: Mapping[str, str]
    remote_addr: str | None = None


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True)
class InboundEvent:
    provider: str
    channel: str
    provider_message_id: str
    sender: str  # raw sender address as the provider gave it, e.g. "whatsapp:+233..."
    sender_phone: str  # the phone number part, not yet normalized
    recipient: str
    body: str
    media: tuple[Media, ...] = ()
    profile_name: str | None = None
    provider_opt_out: str | None = None  # STOP/START/HELP when the provider handled the keyword
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    provider: str
    provider_message_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    interaction_id: int | None = None  # from our own callback URL, when we set one
    opted_out: bool = False  # the provider reports the recipient opted out (Twilio 21610)


@dataclass(frozen=True)
class UssdHop:
    """One USSD request: the handset's inputs so far, joined by ``*`` (empty on the first hop)."""

    provider: str
    session_id: str
    service_code: str
    phone: str  # as the provider gave it, not yet normalized
    network_code: str
    text: str

    @property
    def inputs(self) -> list[str]:
        return self.text.split("*") if self.text else []


@dataclass(frozen=True)
class UssdSessionEnd:
    """The provider's end-of-session notification."""

    provider: str
    session_id: str
    phone: str
    status: str  # e.g. Success, Incomplete, Failed
    duration_ms: int | None = None
    hops: int | None = None
    last_input: str | None = None
    last_response: str | None = None
    error_message: str | None = None
    cost: str | None = None


@dataclass(frozen=True)
class CallEvent:
    """One voice webhook: the call, and whatever this step of it reports."""

    provider: str
    call_sid: str
    caller: str  # as the provider gave it, not yet normalized
    called: str
    status: str  # queued, ringing, in-progress, completed, busy, failed, no-answer, canceled
    caller_name: str | None = None
    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None
    duration_s: int | None = None
    dial_status: str | None = None
    dial_duration_s: int | None = None
    recording_url: str | None = None
    recording_duration_s: int | None = None
    transcription: str | None = None
    transcription_status: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    to: str  # E.164
    body: str
    status_callback: str | None = None
    media_urls: tuple[str, ...] = ()
    # A number or messaging service to send from instead of the configured one (a campaign's).
    sender: str | None = None
    # An approved WhatsApp template (Twilio Content SID) and its variables, sent instead of the
    # body: the only thing WhatsApp delivers outside the 24-hour window.
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    # time.monotonic() after which it must not leave: a send paced to a rate slot is dropped
    # (SendError code "late", never sent) rather than leave late and crowd the next slots.
    deadline: float | None = None


LATE = "late"


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str
    status: str
    sender: str | None = None


class ChannelAdapter(Protocol):
    name: str

    def verify(self, request: WebhookRequest) -> bool: ...

    def parse(self, request: WebhookRequest) -> InboundEvent: ...

    def parse_status(self, request: WebhookRequest) -> StatusUpdate: ...

    def send(self, message: OutboundMessage) -> SendResult: ...


class SentLookup(Protocol):
    """An adapter that can tell whether a message reached the provider: what settles a send
    left in doubt by a worker killed mid-request (resend it, or record the provider's copy)."""

    def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The provider's record of ``message`` created at or after ``since``, or None.
        Raises :class:`SendError` when the provider cannot be asked."""
        ...
