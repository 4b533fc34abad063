"""Phrase auto-replies and the "talk to a person" handoff on SMS and WhatsApp."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from crm.models import Interaction
from crm.runtime import Runtime
from tests.conftest import Webhooks, run_jobs


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def reply_text(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_known_phrase_gets_its_answer(webhooks: Webhooks):
    webhooks.message()  # first contact: the welcome
    answer = reply_text(webhooks.message(MessageSid=sid(), Body="Are you open on Saturday?"))
    assert "<Message>We are open Monday to Saturday" in answer


def test_asking_for_a_person_is_answered_and_becomes_a_signal(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    answer = reply_text(webhooks.message(MessageSid=sid(), Body="Can I speak to an AGENT?"))
    assert "One of our team will get back to you" in answer
    with runtime.session() as session:
        signal = session.scalars(select(Interaction).where(Interaction.provider == "signal")).one()
    assert signal.meta["signal"] == "human_request"
    assert signal.meta["source_channel"] == "sms"


def test_the_bot_stays_quiet_while_a_rep_handles_the_conversation(
    webhooks: Webhooks,
    runtime: Runtime,
    client,  # type: ignore[no-untyped-def]
    auth: dict[str, str],
):
    webhooks.message()
    with runtime.session() as session:
        contact_id = session.scalars(select(Interaction.contact_id)).first()
    sent = client.post(
        "/api/v1/messages",
        json={"contact_id": contact_id, "channel": "sms", "body": "Hi, Kwame here from sales."},
        headers=auth,
    )
    assert sent.status_code == 202
    run_jobs(runtime)
    answer = reply_text(webhooks.message(MessageSid=sid(), Body="are you open on saturday"))
    assert "<Message>" not in answer
    # Compliance keywords are still answered.
    assert "<Message>" in reply_text(webhooks.message(MessageSid=sid(), Body="HELP"))


def test_an_ordinary_message_gets_no_reply(webhooks: Webhooks):
    webhooks.message()
    answer = reply_text(webhooks.message(MessageSid=sid(), Body="My agenda for Saturday is full"))
    assert "<Message>" not in answer
