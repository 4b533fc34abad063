"""Benchmark lead scoring at scale: a new signal on a contact, the handoff it triggers, and the
revenue report, in PostgreSQL seeded with 100k contacts and 1M interactions.

1. seed (skipped when the database holds it already): contacts with a phone identity, tags,
   consents and conversations, interactions over the last 90 days (already enriched), score
   events, reps, and deals (a quarter of them won over the last 90 days), by COPY.
2. signal: for each of ``--signals`` random contacts a new inbound SMS is stored (not timed),
   then ``crm.enrichment.enrich`` of that one interaction is timed in its own transaction,
   commit included: signals, score events, score, MQL promotion and the ``handoff`` outbox job.
   ``classify`` is a fixed stand-in (pricing/purchase intent, positive/negative sentiment): the
   model is benchmarked in bench/intelligence.py. Each new MQL's handoff job (``route_lead`` and
   marking its outbox row done, as the worker does) is timed right after, on its own.
3. baseline, interleaved with 2: a transaction that reads a contact by primary key and updates
   its ``updated_at``, the floor any per-signal work pays.
4. revenue report by first-touch channel and campaign over the last 90 days, against
   ``SELECT count(*) FROM deals``; the contacts list (MQLs scoring 40+, a page of 50) for
   information.

The bench uses its own database, ``crm_bench_scoring``, on the server of DATABASE_URL (else the
local ``test`` database's server), created and migrated if missing, and Redis db 13 (or
SCORING_REDIS_URL), flushed before and after. What a run adds is removed at the start of the
next one, so runs start from the same seed. Run from the repository root:

    python -m bench.scoring --contacts 100000 --interactions 1000000 --signals 2000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import psycopg
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from bench.own_database import conninfo, create_database, own_database_url
from bench.webhooks import bench_redis
from crm import outbox
from crm.contact_search import ContactFilters, list_contacts
from crm.db import make_engine, make_session_factory, session_scope
from crm.enrichment import Classify, enrich
from crm.migrate import upgrade
from crm.models import Contact, Deal, Interaction, Role, User
from crm.models.base import utcnow
from crm.reports import revenue
from crm.routing import MQL, Trigger, route_lead
from crm.scoring import decayed, load_rules
from crm.users import create_user
from intelligence.signals import Signals

DB_NAME = "crm_bench_scoring"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
SEED = 20240601
DAY = 86400.0
WINDOW_DAYS = 90
CHUNK = 50_000  # rows per COPY write
REPS = 5
PASSWORD = "bench-password-123"  # a throwaway bench user
TARGET_SIGNAL_P99_MS = 20.0
TARGET_REPORT_MS = 500.0
REPORT_RUNS = 20
LIST_RUNS = 50
MODEL_VERSION = "bench-fixed"
# Tables a run appends to; rows past the seed's last id are deleted before the next run.
APPENDED = (
    "interactions",
    "score_events",
    "outbox_jobs",
    "handoffs",
    "notifications",
    "conversations",
)
# Tables a run updates: their rows are put back as seeded (those whose updated_at moved).
SNAPSHOT = ("contacts", "conversations")
TABLES = (
    "notifications",
    "handoffs",
    "outbox_jobs",
    "score_events",
    "deals",
    "conversations",
    "interactions",
    "channel_consents",
    "contact_tags",
    "identities",
    "contacts",
    "api_tokens",
    "users",
)

CHANNELS = ("sms", "whatsapp", "ussd", "voice")
CURRENCIES = (("GHS", 50), ("NGN", 20), ("KES", 15), ("USD", 15))
TAGS = ("vip", "newsletter", "farmer", "retail", "wholesale", "accra", "kumasi", "promo-q2")
FIRST = ("Ama", "Kwame", "Akosua", "Kofi", "Abena", "Yaw", "Efua", "Kojo", "Adwoa", "Kwesi")
LAST = ("Mensah", "Owusu", "Boateng", "Asante", "Osei", "Agyeman", "Appiah", "Darko")
INBOUND = (
    "How much is the solar lamp?",
    "Is the 50kg bag of fertiliser in stock",
    "Thanks, received",
    "When will my order arrive?",
    "I want to buy two more",
    "The delivery was late again",
)
OUTBOUND = (
    "Your order is on its way",
    "Hi! Our prices this week: see the catalogue",
    "Thank you for your payment",
)
# Channels of the seeded interactions, by weight (USSD sessions are all inbound).
INBOUND_MIX = (("sms", 8), ("whatsapp", 7), ("ussd", 3), ("voice", 2))
OUTBOUND_MIX = (("sms", 8), ("whatsapp", 7), ("voice", 2))
SIGNAL_BODIES = (
    "How much is the 20W solar kit?",
    "I want to buy the fridge, can you deliver Friday?",
    "Please send me the price list",
    "Ready to order, how do I pay",
)
# The fixed classifier's answers, in turn: some contacts cross the MQL threshold (50 points).
PATTERN = (
    Signals("positive", 0.8, "pricing", 0.92, MODEL_VERSION),
    Signals("negative", -0.7, "purchase", 0.88, MODEL_VERSION),
    Signals("positive", 0.75, "purchase", 0.9, MODEL_VERSION),
    Signals("negative", -0.6, "pricing", 0.85, MODEL_VERSION),
)
# Seeded score events: rules of one warm contact's recent message.
MESSAGE_RULES = (
    (("replied", "intent_pricing"), 40),
    (("replied", "intent_purchase", "sentiment_positive"), 25),
    (("replied", "intent_pricing", "sentiment_positive"), 20),
    (("replied", "call_answered"), 10),
    (("replied", "intent_complaint"), 5),
)


@dataclass
class Sample:
    """Latencies (s) of one measured operation."""

    latencies: list[float] = field(default_factory=list)

    def ms(self, q: float) -> float:
        """The ``q`` quantile in milliseconds (nearest rank); 1.0 is the max."""
        ordered = sorted(self.latencies) or [0.0]
        return ordered[round(q * (len(ordered) - 1))] * 1000

    @property
    def rate(self) -> float:
        """Operations per second, back to back on one connection."""
        total = sum(self.latencies)
        return len(self.latencies) / total if total else 0.0

    def line(self, name: str) -> str:
        return (
            f"{name:<22} n={len(self.latencies):<5} p50 {self.ms(0.5):7.2f} ms  "
            f"p99 {self.ms(0.99):7.2f} ms  max {self.ms(1.0):7.2f} ms  {self.rate:7.1f}/s"
        )


@dataclass
class Seeded:
    """The rows the seed holds (its ids), and what it took."""

    contacts: int
    interactions: int
    admin: int
    seconds: float = 0.0


# --- database -----------------------------------------------------------------------------


def bench_database_url() -> str:
    return own_database_url(DB_NAME)


def ensure_database(url: str) -> None:
    """Create the bench database when missing, and bring its schema up to date."""
    create_database(DB_NAME)
    upgrade(url)


_DAYS: dict[int, str] = {}
_SECONDS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def ts(epoch: float) -> str:
    """COPY text of a UTC timestamp, to the second (formatting a datetime costs more)."""
    day, second = divmod(int(epoch), int(DAY))
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = datetime.fromtimestamp(day * DAY, UTC).date().isoformat()
    return f"{date} {_SECONDS[second]}+00"


def row(*values: object) -> str:
    """One line of COPY text: tab separated, ``\\N`` for None (values never hold tabs)."""
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def copy_rows(conn: psycopg.Connection, table: str, columns: str, lines: Iterator[str]) -> int:
    """COPY ``lines`` into ``table`` in chunks; how many rows."""
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := list(itertools.islice(lines, CHUNK)):
            copy.write("".join(chunk))
            count += len(chunk)
    return count


def schema_version(conn: psycopg.Connection) -> str:
    """The Alembic revision the database is at: a seed from another schema is rebuilt."""
    found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(found[0]) if found else ""


def seed_meta(conn: psycopg.Connection) -> dict[str, str]:
    """What the seed in the database was built with; empty if there is none."""
    exists = conn.execute("SELECT to_regclass('bench_seed.meta')").fetchone()
    if exists is None or exists[0] is None:
        return {}
    return dict(conn.execute("SELECT key, value FROM bench_seed.meta").fetchall())


# --- seed ---------------------------------------------------------------------------------


def weighted(rng: random.Random, choices: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def create_users(factory: sessionmaker[Session]) -> tuple[list[int], int]:
    """Reps (with phones, any hours, no cap) and one admin for the contacts list."""
    with session_scope(factory) as session:
        reps = [
            create_user(
                session=session,
                email=f"rep{i}@bench.example",
                role=Role.REP.value,
                password=PASSWORD,
                name=f"Rep {i}",
                phone=f"+23320555{i:04d}",
            )
            for i in range(1, REPS + 1)
        ]
        admin = create_user(
            session=session, email="admin@bench.example", role=Role.ADMIN.value, password=PASSWORD
        )
        session.flush()
        return [rep.id for rep in reps], admin.id


@dataclass
class ContactPlan:
    """What the other tables need to know of each contact (index = id - 1)."""

    channel: list[str]
    campaign: list[int | None]
    owner: list[int | None]
    score: list[float]
    deal_stage: dict[int, str]


def plan_contacts(
    rng: random.Random, count: int, reps: list[int], now: float
) -> tuple[ContactPlan, list[str]]:
    """Each contact's attributes, and the score events (COPY lines) of the warm ones: one in
    nine wrote once or twice in the last four days, each message worth a few rules; their
    score is the events' sum decayed to ``now``. A fifth of the contacts have a deal."""
    rules = load_rules()
    plan = ContactPlan([], [], [], [], plan_deals(rng, count))
    events: list[str] = []
    warm = set(rng.sample(range(count), count // 9))
    message = 0
    for i in range(count):
        plan.channel.append(rng.choice(CHANNELS))
        attributed = i in plan.deal_stage or rng.random() < 0.6  # deals all have a campaign
        plan.campaign.append(rng.randint(1, 40) if attributed else None)
        plan.owner.append(rng.choice(reps) if rng.random() < 0.3 else None)
        points = 0.0
        if i in warm:
            for _ in range(rng.choice((1, 2, 2))):
                message += 1
                at = now - rng.random() * 4 * DAY
                channel = rng.choice(CHANNELS)
                for rule in weighted(rng, MESSAGE_RULES):
                    spec = rules.rules[rule]
                    when = datetime.fromtimestamp(at, UTC)
                    points += decayed(
                        spec.points, when, datetime.fromtimestamp(now, UTC), rules.half_life
                    )
                    events.append(
                        row(
                            i + 1,
                            rule,
                            spec.points,
                            spec.reason,
                            channel,
                            f"seed:{message}",
                            ts(at),
                        )
                    )
        plan.score.append(points)
    return plan, events


def plan_deals(rng: random.Random, contacts: int) -> dict[int, str]:
    """The stage of the deal of one contact in five (by index): a quarter won, 15% lost."""
    deals = contacts // 5
    stages = {}
    for k, i in enumerate(rng.sample(range(contacts), deals)):
        if k < deals // 4:
            stages[i] = "won"
        elif k < deals * 2 // 5:
            stages[i] = "lost"
        else:
            stages[i] = rng.choice(("qualified", "proposal", "negotiation"))
    return stages


def lifecycle_of(rng: random.Random, plan: ContactPlan, i: int) -> str:
    stage = plan.deal_stage.get(i)
    if stage == "won":
        return "customer"
    if stage in ("qualified", "proposal", "negotiation"):
        return "opportunity"
    if plan.score[i] >= 50:
        return "mql"
    if rng.random() < 0.03:
        return "sql"
    return "lead" if plan.score[i] > 0 or rng.random() < 0.3 else "subscriber"


def contact_lines(rng: random.Random, plan: ContactPlan, now: float) -> Iterator[str]:
    for i in range(len(plan.channel)):
        created = now - (WINDOW_DAYS + rng.random() * 90) * DAY
        sentiment_score = round(rng.uniform(-0.4, 0.7), 4)
        sentiment = (
            "negative"
            if sentiment_score <= -0.25
            else "positive"
            if sentiment_score >= 0.25
            else "neutral"
        )
        touched = now - rng.random() * 30 * DAY
        score = plan.score[i]
        yield row(
            i + 1,
            f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            lifecycle_of(rng, plan, i),
            round(score),
            score,
            ts(now) if score else None,
            plan.owner[i],
            plan.channel[i],
            plan.campaign[i],
            rng.choice(CHANNELS),
            ts(touched),
            '{"source": "seed"}',
            sentiment,
            sentiment_score,
            ts(touched),
            ts(created),
            ts(touched),
        )


CONTACT_COLUMNS = (
    "id, name, lifecycle_stage, score, score_points, score_at, owner_id, first_touch_channel, "
    "first_touch_campaign_id, last_touch_channel, last_touch_at, attributes, sentiment, "
    "sentiment_score, sentiment_at, created_at, updated_at"
)


def identity_lines(count: int, now: float) -> Iterator[str]:
    stamp = ts(now - 100 * DAY)
    for i in range(count):
        yield row(i + 1, i + 1, "phone", f"+2332{i:08d}", stamp)


def tag_lines(rng: random.Random, count: int) -> Iterator[str]:
    for i in range(count):
        for tag in rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))):
            yield row(i + 1, tag)


