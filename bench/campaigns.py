"""Benchmark a bulk campaign end to end: launch, then real worker processes send it through the
twilio SDK to a local Twilio-speaking server with a provider's latency and rate limit.

1. seed (skipped when the database holds it already): ``--recipients`` contacts with a Ghana
   mobile number each (``+23324xxxxxxx``, unique), one in ten without a name, by COPY.
2. a segment of them all (``countries: GH``) and a campaign through
   ``crm.campaigns.create_campaign``: SMS from a Messaging Service SID, a body with
   ``{{ first_name | default('there') }}``, no quiet hours.
3. the provider, ``bench/fake_provider.py`` in its own process: basic auth like Twilio,
   ``--latency-ms`` per request, 429 (code 20429) past ``--rate`` accepted requests in any
   second, and each request's arrival time, number and answer logged.
4. ``--workers`` processes of ``crm worker`` (RQ worker, outbox relay and sweeper; the model
   preloaded as in production), with ``SEND_RATES=<service>=<rate>`` and
   ``CAMPAIGN_THREADS=--threads``; the launch waits until all of them are listening.
5. launch timed: ``crm.campaign_launch.launch`` (audience, rendering, recipients, one outbox job
   per 2,000), its commit, and the announce to the relay; then until the first request reaches
   the provider. Progress is printed every 10 s until the campaign is ``done``.
6. from the provider's log: the achieved rate over the steady part (the first and last 5% of
   the sending time left out) against the configured rate (target >= 0.95), the worst sliding
   1-second window of requests (target: never above the rate), duplicates (numbers accepted
   more than once) and missing (recipients never accepted), both targets 0; the 429s; the
   recipients' states in the database; CPU by process and database/Redis work per message.

The bench uses its own database, ``crm_bench_campaigns``, on the server of DATABASE_URL (else
the local ``test`` database's server), created and migrated if missing (dropped and seeded
again when the schema or the size changed), and Redis db 10 (or CAMPAIGNS_REDIS_URL), flushed
before and after. Run from the repository root:

    python -m bench.campaigns --recipients 100000 --rate 200 --latency-ms 150 --threads 32

``--analyze`` analyzes ``campaign_recipients`` right after the launch, as autovacuum would a
minute later (a server with autovacuum off never does, and the claim query's plan then scans
every pending row of the campaign); ``--ref COMMIT`` runs on a committed tree while the working
tree is being edited; ``--no-enforce`` lets the provider accept past the rate.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import redis
from rq import Worker
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.own_database import conninfo, create_database, own_database_url
from bench.webhooks import bench_redis
from crm import outbox
from crm.campaign_launch import launch, progress
from crm.campaigns import create_campaign
from crm.db import make_engine, make_session_factory, session_scope
from crm.migrate import upgrade
from crm.models import Campaign, CampaignRecipient, Role, Segment, User
from crm.models.base import utcnow
from crm.users import create_user

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "crm_bench_campaigns"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "bench-campaigns-auth-token"  # the fake provider's, throwaway
SERVICE_SID = "MG" + "e" * 32
BODY = (
    "Hi {{ first_name | default('there') }}, 20% off solar lamps this week. Reply STOP to opt out"
)
PASSWORD = "bench-password-123"  # a throwaway bench user
SEED = 20240611
CHUNK = 50_000  # rows per COPY write
STEADY_TRIM = 0.05  # share of the sending time left out at each end
TARGET_RATIO = 0.95
PROGRESS_EVERY = 10.0
FIRST = ("Ama", "Kwame", "Akosua", "Kofi", "Abena", "Yaw", "Efua", "Kojo", "Adwoa", "Kwesi")
LAST = ("Mensah", "Owusu", "Boateng", "Asante", "Osei", "Agyeman", "Appiah", "Darko")
# What a run writes; emptied before the next one (TRUNCATE without CASCADE: a table not listed
# that refers to one of these makes it fail rather than empty more than it should).
RUN_TABLES = (
    "campaign_recipients",
    "campaigns",
    "segments",
    "interactions",
    "outbox_jobs",
    "channel_consents",
)


def phone(i: int) -> str:
    return f"+23324{i:07d}"


# --- database -----------------------------------------------------------------------------


def bench_database_url() -> str:
    return own_database_url(DB_NAME)


def migrations_hash() -> str:
    """The migrations' contents: a seed made under other migrations (a new one, or one edited
    in place) is rebuilt."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def seed_meta(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("SELECT to_regclass('bench_seed.meta')").fetchone()
    if exists is None or exists[0] is None:
        return {}
    return dict(conn.execute("SELECT key, value FROM bench_seed.meta").fetchall())


