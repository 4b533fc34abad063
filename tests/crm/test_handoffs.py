"""A handoff's life: SLA job scheduled, escalation with simulated time, accept, reject, first
touch; on a real database, Redis and RQ."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask.testing import FlaskClient
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from crm import handoffs
from crm.models import Contact, Handoff, Interaction, Role
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token, run_jobs
from tests.crm.test_routing import add_rep
from workers.worker import relay_once

PHONE = "+233241239999"


def ask_for_a_person(webhooks: Webhooks) -> None:
    sid = "SM" + uuid.uuid4().hex
    body = "is there somebody in your office I can speak with?"
    assert webhooks.message(Body=body, From=PHONE, MessageSid=sid).status_code == 200


def the_handoffs(rt: Runtime) -> list[Handoff]:
    with rt.session() as session:
        return list(session.scalars(select(Handoff).order_by(Handoff.id)))


def bearer(rt: Runtime, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(rt, Role.REP, email=email)}"}


def test_sla_is_scheduled_escalates_when_missed_and_first_touch_stops_the_clock(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient
):
    ama = add_rep(runtime, "Ama")
    kofi = add_rep(runtime, "Kofi")
    ask_for_a_person(webhooks)
    run_jobs(runtime)  # enrichment: human intent -> handoff to Ama, SLA check queued
    relay_once(runtime)  # the SLA row goes to RQ's scheduler, not to a queue
    [first] = the_handoffs(runtime)
    assert first.rep_id == ama
    registry = ScheduledJobRegistry(queue=Queue("default", connection=runtime.redis))
    [job_id] = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id) == first.due_at.replace(microsecond=0)

    with runtime.session() as session:
        assert (
            handoffs.check_sla(session, first.id, first.due_at - timedelta(seconds=1)) == "not_due"
        )
    with runtime.session() as session:
        assert (
            handoffs.check_sla(session, first.id, first.due_at + timedelta(seconds=1))
            == "reassigned"
        )
    first_after, second = the_handoffs(runtime)
    assert first_after.status == "escalated"
    assert (second.rep_id, second.reason, second.status) == (kofi, "escalation", "open")

    kofi_auth = bearer(runtime, "kofi-token@example.com")
    # Tokens belong to new users: give the handoff to the token's user to act as Kofi.
    with runtime.session() as session:
        from crm.users import authenticate_token

        kofi_user = authenticate_token(session, kofi_auth["Authorization"].split()[1])
        assert kofi_user is not None
        session.get_one(Handoff, second.id).rep_id = kofi_user.id
        session.get_one(Contact, second.contact_id).owner_id = kofi_user.id
    ama_auth = bearer(runtime, "ama-token@example.com")
    assert client.post(f"/api/v1/handoffs/{second.id}/accept", headers=ama_auth).status_code == 404
    accepted = client.post(f"/api/v1/handoffs/{second.id}/accept", headers=kofi_auth)
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    mine = client.get("/api/v1/handoffs", headers=kofi_auth).get_json()["data"]
    assert [h["id"] for h in mine] == [second.id]

    reply = client.post(
        "/api/v1/messages",
        json={"contact_id": second.contact_id, "channel": "sms", "body": "Hi, Kofi here"},
        headers=kofi_auth,
    )
    assert reply.status_code == 202
    done = the_handoffs(runtime)[1]
    assert done.status == "done" and done.first_touch_at is not None
    # The escalation ran at a simulated time 15 minutes ahead: the touch came "before" it.
    elapsed = (done.first_touch_at - done.created_at).total_seconds()
    assert done.speed_to_lead_s == max(0, int(elapsed))
    with runtime.session() as session:
        assert handoffs.check_sla(session, done.id, done.due_at + timedelta(hours=1)) == "settled"
        bodies = session.scalars(select(Interaction.body).where(Interaction.channel == "system"))
        assert any(b.startswith("SLA missed by Ama; lead reassigned") for b in bodies)


def test_a_rejection_needs_a_reason_code_and_routes_past_the_rep(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient
):
    auth = bearer(runtime, "rep-one@example.com")
    other = add_rep(runtime, "Esi")
    ask_for_a_person(webhooks)
    run_jobs(runtime)
    [handoff] = the_handoffs(runtime)
    with runtime.session() as session:
        from crm.users import authenticate_token

        me = authenticate_token(session, auth["Authorization"].split()[1])
        assert me is not None
        session.get_one(Handoff, handoff.id).rep_id = me.id
    url = f"/api/v1/handoffs/{handoff.id}/reject"
    assert client.post(url, json={"reason": "lazy"}, headers=auth).status_code == 422
    answer = client.post(url, json={"reason": "too_busy"}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "rejected"
    assert answer.get_json()["reject_reason"] == "too_busy"
    assert answer.get_json()["successor"]["rep_id"] == other
    assert client.post(url, json={"reason": "too_busy"}, headers=auth).status_code == 409


def test_the_sla_job_run_early_keeps_its_deadline(runtime: Runtime, webhooks: Webhooks):
    add_rep(runtime, "Ama")
    ask_for_a_person(webhooks)
    run_jobs(runtime)
    relay_once(runtime)
    queue = Queue("default", connection=runtime.redis)
    registry = ScheduledJobRegistry(queue=queue)
    [job_id] = registry.get_job_ids()
    queue.enqueue_job(queue.fetch_job(job_id))  # run it now, 15 minutes early
    run_jobs(runtime)
    from crm.models import OutboxJob

    with runtime.session() as session:
        row = session.scalar(select(OutboxJob).where(OutboxJob.job == "handoff_sla"))
        assert row is not None and row.done_at is None  # still owed: the sweeper reschedules it
        [handoff] = session.scalars(select(Handoff)).all()
        assert handoff.status == "open"
