"""A phone simulator for development: ``/simulator``.

Pick a number and a channel (SMS, WhatsApp, USSD, a voice call answered with keys), type or
press keys, and see what a handset would: the app's replies, USSD screens, what a call says,
and (polled from the timeline) outbound messages sent later by reps, campaigns or the worker.

It exercises the real path. ``POST /simulator/api/send`` builds the form the provider would post,
signs it the provider's way (Twilio: ``X-Twilio-Signature`` over the URL the app rebuilds from
``PUBLIC_BASE_URL``, as ``crm.webhooks.public_url`` does; Africa's Talking: the ``key`` query
parameter) and sends it over real HTTP to this app's own server (``request.root_url``), so it
goes through the server, the signature check, the parser, the database and the bot. The server
must answer requests concurrently (``crm run`` and a threaded server do; a single-threaded one
waits for the 10 s timeout). The server keeps nothing between requests: the handset's state (the
USSD session id and inputs, the call's CallSid and where it waits) travels in the JSON the page
sends back and forth.

Access. The app has no web sign-in yet, so the simulator guards itself:

- it is 404 unless ``settings.simulator_enabled`` (``SIMULATOR``, on by default) and the app is
  not in production (the factory does not even register it then);
- it answers only requests from loopback addresses (127.0.0.0/8, ::1) addressed to a loopback
  host name (``localhost``, 127.x, ``[::1]``), which also stops DNS-rebinding pages and keeps its
  signed requests from being sent anywhere but this machine. Behind a reverse proxy on the same
  machine every request looks local: turn ``SIMULATOR`` off there;
- its API answers only requests carrying ``X-Requested-With: simulator`` (the POST also a JSON
  body): a cross-site page cannot add that header without a CORS preflight, which is refused.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from twilio.request_validator import RequestValidator

from crm.contacts import find_by_phone
from crm.models import Interaction
from crm.phones import InvalidPhoneNumber, region_of, to_e164
from crm.runtime import Runtime
from crm.settings import Settings
from crm.timeline import read_timeline

simulator = Blueprint(
    "simulator",
    __name__,
    url_prefix="/simulator",
    template_folder="templates",
    static_folder="static",
)

CHANNELS = ("sms", "whatsapp", "ussd", "voice")
MAX_TEXT = 1600
MAX_NAME = 100
THREAD_LIMIT = 50
TIMEOUT_S = 10.0
DEFAULT_PHONE = "+233241234567"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "simulator"

API_VERSION = "2010-04-01"
# Used when no Twilio account is configured (the sandbox adapter accepts any account).
DEV_ACCOUNT_SID = "AC" + "0" * 32
# Twilio's test number and WhatsApp sandbox number: where a customer writes when none is set.
DEFAULT_TWILIO_NUMBER = "+15005550006"
DEFAULT_WHATSAPP_NUMBER = "+14155238886"
WHATSAPP = "whatsapp:"
MESSAGING_PATH = "/webhooks/twilio/messaging"
VOICE_PATH = "/webhooks/twilio/voice"
VOICE_STATUS_PATH = "/webhooks/twilio/voice/status"
USSD_PATH = "/webhooks/africastalking/ussd"
USSD_EVENTS_PATH = "/webhooks/africastalking/ussd/events"
USSD_SERVICE_CODE = "*384*1234#"
# Africa's Talking networkCode by country (MCC+MNC of the largest operator); 99999 is their
# sandbox network.
NETWORK_CODES = {"GH": "62001", "KE": "63902", "NG": "62130", "UG": "64110", "TZ": "64002"}
SANDBOX_NETWORK = "99999"
MAX_USSD_INPUTS = 50
DTMF = frozenset("0123456789*#")
MAX_DIGITS = 64
MAX_FOLLOWS = 10  # Dial and Redirect answers followed in one send: a loop ends here
MAX_VERB_DEPTH = 4


# -- access --------------------------------------------------------------------------------


def _runtime() -> Runtime:
    return current_app.extensions["crm"]


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _loopback_host(host: str) -> bool:
    """Whether the Host header names this machine (not a name that merely resolves to it)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    return name == "localhost" or _is_loopback(name)


@simulator.before_request
def _guard() -> None:
    settings = _runtime().settings
    if not settings.simulator_enabled or settings.production:
        abort(404)
    if not (_is_loopback(request.remote_addr) and _loopback_host(request.host)):
        abort(403, "the simulator answers only requests from this machine (localhost)")


