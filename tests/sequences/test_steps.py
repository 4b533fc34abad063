"""Every step type, run by the worker's clock (``workers.sequence_clock.run_steps``) in
simulated time; messages go through the real campaign send job to the fake Twilio, handoffs
through the real routing job. Each enrolment, step and exit is on the contact's timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from crm.consent import set_consent
from crm.models import (
    CampaignRecipient,
    ConsentStatus,
    Contact,
    Handoff,
    Interaction,
    Role,
    SequenceStepRun,
)
from crm.runtime import Runtime
from crm.sequence_definition import DefinitionError
from crm.users import create_user
from tests.conftest import Webhooks, run_jobs
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.helpers import (
    GHANA,
    KENYA,
    T0,
    contact,
    definition,
    enrol_now,
    enrolled_ids,
    enrolments,
    new_contact,
    new_sequence,
    runs,
    text_in,
    the_enrolment,
    timeline,
    timeline_kinds,
)
from workers.sequence_clock import run_steps

TRIGGER = {"type": "tag_added", "tag": "start"}  # the tests enrol by hand
TEMPLATE_SID = "HX" + "0123456789abcdef" * 2


def start(rt: Runtime, steps: list[dict[str, object]], *contacts: int, **extra: object) -> int:
    """A new active sequence with these steps and the contacts enrolled now; its id."""
    sequence_id = new_sequence(rt, definition(TRIGGER, steps, **extra))
    assert sorted(enrol_now(rt, sequence_id, list(contacts))) == sorted(contacts)
    return sequence_id


def recipients(rt: Runtime, sequence_id: int) -> list[CampaignRecipient]:
    with rt.session() as session:
        rounds = select(SequenceStepRun.id).where(SequenceStepRun.sequence_id == sequence_id)
        return list(
            session.scalars(
                select(CampaignRecipient)
                .where(CampaignRecipient.round.in_(rounds))
                .order_by(CampaignRecipient.id)
            )
        )


# --- wait ------------------------------------------------------------------------------------


def test_a_wait_for_a_duration_holds_the_next_step_until_it_has_passed(runtime: Runtime):
    with time_machine.travel(T0, tick=False) as clock:
        someone = new_contact(runtime)
        steps = [
            {"id": "pause", "wait": {"hours": 2}},
            {"id": "mark", "tag": {"add": ["waited"]}},
        ]
        sequence = start(runtime, steps, someone)
        assert run_steps(runtime).steps == 1
        enrolment = the_enrolment(runtime, sequence)
        assert (enrolment.step_id, enrolment.due_at) == ("mark", T0 + timedelta(hours=2))
        clock.move_to(T0 + timedelta(hours=1, minutes=59))
        assert run_steps(runtime).claimed == 0
        assert contact(runtime, someone).tag_names == []
        clock.move_to(T0 + timedelta(hours=2))
        assert run_steps(runtime).completed == 1
    assert contact(runtime, someone).tag_names == ["waited"]
    assert runs(runtime, sequence) == [
        ("pause", "until 2026-03-10 12:00 UTC"),
        ("mark", "tags +waited"),
    ]
    assert the_enrolment(runtime, sequence).status == "completed"
    assert timeline_kinds(runtime, someone) == ["enrolled", "step:pause", "step:mark", "exited"]


def test_a_wait_until_a_time_of_day_counts_in_the_contacts_zone(runtime: Runtime):
    """At 10:00 UTC it is 13:00 in Nairobi (+254, UTC+3) and 10:00 in Accra (+233, UTC+0); a
    contact without a number uses the sequence's zone (Lagos, UTC+1)."""
    with time_machine.travel(T0, tick=False) as clock:
        nairobi = new_contact(runtime, KENYA)
        accra = new_contact(runtime, GHANA)
        nowhere = new_contact(runtime, None)
        steps = [
            {"id": "morning", "wait": {"at": "09:00"}},
            {"id": "evening", "wait": {"days": 1, "at": "18:00"}},
            {"id": "done", "exit": {}},
        ]
        sequence = start(runtime, steps, nairobi, accra, nowhere, timezone="Africa/Lagos")
        run_steps(runtime)
        due = {e.contact_id: e.due_at for e in enrolments(runtime, sequence)}
        assert due == {
            nairobi: datetime(2026, 3, 11, 6, 0, tzinfo=UTC),
            accra: datetime(2026, 3, 11, 9, 0, tzinfo=UTC),
            nowhere: datetime(2026, 3, 11, 8, 0, tzinfo=UTC),
        }
        clock.move_to(datetime(2026, 3, 11, 6, 0, tzinfo=UTC))
        assert run_steps(runtime).claimed == 1  # Nairobi's morning only
        due = {e.contact_id: e.due_at for e in enrolments(runtime, sequence)}
    # 09:00 on the 11th in Nairobi; a day later at 18:00 Nairobi time is 15:00 UTC.
    assert due[nairobi] == datetime(2026, 3, 12, 15, 0, tzinfo=UTC)
    assert due[accra] == datetime(2026, 3, 11, 9, 0, tzinfo=UTC)


