"""The data bench/web.py measures the pages on: bench/scoring.py's seed (100k contacts, 1M
interactions over 90 days with the model's sentiment, conversations, deals, score events, reps
and an admin, by COPY), plus what the pages show and that seed lacks:

- a marketer, and a few browser sessions per user started with ``crm.web.sessions.start``;
- the 40 campaigns the seeded contacts and deals point at (done, with their segments);
- USSD sessions with the metadata ``crm/ussd.py`` writes (the path through the shipped menu,
  inputs, captured values, hops, how it ended), so the dashboard's drop-off has data: the
  seeded USSD interactions are rewritten from walks of the real menu;
- handoffs: a few hundred open ones (half past their deadline, half not yet), their contacts
  and threads assigned to the rep, and some thousands of finished ones over 90 days (touched in
  time or late, escalated, rejected) for speed-to-lead and SLA adherence;
- one contact with exactly 5,000 timeline entries across channels (SMS and WhatsApp both ways,
  calls with their menu path and recordings, voicemails, USSD sessions, notes, system events,
  campaign messages with delivery status), its score events and deals, a WhatsApp thread
  assigned to the bench rep (unread, inside the 24 h window) and an open handoff.

A seed is kept between runs and rebuilt only when the sizes, the schema (Alembic revision) or
``WEB_SEED_VERSION`` changed. Each run shifts the open handoffs' deadlines by the seed's age, so
"due soon" and "overdue" mean what they meant when it was built.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from time import perf_counter
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bench import scoring
from bench.own_database import conninfo
from bot.menu import Menu, load_menu
from bot.menu_walk import ussd_screen, walk
from crm.db import session_scope
from crm.handoffs import REJECT_REASONS
from crm.models import (
    Campaign,
    ChannelConsent,
    Contact,
    Conversation,
    Deal,
    Handoff,
    Identity,
    Interaction,
    Role,
    ScoreEvent,
    Segment,
    User,
)
from crm.models.base import utcnow
from crm.scoring import load_rules
from crm.users import create_user
from crm.ussd import ABANDONED, COMPLETED, FAILED, summary
from crm.web import sessions

# Bump when what this module adds changes: the next run rebuilds the seed.
WEB_SEED_VERSION = "1"
PASSWORD = scoring.PASSWORD
REP_EMAIL = "rep1@bench.example"  # the bench rep (bench/scoring.py's first rep)
ADMIN_EMAIL = "admin@bench.example"
MARKETER_EMAIL = "marketer@bench.example"
SEED_USER_AGENT = "bench seed"
SESSIONS_PER_USER = 20
CAMPAIGNS = 40  # the campaign ids bench/scoring.py's contacts and deals point at
TIMELINE_ENTRIES = 5_000
OPEN_HANDOFFS = 300
PAST_HANDOFFS = 4_000
SERVICE_CODE = "*384*123#"
PHONE = "+233209990001"  # the 5,000-entry contact (the seed's numbers are +2332000xxxxx)
BUSINESS = "+233302000000"
DAY = 86400.0
# The 5,000 entries by kind; the newest one is an inbound WhatsApp message.
TIMELINE_MIX = (
    ("sms_in", 850),
    ("sms_out", 750),
    ("whatsapp_in", 900),
    ("whatsapp_out", 800),
    ("call", 300),
    ("voicemail", 50),
    ("ussd", 250),
    ("note", 300),
    ("system", 450),
    ("campaign", 350),
)
# USSD sessions: inputs typed, by weight; a walk that does not reach an end node was abandoned.
USSD_WALKS = (
    ((), 10),
    (("1",), 12),
    (("1", "1"), 8),
    (("1", "2"), 7),
    (("1", "3"), 5),
    (("1", "4"), 6),
    (("1", "5"), 4),
    (("1", "6"), 6),
    (("1", "9"), 2),
    (("2",), 8),
    (("3",), 4),
    (("3", "Ama Mensah"), 3),
    (("3", "Ama Mensah", "5"), 5),
    (("3", "Ama Mensah", "five"), 1),
    (("4",), 9),
    (("5",), 3),
    (("6",), 3),
    (("6", "Please call me about the fridge"), 3),
    (("7",), 1),
)
NOTES = (
    "Called back, wants delivery on Friday.",
    "Asked for the pay-as-you-go terms in writing.",
    "Prefers WhatsApp after 5 pm.",
    "Neighbour also interested, follow up.",
    "Sent the catalogue by hand at the market.",
)
REPLIES = (
    "Hi Abena, the home kit is GHS 1,200 or GHS 12 a day.",
    "Yes, we deliver to Kumasi on Fridays.",
    "Your payment was received, thank you!",
    "I have booked the installer for Tuesday morning.",
)
INTENTS = ("pricing", "purchase", "support", "other", "complaint", "human")
SIGNALS = ("human_request", "callback_request", "sentiment_negative", "sentiment_recovered")


@dataclass(frozen=True)
class WebSeed:
    """What the measurements need from the seed."""

    contact_id: int  # the 5,000-entry contact
    conversation_id: int  # its WhatsApp thread, assigned to the bench rep
    seconds: float = 0.0  # how long seeding took (0: reused)


def weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    return scoring.weighted(rng, choices)


# --- USSD sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class UssdSession:
    """One way through the menu, as crm/ussd.py records it (times added per row)."""

    body: str
    status: str
    meta: dict[str, Any]
    duration_ms: int


def ussd_sessions(menu: Menu) -> list[UssdSession]:
    """Each walk of USSD_WALKS through the real menu, weighted by repetition."""
    found = []
    for n, (inputs, weight) in enumerate(USSD_WALKS):
        result = walk(menu, list(inputs))
        screen, end = ussd_screen(menu, result, {})
        if end:
            status, ended, gateway = COMPLETED, "menu_end", None
        else:  # the customer walked away: the gateway reported it, or the sweeper did
            status = FAILED if n % 7 == 0 else ABANDONED
            ended, gateway = ("gateway", "incomplete") if n % 2 else (None, None)
        meta = {
            "service_code": SERVICE_CODE,
            "network_code": "62001",
            "path": list(result.path),
            "inputs": list(inputs),
            "captured": {c.attribute: c.value for c in result.captured},
            "free_text": [c.value for c in result.captured if c.validator == "text"],
            "hops": len(inputs) + 1,
            "last_screen": screen,
            "last_error": result.error,
            "ended": ended,
        }
        if gateway:
            meta["gateway_status"] = gateway
        duration = 4_000 + 9_000 * len(inputs)
        found += [UssdSession(summary(SERVICE_CODE, result.path), status, meta, duration)] * weight
    return found


def rewrite_ussd(conn: psycopg.Connection, menu: Menu) -> int:
    """Give the seeded USSD interactions real session metadata, body and end status: row ``id``
    takes walk ``id mod n``, its times from the row's ``created_at``."""
    variants = ussd_sessions(menu)
    rows = [
        {"k": k, "body": v.body, "status": v.status, "meta": v.meta, "ms": v.duration_ms}
        for k, v in enumerate(variants)
    ]
    iso = 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
    return conn.execute(
        "UPDATE interactions i SET body = v.body, delivery_status = v.status, address = %(code)s, "
        "metadata = v.meta || jsonb_build_object("
        "  'started_at', to_char(i.created_at AT TIME ZONE 'UTC', %(iso)s),"
        "  'last_hop_at', to_char((i.created_at + v.ms * interval '1 millisecond') "
        "AT TIME ZONE 'UTC', %(iso)s),"
        "  'duration_ms', v.ms) "
        "FROM jsonb_to_recordset(%(rows)s) AS v(k int, body text, status text, meta jsonb, ms int) "
        "WHERE i.channel = 'ussd' AND mod(i.id, %(n)s) = v.k",
        {"code": SERVICE_CODE, "iso": iso, "rows": Jsonb(rows), "n": len(rows)},
    ).rowcount


