"""Launching and sending a campaign for real: recipients materialized once, sent by RQ jobs
through the twilio SDK to the local Twilio server, each exactly once; opted-out never; quiet
hours wait; provider errors retried or recorded with their action."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from channels.twilio import TwilioAdapter
from crm.campaign_launch import launch
from crm.campaign_send import claim_batch
from crm.campaigns import CampaignError, create_campaign
from crm.consent import set_consent
from crm.models import (
    Campaign,
    CampaignRecipient,
    ChannelConsent,
    ConsentStatus,
    Contact,
    Identity,
    Interaction,
    Role,
    ScoreEvent,
    Segment,
)
from crm.models.base import utcnow
from crm.runtime import Runtime
from crm.users import create_user
from tests.conftest import Webhooks, run_jobs
from tests.fakes.twilio_api import FakeTwilio

PHONES = [f"+2332410{i:05d}" for i in range(12)]
SERVICE = "MG" + "a" * 32


def make_campaign(rt: Runtime, *, quiet: tuple[str, str] | None = None, count: int = 12) -> int:
    with rt.session() as session:
        user = create_user(
            session=session, email="mk@example.com", role=Role.MARKETER, password="x" * 12
        )
        for phone in PHONES[:count]:
            contact = Contact(name=f"Customer {phone[-2:]}", lifecycle_stage="lead", attributes={})
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
        segment = Segment(name="Ghana", filters={"countries": ["GH"]})
        session.add(segment)
        session.flush()
        campaign = create_campaign(
            session,
            {
                "name": "Promo",
                "channel": "sms",
                "sender": SERVICE,  # a messaging service: 100 messages/s
                "segment_id": segment.id,
                "body": "Hi {{ first_name }}, 20% off lamps",
                "quiet_start": quiet[0] if quiet else None,
                "quiet_end": quiet[1] if quiet else None,
            },
            user,
        )
        return campaign.id


def do_launch(rt: Runtime, campaign_id: int) -> None:
    with rt.session() as session:
        launch(session, session.get_one(Campaign, campaign_id))


def recipients(rt: Runtime, campaign_id: int) -> list[CampaignRecipient]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
                .order_by(CampaignRecipient.id)
            )
        )


def accepted(fake: FakeTwilio, failures: int = 0) -> list[str]:
    """The numbers the provider accepted a message for (refused attempts are not sends)."""
    return [r["To"][0] for r in fake.requests][failures:]


def test_every_recipient_gets_exactly_one_message_and_the_campaign_finishes(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    campaign_id = make_campaign(runtime)
    do_launch(runtime, campaign_id)
    with pytest.raises(CampaignError, match="running"):  # launching twice adds nobody
        do_launch(runtime, campaign_id)
    run_jobs(runtime)
    assert sorted(accepted(fake_twilio)) == sorted(PHONES)
    rows = recipients(runtime, campaign_id)
    assert {r.state for r in rows} == {"sent"} and all(r.provider_message_id for r in rows)
    assert rows[0].body.startswith("Hi Customer, 20% off")
    assert {r["MessagingServiceSid"][0] for r in fake_twilio.requests} == {SERVICE}
    with runtime.session() as session:
        statuses = set(
            session.scalars(
                select(Interaction.delivery_status).where(
                    Interaction.id.in_([r.interaction_id for r in rows])
                )
            )
        )
    assert statuses == {"accepted"}  # the provider's answer, recorded
    with runtime.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert campaign.status == "done" and campaign.summary["recipients"] == 12
    run_jobs(runtime)  # nothing is sent twice
    assert len(fake_twilio.requests) == 12


def test_opted_out_contacts_are_never_sent_even_when_they_opt_out_after_launch(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    campaign_id = make_campaign(runtime)
    with runtime.session() as session:
        first = session.scalars(select(Identity).where(Identity.value == PHONES[0])).one()
        session.add(
            ChannelConsent(
                contact_id=first.contact_id, channel="sms", status="opted_out", source="t"
            )
        )
    do_launch(runtime, campaign_id)
    with runtime.session() as session:
        summary = session.get_one(Campaign, campaign_id).summary
        assert summary["excluded"] == {"opted_out": 1} and summary["recipients"] == 11
        late = session.scalars(select(Identity).where(Identity.value == PHONES[1])).one()
        set_consent(
            session=session,
            contact=session.get_one(Contact, late.contact_id),
            channel="sms",
            status=ConsentStatus.OPTED_OUT,
            source="keyword:STOP",
        )
    run_jobs(runtime)
    assert PHONES[0] not in accepted(fake_twilio) and PHONES[1] not in accepted(fake_twilio)
    assert len(accepted(fake_twilio)) == 10
    skipped = [r for r in recipients(runtime, campaign_id) if r.state == "skipped"]
    assert [r.action for r in skipped] == ["opted out since launch"]


def test_quiet_hours_defer_sends_they_never_drop_them(runtime: Runtime, fake_twilio: FakeTwilio):
    now = utcnow()  # Ghana is on UTC: a quiet window around now
    quiet = (
        (now - timedelta(hours=1)).strftime("%H:%M"),
        (now + timedelta(hours=1)).strftime("%H:%M"),
    )
    campaign_id = make_campaign(runtime, quiet=quiet, count=3)
    do_launch(runtime, campaign_id)
    run_jobs(runtime)
    assert fake_twilio.requests == []
    rows = recipients(runtime, campaign_id)
    assert {r.state for r in rows} == {"pending"}
    assert all(r.not_before > now + timedelta(minutes=50) for r in rows)
    with runtime.session() as session:  # time passes: the quiet hours are over
        campaign = session.get_one(Campaign, campaign_id)
        campaign.quiet_start = (now + timedelta(hours=2)).strftime("%H:%M")
        campaign.quiet_end = (now + timedelta(hours=3)).strftime("%H:%M")
        for row in session.scalars(select(CampaignRecipient)):
            row.not_before = utcnow() - timedelta(seconds=1)
    from workers.context import use
    from workers.jobs import send_campaign_chunk

    use(runtime)
    send_campaign_chunk(
        outbox_id=0, campaign_id=campaign_id, first_id=rows[0].id, last_id=rows[-1].id
    )
    assert sorted(accepted(fake_twilio)) == sorted(PHONES[:3])


def test_provider_errors_are_retried_or_recorded_with_their_action(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    campaign_id = make_campaign(runtime, count=4)
    fake_twilio.fail_next(429, 20429, "Too Many Requests")
    fake_twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    do_launch(runtime, campaign_id)
    run_jobs(runtime)
    rows = recipients(runtime, campaign_id)
    by_state = {r.state: r for r in rows}
    assert sorted(r.state for r in rows) == ["failed", "pending", "sent", "sent"]
    assert by_state["pending"].error_code == "20429" and by_state["pending"].attempts == 1
    failed = by_state["failed"]
    assert failed.error_code == "21610" and failed.action.startswith("opted out")
    with runtime.session() as session:
        consent = session.scalars(
            select(ChannelConsent).where(ChannelConsent.contact_id == failed.contact_id)
        ).one()
        assert consent.status == "opted_out"
        session.get_one(CampaignRecipient, by_state["pending"].id).not_before = utcnow()
    from workers.context import use
    from workers.jobs import send_campaign_chunk

    use(runtime)
    send_campaign_chunk(
        outbox_id=0, campaign_id=campaign_id, first_id=rows[0].id, last_id=rows[-1].id
    )
    sent = [r for r in recipients(runtime, campaign_id) if r.state == "sent"]
    assert len(sent) == 3
    assert (
        sorted(accepted(fake_twilio, failures=0)).count(by_state["pending"].phone) == 2
    )  # one refused, one accepted


def test_sends_left_in_doubt_are_looked_up_at_the_provider_then_recorded_or_resent(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    """A worker died with rows claimed: one had reached the provider, one had not. The next
    job asks the provider: the first is recorded with the provider's id (not sent again), the
    second goes out once. A row claimed just now (a live job beside this one) is left alone."""
    campaign_id = make_campaign(runtime, count=4)
    do_launch(runtime, campaign_id)
    with runtime.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        first_id, last_id = session.execute(
            select(func.min(CampaignRecipient.id), func.max(CampaignRecipient.id))
        ).one()
        dead, _taken = claim_batch(session, campaign, first_id, last_id, utcnow(), 2)
    reached = runtime.adapters["twilio"].send(dead[0].message(None))  # the provider has it
    with runtime.session() as session:
        for claimed in dead:
            session.get_one(CampaignRecipient, claimed.id).claimed_at = utcnow() - timedelta(
                minutes=10
            )
        campaign = session.get_one(Campaign, campaign_id)
        [live], _taken = claim_batch(session, campaign, first_id, last_id, utcnow(), 1)
    fake_twilio.requests.clear()

    run_jobs(runtime)

    rows = {r.id: r for r in recipients(runtime, campaign_id)}
    assert rows[dead[0].id].state == "sent"
    assert rows[dead[0].id].provider_message_id == reached.provider_message_id
    assert rows[dead[1].id].state == "sent" and rows[dead[1].id].attempts == 1
    assert rows[live.id].state == "sending"  # not stale: its own job records it
    assert sorted(accepted(fake_twilio)) == sorted(
        r.phone for r in rows.values() if r.id not in (dead[0].id, live.id)
    )
    with runtime.session() as session:
        interaction = session.get_one(Interaction, dead[0].interaction_id)
        assert interaction.provider_message_id == reached.provider_message_id


def test_the_cli_launches_and_follows_a_campaign_to_the_end(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    from tests.test_cli import crm

    campaign_id = make_campaign(runtime, count=5)
    launched = crm(runtime, "campaigns", "launch", str(campaign_id))
    assert launched.exit_code == 0, launched.output
    assert "Launched: 5 recipients in 1 jobs, 5 parts" in launched.output
    again = crm(runtime, "campaigns", "launch", str(campaign_id))
    assert again.exit_code != 0 and "running" in again.output
    run_jobs(runtime)
    followed = crm(runtime, "campaigns", "follow", str(campaign_id), "--interval", "0")
    assert followed.exit_code == 0, followed.output
    assert "5/5" in followed.output and f"Campaign {campaign_id} is done." in followed.output
    assert sorted(accepted(fake_twilio)) == sorted(PHONES[:5])


def test_replies_opt_outs_handoffs_and_revenue_are_attributed_to_the_campaign(
    runtime: Runtime, fake_twilio: FakeTwilio, webhooks: Webhooks
):
    from crm.campaign_results import results
    from crm.deals import move_stage, open_deal

    campaign_id = make_campaign(runtime, count=4)
    with runtime.session() as session:  # an A/B split: results per variant too
        session.get_one(Campaign, campaign_id).variants = [
            {"name": "A", "body": "Hi {{ first_name }}, 20% off lamps", "weight": 50},
            {"name": "B", "body": "{{ first_name }}: lamps 20% off", "weight": 50},
        ]
    do_launch(runtime, campaign_id)
    run_jobs(runtime)
    buyer, quitter = PHONES[0], PHONES[1]
    for i, body in enumerate(["I want to buy 2 lamps, can someone call me?", "how much?"]):
        assert webhooks.message(From=buyer, Body=body, MessageSid=f"SMr{i:031d}").status_code == 200
    assert (
        webhooks.message(From=quitter, Body="STOP", MessageSid="SMs" + "0" * 31).status_code == 200
    )
    run_jobs(runtime)  # enrichment attributes the replies, scores, hands the buyer off
    with runtime.session() as session:
        contact = session.scalars(
            select(Contact).join(Identity).where(Identity.value == buyer)
        ).one()
        assert (contact.first_touch_campaign_id, contact.last_touch_campaign_id) == (
            campaign_id,
            campaign_id,
        )
        rules = set(
            session.scalars(select(ScoreEvent.rule).where(ScoreEvent.contact_id == contact.id))
        )
        assert "campaign_reply" in rules
        deal = open_deal(session, contact, title="2 lamps", amount="90", currency="GHS", actor="t")
        move_stage(session, deal, "won", actor="t")
    with runtime.session() as session:
        figures = results(session, session.get_one(Campaign, campaign_id))
    assert (figures["sent"], figures["replied"], figures["opted_out"]) == (4, 2, 1)
    assert figures["reply_rate"] == 0.5 and figures["opt_out_rate"] == 0.25
    assert figures["handoffs"] == 1
    assert figures["revenue"]["first_touch"] == {"GHS": {"deals": 1, "revenue": "90.00"}}
    rows = recipients(runtime, campaign_id)
    by_name = {v["name"]: v for v in figures["variants"]}
    assert set(by_name) == {"A", "B"}
    for name, shown in by_name.items():
        mine = [r for r in rows if r.variant == name]
        assert shown["sent"] == len(mine)
        assert shown["replied"] == sum(1 for r in mine if r.replied_at is not None)
        assert shown["opted_out"] == sum(1 for r in mine if r.phone == quitter)
        assert shown["handoffs"] == sum(1 for r in mine if r.phone == buyer)


def test_a_whatsapp_template_campaign_sends_the_template_to_opted_in_contacts(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    campaign_id = make_campaign(runtime, count=3)
    sid = "HX" + "c" * 32
    with runtime.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        campaign.channel, campaign.content_sid = "whatsapp", sid
        campaign.content_variables = {"1": "20%"}
        for identity in session.scalars(select(Identity).where(Identity.value.in_(PHONES[:2]))):
            session.add(
                ChannelConsent(
                    contact_id=identity.contact_id,
                    channel="whatsapp",
                    status="opted_in",
                    source="t",
                )
            )
    do_launch(runtime, campaign_id)
    run_jobs(runtime)
    assert sorted(r["To"][0] for r in fake_twilio.requests) == [f"whatsapp:{p}" for p in PHONES[:2]]
    for request in fake_twilio.requests:
        assert request["ContentSid"] == [sid] and request["ContentVariables"] == ['{"1": "20%"}']
        assert "Body" not in request
    with runtime.session() as session:
        assert session.get_one(Campaign, campaign_id).summary["excluded"] == {
            "no_whatsapp_consent": 1
        }


def test_quiet_hours_that_begin_after_launch_still_hold_the_send(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    campaign_id = make_campaign(runtime, count=2)
    do_launch(runtime, campaign_id)  # no quiet hours at launch: due now
    now = utcnow()
    with runtime.session() as session:  # then the marketer's quiet hours cover now
        campaign = session.get_one(Campaign, campaign_id)
        campaign.quiet_start = (now - timedelta(hours=1)).strftime("%H:%M")
        campaign.quiet_end = (now + timedelta(hours=1)).strftime("%H:%M")
    run_jobs(runtime)
    assert fake_twilio.requests == []
    rows = recipients(runtime, campaign_id)
    assert {r.state for r in rows} == {"pending"}
    assert all(r.not_before > now + timedelta(minutes=50) for r in rows)


def test_a_send_whose_answer_timed_out_is_looked_up_not_resent(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    """Twilio took the message but answered after our timeout: a blind retry would send it
    twice. The row stays in doubt, and the lookup records Twilio's copy."""
    from crm.campaign_send import SendOptions, send_chunk, settle_stale

    campaign_id = make_campaign(runtime, count=1)
    do_launch(runtime, campaign_id)
    [row] = recipients(runtime, campaign_id)
    impatient = TwilioAdapter(
        auth_token=fake_twilio.auth_token,
        account_sid=fake_twilio.account_sid,
        api_base_url=fake_twilio.base_url,
        timeout=0.2,
    )
    fake_twilio.latency = 1.0  # accepted at once, answered after the timeout
    options = SendOptions(acquire=lambda _budget, _stop: time.monotonic(), threads=1)

    result = send_chunk(
        runtime.sessions,
        impatient,
        campaign_id=campaign_id,
        first_id=row.id,
        last_id=row.id,
        options=options,
    )

    [doubt] = recipients(runtime, campaign_id)
    assert (result.sent, result.retried, doubt.state) == (0, 0, "sending")
    assert fake_twilio.wait_for_accepted(1, timeout=5)
    fake_twilio.latency = 0.0
    settled = settle_stale(
        runtime.sessions,
        impatient,
        campaign_id=campaign_id,
        first_id=row.id,
        last_id=row.id,
        stale=timedelta(0),
    )
    [after] = recipients(runtime, campaign_id)
    [message] = fake_twilio.accepted_messages()
    assert settled == 1 and after.state == "sent"
    assert after.provider_message_id == message["sid"]
    assert len(fake_twilio.requests) == 1  # sent once, never twice
