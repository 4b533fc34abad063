"""Benchmark USSD session hops under gunicorn against a bare Flask baseline.

Every session walks the shipped menu (bot/menus/default.yaml) hop by hop as a handset does: each
hop waits for the previous answer; sessions run concurrently over keep-alive connections. Ours
answers each hop from the menu, keeps the session's state in Redis and rewrites the session's
interaction in PostgreSQL; the bare endpoint checks the same callback key and answers a fixed
``CON`` screen. Run from the repository root:

    python -m bench.ussd --sessions 400 --concurrency 32 --workers 4 --threads 4

DATABASE_URL and REDIS_URL (an explicit db, flushed before and after) configure the stores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections import deque
from time import perf_counter
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, text

from bench.webhooks import (
    ACCOUNT_SID,
    DEFAULT_REDIS_URL,
    TOKEN,
    Link,
    Run,
    bench_redis,
    database_url,
    gunicorn,
    report_errors,
    reset,
)
from crm.migrate import upgrade

PATH = "/webhooks/africastalking/ussd"
SECRET = "bench-africastalking-callback-key"
SERVICE_CODE = "*384*1234#"
NETWORK_CODE = "63902"  # Safaricom
FIRST_PHONE = 254712000000
TARGET_P99_MS = 100.0
NAMES = ["Ama Owusu", "Wanjiru Kamau", "Otieno Odhiambo", "Akinyi Njeri", "Kwame Mensah"]


def hop_texts(i: int) -> list[str]:
    """The ``text`` of each hop of session ``i``: the inputs so far, joined by ``*``.

    Products, next page, back, back to the main menu, update my details: a name, the household
    size (END).
    """
    inputs = ["1", "98", "0", "0", "3", NAMES[i % len(NAMES)], str(2 + i % 6)]
    return ["*".join(inputs[:n]) for n in range(len(inputs) + 1)]


def build_sessions(count: int, phones: int) -> list[list[dict[str, str]]]:
    """Each session's hop forms as Africa's Talking posts them; phones round-robin."""
    sessions = []
    for i in range(count):
        session_id = "ATUid_" + uuid.uuid4().hex
        phone = f"+{FIRST_PHONE + i % phones}"
        sessions.append(
            [
                {
                    "sessionId": session_id,
                    "serviceCode": SERVICE_CODE,
                    "phoneNumber": phone,
                    "networkCode": NETWORK_CODE,
                    "text": hop,
                }
                for hop in hop_texts(i)
            ]
        )
    return sessions


def hop_requests(sessions: list[list[dict[str, str]]], port: int) -> list[list[bytes]]:
    """Raw HTTP/1.1 requests to PATH with the callback key, per session in hop order."""
    head = (
        f"POST {PATH}?key={quote(SECRET)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    )
    result = []
    for forms in sessions:
        payloads = []
        for form in forms:
            body = urlencode(form).encode()
            payloads.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        result.append(payloads)
    return result


async def handset(port: int, pending: deque[list[bytes]], final: bytes, run: Run) -> None:
    """One keep-alive connection playing sessions until none are left, each hop after the last
    answer. Every hop must answer 200 ``CON``, the last one ``final``; a session stops at its
    first failed hop, as the gateway would end it."""
    link = Link(port)
    try:
        while pending:
            hops = pending.popleft()
            for number, payload in enumerate(hops, 1):
                answer = await link.exchange(payload, run)
                if answer is None:
                    break
                status, body = answer
                expected = final if number == len(hops) else b"CON "
                if status == 200 and body.startswith(expected):
                    run.ok += 1
                    continue
                kind = f"HTTP {status}" if status != 200 else f"not {expected.decode().strip()}"
                run.errors.append(f"{kind}: hop {number}: {body[:500].decode(errors='replace')}")
                break
    finally:
        link.close()


async def load_sessions(
    port: int, sessions: list[list[bytes]], final: bytes, concurrency: int
) -> Run:
    """Play every session once over ``concurrency`` connections; time the whole phase."""
    run, pending = Run(), deque(sessions)
    start = perf_counter()
    await asyncio.gather(*(handset(port, pending, final, run) for _ in range(concurrency)))
    run.elapsed = perf_counter() - start
    return run


def bench_app(
    app: str,
    ready_path: str,
    env: dict[str, str],
    sessions: list[list[dict[str, str]]],
    final: bytes,
    args: argparse.Namespace,
) -> Run:
    """Start gunicorn for ``app``, warm it up, measure it, stop it."""
    with gunicorn(app, ready_path, env, args) as (port, _):
        payloads = hop_requests(sessions, port)
        warm = asyncio.run(load_sessions(port, payloads[: args.warmup], final, args.concurrency))
        run = asyncio.run(load_sessions(port, payloads[args.warmup :], final, args.concurrency))
        run.errors = warm.errors + run.errors
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=40, help="sessions, not measured")
    parser.add_argument("--phones", type=int, default=200, help="distinct phone numbers")
    args = parser.parse_args()

    db_url = database_url()
    redis_url = os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    store = bench_redis(redis_url)
    upgrade(db_url)
    engine = create_engine(db_url)
    sessions = build_sessions(args.warmup + args.sessions, args.phones)
    hops = len(sessions[0])
    secrets = {"TWILIO_AUTH_TOKEN": TOKEN, "AT_WEBHOOK_SECRET": SECRET}
    crm_env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CRM_ENV": "test",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        **secrets,
    }
    print(
        f"{args.sessions} USSD sessions x {hops} hops (+{args.warmup} warmup sessions), "
        f"concurrency {args.concurrency}, {args.phones} phones"
    )
    print(f"gunicorn gthread {args.workers} workers x {args.threads} threads")
    reset(engine, store)
    try:
        bare = bench_app("bench.bare_app:create_app()", "/", secrets, sessions, b"CON ", args)
        ours = bench_app("crm.app:create_app()", "/healthz", crm_env, sessions, b"END ", args)
        with engine.connect() as connection:
            stored, completed = connection.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE delivery_status = 'completed') "
                    "FROM interactions WHERE channel = 'ussd'"
                )
            ).one()
    finally:
        reset(engine, store)
        engine.dispose()

    print(bare.line("bare", "hops/s"))
    print(ours.line("ussd", "hops/s"))
    report_errors("bare", bare)
    report_errors("ussd", ours)
    ratio = ours.throughput / bare.throughput if bare.throughput else 0.0
    print(f"ratio (ussd/bare throughput): {ratio:.2f}")
    p99 = ours.percentile(0.99)
    verdict = "met" if p99 < TARGET_P99_MS and ours.latencies else "MISSED"
    print(f"ussd p99 {p99:.1f} ms  target p99 < {TARGET_P99_MS:.0f} ms ({verdict})")
    expected = len(sessions)
    verdict = "OK" if stored == completed == expected else "MISMATCH"
    print(
        f"stored USSD interactions: {stored} / {expected} sessions, {completed} completed "
        f"({verdict})"
    )


if __name__ == "__main__":
    main()
