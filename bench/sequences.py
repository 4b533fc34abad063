"""Benchmark the sequence engine end to end: 100,000 contacts enrolled at once in a 3-step
sequence (send an SMS, wait a minute, send another), run by real worker processes that send
through the twilio SDK to a local Twilio-speaking server with a provider's latency and limit.

1. seed (bench/sequences_seed.py; kept between runs): ``--contacts`` contacts with a Ghana
   mobile number each, by COPY.
2. the provider (``--serve``: bench/fake_provider.py's server, whose log also names the step
   each accepted message belongs to, by a mark in its body) and ``--workers`` ``crm worker``
   processes (RQ worker, outbox relay, sweeper and sequence clock), with
   ``SEND_RATES=<service>=--rate`` and ``MARKETING_CAP=--cap`` (default 3 a day: the cap's
   queries run as in production, and it holds none of the run's three messages a contact).
3. baseline: a one-shot campaign (the same send path without the sequence engine) to
   ``--baseline-share`` percent of the contacts, launched in this process and sent by the same
   workers: its launch time, first send, rate, and its CPU and database work per message.
4. enrolment, timed: ``crm.sequence_enrol.enrol_everyone`` for every contact in one
   transaction, and its commit, its SQL counted. In the same transaction (timed apart; not part
   of the enrolment figure) the bench spreads the enrolments' due times so that, once the
   second sends begin a minute later, the due messages come at ``--load`` of the limit: steps
   due under the rate limit, as when contacts are enrolled by triggers through the day. (A
   sequence enrolled at once is due "now" for everyone: that burst is a campaign, whose delay
   is the rate limit's queue, not the engine's.) With ``--window S`` only the enrolments due in
   the first S seconds are measured; the others stay enrolled, due a day later.
5. the workers run the steps as they fall due; progress every 10 s until every measured
   enrolment has completed and its messages are sent, or ``--timeout`` seconds after the last
   due step (the workers are then stopped before counting).
6. from the provider's log and the database: per message, the delay from its step's due time
   (the first send: the enrolment's due time; the second: the wait's run + 1 minute) to the
   moment the provider received it, p50/p99 (target p99 < 5 s), split into the sequence
   clock's part (due to step run) and the send path's (step run to provider); duplicates
   (messages of a (contact, step) accepted more than once) and missing steps (due and never
   accepted: never run, or still queued at the stop), target 0 each; duplicate step runs; the
   engine's batches (enrolments per ``run_due``) and send jobs (recipients per job, queued to
   done); CPU and database work per message against the baseline's.
7. an engine profile: one batch of ``run_due`` in this process (``--profile`` contacts enrolled
   in a second sequence, its SQL counted and timed, then rolled back).

The bench uses its own database, ``crm_bench_seq``, on the server of DATABASE_URL (else the
local ``test`` database's server), and Redis db 9 (or SEQUENCES_REDIS_URL), flushed before and
after; the run's rows are emptied at the end (``--drop`` drops the database). Run from the
repository root:

    python -m bench.sequences --contacts 10000
    python -m bench.sequences --contacts 100000 --window 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import psutil
import psycopg
import redis
from sqlalchemy import Engine, event, func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench import sequences_seed
from bench.campaigns import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SERVICE_SID,
    Arrival,
    CpuMeter,
    Processes,
    ProviderLog,
    do_launch,
    failed_job,
    phone,
    start_workers,
    stop,
    tree,
    verdict,
    wait_for_workers,
    worker_env,
)
from bench.fake_provider import Provider
from bench.own_database import conninfo, own_database_url
from bench.webhooks import bench_redis, database_url
from crm.campaigns import create_campaign
from crm.db import make_engine, make_session_factory, session_scope
from crm.frequency_cap import FrequencyCap
from crm.models import (
    Campaign,
    CampaignRecipient,
    EnrollmentStatus,
    OutboxJob,
    Role,
    Segment,
    Sequence,
    SequenceEnrollment,
    SequenceStepRun,
    User,
)
from crm.models.base import utcnow
from crm.sequence_enrol import enrol, enrol_everyone
from crm.sequence_run import run_due
from crm.sequences import create_sequence

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = sequences_seed.DB_NAME
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
TARGET_P99 = 5.0  # seconds from due to the provider, under the rate limit
WAIT_SECONDS = 60  # the sequence's wait: {minutes: 1}
PROGRESS_EVERY = 10.0
LATER = 86_400.0  # --window: the enrolments not measured are due this much later
# The provider logs which message it got by these marks in the bodies.
MARKS = {"(1/2)": "s1", "(2/2)": "s2", "(promo)": "promo"}
STEPS = ("s1", "s2")
SEQUENCE = {
    "name": "Bench welcome",
    "trigger": {"type": "tag_added", "tag": "bench"},
    "audience": {},
    "exit_on": ["reply"],
    "quiet_hours": None,
    "steps": [
        {
            "id": "s1",
            "send": {
                "channel": "sms",
                "body": "Hi {{ first_name | default('there') }}, welcome to Sunrise Solar (1/2). "
                "Reply STOP to opt out",
            },
        },
        {"id": "pause", "wait": {"minutes": 1}},
        {
            "id": "s2",
            "send": {
                "channel": "sms",
                "body": "{{ first_name | default('Hello') }}, solar lamps are 20% off this week "
                "(2/2). Reply STOP to opt out",
            },
        },
    ],
}
PROMO = "Hi {{ first_name | default('there') }}, 20% off solar lamps (promo). Reply STOP to opt out"


# --- the provider --------------------------------------------------------------------------


def mark_of(body: str) -> str:
    return next((tag for mark, tag in MARKS.items() if mark in body), "?")


class MarkingProvider(Provider):
    """The fake provider, whose log lines also carry the step the message belongs to."""

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, object]]:
        logged = len(self.lines)  # answer() runs whole between two awaits: no flush inside
        status, payload = super().answer(path, headers, body)
        if len(self.lines) > logged:
            text_ = parse_qs(body.decode(), keep_blank_values=True).get("Body", [""])[0]
            self.lines[-1] = self.lines[-1][:-1] + f"\t{mark_of(text_)}\n"
        return status, payload


async def _serve(args: argparse.Namespace) -> None:
    """bench/fake_provider.py's loop, with :class:`MarkingProvider`."""
    with open(args.log, "a", encoding="ascii") as log:
        provider = MarkingProvider(
            ACCOUNT_SID, AUTH_TOKEN, args.rate if args.enforce else 0, args.latency_ms / 1000, log
        )
        server = await asyncio.start_server(
            provider.serve, "127.0.0.1", 0, backlog=1024, limit=1 << 20
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, done.set)
        async with server:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.5)
                provider.flush()
        provider.flush()