@simulator.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _require_api_headers(*, json_body: bool) -> None:
    if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        abort(403, f"the simulator API requires the header {CSRF_HEADER}: {CSRF_VALUE}")
    if json_body and not request.is_json:
        abort(415, "send a JSON body (Content-Type: application/json)")


def _phone(raw: object, settings: Settings) -> str:
    if not isinstance(raw, str):
        abort(400, "phone is required, e.g. +233241234567")
    try:
        return to_e164(raw, settings.default_region)
    except InvalidPhoneNumber as exc:
        abort(400, f"phone: {exc}")


# -- views ---------------------------------------------------------------------------------


@simulator.get("")
def page() -> Response:
    """The handset page."""
    response = Response(
        render_template(
            "simulator.html",
            default_phone=DEFAULT_PHONE,
            service_code=USSD_SERVICE_CODE,
            max_text=MAX_TEXT,
        )
    )
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return response


@simulator.post("/api/send")
def send() -> Response:
    """Send what the handset typed as the provider would, and answer what the handset shows."""
    _require_api_headers(json_body=True)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    settings = _runtime().settings
    phone = _phone(body.get("phone"), settings)
    channel = body.get("channel")
    if channel not in CHANNELS:
        abort(400, f"channel must be one of {', '.join(CHANNELS)}")
    text = body.get("text", "")
    if not isinstance(text, str):
        abort(400, "text must be a string")
    if len(text) > MAX_TEXT:
        abort(400, f"text is longer than {MAX_TEXT} characters")
    state = body.get("session") or {}
    if not isinstance(state, dict):
        abort(400, "session must be an object")
    hang_up = body.get("hangup", False)
    name = body.get("name") or "Simulator"
    if not isinstance(hang_up, bool) or not isinstance(name, str) or len(name) > MAX_NAME:
        abort(400, f"hangup must be true or false, and name a string of at most {MAX_NAME}")

    if channel in ("sms", "whatsapp") and hang_up:
        return jsonify(replies=[], ended=True, session={})
    wire = Wire(settings=settings, root=request.root_url.rstrip("/"))
    try:
        if channel in ("sms", "whatsapp"):
            outcome = _message(wire, phone=phone, channel=channel, text=text, name=name)
        elif channel == "ussd":
            outcome = _ussd(wire, phone=phone, text=text, state=state, hang_up=hang_up)
        else:
            outcome = _voice(wire, phone=phone, text=text, state=state, hang_up=hang_up)
    finally:
        wire.http.close()
    return jsonify(replies=outcome.replies, ended=outcome.ended, session=outcome.session)


@simulator.get("/api/thread")
def thread() -> Response:
    """The contact's latest timeline entries, newest last, so the page shows outbound texts."""
    _require_api_headers(json_body=False)
    rt = _runtime()
    phone = _phone(request.args.get("phone"), rt.settings)
    with rt.session() as session:
        contact = find_by_phone(session, phone)
        if contact is None:
            return jsonify(phone=phone, contact_id=None, entries=[])
        page_ = read_timeline(session=session, contact_id=contact.id, limit=THREAD_LIMIT)
        entries = [_entry_json(item) for item in reversed(page_.items)]
        contact_id = contact.id
    return jsonify(phone=phone, contact_id=contact_id, entries=entries)


def _entry_json(item: Interaction) -> dict[str, Any]:
    return {
        "id": item.id,
        "channel": item.channel,
        "direction": item.direction,
        "body": item.body,
        "status": item.delivery_status,
        "event": (item.meta or {}).get("event"),
        "created_at": item.created_at.isoformat(),
    }


# -- the wire ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    replies: list[str]
    ended: bool
    session: dict[str, Any]


