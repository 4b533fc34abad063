"""Africa's Talking SMS: inbound callbacks, bot replies and rep messages sent through its API
(a local server that speaks it), delivery reports."""

from __future__ import annotations

from sqlalchemy import select

from crm.models import ChannelConsent, Interaction
from crm.runtime import Runtime
from tests.conftest import Webhooks, run_jobs
from tests.fakes.africastalking_api import FakeAfricasTalking

PHONE = "+254712345678"


def interactions(rt: Runtime, direction: str) -> list[Interaction]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(Interaction)
                .where(Interaction.direction == direction, Interaction.channel == "sms")
                .order_by(Interaction.id)
            )
        )


def sms(webhooks: Webhooks, **overrides: str):  # type: ignore[no-untyped-def]
    return webhooks.africastalking("sms", "africastalking/sms__inbound.txt", **overrides)


def test_inbound_sms_is_stored_and_the_welcome_goes_out_through_the_api(
    webhooks: Webhooks, runtime: Runtime, fake_africastalking: FakeAfricasTalking
):
    response = sms(webhooks)
    assert response.status_code == 200
    assert response.get_data() == b""  # Africa's Talking takes no reply in the response
    [inbound] = interactions(runtime, "inbound")
    assert inbound.provider == "africastalking"
    assert inbound.body == "Habari, how much is the solar lamp?"
    assert inbound.meta["linkId"] == "SampleLinkId7c1f"

    run_jobs(runtime)
    [sent] = fake_africastalking.requests
    assert sent["to"] == [PHONE]
    assert sent["username"] == ["sunrise"]
    assert sent["message"][0].startswith("Thanks for your message!")
    [reply] = interactions(runtime, "outbound")
    assert reply.provider == "africastalking"
    assert reply.provider_message_id.startswith("ATXid_")
    assert reply.meta["event"] == "bot_reply"
    assert reply.delivery_status in {"queued", "sent"}

    delivered = webhooks.africastalking(
        "sms/delivery", "africastalking/sms__delivery_success.txt", id=reply.provider_message_id
    )
    assert delivered.status_code == 204
    [reply] = interactions(runtime, "outbound")
    assert reply.delivery_status == "delivered"


def test_the_same_callback_twice_is_stored_once(webhooks: Webhooks, runtime: Runtime):
    sms(webhooks)
    sms(webhooks)
    assert len(interactions(runtime, "inbound")) == 1


def test_stop_opts_out_and_the_confirmation_still_goes_out(
    webhooks: Webhooks, runtime: Runtime, fake_africastalking: FakeAfricasTalking
):
    sms(webhooks, text="STOP", id="stop-1")
    run_jobs(runtime)
    with runtime.session() as session:
        assert session.scalars(select(ChannelConsent.status)).one() == "opted_out"
    [sent] = fake_africastalking.requests
    assert sent["message"][0].startswith("You have been unsubscribed")
    [confirmation] = interactions(runtime, "outbound")
    assert confirmation.delivery_status != "failed"

    sms(webhooks, text="Hello again?", id="after-stop")
    run_jobs(runtime)
    assert len(fake_africastalking.requests) == 1  # nothing more to an opted-out contact


def test_a_blacklisted_delivery_report_opts_the_contact_out(webhooks: Webhooks, runtime: Runtime):
    sms(webhooks)
    run_jobs(runtime)
    [reply] = interactions(runtime, "outbound")
    report = webhooks.africastalking(
        "sms/delivery",
        "africastalking/sms__delivery_failed_blacklist.txt",
        id=reply.provider_message_id,
    )
    assert report.status_code == 204
    [reply] = interactions(runtime, "outbound")
    assert reply.delivery_status == "failed"
    with runtime.session() as session:
        assert session.scalars(select(ChannelConsent.status)).one() == "opted_out"


def test_a_rep_reply_goes_back_through_africas_talking(
    webhooks: Webhooks,
    runtime: Runtime,
    client,  # type: ignore[no-untyped-def]
    auth: dict[str, str],
    fake_africastalking: FakeAfricasTalking,
):
    sms(webhooks)
    [inbound] = interactions(runtime, "inbound")
    response = client.post(
        "/api/v1/messages",
        json={
            "contact_id": inbound.contact_id,
            "channel": "sms",
            "body": "Karibu! It is KES 3,500.",
        },
        headers=auth,
    )
    assert response.status_code == 202, response.get_json()
    run_jobs(runtime)
    assert [r["message"][0] for r in fake_africastalking.requests][-1] == "Karibu! It is KES 3,500."


def test_callbacks_without_the_secret_are_refused_and_store_nothing(
    webhooks: Webhooks, runtime: Runtime
):
    assert sms(webhooks, key="nope").status_code == 403
    response = webhooks.africastalking(
        "sms/delivery", "africastalking/sms__delivery_success.txt", key=""
    )
    assert response.status_code == 403
    assert interactions(runtime, "inbound") == []


def test_a_malformed_callback_is_a_clear_400(webhooks: Webhooks, runtime: Runtime):
    response = sms(webhooks, **{"from": ""})
    assert response.status_code == 400
    assert "from" in response.get_json()["error"]
    response = sms(webhooks, **{"from": "+999"})
    assert response.status_code == 400
    assert interactions(runtime, "inbound") == []