@dataclass
class Marked(Arrival):
    mark: str = "?"


class MarkedLog(ProviderLog):
    """The provider's log, read as it grows: arrival, number, status, step."""

    def read(self) -> list[Arrival]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="ascii") as stream:
            stream.seek(self._offset)
            data = self._partial + stream.read()
            self._offset = stream.tell()
        *lines, self._partial = data.split("\n")
        new: list[Arrival] = []
        for line in lines:
            at, to, status, mark = line.split("\t")
            new.append(Marked(float(at), to, int(status), mark))
        self.arrivals.extend(new)
        return new


def start_provider(procs: Processes, args: argparse.Namespace, log: Path) -> int:
    command = [sys.executable, "-m", "bench.sequences", "--serve", "--log", str(log)]
    command += ["--rate", str(args.rate), "--latency-ms", str(args.latency_ms)]
    if not args.enforce:
        command.append("--no-enforce")
    procs.fake = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(procs.workdir / "provider.err").open("wb"),
        start_new_session=True,
    )
    assert procs.fake.stdout is not None
    line = procs.fake.stdout.readline().strip()
    if not line.isdigit():
        raise SystemExit(f"the fake provider did not start: {line!r}, see {procs.workdir}")
    return int(line)


# --- database work -------------------------------------------------------------------------


def db_stats(url: str) -> dict[str, int]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_fetched, tup_inserted + tup_updated "
            "FROM pg_stat_database WHERE datname = %s",
            (DB_NAME,),
        ).fetchone()
    assert row is not None
    return dict(zip(("commits", "rollbacks", "fetched", "written"), row, strict=True))


def redis_commands(store: redis.Redis) -> int:
    return int(store.info("stats")["total_commands_processed"])


class OwnCpuMeter(CpuMeter):
    """bench/campaigns.py's meter, with PostgreSQL narrowed to this database's backends and the
    server's own processes (WAL writer, checkpointer...): other databases may be busy. Backends
    that exited during the phase are not counted (the workers' pools keep theirs)."""

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups = super()._groups()
        mine = []
        for proc in groups["postgres"]:
            with contextlib.suppress(psutil.Error):
                line = " ".join(proc.cmdline())
                backend = "(" in line or "[local]" in line
                if f" {DB_NAME} " in line or (line.startswith("postgres:") and not backend):
                    mine.append(proc)  # not the postmaster: its reaped children are anyone's
        groups["postgres"] = mine
        return groups


