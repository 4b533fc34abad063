"""Reps hear about hot leads in the app and by SMS; admins hear about missed SLAs nobody can
take. On a real database, Redis, RQ and the twilio SDK against the local Twilio server."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm import handoffs
from crm.models import Handoff, Notification, Role
from crm.runtime import Runtime
from crm.users import create_user
from tests.conftest import Webhooks, run_jobs
from tests.crm.test_handoffs import PHONE, ask_for_a_person, the_handoffs
from tests.crm.test_routing import add_rep
from tests.fakes.twilio_api import FakeTwilio

REP_PHONE = "+233201110000"


def notices(rt: Runtime) -> list[Notification]:
    with rt.session() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_the_rep_gets_the_lead_in_the_app_and_by_sms_once(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    ama = add_rep(runtime, "Ama", phone=REP_PHONE)
    ask_for_a_person(webhooks)
    run_jobs(runtime)  # enrichment -> handoff job -> notification SMS job
    [handoff] = the_handoffs(runtime)
    [notice] = notices(runtime)
    assert (notice.user_id, notice.kind, notice.handoff_id) == (ama, "hot_lead", handoff.id)
    assert PHONE in notice.body and "Reply within 15 min" in notice.body
    assert notice.sms_status == "sent"
    texts = [r for r in fake_twilio.requests if r.get("To") == [REP_PHONE]]
    assert len(texts) == 1 and texts[0]["Body"][0].startswith("Hot lead")
    # The job runs again (a sweep after a crash): the rep is not texted twice.
    from crm.notifications import send_sms

    with runtime.session() as session:
        assert send_sms(session, notice.id, runtime.adapters["twilio"]) == "sent"
    assert len([r for r in fake_twilio.requests if r.get("To") == [REP_PHONE]]) == 1


def test_a_provider_outage_retries_the_rep_sms_and_a_crash_mid_send_is_not_resent(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    add_rep(runtime, "Ama", phone=REP_PHONE)
    fake_twilio.fail_next(503, 20500, "Service unavailable")
    ask_for_a_person(webhooks)
    run_jobs(runtime)
    [notice] = notices(runtime)
    assert notice.sms_status == "pending" and notice.sms_error.startswith("20500")
    tried = [r for r in fake_twilio.requests if r.get("To") == [REP_PHONE]]
    assert len(tried) == 1  # the refused attempt; RQ's retry is scheduled for later
    from crm.notifications import send_sms

    with runtime.session() as session:
        session.get_one(Notification, notice.id).sms_status = "sending"  # died after the send
    with runtime.session() as session:
        assert send_sms(session, notice.id, runtime.adapters["twilio"]) == "unknown"
    assert [r for r in fake_twilio.requests if r.get("To") == [REP_PHONE]] == tried


def test_a_rep_without_a_phone_is_notified_in_the_app_only(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    add_rep(runtime, "Ama")
    ask_for_a_person(webhooks)
    run_jobs(runtime)
    [notice] = notices(runtime)
    assert notice.sms_status is None
    assert not [r for r in fake_twilio.requests if r.get("To") != [PHONE]]


def test_a_missed_sla_with_nobody_to_take_it_alerts_the_admins_once(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    ama = add_rep(runtime, "Ama")
    with runtime.session() as session:
        boss = create_user(
            session=session,
            email="boss@example.com",
            role=Role.ADMIN,
            password="correct horse battery",
            name="Boss",
        )
        boss.phone = "+233209990000"
        session.flush()
        boss_id = boss.id
    ask_for_a_person(webhooks)
    run_jobs(runtime)
    [handoff] = the_handoffs(runtime)
    assert handoff.rep_id == ama
    with runtime.session() as session:
        outcome = handoffs.check_sla(session, handoff.id, handoff.due_at + timedelta(seconds=1))
    assert outcome == "escalated_to_admins"
    run_jobs(runtime)
    [escalated] = the_handoffs(runtime)  # no successor nobody could take
    assert escalated.status == "escalated"
    alerts = [n for n in notices(runtime) if n.kind == "escalation"]
    assert [(n.user_id, n.handoff_id, n.sms_status) for n in alerts] == [
        (boss_id, handoff.id, "sent")
    ]
    assert "SLA missed" in alerts[0].body and "Ama" in alerts[0].body
    assert [r["To"] for r in fake_twilio.requests if r.get("To") == ["+233209990000"]]
    with runtime.session() as session:
        again = handoffs.check_sla(session, handoff.id, handoff.due_at + timedelta(hours=1))
        assert again == "settled"
        assert session.scalar(select(Handoff).where(Handoff.status == "open")) is None
