"""The three shipped sequences (crm/config/sequences/*.yaml) end to end, with simulated time:
the real webhooks, the model, the step clock, the send jobs and the fake Twilio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.contacts import find_by_phone
from crm.lifecycle import move
from crm.models import Contact, Handoff, Interaction, Role, Sequence
from crm.runtime import Runtime
from crm.sequence_results import results
from tests.conftest import Webhooks, make_token, run_jobs, signed_in
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.support import (
    add_contact,
    received,
    runs,
    sequence_entries,
    shipped,
    start_sequence,
    text_in,
)
from workers.sequence_clock import run_steps, scan_triggers

AMA, KOFI, YAW, ESI, KWESI = (f"+23324111000{i}" for i in range(1, 6))  # Accra: UTC
WANJIRU = "+254712345678"  # Nairobi: UTC+3


def contact_id(rt: Runtime, phone: str) -> int:
    with rt.session() as session:
        contact = find_by_phone(session, phone)
        assert contact is not None, phone
        return contact.id


def contact(rt: Runtime, phone: str) -> Contact:
    with rt.session() as session:
        found = session.get_one(Contact, contact_id(rt, phone))
        found.tag_names  # noqa: B018 - loaded before the session closes
        session.expunge(found)
        return found


def handoffs(rt: Runtime) -> list[tuple[int, str, int | None]]:
    with rt.session() as session:
        return [
            (h.contact_id, h.reason, h.rep_id)
            for h in session.scalars(select(Handoff).order_by(Handoff.id))
        ]


def results_of(rt: Runtime, sequence_id: int) -> dict:
    with rt.session() as session:
        return results(session, session.get_one(Sequence, sequence_id))


def entries(rt: Runtime, phone: str) -> list[tuple[str, str, datetime]]:
    return sequence_entries(rt, contact_id(rt, phone))


# --- price follow-up ----------------------------------------------------------------------

BEFORE = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)  # Sunday 11:00 in Accra
ASKED = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 14:00
NEXT_MORNING = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
THREE_DAYS = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PRICE = "Price follow-up"


def test_price_follow_up(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient, fake_twilio: FakeTwilio
):
    rep_id, rep = signed_in(runtime, Role.REP, "kwame@example.com", "Kwame")
    admin = {"Authorization": f"Bearer {make_token(runtime, Role.ADMIN)}"}
    with time_machine.travel(BEFORE, tick=False) as clock:
        # Two days before: Ama, a shop owner, wants to buy; she becomes an MQL, Kwame calls
        # her back and writes to her, and fills in her details (a hot lead all week).
        text_in(webhooks, AMA, "I want to buy the home kit")
        text_in(webhooks, AMA, "I want to order today")
        run_jobs(runtime)
        ama = contact_id(runtime, AMA)
        assert handoffs(runtime) == [(ama, "mql", rep_id)]
        clock.shift(timedelta(minutes=10))
        written = {"contact_id": ama, "channel": "sms", "body": "Hi, Kwame from Sunrise here."}
        assert client.post("/api/v1/messages", json=written, headers=rep).status_code == 202
        details = {
            "name": "Ama Mensah",
            "email": "ama@shop.example",
            "attributes": {"customer_type": "business"},
            "tags": ["wholesale"],
        }
        response = client.patch(f"/api/v1/contacts/{ama}", json=details, headers=admin)
        assert response.status_code == 200, response.get_json()
        run_jobs(runtime)  # Kwame's message goes out

        clock.move_to(ASKED)
        sequence_id = start_sequence(runtime, shipped("price_follow_up"))
        text_in(webhooks, AMA, "Hi, how much is the solar lamp?")
        text_in(webhooks, KOFI, "how much is the solar lamp?")
        run_jobs(runtime)  # the model reads "pricing": both are enrolled
        assert run_steps(runtime).steps == 2  # each waits for the next morning

        clock.move_to(NEXT_MORNING - timedelta(minutes=1))
        assert run_steps(runtime).claimed == 0
        clock.move_to(NEXT_MORNING)
        assert run_steps(runtime).queued == 2
        run_jobs(runtime)

        clock.move_to(THREE_DAYS)
        assert run_steps(runtime).queued == 2
        run_jobs(runtime)  # the reminders, and Ama's handoff routed to Kwame

    follow_up = "thanks for asking about our prices yesterday. Shall I reserve one for you?"
    assert received(fake_twilio, AMA) == [
        (AMA, "Hi, Kwame from Sunrise here.", BEFORE + timedelta(minutes=10)),
        (AMA, f"Hi Ama, {follow_up} Reply YES and I will call you.", NEXT_MORNING),
        (
            AMA,
            "Ama, our offer is still open this week: free delivery in town. Reply to order.",
            THREE_DAYS,
        ),
    ]
    assert received(fake_twilio, KOFI) == [
        (KOFI, f"Hi there, {follow_up} Reply YES and I will call you.", NEXT_MORNING),
        (
            KOFI,
            "Hello, our offer is still open this week: free delivery in town. Reply to order.",
            THREE_DAYS,
        ),
    ]
    assert handoffs(runtime) == [(ama, "mql", rep_id), (ama, "price_follow_up", rep_id)]
    assert entries(runtime, AMA) == [
        ("enrolled", f"Enrolled in sequence “{PRICE}” (intent: pricing)", ASKED),
        (
            "step",
            f"Sequence “{PRICE}”, step next-morning (wait): until 2026-11-25 09:30 UTC",
            ASKED,
        ),
        ("step", f"Sequence “{PRICE}”, step follow-up (send): queued", NEXT_MORNING),
        (
            "step",
            f"Sequence “{PRICE}”, step three-days (wait): until 2026-11-28 10:00 UTC",
            NEXT_MORNING,
        ),
        ("step", f"Sequence “{PRICE}”, step reminder (send): queued", THREE_DAYS),
        (
            "step",
            f"Sequence “{PRICE}”, step still-warm (branch): score_above 40? yes: to-a-rep",
            THREE_DAYS,
        ),
        (
            "step",
            f"Sequence “{PRICE}”, step to-a-rep (handoff): handoff requested (price_follow_up)",
            THREE_DAYS,
        ),
        ("step", f"Sequence “{PRICE}”, step done (exit): exit", THREE_DAYS),
        ("exited", f"Left sequence “{PRICE}”: completed", THREE_DAYS),
    ]
    assert [step for step, _ in runs(runtime, contact_id(runtime, KOFI))] == [
        "next-morning",
        "follow-up",
        "three-days",
        "reminder",
        "still-warm",
        "done",
    ]
    figures = results_of(runtime, sequence_id)
    assert {k: figures[k] for k in ("enrolled", "active", "completed", "exited")} == {
        "enrolled": 2,
        "active": 0,
        "completed": 2,
        "exited": 0,
    }
    assert (figures["messages_sent"], figures["handoffs"]) == (4, 1)
    branch = next(s for s in figures["steps"] if s["id"] == "still-warm")
    assert branch["outcomes"] == {
        "score_above 40? yes: to-a-rep": 1,
        "score_above 40? no: done": 1,
    }


# --- welcome after a USSD sign-up -----------------------------------------------------------

DIALED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 13:00 in Nairobi
SETTLED = DIALED + timedelta(minutes=10)
TWO_DAYS_AT_SIX = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # 18:00 in Nairobi
WELCOME = "Welcome after USSD sign-up"


def test_welcome_after_ussd_sign_up(runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio):
    with time_machine.travel(DIALED, tick=False) as clock:
        sequence_id = start_sequence(runtime, shipped("welcome_after_ussd"))
        for text in ("", "3", "3*Wanjiru Kamau", "3*Wanjiru Kamau*4"):
            response = webhooks.ussd(text, session_id="ATUid_welcome", phoneNumber=WANJIRU)
            assert response.status_code == 200
        assert response.get_data(as_text=True) == ("END Thank you Wanjiru, your details are saved.")
        signed_up = contact(runtime, WANJIRU)
        assert (signed_up.name, signed_up.attributes) == ("Wanjiru Kamau", {"household_size": "4"})
        assert run_steps(runtime).steps == 2  # the tag, then the ten minutes
        assert contact(runtime, WANJIRU).tag_names == ["ussd-signup"]

        clock.move_to(SETTLED)
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
        clock.move_to(TWO_DAYS_AT_SIX - timedelta(minutes=1))
        assert run_steps(runtime).claimed == 0
        clock.move_to(TWO_DAYS_AT_SIX)
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)

    assert received(fake_twilio) == [
        (
            WANJIRU,
            "Welcome to Sunrise Solar, Wanjiru! Dial *384*123# any time for prices, or reply "
            "here with a question.",
            SETTLED,
        ),
        (
            WANJIRU,
            "Did you know? Our pay-as-you-go plans start at a small deposit, then daily payments "
            "by mobile money. Reply PLANS to hear more.",
            TWO_DAYS_AT_SIX,
        ),
    ]
    assert contact(runtime, WANJIRU).lifecycle_stage == "lead"
    assert entries(runtime, WANJIRU) == [
        ("enrolled", f"Enrolled in sequence “{WELCOME}” (menu_node: details_saved)", DIALED),
        ("step", f"Sequence “{WELCOME}”, step tag-new (tag): tags +ussd-signup", DIALED),
        ("step", f"Sequence “{WELCOME}”, step settle (wait): until 2026-11-24 10:10 UTC", DIALED),
        ("step", f"Sequence “{WELCOME}”, step welcome (send): queued", SETTLED),
        (
            "step",
            f"Sequence “{WELCOME}”, step two-days (wait): until 2026-11-26 15:00 UTC",
            SETTLED,
        ),
        ("step", f"Sequence “{WELCOME}”, step how-it-works (send): queued", TWO_DAYS_AT_SIX),
        ("step", f"Sequence “{WELCOME}”, step lead (stage): moved to lead", TWO_DAYS_AT_SIX),
        ("step", f"Sequence “{WELCOME}”, step done (exit): exit", TWO_DAYS_AT_SIX),
        ("exited", f"Left sequence “{WELCOME}”: completed", TWO_DAYS_AT_SIX),
    ]
    with runtime.session() as session:
        moves = session.scalars(
            select(Interaction.body).where(
                Interaction.contact_id == contact_id(runtime, WANJIRU),
                Interaction.body.like("Lifecycle %"),
            )
        ).all()
    assert moves[-1] == f"Lifecycle subscriber -> lead by sequence “{WELCOME}”"
    figures = results_of(runtime, sequence_id)
    assert (figures["enrolled"], figures["completed"], figures["messages_sent"]) == (1, 1, 2)


# --- win-back of inactive customers ---------------------------------------------------------

LAST_SEEN = datetime(2026, 9, 24, 12, 0, tzinfo=UTC)
SCANNED = LAST_SEEN + timedelta(days=61)  # 2026-11-24 12:00
REPLIED = SCANNED + timedelta(days=2)
A_WEEK = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WIN_BACK = "Win back inactive customers"


def test_win_back(runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio):
    rep_id, _ = signed_in(runtime, Role.REP, "kwame@example.com", "Kwame")
    with time_machine.travel(LAST_SEEN, tick=False) as clock:
        last_words = {
            AMA: "Thanks, that sounds great!",
            KOFI: "ok",
            YAW: "When will my lamp be delivered?",
            ESI: "how much is the solar lamp?",  # a lead, not a customer
            KWESI: "worst company ever, I am so angry",  # an unhappy customer: left to support
        }
        for phone, body in last_words.items():
            text_in(webhooks, phone, body)
        run_jobs(runtime)
        customers = [contact_id(runtime, phone) for phone in (AMA, KOFI, YAW, KWESI)]
        with runtime.session() as session:
            for customer in customers:
                move(session, session.get_one(Contact, customer), "customer", actor="a won deal")
        sequence_id = start_sequence(runtime, shipped("win_back"))

        clock.move_to(SCANNED)
        assert scan_triggers(runtime, force=True) == 3  # Ama, Kofi, Yaw
        assert run_steps(runtime).queued == 3
        run_jobs(runtime)

        clock.move_to(REPLIED)
        text_in(webhooks, AMA, "Yes please, I would love the discount, thank you!")
        text_in(webhooks, YAW, "This is terrible, the lamp broke and nobody helped me")
        run_jobs(runtime)  # exit_on is empty: replying keeps them in
        assert contact(runtime, YAW).sentiment == "negative"

        clock.move_to(A_WEEK)
        assert scan_triggers(runtime, force=True) == 0  # nobody enrolled twice
        assert run_steps(runtime).claimed == 3
        run_jobs(runtime)  # Yaw's handoff is routed

    offer = "we miss you at Sunrise Solar! Here is 10% off your next purchase this month."
    assert sorted(received(fake_twilio)) == sorted(
        (phone, f"Hello, {offer} Reply to claim it.", SCANNED) for phone in (AMA, KOFI, YAW)
    )
    assert "won-back" in contact(runtime, AMA).tag_names
    assert "won-back" not in contact(runtime, KOFI).tag_names + contact(runtime, YAW).tag_names
    assert handoffs(runtime) == [(contact_id(runtime, YAW), "win_back_unhappy", rep_id)]
    walked = {
        phone: [step for step, _ in runs(runtime, contact_id(runtime, phone))]
        for phone in (AMA, KOFI, YAW)
    }
    assert walked == {
        AMA: ["offer", "a-week", "answered", "check-mood", "thank", "done"],
        KOFI: ["offer", "a-week", "answered", "done"],
        YAW: ["offer", "a-week", "answered", "check-mood", "to-support", "handed-over"],
    }
    step = f"Sequence “{WIN_BACK}”, step"
    opening = [
        ("enrolled", f"Enrolled in sequence “{WIN_BACK}” (inactive 60 days)", SCANNED),
        ("step", f"{step} offer (send): queued", SCANNED),
        ("step", f"{step} a-week (wait): until 2026-12-01 10:00 UTC", SCANNED),
        ("step", f"{step} answered (branch): replied True? yes: check-mood", A_WEEK),
    ]
    completed = ("exited", f"Left sequence “{WIN_BACK}”: completed", A_WEEK)
    assert entries(runtime, AMA) == [
        *opening,
        ("step", f"{step} check-mood (branch): sentiment negative? no: thank", A_WEEK),
        ("step", f"{step} thank (tag): tags +won-back", A_WEEK),
        ("step", f"{step} done (exit): exit", A_WEEK),
        completed,
    ]
    assert entries(runtime, YAW) == [
        *opening,
        ("step", f"{step} check-mood (branch): sentiment negative? yes: to-support", A_WEEK),
        ("step", f"{step} to-support (handoff): handoff requested (win_back_unhappy)", A_WEEK),
        ("step", f"{step} handed-over (exit): exit", A_WEEK),
        completed,
    ]
    assert entries(runtime, KOFI)[3:] == [
        ("step", f"{step} answered (branch): replied True? no: done", A_WEEK),
        ("step", f"{step} done (exit): exit", A_WEEK),
        completed,
    ]
    assert entries(runtime, ESI) == [] and entries(runtime, KWESI) == []
    figures = results_of(runtime, sequence_id)
    assert {k: figures[k] for k in ("enrolled", "completed", "messages_sent", "handoffs")} == {
        "enrolled": 3,
        "completed": 3,
        "messages_sent": 3,
        "handoffs": 1,
    }
    assert figures["replies"] == 2


def test_win_back_activated_in_a_running_system_enrols_the_customers_already_inactive(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    """The workers scan every few minutes; a win-back turned on today still finds the
    customers who went quiet long ago, not only those who cross the line from now on."""
    with time_machine.travel(LAST_SEEN, tick=False) as clock:
        for phone in (AMA, KOFI):
            text_in(webhooks, phone, "ok")
        run_jobs(runtime)
        customers = [contact_id(runtime, phone) for phone in (AMA, KOFI)]
        with runtime.session() as session:
            for customer in customers:
                move(session, session.get_one(Contact, customer), "customer", actor="a won deal")
        clock.move_to(SCANNED - timedelta(minutes=5))
        scan_triggers(runtime, force=True)  # the workers' clock scans every few minutes
        clock.move_to(SCANNED)
        start_sequence(runtime, shipped("win_back"))  # a marketer turns win-back on
        clock.move_to(SCANNED + timedelta(minutes=5))
        assert scan_triggers(runtime, force=True) == 2


def test_welcome_for_a_customer_keeps_the_stage_and_says_why_on_the_timeline(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    """A customer who updates their details on USSD gets the welcome series; its stage step
    does not move them back to lead, and the timeline says so (every step is an entry)."""
    with time_machine.travel(DIALED, tick=False) as clock:
        start_sequence(runtime, shipped("welcome_after_ussd"))
        customer = add_contact(runtime, "Wanjiru Kamau", WANJIRU, stage="customer")
        for text in ("", "3", "3*Wanjiru Kamau", "3*Wanjiru Kamau*4"):
            webhooks.ussd(text, session_id="ATUid_customer", phoneNumber=WANJIRU)
        for moment in (DIALED, SETTLED, TWO_DAYS_AT_SIX):
            clock.move_to(moment)
            run_steps(runtime)
            run_jobs(runtime)
    assert contact(runtime, WANJIRU).lifecycle_stage == "customer"  # never moved back
    assert ("lead", "not moved: moving from customer back to lead needs a reason") in runs(
        runtime, customer
    )
    assert any(
        what == "step" and "step lead (stage)" in body
        for what, body, _at in sequence_entries(runtime, customer)
    )