@dataclass
class Work:
    """CPU and database work over one phase."""

    cpu: CpuMeter
    url: str
    store: redis.Redis
    before: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    cores: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0
    seconds: float = 0.0
    delta: dict[str, int] = field(default_factory=dict)

    def begin(self) -> None:
        self.cpu.begin()
        self.before, self.commands = db_stats(self.url), redis_commands(self.store)

    def end(self) -> None:
        self.cores, self.busy, self.seconds = self.cpu.end()
        after = db_stats(self.url)
        self.delta = {k: after[k] - self.before[k] for k in after}
        self.delta["redis"] = redis_commands(self.store) - self.commands

    def cpu_seconds(self, *groups: str) -> float:
        return sum(self.cores.get(g, 0.0) for g in groups) * self.seconds

    def line(self, messages: int) -> str:
        n = max(messages, 1)
        work = self.cpu_seconds("workers", "postgres", "redis") / n * 1000
        return (
            f"{work:.2f} ms CPU (workers {self.cpu_seconds('workers') / n * 1000:.2f}, "
            f"postgres {self.cpu_seconds('postgres') / n * 1000:.2f}, redis "
            f"{self.cpu_seconds('redis') / n * 1000:.2f}), {self.delta['commits'] / n:.2f} "
            f"commits, {self.delta['written'] / n:.1f} rows written, "
            f"{self.delta['redis'] / n:.1f} Redis commands (server-wide)"
        )


# --- the run -------------------------------------------------------------------------------


@dataclass
class Enrolment:
    sequence_id: int = 0
    contacts: int = 0
    enrol: float = 0.0  # enrol_everyone()
    spread: float = 0.0  # the bench's UPDATE of the due times
    commit: float = 0.0
    analyze: float = 0.0
    first_due: float = 0.0  # epoch seconds
    gap: float = 0.0  # seconds between two enrolments' due times
    committed: float = 0.0  # epoch seconds
    measured: int = 0  # enrolments due in the window; the others are due a day later
    sql: Statements = field(default_factory=lambda: Statements())
    due: dict[str, float] = field(default_factory=dict)  # phone -> first send's due time

    @property
    def horizon(self) -> float:
        """Due times before this are measured."""
        return self.first_due + LATER / 2


def enrol_all(
    engine: Engine, factory: sessionmaker[Session], url: str, args: argparse.Namespace
) -> Enrolment:
    """Create the sequence, enrol everyone in one transaction (timed) and spread the due times
    in the same transaction, so the workers see them only spread."""
    found = Enrolment()
    with session_scope(factory) as session:
        found.sequence_id = create_sequence(session, SEQUENCE, None, activate=True).id
    # Steady state: every enrolment sends twice (the second a minute after the first).
    found.gap = 2.0 / (args.load * args.rate)
    session = factory()
    try:
        sequence = session.get_one(Sequence, found.sequence_id)
        with counted(engine) as found.sql:
            mark = time.perf_counter()
            found.contacts = len(enrol_everyone(session, sequence))
            found.enrol = time.perf_counter() - mark
        found.first_due = time.time() + 5.0 + found.contacts / 20_000
        found.measured = found.contacts
        if args.window:
            found.measured = min(found.contacts, math.ceil(args.window / found.gap))
        mark = time.perf_counter()
        rows = session.execute(
            text(
                "UPDATE sequence_enrollments e SET due_at = to_timestamp(:first + (r.n - 1) * "
                ":gap + CASE WHEN r.n > :measured THEN :later ELSE 0 END) "
                "FROM (SELECT id, row_number() OVER (ORDER BY id) AS n "
                "FROM sequence_enrollments WHERE sequence_id = :sequence) r "
                "WHERE e.id = r.id RETURNING e.contact_id, extract(epoch FROM e.due_at)"
            ),
            {
                "first": found.first_due,
                "gap": found.gap,
                "sequence": found.sequence_id,
                "measured": found.measured,
                "later": LATER,
            },
        ).all()
        found.spread = time.perf_counter() - mark
        mark = time.perf_counter()
        session.commit()
        found.commit = time.perf_counter() - mark
        found.committed = time.time()
    finally:
        session.close()
    found.due = {
        phone(contact_id - 1): float(due) for contact_id, due in rows if due < found.horizon
    }
    if args.analyze:
        mark = time.perf_counter()
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) sequence_enrollments, interactions")
        found.analyze = time.perf_counter() - mark
    return found


