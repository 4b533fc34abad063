"""The dashboard's figures (crm.dashboard_stats) from data made through the services and
webhooks: the funnel, revenue per channel and currency, handoffs per rep, sentiment per day,
USSD drop-off per node, and the per-day cache of closed days. Real database and Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from crm import dashboard_stats as stats
from crm import lifecycle
from crm.contacts import merge_contacts, resolve_by_phone
from crm.deals import move_stage, open_deal
from crm.enrichment import enrich
from crm.handoffs import record_first_touch
from crm.models import Contact, Interaction
from crm.models.base import utcnow
from crm.routing import Trigger, hand_off
from crm.runtime import Runtime
from intelligence.signals import Signals
from tests.conftest import Webhooks
from tests.crm.test_routing import add_rep

CUSTOMER = "+233241110000"


def contacts_in_stages(rt: Runtime, stages: dict[str, int], prefix: str = "+23320") -> list[int]:
    """New contacts (as a first message creates them), moved to their stage by the lifecycle
    service."""
    ids = []
    with rt.session() as session:
        for stage, count in stages.items():
            for _ in range(count):
                phone = f"{prefix}{len(ids):07d}"
                contact = resolve_by_phone(session=session, e164=phone, channel="sms").contact
                if stage != "subscriber":
                    reason = "spam" if stage == "disqualified" else None
                    lifecycle.move(session, contact, stage, actor="test", reason=reason)
                ids.append(contact.id)
    return ids


def by_keyword(texts: Sequence[str]) -> list[Signals]:
    """A stand-in for the model: "late" reads negative, "great" positive, the rest neutral."""

    def sentiment(text: str) -> str:
        return "negative" if "late" in text else "positive" if "great" in text else "neutral"

    return [Signals(sentiment(t), 0.0, "other", 0.5, "test") for t in texts]


def inbound_messages(
    rt: Runtime, webhooks: Webhooks, bodies: Sequence[str], *, days_ago: int = 0
) -> list[int]:
    """SMS through the webhook, read by ``by_keyword``; moved ``days_ago`` back in time."""
    sids = []
    for body in bodies:
        sid = "SM" + uuid.uuid4().hex
        assert webhooks.message(Body=body, From=CUSTOMER, MessageSid=sid).status_code == 200
        sids.append(sid)
    with rt.session() as session:
        ids = list(
            session.scalars(select(Interaction.id).where(Interaction.provider_message_id.in_(sids)))
        )
        enrich(session, ids, by_keyword)
        for interaction in session.scalars(select(Interaction).where(Interaction.id.in_(ids))):
            interaction.created_at -= timedelta(days=days_ago)
    return ids


def ussd_sessions(webhooks: Webhooks) -> None:
    """Three callers on the shipped menu: one buys a lamp (main > products > lamp, the END
    screen), one leaves at "Enter your full name", one leaves at the start menu, and the
    gateway reports a fourth session we never answered."""
    for text in ("", "1", "1*1"):
        assert webhooks.ussd(text, session_id="ATUid_lamp").status_code == 200
    for text in ("", "3"):
        assert webhooks.ussd(text, session_id="ATUid_name").status_code == 200
    assert webhooks.ussd("", session_id="ATUid_start").status_code == 200
    for session_id, status in (
        ("ATUid_name", "Incomplete"),
        ("ATUid_start", "Failed"),
        ("ATUid_never", "Incomplete"),
    ):
        ended = webhooks.africastalking(
            "ussd/events",
            "africastalking/ussd__session_end.txt",
            sessionId=session_id,
            status=status,
        )
        assert ended.status_code == 200


def load(rt: Runtime, days: int = 30, touch: str = "first") -> stats.Dashboard:
    with rt.session() as session:
        return stats.load(session, stats.window(days), store=rt.redis, menu=rt.menu, touch=touch)


def test_the_funnel_counts_each_stage_reached_and_the_conversion_between_steps(
    runtime: Runtime,
):
    ids = contacts_in_stages(
        runtime,
        {"subscriber": 4, "lead": 3, "mql": 1, "sql": 1, "customer": 1, "disqualified": 2},
    )
    with runtime.session() as session:  # a duplicate merged away is no longer counted
        merge_contacts(session=session, survivor_id=ids[0], merged_id=ids[1], actor="test")

    funnel = load(runtime).funnel
    reached = {step.stage: step.reached for step in funnel.steps}
    at_stage = {step.stage: step.at_stage for step in funnel.steps}
    assert at_stage == {
        "subscriber": 3,
        "lead": 3,
        "mql": 1,
        "sql": 1,
        "opportunity": 0,
        "customer": 1,
    }
    assert reached == {
        "subscriber": 9,
        "lead": 6,
        "mql": 3,
        "sql": 2,
        "opportunity": 1,
        "customer": 1,
    }
    conversions = {step.stage: step.conversion for step in funnel.steps}
    assert conversions["subscriber"] is None
    assert conversions["lead"] == pytest.approx(6 / 9)
    assert conversions["opportunity"] == pytest.approx(1 / 2)
    assert (funnel.disqualified, funnel.contacts, funnel.new_contacts) == (2, 11, 11)


def test_new_contacts_count_only_those_created_in_the_range(runtime: Runtime):
    ids = contacts_in_stages(runtime, {"lead": 3})
    with runtime.session() as session:
        session.execute(
            update(Contact)
            .where(Contact.id == ids[0])
            .values(created_at=utcnow() - timedelta(days=10))
        )
    assert load(runtime, 7).funnel.new_contacts == 2
    assert load(runtime, 30).funnel.new_contacts == 3


def test_the_funnel_counts_are_kept_a_minute(runtime: Runtime):
    contacts_in_stages(runtime, {"lead": 2})
    assert load(runtime).funnel.contacts == 2
    contacts_in_stages(runtime, {"lead": 1}, prefix="+23321")
    assert load(runtime).funnel.contacts == 2  # within the minute: the counts kept
    key = f"{stats.CACHE_PREFIX}:funnel:{stats.window(30).start.date().isoformat()}"
    assert 0 < runtime.redis.ttl(key) <= stats.FUNNEL_TTL
    runtime.redis.delete(key)  # the minute is up
    assert load(runtime).funnel.contacts == 3


def test_revenue_is_per_channel_and_per_currency_never_added_across_currencies(
    runtime: Runtime,
):
    with runtime.session() as session:
        deals = [
            ("+233240000001", "whatsapp", "1200.00", "GHS"),
            ("+233240000002", "whatsapp", "300.50", "GHS"),
            ("+233240000003", "sms", "450.00", "GHS"),
            ("+233240000004", "sms", "99.99", "USD"),
            ("+233240000005", "ussd", "500.00", "GHS"),  # lost: no revenue
        ]
        for phone, channel, amount, currency in deals:
            contact = resolve_by_phone(session=session, e164=phone, channel=channel).contact
            deal = open_deal(
                session, contact, title="Kit", amount=amount, currency=currency, actor="test"
            )
            if channel == "ussd":
                move_stage(session, deal, "lost", lost_reason="price", actor="test")
            else:
                move_stage(session, deal, "won", actor="test")

    revenue = load(runtime).revenue
    by_channel = {
        currency: {bar.label: bar.revenue for bar in bars}
        for currency, bars in revenue.by_channel.items()
    }
    assert by_channel == {
        "GHS": {"WhatsApp": Decimal("1500.50"), "SMS": Decimal("450.00")},
        "USD": {"SMS": Decimal("99.99")},
    }
    assert revenue.totals == {"GHS": Decimal("1950.50"), "USD": Decimal("99.99")}
    assert list(revenue.totals) == ["GHS", "USD"]  # the larger first
    assert revenue.deals == 4
    assert [bar.label for bar in revenue.by_campaign["GHS"]] == ["No campaign"]


def test_handoffs_give_speed_to_lead_and_the_sla_met_rate_per_rep(runtime: Runtime):
    ama = add_rep(runtime, "Ama")
    with runtime.session() as session:
        fast = resolve_by_phone(session=session, e164="+233240000011").contact
        slow = resolve_by_phone(session=session, e164="+233240000012").contact
        first = hand_off(session, fast, Trigger("mql", "asked about price"))
        second = hand_off(session, slow, Trigger("mql", "asked about price"))
        assert first is not None and second is not None
        record_first_touch(session, fast.id, ama, now=first.created_at + timedelta(seconds=60))
        # 20 minutes: past the 15-minute SLA.
        record_first_touch(session, slow.id, ama, now=second.created_at + timedelta(minutes=20))

    handoffs = load(runtime).handoffs
    [rep] = handoffs.reps
    assert (rep.rep, rep.handoffs, rep.sla_met_rate) == ("Ama", 2, 0.5)
    assert (rep.mean_s, rep.worst_s) == (630.0, 1200)
    assert (handoffs.total, handoffs.sla_met_rate) == (2, 0.5)


def test_sentiment_per_day_and_inbound_counts(runtime: Runtime, webhooks: Webhooks):
    inbound_messages(runtime, webhooks, ["It came late again", "late, and broken"], days_ago=1)
    inbound_messages(runtime, webhooks, ["great lamp", "ok thanks", "great service"])

    figures = load(runtime, 7).inbound
    assert len(figures.trend) == 7
    *_, yesterday, today = figures.trend
    assert today.day == utcnow().date()
    assert (yesterday.negative, yesterday.neutral, yesterday.positive) == (2, 0, 0)
    assert (today.negative, today.neutral, today.positive) == (0, 1, 2)
    assert today.share("positive") == pytest.approx(2 / 3)
    assert all(day.scored == 0 for day in figures.trend[:-2])
    assert figures.trend[0].share("negative") is None  # no messages: no share, not 0%
    assert (figures.messages, figures.calls, figures.ussd_sessions) == (5, 0, 0)


def test_ussd_drop_off_per_node_in_menu_order(runtime: Runtime, webhooks: Webhooks):
    ussd_sessions(webhooks)

    nodes = {n.node: (n.label, n.reached, n.completed, n.dropped) for n in load(runtime).ussd}
    assert nodes == {
        "main": ("Start menu", 3, 0, 1),
        "products": ("Products and prices", 1, 0, 0),
        "ask_name": ("Update my details", 1, 0, 1),
        "lamp": ("Solar lamp with phone charger", 1, 1, 0),
    }
    assert [n.node for n in load(runtime).ussd] == ["main", "products", "ask_name", "lamp"]
    assert load(runtime).inbound.ussd_sessions == 4  # the unanswered one has no path


def test_closed_days_are_counted_once_then_read_from_redis(runtime: Runtime, webhooks: Webhooks):
    inbound_messages(runtime, webhooks, ["late"], days_ago=2)
    inbound_messages(runtime, webhooks, ["great"])
    win = stats.window(7)
    two_days_ago = win.today - timedelta(days=2)
    assert load(runtime, 7).inbound.trend[-3].negative == 1
    key = f"{stats.CACHE_PREFIX}:inbound:{two_days_ago.isoformat()}"
    assert json.loads(runtime.redis.get(key)) == {"sms": {"negative": 1}}
    assert 0 < runtime.redis.ttl(key) <= stats.OLD_TTL + stats.TTL_SPREAD
    yesterday = f"{stats.CACHE_PREFIX}:inbound:{(win.today - timedelta(days=1)).isoformat()}"
    assert json.loads(runtime.redis.get(yesterday)) == {}
    assert runtime.redis.ttl(yesterday) <= stats.RECENT_TTL
    assert runtime.redis.get(f"{stats.CACHE_PREFIX}:inbound:{win.today.isoformat()}") is None

    # The cached day is what the page shows (a figure stored there is read back)...
    runtime.redis.set(key, json.dumps({"sms": {"negative": 5, "positive": 1}}))
    figures = load(runtime, 7).inbound
    assert (figures.trend[-3].negative, figures.trend[-3].positive) == (5, 1)
    # ...while today is always counted.
    inbound_messages(runtime, webhooks, ["great again"])
    assert load(runtime, 7).inbound.trend[-1].positive == 2


def test_the_worker_sweeper_fills_the_cache_once_a_minute(runtime: Runtime, webhooks: Webhooks):
    from workers.worker import sweep_once

    inbound_messages(runtime, webhooks, ["late"], days_ago=40)
    win = stats.window(90)
    day = win.today - timedelta(days=40)
    key = f"{stats.CACHE_PREFIX}:inbound:{day.isoformat()}"
    assert runtime.redis.get(key) is None
    sweep_once(runtime)  # what every worker runs every 10 s
    assert json.loads(runtime.redis.get(key)) == {"sms": {"negative": 1}}
    ussd_days = runtime.redis.keys(f"{stats.CACHE_PREFIX}:ussd:*")
    assert len(ussd_days) == len(win.dates) - 1  # every closed day of the longest range
    with runtime.session() as session:
        assert stats.warm(session, runtime.redis) is False  # another ran it this minute


def test_without_redis_every_day_is_counted(runtime: Runtime, webhooks: Webhooks):
    inbound_messages(runtime, webhooks, ["late"], days_ago=3)
    with runtime.session() as session:
        figures = stats.load(session, stats.window(7), store=None, menu=runtime.menu)
    assert figures.inbound.trend[-4].negative == 1


def test_missing_days_are_counted_in_few_queries():
    days = [date(2024, 6, d) for d in (1, 2, 3, 5, 9, 10)]
    assert stats._runs(days) == [
        (date(2024, 6, 1), date(2024, 6, 3)),
        (date(2024, 6, 5), date(2024, 6, 5)),
        (date(2024, 6, 9), date(2024, 6, 10)),
    ]
    scattered = [date(2024, 6, d) for d in (1, 3, 5, 7, 9)]
    assert stats._runs(scattered) == [(date(2024, 6, 1), date(2024, 6, 9))]


def test_only_the_offered_ranges_are_accepted():
    with pytest.raises(stats.RangeError):
        stats.window(14)
    win = stats.window(7)
    assert win.start.time().isoformat() == "00:00:00" and len(win.dates) == 7
    assert win.dates[-1] == win.today
