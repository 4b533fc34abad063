"""The fake Twilio server answers "Read multiple Message resources" for the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.fakes.twilio_api import FakeTwilio

SENDER = "+15005550006"
AMA = "+233241234567"
KOFI = "+233201112222"


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> Iterator[FakeTwilio]:
    fake_twilio.reset()
    yield fake_twilio
    fake_twilio.reset()


def sdk(fake: FakeTwilio, token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
def sent(fake: FakeTwilio) -> list[str]:
    """Three messages, two of them to Ama: their sids, in the order sent."""
    client = sdk(fake)
    return [
        client.messages.create(to=to, from_=SENDER, body=body).sid
        for to, body in ((AMA, "one"), (KOFI, "two"), (AMA, "three"))
    ]


def test_lists_one_numbers_messages_newest_first(fake: FakeTwilio, sent: list[str]) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    listed = sdk(fake).messages.list(to=AMA, limit=20)
    assert [m.body for m in listed] == ["three", "one"]
    assert [m.sid for m in listed] == [sent[2], sent[0]]
    assert {m.to for m in listed} == {AMA}
    assert {m.from_ for m in listed} == {SENDER}
    assert {m.status for m in listed} == {"queued"}
    for message in listed:
        assert before <= message.date_created <= datetime.now(UTC)
    assert [m.body for m in sdk(fake).messages.list(to=KOFI)] == ["two"]
    assert sdk(fake).messages.list(to="+233200000000") == []


def test_lists_the_resources_the_post_answered(fake: FakeTwilio, sent: list[str]) -> None:
    accepted = fake.accepted_messages()
    assert [m["sid"] for m in accepted] == sent
    response = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        params={"To": AMA, "PageSize": 20},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    assert response.status_code == 200
    page = response.json()
    assert page["messages"] == [accepted[2], accepted[0]]
    uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?To=%2B233241234567&PageSize=20"
    assert {k: v for k, v in page.items() if k != "messages"} == {
        "end": 1,
        "first_page_uri": uri + "&Page=0",
        "next_page_uri": None,
        "page": 0,
        "page_size": 20,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri + "&Page=0",
    }
    created = datetime.strptime(accepted[0]["date_created"], "%a, %d %b %Y %H:%M:%S %z")
    assert abs(datetime.now(UTC) - created) < timedelta(seconds=30)
    # copies: changing them changes nothing stored
    accepted[0]["body"] = "changed"
    assert fake.accepted_messages()[0]["body"] == "one"


def test_scripted_errors_are_not_listed(fake: FakeTwilio, sent: list[str]) -> None:
    fake.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    with pytest.raises(TwilioRestException) as raised:
        sdk(fake).messages.create(to=AMA, from_=SENDER, body="four")
    assert raised.value.code == 21211
    assert len(fake.requests) == 4  # every POST received, failures included
    assert [m["sid"] for m in fake.accepted_messages()] == sent
    assert [m.body for m in sdk(fake).messages.list(to=AMA)] == ["three", "one"]


def test_wrong_credentials_are_refused(fake: FakeTwilio, sent: list[str]) -> None:
    wrong = sdk(fake, token="not-the-token")
    with pytest.raises(TwilioRestException) as raised:
        wrong.messages.create(to=AMA, from_=SENDER, body="four")
    assert (raised.value.status, raised.value.code) == (401, 20003)
    # The SDK reads a list page without its error handling: a plain TwilioException carrying
    # the response.
    with pytest.raises(TwilioException) as raised_list:
        wrong.messages.list(to=AMA)
    response = raised_list.value.args[1]
    assert response.status_code == 401
    assert '"code": 20003' in response.text
    response = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        auth=(ACCOUNT_SID, "not-the-token"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json() == {"code": 20003, "message": "Authenticate", "status": 401}
    assert len(fake.accepted_messages()) == 3


def test_streams_every_page(fake: FakeTwilio, sent: list[str]) -> None:
    client = sdk(fake)
    assert [m.sid for m in client.messages.stream(page_size=1)] == sent[::-1]
    assert [m.sid for m in client.messages.list(to=AMA, page_size=1)] == [sent[2], sent[0]]
    first = client.messages.page(page_size=2)
    assert [m.sid for m in first] == [sent[2], sent[1]]
    second = first.next_page()
    assert second is not None
    assert [m.sid for m in second] == [sent[0]]
    assert second.next_page() is None
    assert [m.sid for m in client.messages.stream(page_size=2, limit=1)] == [sent[2]]


def test_filters_by_sender_and_date(fake: FakeTwilio, sent: list[str]) -> None:
    client = sdk(fake)
    days = [
        datetime.strptime(str(m["date_created"]), "%a, %d %b %Y %H:%M:%S %z").date()
        for m in fake.accepted_messages()
    ]  # the same day, but for a run across midnight UTC
    assert len(client.messages.list(from_=SENDER)) == 3
    assert client.messages.list(from_="+15005550001") == []
    assert len(client.messages.list(date_sent=days[0])) == days.count(days[0])
    assert len(client.messages.list(date_sent_after=days[0])) == 3
    assert len(client.messages.list(date_sent_before=days[-1])) == 3
    assert client.messages.list(date_sent=days[0] - timedelta(days=1)) == []
    assert client.messages.list(date_sent_before=days[0] - timedelta(days=1)) == []
    assert client.messages.list(date_sent_after=days[-1] + timedelta(days=1)) == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert client.messages.list(date_sent_after=later) == []
    assert len(client.messages.list(to=AMA, date_sent_before=later)) == 2
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert len(client.messages.list(date_sent_after=earlier, date_sent_before=later)) == 3


def test_refuses_a_bad_query(fake: FakeTwilio) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    for params in ({"PageSize": "0"}, {"Page": "-1"}, {"DateSent>": "yesterday"}):
        response = requests.get(url, params=params, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert response.status_code == 400, params
        assert response.json()["code"] == 20001