def copy_rows(conn: psycopg.Connection, table: str, columns: str, lines: Iterator[str]) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := list(itertools.islice(lines, CHUNK)):
            copy.write("".join(chunk))
            count += len(chunk)
    return count


def contact_lines(count: int, stamp: str) -> Iterator[str]:
    rng = random.Random(SEED)
    for i in range(count):
        name = "\\N" if i % 10 == 9 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        yield f"{i + 1}\t{name}\tlead\t0\t0\t0\t{{}}\t{stamp}\t{stamp}\n"


def identity_lines(count: int, stamp: str) -> Iterator[str]:
    for i in range(count):
        yield f"{i + 1}\t{i + 1}\tphone\t{phone(i)}\t{stamp}\n"


def seed(url: str, factory: sessionmaker[Session], contacts: int) -> None:
    """Fill a fresh database: the marketer, the contacts and their numbers; record the seed."""
    start = time.perf_counter()
    with session_scope(factory) as session:
        create_user(
            session=session,
            email="marketer@bench.example",
            role=Role.MARKETER.value,
            password=PASSWORD,
            name="Bench Marketer",
        )
    stamp = utcnow().isoformat()
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        copy_rows(
            conn,
            "contacts",
            "id, name, lifecycle_stage, score, score_points, fit_points, attributes, "
            "created_at, updated_at",
            contact_lines(contacts, stamp),
        )
        copy_rows(
            conn,
            "identities",
            "id, contact_id, kind, value, created_at",
            identity_lines(contacts, stamp),
        )
        for table in ("contacts", "identities"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute("CREATE SCHEMA bench_seed")
        conn.execute("CREATE TABLE bench_seed.meta (key text PRIMARY KEY, value text NOT NULL)")
        meta = {"contacts": contacts, "migrations": migrations_hash(), "seeded_at": time.time()}
        conn.cursor().executemany(
            "INSERT INTO bench_seed.meta VALUES (%s, %s)", [(k, str(v)) for k, v in meta.items()]
        )
        conn.commit()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    print(f"seeded {contacts:,} contacts in {time.perf_counter() - start:.1f} s")


def prepare_database(url: str, contacts: int, reseed: bool) -> None:
    """The seed, reused when it has this many contacts and was made under these migrations (the
    rows of earlier runs emptied); else the database is dropped, created, migrated and seeded
    again."""
    create_database(DB_NAME)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        meta = seed_meta(conn)
    wanted = {"contacts": str(contacts), "migrations": migrations_hash()}
    if reseed or any(meta.get(key) != value for key, value in wanted.items()):
        print(f"seeding {contacts:,} contacts in a new {DB_NAME} ...")
        create_database(DB_NAME, drop=True)
        upgrade(url)
        engine = make_engine(url)
        try:
            seed(url, make_session_factory(engine), contacts)
        finally:
            engine.dispose()
        return
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"TRUNCATE {', '.join(RUN_TABLES)} RESTART IDENTITY")
        conn.execute(f"VACUUM (ANALYZE) {', '.join(RUN_TABLES)}")
    print(f"reusing the seed ({contacts:,} contacts; --reseed to rebuild); earlier runs emptied")


def make_campaign(factory: sessionmaker[Session]) -> int:
    with session_scope(factory) as session:
        user = session.scalars(select(User).where(User.role == Role.MARKETER.value)).one()
        segment = Segment(
            name="Everyone in Ghana", filters={"countries": ["GH"]}, created_by=user.id
        )
        session.add(segment)
        session.flush()
        campaign = create_campaign(
            session,
            {
                "name": "Bench promo",
                "channel": "sms",
                "sender": SERVICE_SID,
                "segment_id": segment.id,
                "body": BODY,
                "quiet_start": None,
                "quiet_end": None,
            },
            user,
        )
        return campaign.id


