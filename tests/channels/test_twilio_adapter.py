"""The Twilio adapter alone: parsing stored payloads and verifying signatures with the SDK."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from channels.base import LATE, OutboundMessage, PayloadError, SendError, WebhookRequest
from channels.twilio import TwilioAdapter
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL, load_fixture, sign
from tests.fakes.twilio_api import FakeTwilio

URL = PUBLIC_BASE_URL + "/webhooks/twilio/messaging"
adapter = TwilioAdapter(auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID)


def request(
    fixture: str, url: str = URL, signature: str | None = None, **overrides: str
) -> WebhookRequest:
    form = {**load_fixture(fixture), **overrides}
    path = url.removeprefix(PUBLIC_BASE_URL)
    return WebhookRequest(
        url=url,
        form=form,
        headers={"X-Twilio-Signature": sign(path, form) if signature is None else signature},
    )


def test_parses_an_inbound_sms():
    event = adapter.parse(request("twilio/sms__inbound.txt"))
    assert (event.channel, event.sender_phone, event.recipient) == (
        "sms",
        "+233241234567",
        "+15005550006",
    )
    assert event.body == "Hi, how much is the solar lamp?"
    assert event.extra["MessagingServiceSid"] == "MG9752274e9e519418a7406176694466fa"


def test_parses_a_whatsapp_message_with_media():
    event = adapter.parse(request("twilio/whatsapp__media_no_body.txt"))
    assert (event.channel, event.sender_phone, event.profile_name) == (
        "whatsapp",
        "+254712345678",
        "Wanjiru",
    )
    assert [m.content_type for m in event.media] == ["image/jpeg"]


def test_verifies_the_sdk_signature_over_url_and_params():
    assert adapter.verify(request("twilio/sms__inbound.txt"))
    assert not adapter.verify(request("twilio/sms__inbound.txt", signature="AAAA"))
    signed_elsewhere = request("twilio/sms__inbound.txt")
    moved = WebhookRequest(
        url=URL.replace("crm.", "evil."),
        form=signed_elsewhere.form,
        headers=signed_elsewhere.headers,
    )
    assert not adapter.verify(moved)


def test_refuses_another_account_even_when_signed():
    assert not adapter.verify(request("twilio/sms__inbound.txt", AccountSid="AC" + "b" * 32))


def test_status_parse_reads_our_interaction_id_from_the_callback_url():
    status_url = PUBLIC_BASE_URL + "/webhooks/twilio/status?interaction=42"
    update = adapter.parse_status(request("twilio/status__undelivered_21610.txt", url=status_url))
    assert (update.status, update.error_code, update.interaction_id) == ("undelivered", "21610", 42)


def test_status_parse_rejects_a_bad_interaction_id():
    with pytest.raises(PayloadError):
        adapter.parse_status(
            request(
                "twilio/status__sent.txt",
                url=PUBLIC_BASE_URL + "/webhooks/twilio/status?interaction=x",
            )
        )


def test_too_many_media_is_malformed():
    with pytest.raises(PayloadError, match="NumMedia"):
        adapter.parse(request("twilio/sms__inbound.txt", NumMedia="11"))


def test_a_send_past_its_deadline_never_leaves_and_one_on_time_does(
    fake_twilio: FakeTwilio,
) -> None:
    """The last check before the wire: a campaign send paced to a rate slot is dropped, not
    sent late (it would crowd the next slots at the provider)."""
    sender = TwilioAdapter(
        auth_token=fake_twilio.auth_token,
        account_sid=fake_twilio.account_sid,
        api_base_url=fake_twilio.base_url,
        from_number="+15005550006",
    )
    fake_twilio.reset()
    late = OutboundMessage(
        channel="sms", to="+233241000001", body="hi", deadline=time.monotonic() - 0.001
    )
    with pytest.raises(SendError) as refused:
        sender.send(late)
    assert (refused.value.code, refused.value.retryable, refused.value.in_doubt) == (
        LATE,
        True,
        False,
    )
    assert fake_twilio.requests == []

    on_time = replace(late, deadline=time.monotonic() + 5)
    assert sender.send(on_time).provider_message_id.startswith("SM")
    assert sender.send(replace(late, deadline=None)).provider_message_id.startswith("SM")
    assert len(fake_twilio.requests) == 2
    fake_twilio.reset()


def test_a_send_that_never_connected_is_not_in_doubt_and_one_that_timed_out_is(
    fake_twilio: FakeTwilio,
) -> None:
    message = OutboundMessage(channel="sms", to="+233241000001", body="hi")
    nowhere = TwilioAdapter(
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        api_base_url="http://127.0.0.1:9",  # the discard port: nothing listens
        from_number="+15005550006",
    )
    with pytest.raises(SendError) as unreachable:
        nowhere.send(message)
    assert unreachable.value.retryable and not unreachable.value.in_doubt

    slow = TwilioAdapter(
        auth_token=fake_twilio.auth_token,
        account_sid=fake_twilio.account_sid,
        api_base_url=fake_twilio.base_url,
        from_number="+15005550006",
        timeout=0.1,
    )
    fake_twilio.reset()
    fake_twilio.latency = 0.5
    with pytest.raises(SendError) as timed_out:
        slow.send(message)
    assert timed_out.value.retryable and timed_out.value.in_doubt
    assert fake_twilio.wait_for_accepted(1, timeout=5)  # Twilio has it: a resend would be twice
    fake_twilio.reset()