def counts(session: Session, run: Enrolment) -> tuple[dict[str, int], dict[str, int]]:
    """The measured enrolments by status (completed ones: all), and the sequence's messages by
    state."""
    enrolments = dict(
        session.execute(
            select(SequenceEnrollment.status, func.count())
            .where(
                SequenceEnrollment.sequence_id == run.sequence_id,
                or_(
                    SequenceEnrollment.status != EnrollmentStatus.ACTIVE.value,
                    SequenceEnrollment.due_at < datetime.fromtimestamp(run.horizon, UTC),
                ),
            )
            .group_by(SequenceEnrollment.status)
        ).all()
    )
    messages = dict(
        session.execute(
            select(CampaignRecipient.state, func.count())
            .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            .where(Campaign.sequence_id == run.sequence_id)
            .group_by(CampaignRecipient.state)
        ).all()
    )
    return enrolments, messages


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest rank (sorted input)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def follow(
    factory: sessionmaker[Session],
    store: redis.Redis,
    run: Enrolment,
    log: MarkedLog,
    procs: Processes,
    args: argparse.Namespace,
) -> str:
    """Wait until every measured enrolment completed and its messages are sent, printing
    progress; why it stopped."""
    last = time.time()
    window: list[Arrival] = []
    psutil.cpu_percent()
    end_at = run.first_due + run.measured * run.gap + WAIT_SECONDS + args.timeout
    try:
        while True:
            window += log.read()
            now = time.time()
            if now - last >= PROGRESS_EVERY:
                with session_scope(factory) as session:
                    enrolments, messages = counts(session, run)
                span = now - last
                accepted = [a for a in window if a.status == 201]
                delays = sorted(
                    a.at - run.due[a.to]
                    for a in accepted
                    if isinstance(a, Marked) and a.mark == "s1" and a.to in run.due
                )
                due = min(run.measured, max(0, int((now - run.first_due) / run.gap) + 1))
                print(
                    f"  {now - run.first_due:6.1f} s  due {due:>7,}  active "
                    f"{enrolments.get('active', 0):>7,}  completed "
                    f"{enrolments.get('completed', 0):>7,}  messages sent "
                    f"{messages.get('sent', 0):>7,} pending {messages.get('pending', 0):>5,} "
                    f"sending {messages.get('sending', 0):>4,}  provider "
                    f"{len(accepted) / span:5.1f}/s, {len(window) - len(accepted)} refused  "
                    f"first-send delay p50 {quantile(delays, 0.5):5.2f} s p99 "
                    f"{quantile(delays, 0.99):5.2f} s  cpu {psutil.cpu_percent():3.0f}%",
                    flush=True,
                )
                last, window = now, []
                if not enrolments.get("active") and not (
                    messages.get("pending") or messages.get("sending")
                ):
                    return "done"
            if now > end_at:
                return f"timed out {args.timeout:.0f} s after the last due step"
            if all(p.poll() is not None for p in procs.workers):
                return "every worker exited"
            if error := failed_job(store):
                return f"a send job failed: {error}"
            time.sleep(1.0)
    except KeyboardInterrupt:
        return "interrupted"


# --- measurements --------------------------------------------------------------------------


@dataclass
class Figures:
    expected: int = 0
    accepted: int = 0
    duplicates: int = 0
    duplicated: int = 0
    missing: int = 0
    refused: int = 0
    unexpected: int = 0
    early: int = 0  # accepted before the step was due (must be 0)
    delays: dict[str, list[float]] = field(default_factory=dict)  # by step, and "all"
    clock: list[float] = field(default_factory=list)  # due to the step's run
    send: list[float] = field(default_factory=list)  # step run to the provider
    duplicate_runs: int = 0
    left_active: int = 0
    runs: int = 0
    batches: list[int] = field(default_factory=list)  # enrolments per run_due batch
    jobs: list[int] = field(default_factory=list)  # recipient ids each send job spans
    job_waits: list[float] = field(default_factory=list)  # send job: outbox row to done
    never_run: int = 0  # missing: the step never ran
    queued: int = 0  # missing: its message was still pending or sending at the stop
    states: dict[str, int] = field(default_factory=dict)  # the step messages' states