# --- processes ----------------------------------------------------------------------------


@dataclass
class Processes:
    workdir: Path
    fake: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in [self.fake, *self.workers] if p is not None]


def start_fake(procs: Processes, args: argparse.Namespace, log: Path) -> int:
    """The provider in its own process (and session); the port it listens on."""
    procs.fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fake_provider",
            "--account-sid",
            ACCOUNT_SID,
            "--auth-token",
            AUTH_TOKEN,
            "--latency-ms",
            str(args.latency_ms),
            "--rate",
            str(args.rate if args.enforce else 0),
            "--log",
            str(log),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(procs.workdir / "fake.err").open("wb"),
        start_new_session=True,
    )
    assert procs.fake.stdout is not None
    line = procs.fake.stdout.readline().strip()
    if not line.isdigit():
        raise SystemExit(f"the fake provider did not start: {line!r}, see {procs.workdir}")
    return int(line)


def worker_env(args: argparse.Namespace, url: str, redis_url: str, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWILIO_", "AT_", "SEND_RATES", "CAMPAIGN_"))
    }
    env.update(
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}",
        TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
        SEND_RATES=f"{SERVICE_SID}={args.rate}",
        CAMPAIGN_THREADS=str(args.threads),
        CRM_ENV="development",
        PUBLIC_BASE_URL="http://127.0.0.1:1",  # status callbacks are not sent by the fake
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),  # this tree's code, also when it is a snapshot (--ref)
    )
    return env


def start_workers(procs: Processes, args: argparse.Namespace, env: dict[str, str]) -> None:
    crm = Path(sys.executable).with_name("crm")
    command = [str(crm)] if crm.exists() else [sys.executable, "-m", "crm.cli"]
    command.append("worker")
    for queue in args.queue or ():
        command += ["--queue", queue]
    for n in range(args.workers):
        log = (procs.workdir / f"worker-{n + 1}.log").open("wb")
        procs.workers.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: its scheduler child is stopped with it
            )
        )


