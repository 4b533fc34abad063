"""The contacts list with filters and pagination, editing a contact, and who sees what."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.models import Contact, Role
from crm.runtime import Runtime
from tests.conftest import Webhooks, signed_in

PHONES = [f"+23324100{i:04d}" for i in range(6)]


@pytest.fixture
def contacts(runtime: Runtime, webhooks: Webhooks) -> list[int]:
    """Six contacts by SMS (one by WhatsApp), with stages, scores, tags and owners set."""
    for i, phone in enumerate(PHONES):
        if i == 5:
            sid = "SMwa" + phone[1:]
            response = webhooks.message(
                "twilio/whatsapp__inbound.txt",
                From=f"whatsapp:{phone}",
                WaId=phone[1:],
                MessageSid=sid,
                SmsMessageSid=sid,
                SmsSid=sid,
                ProfileName="Wanjiru Kamau",
            )
        else:
            response = webhooks.message(From=phone, MessageSid=f"SM{phone[1:]}")
        assert response.status_code == 200
    with runtime.session() as session:
        rows = list(session.scalars(select(Contact).order_by(Contact.id)))
        for contact, (stage, score) in zip(
            rows,
            [("lead", 10), ("mql", 55), ("mql", 70), ("customer", 90), ("lead", 0), ("sql", 60)],
            strict=True,
        ):
            contact.lifecycle_stage = stage
            contact.score = score
        rows[0].name = "Ama Mensah"
        return [c.id for c in rows]


def ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_json()
    return [c["id"] for c in response.get_json()["data"]]


def test_filters_compose_and_pages_follow_the_cursor(
    client: FlaskClient, runtime: Runtime, contacts: list[int]
):
    _, admin = signed_in(runtime, Role.ADMIN, "admin@example.com")
    get = lambda **q: client.get("/api/v1/contacts", query_string=q, headers=admin)  # noqa: E731
    assert ids(get()) == contacts[::-1]
    assert ids(get(stage="mql")) == [contacts[2], contacts[1]]
    assert ids(get(stage="mql,sql", score_min="60")) == [contacts[5], contacts[2]]
    assert ids(get(score_max="10")) == [contacts[4], contacts[0]]
    assert ids(get(channel="whatsapp")) == [contacts[5]]
    assert ids(get(q="mensah")) == [contacts[0]]
    assert ids(get(q="024 100 0003")) == [contacts[3]]
    assert ids(get(q="wanjiru")) == [contacts[5]]
    assert ids(get(q="%a_")) == []  # LIKE wildcards are matched literally
    first = get(limit="4").get_json()
    assert [c["id"] for c in first["data"]] == contacts[:1:-1]
    rest = get(limit="4", cursor=str(first["next_cursor"])).get_json()
    assert [c["id"] for c in rest["data"]] == [contacts[1], contacts[0]]
    assert rest["next_cursor"] is None
    for bad in ({"stage": "hot"}, {"score_min": "lots"}, {"limit": "0"}, {"owner": "someone"}):
        assert get(**bad).status_code == 400, bad


def test_a_rep_sees_their_contacts_and_the_unassigned_not_another_reps(
    client: FlaskClient, runtime: Runtime, contacts: list[int]
):
    ama_id, ama = signed_in(runtime, Role.REP, "ama@example.com")
    kofi_id, _ = signed_in(runtime, Role.REP, "kofi@example.com")
    with runtime.session() as session:
        session.get_one(Contact, contacts[0]).owner_id = ama_id
        session.get_one(Contact, contacts[1]).owner_id = kofi_id
    seen = ids(client.get("/api/v1/contacts", headers=ama))
    assert contacts[0] in seen and contacts[1] not in seen and contacts[2] in seen
    assert ids(client.get("/api/v1/contacts?owner=me", headers=ama)) == [contacts[0]]
    assert client.get(f"/api/v1/contacts/{contacts[1]}", headers=ama).status_code == 404
    timeline = client.get(f"/api/v1/contacts/{contacts[1]}/timeline", headers=ama)
    assert timeline.status_code == 404
    lookup = client.get("/api/v1/contacts", query_string={"phone": PHONES[1]}, headers=ama)
    assert lookup.get_json()["data"] == []
    patch = client.patch(f"/api/v1/contacts/{contacts[1]}", json={"name": "X"}, headers=ama)
    assert patch.status_code == 404
    sent = client.post(
        "/api/v1/messages",
        json={"contact_id": contacts[1], "channel": "sms", "body": "hi"},
        headers=ama,
    )
    assert sent.status_code == 404


def test_editing_a_contact_is_validated_all_or_nothing_and_owners_are_checked(
    client: FlaskClient, runtime: Runtime, contacts: list[int]
):
    ama_id, ama = signed_in(runtime, Role.REP, "ama@example.com")
    kofi_id, _ = signed_in(runtime, Role.REP, "kofi@example.com")
    _, marketer = signed_in(runtime, Role.MARKETER, "mk@example.com")
    url = f"/api/v1/contacts/{contacts[0]}"
    changed = client.patch(
        url,
        json={
            "name": "Ama K. Mensah",
            "email": "ama@example.org",
            "tags": ["VIP", "solar"],
            "attributes": {"town": "Kumasi", "plan": "pro"},
            "owner_id": ama_id,
            "lifecycle_stage": "sql",
        },
        headers=ama,
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["name"], body["owner_id"], body["lifecycle_stage"]) == (
        "Ama K. Mensah",
        ama_id,
        "sql",
    )
    assert body["tags"] == ["solar", "vip"] and body["attributes"] == {
        "town": "Kumasi",
        "plan": "pro",
    }
    again = client.patch(
        url, json={"tags": ["solar"], "attributes": {"plan": None}}, headers=ama
    ).get_json()
    assert again["tags"] == ["solar"] and again["attributes"] == {"town": "Kumasi"}
    for bad in (
        {"owner_id": kofi_id},  # a rep cannot hand it to someone else
        {"lifecycle_stage": "lead"},  # back without a reason
        {"lifecycle_stage": "disqualified", "lifecycle_reason": "meh"},
        {"email": "not-an-email"},
        {"attributes": {"nested": {"a": 1}}},
        {"score": 100},
        {"name": "New name", "tags": "vip"},  # one bad field: nothing changes
    ):
        response = client.patch(url, json=bad, headers=ama)
        assert response.status_code == 422, bad
    assert client.get(url, headers=ama).get_json()["name"] == "Ama K. Mensah"
    back = client.patch(
        url, json={"lifecycle_stage": "lead", "lifecycle_reason": "not ready yet"}, headers=ama
    )
    assert back.get_json()["lifecycle_stage"] == "lead"
    assert client.patch(url, json={"name": "M"}, headers=marketer).status_code == 403