# --- users, campaigns ---------------------------------------------------------------------


def users_and_campaigns(factory: sessionmaker[Session], now: datetime) -> tuple[int, int]:
    """The marketer, browser sessions for everyone, and the campaigns with their segments;
    (bench rep id, marketer id)."""
    rng = random.Random(scoring.SEED + 7)
    with session_scope(factory) as session:
        marketer = create_user(
            session=session,
            email=MARKETER_EMAIL,
            role=Role.MARKETER.value,
            password=PASSWORD,
            name="Bench Marketer",
        )
        session.flush()
        for user in session.scalars(select(User).order_by(User.id)).all():
            for _ in range(SESSIONS_PER_USER):
                sessions.start(session, user, hours=12, user_agent=SEED_USER_AGENT)
        rep = session.scalars(select(User).where(User.email == REP_EMAIL)).one()
        segments = [
            Segment(name=name, filters=filters, created_by=marketer.id, created_at=now)
            for name, filters in (
                ("Hot leads", {"stages": ["mql", "sql"], "score_min": 40}),
                ("Customers", {"stages": ["customer"]}),
                ("VIP", {"tags": ["vip"]}),
                ("Farmers in Kumasi", {"tags": ["farmer", "kumasi"]}),
                ("Everyone on SMS", {"consent": {"sms": "opted_in"}}),
            )
        ]
        session.add_all(segments)
        session.flush()
        campaigns = []
        for i in range(1, CAMPAIGNS + 1):
            launched = now - timedelta(days=rng.uniform(1, 120))
            channel = "whatsapp" if i % 3 == 0 else "sms"
            recipients = rng.randint(2_000, 40_000)
            campaigns.append(
                {
                    "id": i,
                    "name": f"Campaign {i}: " + rng.choice(("Solar week", "Harvest", "Payday")),
                    "channel": channel,
                    "sender": "MG" + "e" * 32,
                    "segment_id": segments[i % len(segments)].id,
                    "variants": [{"name": "A", "body": "Hi {{ first_name }}!", "weight": 100}],
                    "status": "done",
                    "quiet_start": "20:00",
                    "quiet_end": "08:00",
                    "created_by": marketer.id,
                    "created_at": launched - timedelta(days=1),
                    "updated_at": launched + timedelta(hours=2),
                    "summary": {"recipients": recipients, "excluded": {"opted_out": 120}},
                    "launched_at": launched,
                    "finished_at": launched + timedelta(hours=2),
                }
            )
        session.execute(insert(Campaign), campaigns)
        session.connection().exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('campaigns', 'id'), "
            "(SELECT max(id) FROM campaigns))"
        )
        return rep.id, marketer.id


