"""Inbox threads: opened by inbound messages, unread until read or answered, snooze and close
reopen on the customer's next message, and reps see theirs and the unassigned ones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from crm.conversations import wake_snoozed
from crm.models import Contact, Conversation, Role
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token, run_jobs, signed_in


def text_in(webhooks: Webhooks, body: str = "Hello, is the shop open?") -> None:
    sid = "SM" + uuid.uuid4().hex
    assert webhooks.message(Body=body, MessageSid=sid).status_code == 200


def threads(client: FlaskClient, auth: dict[str, str], **query: str) -> list[dict]:
    response = client.get("/api/v1/conversations", query_string=query, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_message_opens_an_unread_thread_and_a_reply_reads_and_takes_it(
    client: FlaskClient, runtime: Runtime, webhooks: Webhooks
):
    ama_id, ama = signed_in(runtime, Role.REP, "ama@example.com")
    text_in(webhooks)
    run_jobs(runtime)
    [thread] = threads(client, ama, view="unassigned")
    assert (thread["channel"], thread["status"], thread["unread"]) == ("sms", "open", True)
    assert threads(client, ama, view="unassigned", unread="false") == []
    assert threads(client, ama) == []  # mine: nothing yet
    reply = client.post(
        "/api/v1/messages",
        json={"contact_id": thread["contact_id"], "channel": "sms", "body": "Yes, till 6pm"},
        headers=ama,
    )
    assert reply.status_code == 202
    [mine] = threads(client, ama)
    assert mine["assignee_id"] == ama_id and mine["unread"] is False
    text_in(webhooks, "great, thanks")
    run_jobs(runtime)
    [mine] = threads(client, ama)
    assert mine["unread"] is True  # the customer wrote again


def test_snoozed_and_closed_threads_reopen_on_the_next_message_or_when_the_snooze_ends(
    client: FlaskClient, runtime: Runtime, webhooks: Webhooks
):
    _, admin = signed_in(runtime, Role.ADMIN, "admin@example.com")
    text_in(webhooks)
    run_jobs(runtime)
    [thread] = threads(client, admin, view="all")
    url = f"/api/v1/conversations/{thread['id']}"
    past = client.patch(
        url, json={"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00+00:00"}, headers=admin
    )
    assert past.status_code == 422
    later = (utcnow() + timedelta(hours=2)).isoformat()
    snoozed = client.patch(url, json={"status": "snoozed", "snoozed_until": later}, headers=admin)
    assert snoozed.get_json()["status"] == "snoozed"
    assert threads(client, admin, view="all") == []  # not in the open inbox
    with runtime.session() as session:
        assert wake_snoozed(session) == 0  # not yet
        assert wake_snoozed(session, utcnow() + timedelta(hours=3)) == 1
    assert threads(client, admin, view="all")[0]["status"] == "open"
    assert client.patch(url, json={"status": "closed"}, headers=admin).status_code == 200
    assert threads(client, admin, view="all", status="closed")[0]["id"] == thread["id"]
    text_in(webhooks, "one more question")
    run_jobs(runtime)
    [reopened] = threads(client, admin, view="all")
    assert reopened["id"] == thread["id"] and reopened["unread"] is True
    assert client.patch(url, json={"read": True}, headers=admin).get_json()["unread"] is False
    for bad in ({"status": "archived"}, {"read": "yes"}, {"colour": "red"}, {"assignee_id": "x"}):
        assert client.patch(url, json=bad, headers=admin).status_code == 422, bad


def test_a_rep_cannot_see_or_take_another_reps_thread(
    client: FlaskClient, runtime: Runtime, webhooks: Webhooks
):
    ama_id, ama = signed_in(runtime, Role.REP, "ama@example.com")
    _, kofi = signed_in(runtime, Role.REP, "kofi@example.com")
    text_in(webhooks)
    run_jobs(runtime)
    with runtime.session() as session:
        session.scalars(select(Conversation)).one().assignee_id = ama_id
        session.scalars(select(Contact)).one().owner_id = ama_id
    [thread] = threads(client, ama)
    assert threads(client, kofi, view="all") == []
    url = f"/api/v1/conversations/{thread['id']}"
    assert client.patch(url, json={"status": "closed"}, headers=kofi).status_code == 404
    marketer = {"Authorization": f"Bearer {make_token(runtime, Role.MARKETER)}"}
    assert client.get("/api/v1/conversations", headers=marketer).status_code == 403


def test_bad_changes_and_oversized_ids_are_clear_errors(
    client: FlaskClient, runtime: Runtime, webhooks: Webhooks
):
    _, admin = signed_in(runtime, Role.ADMIN, "admin@example.com")
    marketer_id, _ = signed_in(runtime, Role.MARKETER, "mk@example.com")
    text_in(webhooks)
    run_jobs(runtime)
    [thread] = threads(client, admin, view="all")
    url = f"/api/v1/conversations/{thread['id']}"
    later = (utcnow() + timedelta(hours=1)).isoformat()
    for bad in (
        {"assignee_id": marketer_id},  # marketers do not work the inbox
        {"snoozed_until": later},  # without status snoozed
        {"status": ["open"]},
    ):
        response = client.patch(url, json=bad, headers=admin)
        assert response.status_code == 422, bad
    huge = 2**70
    assert client.patch(f"/api/v1/conversations/{huge}", json={}, headers=admin).status_code == 404
    assert client.get(f"/api/v1/contacts/{huge}", headers=admin).status_code == 404
    listed = client.get(f"/api/v1/conversations?contact_id={huge}", headers=admin)
    assert listed.status_code == 400
    sent = client.post("/api/v1/messages", json={"contact_id": huge, "body": "hi"}, headers=admin)
    assert sent.status_code == 422 and sent.get_json()["error"] == "BadId"


def test_an_unassigned_thread_of_another_reps_contact_stays_theirs(
    client: FlaskClient, runtime: Runtime, webhooks: Webhooks
):
    _, ama = signed_in(runtime, Role.REP, "ama@example.com")
    kofi_id, kofi = signed_in(runtime, Role.REP, "kofi@example.com")
    text_in(webhooks)
    run_jobs(runtime)
    with runtime.session() as session:
        session.scalars(select(Contact)).one().owner_id = kofi_id  # the thread stays unassigned
    assert threads(client, ama, view="unassigned") == []
    [thread] = threads(client, kofi, view="unassigned")
    url = f"/api/v1/conversations/{thread['id']}"
    taken = client.patch(url, json={"assignee_id": None, "read": True}, headers=ama)
    assert taken.status_code == 404
    assert client.patch(url, json={"read": True}, headers=kofi).status_code == 200
