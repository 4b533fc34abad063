"""Twilio Voice: parse call webhooks and build TwiML with the SDK's ``VoiceResponse``.

Call webhooks are verified like messaging ones (``TwilioAdapter.verify``: the same signature).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels.base import CallEvent, PayloadError

CALL_STATUSES = frozenset(
    {"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"}
)
VOICE = "Polly.Joanna"  # a neural voice; Twilio falls back to its default if unavailable


def _int(form: Mapping[str, str], name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise PayloadError(f"{name} must be an integer, got {raw!r}") from None


def parse_call(form: Mapping[str, str]) -> CallEvent:
    sid = (form.get("CallSid") or "").strip()
    if not sid:
        raise PayloadError("missing required field 'CallSid'")
    caller = (form.get("From") or "").strip()
    if not caller:
        raise PayloadError("missing required field 'From'")
    status = (form.get("CallStatus") or "in-progress").strip().lower()
    if status not in CALL_STATUSES:
        raise PayloadError(f"unknown CallStatus {status!r}")
    confidence = None
    if form.get("Confidence"):
        try:
            confidence = float(form["Confidence"])
        except ValueError:
            raise PayloadError("Confidence must be a number") from None
    return CallEvent(
        provider="twilio",
        call_sid=sid,
        caller=caller,
        called=(form.get("To") or "").strip(),
        status=status,
        caller_name=form.get("CallerName") or None,
        digits=form.get("Digits") or None,
        speech=form.get("SpeechResult") or None,
        confidence=confidence,
        duration_s=_int(form, "CallDuration"),
        dial_status=(form.get("DialCallStatus") or "").lower() or None,
        dial_duration_s=_int(form, "DialCallDuration"),
        recording_url=form.get("RecordingUrl") or None,
        recording_duration_s=_int(form, "RecordingDuration"),
        transcription=form.get("TranscriptionText") or None,
        transcription_status=form.get("TranscriptionStatus") or None,
    )


def gather(text: str, *, action: str, num_digits: int | None, hints: str, fallback: str) -> str:
    """Say ``text`` and listen for keys or speech; ``fallback`` is said if nothing comes."""
    response = VoiceResponse()
    kwargs: dict[str, object] = {
        "input": "dtmf speech",
        "action": action,
        "method": "POST",
        "timeout": 6,
        "speech_timeout": "auto",
        "hints": hints,
    }
    if num_digits:
        kwargs["num_digits"] = num_digits
    else:
        kwargs["finish_on_key"] = "#"
    listen = Gather(**kwargs)
    listen.say(text, voice=VOICE)
    response.append(listen)
    response.say(fallback, voice=VOICE)
    response.hangup()
    return str(response)


def say_and_hang_up(text: str) -> str:
    response = VoiceResponse()
    response.say(text, voice=VOICE)
    response.hangup()
    return str(response)


def dial(number: str, *, text: str, action: str, timeout: int = 20) -> str:
    """Connect the caller to ``number``; Twilio posts the outcome to ``action``."""
    response = VoiceResponse()
    response.say(text, voice=VOICE)
    connect = Dial(action=action, method="POST", timeout=timeout)
    connect.number(number)
    response.append(connect)
    return str(response)


def voicemail(text: str, *, action: str, transcribe_callback: str, max_seconds: int = 120) -> str:
    """Ask for a message and record it, with a transcription posted to ``transcribe_callback``."""
    response = VoiceResponse()
    response.say(text, voice=VOICE)
    response.record(
        action=action,
        method="POST",
        max_length=max_seconds,
        play_beep=True,
        transcribe=True,
        transcribe_callback=transcribe_callback,
    )
    response.say("We did not get a message. Goodbye.", voice=VOICE)
    response.hangup()
    return str(response)