# --- handoffs -----------------------------------------------------------------------------


def handoffs(
    conn: psycopg.Connection,
    rng: random.Random,
    reps: list[int],
    now: float,
    contacts: int,
    skip: int,
) -> int:
    """Open handoffs for contacts with an open thread (half overdue), the contacts and threads
    assigned to the rep as routing does; finished ones over 90 days, by COPY. Contact ``skip``
    has its own."""
    candidates = [
        contact
        for (contact,) in conn.execute(
            "SELECT DISTINCT contact_id FROM conversations WHERE status = 'open' "
            "AND contact_id <> %s ORDER BY contact_id",
            (skip,),
        )
    ]
    chosen = rng.sample(candidates, min(OPEN_HANDOFFS, len(candidates)))
    lines, assigned = [], []
    for k, contact in enumerate(chosen):
        rep = reps[k % len(reps)]
        due = now - rng.uniform(60, 6 * 3600) if k % 2 else now + rng.uniform(60, 15 * 60)
        reason = weighted(rng, (("mql", 6), ("human_request", 3), ("callback_request", 2)))
        lines.append(
            scoring.row(
                contact,
                rep,
                reason,
                f"score {rng.randint(50, 90)}: asked about prices; wants to buy",
                "open",
                None,
                scoring.ts(due - 15 * 60),
                scoring.ts(due),
                None,
                None,
                None,
            )
        )
        assigned.append((contact, rep))
    for _ in range(PAST_HANDOFFS):
        created = now - rng.uniform(1, 90) * DAY
        due = created + 15 * 60
        outcome = weighted(rng, (("done", 70), ("escalated", 15), ("rejected", 10), ("late", 5)))
        touch = None
        if outcome == "done":
            touch = created + rng.uniform(20, 14 * 60)
        elif outcome == "late":
            touch = created + rng.uniform(15 * 60, 3 * 3600)
        lines.append(
            scoring.row(
                rng.randint(1, contacts),
                rng.choice(reps),
                weighted(rng, (("mql", 6), ("human_request", 3), ("callback_request", 2))),
                "score 55: asked about prices",
                {"late": "done"}.get(outcome, outcome),
                None,
                scoring.ts(created),
                scoring.ts(due),
                scoring.ts(touch) if touch else None,
                int(touch - created) if touch else None,
                rng.choice(REJECT_REASONS) if outcome == "rejected" else None,
            )
        )
    count = scoring.copy_rows(
        conn,
        "handoffs",
        "contact_id, rep_id, reason, summary, status, source_interaction_id, created_at, "
        "due_at, first_touch_at, speed_to_lead_s, reject_reason",
        iter(lines),
    )
    pairs = Jsonb([{"contact": c, "rep": r} for c, r in assigned])
    conn.execute(
        "UPDATE contacts c SET owner_id = p.rep FROM jsonb_to_recordset(%s) AS p(contact int, "
        "rep int) WHERE c.id = p.contact",
        (pairs,),
    )
    conn.execute(
        "UPDATE conversations c SET assignee_id = p.rep FROM jsonb_to_recordset(%s) AS "
        "p(contact int, rep int) WHERE c.contact_id = p.contact",
        (pairs,),
    )
    return count