def consent_lines(rng: random.Random, count: int, now: float) -> Iterator[str]:
    """SMS consent for a third of the contacts, one in ten of them opted out."""
    for i in range(count):
        if rng.random() < 0.33:
            status = "opted_out" if rng.random() < 0.1 else "opted_in"
            yield row(i + 1, "sms", status, "seed", ts(now - rng.random() * 60 * DAY))


def conversation_lines(rng: random.Random, plan: ContactPlan, now: float) -> Iterator[str]:
    """A thread on the first-touch channel of contacts who came by SMS or WhatsApp."""
    for i, channel in enumerate(plan.channel):
        if channel in ("sms", "whatsapp"):
            inbound = now - rng.random() * 30 * DAY
            read = inbound + 600 if rng.random() < 0.7 else None
            status = "open" if rng.random() < 0.4 else "closed"
            yield row(
                i + 1,
                channel,
                plan.owner[i],
                status,
                ts(inbound),
                ts(read) if read else None,
                ts(now - 90 * DAY),
                ts(inbound),
            )


def interaction_tails(rng: random.Random, reps: list[int]) -> list[tuple[str, str]]:
    """Varieties of the columns after the ids: (up to the body, after the timestamps) for
    inbound messages first, then outbound ones: picking one is cheaper than building it."""
    intents = ("pricing", "purchase", "support", "other", "other", "complaint", "human")
    inbound = []
    for channel in [c for c, weight in INBOUND_MIX for _ in range(weight)]:
        status = "completed" if channel == "ussd" else "received"
        for body in INBOUND:
            score = round(rng.uniform(-1, 1), 3)
            sentiment = "negative" if score < -0.3 else "positive" if score > 0.3 else "neutral"
            head = f"{channel}\tinbound\t{body}\t{status}\t\\N"
            inbound.append((head, f"{sentiment}\t{score}\t{rng.choice(intents)}\t0.8\tseed"))
    outbound = []
    for channel in [c for c, weight in OUTBOUND_MIX for _ in range(weight)]:
        for body in OUTBOUND:
            status = weighted(rng, (("delivered", 80), ("sent", 10), ("read", 7), ("failed", 3)))
            author = rng.choice(reps) if rng.random() < 0.3 else "\\N"
            head = f"{channel}\toutbound\t{body}\t{status}\t{author}"
            outbound.append((head, "\t".join(["\\N"] * 5)))
    return inbound + outbound