def measure(factory: sessionmaker[Session], run: Enrolment, arrivals: list[Arrival]) -> Figures:
    """Match each accepted message to its (contact, step) and due time; read how the engine
    did it (batches of step runs, send jobs)."""
    ran: dict[tuple[str, str], float] = {}  # (phone, step) -> the step's run
    due: dict[tuple[str, str], float] = {}
    figures = Figures()
    with session_scope(factory) as session:
        rows = session.execute(
            select(
                SequenceStepRun.contact_id,
                SequenceStepRun.step_id,
                SequenceStepRun.ran_at,
                SequenceStepRun.enrollment_id,
            ).where(SequenceStepRun.sequence_id == run.sequence_id)
        ).all()
        figures.left_active = (
            session.scalar(
                select(func.count())
                .select_from(SequenceEnrollment)
                .where(
                    SequenceEnrollment.sequence_id == run.sequence_id,
                    SequenceEnrollment.status == EnrollmentStatus.ACTIVE.value,
                    SequenceEnrollment.due_at < datetime.fromtimestamp(run.horizon, UTC),
                )
            )
            or 0
        )
        campaigns = set(
            session.scalars(select(Campaign.id).where(Campaign.sequence_id == run.sequence_id))
        )
        figures.states = dict(
            session.execute(
                select(CampaignRecipient.state, func.count())
                .where(CampaignRecipient.campaign_id.in_(campaigns))
                .group_by(CampaignRecipient.state)
            ).all()
        )
        waiting = {
            (number, step)
            for number, step in session.execute(
                select(CampaignRecipient.phone, Campaign.sequence_step)
                .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
                .where(
                    Campaign.id.in_(campaigns),
                    CampaignRecipient.state.in_(("pending", "sending")),
                )
            )
        }
        for payload, created, done in session.execute(
            select(OutboxJob.payload, OutboxJob.created_at, OutboxJob.done_at).where(
                OutboxJob.job == "campaign_send"
            )
        ):
            if payload.get("campaign_id") in campaigns:
                figures.jobs.append(payload["last_id"] - payload["first_id"] + 1)
                if done is not None:
                    figures.job_waits.append((done - created).total_seconds())
    figures.runs = len(rows)
    # A batch's runs share its clock reading (run_due's ``now``).
    batches = {(row.ran_at, row.enrollment_id) for row in rows}
    figures.batches = sorted(Counter(ran_at for ran_at, _enrollment in batches).values())
    per_run = Counter((row.enrollment_id, row.step_id) for row in rows)
    figures.duplicate_runs = sum(n - 1 for n in per_run.values() if n > 1)
    for contact_id, step_id, ran_at, _enrollment in rows:
        number = phone(contact_id - 1)
        ran[(number, step_id)] = min(ran.get((number, step_id), math.inf), ran_at.timestamp())
    for number, first in run.due.items():
        due[(number, "s1")] = first
        wait = ran.get((number, "pause"))
        due[(number, "s2")] = (wait if wait is not None else first) + WAIT_SECONDS
    expected = set(due)
    figures.expected = len(expected)
    accepted: dict[tuple[str, str], list[float]] = {}
    for arrival in arrivals:
        if not isinstance(arrival, Marked) or arrival.mark not in STEPS:
            continue
        if arrival.status != 201:
            figures.refused += 1
            continue
        key = (arrival.to, arrival.mark)
        if arrival.to not in run.due:
            figures.unexpected += 1
            continue
        accepted.setdefault(key, []).append(arrival.at)
    figures.delays = {"all": [], **{step: [] for step in STEPS}}
    for key, times in accepted.items():
        figures.accepted += len(times)
        if len(times) > 1:
            figures.duplicates += len(times) - 1
            figures.duplicated += 1
        first = min(times)
        delay = first - due[key]
        figures.early += delay < -0.001
        figures.delays[key[1]].append(delay)
        figures.delays["all"].append(delay)
        if key in ran:
            figures.clock.append(ran[key] - due[key])
            figures.send.append(first - ran[key])
    missing = expected - accepted.keys()
    figures.missing = len(missing)
    figures.never_run = len(missing - ran.keys())
    figures.queued = len(missing & waiting)
    for values in (*figures.delays.values(), figures.clock, figures.send, figures.job_waits):
        values.sort()
    return figures


# --- baseline and profile ------------------------------------------------------------------


@dataclass
class Baseline:
    recipients: int = 0
    launch: float = 0.0  # launch() + commit + announce
    first_send: float = 0.0  # s from the announce to the first provider arrival
    sending: float = 0.0  # s from the first to the last accepted
    status: str = ""
    accepted: int = 0
    duplicates: int = 0


def baseline(
    factory: sessionmaker[Session],
    store: redis.Redis,
    log: MarkedLog,
    procs: Processes,
    args: argparse.Namespace,
) -> Baseline:
    """A one-shot campaign to ``--baseline-share`` percent of the contacts, launched in this
    process (bench/campaigns.py's launch), sent by the same workers."""
    found = Baseline()
    with session_scope(factory) as session:
        user = session.scalars(select(User).where(User.role == Role.MARKETER.value)).one()
        segment = Segment(
            name="Baseline share",
            filters={"score_max": args.baseline_share - 1},
            created_by=user.id,
        )
        session.add(segment)
        session.flush()
        campaign_id = create_campaign(
            session,
            {
                "name": "Bench baseline",
                "channel": "sms",
                "sender": SERVICE_SID,
                "segment_id": segment.id,
                "body": PROMO,
                "quiet_start": None,
                "quiet_end": None,
            },
            user,
        ).id
    log.read()
    seen = len(log.arrivals)
    timings = do_launch(factory, store, campaign_id)
    found.recipients = timings.recipients
    found.launch = timings.launch + timings.commit + timings.announce
    print(
        f"  baseline campaign: {found.recipients:,} recipients launched in {found.launch:.2f} s",
        flush=True,
    )
    deadline = time.time() + 2 * found.recipients / args.rate + 120
    try:
        while True:
            log.read()
            with session_scope(factory) as session:
                found.status = session.scalars(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                ).one()
            if found.status != "running" or time.time() > deadline:
                break
            if error := failed_job(store):
                found.status = f"a send job failed: {error}"
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        found.status = "interrupted"
    time.sleep(1.0)  # the provider's log is flushed every half second
    log.read()
    mine = [
        a
        for a in log.arrivals[seen:]
        if isinstance(a, Marked) and a.mark == "promo" and a.status == 201
    ]
    if mine:
        times = sorted(a.at for a in mine)
        found.first_send = times[0] - timings.announced
        found.sending = times[-1] - times[0]
        per_number = Counter(a.to for a in mine)
        found.accepted = len(mine)
        found.duplicates = sum(n - 1 for n in per_number.values() if n > 1)
    return found


