"""Voice calls through Twilio's signed webhooks: the IVR menu, a person, voicemail, status."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from crm.models import Contact, Handoff, Interaction, Role, ScoreEvent, User
from crm.runtime import Runtime
from crm.users import create_user
from tests.conftest import Webhooks, run_jobs

VOICE = "/webhooks/twilio/voice"
CALLER = "+233241234567"


def twiml(response) -> ET.Element:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response"
    return root


def calls(rt: Runtime) -> list[Interaction]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(Interaction)
                .where(Interaction.channel == "voice", Interaction.provider == "twilio")
                .order_by(Interaction.id)
            )
        )


def gather_inputs(gather: ET.Element) -> list[str]:
    """The menu position carried in a Gather's action URL."""
    url = urlsplit(gather.attrib["action"])
    assert url.path == f"{VOICE}/gather"
    return parse_qs(url.query).get("i", [])


def add_rep(rt: Runtime, phone: str | None = "+233200000001") -> None:
    with rt.session() as session:
        user = create_user(
            session=session, email="rep@example.com", role=Role.REP, password="x" * 12, name="Rep"
        )
        user.phone = phone


def test_an_incoming_call_hears_the_menu_and_is_one_interaction(
    webhooks: Webhooks, runtime: Runtime
):
    root = twiml(webhooks.post(VOICE, "twilio/voice__incoming.txt"))
    [gather] = root.findall("Gather")
    assert gather.attrib["input"] == "dtmf speech"
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == f"{VOICE}/gather"  # no dangling "?" to sign
    assert gather_inputs(gather) == []
    said = gather.find("Say").text
    assert said.startswith("Welcome to Sunrise Solar.")
    assert "For Products and prices, press 1." in said
    assert "press 0 or say agent" in said
    assert [el.tag for el in root][1:] == ["Say", "Hangup"]  # nothing heard: goodbye

    twiml(webhooks.post(VOICE, "twilio/voice__incoming.txt"))  # Twilio retries the webhook
    [call] = calls(runtime)
    assert call.direction == "inbound"
    assert call.meta["from"] == CALLER
    with runtime.session() as session:
        contact = session.get_one(Contact, call.contact_id)
        assert contact.first_touch_channel == "voice"
        assert contact.name == "AMA OWUSU"


def test_digits_walk_the_menu_to_an_end(webhooks: Webhooks, runtime: Runtime):
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    root = twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_digits.txt", Digits="1"))
    [gather] = root.findall("Gather")
    assert gather_inputs(gather) == ["1"]
    assert "For Solar lamp with phone charger, press 1." in gather.find("Say").text
    assert "98" not in gather.find("Say").text  # a call hears every option, no paging

    end = twiml(webhooks.post(f"{VOICE}/gather?i=1", "twilio/voice__gather_digits.txt", Digits="2"))
    assert [el.tag for el in end] == ["Say", "Hangup"]
    assert end.find("Say").text.startswith("Home kit")
    [call] = calls(runtime)
    assert call.meta["path"] == ["main", "products", "home_kit"]
    assert [i.get("digits") for i in call.meta["inputs"]] == ["1", "2"]


def test_a_wrong_key_repeats_the_menu_with_an_error(webhooks: Webhooks):
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    root = twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_digits.txt", Digits="9"))
    [gather] = root.findall("Gather")
    assert gather_inputs(gather) == []
    assert gather.find("Say").text.startswith("Invalid choice. Welcome")


def test_speech_chooses_an_option_and_fills_an_input(webhooks: Webhooks, runtime: Runtime):
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    fixture = "twilio/voice__gather_speech.txt"
    root = twiml(webhooks.post(f"{VOICE}/gather", fixture, SpeechResult="Update my details"))
    [gather] = root.findall("Gather")
    assert gather_inputs(gather) == ["3"]
    assert "numDigits" not in gather.attrib  # free input ends with #
    root = twiml(webhooks.post(f"{VOICE}/gather?i=3", fixture, SpeechResult="Ama Owusu."))
    assert gather_inputs(root.find("Gather")) == ["3", "Ama Owusu"]
    with runtime.session() as session:
        assert session.scalars(select(Contact)).one().name == "Ama Owusu"


