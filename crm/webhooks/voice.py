"""Twilio Voice: the IVR menu, a person on request, voicemail, and the call's status.

Every route is verified with the same ``X-Twilio-Signature`` check as messaging and answers
TwiML built by the SDK (``channels.twilio_voice``), except the two callbacks that take no
answer.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request

from channels.base import CallEvent, PayloadError
from channels.twilio_voice import parse_call
from crm import voice
from crm.phones import InvalidPhoneNumber
from crm.webhooks import error, runtime, verified, webhooks

FORGED = "invalid or missing webhook signature"


def _event() -> CallEvent | tuple[Response, int]:
    checked = verified("twilio")
    if checked is None:
        return error(403, FORGED)
    try:
        return parse_call(checked[1].form)
    except PayloadError as exc:
        return error(400, str(exc))


def _twiml(step: Callable[[CallEvent], str]):  # type: ignore[no-untyped-def]
    event = _event()
    if not isinstance(event, CallEvent):
        return event
    try:
        return Response(step(event), mimetype="text/xml")
    except InvalidPhoneNumber as exc:
        return error(400, f"caller: {exc}")


@webhooks.post("/twilio/voice")
def voice_call():  # type: ignore[no-untyped-def]
    return _twiml(lambda event: voice.answer_call(runtime=runtime(), event=event))


@webhooks.post("/twilio/voice/gather")
def voice_gather():  # type: ignore[no-untyped-def]
    inputs = request.args.getlist("i")
    return _twiml(lambda event: voice.answer_gather(runtime=runtime(), event=event, inputs=inputs))


@webhooks.post("/twilio/voice/dial-status")
def voice_dial_status():  # type: ignore[no-untyped-def]
    return _twiml(lambda event: voice.answer_dial_outcome(runtime=runtime(), event=event))


@webhooks.post("/twilio/voice/recording")
def voice_recording():  # type: ignore[no-untyped-def]
    return _twiml(lambda event: voice.record_voicemail(runtime=runtime(), event=event))


@webhooks.post("/twilio/voice/transcription")
def voice_transcription():  # type: ignore[no-untyped-def]
    event = _event()
    if not isinstance(event, CallEvent):
        return event
    voice.record_transcription(runtime=runtime(), event=event)
    return Response(status=204)


@webhooks.post("/twilio/voice/status")
def voice_status():  # type: ignore[no-untyped-def]
    event = _event()
    if not isinstance(event, CallEvent):
        return event
    voice.record_call_status(runtime=runtime(), event=event)
    return Response(status=204)
