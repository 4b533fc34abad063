"""Handing hot leads to reps: availability, caps, round-robin, one active handoff per contact."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from crm.models import Contact, Handoff, Interaction, Notification, Role, ScoreEvent, User
from crm.routing import Trigger, hand_off, in_working_hours
from crm.runtime import Runtime
from crm.users import create_user
from tests.conftest import Webhooks, run_jobs

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def add_rep(rt: Runtime, name: str, **routing: object) -> int:
    with rt.session() as session:
        rep = create_user(
            session=session,
            email=f"{name.lower()}@example.com",
            role=Role.REP,
            password="correct horse battery",
            name=name,
        )
        for key, value in routing.items():
            setattr(rep, key, value)
        session.flush()
        return rep.id


def add_contacts(rt: Runtime, count: int) -> list[int]:
    with rt.session() as session:
        contacts = [Contact(name=f"Lead {i}", attributes={}) for i in range(count)]
        session.add_all(contacts)
        session.flush()
        return [c.id for c in contacts]


def hand(rt: Runtime, contact_id: int, now: datetime = MONDAY_10_UTC) -> int | None:
    with rt.session() as session:
        contact = session.get_one(Contact, contact_id)
        handoff = hand_off(session, contact, Trigger("mql", "score 60"), now=now)
        return handoff.rep_id if handoff else -1


def test_working_hours_are_read_in_the_reps_time_zone():
    rep = User(working_hours={"mon": ["08:00", "17:00"]}, timezone="Africa/Nairobi")
    assert in_working_hours(rep, MONDAY_10_UTC)  # 13:00 in Nairobi
    assert not in_working_hours(rep, MONDAY_10_UTC + timedelta(hours=5))  # 18:00
    assert not in_working_hours(rep, MONDAY_10_UTC + timedelta(days=1, hours=-5))  # Tuesday
    assert in_working_hours(User(working_hours={}, timezone="UTC"), MONDAY_10_UTC)


def test_round_robin_among_available_reps_respects_hours_and_caps(runtime: Runtime):
    ama = add_rep(runtime, "Ama")
    kofi = add_rep(runtime, "Kofi", lead_cap=1)
    add_rep(runtime, "Night", working_hours={"mon": ["20:00", "23:00"]})
    leads = add_contacts(runtime, 4)
    assigned = [hand(runtime, lead) for lead in leads]
    # Ama and Kofi alternate until Kofi is at his cap; Night is outside her hours.
    assert assigned == [ama, kofi, ama, ama]
    with runtime.session() as session:
        owners = session.scalars(select(Contact.owner_id).order_by(Contact.id)).all()
        assert owners == assigned
        entry = session.scalar(select(Interaction.body).where(Interaction.contact_id == leads[0]))
        assert entry == "Hot lead handed to Ama: score 60"


def test_the_owner_keeps_the_lead_when_available(runtime: Runtime):
    add_rep(runtime, "Ama")
    kofi = add_rep(runtime, "Kofi")
    [lead] = add_contacts(runtime, 1)
    with runtime.session() as session:
        session.get_one(Contact, lead).owner_id = kofi
    assert hand(runtime, lead) == kofi


def test_nobody_available_still_records_the_handoff(runtime: Runtime):
    add_rep(runtime, "Night", working_hours={"sun": ["08:00", "09:00"]})
    [lead] = add_contacts(runtime, 1)
    assert hand(runtime, lead) is None
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Handoff)) == 1


def test_two_handoffs_for_one_contact_at_once_make_one(runtime: Runtime):
    add_rep(runtime, "Ama")
    [lead] = add_contacts(runtime, 1)
    barrier = threading.Barrier(2)
    results: list[int | None] = []

    def trigger() -> None:
        barrier.wait()
        results.append(hand(runtime, lead))

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is not None and r > 0 for r in results) == [False, True]
    assert hand(runtime, lead) == -1  # still active: a third trigger is a no-op too
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Handoff)) == 1


def test_asking_for_a_person_in_a_message_hands_the_lead_to_a_rep(
    runtime: Runtime, webhooks: Webhooks
):
    ama = add_rep(runtime, "Ama")
    sid = "SM" + uuid.uuid4().hex
    body = "is there somebody in your office I can speak with?"
    assert webhooks.message(Body=body, From="+233241230009", MessageSid=sid).status_code == 200
    run_jobs(runtime)
    with runtime.session() as session:
        handoff = session.scalar(select(Handoff))
        assert handoff is not None
        assert (handoff.reason, handoff.rep_id, handoff.status) == ("human_request", ama, "open")
        assert handoff.due_at - handoff.created_at == timedelta(minutes=15)


def test_a_ussd_call_back_request_hands_the_lead_to_a_rep(runtime: Runtime, webhooks: Webhooks):
    ama = add_rep(runtime, "Ama")
    webhooks.ussd("")
    assert webhooks.ussd("4").get_data(as_text=True).startswith("END")
    with runtime.session() as session:
        assert session.scalar(select(Handoff)) is None  # routed by a worker, not the webhook
        [event] = session.scalars(select(ScoreEvent)).all()
        assert (event.rule, event.points) == ("callback_request", 25)
    run_jobs(runtime)
    with runtime.session() as session:
        handoff = session.scalar(select(Handoff))
        assert handoff is not None and handoff.reason == "callback_request"
        assert handoff.rep_id == ama
        [notice] = session.scalars(select(Notification)).all()
        assert notice.user_id == ama and notice.handoff_id == handoff.id
        assert notice.body.startswith("Hot lead") and "callback_request" in notice.body


def test_a_batch_promoting_many_leads_hands_each_off_once(runtime: Runtime, webhooks: Webhooks):
    """Ten leads crossing the MQL threshold in one enrichment job: one handoff each."""
    add_rep(runtime, "Ama")
    senders = [f"+2332412300{i:02d}" for i in range(10)]
    for body in ("I want to buy the home kit", "how much is the solar lamp?", "I want to order"):
        for sender in senders:
            sid = "SM" + uuid.uuid4().hex
            assert webhooks.message(Body=body, From=sender, MessageSid=sid).status_code == 200
    run_jobs(runtime)
    with runtime.session() as session:
        reasons = session.scalars(select(Handoff.reason)).all()
        assert sorted(reasons) == ["mql"] * len(senders)