def test_say_agent_dials_a_rep_then_voicemail_and_transcript(webhooks: Webhooks, runtime: Runtime):
    add_rep(runtime)
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    root = twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_speech.txt"))
    dial = root.find("Dial")
    assert dial is not None
    assert dial.attrib["timeout"] == "20"
    assert dial.attrib["action"] == f"{VOICE}/dial-status"
    assert dial.find("Number").text == "+233200000001"

    root = twiml(webhooks.post(f"{VOICE}/dial-status", "twilio/voice__dial_no_answer.txt"))
    record = root.find("Record")
    assert record is not None
    assert record.attrib["transcribe"] == "true"
    assert record.attrib["transcribeCallback"] == f"{VOICE}/transcription"
    assert record.attrib["action"] == f"{VOICE}/recording"

    root = twiml(webhooks.post(f"{VOICE}/recording", "twilio/voice__recording.txt"))
    assert [el.tag for el in root] == ["Say", "Hangup"]
    again = twiml(webhooks.post(f"{VOICE}/recording", "twilio/voice__recording.txt"))  # a retry
    assert [el.tag for el in again] == ["Say", "Hangup"]
    transcribed = webhooks.post(f"{VOICE}/transcription", "twilio/voice__transcription.txt")
    assert transcribed.status_code == 204
    status = webhooks.post(f"{VOICE}/status", "twilio/voice__status_completed.txt")
    assert status.status_code == 204

    [call] = calls(runtime)
    assert call.delivery_status == "completed"
    assert call.meta["dial"]["status"] == "no-answer"
    assert call.meta["missed"] is True
    assert call.meta["voicemail"]["duration_s"] == 14
    assert call.meta["transcript"].startswith("Hi, this is Ama.")
    assert call.meta["duration_s"] == 47
    with runtime.session() as session:
        voicemail = session.scalars(
            select(Interaction).where(Interaction.provider == "twilio-voicemail")
        ).one()
        assert voicemail.body.startswith("Hi, this is Ama.")
        signal = session.scalars(select(Interaction).where(Interaction.provider == "signal")).one()
        assert signal.meta["signal"] == "callback_request"


def test_press_zero_with_no_rep_goes_straight_to_voicemail(webhooks: Webhooks):
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    root = twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_digits.txt", Digits="0"))
    assert root.find("Dial") is None
    assert root.find("Record") is not None


def test_the_contact_owner_is_dialled_first(webhooks: Webhooks, runtime: Runtime):
    add_rep(runtime)
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    with runtime.session() as session:
        owner = create_user(
            session=session, email="owner@example.com", role=Role.REP, password="x" * 12
        )
        owner.phone = "+233200000002"
        session.flush()
        session.scalars(select(Contact)).one().owner_id = owner.id
    root = twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_digits.txt", Digits="0"))
    assert root.find("Dial").find("Number").text == "+233200000002"


def test_an_unanswered_call_is_missed(webhooks: Webhooks, runtime: Runtime):
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    webhooks.post(f"{VOICE}/status", "twilio/voice__status_no_answer.txt")
    [call] = calls(runtime)
    assert call.delivery_status == "no-answer"
    assert call.meta["missed"] is True
    assert "missed" in call.body


def test_forged_voice_webhooks_are_refused_and_store_nothing(webhooks: Webhooks, runtime: Runtime):
    for path in ["", "/gather", "/dial-status", "/recording", "/transcription", "/status"]:
        response = webhooks.post(f"{VOICE}{path}", "twilio/voice__incoming.txt", signature="bad")
        assert response.status_code == 403, path
    assert calls(runtime) == []
    with runtime.session() as session:
        assert session.scalars(select(User)).all() == []


def test_a_malformed_call_is_a_clear_400(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.post(VOICE, "twilio/voice__incoming.txt", CallStatus="exploded")
    assert response.status_code == 400
    assert "CallStatus" in response.get_json()["error"]
    response = webhooks.post(VOICE, "twilio/voice__incoming.txt", From="12")
    assert response.status_code == 400
    assert calls(runtime) == []


def test_a_rep_answering_the_call_scores_and_is_the_first_touch(
    webhooks: Webhooks, runtime: Runtime
):
    add_rep(runtime)
    webhooks.post(VOICE, "twilio/voice__incoming.txt")
    twiml(webhooks.post(f"{VOICE}/gather", "twilio/voice__gather_speech.txt"))  # "agent"
    run_jobs(runtime)  # the callback request is routed: a handoff to the rep, clock running
    with runtime.session() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.status == "open" and handoff.first_touch_at is None
    answered = {"DialCallStatus": "completed", "DialCallDuration": "95"}
    root = twiml(
        webhooks.post(f"{VOICE}/dial-status", "twilio/voice__dial_no_answer.txt", **answered)
    )
    assert [el.tag for el in root] == ["Say", "Hangup"]
    with runtime.session() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.status == "done" and handoff.speed_to_lead_s is not None
        rules = sorted(session.scalars(select(ScoreEvent.rule)))
        assert rules == ["call_answered", "callback_request"]
    # Twilio retries the webhook: the call scores once.
    webhooks.post(f"{VOICE}/dial-status", "twilio/voice__dial_no_answer.txt", **answered)
    with runtime.session() as session:
        assert len(session.scalars(select(ScoreEvent)).all()) == 2