def interaction_lines(
    rng: random.Random, contacts: int, count: int, reps: list[int], now: float
) -> Iterator[str]:
    """Messages, calls and USSD sessions over the last 90 days, in time order (ids follow
    time), already enriched; inbound ones (55%) carry the model's signals.

    The hot loop of the seed: columns are drawn in bulk and lines built from ready parts."""
    tails = interaction_tails(rng, reps)
    inbound = len(INBOUND) * sum(weight for _, weight in INBOUND_MIX)
    moments = sorted(now - rng.random() * WINDOW_DAYS * DAY for _ in range(count))
    owners = rng.choices(range(1, contacts + 1), k=count)
    kinds = [
        int(r / 0.55 * inbound)
        if r < 0.55
        else inbound + int((r - 0.55) / 0.45 * (len(tails) - inbound))
        for r in (rng.random() for _ in range(count))
    ]
    for i, (at, contact, kind) in enumerate(zip(moments, owners, kinds, strict=True), 1):
        head, tail = tails[kind]
        channel, direction, body, status, author = head.split("\t")
        provider, prefix = ("africastalking", "ATUid_") if channel == "ussd" else ("twilio", "SM")
        yield (
            f"{i}\t{contact}\t{channel}\t{direction}\t{body} #{i}\t{provider}\t{prefix}{i:012d}"
            f"\t+233302000000\t{status}\t{{}}\t{author}\t{ts(at)}\t{ts(at + 2)}\t{tail}\n"
        )


