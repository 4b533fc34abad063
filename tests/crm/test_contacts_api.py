"""The contacts JSON API: lookup by phone, read, timeline pages, merge, bearer-token auth."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from werkzeug.test import TestResponse

from crm.contacts import set_tags
from crm.models import ApiToken, ChannelConsent, Contact, Identity, Interaction, Role
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token

ACCRA = "+233241234567"
NAIROBI = "+254712345678"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


Sms = Callable[..., int]


@pytest.fixture
def sms(webhooks: Webhooks, runtime: Runtime) -> Sms:
    """Send an inbound SMS through the real webhook; returns the id of the contact it landed on."""

    def send(phone: str = ACCRA, body: str = "Hello") -> int:
        response = webhooks.message(From=phone, MessageSid=new_sid(), Body=body)
        assert response.status_code == 200
        with runtime.session() as session:
            return session.scalar(select(Identity.contact_id).where(Identity.value == phone))

    return send


def tag_contact(rt: Runtime, contact_id: int, *tags: str, email: str | None = None) -> None:
    with rt.session() as session:
        contact = session.get_one(Contact, contact_id)
        set_tags(session=session, contact=contact, tags=list(tags))
        contact.email = email or contact.email


def snapshot(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Where every row points: a failed request must leave all of it as it was."""
    with rt.session() as session:
        return {
            "contacts": sorted(session.execute(select(Contact.id, Contact.merged_into_id)).all()),
            "identities": sorted(
                session.execute(select(Identity.value, Identity.contact_id)).all()
            ),
            "interactions": sorted(
                session.execute(select(Interaction.id, Interaction.contact_id)).all()
            ),
            "consents": sorted(
                session.execute(
                    select(ChannelConsent.contact_id, ChannelConsent.channel, ChannelConsent.status)
                ).all()
            ),
        }


def timeline(
    client: FlaskClient, auth: dict[str, str], contact_id: int, **params: Any
) -> TestResponse:
    return client.get(f"/api/v1/contacts/{contact_id}/timeline", query_string=params, headers=auth)


def merge(client: FlaskClient, auth: dict[str, str], survivor: int, body: Any) -> TestResponse:
    return client.post(f"/api/v1/contacts/{survivor}/merge", json=body, headers=auth)


# -- lookup and read ------------------------------------------------------------------------


@pytest.mark.parametrize("phone", [ACCRA, "0241234567", "024 123 4567", "+233 (24) 123-4567"])
def test_lookup_by_phone_finds_the_contact_the_webhook_created(
    webhooks: Webhooks, client: FlaskClient, auth: dict[str, str], phone: str
):
    webhooks.message()
    response = client.get("/api/v1/contacts", query_string={"phone": phone}, headers=auth)
    assert response.status_code == 200
    [contact] = response.json["data"]
    assert contact["phones"] == [ACCRA]
    assert contact["first_touch_channel"] == "sms"


def test_lookup_of_an_unknown_number_is_an_empty_list(
    client: FlaskClient, auth: dict[str, str], webhooks: Webhooks
):
    webhooks.message()
    response = client.get("/api/v1/contacts", query_string={"phone": NAIROBI}, headers=auth)
    assert response.status_code == 200
    assert response.json == {"data": [], "next_cursor": None}


@pytest.mark.parametrize("query", [{"phone": "12"}, {"phone": "not a phone"}])
def test_invalid_or_missing_phone_is_a_422_with_a_json_error(
    client: FlaskClient, auth: dict[str, str], query: dict[str, str]
):
    response = client.get("/api/v1/contacts", query_string=query, headers=auth)
    assert response.status_code == 422
    assert set(response.json) == {"error", "message"}
    assert "phone" in response.json["message"]