def wait_for_workers(procs: Processes, store: redis.Redis, timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        dead = [p for p in procs.workers if p.poll() is not None]
        if dead:
            raise SystemExit(f"a worker exited ({dead[0].returncode}); see {procs.workdir}")
        if len(Worker.all(connection=store)) >= len(procs.workers):
            return time.perf_counter() - start
        time.sleep(0.5)
    raise SystemExit(f"the workers were not ready after {timeout:.0f} s; see {procs.workdir}")


def stop(procs: Processes) -> None:
    """SIGTERM each process group we started, then SIGKILL what is left after 20 s."""
    running = [p for p in procs.all() if p.poll() is None]
    for p in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for p in running:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# --- measurements -------------------------------------------------------------------------


@dataclass
class Arrival:
    at: float
    to: str
    status: int


class ProviderLog:
    """The fake provider's log, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arrivals: list[Arrival] = []
        self._offset = 0
        self._partial = ""

    def read(self) -> list[Arrival]:
        """The arrivals logged since the last call."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="ascii") as stream:
            stream.seek(self._offset)
            text = self._partial + stream.read()
            self._offset = stream.tell()
        *lines, self._partial = text.split("\n")
        new = []
        for line in lines:
            at, to, status = line.split("\t")
            new.append(Arrival(float(at), to, int(status)))
        self.arrivals.extend(new)
        return new


class CpuMeter:
    """CPU seconds of the processes that do the work, between two snapshots."""

    def __init__(self, procs: Processes, redis_port: int) -> None:
        self.procs = procs
        self.redis_port = redis_port
        self.start: dict[str, float] = {}
        self.started = 0.0
        self.system_start = psutil.cpu_times()

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {"workers": [], "provider": [], "bench": []}
        for popen in self.procs.workers:
            try:
                parent = psutil.Process(popen.pid)
                groups["workers"] += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        if self.procs.fake is not None:
            groups["provider"].append(psutil.Process(self.procs.fake.pid))
        groups["bench"].append(psutil.Process())
        groups["postgres"] = []
        groups["redis"] = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            name = proc.info["name"] or ""
            if name.startswith("postgres"):
                groups["postgres"].append(proc)
            elif name.startswith("redis-server") and f":{self.redis_port}" in " ".join(
                proc.info["cmdline"] or ()
            ):
                groups["redis"].append(proc)
        return groups

    def _snapshot(self) -> dict[str, float]:
        """CPU seconds by group; PostgreSQL's include its backends that have exited (the
        postmaster's reaped children: pooled connections that were closed)."""
        totals = {}
        for group, members in self._groups().items():
            seconds = 0.0
            for proc in members:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                seconds += times.user + times.system
                if group == "postgres":
                    seconds += times.children_user + times.children_system
            totals[group] = seconds
        return totals

    def begin(self) -> None:
        self.start = self._snapshot()
        self.started = time.perf_counter()
        self.system_start = psutil.cpu_times()

    def end(self) -> tuple[dict[str, float], float, float]:
        """Cores used by each group, the machine's busy share, and the seconds measured."""
        now = self._snapshot()
        elapsed = time.perf_counter() - self.started
        system = psutil.cpu_times()
        busy = sum(system) - system.idle - system.iowait
        busy_start = sum(self.system_start) - self.system_start.idle - self.system_start.iowait
        total = sum(system) - sum(self.system_start)
        cores = {k: (now[k] - self.start.get(k, 0.0)) / elapsed for k in now}
        return cores, (busy - busy_start) / total if total else 0.0, elapsed


def db_stats(url: str) -> dict[str, int]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_fetched, sessions "
            "FROM pg_stat_database WHERE datname = %s",
            (DB_NAME,),
        ).fetchone()
    assert row is not None
    return dict(zip(("commits", "rollbacks", "fetched", "sessions"), row, strict=True))


def redis_commands(store: redis.Redis) -> int:
    return int(store.info("stats")["total_commands_processed"])


def worst_window(times: list[float], width: float = 1.0) -> tuple[int, float]:
    """The most arrivals in any window [t, t + width), and where it starts (sorted input)."""
    best, at, left = 0, 0.0, 0
    for right, t in enumerate(times):
        while times[left] <= t - width:
            left += 1
        if right - left + 1 > best:
            best, at = right - left + 1, times[left]
    return best, at


def over_limit(times: list[float], limit: int, width: float = 1.0) -> int:
    """Arrivals that had ``limit`` others in the second before them (sorted input)."""
    return sum(1 for i, t in enumerate(times) if i - bisect.bisect_right(times, t - width) >= limit)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class Timings:
    launch: float = 0.0  # launch() in its transaction
    commit: float = 0.0
    announce: float = 0.0
    started: float = 0.0  # time.time() when launch() was called
    announced: float = 0.0  # time.time() after the announce
    jobs: int = 0
    recipients: int = 0


def do_launch(factory: sessionmaker[Session], store: redis.Redis, campaign_id: int) -> Timings:
    timings = Timings()
    timings.started = time.time()
    start = time.perf_counter()
    session = factory()
    try:
        launched = launch(session, session.get_one(Campaign, campaign_id))
        timings.launch = time.perf_counter() - start
        pending = outbox.take_pending(session)
        mark = time.perf_counter()
        session.commit()
        timings.commit = time.perf_counter() - mark
    finally:
        session.close()
    mark = time.perf_counter()
    outbox.announce(store, pending)
    timings.announce = time.perf_counter() - mark
    timings.announced = time.time()
    timings.jobs, timings.recipients = launched.jobs, launched.recipients
    return timings


def failed_job(store: redis.Redis) -> str | None:
    """The error of a send job that failed, if one did (the last line of its traceback)."""
    for job_id in FailedJobRegistry("campaigns", connection=store).get_job_ids():
        job = Job.fetch(job_id, connection=store)
        result = job.latest_result()
        text = (result.exc_string if result else None) or job.exc_info or "no traceback"
        return f"{job_id}: {text.strip().splitlines()[-1]}"
    return None


