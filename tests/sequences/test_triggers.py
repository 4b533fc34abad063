"""Every trigger type enrols through its real entry point (a service, the contacts API, a
provider webhook and the enrichment job, the periodic scan), and only when it should: the
audience filter, re-entry rules and a paused sequence keep contacts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from crm import lifecycle
from crm.contacts import set_tags
from crm.models import Contact, Sequence, SequenceStatus
from crm.runtime import Runtime
from crm.sequences import set_status
from tests.conftest import Webhooks, run_jobs
from tests.sequences.helpers import (
    GHANA,
    KENYA,
    T0,
    contact,
    definition,
    enrolled_ids,
    enrolments,
    new_contact,
    new_sequence,
    text_in,
    the_enrolment,
    timeline,
)
from workers.sequence_clock import run_steps, scan_triggers

# Enrolled contacts wait here: nothing runs while a test looks at who got in.
HOLD = [{"id": "hold", "wait": {"days": 1}}]


def tag(rt: Runtime, contact_id: int, *tags: str) -> None:
    with rt.session() as session:
        set_tags(session=session, contact=session.get_one(Contact, contact_id), tags=list(tags))


def patch(
    client: FlaskClient, auth: dict[str, str], contact_id: int, changes: dict[str, object]
) -> int:
    """Edit a contact through the contacts API as a rep; the status code."""
    return client.patch(f"/api/v1/contacts/{contact_id}", json=changes, headers=auth).status_code


# --- stage_entered -------------------------------------------------------------------------


def test_entering_a_stage_through_lifecycle_move_enrols(runtime: Runtime):
    mqls = new_sequence(runtime, definition({"type": "stage_entered", "stage": "mql"}, HOLD))
    lead = new_contact(runtime, GHANA)
    skipper = new_contact(runtime, KENYA)  # jumps straight to sql: never enters mql
    with runtime.session() as session:
        lifecycle.move(session, session.get_one(Contact, lead), "mql", actor="test")
        lifecycle.move(session, session.get_one(Contact, skipper), "sql", actor="test")
    assert enrolled_ids(runtime, mqls) == [lead]
    enrolment = the_enrolment(runtime, mqls)
    assert enrolment.trigger == "stage_entered: mql"
    assert enrolment.status == "active" and enrolment.step_id == "hold"
    [entry] = timeline(runtime, lead)
    assert entry.meta["what"] == "enrolled" and entry.meta["sequence_id"] == mqls
    assert entry.meta["enrollment_id"] == enrolment.id


def test_entering_a_stage_through_the_contacts_api_enrols(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
):
    sqls = new_sequence(runtime, definition({"type": "stage_entered", "stage": "sql"}, HOLD))
    leads = new_sequence(
        runtime, definition({"type": "stage_entered", "stage": "lead"}, HOLD, name="Leads")
    )
    someone = new_contact(runtime, GHANA, stage="mql")
    assert patch(client, auth, someone, {"lifecycle_stage": "sql"}) == 200
    assert enrolled_ids(runtime, sqls) == [someone]
    assert the_enrolment(runtime, sqls).trigger == "stage_entered: sql"
    # Back to lead without a reason is refused, and a refused move enrols nobody.
    assert patch(client, auth, someone, {"lifecycle_stage": "lead"}) == 422
    assert enrolments(runtime, leads) == []
    assert contact(runtime, someone).lifecycle_stage == "sql"


# --- score_crossed -------------------------------------------------------------------------


def test_a_score_crossing_the_value_enrols_and_one_staying_above_does_not(
    runtime: Runtime, webhooks: Webhooks
):
    """Both contacts ask a price by SMS: the enrichment job scores it (+5 wrote to us, +15 asked
    about price). Only the one whose score goes from under 15 to over it is enrolled."""
    with time_machine.travel(T0, tick=False):
        warm = new_sequence(runtime, definition({"type": "score_crossed", "value": 15}, HOLD))
        below = new_contact(runtime, GHANA)
        above = new_contact(runtime, KENYA, score=30, score_points=30.0, score_at=T0)
        text_in(webhooks, "How much does the solar lamp cost?", GHANA)
        text_in(webhooks, "How much does the solar lamp cost?", KENYA)
        run_jobs(runtime)
    assert contact(runtime, below).score == 20
    assert contact(runtime, above).score == 50
    assert enrolled_ids(runtime, warm) == [below]
    assert the_enrolment(runtime, warm).trigger == "score_crossed: 20"


def test_a_cooled_lead_rising_over_the_value_again_crosses_it(runtime: Runtime, webhooks: Webhooks):
    """30 points two weeks ago (half-life a week) are 7.5 now; a price question adds 20."""
    with time_machine.travel(T0, tick=False):
        warm = new_sequence(runtime, definition({"type": "score_crossed", "value": 15}, HOLD))
        cooled = new_contact(
            runtime, GHANA, score=30, score_points=30.0, score_at=T0 - timedelta(days=14)
        )
        text_in(webhooks, "How much does the solar lamp cost?", GHANA)
        run_jobs(runtime)
    assert contact(runtime, cooled).score == 28
    assert enrolled_ids(runtime, warm) == [cooled]


def test_fit_points_from_an_edit_that_cross_the_value_enrol(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
):
    """Giving an email is worth 5 fit points (crm/config/scoring.yaml): 12 -> 17 crosses 15."""
    with time_machine.travel(T0, tick=False):
        warm = new_sequence(runtime, definition({"type": "score_crossed", "value": 15}, HOLD))
        someone = new_contact(runtime, GHANA, score=12, score_points=12.0, score_at=T0)
        assert patch(client, auth, someone, {"email": "ama@example.com"}) == 200
    assert contact(runtime, someone).score == 17
    assert enrolled_ids(runtime, warm) == [someone]


# --- intent and sentiment: the real model, in the enrichment job ---------------------------


def test_an_sms_asking_a_price_enrols_in_the_pricing_sequence_once_the_model_read_it(
    runtime: Runtime, webhooks: Webhooks
):
    pricing = new_sequence(runtime, definition({"type": "intent", "intent": "pricing"}, HOLD))
    complaints = new_sequence(
        runtime,
        definition({"type": "intent", "intent": "complaint"}, HOLD, name="Complaints"),
    )
    text_in(webhooks, "How much does the solar lamp cost?", GHANA)
    assert enrolments(runtime, pricing) == []  # the webhook does not run the model
    run_jobs(runtime)
    [enrolment] = enrolments(runtime, pricing)
    assert enrolment.trigger == "intent: pricing"
    assert contact(runtime, enrolment.contact_id).last_intent == "pricing"
    assert enrolments(runtime, complaints) == []
    # The message that enrolled the contact is not a reply that ends the enrolment.
    assert enrolment.status == "active"


def test_a_sentiment_turning_enrols_in_the_sequence_for_that_sentiment(
    runtime: Runtime, webhooks: Webhooks
):
    unhappy = new_sequence(
        runtime, definition({"type": "sentiment", "sentiment": "negative"}, HOLD)
    )
    happy = new_sequence(
        runtime, definition({"type": "sentiment", "sentiment": "positive"}, HOLD, name="Fans")
    )
    text_in(webhooks, "I am very angry, your lamp is broken and nobody helps me", GHANA)
    text_in(webhooks, "thanks, the lamp works great", KENYA)
    run_jobs(runtime)
    with runtime.session() as session:
        angry = session.scalars(select(Contact).where(Contact.sentiment == "negative")).one()
        pleased = session.scalars(select(Contact).where(Contact.sentiment == "positive")).one()
    assert enrolled_ids(runtime, unhappy) == [angry.id]
    assert the_enrolment(runtime, unhappy).trigger == "sentiment: negative"
    assert enrolled_ids(runtime, happy) == [pleased.id]


# --- menu_node -------------------------------------------------------------------------------


def test_a_ussd_session_reaching_details_saved_enrols(runtime: Runtime, webhooks: Webhooks):
    welcome = new_sequence(
        runtime, definition({"type": "menu_node", "node": "details_saved"}, HOLD)
    )
    for text in ("", "3", "3*Wanjiru Kamau", "3*Wanjiru Kamau*4"):
        assert webhooks.ussd(text, session_id="ATUid_done", phoneNumber=KENYA).status_code == 200
    # Another caller gives a name and hangs up before the household question is answered.
    for text in ("", "3", "3*Kofi Boateng"):
        webhooks.ussd(text, session_id="ATUid_gone", phoneNumber=GHANA)
    [enrolment] = enrolments(runtime, welcome)
    assert enrolment.trigger == "menu_node: details_saved"
    signed_up = contact(runtime, enrolment.contact_id)
    assert signed_up.name == "Wanjiru Kamau"  # the captures were applied before it enrolled


def test_a_voice_call_reaching_a_menu_node_enrols(runtime: Runtime, webhooks: Webhooks):
    voice = "/webhooks/twilio/voice"
    lamp = new_sequence(runtime, definition({"type": "menu_node", "node": "lamp"}, HOLD))
    tv = new_sequence(runtime, definition({"type": "menu_node", "node": "tv_kit"}, HOLD, name="TV"))
    assert webhooks.post(voice, "twilio/voice__incoming.txt").status_code == 200
    fixture = "twilio/voice__gather_digits.txt"
    assert webhooks.post(f"{voice}/gather", fixture, Digits="1").status_code == 200  # products
    assert webhooks.post(f"{voice}/gather?i=1", fixture, Digits="1").status_code == 200  # lamp
    [enrolment] = enrolments(runtime, lamp)
    assert enrolment.trigger == "menu_node: lamp"
    with runtime.session() as session:
        caller = session.scalars(select(Contact)).one()
    assert enrolment.contact_id == caller.id
    assert enrolments(runtime, tv) == []


# --- tag_added -------------------------------------------------------------------------------


def test_a_tag_added_through_the_api_or_set_tags_enrols(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
):
    vips = new_sequence(runtime, definition({"type": "tag_added", "tag": "vip"}, HOLD))
    by_api = new_contact(runtime, GHANA)
    by_service = new_contact(runtime, KENYA)
    had_it = new_contact(runtime, "+233209876543", tags=("vip",))
    other_tag = new_contact(runtime, "+254722000111")
    assert patch(client, auth, by_api, {"tags": ["VIP "]}) == 200  # cleaned: "vip"
    tag(runtime, by_service, "vip")
    tag(runtime, had_it, "vip")  # not added: it was there already
    tag(runtime, other_tag, "wholesale")
    assert enrolled_ids(runtime, vips) == sorted([by_api, by_service])
    assert {e.trigger for e in enrolments(runtime, vips)} == {"tag_added: vip"}


# --- date_attribute ---------------------------------------------------------------------------


def test_a_renewal_date_enrols_three_days_before_at_nine_in_the_contacts_zone(runtime: Runtime):
    """Renewal on 13 March: enrolled on 10 March at 09:00 local time, which is 06:00 UTC in
    Nairobi (+254) and 09:00 UTC in Accra (+233); each scan takes what fell due since the
    last."""
    renewals = new_sequence(
        runtime,
        definition(
            {
                "type": "date_attribute",
                "attribute": "renewal_date",
                "offset_days": -3,
                "at": "09:00",
            },
            HOLD,
        ),
    )
    nairobi = new_contact(runtime, KENYA, attributes={"renewal_date": "2026-03-13"})
    accra = new_contact(runtime, GHANA, attributes={"renewal_date": "2026-03-13"})
    new_contact(runtime, "+254722000111", attributes={"renewal_date": "2026-03-20"})
    new_contact(runtime, "+233209876543")  # no renewal date
    day = datetime(2026, 3, 10, tzinfo=UTC)
    assert scan_triggers(runtime, day + timedelta(hours=5, minutes=59), force=True) == 0
    assert scan_triggers(runtime, day + timedelta(hours=6, minutes=1), force=True) == 1
    assert enrolled_ids(runtime, renewals) == [nairobi]
    assert scan_triggers(runtime, day + timedelta(hours=8, minutes=59), force=True) == 0
    assert scan_triggers(runtime, day + timedelta(hours=9, minutes=1), force=True) == 1
    assert enrolled_ids(runtime, renewals) == sorted([nairobi, accra])
    assert scan_triggers(runtime, day + timedelta(hours=12), force=True) == 0
    assert {e.trigger for e in enrolments(runtime, renewals)} == {"renewal_date -3 days"}


def test_a_date_that_fell_due_while_no_scan_ran_for_days_still_enrols(runtime: Runtime):
    """Workers were down from 10 March 10:00 to 14 March 10:00; the renewal moment (11 March
    09:00 in Accra) lies in the window the next scan covers, so it enrols then."""
    renewals = new_sequence(
        runtime,
        definition(
            {"type": "date_attribute", "attribute": "renewal_date", "at": "09:00"},
            HOLD,
        ),
    )
    accra = new_contact(runtime, GHANA, attributes={"renewal_date": "2026-03-11"})
    assert scan_triggers(runtime, T0, force=True) == 0
    scan_triggers(runtime, T0 + timedelta(days=4), force=True)
    assert enrolled_ids(runtime, renewals) == [accra]


# --- inactive -----------------------------------------------------------------------------------


def test_inactive_contacts_are_enrolled_by_the_scan_and_recently_active_ones_are_not(
    runtime: Runtime, webhooks: Webhooks
):
    with time_machine.travel(T0 - timedelta(days=40), tick=False) as clock:
        dormant = new_contact(runtime, GHANA)
        active = new_contact(runtime, KENYA)
        clock.move_to(T0 - timedelta(days=2))
        text_in(webhooks, "thanks, the lamp works great", KENYA)
        run_jobs(runtime)  # the enrichment job notes the contact's last touch
        clock.move_to(T0)
        quiet = new_sequence(runtime, definition({"type": "inactive", "days": 30}, HOLD))
        assert scan_triggers(runtime, T0, force=True) == 1
    assert enrolled_ids(runtime, quiet) == [dormant]
    assert the_enrolment(runtime, quiet).trigger == "inactive 30 days"
    assert scan_triggers(runtime, T0 + timedelta(hours=1), force=True) == 0  # not twice
    # Thirty days after its last message, the other one has gone quiet too.
    assert scan_triggers(runtime, T0 + timedelta(days=28, hours=1), force=True) == 1
    assert enrolled_ids(runtime, quiet) == sorted([dormant, active])


def test_an_inactive_sequence_activated_while_workers_scan_enrols_the_already_dormant(
    runtime: Runtime,
):
    with time_machine.travel(T0 - timedelta(days=40), tick=False):
        dormant = new_contact(runtime, GHANA)
    # The worker has been scanning every few minutes since before the sequence existed.
    assert scan_triggers(runtime, T0 - timedelta(minutes=5), force=True) == 0
    with time_machine.travel(T0, tick=False):
        quiet = new_sequence(runtime, definition({"type": "inactive", "days": 30}, HOLD))
    scan_triggers(runtime, T0, force=True)
    assert enrolled_ids(runtime, quiet) == [dormant]


def test_a_contact_active_on_the_ussd_menu_recently_is_not_inactive(
    runtime: Runtime, webhooks: Webhooks
):
    with time_machine.travel(T0 - timedelta(days=40), tick=False) as clock:
        dormant = new_contact(runtime, GHANA)
        regular = new_contact(runtime, KENYA)
        clock.move_to(T0 - timedelta(days=1))
        for text in ("", "1", "1*1"):  # checks the price of the solar lamp
            assert (
                webhooks.ussd(text, session_id="ATUid_prices", phoneNumber=KENYA).status_code == 200
            )
        run_jobs(runtime)
        clock.move_to(T0)
        quiet = new_sequence(runtime, definition({"type": "inactive", "days": 30}, HOLD))
        scan_triggers(runtime, T0, force=True)
    assert regular != dormant
    assert enrolled_ids(runtime, quiet) == [dormant]


# --- who may enter ------------------------------------------------------------------------------


def test_the_audience_filter_refuses_a_contact_outside_it(runtime: Runtime):
    leads_only = new_sequence(
        runtime,
        definition(
            {"type": "tag_added", "tag": "vip"},
            HOLD,
            audience={"stages": ["lead"], "countries": ["GH"]},
        ),
    )
    lead = new_contact(runtime, GHANA)
    customer = new_contact(runtime, "+233209876543", stage="customer")
    kenyan = new_contact(runtime, KENYA)
    for someone in (lead, customer, kenyan):
        tag(runtime, someone, "vip")
    assert enrolled_ids(runtime, leads_only) == [lead]


# The only step takes the trigger tag off again, so that adding it fires the trigger again.
UNTAG = [{"id": "untag", "tag": {"remove": ["vip"]}}]


def test_a_contact_enrols_once_ever_by_default(runtime: Runtime):
    with time_machine.travel(T0, tick=False) as clock:
        once = new_sequence(runtime, definition({"type": "tag_added", "tag": "vip"}, UNTAG))
        someone = new_contact(runtime, GHANA)
        tag(runtime, someone, "vip")
        run_steps(runtime)
        assert the_enrolment(runtime, once).status == "completed"
        assert contact(runtime, someone).tag_names == []
        clock.shift(timedelta(days=400))
        tag(runtime, someone, "vip")
    assert len(enrolments(runtime, once)) == 1
    assert contact(runtime, someone).tag_names == ["vip"]


def test_reentry_after_days_lets_a_contact_in_again_once_that_long_has_passed(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
):
    with time_machine.travel(T0, tick=False) as clock:
        again = new_sequence(
            runtime,
            definition({"type": "tag_added", "tag": "vip"}, UNTAG, reentry={"after_days": 30}),
        )
        someone = new_contact(runtime, GHANA)
        tag(runtime, someone, "vip")
        # In the sequence already: taking the tag off and on again does not enrol it twice.
        assert patch(client, auth, someone, {"tags": []}) == 200
        tag(runtime, someone, "vip")
        assert len(enrolments(runtime, again)) == 1
        run_steps(runtime)  # runs the step: the enrolment completes, the tag is off
        clock.shift(timedelta(days=10))
        tag(runtime, someone, "vip")
        assert len(enrolments(runtime, again)) == 1  # ended 10 days ago: too soon
        assert patch(client, auth, someone, {"tags": []}) == 200
        clock.shift(timedelta(days=21))
        tag(runtime, someone, "vip")
    first, second = enrolments(runtime, again)
    assert first.status == "completed" and second.status == "active"
    assert second.entered_at == T0 + timedelta(days=31)


def test_a_paused_sequence_enrols_nobody_until_it_is_resumed(runtime: Runtime):
    vips = new_sequence(runtime, definition({"type": "tag_added", "tag": "vip"}, HOLD))
    while_paused = new_contact(runtime, GHANA)
    after_resume = new_contact(runtime, KENYA)
    with runtime.session() as session:
        set_status(session, session.get_one(Sequence, vips), SequenceStatus.PAUSED)
    tag(runtime, while_paused, "vip")
    assert enrolments(runtime, vips) == []
    with runtime.session() as session:
        set_status(session, session.get_one(Sequence, vips), SequenceStatus.ACTIVE)
    tag(runtime, after_resume, "vip")
    assert enrolled_ids(runtime, vips) == [after_resume]
