"""Twilio delivery status callbacks: forward only, 21610 opts out, unknown ones acknowledged."""

from __future__ import annotations

from sqlalchemy import select

from crm.models import ChannelConsent, Interaction
from crm.runtime import Runtime
from crm.timeline import add_entry
from tests.conftest import Webhooks, load_fixture

SID = load_fixture("twilio/status__delivered.txt")["MessageSid"]


def outbound_message(webhooks: Webhooks, rt: Runtime, status: str = "queued") -> int:
    webhooks.message()  # the contact, through the real inbound path
    with rt.session() as session:
        contact_id = session.scalars(select(Interaction.contact_id)).first()
        assert contact_id is not None
        return add_entry(
            session=session,
            contact_id=contact_id,
            channel="sms",
            direction="outbound",
            body="Your lamp ships today",
            provider="twilio",
            provider_message_id=SID,
            delivery_status=status,
        ).id


def status_of(rt: Runtime, interaction_id: int) -> tuple[str | None, str | None]:
    with rt.session() as session:
        interaction = session.get_one(Interaction, interaction_id)
        return interaction.delivery_status, interaction.error_code


def test_status_moves_forward(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime)
    assert webhooks.status("twilio/status__sent.txt").status_code == 204
    assert status_of(runtime, message) == ("sent", None)
    webhooks.status("twilio/status__delivered.txt")
    assert status_of(runtime, message) == ("delivered", None)


def test_out_of_order_callbacks_never_move_back(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime)
    webhooks.status("twilio/status__delivered.txt")
    response = webhooks.status("twilio/status__sent.txt")
    assert response.status_code == 204
    assert status_of(runtime, message) == ("delivered", None)
    webhooks.status("twilio/status__sent.txt", MessageStatus="queued", SmsStatus="queued")
    assert status_of(runtime, message) == ("delivered", None)


def test_read_after_delivered_moves_forward(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime)
    webhooks.status("twilio/status__delivered.txt")
    webhooks.status("twilio/status__delivered.txt", MessageStatus="read")
    assert status_of(runtime, message) == ("read", None)


def test_callback_found_by_our_id_before_the_sid_was_stored(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    with runtime.session() as session:
        contact_id = session.scalars(select(Interaction.contact_id)).first()
        assert contact_id is not None
        message = add_entry(
            session=session,
            contact_id=contact_id,
            channel="sms",
            direction="outbound",
            body="hi",
            provider="twilio",
            delivery_status="sending",
        ).id
    webhooks.status(
        "twilio/status__sent.txt", path=f"/webhooks/twilio/status?interaction={message}"
    )
    with runtime.session() as session:
        stored = session.get_one(Interaction, message)
        assert (stored.delivery_status, stored.provider_message_id) == ("sent", SID)


def test_21610_marks_the_contact_opted_out(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime, status="sent")
    webhooks.status("twilio/status__undelivered_21610.txt")
    assert status_of(runtime, message) == ("undelivered", "21610")
    with runtime.session() as session:
        assert session.scalar(select(ChannelConsent.status)) == "opted_out"


def test_unknown_message_is_acknowledged_and_changes_nothing(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.status("twilio/status__delivered.txt", MessageSid="SM" + "f" * 32)
    assert response.status_code == 204
    with runtime.session() as session:
        assert session.scalars(select(Interaction)).all() == []


def test_unknown_status_is_a_clear_400(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime)
    response = webhooks.status("twilio/status__sent.txt", MessageStatus="teleported")
    assert response.status_code == 400
    assert "teleported" in response.get_json()["error"]
    assert status_of(runtime, message) == ("queued", None)


def test_forged_status_callback_is_refused(webhooks: Webhooks, runtime: Runtime):
    message = outbound_message(webhooks, runtime)
    response = webhooks.status("twilio/status__delivered.txt", signature="forged")
    assert response.status_code == 403
    assert status_of(runtime, message) == ("queued", None)
