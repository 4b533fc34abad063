"""Africa's Talking SMS and USSD: callback verification and parsing, outbound SMS.

Africa's Talking does not sign its callbacks. A callback is trusted when its URL carries our
shared secret as the query parameter ``key`` (compared in constant time) and, when an
allow-list is configured, when it comes from one of the listed addresses or ranges.

Outbound SMS is a form-encoded POST to ``/version1/messaging`` with the ``apiKey`` header,
sent with ``requests``. Its JSON answer lists one entry per recipient with a ``statusCode``.

What could not be confirmed against the provider's own documentation (only against third-party
copies of it and SDK code) is noted where it matters: the HTTP status of a refused recipient
(201 for most, 409 for ``DoNotDisturbRejection``), and the spelling of the ``UserInBlacklist``
failure reason (the documentation writes ``UserInBlackList``; we compare case-insensitively).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import requests

from channels.base import (
    InboundEvent,
    OutboundMessage,
    PayloadError,
    SendError,
    SendResult,
    StatusUpdate,
    UssdHop,
    UssdSessionEnd,
    WebhookRequest,
)

log = logging.getLogger(__name__)

MESSAGING_PATH = "/version1/messaging"
KEY_QUERY_PARAM = "key"

# Delivery-report ``status`` (lower-cased) -> our canonical status (channels.twilio.STATUS_RANK).
# ``AbsentSubscriber`` is listed by the delivery-report documentation as a status too (handset
# off or out of coverage): the message was not delivered, like ``Expired``.
STATUS_MAP: dict[str, str] = {
    "success": "delivered",  # delivered to the handset (final)
    "sent": "sent",  # left Africa's Talking's network
    "submitted": "sent",  # handed to the mobile operator
    "buffered": "sent",  # queued by the mobile operator
    "rejected": "failed",  # refused by the mobile operator (final)
    "failed": "failed",  # could not be delivered (final)
    "expired": "undelivered",  # discarded by the operator's firewall (final)
    "absentsubscriber": "undelivered",
}

# Delivery-report ``failureReason`` meaning the subscriber blocked messages from this sender.
OPTED_OUT_REASON = "userinblacklist"

# ``statusCode`` of one recipient in the send answer.
SEND_STATUS_CODES: dict[int, str] = {
    100: "Processed",
    101: "Sent",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
# Accepted by Africa's Talking. 101 ("Sent") means it already went on to the operator, so it
# starts as "sent"; 100 ("Processed") and 102 ("Queued") are still with Africa's Talking, so they
# start as "queued" and the delivery report (Sent/Submitted/Buffered/Success...) moves them on.
ACCEPTED_CODES: dict[int, str] = {100: "queued", 101: "sent", 102: "queued"}
OPTED_OUT_CODES = {406, 409}  # blacklisted by the subscriber; Nigeria's do-not-disturb window
RETRYABLE_CODES = {500, 501}  # Africa's Talking's or the gateway's own failure
# Refusal names, for an answer that names one in ``Message`` instead of listing recipients.
_REFUSALS_BY_NAME = {
    name.lower(): code for code, name in SEND_STATUS_CODES.items() if code not in ACCEPTED_CODES
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _form_value(form: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = form.get(name, "") or ""
    if required and not value.strip():
        raise PayloadError(f"missing required field {name!r}")
    return value


def _optional_count(form: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer field that may be absent (None), but never garbage."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise PayloadError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise PayloadError(f"{name} must not be negative, got {value}")
    return value


def _parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"allowed_ips: {entry!r} is not an address or range") from None
    return tuple(networks)


def _address_allowed(remote_addr: str | None, networks: tuple[Network, ...]) -> bool:
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    # A dual-stack server may report an IPv4 client as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(candidate in network for candidate in candidates for network in networks)


def map_status(raw: str) -> str:
    """Our canonical status for a delivery-report ``status``, case-insensitively."""
    status = STATUS_MAP.get(raw.strip().lower())
    if status is None:
        raise PayloadError(f"unknown delivery status {raw!r}")
    return status


class AfricasTalkingAdapter:
    """Africa's Talking for SMS (inbound, delivery reports, outbound) and USSD callbacks."""

    name = "africastalking"

    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        api_base_url: str,
        sms_from: str = "",
        webhook_secret: str,
        allowed_ips: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        self._username = username
        self._api_key = api_key
        self._messaging_url = api_base_url.rstrip("/") + MESSAGING_PATH
        self._sms_from = sms_from
        self._webhook_secret = webhook_secret
        self._networks = _parse_networks(allowed_ips)
        self._timeout = timeout
        self._session: requests.Session | None = None

    def __repr__(self) -> str:  # never show the key or the secret
        return f"{type(self).__name__}(username={self._username!r})"

    # -- webhooks -------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        if not self._webhook_secret:
            return False
        keys = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(KEY_QUERY_PARAM)
        if not keys or len(keys) != 1:
            return False
        if not hmac.compare_digest(keys[0].encode(), self._webhook_secret.encode()):
            return False
        return not self._networks or _address_allowed(request.remote_addr, self._networks)

    def parse(self, request: WebhookRequest) -> InboundEvent:
        """An incoming SMS to one of our short codes or numbers."""
        form = request.form
        message_id = _form_value(form, "id", required=True).strip()
        sender = _form_value(form, "from", required=True).strip()
        return InboundEvent(
            provider=self.name,
            channel="sms",
            provider_message_id=message_id,
            sender=sender,
            sender_phone=sender,
            recipient=_form_value(form, "to").strip(),
            body=_form_value(form, "text"),
            extra={
                key: form[key] for key in ("linkId", "date", "networkCode", "cost") if form.get(key)
            },
        )

    def parse_status(self, request: WebhookRequest) -> StatusUpdate:
        """A delivery report for a message we sent."""
        form = request.form
        message_id = _form_value(form, "id", required=True).strip()
        status = map_status(_form_value(form, "status", required=True))
        reason = _form_value(form, "failureReason").strip() or None
        return StatusUpdate(
            provider=self.name,
            provider_message_id=message_id,
            status=status,
            error_code=reason,
            error_message=None,
            opted_out=reason is not None and reason.lower() == OPTED_OUT_REASON,
        )

    def parse_ussd(self, request: WebhookRequest) -> UssdHop:
        form = request.form
        return UssdHop(
            provider=self.name,
            session_id=_form_value(form, "sessionId", required=True).strip(),
            service_code=_form_value(form, "serviceCode").strip(),
            phone=_form_value(form, "phoneNumber", required=True).strip(),
            network_code=_form_value(form, "networkCode").strip(),
            text=_form_value(form, "text").strip(),
        )

    def parse_ussd_end(self, request: WebhookRequest) -> UssdSessionEnd:
        """The end-of-session notification (status Success, Incomplete or Failed)."""
        form = request.form
        return UssdSessionEnd(
            provider=self.name,
            session_id=_form_value(form, "sessionId", required=True).strip(),
            phone=_form_value(form, "phoneNumber", required=True).strip(),
            status=_form_value(form, "status", required=True).strip(),
            duration_ms=_optional_count(form, "durationInMillis"),
            hops=_optional_count(form, "hopsCount"),
            last_input=form.get("input") or None,
            last_response=form.get("lastAppResponse") or None,
            error_message=form.get("errorMessage") or None,
            cost=form.get("cost") or None,
        )

    # -- outbound -------------------------------------------------------------------------

    def _http(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != "sms":
            raise SendError(f"Africa's Talking cannot send {message.channel!r} messages")
        form = {"username": self._username, "to": message.to, "message": message.body}
        if self._sms_from:
            form["from"] = self._sms_from
        try:
            response = self._http().post(
                self._messaging_url,
                data=form,
                headers={"apiKey": self._api_key, "Accept": "application/json"},
                timeout=self._timeout,
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise SendError(f"AT_API_BASE_URL is not a usable URL: {exc}") from exc
        except requests.RequestException as exc:
            raise SendError(
                f"Africa's Talking unreachable: {exc.__class__.__name__}", retryable=True
            ) from exc
        return self._result(response)

    def _result(self, response: requests.Response) -> SendResult:
        status = response.status_code
        recipient, summary = _first_recipient(response)
        if recipient is not None:
            return self._recipient_result(recipient)
        if status == 401:
            raise SendError(
                "Africa's Talking refused the credentials (HTTP 401): "
                "check AT_USERNAME and AT_API_KEY",
                code="http_401",
            )
        # No recipient entry. A request-level refusal names a known status in ``Message``, e.g.
        # {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}.
        if summary is not None and summary.lower() in _REFUSALS_BY_NAME:
            _raise_for_code(_REFUSALS_BY_NAME[summary.lower()], summary)
        if status == 429 or status >= 500:
            raise SendError(
                f"Africa's Talking answered HTTP {status}", code=f"http_{status}", retryable=True
            )
        if status >= 400:
            raise SendError(
                f"Africa's Talking answered HTTP {status}: {response.text[:200]}",
                code=f"http_{status}",
            )
        # A 2xx we cannot read: the message may or may not have gone out. Retrying may send it
        # twice, but dropping it silently is worse.
        detail = "not JSON" if summary is None else f"no recipient entry ({summary[:100]!r})"
        raise SendError(
            f"unexpected answer from Africa's Talking (HTTP {status}): {detail}",
            retryable=True,
        )

    def _recipient_result(self, recipient: Mapping[str, Any]) -> SendResult:
        code = recipient["statusCode"]
        if code not in ACCEPTED_CODES:
            _raise_for_code(code, str(recipient.get("status") or ""))
        message_id = str(recipient.get("messageId") or "").strip()
        if not message_id or message_id == "None":
            raise SendError(
                f"Africa's Talking accepted the message (statusCode {code}) without a messageId",
                retryable=True,
            )
        return SendResult(
            provider=self.name,
            provider_message_id=message_id,
            status=ACCEPTED_CODES[code],
            sender=self._sms_from or None,
        )


def _first_recipient(response: requests.Response) -> tuple[Mapping[str, Any] | None, str | None]:
    """The first recipient entry with an integer ``statusCode``, and ``SMSMessageData.Message``.

    The summary is None when the body is not the expected JSON object at all.
    """
    try:
        body = response.json()
    except ValueError:
        return None, None
    data = body.get("SMSMessageData") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return None, None
    summary = str(data.get("Message") or "")
    recipients = data.get("Recipients")
    if not isinstance(recipients, list) or not recipients or not isinstance(recipients[0], dict):
        return None, summary
    first = dict(recipients[0])
    try:
        first["statusCode"] = int(first.get("statusCode"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, summary
    return first, summary


def _raise_for_code(code: int, status: str) -> NoReturn:
    name = SEND_STATUS_CODES.get(code) or status or "unknown status"
    retryable = code in RETRYABLE_CODES or (code not in SEND_STATUS_CODES and code >= 500)
    raise SendError(
        f"Africa's Talking refused the recipient: {name} (statusCode {code})",
        code=str(code),
        retryable=retryable,
        opted_out=code in OPTED_OUT_CODES,
    )


class SandboxAfricasTalkingAdapter(AfricasTalkingAdapter):
    """Used when no Africa's Talking API key is set: callbacks are verified and parsed exactly as
    the real adapter's, but outbound SMS is only recorded (on the timeline, and in the log)."""

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != "sms":
            raise SendError(f"Africa's Talking cannot send {message.channel!r} messages")
        message_id = "ATXid_" + uuid.uuid4().hex
        log.info("sandbox: recorded outbound sms to %s (%s)", message.to, message_id)
        return SendResult(
            provider="sandbox", provider_message_id=message_id, status="sent", sender="sandbox"
        )