# --- send ------------------------------------------------------------------------------------


def test_an_sms_step_sends_a_personalized_message_through_the_campaign_send_job(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(T0, tick=False):
        ama = new_contact(runtime, GHANA, attributes={"product": "solar lamp"})
        nameless = new_contact(runtime, KENYA, name=None, attributes={"product": "home kit"})
        body = (
            "Hi {{ first_name | default('there') }}, your {{ attributes.product }} is ready "
            "({{ lifecycle_stage }})."
        )
        sequence = start(
            runtime, [{"id": "hello", "send": {"channel": "sms", "body": body}}], ama, nameless
        )
        result = run_steps(runtime)
        assert (result.queued, result.completed) == (2, 2)
        assert fake_twilio.accepted_messages() == []  # queued: the send job sends
        run_jobs(runtime)
    sent = {m["to"]: m["body"] for m in fake_twilio.accepted_messages()}
    assert sent == {
        GHANA: "Hi Ama, your solar lamp is ready (lead).",
        KENYA: "Hi there, your home kit is ready (lead).",
    }
    assert runs(runtime, sequence, ama) == [("hello", "queued")]
    assert [r.state for r in recipients(runtime, sequence)] == ["sent", "sent"]
    with runtime.session() as session:
        [message] = session.scalars(
            select(Interaction).where(
                Interaction.contact_id == ama, Interaction.direction == "outbound"
            )
        )
    assert message.channel == "sms" and message.body == sent[GHANA]
    # The step is on the timeline, and the message is an entry of its own.
    assert timeline_kinds(runtime, ama) == ["enrolled", "step:hello", "exited"]


def _whatsapp_opt_in(rt: Runtime, contact_id: int) -> None:
    with rt.session() as session:
        set_consent(
            session=session,
            contact=session.get_one(Contact, contact_id),
            channel="whatsapp",
            status=ConsentStatus.OPTED_IN,
            source="test",
        )


def test_whatsapp_outside_the_24h_window_goes_as_a_template_and_free_text_is_skipped(
    runtime: Runtime, fake_twilio: FakeTwilio, webhooks: Webhooks
):
    template_to = new_contact(runtime, KENYA, name="Wanjiru Kamau")
    free_text_to = new_contact(runtime, GHANA)
    in_window = new_contact(runtime, "+254722000111", name="Otieno")
    for someone in (template_to, free_text_to, in_window):
        _whatsapp_opt_in(runtime, someone)
    with time_machine.travel(T0 - timedelta(hours=1), tick=False) as clock:
        text_in(webhooks, "Habari! Is the 50kg bag in stock?", "+254722000111", whatsapp=True)
        run_jobs(runtime)
        fake_twilio.reset()  # whatever the bot answered is not the sequence's
        clock.move_to(T0)
        template = start(
            runtime,
            [
                {
                    "id": "offer",
                    "send": {
                        "channel": "whatsapp",
                        "content_sid": TEMPLATE_SID,
                        "content_variables": {"1": "Wanjiru"},
                    },
                }
            ],
            template_to,
            name="Template",
        )
        free_text = start(
            runtime,
            [{"id": "note", "send": {"channel": "whatsapp", "body": "Hi {{ first_name }}!"}}],
            free_text_to,
            in_window,
            name="Free text",
            exit_on=[],
        )
        assert run_steps(runtime).queued == 3
        run_jobs(runtime)
    sent = {r["To"][0]: r for r in fake_twilio.requests}
    assert set(sent) == {f"whatsapp:{KENYA}", "whatsapp:+254722000111"}
    assert sent[f"whatsapp:{KENYA}"]["ContentSid"] == [TEMPLATE_SID]
    assert sent["whatsapp:+254722000111"]["Body"] == ["Hi Otieno!"]
    [offer] = recipients(runtime, template)
    assert offer.state == "sent"
    skipped = {r.contact_id: r for r in recipients(runtime, free_text)}
    assert skipped[in_window].state == "sent"
    assert skipped[free_text_to].state == "skipped"
    assert skipped[free_text_to].action == "outside WhatsApp's 24-hour window and no template"


def test_a_send_step_skipped_at_send_time_is_on_the_timeline(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    someone = new_contact(runtime, GHANA)
    _whatsapp_opt_in(runtime, someone)
    with time_machine.travel(T0, tick=False):
        sequence = start(
            runtime, [{"id": "note", "send": {"channel": "whatsapp", "body": "Hi!"}}], someone
        )
        run_steps(runtime)
        run_jobs(runtime)
    assert [r.state for r in recipients(runtime, sequence)] == ["skipped"]
    assert fake_twilio.requests == []
    assert "step:note" in timeline_kinds(runtime, someone)


def test_a_whatsapp_template_step_personalizes_its_variables(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    someone = new_contact(runtime, KENYA, name="Wanjiru Kamau")
    _whatsapp_opt_in(runtime, someone)
    with time_machine.travel(T0, tick=False):
        start(
            runtime,
            [
                {
                    "id": "offer",
                    "send": {
                        "channel": "whatsapp",
                        "content_sid": TEMPLATE_SID,
                        "content_variables": {"1": "{{ first_name }}"},
                    },
                }
            ],
            someone,
        )
        run_steps(runtime)
        run_jobs(runtime)
    [request] = fake_twilio.requests
    assert json.loads(request["ContentVariables"][0]) == {"1": "Wanjiru"}


# --- branch ----------------------------------------------------------------------------------


def branch_steps(condition: dict[str, object]) -> list[dict[str, object]]:
    """Wait an hour, then branch: "then" tags went-yes and exits, "else" tags went-no."""
    return [
        {"id": "pause", "wait": {"hours": 1}},
        {"id": "check", "branch": {"if": condition, "then": "yes", "else": "no"}},
        {"id": "yes", "tag": {"add": ["went-yes"]}},
        {"id": "stop", "exit": {}},
        {"id": "no", "tag": {"add": ["went-no"]}},
    ]


def _points(score: int) -> dict[str, object]:
    """A score earned at T0 (it decays by under 1% in the hour before the branch runs)."""
    return {"score": score, "score_points": float(score), "score_at": T0}


BRANCHES: dict[str, tuple[dict[str, object], dict[str, object], dict[str, object]]] = {
    # condition, the contact that takes "then", the one that takes "else"
    "replied": ({"replied": True}, {}, {}),
    "score_above": ({"score_above": 40}, _points(45), _points(35)),
    "intent": ({"intent": "pricing"}, {"last_intent": "pricing"}, {"last_intent": "support"}),
    "sentiment": ({"sentiment": "negative"}, {"sentiment": "negative"}, {"sentiment": "neutral"}),
    "tag": ({"tag": "wholesale"}, {"tags": ("wholesale",)}, {"tags": ("retail",)}),
}


@pytest.mark.parametrize("condition", sorted(BRANCHES))
def test_a_branch_takes_then_when_its_condition_holds_and_else_otherwise(
    runtime: Runtime, webhooks: Webhooks, condition: str
):
    test, yes_fields, no_fields = BRANCHES[condition]
    with time_machine.travel(T0, tick=False) as clock:
        yes = new_contact(runtime, GHANA, **yes_fields)  # type: ignore[arg-type]
        no = new_contact(runtime, KENYA, **no_fields)  # type: ignore[arg-type]
        sequence = start(runtime, branch_steps(test), yes, no, exit_on=[])  # a reply stays
        run_steps(runtime)
        clock.shift(timedelta(minutes=30))
        if condition == "replied":
            text_in(webhooks, "Yes please, call me tomorrow", GHANA)
        clock.shift(timedelta(minutes=30))
        run_steps(runtime)
    value = next(iter(test.values()))
    assert runs(runtime, sequence, yes)[1:] == [
        ("check", f"{condition} {value}? yes: yes"),
        ("yes", "tags +went-yes"),
        ("stop", "exit"),
    ]
    assert runs(runtime, sequence, no)[1:] == [
        ("check", f"{condition} {value}? no: no"),
        ("no", "tags +went-no"),
    ]
    assert "went-yes" in contact(runtime, yes).tag_names
    assert "went-no" not in contact(runtime, yes).tag_names
    assert "went-no" in contact(runtime, no).tag_names
    assert "went-yes" not in contact(runtime, no).tag_names


def test_a_score_above_branch_reads_the_score_decayed_to_now(runtime: Runtime):
    """45 points two weeks ago, with a half-life of a week, are about 11 now."""
    steps = [
        {"id": "warm", "branch": {"if": {"score_above": 40}, "then": "yes", "else": "no"}},
        {"id": "yes", "tag": {"add": ["went-yes"]}},
        {"id": "stop", "exit": {}},
        {"id": "no", "tag": {"add": ["went-no"]}},
    ]
    with time_machine.travel(T0, tick=False):
        cooled = new_contact(
            runtime, GHANA, score=45, score_points=45.0, score_at=T0 - timedelta(days=14)
        )
        start(runtime, steps, cooled)
        run_steps(runtime)
    assert contact(runtime, cooled).tag_names == ["went-no"]


# --- tag -------------------------------------------------------------------------------------


def test_a_tag_step_adds_and_removes_tags_and_the_added_tag_triggers_other_sequences(
    runtime: Runtime,
):
    someone = new_contact(runtime, tags=("prospect", "solar"))
    onboarding = new_sequence(
        runtime,
        definition(
            {"type": "tag_added", "tag": "customer-2026"},
            [{"id": "hold", "wait": {"days": 1}}],
            name="Onboarding",
        ),
    )
    steps = [{"id": "retag", "tag": {"add": ["Customer-2026"], "remove": ["prospect"]}}]
    sequence = start(runtime, steps, someone)
    run_steps(runtime)
    assert contact(runtime, someone).tag_names == ["customer-2026", "solar"]
    assert runs(runtime, sequence) == [("retag", "tags +customer-2026 -prospect")]
    assert enrolled_ids(runtime, onboarding) == [someone]
    assert timeline_kinds(runtime, someone) == [
        "enrolled",
        "step:retag",
        "exited",
        "enrolled",  # in Onboarding, by the tag the step added (when the batch commits)
    ]


def test_a_tag_step_adding_a_fit_tag_rescores_the_contact(runtime: Runtime):
    with time_machine.travel(T0, tick=False):
        buyer = new_contact(runtime, GHANA)
        start(runtime, [{"id": "bulk-buyer", "tag": {"add": ["wholesale"]}}], buyer)
        run_steps(runtime)
    assert contact(runtime, buyer).tag_names == ["wholesale"]
    assert contact(runtime, buyer).score == 10


# --- stage -----------------------------------------------------------------------------------


def _lifecycle_entries(rt: Runtime, contact_id: int) -> list[str]:
    with rt.session() as session:
        rows = session.scalars(
            select(Interaction)
            .where(Interaction.contact_id == contact_id, Interaction.channel == "system")
            .order_by(Interaction.id)
        )
        return [r.body for r in rows if (r.meta or {}).get("event") == "lifecycle"]


def test_a_stage_step_moves_forward_and_backward_only_with_a_reason(runtime: Runtime):
    lead = new_contact(runtime, GHANA, stage="lead")
    hot = new_contact(runtime, KENYA, stage="sql")
    cooled = new_contact(runtime, "+233209876543", stage="sql")
    forward = start(runtime, [{"id": "promote", "stage": {"to": "mql"}}], lead, name="Forward")
    back = start(runtime, [{"id": "demote", "stage": {"to": "lead"}}], hot, name="Back")
    back_why = start(
        runtime,
        [{"id": "demote", "stage": {"to": "lead", "reason": "went cold"}}],
        cooled,
        name="Back with a reason",
    )
    run_steps(runtime)
    assert contact(runtime, lead).lifecycle_stage == "mql"
    assert runs(runtime, forward) == [("promote", "moved to mql")]
    assert _lifecycle_entries(runtime, lead) == ["Lifecycle lead -> mql by sequence “Forward”"]
    assert contact(runtime, hot).lifecycle_stage == "sql"
    [(step, outcome)] = runs(runtime, back)
    assert step == "demote"
    assert outcome == "not moved: moving from sql back to lead needs a reason"
    assert _lifecycle_entries(runtime, hot) == []
    assert contact(runtime, cooled).lifecycle_stage == "lead"
    assert runs(runtime, back_why) == [("demote", "moved to lead")]
    assert _lifecycle_entries(runtime, cooled) == [
        "Lifecycle sql -> lead by sequence “Back with a reason”: went cold"
    ]
    # Every one of them ran off the end: completed, with its exit on the timeline.
    for someone in (lead, hot, cooled):
        assert timeline_kinds(runtime, someone)[-1] == "exited"


def test_a_stage_step_that_does_not_move_the_contact_is_still_on_the_timeline(
    runtime: Runtime,
):
    hot = new_contact(runtime, GHANA, stage="sql")
    already = new_contact(runtime, KENYA, stage="lead")
    start(runtime, [{"id": "demote", "stage": {"to": "lead"}}], hot, already)
    run_steps(runtime)
    assert timeline_kinds(runtime, hot) == ["enrolled", "step:demote", "exited"]
    assert timeline_kinds(runtime, already) == ["enrolled", "step:demote", "exited"]


def test_a_stage_step_to_disqualified_without_a_reason_code_is_refused_when_saved(
    runtime: Runtime,
):
    steps = [{"id": "drop", "stage": {"to": "disqualified", "reason": "went cold"}}]
    with pytest.raises(DefinitionError, match="reason"):
        new_sequence(runtime, definition(TRIGGER, steps))


def test_a_stage_step_to_customer_ends_the_enrolment_when_it_exits_on_customer(
    runtime: Runtime,
):
    buyer = new_contact(runtime, GHANA, stage="opportunity")
    steps = [
        {"id": "won", "stage": {"to": "customer"}},
        {"id": "after", "tag": {"add": ["never"]}},
    ]
    sequence = start(runtime, steps, buyer, exit_on=["customer"])
    run_steps(runtime)
    enrolment = the_enrolment(runtime, sequence)
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "customer")
    assert runs(runtime, sequence) == [("won", "moved to customer")]
    assert contact(runtime, buyer).tag_names == []


# --- handoff ---------------------------------------------------------------------------------


def test_a_handoff_step_hands_the_contact_to_a_rep_through_the_routing_job(runtime: Runtime):
    with runtime.session() as session:
        rep = create_user(
            session=session, email="kofi@example.com", role=Role.REP, password="x" * 12, name="Kofi"
        ).id
    someone = new_contact(runtime, GHANA)
    steps = [{"id": "to-a-rep", "handoff": {"reason": "follow_up"}}]
    sequence = start(runtime, steps, someone, name="Follow-up")
    run_steps(runtime)
    assert runs(runtime, sequence) == [("to-a-rep", "handoff requested (follow_up)")]
    with runtime.session() as session:
        assert session.scalars(select(Handoff)).all() == []  # the routing job creates it
    run_jobs(runtime)
    with runtime.session() as session:
        [handoff] = session.scalars(select(Handoff)).all()
    assert (handoff.contact_id, handoff.rep_id, handoff.reason) == (someone, rep, "follow_up")
    assert handoff.summary == "Sequence “Follow-up”, step to-a-rep"
    assert contact(runtime, someone).owner_id == rep


# --- exit, and the end -----------------------------------------------------------------------


def test_an_exit_step_ends_the_enrolment_and_skips_the_steps_after_it(runtime: Runtime):
    with time_machine.travel(T0, tick=False):
        someone = new_contact(runtime)
        steps = [{"id": "leave", "exit": {}}, {"id": "never", "tag": {"add": ["never"]}}]
        sequence = start(runtime, steps, someone)
        run_steps(runtime)
    enrolment = the_enrolment(runtime, sequence)
    assert (enrolment.status, enrolment.ended_at) == ("completed", T0)
    assert runs(runtime, sequence) == [("leave", "exit")]
    assert contact(runtime, someone).tag_names == []
    assert timeline_kinds(runtime, someone) == ["enrolled", "step:leave", "exited"]


def test_running_off_the_end_completes_the_enrolment(runtime: Runtime):
    with time_machine.travel(T0, tick=False) as clock:
        someone = new_contact(runtime)
        steps = [{"id": "soon", "wait": {"minutes": 5}}, {"id": "last", "tag": {"add": ["done"]}}]
        sequence = start(runtime, steps, someone)
        run_steps(runtime)
        assert the_enrolment(runtime, sequence).status == "active"
        clock.shift(timedelta(minutes=5))
        assert run_steps(runtime).completed == 1
        assert run_steps(runtime).claimed == 0  # nothing left to run
    enrolment = the_enrolment(runtime, sequence)
    assert enrolment.status == "completed" and enrolment.due_at is None
    assert enrolment.ended_at == T0 + timedelta(minutes=5)
    exited = timeline(runtime, someone)[-1]
    assert exited.meta["what"] == "exited" and exited.meta["reason"] == "completed"
    assert exited.meta["enrollment_id"] == enrolment.id