def test_show_contact_has_phones_consent_and_tags(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    contact_id = sms(ACCRA, "STOP")
    tag_contact(runtime, contact_id, " VIP ")
    response = client.get(f"/api/v1/contacts/{contact_id}", headers=auth)
    assert response.status_code == 200
    body = response.json
    assert body["id"] == contact_id
    assert body["phones"] == [ACCRA]
    assert body["consent"] == {"sms": "opted_out"}
    assert body["tags"] == ["vip"]
    assert body["merged_into_id"] is None


def test_unknown_contact_is_a_404_json(client: FlaskClient, auth: dict[str, str]):
    for path in ["/api/v1/contacts/999999", "/api/v1/contacts/999999/timeline"]:
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert response.json["error"] == "ContactNotFound"


# -- timeline ---------------------------------------------------------------------------------


def test_timeline_is_newest_first(sms: Sms, client: FlaskClient, auth: dict[str, str]):
    contact_id = sms(ACCRA, "first")
    sms(ACCRA, "second")
    data = timeline(client, auth, contact_id).json
    assert [i["body"][:6] for i in data["data"]] == ["second", "Thanks", "first"]
    assert data["data"][1]["metadata"]["event"] == "bot_reply"  # the welcome, after "first"
    assert data["next_cursor"] is None


def test_keyset_pages_return_every_interaction_once_in_order(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    contact_id = sms(ACCRA, "message 1")
    for n in range(2, 7):
        sms(ACCRA, f"message {n}")
    sms(NAIROBI, "someone else")

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = timeline(client, auth, contact_id, **params)
        assert response.status_code == 200
        assert 1 <= len(response.json["data"]) <= 2
        seen += response.json["data"]
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break

    with runtime.session() as session:
        stored = session.scalars(select(Interaction).where(Interaction.contact_id == contact_id))
        expected = sorted(stored, key=lambda i: (i.created_at, i.id), reverse=True)
    assert [i["id"] for i in seen] == [i.id for i in expected]
    assert len(seen) == 7 and pages == 4  # six messages and the welcome; 2+2+2+1
    bodies = [i["body"] for i in seen if i["direction"] == "inbound"]
    assert bodies == [f"message {n}" for n in range(6, 0, -1)]


def test_a_full_last_page_says_there_is_no_more(
    sms: Sms, client: FlaskClient, auth: dict[str, str]
):
    contact_id = sms(ACCRA)  # the message and the welcome: exactly one page
    response = timeline(client, auth, contact_id, limit=2)
    assert len(response.json["data"]) == 2
    assert response.json["next_cursor"] is None


# crm.timeline.decode_cursor accepts a well-formed cursor holding a naive timestamp or an id
# beyond the database's integer range; the query then fails and the client gets a 500.
def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="not-base64-json"),
        pytest.param("!!!", id="not-base64"),
        pytest.param(_cursor({"a": 1}), id="object"),
        pytest.param(_cursor(["not a date", 1]), id="bad-date"),
        pytest.param(_cursor(["2024-01-01T00:00:00+00:00", "x"]), id="bad-id"),
        pytest.param(_cursor(["2024-01-01T00:00:00", 1]), id="naive-date"),
        pytest.param(_cursor(["2024-01-01T00:00:00+00:00", 2**70]), id="huge-id"),
    ],
)
def test_garbage_cursor_is_a_400(sms: Sms, client: FlaskClient, auth: dict[str, str], cursor: str):
    contact_id = sms(ACCRA)
    response = timeline(client, auth, contact_id, cursor=cursor)
    assert response.status_code == 400
    assert response.json["error"] == "InvalidCursor"


@pytest.mark.parametrize("limit", ["0", "1000", "-1", "ten"])
def test_limit_out_of_range_is_a_400(
    sms: Sms, client: FlaskClient, auth: dict[str, str], limit: str
):
    contact_id = sms(ACCRA)
    response = timeline(client, auth, contact_id, limit=limit)
    assert response.status_code == 400
    assert "limit" in response.json["message"]


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer crm_wrong", "Bearer wrong"],
)
def test_missing_or_wrong_token_is_a_401_with_www_authenticate(
    client: FlaskClient, token: str, header: str | None
):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/v1/contacts", query_string={"phone": ACCRA}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"] == "Unauthorized"