def follow(
    factory: sessionmaker[Session],
    store: redis.Redis,
    campaign_id: int,
    log: ProviderLog,
    procs: Processes,
    timeout: float,
    started: float,
) -> str:
    """Wait until the campaign is done (or paused, cancelled, timed out, interrupted, workers
    gone, a send job failed), printing progress every PROGRESS_EVERY seconds; the status.

    Each second costs one primary-key read; the counts (a GROUP BY over the campaign's
    recipients) are read only for the progress lines."""
    last_print = time.perf_counter()
    window_start = time.time()
    window_arrivals: list[Arrival] = []
    psutil.cpu_percent()
    status = "running"
    try:
        while True:
            with session_scope(factory) as session:
                status = session.scalars(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                ).one()
            window_arrivals += log.read()
            now = time.perf_counter()
            if status != "running" or now - last_print >= PROGRESS_EVERY:
                with session_scope(factory) as session:
                    counts = progress(session, session.get_one(Campaign, campaign_id))
                span = time.time() - window_start
                accepted = sum(1 for a in window_arrivals if a.status == 201)
                refused = sum(1 for a in window_arrivals if a.status == 429)
                print(
                    f"  {time.time() - started:6.1f} s  sent {counts['sent']:>7,}  "
                    f"pending {counts['pending']:>7,}  sending {counts['sending']:>3}  "
                    f"failed {counts['failed']:>4}  provider {accepted / span:6.1f}/s "
                    f"accepted, {refused} refused  cpu {psutil.cpu_percent():3.0f}%",
                    flush=True,
                )
                last_print, window_start, window_arrivals = now, time.time(), []
            if status != "running":
                return status
            if time.time() - started > timeout:
                print(f"  timed out after {timeout:.0f} s")
                return status
            if all(p.poll() is not None for p in procs.workers):
                print("  every worker has exited")
                return status
            if error := failed_job(store):
                print(f"  a send job failed, stopping: {error} (see {procs.workdir})")
                return status
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("  interrupted: the figures below cover what was sent until now")
        return status