@dataclass
class Statements:
    """The SQL a piece of code sent: SQLAlchemy's cursor calls, and the statements the server
    ran (an executemany runs one per parameter set, pipelined by psycopg)."""

    calls: int = 0
    statements: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.by_kind.most_common())
        return f"{self.calls} SQL calls, {self.statements} server statements ({kinds})"


@contextlib.contextmanager
def counted(engine: Engine) -> Iterator[Statements]:
    found = Statements()

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        found.calls += 1
        rows = len(params) if many and isinstance(params, (list, tuple)) else 1
        found.statements += rows
        found.by_kind[statement.split(None, 1)[0].upper()] += rows

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", count)


@dataclass
class Profile:
    claimed: int = 0
    seconds: float = 0.0
    sql: Statements = field(default_factory=Statements)


def profile(
    engine: Engine, factory: sessionmaker[Session], size: int, cap: FrequencyCap | None
) -> Profile:
    """One batch of ``run_due`` (with the workers' frequency cap) for ``size`` contacts just
    enrolled in a second sequence, in this process, statements counted; everything rolled back
    (no worker sees it)."""
    found = Profile()
    session = factory()
    try:
        raw = {**SEQUENCE, "name": "Bench profile"}
        sequence = create_sequence(session, raw, None, activate=True)
        enrol(session, sequence, range(1, size + 1), trigger="profile")
        session.flush()
        with counted(engine) as found.sql:
            mark = time.perf_counter()
            result = run_due(session, utcnow(), limit=size, cap=cap)
            session.flush()
            found.seconds = time.perf_counter() - mark
        found.claimed = result.claimed
    finally:
        session.rollback()
        session.close()
    return found


# --- report --------------------------------------------------------------------------------


def seconds(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {quantile(values, 0.5):6.2f} s  p90 {quantile(values, 0.9):6.2f} s  p99 "
        f"{quantile(values, 0.99):6.2f} s  max {values[-1]:6.2f} s  min {values[0]:5.2f} s"
    )