def test_revoked_token_is_a_401(client: FlaskClient, auth: dict[str, str], runtime: Runtime):
    path = f"/api/v1/contacts?phone={ACCRA}"
    assert client.get(path, headers=auth).status_code == 200
    with runtime.session() as session:
        session.execute(update(ApiToken).values(revoked_at=utcnow()))
    response = client.get(path, headers=auth)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_tokens_are_stored_hashed(client: FlaskClient, token: str, runtime: Runtime):
    assert (
        client.get(
            "/api/v1/contacts",
            query_string={"phone": ACCRA},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 200
    )
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert token not in stored
    assert token[12:] not in stored  # beyond the public prefix, nothing of the secret


# -- merge --------------------------------------------------------------------------------


def test_merge_moves_identities_and_timeline_and_leaves_a_tombstone(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    survivor = sms(ACCRA, "from Accra")
    other = sms(NAIROBI, "from Nairobi")

    response = merge(client, auth, survivor, {"merge_contact_id": other})

    assert response.status_code == 200
    assert response.json["id"] == survivor
    assert sorted(response.json["phones"]) == sorted([ACCRA, NAIROBI])
    tombstone = client.get(f"/api/v1/contacts/{other}", headers=auth).json
    assert tombstone["merged_into_id"] == survivor
    assert tombstone["phones"] == []
    assert timeline(client, auth, other).json["data"] == []
    entries = timeline(client, auth, survivor).json["data"]
    assert entries[0]["channel"] == "system"
    assert entries[0]["metadata"]["event"] == "merge"
    assert entries[0]["metadata"]["merged_contact_id"] == other
    assert entries[0]["metadata"]["interactions_moved"] == 2  # the message and its welcome
    assert {"from Accra", "from Nairobi"} <= {e["body"] for e in entries}


def test_after_a_merge_the_old_number_lands_on_the_survivor(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    survivor = sms(ACCRA)
    other = sms(NAIROBI)
    assert merge(client, auth, survivor, {"merge_contact_id": other}).status_code == 200

    assert sms(NAIROBI, "again") == survivor
    with runtime.session() as session:
        latest = session.scalars(select(Interaction).order_by(Interaction.id.desc())).first()
        assert latest is not None and latest.body == "again"
        assert latest.contact_id == survivor
        assert len(session.scalars(select(Contact)).all()) == 2  # no new contact


@pytest.mark.parametrize(
    ("survivor_words", "other_words"),
    [
        ([], ["STOP"]),  # survivor never asked, other opted out
        (["STOP", "START"], ["STOP"]),  # survivor opted in, other opted out
        (["STOP"], ["STOP", "START"]),  # survivor opted out, other opted in
    ],
)
def test_an_opt_out_survives_the_merge(
    sms: Sms,
    client: FlaskClient,
    auth: dict[str, str],
    survivor_words: list[str],
    other_words: list[str],
):
    survivor = sms(ACCRA)
    other = sms(NAIROBI)
    for word in survivor_words:
        sms(ACCRA, word)
    for word in other_words:
        sms(NAIROBI, word)

    response = merge(client, auth, survivor, {"merge_contact_id": other})

    assert response.status_code == 200
    assert response.json["consent"] == {"sms": "opted_out"}
    assert client.get(f"/api/v1/contacts/{survivor}", headers=auth).json["consent"] == {
        "sms": "opted_out"
    }


def test_merge_unions_tags_and_keeps_survivor_fields(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    survivor = sms(ACCRA)
    other = sms(NAIROBI)
    tag_contact(runtime, survivor, "lamp")
    tag_contact(runtime, other, "kenya", "lamp", email="wanjiru@example.com")

    body = merge(client, auth, survivor, {"merge_contact_id": other}).json
    assert body["tags"] == ["kenya", "lamp"]
    assert body["email"] == "wanjiru@example.com"


def test_merge_refusals_write_nothing(
    sms: Sms, client: FlaskClient, auth: dict[str, str], runtime: Runtime
):
    a = sms(ACCRA)
    b = sms(NAIROBI)
    c = sms("+233201234567", "STOP")
    assert merge(client, auth, a, {"merge_contact_id": b}).status_code == 200
    before = snapshot(runtime)

    refusals = [
        (a, {"merge_contact_id": a}, 409),  # into itself
        (c, {"merge_contact_id": b}, 409),  # b is already merged
        (b, {"merge_contact_id": c}, 409),  # into a merged contact
        (a, {"merge_contact_id": 999999}, 404),
        (999999, {"merge_contact_id": c}, 404),
        (a, {}, 422),
        (a, {"merge_contact_id": str(c)}, 422),
        (a, {"merge_contact_id": True}, 422),
        (a, {"merge_contact_id": None}, 422),
        (a, [c], 422),
        (a, None, 422),
    ]
    for survivor, body, status in refusals:
        response = merge(client, auth, survivor, body)
        assert response.status_code == status, (survivor, body, response.json)
        assert set(response.json) == {"error", "message"}

    assert snapshot(runtime) == before


def test_merge_without_a_json_body_is_a_422(sms: Sms, client: FlaskClient, auth: dict[str, str]):
    a = sms(ACCRA)
    for kwargs in [
        {},
        {"data": "merge_contact_id=2"},
        {"data": "{", "content_type": "application/json"},
    ]:
        response = client.post(f"/api/v1/contacts/{a}/merge", headers=auth, **kwargs)
        assert response.status_code == 422
        assert response.json["error"] == "SendRefused"


def test_marketer_may_not_merge(sms: Sms, client: FlaskClient, runtime: Runtime):
    a = sms(ACCRA)
    b = sms(NAIROBI)
    before = snapshot(runtime)
    marketer = {
        "Authorization": f"Bearer {make_token(runtime, Role.MARKETER, email='m@example.com')}"
    }

    response = merge(client, marketer, a, {"merge_contact_id": b})

    assert response.status_code == 403
    assert response.json["error"] == "Forbidden"
    assert snapshot(runtime) == before
    assert client.get(f"/api/v1/contacts/{a}", headers=marketer).status_code == 200  # may read