# --- the 5,000-entry contact ----------------------------------------------------------------


def timeline_entry(
    rng: random.Random,
    kind: str,
    n: int,
    at: datetime,
    rep: int,
    menu: Menu,
    ussd: list[UssdSession],
) -> dict[str, Any]:
    """One interaction of the long timeline (attribute names of ``Interaction``)."""
    entry: dict[str, Any] = {
        "channel": kind.split("_")[0],
        "direction": "inbound",
        "body": "",
        "provider": "twilio",
        "provider_message_id": f"SMweb{n:06d}",
        "address": BUSINESS,
        "delivery_status": "received",
        "error_code": None,
        "meta": {},
        "author_id": None,
        "created_at": at,
        "enriched_at": None,
        "sentiment": None,
        "sentiment_score": None,
        "intent": None,
        "intent_confidence": None,
        "model_version": None,
    }
    if kind in ("sms_in", "whatsapp_in"):
        score = round(rng.uniform(-1, 1), 3)
        entry.update(
            body=rng.choice(scoring.INBOUND),
            enriched_at=at + timedelta(seconds=2),
            sentiment="negative" if score < -0.3 else "positive" if score > 0.3 else "neutral",
            sentiment_score=score,
            intent=rng.choice(INTENTS),
            intent_confidence=round(rng.uniform(0.5, 0.99), 2),
            model_version="bench",
        )
    elif kind in ("sms_out", "whatsapp_out"):
        status = weighted(rng, (("delivered", 70), ("read", 20), ("sent", 6), ("failed", 4)))
        by_rep = rng.random() < 0.6
        entry.update(
            direction="outbound",
            body=rng.choice(REPLIES if by_rep else scoring.OUTBOUND),
            delivery_status=status,
            error_code="30007" if status == "failed" else None,
            author_id=rep if by_rep else None,
            meta={"to": PHONE} if by_rep else {"event": "bot_reply", "in_reply_to": None},
        )
    elif kind == "call":
        inputs = rng.choice((["1"], ["1", "2"], ["4"], ["2"], []))
        path = list(walk(menu, inputs).path)
        missed = rng.random() < 0.2
        seconds = 0 if missed else rng.randint(20, 600)
        meta: dict[str, Any] = {
            "from": PHONE,
            "caller_name": "Abena Benchmark",
            "path": path,
            "inputs": inputs,
            "missed": missed,
            "duration_s": seconds,
        }
        if not missed and rng.random() < 0.5:
            meta["recording_url"] = f"https://api.twilio.com/recordings/REweb{n:06d}"
            meta["transcript"] = "Hello, I am calling about the solar kit delivery."
        status = "no-answer" if missed else "completed"
        body = f"Call from {PHONE} ({status}, {seconds} s)" + (" | missed" if missed else "")
        if len(path) > 1:
            body += " | menu: " + " > ".join(path)
        entry.update(
            channel="voice",
            provider_message_id=f"CAweb{n:06d}",
            delivery_status=status,
            meta=meta,
            body=body,
        )
    elif kind == "voicemail":
        entry.update(
            channel="voice",
            provider="twilio-voicemail",
            provider_message_id=f"CAwebvm{n:06d}",
            delivery_status=None,
            body="Please call me back about the fridge, I want to pay the deposit.",
            meta={
                "event": "voicemail",
                "call_interaction_id": None,
                "recording_url": f"https://api.twilio.com/recordings/REvm{n:06d}",
                "transcript": "Please call me back about the fridge, I want to pay the deposit.",
            },
        )
    elif kind == "ussd":
        session = rng.choice(ussd)
        entry.update(
            provider="africastalking",
            provider_message_id=f"ATUid_web{n:06d}",
            address=SERVICE_CODE,
            delivery_status=session.status,
            body=session.body,
            meta={
                **session.meta,
                "started_at": at.isoformat(),
                "last_hop_at": (at + timedelta(milliseconds=session.duration_ms)).isoformat(),
                "duration_ms": session.duration_ms,
            },
        )
    elif kind == "note":
        entry.update(
            direction="internal",
            provider=None,
            provider_message_id=None,
            address=None,
            delivery_status=None,
            author_id=rep,
            body=rng.choice(NOTES),
        )
    elif kind == "system":
        entry.update(direction="internal", address=None, delivery_status=None)
        entry.update(system_event(rng, n, rep))
    elif kind == "campaign":
        campaign = rng.randint(1, CAMPAIGNS)
        status = weighted(rng, (("delivered", 80), ("read", 10), ("failed", 5), ("sent", 5)))
        entry.update(
            channel="whatsapp" if campaign % 3 == 0 else "sms",
            direction="outbound",
            body=f"Hi Abena! Campaign {campaign}: this week only, 10% off solar kits.",
            delivery_status=status,
            error_code="30003" if status == "failed" else None,
            meta={"to": PHONE, "campaign_id": campaign, "variant": "A"},
        )
    return entry


