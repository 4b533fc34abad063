"""`crm demo`: a month of a small solar business seeded through the real services, dated over
the last 30 days, into an empty database only; its printed credentials sign in."""

from __future__ import annotations

import re
from datetime import timedelta

from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select

from crm.campaign_results import results
from crm.cli import cli
from crm.deals import load_pipeline
from crm.demo import seed
from crm.models import (
    Campaign,
    ChannelConsent,
    Contact,
    ContactTag,
    Conversation,
    Deal,
    Handoff,
    Interaction,
    Segment,
    Sequence,
    SequenceEnrollment,
    User,
)
from crm.models.base import utcnow
from crm.routing import DEFAULT_SLA
from crm.runtime import Runtime
from tests.conftest import cli_env
from tests.web.conftest import sign_in

EMAILS = {
    "admin@example.com": "admin",
    "marketer@example.com": "marketer",
    "rep@example.com": "rep",
    "rep2@example.com": "rep",
}


def crm(rt: Runtime, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={**cli_env(rt), **env})


def printed_password(result: Result) -> str:
    assert result.exit_code == 0, result.output
    match = re.search(r"^\s*password\s+(\S+)", result.output, re.MULTILINE)
    assert match, result.output
    return match.group(1)


def counts(rt: Runtime) -> dict[str, int]:
    with rt.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (User, Contact, Interaction, Deal, Handoff, Campaign, Conversation)
        }


def test_demo_seeds_a_month_of_a_small_business_and_its_credentials_sign_in(
    runtime: Runtime, app: Flask
):
    result = crm(runtime, "demo")
    password = printed_password(result)
    for email in EMAILS:
        assert email in result.output
    saved = (runtime.settings.instance_path / "demo-credentials.txt").read_text()
    assert f"password={password}\n" in saved

    with runtime.session() as session:
        now = utcnow()
        users = {u.email: u.role for u in session.scalars(select(User))}
        assert users == EMAILS
        assert 60 <= session.scalar(select(func.count(Contact.id))) <= 80

        # Every channel, both directions, reps writing under their own names.
        inbound = set(
            session.scalars(
                select(Interaction.channel).where(Interaction.direction == "inbound").distinct()
            )
        )
        assert inbound == {"sms", "whatsapp", "voice", "ussd"}
        by_reps = session.scalars(
            select(Interaction.author_id)
            .where(Interaction.direction == "outbound", Interaction.author_id.is_not(None))
            .distinct()
        ).all()
        reps = session.scalars(select(User.id).where(User.role == "rep")).all()
        assert set(by_reps) == set(reps)
        assert session.scalar(select(func.count()).where(Interaction.channel == "note")) >= 3

        # The model read the messages: every inbound text has its signals.
        texts = session.scalars(
            select(Interaction).where(
                Interaction.direction == "inbound", Interaction.channel.in_(("sms", "whatsapp"))
            )
        ).all()
        assert len(texts) >= 60
        assert all(t.model_version and t.sentiment and t.intent for t in texts)
        assert {t.sentiment for t in texts} == {"negative", "neutral", "positive"}
        assert {"pricing", "purchase", "complaint", "human"} <= {t.intent for t in texts}

        # Calls with a recording and a transcript, missed calls; USSD sessions ending at
        # different screens, some walked away from.
        calls = session.scalars(select(Interaction).where(Interaction.channel == "voice")).all()
        assert any(c.meta.get("recording_url") for c in calls)
        assert any(c.meta.get("transcript") for c in calls)
        assert any(c.meta.get("missed") for c in calls)
        sessions = session.scalars(select(Interaction).where(Interaction.channel == "ussd")).all()
        abandoned = {s.meta["path"][-1] for s in sessions if s.delivery_status == "abandoned"}
        assert len(abandoned) >= 3
        assert sum(s.delivery_status == "completed" for s in sessions) >= 5

        # A finished campaign: delivered, answered, one opt-out, revenue; and a draft.
        broadcasts = select(Campaign).where(Campaign.sequence_id.is_(None))
        campaigns = {c.status: c for c in session.scalars(broadcasts)}
        assert set(campaigns) == {"done", "draft"}
        # The shipped sequences: two listening for new events, win-back left for a marketer.
        sequences = dict(session.execute(select(Sequence.name, Sequence.status)).all())
        assert sequences == {
            "Price follow-up": "active",
            "Welcome after USSD sign-up": "active",
            "Win back inactive customers": "draft",
        }
        assert (
            session.scalar(select(func.count(SequenceEnrollment.id))) == 0
        )  # history enrols nobody
        done = campaigns["done"]
        figures = results(session, done)
        assert figures["sent"] >= 15
        assert 0 < figures["delivered"] < figures["sent"]  # two numbers did not take it
        assert figures["replied"] >= 3
        assert figures["opted_out"] >= 1
        assert figures["revenue"]["last_touch"]["GHS"]["deals"] >= 1
        assert done.summary["excluded"].get("opted_out", 0) >= 1
        assert session.scalar(select(func.count(Segment.id))) >= 2

        # Deals in every stage, three currencies; won ones carry their touches.
        deals = session.scalars(select(Deal)).all()
        assert {d.stage for d in deals} == set(load_pipeline().stages)
        assert {d.currency for d in deals} == {"GHS", "KES", "NGN"}
        won = [d for d in deals if d.stage == "won"]
        assert all(d.first_touch_channel and d.last_touch_channel and d.closed_at for d in won)
        assert any(d.last_touch_campaign_id == done.id for d in won)
        stages = set(session.scalars(select(Contact.lifecycle_stage).distinct()))
        assert {"mql", "sql", "opportunity", "customer", "disqualified"} <= stages
        tags = set(session.scalars(select(ContactTag.tag).distinct()))
        assert {"wholesale", "agric-fair"} <= tags
        assert session.scalar(select(func.count()).where(ChannelConsent.status == "opted_out")) >= 1

        # Two or three hot leads waiting, their SLA running; the others touched in time, but
        # one escalated and one rejected.
        handoffs = session.scalars(select(Handoff)).all()
        waiting = [h for h in handoffs if h.status == "open"]
        assert 2 <= len(waiting) <= 3
        assert all(now < h.due_at <= now + DEFAULT_SLA for h in waiting)
        assert min(h.due_at for h in waiting) < now + timedelta(minutes=5)  # near its deadline
        touched = [h for h in handoffs if h.status == "done"]
        assert len(touched) >= 5
        assert all(0 < h.speed_to_lead_s <= DEFAULT_SLA.total_seconds() for h in touched)
        assert {"escalated", "rejected"} <= {h.status for h in handoffs}

        # An inbox that looks lived in.
        threads = session.scalars(select(Conversation)).all()
        assert {"open", "snoozed", "closed"} <= {t.status for t in threads}
        unread = [t for t in threads if t.unread and t.status == "open"]
        assert 3 <= len(unread) <= 12

        # Spread over the last month, nothing in the future.
        times = session.scalars(select(Interaction.created_at)).all()
        assert now - timedelta(days=31) < min(times) < now - timedelta(days=25)
        assert max(times) <= now
        assert len({t.date() for t in times}) >= 20
        recent = [t for t in times if t > now - timedelta(hours=1)]
        assert recent, "the inbox has messages from the last hour"

    # The printed password signs every demo user in.
    client = app.test_client()
    response = sign_in(client, "rep@example.com", password)
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    assert client.get("/inbox").status_code == 200
    for email in ("admin@example.com", "marketer@example.com", "rep2@example.com"):
        assert sign_in(app.test_client(), email, password).status_code == 302
    assert sign_in(app.test_client(), "rep@example.com", password + "x").status_code == 401

    # A second run adds nothing: the demo goes only into an empty database.
    before = counts(runtime)
    again = crm(runtime, "demo")
    assert again.exit_code != 0
    assert "already has users or contacts" in again.output
    assert "Traceback" not in again.output
    assert seed(runtime) is None  # what `crm run` calls on every start
    assert counts(runtime) == before


