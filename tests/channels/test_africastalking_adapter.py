"""The Africa's Talking adapter alone: verifying and parsing stored callbacks, and sending SMS
through ``requests`` to a local server that speaks Africa's Talking's SMS API."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import pytest
import requests

from channels.africastalking import (
    SEND_STATUS_CODES,
    STATUS_MAP,
    AfricasTalkingAdapter,
    SandboxAfricasTalkingAdapter,
)
from channels.base import OutboundMessage, PayloadError, SendError, WebhookRequest
from channels.twilio import STATUS_RANK
from tests.conftest import PUBLIC_BASE_URL, load_fixture
from tests.fakes.africastalking_api import UNAUTHORIZED, FakeAfricasTalking

USERNAME = "crm-test"
API_KEY = "atsk_test_0123456789abcdef0123456789abcdef"
SECRET = "at-callback-secret-0123456789"
SMS_FROM = "ACMESOLAR"
URL = PUBLIC_BASE_URL + "/webhooks/africastalking/sms?key=" + SECRET
AT_ADDRESS = "52.48.80.20"

adapter = AfricasTalkingAdapter(
    username=USERNAME, api_key=API_KEY, api_base_url="http://127.0.0.1:9", webhook_secret=SECRET
)


def request(
    fixture: str,
    url: str = URL,
    remote_addr: str | None = AT_ADDRESS,
    drop: tuple[str, ...] = (),
    **overrides: str,
) -> WebhookRequest:
    form = {**load_fixture(fixture), **overrides}
    for name in drop:
        form.pop(name)
    return WebhookRequest(url=url, form=form, headers={}, remote_addr=remote_addr)


def sms(to: str = "+254712345678", body: str = "Karibu! Your order is ready.") -> OutboundMessage:
    return OutboundMessage(channel="sms", to=to, body=body)


@pytest.fixture(scope="module")
def fake_at() -> Iterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking(username=USERNAME, api_key=API_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_at: FakeAfricasTalking) -> Iterator[FakeAfricasTalking]:
    fake_at.reset()
    yield fake_at
    fake_at.reset()


def live(fake: FakeAfricasTalking, **overrides: object) -> AfricasTalkingAdapter:
    kwargs: dict[str, object] = {
        "username": USERNAME,
        "api_key": API_KEY,
        "api_base_url": fake.base_url,
        "sms_from": SMS_FROM,
        "webhook_secret": SECRET,
        "timeout": 5.0,
        **overrides,
    }
    return AfricasTalkingAdapter(**kwargs)  # type: ignore[arg-type]


# -- verify -------------------------------------------------------------------------------


def test_verifies_the_secret_in_the_callback_url():
    assert adapter.verify(request("africastalking/sms__inbound.txt"))
    wrong = URL.replace("key=" + SECRET, "key=" + SECRET[:-1] + "X")
    assert not adapter.verify(request("africastalking/sms__inbound.txt", url=wrong))


def test_refuses_a_callback_without_the_key_or_with_it_twice():
    bare = PUBLIC_BASE_URL + "/webhooks/africastalking/sms"
    assert not adapter.verify(request("africastalking/sms__inbound.txt", url=bare))
    assert not adapter.verify(request("africastalking/sms__inbound.txt", url=bare + "?key="))
    twice = URL + "&key=" + SECRET
    assert not adapter.verify(request("africastalking/sms__inbound.txt", url=twice))


def test_an_empty_configured_secret_refuses_everything():
    open_door = AfricasTalkingAdapter(
        username=USERNAME, api_key="", api_base_url="http://127.0.0.1:9", webhook_secret=""
    )
    empty_key = PUBLIC_BASE_URL + "/webhooks/africastalking/sms?key="
    assert not open_door.verify(request("africastalking/sms__inbound.txt", url=empty_key))
    assert not open_door.verify(request("africastalking/sms__inbound.txt"))


@pytest.mark.parametrize(
    ("remote_addr", "allowed"),
    [
        ("52.48.80.20", True),  # listed address
        ("41.90.64.7", True),  # inside the CIDR range
        ("::ffff:41.90.64.7", True),  # the same client seen by a dual-stack server
        ("2001:db8::17", True),  # inside the IPv6 range
        ("52.48.80.21", False),
        ("41.91.0.1", False),
        ("2001:db9::1", False),
        ("not-an-address", False),
        ("", False),
        (None, False),
    ],
)
def test_ip_allow_list(remote_addr: str | None, allowed: bool):
    guarded = AfricasTalkingAdapter(
        username=USERNAME,
        api_key=API_KEY,
        api_base_url="http://127.0.0.1:9",
        webhook_secret=SECRET,
        allowed_ips=("52.48.80.20", "41.90.0.0/16", "2001:db8::/32"),
    )
    incoming = request("africastalking/sms__inbound.txt", remote_addr=remote_addr)
    assert guarded.verify(incoming) is allowed


def test_the_allow_list_does_not_replace_the_secret():
    guarded = AfricasTalkingAdapter(
        username=USERNAME,
        api_key=API_KEY,
        api_base_url="http://127.0.0.1:9",
        webhook_secret=SECRET,
        allowed_ips=("52.48.80.20",),
    )
    bare = PUBLIC_BASE_URL + "/webhooks/africastalking/sms"
    assert not guarded.verify(request("africastalking/sms__inbound.txt", url=bare))


def test_an_invalid_allow_list_entry_fails_at_construction():
    with pytest.raises(ValueError, match=re.escape("999.1.1.1")):
        AfricasTalkingAdapter(
            username=USERNAME,
            api_key=API_KEY,
            api_base_url="http://127.0.0.1:9",
            webhook_secret=SECRET,
            allowed_ips=("999.1.1.1",),
        )


# -- inbound SMS --------------------------------------------------------------------------


def test_parses_an_inbound_sms():
    event = adapter.parse(request("africastalking/sms__inbound.txt"))
    assert (event.provider, event.channel, event.provider_message_id) == (
        "africastalking",
        "sms",
        "5f0d8e3a-9b1c-4d6e-8a2f-3c4b5d6e7f80",
    )
    assert (event.sender, event.sender_phone, event.recipient) == (
        "+254712345678",
        "+254712345678",
        "22384",
    )
    assert event.body == "Habari, how much is the solar lamp?"
    assert dict(event.extra) == {
        "linkId": "SampleLinkId7c1f",
        "date": "2026-11-23 09:14:05",
        "networkCode": "63902",
    }


def test_extra_leaves_out_absent_fields():
    event = adapter.parse(request("africastalking/sms__inbound.txt", drop=("linkId",)))
    assert "linkId" not in event.extra


@pytest.mark.parametrize("field", ["from", "id"])
def test_an_inbound_sms_without_sender_or_id_is_malformed(field: str):
    with pytest.raises(PayloadError, match=repr(field)):
        adapter.parse(request("africastalking/sms__inbound.txt", drop=(field,)))
    with pytest.raises(PayloadError, match=repr(field)):
        adapter.parse(request("africastalking/sms__inbound.txt", **{field: "  "}))


# -- delivery reports ---------------------------------------------------------------------


def test_every_mapped_status_is_one_of_ours():
    assert set(STATUS_MAP.values()) <= set(STATUS_RANK)


def test_parses_a_successful_delivery_report():
    update = adapter.parse_status(request("africastalking/sms__delivery_success.txt"))
    assert (update.provider, update.provider_message_id, update.status) == (
        "africastalking",
        "ATXid_8e0b7f2c4a1d49c6b3e5a7f9d1c2b4e6",
        "delivered",
    )
    assert (update.error_code, update.opted_out) == (None, False)


def test_a_blacklisted_recipient_is_an_opt_out():
    update = adapter.parse_status(request("africastalking/sms__delivery_failed_blacklist.txt"))
    assert (update.status, update.error_code, update.opted_out) == (
        "failed",
        "UserInBlacklist",
        True,
    )


def test_the_documented_spelling_of_the_blacklist_reason_is_an_opt_out_too():
    update = adapter.parse_status(
        request(
            "africastalking/sms__delivery_failed_blacklist.txt", failureReason="UserInBlackList"
        )
    )
    assert update.opted_out


def test_other_failure_reasons_are_not_opt_outs():
    update = adapter.parse_status(
        request(
            "africastalking/sms__delivery_failed_blacklist.txt",
            status="Rejected",
            failureReason="AbsentSubscriber",
        )
    )
    assert (update.status, update.error_code, update.opted_out) == (
        "failed",
        "AbsentSubscriber",
        False,
    )


@pytest.mark.parametrize(
    ("raw", "ours"),
    [
        ("Success", "delivered"),
        ("Sent", "sent"),
        ("Submitted", "sent"),
        ("Buffered", "sent"),
        ("Rejected", "failed"),
        ("Failed", "failed"),
        ("Expired", "undelivered"),
        ("AbsentSubscriber", "undelivered"),
        ("sUcCeSs", "delivered"),
        ("BUFFERED", "sent"),
    ],
)
def test_maps_delivery_statuses_case_insensitively(raw: str, ours: str):
    update = adapter.parse_status(request("africastalking/sms__delivery_success.txt", status=raw))
    assert update.status == ours


@pytest.mark.parametrize("status", ["Delivered", "queued", ""])
def test_an_unknown_or_missing_delivery_status_is_malformed(status: str):
    with pytest.raises(PayloadError, match="status"):
        adapter.parse_status(request("africastalking/sms__delivery_success.txt", status=status))


def test_a_delivery_report_without_id_is_malformed():
    with pytest.raises(PayloadError, match="'id'"):
        adapter.parse_status(request("africastalking/sms__delivery_success.txt", drop=("id",)))


# -- USSD ---------------------------------------------------------------------------------


def test_parses_the_first_ussd_hop():
    hop = adapter.parse_ussd(request("africastalking/ussd__first_hop.txt"))
    assert (hop.provider, hop.session_id, hop.service_code, hop.phone, hop.network_code) == (
        "africastalking",
        "ATUid_a3f1c9e27b5d4e8f9c0b1a2d3e4f5a6b",
        "*384*1234#",
        "+254712345678",
        "63902",
    )
    assert (hop.text, hop.inputs) == ("", [])


def test_parses_a_later_ussd_hop():
    hop = adapter.parse_ussd(request("africastalking/ussd__hop.txt"))
    assert (hop.text, hop.inputs) == ("1*2", ["1", "2"])


def test_a_missing_ussd_text_is_the_first_hop():
    hop = adapter.parse_ussd(request("africastalking/ussd__hop.txt", drop=("text",)))
    assert hop.inputs == []


@pytest.mark.parametrize("field", ["sessionId", "phoneNumber"])
def test_a_ussd_hop_without_session_or_phone_is_malformed(field: str):
    with pytest.raises(PayloadError, match=field):
        adapter.parse_ussd(request("africastalking/ussd__hop.txt", drop=(field,)))


def test_parses_the_end_of_session_notification():
    end = adapter.parse_ussd_end(request("africastalking/ussd__session_end.txt"))
    assert (end.provider, end.session_id, end.phone, end.status) == (
        "africastalking",
        "ATUid_a3f1c9e27b5d4e8f9c0b1a2d3e4f5a6b",
        "+254712345678",
        "Success",
    )
    assert (end.duration_ms, end.hops, end.last_input, end.cost) == (18432, 3, "1*2", "KES 0.0500")
    assert end.last_response == "END Asante! A sales rep will call you shortly."
    assert end.error_message is None


def test_end_of_session_tolerates_missing_counts():
    end = adapter.parse_ussd_end(
        request("africastalking/ussd__session_end.txt", drop=("durationInMillis", "hopsCount"))
    )
    assert (end.duration_ms, end.hops) == (None, None)


def test_a_failed_session_carries_its_error_message():
    end = adapter.parse_ussd_end(
        request(
            "africastalking/ussd__session_end.txt",
            status="Failed",
            errorMessage="Session timed out waiting for the application",
        )
    )
    assert (end.status, end.error_message) == (
        "Failed",
        "Session timed out waiting for the application",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("durationInMillis", "18s"), ("durationInMillis", "-5"), ("hopsCount", "three")],
)
def test_end_of_session_with_garbage_counts_is_malformed(field: str, value: str):
    with pytest.raises(PayloadError, match=field):
        adapter.parse_ussd_end(request("africastalking/ussd__session_end.txt", **{field: value}))


@pytest.mark.parametrize("field", ["sessionId", "phoneNumber", "status"])
def test_end_of_session_without_required_fields_is_malformed(field: str):
    with pytest.raises(PayloadError, match=field):
        adapter.parse_ussd_end(request("africastalking/ussd__session_end.txt", drop=(field,)))


# -- send ---------------------------------------------------------------------------------


def test_sends_an_sms_with_exactly_the_documented_fields(fake: FakeAfricasTalking):
    result = live(fake).send(sms(body="Karibu! Your order #1042 is ready."))
    assert (result.provider, result.status, result.sender) == ("africastalking", "sent", SMS_FROM)
    assert result.provider_message_id.startswith("ATXid_")
    assert fake.requests == [
        {
            "username": [USERNAME],
            "to": ["+254712345678"],
            "message": ["Karibu! Your order #1042 is ready."],
            "from": [SMS_FROM],
        }
    ]
    headers = {k.lower(): v for k, v in fake.headers[0].items()}
    assert (headers["apikey"], headers["accept"]) == (API_KEY, "application/json")
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_without_a_sender_id_from_is_left_out(fake: FakeAfricasTalking):
    result = live(fake, sms_from="").send(sms())
    assert result.sender is None
    assert "from" not in fake.requests[0]


@pytest.mark.parametrize(("code", "status"), [(100, "queued"), (101, "sent"), (102, "queued")])
def test_accepted_status_codes(fake: FakeAfricasTalking, code: int, status: str):
    fake.fail_next(code)
    assert live(fake).send(sms()).status == status


@pytest.mark.parametrize(
    ("code", "retryable", "opted_out"),
    [
        (401, False, False),
        (402, False, False),
        (403, False, False),
        (404, False, False),
        (405, False, False),
        (406, False, True),
        (407, False, False),
        (409, False, True),
        (500, True, False),
        (501, True, False),
        (502, False, False),
    ],
)
def test_a_refused_recipient_is_classified_by_its_status_code(
    fake: FakeAfricasTalking, code: int, retryable: bool, opted_out: bool
):
    fake.fail_next(code)
    with pytest.raises(SendError) as caught:
        live(fake).send(sms())
    error = caught.value
    assert (error.code, error.retryable, error.opted_out) == (str(code), retryable, opted_out)
    assert SEND_STATUS_CODES[code] in str(error)
    assert len(fake.requests) == 1


def test_an_unlisted_recipient_code_is_permanent_below_500(fake: FakeAfricasTalking):
    fake.fail_next(408)
    with pytest.raises(SendError) as caught:
        live(fake).send(sms())
    assert (caught.value.code, caught.value.retryable) == ("408", False)


def test_a_request_level_refusal_with_no_recipients_is_permanent(fake: FakeAfricasTalking):
    fake.fail_next(body='{"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}')
    with pytest.raises(SendError, match="InvalidSenderId") as caught:
        live(fake).send(sms())
    assert (caught.value.code, caught.value.retryable) == ("402", False)


@pytest.mark.parametrize("http_status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retryable(fake: FakeAfricasTalking, http_status: int):
    fake.fail_next(http_status=http_status)
    with pytest.raises(SendError) as caught:
        live(fake).send(sms())
    assert (caught.value.code, caught.value.retryable) == (f"http_{http_status}", True)


def test_another_client_error_is_permanent(fake: FakeAfricasTalking):
    fake.fail_next(http_status=400, body="Request is missing required form field 'to'")
    with pytest.raises(SendError, match="missing required form field") as caught:
        live(fake).send(sms())
    assert (caught.value.code, caught.value.retryable) == ("http_400", False)


@pytest.mark.parametrize(
    "overrides", [{"api_key": "atsk_wrong_key_do_not_log_me"}, {"username": "someone-else"}]
)
def test_bad_credentials_are_permanent_and_the_key_is_never_shown(
    fake: FakeAfricasTalking, caplog: pytest.LogCaptureFixture, overrides: dict[str, str]
):
    caplog.set_level(logging.DEBUG)
    at = live(fake, **overrides)
    with pytest.raises(SendError, match="HTTP 401") as caught:
        at.send(sms())
    assert (caught.value.code, caught.value.retryable, caught.value.opted_out) == (
        "http_401",
        False,
        False,
    )
    assert fake.requests == []  # the fake refused before recording
    for secret in (API_KEY, "atsk_wrong_key_do_not_log_me"):
        assert secret not in str(caught.value)
        assert secret not in caplog.text
        assert secret not in repr(at)


def test_the_fake_answers_bad_credentials_like_the_real_api(fake: FakeAfricasTalking):
    answer = requests.post(
        fake.base_url + "/version1/messaging",
        data={"username": USERNAME, "to": "+254712345678", "message": "hi"},
        headers={"apiKey": "nope"},
        timeout=5,
    )
    assert (answer.status_code, answer.text) == (401, UNAUTHORIZED)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("<html>Bad Gateway</html>", "not JSON"),
        ('{"status": "ok"}', "not JSON"),
        ('{"SMSMessageData": {"Message": "Sent to 0/0", "Recipients": []}}', "no recipient"),
        ('{"SMSMessageData": {"Message": "?", "Recipients": [{"statusCode": "x"}]}}', "no recip"),
    ],
)
def test_a_shapeless_answer_is_retryable(fake: FakeAfricasTalking, body: str, detail: str):
    fake.fail_next(body=body)
    with pytest.raises(SendError, match="unexpected answer") as caught:
        live(fake).send(sms())
    assert caught.value.retryable
    assert detail in str(caught.value)


def test_an_accepted_recipient_without_message_id_is_retryable(fake: FakeAfricasTalking):
    fake.fail_next(
        body='{"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": '
        '[{"statusCode": 101, "status": "Success", "number": "+254712345678"}]}}'
    )
    with pytest.raises(SendError, match="messageId") as caught:
        live(fake).send(sms())
    assert caught.value.retryable


def test_an_unreachable_api_is_retryable():
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    at = AfricasTalkingAdapter(
        username=USERNAME,
        api_key=API_KEY,
        api_base_url=f"http://127.0.0.1:{port}",
        webhook_secret=SECRET,
    )
    with pytest.raises(SendError, match="unreachable: ConnectionError") as caught:
        at.send(sms())
    assert caught.value.retryable


def test_a_timeout_is_retryable():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        at = AfricasTalkingAdapter(
            username=USERNAME,
            api_key=API_KEY,
            api_base_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            webhook_secret=SECRET,
            timeout=0.2,
        )
        with pytest.raises(SendError, match="unreachable: ReadTimeout") as caught:
            at.send(sms())
    assert caught.value.retryable


def test_a_malformed_base_url_is_permanent():
    at = AfricasTalkingAdapter(
        username=USERNAME, api_key=API_KEY, api_base_url="api.africastalking.com", webhook_secret=""
    )
    with pytest.raises(SendError, match="AT_API_BASE_URL") as caught:
        at.send(sms())
    assert not caught.value.retryable


@pytest.mark.parametrize("channel", ["whatsapp", "voice"])
def test_only_sms_can_be_sent(fake: FakeAfricasTalking, channel: str):
    with pytest.raises(SendError, match=channel) as caught:
        live(fake).send(OutboundMessage(channel=channel, to="+254712345678", body="hi"))
    assert not caught.value.retryable
    assert fake.requests == []


def test_the_sandbox_records_without_calling_the_api(fake: FakeAfricasTalking):
    sandbox = SandboxAfricasTalkingAdapter(
        username="sandbox", api_key="", api_base_url=fake.base_url, webhook_secret=SECRET
    )
    result = sandbox.send(sms())
    assert (result.provider, result.status, result.sender) == ("sandbox", "sent", "sandbox")
    assert result.provider_message_id.startswith("ATXid_")
    assert len(result.provider_message_id) == len("ATXid_") + 32
    assert fake.requests == []
    # Callbacks are verified and parsed exactly as the real adapter's.
    assert sandbox.verify(request("africastalking/sms__inbound.txt"))
    assert sandbox.parse_ussd(request("africastalking/ussd__hop.txt")).inputs == ["1", "2"]