def system_event(rng: random.Random, n: int, rep: int) -> dict[str, Any]:
    """A signal, lifecycle, handoff, deal or consent entry, as the services write them."""
    event = rng.choice(("signal", "signal", "lifecycle", "handoff", "deal", "consent"))
    if event == "signal":
        kind = rng.choice(SIGNALS)
        return {
            "provider": "signal",
            "provider_message_id": f"{kind}:web{n}",
            "body": f"{kind.replace('_', ' ').capitalize()}: How much is the solar lamp?",
            "meta": {
                "event": "signal",
                "signal": kind,
                "source_channel": "whatsapp",
                "source_interaction_id": None,
                "intent": "human",
                "sentiment": "negative",
            },
        }
    common = {"provider": None, "provider_message_id": None}
    if event == "lifecycle":
        a, b = rng.choice((("lead", "mql"), ("mql", "sql"), ("sql", "opportunity")))
        return {
            **common,
            "body": f"Lifecycle {a} -> {b} by score",
            "meta": {"event": "lifecycle", "from": a, "to": b, "actor": "score"},
        }
    if event == "handoff":
        return {
            **common,
            "body": "Handed to Rep 1 (mql), due in 15 min",
            "meta": {"event": "handoff", "handoff_id": None, "rep_id": rep},
        }
    if event == "deal":
        return {
            **common,
            "body": "Deal moved to negotiation",
            "meta": {"event": "deal", "deal_id": None, "actor": "rep1", "stage": "negotiation"},
        }
    return {
        **common,
        "body": "WhatsApp consent: opted_in (keyword)",
        "meta": {"event": "consent", "channel": "whatsapp", "status": "opted_in", "source": "kw"},
    }


