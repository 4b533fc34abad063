"""Sending from the API through the outbox, an RQ worker and the real twilio SDK to a local
server that speaks Twilio's Messages API."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from rq import Queue
from sqlalchemy import func, select

from crm import outbox
from crm.models import ChannelConsent, Interaction, OutboxJob
from crm.runtime import Runtime, build_runtime
from tests.conftest import PUBLIC_BASE_URL, Webhooks, run_jobs
from tests.fakes.twilio_api import FakeTwilio


def contact_from_inbound(
    webhooks: Webhooks, rt: Runtime, fixture: str = "twilio/sms__inbound.txt"
) -> int:
    webhooks.message(fixture)
    with rt.session() as session:
        contact_id = session.scalars(select(Interaction.contact_id)).first()
    assert contact_id is not None
    return contact_id


def send(client, auth, **payload):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/messages", json=payload, headers=auth)


def stored(rt: Runtime, interaction_id: int) -> Interaction:
    with rt.session() as session:
        return session.get_one(Interaction, interaction_id)


def outbound_count(rt: Runtime) -> int:
    with rt.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Interaction)
                .where(Interaction.author_id.is_not(None))
            )
            or 0
        )


def test_message_is_sent_through_the_twilio_sdk(
    client, auth, webhooks, runtime, fake_twilio: FakeTwilio
):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    response = send(client, auth, contact_id=contact_id, channel="sms", body="It is 25 cedis 🙂")
    assert response.status_code == 202
    accepted = response.get_json()
    assert accepted["delivery_status"] == "pending"

    run_jobs(runtime)

    [request] = fake_twilio.requests
    assert request["To"] == ["+233241234567"]
    assert request["From"] == ["+15005550006"]
    assert request["Body"] == ["It is 25 cedis 🙂"]
    assert request["StatusCallback"] == [
        f"{PUBLIC_BASE_URL}/webhooks/twilio/status?interaction={accepted['id']}"
    ]
    message = stored(runtime, accepted["id"])
    assert message.delivery_status == "queued"
    assert message.provider_message_id and message.provider_message_id.startswith("SM")
    with runtime.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(OutboxJob).where(OutboxJob.done_at.is_(None))
            )
            == 0
        )


def test_whatsapp_reply_inside_the_window(client, auth, webhooks, runtime, fake_twilio: FakeTwilio):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime, "twilio/whatsapp__inbound.txt")
    response = send(client, auth, contact_id=contact_id, channel="whatsapp", body="Yes, in stock")
    assert response.status_code == 202
    run_jobs(runtime)
    [request] = fake_twilio.requests
    assert request["To"] == ["whatsapp:+254712345678"]
    assert request["From"] == ["whatsapp:+14155238886"]


def test_whatsapp_outside_the_window_is_refused(client, auth, webhooks, runtime, fake_twilio):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)  # wrote by SMS, never on WhatsApp
    response = send(client, auth, contact_id=contact_id, channel="whatsapp", body="Hello")
    assert response.status_code == 422
    assert "24-hour window" in response.get_json()["message"]
    assert outbound_count(runtime) == 0


def test_whatsapp_template_is_sent_outside_the_window(client, auth, webhooks, runtime, fake_twilio):  # type: ignore[no-untyped-def]
    from crm.reply_library import load

    template = load().templates[0]
    contact_id = contact_from_inbound(webhooks, runtime)  # never wrote on WhatsApp
    response = send(
        client, auth, contact_id=contact_id, channel="whatsapp", template=template.content_sid
    )
    assert response.status_code == 202
    assert response.get_json()["body"].startswith("Hello ")  # the template's text, filled in
    run_jobs(runtime)
    [request] = fake_twilio.requests
    assert request["ContentSid"] == [template.content_sid]
    assert request["To"] == ["whatsapp:" + request["To"][0].removeprefix("whatsapp:")]
    unknown = send(
        client, auth, contact_id=contact_id, channel="whatsapp", template="HX" + "0" * 32
    )
    assert unknown.status_code == 422
    on_sms = send(client, auth, contact_id=contact_id, channel="sms", template=template.content_sid)
    assert on_sms.status_code == 422


def test_opted_out_contact_is_refused_and_nothing_is_sent(
    client, auth, webhooks, runtime, fake_twilio
):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    webhooks.message(Body="STOP", MessageSid="SM" + uuid.uuid4().hex)
    response = send(client, auth, contact_id=contact_id, channel="sms", body="Promo!")
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "OptedOut",
        "message": f"contact {contact_id} has opted out of sms",
    }
    run_jobs(runtime)
    assert fake_twilio.requests == []
    assert outbound_count(runtime) == 0


def test_opt_out_between_accept_and_send_stops_the_send(
    client, auth, webhooks, runtime, fake_twilio
):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    accepted = send(client, auth, contact_id=contact_id, channel="sms", body="Promo!").get_json()
    webhooks.message(Body="STOP", MessageSid="SM" + uuid.uuid4().hex)
    run_jobs(runtime)
    assert fake_twilio.requests == []
    message = stored(runtime, accepted["id"])
    assert (message.delivery_status, message.error_code) == ("failed", "opted_out")


@pytest.mark.parametrize("to", ["12345", "not a number", "+233 99"])
def test_invalid_number_is_refused(client, auth, webhooks, runtime, to):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    response = send(client, auth, contact_id=contact_id, channel="sms", body="Hi", to=to)
    assert response.status_code == 422
    assert response.get_json()["error"] == "InvalidPhoneNumber"
    assert outbound_count(runtime) == 0


def test_number_of_another_contact_is_refused(client, auth, webhooks, runtime):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    response = send(
        client, auth, contact_id=contact_id, channel="sms", body="Hi", to="+254712345678"
    )
    assert response.status_code == 422
    assert "is not a number of contact" in response.get_json()["message"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"channel": "sms", "body": "x"}, 422),
        ({"contact_id": 999999, "body": "x"}, 404),
        ({"contact_id": 1, "body": ""}, 422),
        ({"contact_id": 1, "body": "x", "channel": "fax"}, 422),
        ({"contact_id": 1, "body": "x" * 1601}, 422),
    ],
)
def test_bad_send_requests_get_clear_errors(client, auth, webhooks, runtime, payload, status):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    if payload.get("contact_id") == 1:
        payload = {**payload, "contact_id": contact_id}
    response = send(client, auth, **payload)
    assert response.status_code == status
    assert set(response.get_json()) == {"error", "message"}
    assert outbound_count(runtime) == 0


def test_non_json_body_is_refused(client, auth, runtime):  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/messages", data="contact_id=1", headers=auth)
    assert response.status_code == 422
    assert "JSON object" in response.get_json()["message"]


def test_unauthenticated_send_is_refused(client, webhooks, runtime):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    response = client.post("/api/v1/messages", json={"contact_id": contact_id, "body": "hi"})
    assert response.status_code == 401
    assert outbound_count(runtime) == 0


@pytest.mark.parametrize(("code", "status"), [(21211, 400), (21408, 400)])
def test_permanent_provider_error_fails_the_message(
    client, auth, webhooks, runtime, fake_twilio, code, status
):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    fake_twilio.fail_next(status, code, "The 'To' number is not a valid phone number.")
    accepted = send(client, auth, contact_id=contact_id, channel="sms", body="Hi").get_json()
    run_jobs(runtime)
    message = stored(runtime, accepted["id"])
    assert (message.delivery_status, message.error_code) == ("failed", str(code))
    assert len(fake_twilio.requests) == 1  # not retried


def test_provider_21610_opts_the_contact_out(client, auth, webhooks, runtime, fake_twilio):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    fake_twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    accepted = send(client, auth, contact_id=contact_id, channel="sms", body="Hi").get_json()
    run_jobs(runtime)
    assert stored(runtime, accepted["id"]).error_code == "21610"
    with runtime.session() as session:
        assert session.scalar(select(ChannelConsent.status)) == "opted_out"
    assert send(client, auth, contact_id=contact_id, channel="sms", body="Again").status_code == 409


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (503, 20503)])
def test_rate_limit_and_server_errors_are_retried(
    client, auth, webhooks, runtime, fake_twilio, status, code
):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    fake_twilio.fail_next(status, code, "Too Many Requests")
    accepted = send(client, auth, contact_id=contact_id, channel="sms", body="Hi").get_json()
    run_jobs(runtime)
    message = stored(runtime, accepted["id"])
    assert message.delivery_status == "pending"  # back in line, not failed
    assert message.meta["last_error_code"] == str(code)
    with runtime.session() as session:
        row = session.scalars(select(OutboxJob).where(OutboxJob.job == "send")).one()
    job = Queue("messages", connection=runtime.redis).fetch_job(outbox.job_id(row.id))
    assert job is not None and job.get_status() == "scheduled"  # RQ retry with backoff

    # when the retry is due RQ's scheduler puts it back on the queue; do that now
    Queue("messages", connection=runtime.redis).enqueue_job(job)
    run_jobs(runtime)
    assert stored(runtime, accepted["id"]).delivery_status == "queued"
    assert len(fake_twilio.requests) == 2


def test_a_send_interrupted_mid_flight_is_not_resent(client, auth, webhooks, runtime, fake_twilio):  # type: ignore[no-untyped-def]
    contact_id = contact_from_inbound(webhooks, runtime)
    accepted = send(client, auth, contact_id=contact_id, channel="sms", body="Hi").get_json()
    with runtime.session() as session:  # a worker died after marking it sending
        session.get_one(Interaction, accepted["id"]).delivery_status = "sending"
    run_jobs(runtime)
    assert fake_twilio.requests == []
    message = stored(runtime, accepted["id"])
    assert (message.delivery_status, message.error_code) == ("failed", "unknown_outcome")


def test_sandbox_records_outbound_without_a_twilio_account(webhooks, runtime, fake_twilio):  # type: ignore[no-untyped-def]
    sandbox_settings = dataclasses.replace(
        runtime.settings, twilio_account_sid="", twilio_auth_token=""
    )
    sandbox = build_runtime(sandbox_settings)
    try:
        contact_id = contact_from_inbound(webhooks, runtime)
        from crm.app import create_app
        from tests.conftest import make_token

        token = make_token(sandbox)
        client = create_app(runtime=sandbox).test_client()
        accepted = send(
            client,
            {"Authorization": f"Bearer {token}"},
            contact_id=contact_id,
            channel="sms",
            body="Hi from the sandbox",
        ).get_json()
        run_jobs(sandbox)
        message = stored(sandbox, accepted["id"])
        assert message.delivery_status == "sent"
        assert message.provider == "sandbox"
        assert fake_twilio.requests == []
    finally:
        sandbox.close()