@dataclass
class Wire:
    """Posts provider requests to this app's own server, signed as the provider signs them."""

    settings: Settings
    root: str  # where this server is reached, e.g. http://127.0.0.1:5000
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.trust_env = False  # never through an HTTP proxy from the environment

    @property
    def public_base(self) -> str:
        """The base of the URL the app rebuilds (``crm.webhooks.public_url``)."""
        return self.settings.public_base_url or self.root

    @property
    def account_sid(self) -> str:
        return self.settings.twilio_account_sid or DEV_ACCOUNT_SID

    def twilio(self, path: str, form: dict[str, str]) -> requests.Response:
        """POST a Twilio webhook to ``path`` (with its query) and its signature."""
        validator = RequestValidator(self.settings.webhook_auth_token)
        signature = validator.compute_signature(self.public_base + path, form)
        return self._post(
            path, form, {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
        )

    def africastalking(self, path: str, form: dict[str, str]) -> requests.Response:
        """POST an Africa's Talking callback, which carries the shared secret as ``key``."""
        query = urlencode({"key": self.settings.africastalking_secret})
        return self._post(f"{path}?{query}", form, {"User-Agent": "AfricasTalking"})

    def _post(self, path: str, form: dict[str, str], headers: dict[str, str]) -> requests.Response:
        url = self.root + path
        try:
            response = self.http.post(
                url, data=form, headers=headers, timeout=TIMEOUT_S, allow_redirects=False
            )
        except requests.RequestException as exc:
            abort(502, f"could not reach the app at {self.root}: {exc.__class__.__name__}")
        if response.status_code >= 300:
            shown = path.split("?", 1)[0]
            abort(
                502,
                f"the app answered HTTP {response.status_code} to {shown}: {response.text[:300]}",
            )
        return response

    def twiml(self, path: str, form: dict[str, str]) -> ET.Element:
        """POST a Twilio webhook whose answer is TwiML, and parse it."""
        response = self.twilio(path, form)
        try:
            root = ET.fromstring(response.content)  # noqa: S314 - our own app's TwiML
        except ET.ParseError as exc:
            abort(502, f"the app's answer to {path} is not TwiML ({exc})")
        if root.tag != "Response":
            abort(502, f"the app's answer to {path} is not a TwiML <Response>")
        return root


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _segments(text: str) -> int:
    """SMS segments: 160 GSM characters alone, 153 per part when split (70/67 for others)."""
    single, part = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // part)


# -- SMS and WhatsApp ----------------------------------------------------------------------


def _message(wire: Wire, *, phone: str, channel: str, text: str, name: str) -> Outcome:
    """One inbound message, as Twilio posts it; the replies are the TwiML's <Message>s."""
    if not text.strip():
        abort(400, "text is empty: type a message")
    settings = wire.settings
    sid = _sid("SM")
    if channel == "whatsapp":
        number = settings.twilio_whatsapp_from.removeprefix(WHATSAPP) or DEFAULT_WHATSAPP_NUMBER
        form = {
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ProfileName": name,
            "MessageType": "text",
            "SmsSid": sid,
            "WaId": phone.lstrip("+"),
            "SmsStatus": "received",
            "Body": text,
            "To": WHATSAPP + number,
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": wire.account_sid,
            "From": WHATSAPP + phone,
            "ApiVersion": API_VERSION,
        }
    else:
        number = settings.twilio_from_number or DEFAULT_TWILIO_NUMBER
        form = {
            "ToCountry": region_of(number) or "",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": text,
            "FromCountry": region_of(phone) or "",
            "To": number,
            "ToZip": "",
            "NumSegments": str(_segments(text)),
            "MessageSid": sid,
            "AccountSid": wire.account_sid,
            "From": phone,
            "ApiVersion": API_VERSION,
        }
    if settings.twilio_messaging_service_sid:
        form["MessagingServiceSid"] = settings.twilio_messaging_service_sid
    root = wire.twiml(MESSAGING_PATH, form)
    replies = []
    for message in root.iter("Message"):
        body = message.findtext("Body") or message.text or ""
        media = [f"[media: {m.text}]" for m in message.iter("Media") if m.text]
        replies.append("\n".join([body.strip(), *media]).strip())
    return Outcome(replies, False, {})


# -- USSD ----------------------------------------------------------------------------------


def _ussd(wire: Wire, *, phone: str, text: str, state: dict[str, Any], hang_up: bool) -> Outcome:
    """One hop of a USSD session, as Africa's Talking posts it; the reply is the screen."""
    session_id = state.get("session_id")
    inputs = state.get("inputs", [])
    started = state.get("started_ms", 0)
    if session_id is not None and not (isinstance(session_id, str) and 0 < len(session_id) <= 64):
        abort(400, "session.session_id must be a string")
    if not (
        isinstance(inputs, list)
        and len(inputs) < MAX_USSD_INPUTS
        and all(isinstance(i, str) and len(i) <= MAX_TEXT for i in inputs)
    ):
        abort(400, f"session.inputs must be a list of at most {MAX_USSD_INPUTS - 1} strings")
    if not isinstance(started, int) or isinstance(started, bool):
        abort(400, "session.started_ms must be an integer")
    network = NETWORK_CODES.get(region_of(phone) or "", SANDBOX_NETWORK)
    hop = {
        "phoneNumber": phone,
        "networkCode": network,
        "serviceCode": USSD_SERVICE_CODE,
    }
    if hang_up:
        if session_id:
            _ussd_end(wire, hop, session_id, inputs, started, "Incomplete", "")
        return Outcome([], True, {})
    if session_id is None:  # a new dial: the first hop's text is empty, or what was dialled on
        session_id, inputs, started = _sid("ATUid_"), [], _now_ms()
        if text:
            inputs = [text]
    else:
        inputs = [*inputs, text]
    answer = wire.africastalking(
        USSD_PATH, {**hop, "text": "*".join(inputs), "sessionId": session_id}
    ).text
    kind, _, screen = answer.partition(" ")
    if kind == "CON":
        return Outcome(
            [screen], False, {"session_id": session_id, "inputs": inputs, "started_ms": started}
        )
    if kind == "END":
        _ussd_end(wire, hop, session_id, inputs, started, "Success", answer)
        return Outcome([screen], True, {})
    _ussd_end(wire, hop, session_id, inputs, started, "Failed", answer)
    return Outcome([f"[Not a USSD screen (CON/END): {answer[:200]}]"], True, {})


def _ussd_end(
    wire: Wire,
    hop: dict[str, str],
    session_id: str,
    inputs: list[str],
    started_ms: int,
    status: str,
    last_response: str,
) -> None:
    """The gateway's end-of-session notification."""
    wire.africastalking(
        USSD_EVENTS_PATH,
        {
            **hop,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "sessionId": session_id,
            "status": status,
            "durationInMillis": str(max(0, _now_ms() - started_ms)),
            "hopsCount": str(len(inputs) + 1),
            "input": "*".join(inputs),
            "lastAppResponse": last_response,
            "errorMessage": "",
        },
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- voice ---------------------------------------------------------------------------------


def _voice(wire: Wire, *, phone: str, text: str, state: dict[str, Any], hang_up: bool) -> Outcome:
    """A call: dial, then each key (or spoken words) goes to the Gather that listens."""
    call = Call.load(wire, phone, state) if state.get("call_sid") else None
    if hang_up:
        if call is not None:
            call.replies.append("[You hung up]")
            call.finish()
            return call.outcome()
        return Outcome([], True, {})
    if call is None:
        call = Call(wire=wire, phone=phone, call_sid=_sid("CA"), started=int(time.time()))
        call.replies.append(
            f"[Calling {wire.settings.twilio_from_number or DEFAULT_TWILIO_NUMBER}]"
        )
        call.run(list(call.post(VOICE_PATH, CallStatus="ringing")), VOICE_PATH)
        if text and call.waiting:
            call.feed(text)
    else:
        call.feed(text)
    return call.outcome()


def _verb_json(element: ET.Element) -> dict[str, Any]:
    return {
        "tag": element.tag,
        "text": element.text,
        "attrib": dict(element.attrib),
        "children": [_verb_json(child) for child in element],
    }


def _verb_from_json(raw: object, depth: int = 0) -> ET.Element:
    """A TwiML verb kept in the page's session; malformed state is a 400."""
    if depth > MAX_VERB_DEPTH or not isinstance(raw, dict):
        abort(400, "session: malformed call state")
    tag, text = raw.get("tag"), raw.get("text")
    attrib, children = raw.get("attrib", {}), raw.get("children", [])
    if (
        not isinstance(tag, str)
        or not (text is None or isinstance(text, str))
        or not isinstance(attrib, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in attrib.items())
        or not isinstance(children, list)
    ):
        abort(400, "session: malformed call state")
    element = ET.Element(tag, attrib)
    element.text = text
    element.extend(_verb_from_json(child, depth + 1) for child in children)
    return element


def _local_path(value: object) -> str:
    """A path (with query) of this app's voice webhooks; anything else is refused."""
    if not isinstance(value, str):
        abort(400, "session: malformed call state")
    parts = urlsplit(value)
    voice = parts.path == VOICE_PATH or parts.path.startswith(VOICE_PATH + "/")
    if parts.scheme or parts.netloc or not voice:
        abort(400, "session: the call may only post to the app's voice webhooks")
    return value


@dataclass
class Call:
    """One simulated call: Twilio's side of it, replayed from the page's session state."""

    wire: Wire
    phone: str
    call_sid: str
    started: int
    wait: dict[str, Any] | None = None  # the Gather or Record the call waits on
    replies: list[str] = field(default_factory=list)
    ended: bool = False
    follows: int = 0

    @classmethod
    def load(cls, wire: Wire, phone: str, state: dict[str, Any]) -> Call:
        sid, started, wait = state.get("call_sid"), state.get("started"), state.get("wait")
        if not (isinstance(sid, str) and 0 < len(sid) <= 64) or not isinstance(started, int):
            abort(400, "session: malformed call state")
        if not isinstance(wait, dict) or wait.get("kind") not in ("gather", "record"):
            abort(400, "session: the call waits on nothing")
        digits, num, finish = wait.get("digits", ""), wait.get("num_digits"), wait.get("finish")
        if (
            not (isinstance(digits, str) and len(digits) <= MAX_DIGITS and set(digits) <= DTMF)
            or not (num is None or (isinstance(num, int) and 0 < num <= MAX_DIGITS))
            or not (isinstance(finish, str) and len(finish) <= 1)
            or not isinstance(wait.get("speech"), bool)
            or not isinstance(wait.get("fallback"), list)
        ):
            abort(400, "session: malformed call state")
        _local_path(wait.get("action"))
        _local_path(wait.get("doc"))
        if wait.get("transcribe") is not None:
            _local_path(wait["transcribe"])
        return cls(wire=wire, phone=phone, call_sid=sid, started=started, wait=wait)

    @property
    def waiting(self) -> bool:
        return self.wait is not None

    def outcome(self) -> Outcome:
        session = (
            {}
            if self.ended
            else {
                "call_sid": self.call_sid,
                "started": self.started,
                "wait": self.wait,
            }
        )
        return Outcome(self.replies, self.ended, session)

    def form(self, **extra: str) -> dict[str, str]:
        settings = self.wire.settings
        number = settings.twilio_from_number or DEFAULT_TWILIO_NUMBER
        form = {
            "AccountSid": self.wire.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "Called": number,
            "CalledCountry": region_of(number) or "",
            "Caller": self.phone,
            "CallerCountry": region_of(self.phone) or "",
            "Direction": "inbound",
            "From": self.phone,
            "FromCountry": region_of(self.phone) or "",
            "To": number,
            "ToCountry": region_of(number) or "",
            "CallStatus": "in-progress",
        }
        form.update(extra)
        return form

    def post(self, path: str, **extra: str) -> ET.Element:
        return self.wire.twiml(path, self.form(**extra))

    def _resolve(self, doc: str, url: str) -> str:
        """A TwiML URL (relative to the document that held it) as a path of this app."""
        base = self.wire.public_base
        absolute = urljoin(base + doc, url)
        if not absolute.startswith(base + "/"):
            abort(502, f"the app's TwiML sends the call outside the app: {url[:200]}")
        return absolute[len(base) :]

    def _follow(self, path: str, **extra: str) -> list[ET.Element]:
        self.follows += 1
        if self.follows > MAX_FOLLOWS:
            abort(502, f"more than {MAX_FOLLOWS} redirects in one step: a loop in the app's TwiML")
        return list(self.post(path, **extra))

    def _speak(self, element: ET.Element) -> None:
        if element.tag == "Say" and (element.text or "").strip():
            self.replies.append(element.text.strip())  # type: ignore[union-attr]
        elif element.tag == "Play":
            self.replies.append(f"[Plays {element.text or 'audio'}]")

    def run(self, verbs: list[ET.Element], doc: str) -> None:
        """Do what Twilio does with TwiML verbs, until the call waits for the caller or ends."""
        self.wait = None
        while verbs:
            verb = verbs.pop(0)
            if verb.tag in ("Say", "Play"):
                self._speak(verb)
            elif verb.tag == "Gather":
                for child in verb:
                    self._speak(child)
                num = verb.get("numDigits", "")
                self.wait = {
                    "kind": "gather",
                    "action": self._resolve(doc, verb.get("action") or doc),
                    "num_digits": int(num) if num.isdecimal() and int(num) > 0 else None,
                    "finish": verb.get("finishOnKey", "#")[:1],
                    "speech": "speech" in verb.get("input", "dtmf").split(),
                    "digits": "",
                    "fallback": [_verb_json(v) for v in verbs],
                    "doc": doc,
                }
                return
            elif verb.tag == "Record":
                callback = verb.get("transcribeCallback")
                transcribe = verb.get("transcribe") == "true" and callback
                self.replies.append("[Beep. Recording: type your message and send it]")
                self.wait = {
                    "kind": "record",
                    "action": self._resolve(doc, verb.get("action") or doc),
                    "transcribe": self._resolve(doc, callback) if transcribe else None,
                    "num_digits": None,
                    "finish": "",
                    "speech": True,
                    "digits": "",
                    "fallback": [_verb_json(v) for v in verbs],
                    "doc": doc,
                }
                return
            elif verb.tag == "Dial":
                numbers = [c.text for c in verb if c.text] or [verb.text or "?"]
                self.replies.append(f"[Dialling {', '.join(numbers)}: no answer]")
                if verb.get("action"):
                    doc = self._resolve(doc, verb.get("action", ""))
                    verbs = self._follow(
                        doc,
                        DialCallStatus="no-answer",
                        DialCallSid=_sid("CA"),
                        DialCallDuration="0",
                    )
            elif verb.tag == "Redirect":
                doc = self._resolve(doc, (verb.text or "").strip() or doc)
                verbs = self._follow(doc)
            elif verb.tag in ("Hangup", "Reject"):
                break
            elif verb.tag != "Pause":
                self.replies.append(f"[<{verb.tag}> is not simulated]")
        self.finish()

    def finish(self) -> None:
        """The call is over: Twilio's status callback, with the call's duration."""
        self.wait = None
        self.ended = True
        duration = max(0, int(time.time()) - self.started)
        self.wire.twilio(
            VOICE_STATUS_PATH,
            self.form(CallStatus="completed", CallDuration=str(duration)),
        )

    def feed(self, text: str) -> None:
        """What the caller does next: keys, words, a message after the beep, or silence."""
        assert self.wait is not None
        if self.wait["kind"] == "record":
            self._record(text)
            return
        keys = "".join(text.split())
        if not keys:
            self._silence()
        elif not set(keys) <= DTMF:
            if not self.wait["speech"]:
                abort(400, "this menu listens for keys only: 0-9, * and #")
            self._submit(SpeechResult=text.strip(), Confidence="0.95")
        else:
            for key in keys:
                if self.wait is None or self.wait["kind"] != "gather":
                    break  # the call ended or records: the remaining keys are lost
                self._key(key)

    def _key(self, key: str) -> None:
        assert self.wait is not None
        if key == self.wait["finish"]:
            digits, self.wait["digits"] = self.wait["digits"], ""
            if digits:
                self._submit(Digits=digits, FinishedOnKey=key)
            else:
                self._silence()
            return
        self.wait["digits"] += key
        num = self.wait["num_digits"]
        if num and len(self.wait["digits"]) >= num:
            self._submit(Digits=self.wait["digits"], FinishedOnKey="")

    def _submit(self, **fields: str) -> None:
        assert self.wait is not None
        action = self.wait["action"]
        self.run(self._follow(action, **fields), action)

    def _silence(self) -> None:
        """Nothing more from the caller: the keys so far go in, or the verbs after it run."""
        assert self.wait is not None
        if self.wait["digits"]:
            self._submit(Digits=self.wait["digits"], FinishedOnKey="")
            return
        fallback = [_verb_from_json(v) for v in self.wait["fallback"]]
        self.run(fallback, self.wait["doc"])

    def _record(self, text: str) -> None:
        """The caller's message after the beep: the recording, then its transcription."""
        assert self.wait is not None
        if not text.strip():
            self._silence()
            return
        transcribe = self.wait.get("transcribe")
        account = self.wire.account_sid
        recording_sid = _sid("RE")
        recording = {
            "RecordingSid": recording_sid,
            "RecordingUrl": (
                f"https://api.twilio.com/{API_VERSION}/Accounts/{account}/Recordings/"
                f"{recording_sid}"
            ),
            "RecordingDuration": str(max(1, round(len(text.split()) / 2.5))),
        }
        action = self.wait["action"]
        self.run(self._follow(action, **recording, Digits="#"), action)
        if transcribe:
            transcription_sid = _sid("TR")
            self.wire.twilio(
                transcribe,
                self.form(
                    CallStatus="completed",
                    **recording,
                    TranscriptionSid=transcription_sid,
                    TranscriptionText=text.strip(),
                    TranscriptionStatus="completed",
                    TranscriptionType="fast",
                    TranscriptionUrl=(
                        f"https://api.twilio.com/{API_VERSION}/Accounts/{account}/"
                        f"Transcriptions/{transcription_sid}"
                    ),
                    url=self.wire.public_base + transcribe,
                ),
            )
