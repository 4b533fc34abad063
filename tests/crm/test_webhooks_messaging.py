"""Inbound SMS and WhatsApp through the signed Twilio webhook, onto one contact timeline."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from sqlalchemy import func, select

from crm.models import ChannelConsent, Contact, Identity, Interaction, OutboxJob
from crm.runtime import Runtime
from tests.conftest import Webhooks, load_fixture, sign

PATH = "/webhooks/twilio/messaging"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def count(rt: Runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    with rt.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def inbound(rt: Runtime) -> list[Interaction]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(Interaction)
                .where(Interaction.direction == "inbound")
                .order_by(Interaction.id)
            )
        )


def consent(rt: Runtime, channel: str = "sms") -> str | None:
    with rt.session() as session:
        return session.scalar(
            select(ChannelConsent.status).where(ChannelConsent.channel == channel)
        )


def test_inbound_sms_lands_on_the_contact_timeline_and_bot_welcomes(
    webhooks: Webhooks, runtime: Runtime
):
    response = webhooks.message()

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert "<Message>Thanks for your message!" in response.get_data(as_text=True)
    [message] = inbound(runtime)
    assert message.body == "Hi, how much is the solar lamp?"
    assert message.channel == "sms"
    assert message.provider_message_id == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert message.meta["FromCountry"] == "GH"
    with runtime.session() as session:
        contact = session.get_one(Contact, message.contact_id)
        assert [i.value for i in contact.identities] == ["+233241234567"]
        assert contact.first_touch_channel == "sms"
        # the bot's reply is on the timeline too
        replies = session.scalars(
            select(Interaction).where(Interaction.direction == "outbound")
        ).all()
        assert [r.meta["event"] for r in replies] == ["bot_reply"]
    assert count(runtime, OutboxJob, OutboxJob.job == "enrich") == 1


def test_second_message_gets_no_welcome(webhooks: Webhooks):
    webhooks.message()
    response = webhooks.message(MessageSid=new_sid(), Body="And delivery to Kumasi?")
    assert response.status_code == 200
    assert "<Message>" not in response.get_data(as_text=True)


def test_whatsapp_and_sms_from_one_number_are_one_contact(webhooks: Webhooks, runtime: Runtime):
    webhooks.message("twilio/whatsapp__inbound.txt")
    webhooks.message(From="+254712345678", MessageSid=new_sid())
    messages = inbound(runtime)
    assert {m.channel for m in messages} == {"whatsapp", "sms"}
    assert len({m.contact_id for m in messages}) == 1
    with runtime.session() as session:
        contact = session.get_one(Contact, messages[0].contact_id)
        assert contact.name == "Wanjiru"  # from WhatsApp's ProfileName


def test_whatsapp_profile_name_fills_in_a_missing_name_only(webhooks: Webhooks, runtime: Runtime):
    webhooks.message(From="+254712345678")  # an SMS contact: no name yet
    webhooks.message("twilio/whatsapp__inbound.txt")  # a known sender: the one-statement path
    webhooks.message(
        "twilio/whatsapp__inbound.txt", MessageSid=new_sid(), ProfileName="Someone Else"
    )
    [first, *_] = inbound(runtime)
    assert len(inbound(runtime)) == 3
    with runtime.session() as session:
        assert session.get_one(Contact, first.contact_id).name == "Wanjiru"


def test_same_message_sid_delivered_twice_is_stored_once(webhooks: Webhooks, runtime: Runtime):
    first = webhooks.message()
    again = webhooks.message()
    assert first.status_code == again.status_code == 200
    assert "<Message>" not in again.get_data(as_text=True)  # the retry is not answered twice
    assert len(inbound(runtime)) == 1
    assert count(runtime, OutboxJob) == 1


def test_concurrent_duplicate_deliveries_store_one_interaction(live_server: str, runtime: Runtime):
    params = load_fixture("twilio/sms__inbound.txt")
    headers = {"X-Twilio-Signature": sign(PATH, params)}
    start = threading.Barrier(8)
    statuses: list[int] = []

    def deliver() -> None:
        start.wait()
        statuses.append(
            requests.post(live_server + PATH, data=params, headers=headers, timeout=30).status_code
        )

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert len(inbound(runtime)) == 1
    assert count(runtime, Contact) == 1
    assert count(runtime, Identity) == 1


def test_concurrent_first_messages_from_a_new_number_make_one_contact(
    live_server: str, runtime: Runtime
):
    start = threading.Barrier(6)
    statuses: list[int] = []

    def deliver() -> None:
        params = {**load_fixture("twilio/sms__inbound.txt"), "MessageSid": new_sid()}
        start.wait()
        response = requests.post(
            live_server + PATH,
            data=params,
            headers={"X-Twilio-Signature": sign(PATH, params)},
            timeout=30,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert len(inbound(runtime)) == 6
    assert count(runtime, Contact) == 1


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "forged"])
def test_forged_or_missing_signature_is_refused_and_stores_nothing(
    webhooks: Webhooks, runtime: Runtime, signature: str
):
    response = webhooks.post(PATH, "twilio/sms__inbound.txt", signature=signature)
    assert response.status_code == 403
    assert response.get_json()["error"] == "invalid or missing webhook signature"
    assert count(runtime, Interaction) == 0
    assert count(runtime, Contact) == 0


def test_signature_over_other_params_is_refused(client, runtime: Runtime):  # type: ignore[no-untyped-def]
    params = load_fixture("twilio/sms__inbound.txt")
    signature = sign(PATH, params)
    tampered = {**params, "Body": "tampered"}
    response = client.post(PATH, data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert count(runtime, Interaction) == 0


def test_signature_with_another_token_is_refused(client, runtime: Runtime):  # type: ignore[no-untyped-def]
    params = load_fixture("twilio/sms__inbound.txt")
    signature = sign(PATH, params, token="someone-elses-token")
    response = client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert count(runtime, Interaction) == 0


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Stop. ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
)
def test_each_opt_out_keyword_opts_out_with_one_confirmation(
    webhooks: Webhooks, runtime: Runtime, word: str
):
    response = webhooks.message(Body=word)
    body = response.get_data(as_text=True)
    assert "You have been unsubscribed" in body
    assert body.count("<Message>") == 1
    assert consent(runtime) == "opted_out"
    with runtime.session() as session:
        events = session.scalars(
            select(Interaction.meta).where(Interaction.channel == "system")
        ).all()
    assert [e["event"] for e in events] == ["consent"]
    assert events[0]["status"] == "opted_out"

    # nothing more is sent to them: not even the answer to their next message
    later = webhooks.message(MessageSid=new_sid(), Body="hello?")
    assert "<Message>" not in later.get_data(as_text=True)
    assert consent(runtime) == "opted_out"


@pytest.mark.parametrize("word", ["START", "UNSTOP", "yes"])
def test_each_opt_in_keyword_opts_back_in(webhooks: Webhooks, runtime: Runtime, word: str):
    webhooks.message(Body="STOP")
    response = webhooks.message(MessageSid=new_sid(), Body=word)
    assert "You have been resubscribed" in response.get_data(as_text=True)
    assert consent(runtime) == "opted_in"
    with runtime.session() as session:
        statuses = [
            m["status"]
            for m in session.scalars(
                select(Interaction.meta)
                .where(Interaction.channel == "system")
                .order_by(Interaction.id)
            )
        ]
    assert statuses == ["opted_out", "opted_in"]


def test_help_answers_with_the_help_text(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()  # existing contact
    response = webhooks.message(MessageSid=new_sid(), Body="help")
    assert "Reply STOP to unsubscribe" in response.get_data(as_text=True)
    assert consent(runtime) is None


def test_opt_out_on_whatsapp_does_not_opt_out_of_sms(webhooks: Webhooks, runtime: Runtime):
    webhooks.message("twilio/whatsapp__inbound.txt", Body="STOP")
    assert consent(runtime, "whatsapp") == "opted_out"
    assert consent(runtime, "sms") is None


def test_sentence_with_stop_is_not_a_keyword(webhooks: Webhooks, runtime: Runtime):
    webhooks.message(Body="please stop texting me")
    assert consent(runtime) is None


def test_advanced_opt_out_is_recorded_but_not_answered_twice(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.message("twilio/sms__inbound_advanced_opt_out.txt")
    assert "<Message>" not in response.get_data(as_text=True)  # Twilio already confirmed
    assert consent(runtime) == "opted_out"


def test_local_number_resolves_with_default_region(webhooks: Webhooks, runtime: Runtime):
    webhooks.message(From="+233241234567")
    webhooks.message(From="024 123 4567", MessageSid=new_sid())  # Ghana local format
    messages = inbound(runtime)
    assert len(messages) == 2
    assert messages[0].contact_id == messages[1].contact_id
    assert count(runtime, Identity) == 1


@pytest.mark.parametrize("sender", ["not-a-number", "+1", "12", "+999999999999999"])
def test_malformed_sender_number_is_a_clear_400_and_stores_nothing(
    webhooks: Webhooks, runtime: Runtime, sender: str
):
    response = webhooks.message(From=sender)
    assert response.status_code == 400
    assert "sender" in response.get_json()["error"]
    assert count(runtime, Contact) == 0
    assert count(runtime, Interaction) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MessageSid": "", "SmsSid": ""}, "MessageSid"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "2"}, "MediaUrl"),
    ],
)
def test_malformed_payload_is_a_clear_400(webhooks: Webhooks, runtime: Runtime, overrides, message):  # type: ignore[no-untyped-def]
    response = webhooks.message(**overrides)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert count(runtime, Interaction) == 0


def test_empty_body_with_media_is_stored_with_its_media(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.message("twilio/whatsapp__media_no_body.txt")
    assert response.status_code == 200
    [message] = inbound(runtime)
    assert message.body == ""
    assert message.channel == "whatsapp"
    assert message.meta["media"] == [
        {
            "url": load_fixture("twilio/whatsapp__media_no_body.txt")["MediaUrl0"],
            "content_type": "image/jpeg",
        }
    ]


def test_long_body_and_emoji_are_kept_exactly(webhooks: Webhooks, runtime: Runtime):
    long_body = ("Asante sana 🙏🏾 — bei gani? " * 80)[:2000]
    webhooks.message(Body=long_body)
    webhooks.message(Body="Ẹ ku àárọ̀ 👋🇳🇬 ₦5,000?", MessageSid=new_sid())
    bodies = [m.body for m in inbound(runtime)]
    assert bodies == [long_body, "Ẹ ku àárọ̀ 👋🇳🇬 ₦5,000?"]
    assert len(bodies[0]) == 2000


def test_oversized_request_is_refused_and_stores_nothing(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.message(Body="x" * (runtime.settings.max_webhook_bytes + 1))
    assert response.status_code == 413
    assert count(runtime, Interaction) == 0


def test_unknown_adapter_is_refused(client, runtime: Runtime):  # type: ignore[no-untyped-def]
    response = client.post("/webhooks/nexmo/messaging", data={"a": "b"})
    assert response.status_code == 403
