"""Composing a campaign through the API: segments with live counts, campaigns with checked
templates, the preview; marketers and admins only."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from crm.models import Role, Segment
from crm.runtime import Runtime
from tests.conftest import Webhooks, finish_launch, run_jobs, signed_in


@pytest.fixture
def marketer(runtime: Runtime) -> dict[str, str]:
    return signed_in(runtime, Role.MARKETER, "mk@example.com")[1]


@pytest.fixture
def customers(webhooks: Webhooks) -> None:
    for i in range(3):
        phone = f"+23324100000{i}"
        response = webhooks.message(From=phone, MessageSid=f"SMc{i:031d}", Body="hello")
        assert response.status_code == 200


def test_a_segment_a_campaign_and_its_preview(
    client: FlaskClient, marketer: dict[str, str], customers: None
):
    counted = client.post(
        "/api/v1/segments/count", json={"filters": {"countries": ["GH"]}}, headers=marketer
    )
    assert counted.get_json() == {"count": 3}
    segment = client.post(
        "/api/v1/segments",
        json={"name": "Ghana", "filters": {"countries": ["GH"]}},
        headers=marketer,
    )
    assert segment.status_code == 201 and segment.get_json()["count"] == 3
    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Rainy season",
            "channel": "sms",
            "segment_id": segment.get_json()["id"],
            "body": "Hi {{ first_name | default('there') }}, lamps are 20% off this week",
        },
        headers=marketer,
    )
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert campaign["status"] == "draft" and campaign["variants"][0]["weight"] == 100
    assert (campaign["quiet_start"], campaign["quiet_end"]) == ("20:00", "08:00")
    preview = client.post(f"/api/v1/campaigns/{campaign['id']}/preview", headers=marketer)
    assert preview.status_code == 200, preview.get_json()
    result = preview.get_json()
    assert result["recipients"] == 3 and result["by_encoding"] == {"GSM-7": 3}
    assert result["segments_total"] == 3 and result["currency"] == "USD"
    assert result["estimated_cost"] == "0.12"  # 3 x 0.041 (GH), rounded
    assert result["samples"][0]["body"].startswith("Hi there, lamps")  # no names on record
    scheduled = client.patch(
        f"/api/v1/campaigns/{campaign['id']}",
        json={"send_at": "2026-12-01T09:00:00+00:00", "in_contact_timezone": True},
        headers=marketer,
    )
    assert scheduled.get_json()["status"] == "scheduled"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "X", "channel": "fax"}, "channel"),
        ({"name": "X", "channel": "sms", "body": "Hi {{ frist_name }}"}, "frist_name"),
        ({"name": "X", "channel": "sms", "body": "a", "variants": []}, "not both"),
        ({"name": "X", "channel": "sms", "segment_id": 999}, "no segment"),
        ({"name": "X", "channel": "sms", "sender": "not a sender!"}, "sender"),
        ({"name": "X", "channel": "whatsapp", "content_sid": "HX1"}, "Content SID"),
        ({"name": "X", "channel": "sms", "send_at": "tomorrow"}, "ISO 8601"),
        ({"name": "X", "channel": "sms", "timezone": "Mars/Olympus"}, "time zone"),
        ({"name": "X", "channel": "sms", "quiet_start": "25:00"}, "HH:MM"),
        ({"name": "X", "channel": "sms", "quiet_end": None}, "both"),
        ({"channel": "sms"}, "name is required"),
        ({"name": "X", "channel": "sms", "colour": "red"}, "cannot set colour"),
    ],
)
def test_bad_campaigns_are_refused_with_the_reason(
    client: FlaskClient, marketer: dict[str, str], body: dict, words: str
):
    response = client.post("/api/v1/campaigns", json=body, headers=marketer)
    assert response.status_code == 422, response.get_json()
    assert words in response.get_json()["message"]
    assert client.get("/api/v1/campaigns", headers=marketer).get_json()["data"] == []


def test_bad_segments_are_refused_and_reps_cannot_compose(
    client: FlaskClient, runtime: Runtime, marketer: dict[str, str]
):
    bad = client.post(
        "/api/v1/segments", json={"name": "x", "filters": {"stages": ["hot"]}}, headers=marketer
    )
    assert bad.status_code == 422 and "hot" in bad.get_json()["message"]
    _, rep = signed_in(runtime, Role.REP, "rep@example.com")
    assert client.get("/api/v1/campaigns", headers=rep).status_code == 403
    assert client.post("/api/v1/segments/count", json={}, headers=rep).status_code == 403
    assert client.get("/api/v1/campaigns/2147483647", headers=marketer).status_code == 404


def test_launch_pause_resume_cancel_with_live_progress(
    client: FlaskClient, runtime: Runtime, marketer: dict[str, str], customers: None
):
    segment = client.post(
        "/api/v1/segments", json={"name": "All", "filters": {}}, headers=marketer
    ).get_json()
    campaign = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Now",
            "channel": "sms",
            "segment_id": segment["id"],
            "body": "Lamps are back in stock",
            "sender": "MG" + "b" * 32,
            "quiet_start": None,
            "quiet_end": None,
        },
        headers=marketer,
    ).get_json()
    url = f"/api/v1/campaigns/{campaign['id']}"
    launched = client.post(f"{url}/launch", headers=marketer)
    assert launched.status_code == 202, launched.get_json()
    assert launched.get_json()["status"] == "launching"  # a worker writes the recipients
    finish_launch(runtime, campaign["id"])
    body = client.get(url, headers=marketer).get_json()
    assert body["status"] == "running" and body["summary"]["recipients"] == 3
    assert body["progress"]["pending"] == 3
    assert client.post(f"{url}/launch", headers=marketer).status_code == 422  # once
    assert client.post(f"{url}/resume", headers=marketer).status_code == 422  # not paused
    assert client.post(f"{url}/pause", headers=marketer).get_json()["status"] == "paused"
    run_jobs(runtime)  # the job sees the pause and sends nothing
    assert client.get(url, headers=marketer).get_json()["progress"]["sent"] == 0
    assert client.post(f"{url}/resume", headers=marketer).get_json()["status"] == "running"
    run_jobs(runtime)
    shown = client.get(url, headers=marketer).get_json()
    assert shown["status"] == "done" and shown["progress"]["sent"] == 3
    assert client.post(f"{url}/cancel", headers=marketer).status_code == 422  # done already
    figures = client.get(f"{url}/results", headers=marketer).get_json()
    assert (figures["sent"], figures["replied"], figures["reply_rate"]) == (3, 0, 0.0)
    assert figures["revenue"] == {"first_touch": {}, "last_touch": {}}


def test_a_launch_with_nobody_to_send_to_is_done_at_once(
    client: FlaskClient, runtime: Runtime, marketer: dict[str, str], customers: None
):
    segment = client.post(
        "/api/v1/segments",
        json={"name": "Kenya", "filters": {"countries": ["KE"]}},
        headers=marketer,
    ).get_json()
    campaign = client.post(
        "/api/v1/campaigns",
        json={"name": "Empty", "channel": "sms", "segment_id": segment["id"], "body": "Hi"},
        headers=marketer,
    ).get_json()
    url = f"/api/v1/campaigns/{campaign['id']}"
    assert client.post(f"{url}/launch", headers=marketer).status_code == 202
    run_jobs(runtime)
    launched = client.get(url, headers=marketer).get_json()
    assert launched["status"] == "done" and launched["finished_at"]


def test_a_launch_cancelled_or_left_without_its_segment_before_the_worker_writes_nothing(
    client: FlaskClient, runtime: Runtime, marketer: dict[str, str], customers: None
):
    segment = client.post(
        "/api/v1/segments", json={"name": "All", "filters": {}}, headers=marketer
    ).get_json()

    def requested(name: str) -> str:
        campaign = client.post(
            "/api/v1/campaigns",
            json={"name": name, "channel": "sms", "segment_id": segment["id"], "body": "Hi"},
            headers=marketer,
        ).get_json()
        url = f"/api/v1/campaigns/{campaign['id']}"
        assert client.post(f"{url}/launch", headers=marketer).get_json()["status"] == "launching"
        return url

    cancelled, orphaned = requested("Cancelled"), requested("Orphaned")
    assert client.post(f"{cancelled}/cancel", headers=marketer).get_json()["status"] == "cancelled"
    with runtime.session() as session:  # the segment goes while the launch waits for a worker
        session.execute(delete(Segment))
    run_jobs(runtime)

    gone = client.get(cancelled, headers=marketer).get_json()
    assert (gone["status"], gone["progress"]["total"]) == ("cancelled", 0)
    back = client.get(orphaned, headers=marketer).get_json()
    assert (back["status"], back["launched_at"], back["progress"]) == ("draft", None, None)