def long_timeline(
    factory: sessionmaker[Session], rep: int, menu: Menu, now: datetime
) -> tuple[int, int]:
    """The contact with 5,000 timeline entries and everything around it; (contact id,
    WhatsApp conversation id)."""
    rng = random.Random(scoring.SEED + 5)
    kinds = [kind for kind, count in TIMELINE_MIX for _ in range(count)]
    kinds.remove("whatsapp_in")
    rng.shuffle(kinds)
    kinds.append("whatsapp_in")  # the newest: unread, inside the WhatsApp 24 h window
    assert len(kinds) == TIMELINE_ENTRIES
    moments = sorted(now - timedelta(seconds=rng.random() * 90 * DAY) for _ in kinds[:-1])
    moments.append(now - timedelta(minutes=20))
    ussd = ussd_sessions(menu)
    with session_scope(factory) as session:
        contact = Contact(
            name="Abena Benchmark",
            email="abena@bench.example",
            lifecycle_stage="opportunity",
            score=72,
            score_points=62.0,
            score_at=now,
            fit_points=10.0,
            owner_id=rep,
            first_touch_channel="whatsapp",
            first_touch_campaign_id=3,
            last_touch_channel="whatsapp",
            last_touch_at=moments[-1],
            attributes={"source": "seed", "household_size": "5", "last_order": "Home kit"},
            sentiment="positive",
            sentiment_score=0.42,
            sentiment_at=moments[-1],
            last_intent="purchase",
            last_intent_at=moments[-1],
            created_at=moments[0] - timedelta(days=1),
            updated_at=now,
        )
        session.add(contact)
        session.flush()
        session.add(Identity(contact_id=contact.id, kind="phone", value=PHONE))
        for channel in ("sms", "whatsapp"):
            session.add(
                ChannelConsent(
                    contact_id=contact.id,
                    channel=channel,
                    status="opted_in",
                    source="seed",
                    changed_at=moments[0],
                )
            )
        entries = [
            {"contact_id": contact.id, **timeline_entry(rng, kind, n, at, rep, menu, ussd)}
            for n, (kind, at) in enumerate(zip(kinds, moments, strict=True))
        ]
        session.execute(insert(Interaction), entries)

        def last(channel: str, direction: str) -> datetime:
            return max(
                e["created_at"]
                for e in entries
                if e["channel"] == channel and e["direction"] == direction
            )

        thread = Conversation(
            contact_id=contact.id,
            channel="whatsapp",
            assignee_id=rep,
            status="open",
            last_inbound_at=last("whatsapp", "inbound"),
            last_outbound_at=last("whatsapp", "outbound"),
            last_read_at=now - timedelta(hours=2),
            created_at=moments[0],
            updated_at=moments[-1],
        )
        session.add(thread)
        session.add(
            Conversation(
                contact_id=contact.id,
                channel="sms",
                assignee_id=rep,
                status="closed",
                last_inbound_at=last("sms", "inbound"),
                last_outbound_at=last("sms", "outbound"),
                last_read_at=last("sms", "inbound"),
                created_at=moments[0],
                updated_at=last("sms", "outbound"),
            )
        )
        rules = load_rules().rules
        names = sorted(rules)
        session.execute(
            insert(ScoreEvent),
            [
                {
                    "contact_id": contact.id,
                    "rule": (rule := names[k % len(names)]),
                    "points": rules[rule].points,
                    "reason": rules[rule].reason,
                    "channel": "whatsapp",
                    "source": f"seed-web:{k}",
                    "occurred_at": now - timedelta(hours=k * 5),
                }
                for k in range(60)
            ],
        )
        for title, stage, amount, closed in (
            ("Home kit", "won", Decimal("1200.00"), now - timedelta(days=40)),
            ("Shop fridge", "negotiation", Decimal("6500.00"), None),
        ):
            session.add(
                Deal(
                    contact_id=contact.id,
                    title=title,
                    stage=stage,
                    amount=amount,
                    currency="GHS",
                    owner_id=rep,
                    first_touch_channel="whatsapp",
                    first_touch_campaign_id=3,
                    last_touch_channel="whatsapp",
                    created_at=now - timedelta(days=60),
                    updated_at=closed or now,
                    closed_at=closed,
                )
            )
        session.add(
            Handoff(
                contact_id=contact.id,
                rep_id=rep,
                reason="mql",
                summary="score 72: asked about the fridge price; wants to buy",
                status="open",
                created_at=now - timedelta(minutes=5),
                due_at=now + timedelta(minutes=10),
            )
        )
        session.flush()
        return contact.id, thread.id


# --- seed, reuse --------------------------------------------------------------------------