def test_demo_reset_seeds_the_same_business_again_with_a_new_password(runtime: Runtime, app: Flask):
    first = printed_password(crm(runtime, "demo"))
    with runtime.session() as session:
        names = sorted(n or "" for n in session.scalars(select(Contact.name)))
    before = counts(runtime)

    second = printed_password(crm(runtime, "demo", "--reset"))

    assert second != first
    assert counts(runtime) == before
    with runtime.session() as session:
        assert sorted(n or "" for n in session.scalars(select(Contact.name))) == names
    assert sign_in(app.test_client(), "rep@example.com", first).status_code == 401
    assert sign_in(app.test_client(), "rep@example.com", second).status_code == 302


def test_demo_refuses_production(runtime: Runtime):
    result = crm(
        runtime,
        "demo",
        "--reset",
        CRM_ENV="production",
        SECRET_KEY="s" * 40,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="token",
        PUBLIC_BASE_URL="https://crm.example.test",
    )
    assert result.exit_code != 0
    assert "crm demo is for development" in result.output
    assert counts(runtime)["users"] == 0


def test_demo_refuses_while_a_worker_runs_and_reset_forgets_cached_figures(runtime: Runtime):
    """A running worker would take the demo's jobs and send them with its own (maybe live)
    adapters; and figures cached from the old data must not outlive a reset."""
    from rq import Worker

    from crm import outbox
    from crm.demo import reset

    worker = Worker(outbox.QUEUES, connection=runtime.redis)
    worker.register_birth()
    try:
        result = crm(runtime, "demo")
        assert result.exit_code != 0 and "stop the workers first" in result.output
    finally:
        worker.register_death()
    runtime.redis.set("crm:dashboard:v1:inbound:2026-01-01", "{}")
    reset(runtime)
    assert runtime.redis.keys("crm:dashboard:v1:*") == []
