"""The whole path from a customer's first message to revenue by channel, in one test.

Real database, real Redis, RQ jobs run by a real burst worker (``run_jobs``), the twilio SDK
against the local Twilio server. Time is simulated by moving the handoff's clock back, then
handing RQ's scheduled SLA job to the queue as its scheduler would at the deadline.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from crm.models import Contact, Handoff, Interaction, Role
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token, run_jobs, signed_in

WHATSAPP_CUSTOMER = "+254712345678"
SMS_CUSTOMER = "+233241234567"
BUYING = ("how much is the solar lamp?", "I want to buy the home kit", "I want to order today")


def shows_buying_intent(webhooks: Webhooks, phone: str, channel: str) -> None:
    for body in BUYING:
        sid = "SM" + uuid.uuid4().hex
        if channel == "whatsapp":
            response = webhooks.message(
                "twilio/whatsapp__inbound.txt",
                Body=body,
                From=f"whatsapp:{phone}",
                WaId=phone.lstrip("+"),
                MessageSid=sid,
                SmsMessageSid=sid,
                SmsSid=sid,
            )
        else:
            response = webhooks.message(Body=body, From=phone, MessageSid=sid)
        assert response.status_code == 200


def contact_id_of(rt: Runtime, phone: str) -> int:
    with rt.session() as session:
        from crm.contacts import find_by_phone

        contact = find_by_phone(session, phone)
        assert contact is not None
        return contact.id


def the_deadline_passes(rt: Runtime, handoff_id: int) -> None:
    """16 minutes go by: the handoff's clock moves back, and RQ's scheduler would now move its
    SLA job from the scheduled registry to the queue; do what it does."""
    with rt.session() as session:
        handoff = session.get_one(Handoff, handoff_id)
        handoff.created_at -= timedelta(minutes=16)
        handoff.due_at -= timedelta(minutes=16)
    queue = Queue("default", connection=rt.redis)
    registry = ScheduledJobRegistry(queue=queue)
    due = [Job.fetch(job_id, connection=rt.redis) for job_id in registry.get_job_ids()]
    sla_jobs = [job for job in due if job.kwargs.get("handoff_id") == handoff_id]
    assert len(sla_jobs) == 1, "the handoff's SLA check is scheduled"
    for job in sla_jobs:
        registry.remove(job)
        queue.enqueue_job(job)


def test_pricing_messages_to_an_mql_handoff_escalation_reply_won_deal_and_revenue_by_channel(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient
):
    ama, ama_auth = signed_in(runtime, Role.REP, "ama@example.com", "Ama")
    kofi, kofi_auth = signed_in(runtime, Role.REP, "kofi@example.com", "Kofi")
    marketer = {"Authorization": f"Bearer {make_token(runtime, Role.MARKETER)}"}

    # 1. Two customers ask about prices: first on SMS, then one on WhatsApp.
    shows_buying_intent(webhooks, SMS_CUSTOMER, "sms")
    run_jobs(runtime)  # enrichment -> score -> MQL -> handoff job -> routed
    shows_buying_intent(webhooks, WHATSAPP_CUSTOMER, "whatsapp")
    run_jobs(runtime)
    sms_lead = contact_id_of(runtime, SMS_CUSTOMER)
    lead = contact_id_of(runtime, WHATSAPP_CUSTOMER)

    # 2. The score crossed the threshold, with its reasons; the lead is an MQL.
    shown = client.get(f"/api/v1/contacts/{lead}", headers=kofi_auth).get_json()
    assert shown["lifecycle_stage"] == "mql" and shown["score"] >= 50
    assert any("asked about price (WhatsApp" in r for r in shown["score_reasons"])
    assert shown["first_touch_channel"] == "whatsapp"

    # 3. Round-robin: the first lead went to Ama, this one to Kofi, each notified.
    with runtime.session() as session:
        routed = {h.contact_id: h for h in session.scalars(select(Handoff).order_by(Handoff.id))}
    assert (routed[sms_lead].rep_id, routed[lead].rep_id) == (ama, kofi)
    kofis = client.get("/api/v1/notifications", headers=kofi_auth).get_json()["data"]
    assert [n["handoff_id"] for n in kofis] == [routed[lead].id]
    assert "asked about price" in kofis[0]["body"]

    # 4. Kofi lets the clock run out: the SLA job escalates the lead to Ama.
    the_deadline_passes(runtime, routed[lead].id)
    run_jobs(runtime)
    with runtime.session() as session:
        first, second = session.scalars(
            select(Handoff).where(Handoff.contact_id == lead).order_by(Handoff.id)
        ).all()
        assert first.status == "escalated"
        assert (second.rep_id, second.reason, second.status) == (ama, "escalation", "open")
        notes = session.scalars(
            select(Interaction.body).where(
                Interaction.contact_id == lead, Interaction.channel == "system"
            )
        ).all()
        assert any(b.startswith("SLA missed by Kofi; lead reassigned") for b in notes)
    # Kofi no longer owns the lead: he cannot answer it.
    refused = client.post(
        "/api/v1/messages",
        json={"contact_id": lead, "channel": "whatsapp", "body": "Hi"},
        headers=kofi_auth,
    )
    assert refused.status_code == 404

    # 5. Ama's thread is unread; she replies on WhatsApp: the first touch, thread read.
    threads = client.get("/api/v1/conversations", headers=ama_auth).get_json()["data"]
    mine = {t["contact_id"]: t for t in threads}
    assert mine[lead]["channel"] == "whatsapp" and mine[lead]["unread"] is True
    reply = client.post(
        "/api/v1/messages",
        json={"contact_id": lead, "channel": "whatsapp", "body": "Karibu! It is 4,500 KES."},
        headers=ama_auth,
    )
    assert reply.status_code == 202, reply.get_json()
    run_jobs(runtime)  # the reply goes out through Twilio
    with runtime.session() as session:
        touched = session.get_one(Handoff, second.id)
        assert touched.status == "done" and touched.speed_to_lead_s is not None
        assert 0 <= touched.speed_to_lead_s < 60
    threads = client.get("/api/v1/conversations", headers=ama_auth).get_json()["data"]
    assert {t["contact_id"]: t for t in threads}[lead]["unread"] is False

    # 6. Ama opens a deal and wins it: the contact becomes a customer.
    deal = client.post(
        "/api/v1/deals",
        json={"contact_id": lead, "title": "Home solar kit", "amount": "4500", "currency": "KES"},
        headers=ama_auth,
    )
    assert deal.status_code == 201, deal.get_json()
    deal_id = deal.get_json()["id"]
    assert deal.get_json()["first_touch_channel"] == "whatsapp"
    won = client.patch(f"/api/v1/deals/{deal_id}", json={"stage": "won"}, headers=ama_auth)
    assert won.status_code == 200 and won.get_json()["closed_at"] is not None
    with runtime.session() as session:
        assert session.get_one(Contact, lead).lifecycle_stage == "customer"

    # 7. The revenue report credits the first-touch channel, WhatsApp.
    report = client.get("/api/v1/reports/revenue", query_string={"by": "channel"}, headers=marketer)
    assert report.status_code == 200
    assert report.get_json()["data"] == [
        {"key": "whatsapp", "currency": "KES", "deals": 1, "revenue": "4500.00"}
    ]
    handoffs = client.get("/api/v1/reports/handoffs", headers=marketer).get_json()["data"]
    by_rep = {row["rep_id"]: row for row in handoffs}
    assert by_rep[kofi]["escalated"] == 1 and by_rep[kofi]["touched_in_time"] == 0
    assert by_rep[ama]["touched_in_time"] == 1
    assert client.get("/api/v1/reports/revenue", headers=ama_auth).status_code == 403