def seed(url: str, factory: sessionmaker[Session], contacts: int, interactions: int) -> WebSeed:
    """bench/scoring.py's seed, then this module's additions; their keys in bench_seed.meta."""
    start = perf_counter()
    base = scoring.seed(url, factory, contacts, interactions)
    print(f"  scoring seed:            {base.seconds:6.1f} s")
    now = utcnow()
    menu = load_menu()
    rep, _marketer = users_and_campaigns(factory, now)
    contact_id, conversation_id = long_timeline(factory, rep, menu, now)
    print(f"  users, campaigns, 5,000-entry timeline: {perf_counter() - start:6.1f} s")
    with psycopg.connect(conninfo(url)) as conn:
        reps = [r for (r,) in conn.execute("SELECT id FROM users WHERE role = 'rep' ORDER BY id")]
        rng = random.Random(scoring.SEED + 3)
        handoff_rows = handoffs(conn, rng, reps, now.timestamp(), contacts, contact_id)
        ussd_rows = rewrite_ussd(conn, menu)
        last_read = conn.execute(
            "SELECT last_read_at FROM conversations WHERE id = %s", (conversation_id,)
        ).fetchone()[0]
        meta = {
            "web:version": WEB_SEED_VERSION,
            "web:contact_id": contact_id,
            "web:conversation_id": conversation_id,
            "web:last_read_at": last_read.isoformat(),
            "web:clock": now.timestamp(),
        }
        conn.cursor().executemany(
            "INSERT INTO bench_seed.meta VALUES (%s, %s)", [(k, str(v)) for k, v in meta.items()]
        )
        conn.commit()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            "VACUUM (ANALYZE) interactions, handoffs, contacts, conversations, campaigns, "
            "segments, users, web_sessions, score_events, deals"
        )
    print(
        f"  web additions: {handoff_rows:,} handoffs, {ussd_rows:,} USSD sessions rewritten, "
        f"{TIMELINE_ENTRIES:,}-entry timeline (contact {contact_id})"
    )
    return WebSeed(contact_id, conversation_id, perf_counter() - start)


def refresh(url: str, meta: dict[str, str]) -> None:
    """Make a kept seed look as it did when built: open handoffs' times shifted by its age,
    the measured thread's state put back, browser sessions of earlier runs removed."""
    now = utcnow()
    shift = timedelta(seconds=now.timestamp() - float(meta["web:clock"]))
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        moved = conn.execute(
            "UPDATE handoffs SET created_at = created_at + %s, due_at = due_at + %s "
            "WHERE status = 'open'",
            (shift, shift),
        ).rowcount
        conn.execute(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, "
            "last_read_at = %s, assignee_id = (SELECT id FROM users WHERE email = %s) "
            "WHERE id = %s",
            (
                datetime.fromisoformat(meta["web:last_read_at"]),  # before its last message
                REP_EMAIL,
                int(meta["web:conversation_id"]),
            ),
        )
        gone = conn.execute(
            "DELETE FROM web_sessions WHERE user_agent <> %s", (SEED_USER_AGENT,)
        ).rowcount
        conn.execute(
            "UPDATE bench_seed.meta SET value = %s WHERE key = 'web:clock'",
            (str(now.timestamp()),),
        )
    print(
        f"refreshed the seed: {moved} open handoffs shifted by {shift}, "
        f"{gone} browser sessions of earlier runs removed"
    )


def load(
    url: str, factory: sessionmaker[Session], contacts: int, interactions: int, reseed: bool
) -> WebSeed:
    """The seed: reused when it matches the sizes, the schema and WEB_SEED_VERSION."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        meta = scoring.seed_meta(conn)
        wanted = {
            "contacts": str(contacts),
            "interactions": str(interactions),
            "schema": scoring.schema_version(conn),
            "web:version": WEB_SEED_VERSION,
        }
    stale = [key for key, value in wanted.items() if meta.get(key) != value]
    if reseed or stale:
        why = "--reseed" if reseed else "no seed" if not meta else "changed: " + ", ".join(stale)
        print(f"seeding {contacts:,} contacts, {interactions:,} interactions ({why}) ...")
        built = seed(url, factory, contacts, interactions)
        print(f"seeded in {built.seconds:.1f} s")
        return built
    age = (utcnow().timestamp() - float(meta["seeded_at"])) / DAY
    print(
        f"reusing the seed ({contacts:,} contacts, {interactions:,} interactions, "
        f"{age:.1f} days old; --reseed to rebuild)"
    )
    refresh(url, meta)
    return WebSeed(int(meta["web:contact_id"]), int(meta["web:conversation_id"]))