INTERACTION_COLUMNS = (
    "id, contact_id, channel, direction, body, provider, provider_message_id, address, "
    "delivery_status, metadata, author_id, created_at, enriched_at, sentiment, sentiment_score, "
    "intent, intent_confidence, model_version"
)


def deal_lines(rng: random.Random, plan: ContactPlan, reps: list[int], now: float) -> Iterator[str]:
    """One deal per contact in ``plan.deal_stage``; won and lost ones closed in the window."""
    lost_reasons = ("price", "competitor", "no_budget", "timing", "no_response")
    for n, (i, stage) in enumerate(sorted(plan.deal_stage.items()), 1):
        closed = now - rng.random() * WINDOW_DAYS * DAY if stage in ("won", "lost") else None
        created = (closed or now) - rng.uniform(1, 60) * DAY
        amount = f"{rng.uniform(50, 50_000):.2f}"
        expected = (datetime.fromtimestamp(created, UTC) + timedelta(days=45)).date()
        last_channel = rng.choice(CHANNELS)
        last_campaign = rng.randint(1, 40) if rng.random() < 0.5 else None
        yield row(
            n,
            i + 1,
            f"Deal {n}",
            stage,
            amount,
            weighted(rng, CURRENCIES),
            plan.owner[i] or rng.choice(reps),
            expected.isoformat(),
            rng.choice(lost_reasons) if stage == "lost" else None,
            plan.channel[i],
            plan.campaign[i],
            last_channel,
            last_campaign,
            ts(created),
            ts(closed or created),
            ts(closed) if closed else None,
        )


