"""Benchmark the Twilio messaging webhook under gunicorn against a bare Flask baseline.

Both apps get the same correctly signed inbound-SMS requests over keep-alive connections; ours
stores every one in PostgreSQL and enqueues its job in Redis. Run from the repository root:

    python -m bench.webhooks --requests 3000 --concurrency 32 --workers 4 --threads 4

DATABASE_URL and REDIS_URL (an explicit db, flushed before and after) configure the stores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from urllib.parse import parse_qs, urlencode, urlsplit

import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from crm.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
PATH = "/webhooks/twilio/messaging"
DEFAULT_DATABASE_URL = "postgresql+psycopg://{user}@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
TABLES = [
    "interactions",
    "outbox_jobs",
    "channel_consents",
    "contact_tags",
    "identities",
    "contacts",
]
TOKEN = "bench-twilio-auth-token"
ACCOUNT_SID = "AC" + "b" * 32
SERVICE_SID = "MG" + "c" * 32
TO = "+15005550006"
TIMEOUT = 10.0
BODIES = [
    "Hi, is order #{i} ready for pickup?",
    "Can I change my delivery address? Ref {i}",
    "Thanks, got it ({i})",
    "What time do you open on Saturday? {i}",
]


@dataclass
class Run:
    """Latencies (s) of answered requests, errors, 200s, and wall time of one load phase."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ok: int = 0
    elapsed: float = 0.0

    @property
    def throughput(self) -> float:
        """Successful (200) responses per second."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """The ``q`` latency quantile in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies) or [0.0]
        return ordered[round(q * (len(ordered) - 1))] * 1000

    def line(self, name: str, unit: str = "req/s") -> str:
        return (
            f"{name:<7}: {self.throughput:7.1f} {unit}  p50 {self.percentile(0.5):5.1f} ms  "
            f"p99 {self.percentile(0.99):5.1f} ms  errors {len(self.errors)}"
        )


def database_url() -> str:
    """DATABASE_URL, else the local test database as ``postgres``, falling back to ``root``."""
    if url := os.environ.get("DATABASE_URL", "").strip():
        return url.replace("postgres://", "postgresql+psycopg://", 1).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
    for user in ("postgres", "root"):
        url = DEFAULT_DATABASE_URL.format(user=user)
        try:
            with create_engine(url, connect_args={"connect_timeout": 5}).connect():
                return url
        except OperationalError:
            continue
    raise SystemExit("cannot connect to PostgreSQL at 127.0.0.1:5432/test as postgres or root")


def bench_redis(url: str) -> redis.Redis:
    """The bench Redis; its URL must name its db, since it is flushed."""
    parts = urlsplit(url)
    if not (parts.path.strip("/").isdigit() or "db" in parse_qs(parts.query)):
        raise SystemExit(f"REDIS_URL must name a database (e.g. /14), it is flushed: {url}")
    return redis.Redis.from_url(url)


def reset(engine: Engine, store: redis.Redis) -> None:
    """Delete the rows the webhook writes and flush the bench Redis db."""
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    store.flushdb()


def build_forms(count: int, senders: int) -> list[dict[str, str]]:
    """Inbound SMS forms as Twilio posts them: a unique MessageSid each, senders round-robin."""
    forms = []
    for i in range(count):
        sid = "SM" + uuid.uuid4().hex
        forms.append(
            {
                "ToCountry": "US",
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "SmsSid": sid,
                "FromCountry": "GH",
                "NumSegments": "1",
                "MessageSid": sid,
                "AccountSid": ACCOUNT_SID,
                "MessagingServiceSid": SERVICE_SID,
                "From": f"+{233241000000 + i % senders}",
                "To": TO,
                "Body": BODIES[i % len(BODIES)].format(i=i),
                "ApiVersion": "2010-04-01",
            }
        )
    return forms