def report(
    args: argparse.Namespace,
    run: Enrolment,
    status: str,
    figures: Figures,
    work: Work,
    base: Baseline | None,
    base_work: Work | None,
    prof: Profile | None,
) -> bool:
    ok = True
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    cap = f"{args.cap} a day (MARKETING_CAP; holds none of these)" if args.cap else "off"
    print("\nsummary")
    print(
        f"  settings            {run.contacts:,} contacts, sequence send -> wait 1 min -> send, "
        f"no quiet hours; provider limit {args.rate}/s (SEND_RATES, "
        f"{'429 past it' if args.enforce else 'not enforced'}), latency "
        f"{args.latency_ms:.0f} ms; {args.workers} workers x {args.threads} threads; "
        f"frequency cap {cap}; "
        f"SEQUENCE_BATCH {args.batch or 'default (500)'}; code {tree()}"
    )
    print(
        f"  machine             {psutil.cpu_count()} cores; load average now {load} (1, 5, 15 "
        "min; other sessions' processes share the cores)"
    )
    per_k = (run.enrol + run.commit) / max(run.contacts, 1) * 1e6
    print(
        f"  enrolment           {run.enrol + run.commit:7.2f} s for {run.contacts:,} contacts "
        f"in one transaction (enrol_everyone {run.enrol:.2f} s, commit {run.commit:.2f} s; "
        f"{per_k:.1f} ms per 1,000); {run.sql.describe()}"
    )
    print(
        f"  spread (bench)      due times {run.gap * 1000:.2f} ms apart ({1 / run.gap:.0f} "
        f"enrolments/s, about {2 / run.gap:.0f} messages/s = {args.load:.0%} of the limit once "
        f"the second sends begin) over {run.measured * run.gap:.0f} s; UPDATE {run.spread:.2f} s; "
        f"committed {run.first_due - run.committed:.1f} s before the first due time"
        + (
            f"; then VACUUM (ANALYZE) of the enrolments and timeline {run.analyze:.2f} s (what "
            "autovacuum, off on this server, would do; it also clears the UPDATE's dead rows)"
            if args.analyze
            else ""
        )
    )
    measured = (
        f"the {run.measured:,} enrolments due in the first {args.window:.0f} s, "
        f"{figures.expected:,} messages (the other {run.contacts - run.measured:,} stay "
        "enrolled, due a day later)"
        if run.measured < run.contacts
        else f"every enrolment, {figures.expected:,} messages"
    )
    print(f"  stopped             {status}; measured: {measured}")
    delays = figures.delays.get("all", [])
    p99 = quantile(delays, 0.99)
    hit = bool(delays) and p99 < TARGET_P99
    ok &= hit
    print(
        f"  delay due->provider {seconds(delays)}  target p99 < {TARGET_P99:.0f} s: {verdict(hit)}"
    )
    for step in STEPS:
        print(f"    {step:17} {seconds(figures.delays.get(step, []))}")
    print(f"    clock (due->run)  {seconds(figures.clock)}")
    print(f"    send (run->prov.) {seconds(figures.send)}")
    ok &= figures.duplicates == 0 and figures.missing == 0 and figures.early == 0
    print(
        f"  duplicates          {figures.duplicates:7d} extra accepted messages "
        f"({figures.duplicated} (contact, step) pairs)  target 0: "
        f"{verdict(figures.duplicates == 0)}"
    )
    print(
        f"  missing steps       {figures.missing:7d} due (contact, step) sends never accepted  "
        f"target 0: {verdict(figures.missing == 0)}"
        + (
            f" ({figures.never_run} steps never ran, {figures.queued} messages still queued "
            "when the bench stopped)"
            if figures.missing
            else ""
        )
    )
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(figures.states.items()))
    print(
        f"  database            {figures.runs:,} step runs, {figures.duplicate_runs} duplicate "
        f"(enrolment, step) runs; {figures.left_active:,} measured enrolments still active; "
        f"step messages: {states}"
        + (f"; {figures.early} messages before their due time" if figures.early else "")
        + (f"; {figures.unexpected} to unknown numbers" if figures.unexpected else "")
    )
    print(f"  429s                {figures.refused:7d}")
    batches, jobs = figures.batches, sorted(figures.jobs)
    if batches and jobs:
        print(
            f"  engine              {len(batches):,} run_due batches with work: enrolments per "
            f"batch p50 {quantile(batches, 0.5):.0f}, mean {sum(batches) / len(batches):.1f}, "
            f"max {batches[-1]}; {len(jobs):,} campaign_send jobs: recipient ids per job "
            f"p50 {quantile(jobs, 0.5):.0f}, mean {sum(jobs) / len(jobs):.1f}; job "
            f"queued->done p50 {quantile(figures.job_waits, 0.5):.2f} s, p99 "
            f"{quantile(figures.job_waits, 0.99):.2f} s"
        )
    messages = max(figures.accepted, 1)
    used = ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(work.cores.items(), key=lambda kv: -kv[1]) if v >= 0.01
    )
    print(
        f"  cpu (sequence)      {work.busy:.0%} of {psutil.cpu_count()} cores busy over "
        f"{work.seconds:.0f} s; cores used: {used}"
    )
    print(f"  per message (seq.)  {work.line(messages)}")
    if base is not None and base_work is not None:
        print(
            f"  baseline campaign   {base.recipients:,} recipients: launch {base.launch:.2f} s "
            f"({base.launch / max(base.recipients, 1) * 1e6:.1f} ms per 1,000), first send "
            f"{base.first_send:.2f} s after the announce, sent in {base.sending:.1f} s "
            f"({base.accepted / base.sending if base.sending else 0:.0f}/s), "
            f"{base.duplicates} duplicates, {base.recipients - base.accepted} missing; "
            f"{base.status}"
        )
        print(f"  per message (camp.) {base_work.line(base.accepted)}")
        seq_cpu = work.cpu_seconds("workers", "postgres", "redis") / messages
        camp_cpu = base_work.cpu_seconds("workers", "postgres", "redis") / max(base.accepted, 1)
        enrol_k = (run.enrol + run.commit) / max(run.contacts, 1)
        launch_k = base.launch / max(base.recipients, 1)
        print(
            f"  ratios              CPU per message, sequence / campaign: "
            f"{seq_cpu / camp_cpu if camp_cpu else math.nan:.2f}; enrolment per contact / "
            f"launch per recipient: {enrol_k / launch_k if launch_k else math.nan:.2f}; "
            f"p50 delay / campaign first send: "
            f"{quantile(delays, 0.5) / base.first_send if base.first_send else math.nan:.2f}"
        )
    if prof is not None:
        print(
            f"  run_due profile     one batch of {prof.claimed} enrolments (send, wait) in the "
            f"bench's process: {prof.seconds * 1000:.0f} ms, "
            f"{prof.seconds / max(prof.claimed, 1) * 1e6:.0f} us each; {prof.sql.describe()}"
        )
    return ok