DEAL_COLUMNS = (
    "id, contact_id, title, stage, amount, currency, owner_id, expected_close_on, lost_reason, "
    "first_touch_channel, first_touch_campaign_id, last_touch_channel, last_touch_campaign_id, "
    "created_at, updated_at, closed_at"
)


def seed(url: str, factory: sessionmaker[Session], contacts: int, interactions: int) -> Seeded:
    """Empty the bench database and fill it; snapshot the contacts so runs can be undone."""
    start = perf_counter()
    rng = random.Random(SEED)
    now = utcnow().timestamp()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_seed CASCADE")
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    reps, admin = create_users(factory)
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo(url)) as conn:
        # The rows are consistent by construction: skip the per-row foreign key checks.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        plan, events = plan_contacts(rng, contacts, reps, now)
        counts["contacts"] = copy_rows(
            conn, "contacts", CONTACT_COLUMNS, contact_lines(rng, plan, now)
        )
        counts["identities"] = copy_rows(
            conn,
            "identities",
            "id, contact_id, kind, value, created_at",
            identity_lines(contacts, now),
        )
        counts["contact_tags"] = copy_rows(
            conn, "contact_tags", "contact_id, tag", tag_lines(rng, contacts)
        )
        counts["channel_consents"] = copy_rows(
            conn,
            "channel_consents",
            "contact_id, channel, status, source, changed_at",
            consent_lines(rng, contacts, now),
        )
        counts["conversations"] = copy_rows(
            conn,
            "conversations",
            "contact_id, channel, assignee_id, status, last_inbound_at, last_read_at, "
            "created_at, updated_at",
            conversation_lines(rng, plan, now),
        )
        conn.commit()
        print(f"  contacts and their rows: {perf_counter() - start:6.1f} s")
        counts["interactions"] = copy_rows(
            conn,
            "interactions",
            INTERACTION_COLUMNS,
            interaction_lines(rng, contacts, interactions, reps, now),
        )
        conn.commit()
        print(f"  interactions:            {perf_counter() - start:6.1f} s")
        counts["score_events"] = copy_rows(
            conn,
            "score_events",
            "contact_id, rule, points, reason, channel, source, occurred_at",
            iter(events),
        )
        counts["deals"] = copy_rows(conn, "deals", DEAL_COLUMNS, deal_lines(rng, plan, reps, now))
        for table in ("contacts", "identities", "interactions", "deals"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        snapshot(conn, now, contacts, interactions)
    print("  " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
    return Seeded(contacts, interactions, admin, perf_counter() - start)


def snapshot(conn: psycopg.Connection, now: float, contacts: int, interactions: int) -> None:
    """The seed's contacts as they are and each appended table's last id, in schema
    ``bench_seed``: the next run puts them back."""
    conn.execute("CREATE SCHEMA bench_seed")
    for table in SNAPSHOT:
        conn.execute(f"CREATE TABLE bench_seed.{table} AS SELECT * FROM {table}")  # noqa: S608
        conn.execute(f"ALTER TABLE bench_seed.{table} ADD PRIMARY KEY (id)")
    conn.execute("CREATE TABLE bench_seed.meta (key text PRIMARY KEY, value text NOT NULL)")
    meta: dict[str, object] = {
        "contacts": contacts,
        "interactions": interactions,
        "schema": schema_version(conn),
        "seeded_at": now,
    }
    for table in APPENDED:
        meta[f"last_id:{table}"] = conn.execute(
            f"SELECT coalesce(max(id), 0) FROM {table}"  # noqa: S608 - fixed names
        ).fetchone()[0]
    conn.cursor().executemany(
        "INSERT INTO bench_seed.meta VALUES (%s, %s)", [(k, str(v)) for k, v in meta.items()]
    )


def restore(url: str, meta: dict[str, str]) -> None:
    """Undo what earlier runs did to the seed: delete the rows they appended, put the contacts
    and conversations they changed back, clear the reps' round-robin."""
    changed = {}
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for table in APPENDED:
            conn.execute(
                f"DELETE FROM {table} WHERE id > %s",  # noqa: S608 - fixed names
                (int(meta[f"last_id:{table}"]),),
            )
        for table in SNAPSHOT:
            columns = [
                name
                for (name,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'bench_seed' AND table_name = %s AND column_name <> 'id'",
                    (table,),
                )
            ]
            assignments = ", ".join(f"{c} = s.{c}" for c in columns)
            changed[table] = conn.execute(
                f"UPDATE {table} t SET {assignments} FROM bench_seed.{table} s "  # noqa: S608
                "WHERE t.id = s.id AND t.updated_at IS DISTINCT FROM s.updated_at"
            ).rowcount
        conn.execute("UPDATE users SET last_assigned_at = NULL")
        conn.execute(f"VACUUM (ANALYZE) users, {', '.join(APPENDED + SNAPSHOT[:1])}")
    put_back = ", ".join(f"{n} {table}" for table, n in changed.items())
    print(f"restored the seed: {put_back} put back, rows of earlier runs deleted")


def load_seed(url: str, factory: sessionmaker[Session], args: argparse.Namespace) -> Seeded:
    """The seed: reused when it matches the sizes asked for (after undoing earlier runs)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        meta = seed_meta(conn)
        wanted = {
            "contacts": str(args.contacts),
            "interactions": str(args.interactions),
            "schema": schema_version(conn),
        }
    if args.reseed or any(meta.get(key) != value for key, value in wanted.items()):
        print(f"seeding {args.contacts:,} contacts, {args.interactions:,} interactions ...")
        seeded = seed(url, factory, args.contacts, args.interactions)
        print(f"seeded in {seeded.seconds:.1f} s")
        return seeded
    age = (utcnow().timestamp() - float(meta["seeded_at"])) / DAY
    print(
        f"reusing the seed ({args.contacts:,} contacts, {args.interactions:,} interactions, "
        f"{age:.1f} days old; --reseed to rebuild)"
    )
    restore(url, meta)
    with session_scope(factory) as session:
        admin = session.scalar(select(User.id).where(User.role == Role.ADMIN.value))
    return Seeded(args.contacts, args.interactions, int(admin or 0))


# --- measurements -------------------------------------------------------------------------


def fixed_classifier() -> Classify:
    """Deterministic ``classify``: PATTERN in turn, one answer per text."""
    turn = itertools.count()

    def classify(texts: Sequence[str]) -> list[Signals]:
        return [PATTERN[next(turn) % len(PATTERN)] for _ in texts]

    return classify


def new_inbound(factory: sessionmaker[Session], contact_id: int, n: int) -> int:
    """Store an inbound SMS as the webhook does (not enriched); its id."""
    with session_scope(factory) as session:
        return session.execute(
            insert(Interaction).returning(Interaction.id),
            {
                "contact_id": contact_id,
                "channel": "sms",
                "direction": "inbound",
                "body": SIGNAL_BODIES[n % len(SIGNAL_BODIES)],
                "provider": "twilio",
                "provider_message_id": f"SMbench{uuid.uuid4().hex}",
                "address": "+233302000000",
                "delivery_status": "received",
                "meta": {},
                "created_at": utcnow(),
            },
        ).scalar_one()


@dataclass
class SignalRun:
    signal: Sample = field(default_factory=Sample)
    route: Sample = field(default_factory=Sample)
    baseline: Sample = field(default_factory=Sample)
    promoted: int = 0
    handoffs: int = 0


def apply_signal(
    factory: sessionmaker[Session], classify: Classify, contact_id: int, n: int, run: SignalRun
) -> list[tuple[int, int]]:
    """Time one new signal's enrichment, commit included; (contact id, outbox id) of the
    ``handoff`` jobs it queued."""
    interaction_id = new_inbound(factory, contact_id, n)
    start = perf_counter()
    with session_scope(factory) as session:
        outcome = enrich(session, [interaction_id], classify)
        pending = outbox.take_pending(session)
    run.signal.latencies.append(perf_counter() - start)
    assert outcome.enriched == [interaction_id], outcome
    run.promoted += len(outcome.promoted)
    run.handoffs += len(outcome.handoffs)
    return list(zip(outcome.handoffs, pending, strict=True))


def handoff_job(factory: sessionmaker[Session], contact_id: int, outbox_id: int) -> float:
    """The worker's ``route_lead`` job for a new MQL, timed: route, mark the row done, commit."""
    start = perf_counter()
    with session_scope(factory) as session:
        handoff = route_lead(session, contact_id, Trigger(MQL, ""))
        outbox.mark_done(session, outbox_id)
    elapsed = perf_counter() - start
    assert handoff is not None, contact_id
    return elapsed


def touch(factory: sessionmaker[Session], contact_id: int) -> float:
    """The baseline: read the contact by primary key, update ``updated_at``, commit."""
    start = perf_counter()
    with session_scope(factory) as session:
        contact = session.get_one(Contact, contact_id)
        contact.updated_at = utcnow()
    return perf_counter() - start


def measure_signals(
    factory: sessionmaker[Session], contacts: int, count: int, warmup: int
) -> SignalRun:
    """Signals on ``count`` random contacts, each followed by its handoff job when it made an
    MQL, interleaved with baseline transactions on other random contacts."""
    rng = random.Random(SEED + 1)
    picked = rng.sample(range(1, contacts + 1), 2 * (count + warmup))
    targets, others = picked[: count + warmup], picked[count + warmup :]
    classify = fixed_classifier()
    run, scratch = SignalRun(), SignalRun()
    for n, (target, other) in enumerate(zip(targets, others, strict=True)):
        into = scratch if n < warmup else run
        for contact_id, outbox_id in apply_signal(factory, classify, target, n, into):
            into.route.latencies.append(handoff_job(factory, contact_id, outbox_id))
        into.baseline.latencies.append(touch(factory, other))
    return run


def timed(factory: sessionmaker[Session], work: Callable[[Session], object], runs: int) -> Sample:
    """``work`` in its own transaction ``runs`` times after two warm-up runs."""
    sample = Sample()
    for n in range(runs + 2):
        start = perf_counter()
        with session_scope(factory) as session:
            work(session)
        if n >= 2:
            sample.latencies.append(perf_counter() - start)
    return sample


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Collect the SQL the engine sends meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(
    engine: Engine, factory: sessionmaker[Session], work: Callable[[Session], object], table: str
) -> None:
    """EXPLAIN ANALYZE the first statement ``work`` sends that reads ``table``."""
    with statements(engine) as seen, session_scope(factory) as session:
        work(session)
    statement, parameters = next((s, p) for s, p in seen if f"FROM {table}" in s)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        print("\n".join("    " + line for (line,) in plan))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summarize(
    seeded: Seeded,
    run: SignalRun,
    count: Sample,
    channel: Sample,
    campaign: Sample,
    contacts_page: Sample,
) -> None:
    """The figures, and PASS/MISS against the targets."""
    signal_ratio = run.signal.ms(0.99) / (run.baseline.ms(0.99) or 1)
    signal_ratio50 = run.signal.ms(0.5) / (run.baseline.ms(0.5) or 1)
    print("\nsummary")
    if seeded.seconds:
        print(f"  seed                {seeded.seconds:8.1f} s")
    print(
        f"  signal              p50 {run.signal.ms(0.5):6.2f}  p99 {run.signal.ms(0.99):6.2f}  "
        f"max {run.signal.ms(1):6.2f} ms  {run.signal.rate:6.1f} signals/s  "
        f"target p99 < {TARGET_SIGNAL_P99_MS:.0f} ms: "
        f"{verdict(run.signal.ms(0.99) < TARGET_SIGNAL_P99_MS)}"
    )
    print(
        f"  promoted to MQL     {run.promoted} of {len(run.signal.latencies)}, "
        f"{run.handoffs} handoff jobs"
    )
    print(
        f"  handoff job         p50 {run.route.ms(0.5):6.2f}  p99 {run.route.ms(0.99):6.2f}  "
        f"max {run.route.ms(1):6.2f} ms (n={len(run.route.latencies)})"
    )
    print(
        f"  baseline            p50 {run.baseline.ms(0.5):6.2f}  "
        f"p99 {run.baseline.ms(0.99):6.2f} ms"
    )
    print(f"  ratio signal/base   p50 {signal_ratio50:.2f}x  p99 {signal_ratio:.2f}x")
    for name, sample in (("revenue by channel", channel), ("revenue by campaign", campaign)):
        print(
            f"  {name:<19} p50 {sample.ms(0.5):6.2f}  max {sample.ms(1):6.2f} ms  "
            f"{sample.ms(0.5) / (count.ms(0.5) or 1):.2f}x count(*)  "
            f"target < {TARGET_REPORT_MS:.0f} ms: {verdict(sample.ms(1) < TARGET_REPORT_MS)}"
        )
    print(f"  count(*) deals      p50 {count.ms(0.5):6.2f}  max {count.ms(1):6.2f} ms")
    print(
        f"  contacts list       p50 {contacts_page.ms(0.5):6.2f}  "
        f"p99 {contacts_page.ms(0.99):6.2f} ms (informational)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--signals", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50, help="signals, not measured")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seed")
    parser.add_argument("--explain", action="store_true", help="print the reports' query plans")
    args = parser.parse_args()

    url = bench_database_url()
    store = bench_redis(os.environ.get("SCORING_REDIS_URL", "").strip() or DEFAULT_REDIS_URL)
    store.flushdb()
    ensure_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        seeded = load_seed(url, factory, args)
        now = utcnow()
        start, end = now - timedelta(days=WINDOW_DAYS), now

        gc.collect()
        print(f"{args.signals} signals (+{args.warmup} warm-up) on random contacts ...")
        run = measure_signals(factory, seeded.contacts, args.signals, args.warmup)
        print(run.signal.line("signal (enrich)"))
        print(run.route.line("handoff job"))
        print(run.baseline.line("baseline (pk + update)"))

        def by(key: str) -> Callable[[Session], object]:
            return lambda s: revenue(s, by=key, touch="first", start=start, end=end)

        def page(s: Session) -> object:
            admin = s.get_one(User, seeded.admin)
            filters = ContactFilters(stages=("mql",), score_min=40)
            return list_contacts(s, admin, filters, limit=50, after=None)

        count = timed(
            factory, lambda s: s.scalar(select(func.count()).select_from(Deal)), REPORT_RUNS
        )
        channel = timed(factory, by("channel"), REPORT_RUNS)
        campaign = timed(factory, by("campaign"), REPORT_RUNS)
        contacts_page = timed(factory, page, LIST_RUNS)
        for name, sample in (
            ("count(*) deals", count),
            ("revenue by channel", channel),
            ("revenue by campaign", campaign),
            ("contacts list (mql)", contacts_page),
        ):
            print(sample.line(name))
        if args.explain:
            for name, work, table in (
                ("revenue by channel", by("channel"), "deals"),
                ("contacts list", page, "contacts"),
            ):
                print(f"  plan, {name}:")
                explain(engine, factory, work, table)
    finally:
        engine.dispose()
        store.flushdb()

    summarize(seeded, run, count, channel, campaign, contacts_page)


if __name__ == "__main__":
    main()