def signed_requests(forms: list[dict[str, str]], port: int) -> list[bytes]:
    """Raw HTTP/1.1 requests, each signed for ``http://127.0.0.1:<port>`` + PATH."""
    validator = RequestValidator(TOKEN)
    url = f"http://127.0.0.1:{port}{PATH}"
    payloads = []
    for form in forms:
        body = urlencode(form).encode()
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {validator.compute_signature(url, form)}\r\n\r\n"
        )
        payloads.append(head.encode() + body)
    return payloads


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closes the connection."""
    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    status, length, close = int(lines[0].split(b" ", 2)[1]), None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if length is None:
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


class Link:
    """One keep-alive connection, opened on first use and again after the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, payload: bytes, run: Run) -> tuple[int, bytes] | None:
        """Send one request; its status and body, with its latency in ``run``.

        None when it got no answer (the error is in ``run``).
        """
        close, answer = True, None
        try:
            async with asyncio.timeout(TIMEOUT):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                assert self.reader is not None
                start = perf_counter()
                self.writer.write(payload)
                status, body, close = await read_response(self.reader)
            run.latencies.append(perf_counter() - start)
            answer = status, body
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            run.errors.append(f"{type(exc).__name__}: {exc}")
        if close:
            self.close()
        return answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def client(port: int, pending: deque[bytes], run: Run) -> None:
    """One keep-alive connection sending requests until none are left."""
    link = Link(port)
    try:
        while pending:
            answer = await link.exchange(pending.popleft(), run)
            if answer is None:
                continue
            status, body = answer
            if status == 200:
                run.ok += 1
            else:
                run.errors.append(f"HTTP {status}: {body[:500].decode(errors='replace')}")
    finally:
        link.close()


async def load(port: int, payloads: list[bytes], concurrency: int) -> Run:
    """Send every payload once over ``concurrency`` connections; time the whole phase."""
    run, pending = Run(), deque(payloads)
    start = perf_counter()
    await asyncio.gather(*(client(port, pending, run) for _ in range(concurrency)))
    run.elapsed = perf_counter() - start
    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``path`` until it answers 200 (at most 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not become ready")


@contextmanager
def gunicorn(
    app: str, ready_path: str, env: dict[str, str], args: argparse.Namespace
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start gunicorn (``args.workers`` x ``args.threads``) for ``app`` on a free port, yield the
    port and the master process once ``ready_path`` answers, stop it after.

    A RuntimeError (gunicorn not ready) prints the end of gunicorn's log.
    """
    port = free_port()
    env = {**os.environ, **env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--workers", str(args.workers)]
    command += ["--threads", str(args.threads), "--bind", f"127.0.0.1:{port}", app]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            wait_ready(port, ready_path, process)
            yield port, process
        except RuntimeError:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def bench_app(
    app: str,
    ready_path: str,
    env: dict[str, str],
    forms: list[dict[str, str]],
    args: argparse.Namespace,
) -> Run:
    """Start gunicorn for ``app``, warm it up, measure it, stop it."""
    with gunicorn(app, ready_path, env, args) as (port, _):
        payloads = signed_requests(forms, port)
        warm = asyncio.run(load(port, payloads[: args.warmup], args.concurrency))
        run = asyncio.run(load(port, payloads[args.warmup :], args.concurrency))
        run.errors = warm.errors + run.errors
        return run


def report_errors(name: str, run: Run) -> None:
    if run.errors:
        kinds = Counter(error.split(":", 1)[0] for error in run.errors)
        print(f"{name} errors: {dict(kinds)}; first: {run.errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--senders", type=int, default=200, help="distinct sender numbers")
    args = parser.parse_args()

    db_url = database_url()
    redis_url = os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    store = bench_redis(redis_url)
    upgrade(db_url)
    engine = create_engine(db_url)
    forms = build_forms(args.warmup + args.requests, args.senders)
    crm_env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CRM_ENV": "test",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    }
    print(f"{args.requests} requests (+{args.warmup} warmup), concurrency {args.concurrency}")
    print(f"gunicorn gthread {args.workers} workers x {args.threads} threads")
    reset(engine, store)
    try:
        bare = bench_app(
            "bench.bare_app:create_app()", "/", {"TWILIO_AUTH_TOKEN": TOKEN}, forms, args
        )
        ours = bench_app("crm.app:create_app()", "/healthz", crm_env, forms, args)
        with engine.connect() as connection:
            stored = connection.scalar(
                text("SELECT count(*) FROM interactions WHERE direction = 'inbound'")
            )
    finally:
        reset(engine, store)
        engine.dispose()

    print(bare.line("bare"))
    print(ours.line("webhook"))
    report_errors("bare", bare)
    report_errors("webhook", ours)
    ratio = ours.throughput / bare.throughput if bare.throughput else 0.0
    print(f"ratio (webhook/bare throughput): {ratio:.2f}  target >= 0.5")
    expected = len(forms)
    verdict = "OK" if stored == expected else "MISMATCH"
    print(f"stored inbound interactions: {stored} / {expected} sent ({verdict})")


if __name__ == "__main__":
    main()