def server_notes(url: str, since: float) -> str:
    """What the database server did that bears on the claim query's plan: whether it analyzes
    tables by itself, and whether campaign_recipients was analyzed after the launch."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
        row = conn.execute(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
            "WHERE relname = 'campaign_recipients'"
        ).fetchone()
    last = row[0] if row else None
    analyzed = "yes" if last is not None and last.timestamp() >= since else "no"
    setting = autovacuum[0] if autovacuum else "?"
    return f"autovacuum {setting}; campaign_recipients analyzed after the launch: {analyzed}"


def tree() -> str:
    """The commit the code is at, and how many tracked files differ from it (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    if not head:
        return f"snapshot in {ROOT}"
    return f"{head}" + (f" + {len(changed)} modified files" if changed else " (clean)")


def report(
    args: argparse.Namespace,
    timings: Timings,
    arrivals: list[Arrival],
    expected: set[str],
    status: str,
    counts: dict[str, int],
    cpu: tuple[dict[str, float], float, float],
    work: dict[str, int],
    notes: str,
) -> bool:
    """Print the figures and PASS/MISS against the targets; whether all passed."""
    arrivals = sorted(arrivals, key=lambda a: a.at)
    accepted = [a for a in arrivals if a.status == 201]
    refused = sum(1 for a in arrivals if a.status == 429)
    other = len(arrivals) - len(accepted) - refused
    times = [a.at for a in arrivals]
    accepted_times = [a.at for a in accepted]
    per_number = Counter(a.to for a in accepted)
    duplicates = sum(n - 1 for n in per_number.values() if n > 1)
    duplicated_numbers = sum(1 for n in per_number.values() if n > 1)
    missing = len(expected - per_number.keys())
    unexpected = len(per_number.keys() - expected)
    ok = True
    print("\nsummary")
    print(
        f"  settings            {args.recipients:,} recipients, rate {args.rate}/s, latency "
        f"{args.latency_ms:.0f} ms, {args.workers} workers x {args.threads} threads, provider "
        f"{'refuses (429) past the rate' if args.enforce else 'accepts everything'}; "
        f"code {tree()}"
    )
    print(
        f"  launch              {timings.launch + timings.commit + timings.announce:7.2f} s "
        f"(launch() {timings.launch:.2f} s, commit {timings.commit:.2f} s, announce "
        f"{timings.announce * 1000:.1f} ms): {timings.recipients:,} recipients, "
        f"{timings.jobs} jobs"
    )
    if not accepted:
        print("  nothing reached the provider")
        return False
    first = times[0]
    print(
        f"  first send          {first - timings.started:7.2f} s after launch() was called, "
        f"{first - timings.announced:.2f} s after the announce"
    )
    begin, end = accepted_times[0], accepted_times[-1]
    duration = end - begin
    lo, hi = begin + STEADY_TRIM * duration, end - STEADY_TRIM * duration
    steady = bisect.bisect_left(accepted_times, hi) - bisect.bisect_left(accepted_times, lo)
    rate = steady / (hi - lo) if hi > lo else 0.0
    ratio = rate / args.rate
    ok &= ratio >= TARGET_RATIO
    print(
        f"  sending             {duration:7.1f} s from first to last accepted, "
        f"{len(accepted) / duration if duration else 0:.1f}/s overall"
    )
    print(
        f"  steady rate         {rate:7.1f}/s (middle {1 - 2 * STEADY_TRIM:.0%}: {steady:,} "
        f"accepted in {hi - lo:.1f} s)"
    )
    print(
        f"  ratio to limit      {ratio:7.3f} of {args.rate}/s  target >= {TARGET_RATIO}: "
        f"{verdict(ratio >= TARGET_RATIO)}"
    )
    seconds = Counter(int(t - lo) for t in accepted_times if lo <= t < hi)
    full = [seconds.get(s, 0) for s in range(int(hi - lo))]
    if full:
        full.sort()
        print(
            f"  per second (steady) min {full[0]}  p5 {full[len(full) // 20]}  "
            f"p50 {full[len(full) // 2]}  max {full[-1]}"
        )
    worst, worst_at = worst_window(times)
    worst_ok, _ = worst_window(accepted_times)
    ok &= worst <= args.rate
    print(
        f"  worst 1 s window    {worst:7d} requests (at +{worst_at - first:.1f} s; accepted "
        f"{worst_ok})  limit {args.rate}: {verdict(worst <= args.rate)}; "
        f"{over_limit(times, args.rate)} requests over the limit"
    )
    ok &= duplicates == 0 and missing == 0
    print(
        f"  duplicates          {duplicates:7d} extra accepted sends ({duplicated_numbers} numbers)"
        f"  target 0: {verdict(duplicates == 0)}"
    )
    print(
        f"  missing             {missing:7d} recipients never accepted  target 0: "
        f"{verdict(missing == 0)}"
    )
    if unexpected:
        print(f"  unexpected          {unexpected:7d} accepted numbers not among the recipients")
    print(f"  429s                {refused:7d} requests refused by the provider; {other} others")
    states = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v and k != "total")
    print(f"  database            campaign {status}; recipients: {states}")
    print(f"  database server     {notes}")
    cores, busy, elapsed = cpu
    cores = {**cores, "other": max(0.0, busy * psutil.cpu_count() - sum(cores.values()))}
    used = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cores.items(), key=lambda kv: -kv[1]))
    print(
        f"  cpu (launch..done)  {busy:.0%} of {psutil.cpu_count()} cores busy over "
        f"{elapsed:.0f} s; cores used: {used}"
    )
    sent = max(len(accepted), 1)
    print(
        f"  work per message    {work['commits'] / sent:.2f} commits, "
        f"{work['rollbacks'] / sent:.2f} rollbacks, {work['fetched'] / sent:.1f} tuples fetched, "
        f"{work['redis'] / sent:.1f} Redis commands; {work['sessions']} database connections "
        "opened"
    )
    return ok


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_snapshot(ref: str) -> None:
    """Run this bench on the committed tree ``ref`` (``git archive``, nothing in the repository
    changes) with this bench's files, while the working tree is being edited."""
    snapshot = Path(tempfile.mkdtemp(prefix="bench-campaigns-tree-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive.stdout, check=True)
    for name in ("__init__.py", "campaigns.py", "fake_provider.py", "webhooks.py"):
        (snapshot / "bench" / name).write_bytes((ROOT / "bench" / name).read_bytes())
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if not skip and arg != "--ref" and not arg.startswith("--ref="):
            argv.append(arg)
        skip = arg == "--ref"
    env = {**os.environ, "PYTHONPATH": str(snapshot)}
    print(f"running on {ref} ({snapshot})", flush=True)
    os.chdir(snapshot)
    os.execve(sys.executable, [sys.executable, "-m", "bench.campaigns", *argv], env)  # noqa: S606


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=200, help="messages per second (limit)")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--threads", type=int, default=32, help="CAMPAIGN_THREADS per worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--queue",
        action="append",
        help="queues the workers listen on (repeatable; default all, as `crm worker`)",
    )
    parser.add_argument(
        "--no-enforce",
        dest="enforce",
        action="store_false",
        help="the provider accepts past the rate (no 429s)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="s to wait for done")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seed")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE campaign_recipients right after the launch (what autovacuum does a "
        "minute later on a server that runs it)",
    )
    parser.add_argument(
        "--ref", help="run on this commit (git archive) instead of the working tree"
    )
    args = parser.parse_args()
    if args.ref:
        run_snapshot(args.ref)
    # Cleanup (workers, provider, Redis) also when stopped by a signal, even one ignored by
    # the shell that started us in the background.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    timeout = args.timeout or 2 * args.recipients / args.rate + 180

    url = bench_database_url()
    redis_url = os.environ.get("CAMPAIGNS_REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    store = bench_redis(redis_url)
    store.flushdb()
    prepare_database(url, args.recipients, args.reseed)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    procs = Processes(Path(tempfile.mkdtemp(prefix="bench-campaigns-")))
    passed = False
    try:
        campaign_id = make_campaign(factory)
        log = ProviderLog(procs.workdir / "provider.tsv")
        port = start_fake(procs, args, log.path)
        start_workers(procs, args, worker_env(args, url, redis_url, port))
        print(
            f"provider on port {port}; {args.workers} workers x {args.threads} threads starting "
            f"(logs in {procs.workdir}) ..."
        )
        ready = wait_for_workers(procs, store, timeout=300)
        print(f"workers ready in {ready:.1f} s; launching campaign {campaign_id} ...")
        cpu = CpuMeter(procs, store.connection_pool.connection_kwargs.get("port", 6379))
        cpu.begin()
        before, commands = db_stats(url), redis_commands(store)
        timings = do_launch(factory, store, campaign_id)
        print(
            f"  launched {timings.recipients:,} recipients in {timings.jobs} jobs in "
            f"{timings.launch + timings.commit + timings.announce:.2f} s"
        )
        if args.analyze:
            mark = time.perf_counter()
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                conn.execute("ANALYZE campaign_recipients")
            print(f"  analyzed campaign_recipients in {time.perf_counter() - mark:.2f} s")
        status = follow(factory, store, campaign_id, log, procs, timeout, timings.started)
        cores = cpu.end()
        after = db_stats(url)
        work = {k: after[k] - before[k] for k in after}
        work["redis"] = redis_commands(store) - commands
        stop(procs)
        log.read()
        with session_scope(factory) as session:
            counts = progress(session, session.get_one(Campaign, campaign_id))
            expected = set(
                session.scalars(
                    select(CampaignRecipient.phone).where(
                        CampaignRecipient.campaign_id == campaign_id
                    )
                )
            )
        expected |= {phone(i) for i in range(args.recipients)}
        notes = server_notes(url, timings.started)
        passed = report(args, timings, log.arrivals, expected, status, counts, cores, work, notes)
    finally:
        stop(procs)
        engine.dispose()
        store.flushdb()
    print(f"\nall targets: {verdict(passed)}  (logs in {procs.workdir})")


if __name__ == "__main__":
    main()
