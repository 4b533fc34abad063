"""Deals through the pipeline: validation, lifecycle in step, attribution, who may change what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.models import Contact, Deal, Interaction, Role, User
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token


def bearer(rt: Runtime, role: Role, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(rt, role, email=email)}"}


@pytest.fixture
def admin(runtime: Runtime) -> dict[str, str]:
    return bearer(runtime, Role.ADMIN, "admin@example.com")


@pytest.fixture
def contact_id(runtime: Runtime, webhooks: Webhooks) -> int:
    assert webhooks.message().status_code == 200
    with runtime.session() as session:
        return session.scalars(select(Contact.id)).one()


def open_deal(client: FlaskClient, auth: dict[str, str], contact_id: int, **fields: object):
    body = {"contact_id": contact_id, "title": "Solar lamp x 20", "amount": 1250.5, **fields}
    return client.post("/api/v1/deals", json=body, headers=auth)


def test_a_deal_makes_an_opportunity_then_a_customer_and_carries_attribution(
    client: FlaskClient, runtime: Runtime, admin: dict[str, str], contact_id: int
):
    created = open_deal(client, admin, contact_id, currency="ghs")
    assert created.status_code == 201, created.get_json()
    deal = created.get_json()
    assert (deal["stage"], deal["amount"], deal["currency"]) == ("qualified", "1250.50", "GHS")
    assert deal["first_touch_channel"] == "sms"
    with runtime.session() as session:
        assert session.get_one(Contact, contact_id).lifecycle_stage == "opportunity"
    url = f"/api/v1/deals/{deal['id']}"
    assert client.patch(url, json={"stage": "proposal"}, headers=admin).status_code == 200
    won = client.patch(url, json={"stage": "won"}, headers=admin).get_json()
    assert won["stage"] == "won" and won["closed_at"] is not None
    with runtime.session() as session:
        assert session.get_one(Contact, contact_id).lifecycle_stage == "customer"
        moves = session.scalars(
            select(Interaction.body).where(
                Interaction.contact_id == contact_id, Interaction.channel == "system"
            )
        ).all()
    assert "Lifecycle opportunity -> customer by user:" in " ".join(moves)
    assert any(m.startswith("Deal Solar lamp x 20: proposal -> won") for m in moves)
    # Reopening clears the close; the contact stays a customer (lifecycle only moves forward).
    reopened = client.patch(url, json={"stage": "negotiation"}, headers=admin).get_json()
    assert reopened["closed_at"] is None


def test_losing_needs_a_reason_code(client: FlaskClient, admin: dict[str, str], contact_id: int):
    deal_id = open_deal(client, admin, contact_id).get_json()["id"]
    url = f"/api/v1/deals/{deal_id}"
    refused = client.patch(url, json={"stage": "lost"}, headers=admin)
    assert refused.status_code == 422 and "lost_reason" in refused.get_json()["message"]
    lost = client.patch(url, json={"stage": "lost", "lost_reason": "price"}, headers=admin)
    assert lost.get_json()["lost_reason"] == "price" and lost.get_json()["closed_at"]


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"amount": -5}, "amount"),
        ({"amount": "12.345"}, "two decimals"),
        ({"amount": "1e400"}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "cedis"}, "ISO 4217"),
        ({"stage": "maybe"}, "stage"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"expected_close_on": "next week"}, "YYYY-MM-DD"),
        ({"stage": "lost"}, "lose it with an update"),
        ({"owner_id": 999999}, "not an active rep"),
    ],
)
def test_bad_deals_are_refused_with_a_reason_and_nothing_is_written(
    client: FlaskClient,
    runtime: Runtime,
    admin: dict[str, str],
    contact_id: int,
    fields: dict[str, object],
    words: str,
):
    response = open_deal(client, admin, contact_id, **fields)
    assert response.status_code == 422, response.get_json()
    assert words in response.get_json()["message"]
    with runtime.session() as session:
        assert session.scalars(select(Deal)).all() == []
        assert session.get_one(Contact, contact_id).lifecycle_stage == "subscriber"


def test_a_rep_sees_and_changes_only_their_deals_and_marketers_only_read(
    client: FlaskClient, runtime: Runtime, admin: dict[str, str], contact_id: int
):
    ama = bearer(runtime, Role.REP, "ama@example.com")
    kofi = bearer(runtime, Role.REP, "kofi@example.com")
    marketer = bearer(runtime, Role.MARKETER, "mk@example.com")
    with runtime.session() as session:
        ama_user = session.scalars(select(User).where(User.email == "ama@example.com")).one()
        session.get_one(Contact, contact_id).owner_id = ama_user.id
        ama_user_id = ama_user.id
    unowned = open_deal(client, ama, contact_id, owner_id=None).get_json()
    assert unowned["owner_id"] is None  # explicitly nobody's
    assert open_deal(client, ama, contact_id, stage=["won"]).status_code == 422
    deal = open_deal(client, ama, contact_id).get_json()
    assert deal["owner_id"] == ama_user_id  # the contact's owner by default
    url = f"/api/v1/deals/{deal['id']}"
    assert client.get(url, headers=kofi).status_code == 404
    assert client.patch(url, json={"amount": 1}, headers=kofi).status_code == 404
    kofis = client.get("/api/v1/deals", headers=kofi).get_json()["data"]
    assert kofis == []  # even an unowned deal on Ama's contact is hers to see
    assert open_deal(client, kofi, contact_id).status_code == 404  # not his contact
    assert client.get(url, headers=marketer).status_code == 200
    assert client.patch(url, json={"amount": 1}, headers=marketer).status_code == 403
    assert client.patch(url, json={"amount": 99}, headers=ama).get_json()["amount"] == "99.00"
    assert client.delete(url, headers=kofi).status_code == 404
    assert client.delete(url, headers=ama).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


def test_the_revenue_report_groups_won_deals_in_the_range_by_channel_and_currency(
    client: FlaskClient, runtime: Runtime, admin: dict[str, str], webhooks: Webhooks
):
    ids = []
    for phone in ("+233241000001", "+233241000002"):
        assert webhooks.message(From=phone, MessageSid=f"SM{phone[1:]}").status_code == 200
    with runtime.session() as session:
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
    for contact_id, amount, currency in [
        (ids[0], 100, "GHS"),
        (ids[1], 50, "GHS"),
        (ids[1], 7, "USD"),
    ]:
        deal = open_deal(client, admin, contact_id, amount=amount, currency=currency).get_json()
        client.patch(f"/api/v1/deals/{deal['id']}", json={"stage": "won"}, headers=admin)
    open_deal(client, admin, ids[0], amount=1000)  # open: not revenue
    with runtime.session() as session:  # one won long ago: outside the range
        old = open_deal(client, admin, ids[0], amount=5000, currency="GHS").get_json()
        client.patch(f"/api/v1/deals/{old['id']}", json={"stage": "won"}, headers=admin)
        session.get_one(Deal, old["id"]).closed_at = utcnow() - timedelta(days=400)
    report = client.get("/api/v1/reports/revenue?by=channel", headers=admin).get_json()
    assert report["data"] == [
        {"key": "sms", "currency": "GHS", "deals": 2, "revenue": "150.00"},
        {"key": "sms", "currency": "USD", "deals": 1, "revenue": "7.00"},
    ]
    by_campaign = client.get("/api/v1/reports/revenue?by=campaign", headers=admin).get_json()
    assert {row["key"] for row in by_campaign["data"]} == {None}  # no campaigns yet
    for query in ("by=region", "touch=middle", "from=yesterday", "from=2026-02-01&to=2026-01-01"):
        bad = client.get(f"/api/v1/reports/revenue?{query}", headers=admin)
        assert bad.status_code == 400, query