# --- main ----------------------------------------------------------------------------------


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.sequences --serve")
    parser.add_argument("--log", required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, required=True)
    parser.add_argument("--no-enforce", dest="enforce", action="store_false")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args(argv)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=300, help="provider limit, messages/s")
    parser.add_argument(
        "--load", type=float, default=0.65, help="due messages/s as a share of the limit"
    )
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=32, help="CAMPAIGN_THREADS per worker")
    parser.add_argument("--batch", type=int, default=0, help="SEQUENCE_BATCH (0: the default)")
    parser.add_argument(
        "--cap",
        type=int,
        default=3,
        help="MARKETING_CAP: messages per contact a day (0: off); the default, 3, holds none "
        "of the run's (two steps and the baseline's one)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=0.0,
        help="measure the enrolments due in the first S seconds; the others are due a day later",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="s past the last due time to wait"
    )
    parser.add_argument("--baseline-share", type=int, default=10, help="percent; 0: none")
    parser.add_argument("--profile", type=int, default=500, help="run_due batch size; 0: none")
    parser.add_argument("--queue", action="append", help="queues the workers listen on")
    parser.add_argument("--no-enforce", dest="enforce", action="store_false")
    parser.add_argument(
        "--no-vacuum",
        dest="analyze",
        action="store_false",
        help="skip the VACUUM (ANALYZE) of the enrolments and timeline after the enrolment",
    )
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = parser.parse_args()
    if not 0 < args.load <= 1.5 or not 0 <= args.baseline_share <= 100:
        parser.error("--load in (0, 1.5], --baseline-share in [0, 100]")
    return args


@contextlib.contextmanager
def processes(
    args: argparse.Namespace, url: str, redis_url: str, store: redis.Redis
) -> Iterator[tuple[Processes, MarkedLog]]:
    procs = Processes(Path(tempfile.mkdtemp(prefix="bench-sequences-")))
    try:
        log = MarkedLog(procs.workdir / "provider.tsv")
        port = start_provider(procs, args, log.path)
        env = worker_env(args, url, redis_url, port)
        env.update(MARKETING_CAP=str(args.cap))
        if args.batch:
            env.update(SEQUENCE_BATCH=str(args.batch))
        start_workers(procs, args, env)
        print(
            f"provider on port {port}; {args.workers} workers starting (logs in {procs.workdir})",
            flush=True,
        )
        ready = wait_for_workers(procs, store, timeout=300)
        print(f"workers ready in {ready:.1f} s", flush=True)
        yield procs, log
    finally:
        stop(procs)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve_main(sys.argv[2:])
        return
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    url = own_database_url(DB_NAME)
    redis_url = os.environ.get("SEQUENCES_REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    store = bench_redis(redis_url)
    store.flushdb()
    sequences_seed.prepare(url, args.contacts, args.reseed)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    passed = False
    workdir = None
    try:
        with processes(args, url, redis_url, store) as (procs, log):
            workdir = procs.workdir
            redis_port = store.connection_pool.connection_kwargs.get("port", 6379)
            base = base_work = None
            if args.baseline_share:
                base_work = Work(OwnCpuMeter(procs, redis_port), url, store)
                base_work.begin()
                base = baseline(factory, store, log, procs, args)
                base_work.end()
            print(f"enrolling {args.contacts:,} contacts ...", flush=True)
            run = enrol_all(engine, factory, url, args)
            work = Work(OwnCpuMeter(procs, redis_port), url, store)
            work.begin()  # from the enrolment's commit: the running of the steps
            print(
                f"  enrolled {run.contacts:,} in {run.enrol + run.commit:.2f} s (enrol "
                f"{run.enrol:.2f} s, commit {run.commit:.2f} s; spread UPDATE {run.spread:.2f} "
                f"s); first due in {run.first_due - time.time():.1f} s, last measured in "
                f"{run.first_due + run.measured * run.gap - time.time():.0f} s",
                flush=True,
            )
            status = follow(factory, store, run, log, procs, args)
            work.end()
            if status != "done":  # what is sent from here on would not be in the figures
                stop(Processes(procs.workdir, workers=procs.workers))
            time.sleep(1.0)  # the provider's log is flushed every half second
            log.read()
            figures = measure(factory, run, list(log.arrivals))
            cap = FrequencyCap(args.cap, timedelta(hours=24)) if args.cap else None
            prof = profile(engine, factory, args.profile, cap) if args.profile else None
            passed = report(args, run, status, figures, work, base, base_work, prof)
    finally:
        engine.dispose()
        store.flushdb()
        if args.drop:
            drop_database()
        else:
            sequences_seed.empty(url)
    print(f"\nall targets: {verdict(passed)}  (logs in {workdir})")


def drop_database() -> None:
    with psycopg.connect(conninfo(database_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    print(f"dropped database {DB_NAME}")


if __name__ == "__main__":
    main()
